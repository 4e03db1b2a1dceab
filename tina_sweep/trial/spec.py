"""Trial specs: pydantic models with unknown keys forbidden.

A ``TrialSpec`` is one complete, hashable description of a trial: the model, the LoRA adapter, the RL
algorithm, the optimisation budget, the training data, the evaluation and the seed. Every value is checked
before anything runs; an invalid one fails with a single line naming the field and the value.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer,
                      model_validator)

from tina_sweep.trial.algorithms import ALGORITHMS
from tina_sweep.trial.rewards import REWARDS


def _positive_int(value: int) -> int:
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _finite_param(value: float | int | bool) -> float | int | bool:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _file_name(value: str) -> str:
    """A name that becomes a file name (``eval/<benchmark>.jsonl``) must be one plain path component."""
    if not _FILE_NAME.match(value) or ".." in value:
        raise ValueError("must be a plain file name (letters, digits, '_', '-', '+' and '.', no '/' and no '..')")
    return value


PositiveInt = Annotated[int, Field(strict=True), AfterValidator(_positive_int)]
# A finite number: an int is accepted (as a float), a bool, a string, inf and NaN are not.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
PositiveFloat = Annotated[Number, Field(gt=0)]
Probability = Annotated[Number, Field(ge=0, le=1)]
FileName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_file_name)]

REWARD_NAMES = tuple(REWARDS)
# The parameters each reward accepts in ``RewardSpec.params`` (see tina_sweep.trial.rewards for their meaning).
REWARD_PARAMS: dict[str, tuple[str, ...]] = {name: reward.params for name, reward in REWARDS.items() if reward.params}


class Spec(BaseModel):
    """Base for every spec section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    # Fields added after trials were first hashed, with the value that means "as before": left out of every dump
    # while they hold it, so a spec written before the field existed keeps its text and its trial id.
    LATER_DEFAULTS: ClassVar[dict[str, Any]] = {}

    @model_serializer(mode="wrap")
    def _without_later_defaults(self, handler) -> dict:
        data = handler(self)
        for name, value in self.LATER_DEFAULTS.items():
            if name in data and data[name] == value:
                del data[name]
        return data

    def canonical_json(self) -> str:
        """Every field, sorted, compact: equal specs give equal text."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


class ModelSpec(Spec):
    name: str = Field("smollm2-135m-instruct", min_length=1,
                      description="catalog name (tina-sweep models), local directory or hub id")
    dtype: Literal["float32", "bfloat16", "auto"] = "float32"
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] = "sdpa"


class Example(Spec):
    """A worked example shown to the model as an earlier chat turn (few-shot)."""

    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)


class PromptSpec(Spec):
    system: str | None = Field(None, description="system prompt; None keeps the chat template's default")
    instruction: str = Field("Give only the final number inside \\boxed{}.",
                             description="appended to every question, train and eval alike")
    examples: list[Example] = Field(default_factory=list, description="few-shot turns before the question")
    template: str | None = Field(None, description="the user turn, with {question} where the question goes "
                                                   "(replaces question + instruction; instruction must be empty)")
    chat_template: str | None = Field(None, description="a named chat template (tina_sweep.trial.prompts.CHAT_TEMPLATES) "
                                                        "or Jinja text; None keeps the tokenizer's own")
    target_length_range: tuple[PositiveInt, PositiveInt] | None = Field(
        None, description="L1 prompts: append 'Think for N tokens.' to the system prompt, N drawn uniformly per "
                          "training problem from [low, high] (seeded); the length_l1_* rewards read N")

    @model_validator(mode="after")
    def _prompt_consistent(self) -> "PromptSpec":
        if self.template is not None:
            if "{question}" not in self.template:
                raise ValueError(f"template: must contain {{question}}, got {self.template!r}")
            if self.instruction:
                raise ValueError("instruction: must be empty when template is set (the template is the whole user "
                                 f"turn), got {self.instruction!r}")
        if self.chat_template is not None and "{" not in self.chat_template:
            from tina_sweep.trial.prompts import CHAT_TEMPLATES

            if self.chat_template not in CHAT_TEMPLATES:
                raise ValueError(f"chat_template: unknown name {self.chat_template!r} "
                                 f"(known: {', '.join(CHAT_TEMPLATES)}; or give Jinja text)")
        if self.chat_template is not None:
            _check_chat_template(self)
        if self.target_length_range is not None and self.target_length_range[0] > self.target_length_range[1]:
            raise ValueError(f"target_length_range: low > high, got {list(self.target_length_range)}")
        return self


def _check_chat_template(prompt: PromptSpec) -> None:
    """The chat template must compile and render this prompt's turns (system, examples, a question), as the
    tokenizer will render them."""
    from jinja2 import TemplateSyntaxError
    from transformers.utils.chat_template_utils import render_jinja_template

    from tina_sweep.trial.prompts import chat_messages, chat_template_text

    text = chat_template_text(prompt.chat_template)
    shown = text if len(text) <= 60 else text[:57] + "..."
    try:
        render_jinja_template([chat_messages("What is 1 + 1?", prompt)], chat_template=text,
                              add_generation_prompt=True, bos_token="", eos_token="")
    except TemplateSyntaxError as error:
        raise ValueError(f"chat_template: not a valid Jinja template (line {error.lineno}: {error.message}), "
                         f"got {shown!r}") from None
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ValueError(f"chat_template: fails to render a conversation ({type(error).__name__}: {reason}), "
                         f"got {shown!r}") from None


class LoraSpec(Spec):
    rank: PositiveInt = 8
    alpha: PositiveInt | None = Field(None, description="None: alpha = alpha_per_rank x rank")
    alpha_per_rank: PositiveFloat = Field(4.0, description="the study's rule: alpha = alpha_per_rank x rank")
    dropout: Annotated[Number, Field(ge=0, lt=1)] = 0.05
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        min_length=1)

    @model_validator(mode="after")
    def _alpha_at_least_one(self) -> "LoraSpec":
        if self.alpha is None and self.resolved_alpha < 1:
            raise ValueError(f"alpha_per_rank: {self.alpha_per_rank:g} x rank {self.rank} rounds lora_alpha to 0 "
                             f"(raise alpha_per_rank or set alpha), got {self.alpha_per_rank!r}")
        return self

    @property
    def resolved_alpha(self) -> int:
        return self.alpha if self.alpha is not None else int(round(self.alpha_per_rank * self.rank))


class RewardSpec(Spec):
    name: Literal[REWARD_NAMES]  # type: ignore[valid-type]
    weight: Number = 1.0
    params: dict[str, Annotated[float | int | bool, AfterValidator(_finite_param)]] = Field(
        default_factory=dict, description="the reward's own parameters (REWARD_PARAMS lists which it takes)")

    @model_validator(mode="after")
    def _known_params(self) -> "RewardSpec":
        allowed = REWARD_PARAMS.get(self.name, ())
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise ValueError(f"params.{unknown[0]}: reward {self.name!r} takes "
                             f"{', '.join(allowed) if allowed else 'no parameters'}")
        return self


class AlgorithmSpec(Spec):
    name: Literal[tuple(ALGORITHMS)] = Field("dr_grpo", description="the RL algorithm (tina_sweep.trial.algorithms)")  # type: ignore[valid-type]
    beta: Annotated[Number, Field(ge=0)] = 0.0
    epsilon: PositiveFloat = 0.2
    num_generations: Annotated[int, Field(ge=2, strict=True)] = 4
    temperature: PositiveFloat = 1.0
    top_p: Annotated[Number, Field(gt=0, le=1)] = 1.0
    top_k: Annotated[int, Field(ge=0, strict=True)] = Field(50, description="sample from the k likeliest tokens; 0 = off")
    max_completion_length: PositiveInt = 48
    rewards: list[RewardSpec] = Field(default_factory=lambda: [RewardSpec(name="accuracy")], min_length=1)
    use_vllm: bool = False
    vllm_mode: Literal["colocate", "server"] = Field(
        "colocate", description="colocate: a vLLM engine inside each training process (TRL 1.x); server: trl vllm-serve")
    vllm_gpu_memory_utilization: Annotated[Number, Field(gt=0, le=1)] = 0.4
    vllm_max_model_length: PositiveInt | None = Field(None, description="vLLM max_model_len (prompt + completion)")
    vllm_enable_sleep_mode: bool = Field(
        False, description="colocate: offload vLLM's weights and KV cache while the trainer steps (frees memory, "
                           "costs a reload per step)")
    vllm_importance_sampling_correction: bool = Field(
        False, description="TRL 1.x truncated importance sampling of vLLM rollouts (TRL's default is on; the TRL "
                           "0.15 trainer of the Tina recipes had none)")

    @field_validator("rewards")
    @classmethod
    def _unique_rewards(cls, rewards: list[RewardSpec]) -> list[RewardSpec]:
        names = [r.name for r in rewards]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"reward {duplicates[0]!r} is listed twice")
        return rewards


class TrainingSpec(Spec):
    LATER_DEFAULTS = {"stop_at_step": None, "global_batch_processes": 1, "cpu_autocast": "off", "cpu_fast_path": True}
    learning_rate: PositiveFloat = 1e-4
    lr_scheduler_type: Literal["constant", "constant_with_warmup", "linear", "cosine", "cosine_with_min_lr"] = "constant"
    min_lr_rate: Probability = 0.1
    warmup_ratio: Annotated[Number, Field(ge=0, lt=1)] = 0.0
    max_steps: PositiveInt | None = Field(30, description="the scheduler horizon in optimizer steps; None: one "
                                                         "epoch of the training set (the recipes without max_steps)")
    stop_at_step: PositiveInt | None = Field(None, description="stop training at this optimizer step (the scheduler's "
                                                               "horizon stays max_steps); None: train to max_steps")
    prompts_per_step: PositiveInt = Field(2, description="distinct prompts per device per micro-step")
    gradient_accumulation_steps: PositiveInt = Field(
        1, description="micro-steps per optimizer step, for global_batch_processes processes (a run with another "
                       "number of processes rescales it to keep the global batch)")
    global_batch_processes: PositiveInt = Field(
        1, description="the data-parallel processes the global batch is defined for: prompts per optimizer step = "
                       "prompts_per_step x gradient_accumulation_steps x global_batch_processes")
    save_steps: PositiveInt = 10
    weight_decay: Annotated[Number, Field(ge=0)] = 0.0
    max_grad_norm: PositiveFloat = 1.0
    cpu_autocast: Literal["off", "bf16"] = Field(
        "off", description="training on a CPU: bf16 autocast (the weights stay fp32) where the CPU computes bf16 natively "
                           "(AVX512-BF16 or AMX; fp32 elsewhere, with a warning); off: fp32")
    cpu_fast_path: bool = Field(
        True, description="training on one CPU process: compute each prompt once for all its completions (rollout "
                          "prefill, policy forward and backward) and decode with prepacked oneDNN weights -- the same "
                          "maths as TRL's own path, in another order (tina_sweep/trial/train/cpu_fast_path.py); "
                          "false: TRL's path unchanged")

    @model_validator(mode="after")
    def _stop_within_horizon(self) -> "TrainingSpec":
        if self.stop_at_step is not None and self.max_steps is not None and self.stop_at_step > self.max_steps:
            raise ValueError(f"stop_at_step: must be <= training.max_steps ({self.max_steps}), got {self.stop_at_step}")
        return self

    @property
    def global_prompts_per_step(self) -> int:
        """Distinct prompts per optimizer step over all processes (the recipes' global batch)."""
        return self.prompts_per_step * self.gradient_accumulation_steps * self.global_batch_processes

    def accumulation_for(self, world_size: int) -> int:
        """The gradient accumulation steps that give the global batch with ``world_size`` processes: accumulate
        more on fewer processes, split over more. Raises ValueError (one line) when that is not a whole number."""
        total = self.gradient_accumulation_steps * self.global_batch_processes
        if world_size < 1 or total % world_size:
            raise ValueError(f"training.global_batch_processes: gradient_accumulation_steps "
                             f"{self.gradient_accumulation_steps} x global_batch_processes {self.global_batch_processes} "
                             f"= {total} micro-steps per optimizer step cannot be split evenly over {world_size} "
                             f"process(es); launch with a number of processes that divides {total}")
        return total // world_size


class DataSpec(Spec):
    """A training set or benchmark: a catalog name, or a user's JSONL file with named fields."""

    name: FileName = Field(description="a catalog name, or any name for a file of your own (it names the "
                                        "benchmark's outcome file, so it must be a plain file name)")
    path: str | None = Field(None, description="a local JSONL/JSON file instead of the catalog entry")
    question_field: str = "question"
    answer_field: str = "answer"
    LATER_DEFAULTS = {"answer_pattern": None}
    answer_format: Literal["plain", "gsm8k", "list", "number", "choice", "regex"] = Field(
        "plain", description="how to read the gold: plain (as written), gsm8k (after '#### '), list (accepted "
                             "answers), number (the leading number, a unit or label after it dropped: '9 (apples)', "
                             "'5 cm'), choice (an option letter: '(C)', '\\text{(C)}', 'C'), regex (the one group "
                             "of answer_pattern)")
    answer_pattern: str | None = Field(None, description="answer_format regex: a regular expression with one group; "
                                                         "the gold is that group of its first match in the answer")
    limit: PositiveInt | None = Field(None, description="use the first N problems (eval) or N problems (train)")

    @model_validator(mode="after")
    def _pattern_for_regex(self) -> "DataSpec":
        if self.answer_format != "regex":
            if self.answer_pattern is not None:
                raise ValueError(f"answer_pattern: only read with answer_format regex (answer_format is "
                                 f"{self.answer_format}), got {self.answer_pattern!r}")
            return self
        if self.answer_pattern is None:
            raise ValueError("answer_pattern: answer_format regex needs a regular expression with one group, "
                             "e.g. '^(\\d+) apples', got None")
        try:
            groups = re.compile(self.answer_pattern).groups
        except re.error as error:
            raise ValueError(f"answer_pattern: not a regular expression ({error}), got {self.answer_pattern!r}") \
                from None
        if groups != 1:
            raise ValueError(f"answer_pattern: must have exactly one group (the gold), has {groups}, got "
                             f"{self.answer_pattern!r}")
        return self


class EvalSpec(Spec):
    LATER_DEFAULTS = {"grader": "strict"}
    backend: Literal["transformers", "vllm", "lighteval"] = Field(
        "transformers", description="transformers (CPU/GPU); vllm (one engine, every adapter as a LoRARequest, our "
                                    "grading); lighteval (the paper's protocol: merged adapter, Tina's LightEval tasks and metrics, "
                                    "LightEval's vLLM engine on a GPU, its transformers engine without one)")
    prompt: PromptSpec | None = Field(None, description="the evaluation prompt; None: the trial's training prompt")
    benchmarks: list[DataSpec] = Field(default_factory=lambda: [DataSpec(name="arithmetic", limit=100)], min_length=1)
    samples_per_problem: PositiveInt = 1
    temperature: Annotated[Number, Field(ge=0)] = 0.0
    top_p: Annotated[Number, Field(gt=0, le=1)] = 1.0
    top_k: Annotated[int, Field(ge=0, strict=True)] = Field(0, description="sample from the k likeliest tokens; 0 = off")
    max_new_tokens: PositiveInt = 48
    batch_size: PositiveInt = 32
    dtype: Literal["float32", "bfloat16"] = "float32"
    max_model_length: PositiveInt | None = Field(None, description="vllm/lighteval: the engine's max_model_len")
    gpu_memory_utilization: Annotated[Number, Field(gt=0, le=1)] = Field(
        0.7, description="vllm/lighteval: the share of GPU memory the evaluation engine may take")
    check_adapters: bool = Field(True, description="vllm: once per study, check that an adapter's greedy outputs "
                                                   "differ from the base model's and match a merged copy's")
    grader: str = Field("strict", description="strict (the last \\boxed{} only, a number literal for a numeric "
                                              "gold); math_verify (the paper's: Tina's LightEval math-verify "
                                              "extraction). The lighteval backend always grades with LightEval's")

    @field_validator("grader")
    @classmethod
    def _known_grader(cls, grader: str) -> str:
        from tina_sweep.trial.grading import GRADERS

        if grader not in GRADERS:
            raise ValueError(f"must be one of {', '.join(GRADERS)}")
        return grader

    @field_validator("benchmarks")
    @classmethod
    def _unique_benchmarks(cls, benchmarks: list[DataSpec]) -> list[DataSpec]:
        seen: dict[str, str] = {}  # each benchmark's outcomes go to eval/<name>.jsonl: names differing in case collide
        for benchmark in benchmarks:
            key = benchmark.name.casefold()
            if key in seen:
                twin = seen[key]
                also = f" (as {twin!r} and {benchmark.name!r})" if twin != benchmark.name else ""
                raise ValueError(f"benchmark {twin!r} is listed twice{also}")
            seen[key] = benchmark.name
        return benchmarks


Pruner = Literal["none", "median", "successive_halving", "hyperband", "patient"]


class DevSpec(Spec):
    """A dev split, scored greedily at every saved checkpoint inside the trial's process: problems of the training
    distribution held out from training (disjoint from the training problems and from every test benchmark), or
    a named benchmark. Its scores choose the best checkpoint (``report --which best``), stop a trial early
    (``patience``) and let the worker prune arms across the study (``pruner``, Optuna's pruners on the shared
    ledger). A study sets these with ``Study(stopping={...})``."""

    problems: PositiveInt = Field(64, description="dev problems (held out from the training set, or the first N "
                                                  "of ``benchmark``)")
    benchmark: DataSpec | None = Field(None, description="a benchmark as the dev split; None: held out from the "
                                                         "training set")
    max_new_tokens: PositiveInt | None = Field(None, description="tokens per dev completion; None: the training "
                                                                 "completion length (algorithm.max_completion_length)")
    patience: PositiveInt | None = Field(None, description="early stopping: stop after this many dev scores in a "
                                                           "row without a gain over min_delta; None: off")
    min_delta: Annotated[Number, Field(ge=0)] = Field(0.0, description="the gain in dev Pass@1 that counts")
    pruner: Pruner = Field("none", description="across-arm pruning by the worker with Optuna's pruner: median, "
                                               "successive_halving, hyperband, patient (median with patience); "
                                               "none: off")
    min_steps: PositiveInt | None = Field(None, description="no pruning before this optimizer step (successive "
                                                            "halving and Hyperband: their min_resource); None: "
                                                            "the first dev score")
    reduction_factor: Annotated[int, Field(ge=2, strict=True)] = Field(
        3, description="successive_halving / hyperband: keep 1 in reduction_factor trials at each rung")
    startup_trials: Annotated[int, Field(ge=0, strict=True)] = Field(
        2, description="median / patient: trials that must finish before any is pruned")


class TrialSpec(Spec):
    """One complete trial. Its id is a hash of every field, so equal specs share one trial."""

    model: ModelSpec = Field(default_factory=ModelSpec)
    prompt: PromptSpec = Field(default_factory=PromptSpec)
    lora: LoraSpec = Field(default_factory=LoraSpec)
    algorithm: AlgorithmSpec = Field(default_factory=AlgorithmSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    dataset: DataSpec = Field(default_factory=lambda: DataSpec(name="arithmetic", limit=2000))
    eval: EvalSpec = Field(default_factory=EvalSpec)
    dev: DevSpec | None = Field(None, description="a dev split scored at each checkpoint (best checkpoint, early "
                                                  "stopping, pruning); None: off, as the paper's ablations")
    seed: Annotated[int, Field(ge=0, strict=True)] = 42
    LATER_DEFAULTS = {"dev": None}

    @model_validator(mode="after")
    def _consistent(self) -> "TrialSpec":
        from tina_sweep.trial.datasets import BENCHMARKS, TRAINING_SETS

        if self.dataset.path is None and self.dataset.name not in TRAINING_SETS:
            raise ValueError(f"dataset.name: unknown training set {self.dataset.name!r} "
                             f"(known: {', '.join(TRAINING_SETS)}; or set dataset.path to a JSONL file)")
        for index, benchmark in enumerate(self.eval.benchmarks):
            if benchmark.path is None and benchmark.name not in BENCHMARKS:
                raise ValueError(f"eval.benchmarks.{index}.name: unknown benchmark {benchmark.name!r} "
                                 f"(known: {', '.join(BENCHMARKS)}; or set its path to a JSONL file)")
        for index, benchmark in enumerate(self.eval.benchmarks):
            if benchmark.name == "arithmetic" and benchmark.path is None and (benchmark.limit or 0) > 1000:
                raise ValueError(f"eval.benchmarks.{index}.limit: the held-out arithmetic set has 1000 problems "
                                 f"(training never sees them), got {benchmark.limit}")
        l1 = [r.name for r in self.algorithm.rewards if r.name.startswith("length_l1")]
        if l1 and self.prompt.target_length_range is None:
            raise ValueError(f"prompt.target_length_range: reward {l1[0]!r} needs a target length per prompt "
                             "(set prompt.target_length_range, e.g. [100, 4000])")
        if self.dev is not None and self.dev.benchmark is not None and self.dev.benchmark.path is None \
                and self.dev.benchmark.name not in BENCHMARKS:
            raise ValueError(f"dev.benchmark.name: unknown benchmark {self.dev.benchmark.name!r} "
                             f"(known: {', '.join(BENCHMARKS)}; or set its path to a JSONL file)")
        if self.dev is not None and self.dev.benchmark is not None and \
                self.dev.benchmark.name.casefold() in {b.name.casefold() for b in self.eval.benchmarks}:
            raise ValueError(f"dev.benchmark.name: {self.dev.benchmark.name!r} is a test benchmark of this trial "
                             f"(eval.benchmarks): a dev split must be another set, got {self.dev.benchmark.name!r}")
        if self.eval.temperature == 0 and self.eval.samples_per_problem > 1:
            raise ValueError("eval.samples_per_problem: greedy decoding (eval.temperature 0) gives one distinct "
                             f"completion, so n must be 1 or the temperature > 0, got {self.eval.samples_per_problem}")
        return self

    def trial_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:10]

    def baseline(self) -> "BaselineSpec":
        """The reference row: the same model, prompt and evaluation, no training."""
        return BaselineSpec(model=self.model, prompt=self.prompt, eval=self.eval)


class BaselineSpec(Spec):
    """The base model evaluated as is: the reference row of a study."""

    model: ModelSpec
    prompt: PromptSpec
    eval: EvalSpec

    def trial_hash(self) -> str:
        return hashlib.sha256(("baseline:" + self.canonical_json()).encode()).hexdigest()[:10]


class ConfigError(ValueError):
    """An invalid study or spec; the message is one line naming the field and the value."""


def first_error_line(error: ValidationError, prefix: str = "") -> str:
    """Turn pydantic's report into one line: ``lora.rank: must be a positive integer, got 0``."""
    item = error.errors()[0]
    location = ".".join(str(part) for part in item["loc"] if not str(part).startswith("function-after"))
    location = f"{prefix}{location}" if location else prefix.rstrip(".") or "spec"
    kind, value = item["type"], item.get("input")
    if kind == "value_error" and not item["loc"]:
        return prefix + item["msg"].removeprefix("Value error, ")  # a cross-field check names its own field
    message = item["msg"].removeprefix("Value error, ")
    if kind == "value_error" and isinstance(value, dict) and _NAMES_ITS_FIELD.match(message):
        return f"{location}.{message}"  # a section's own cross-field check names its field (and the value)
    if kind == "extra_forbidden":
        return f"{location}: unknown field (check its spelling)"
    if kind == "missing":
        return f"{location}: required field is missing"
    message = _FRIENDLY.get(kind) or item["msg"].replace("Input should be", "must be")
    if kind == "greater_than" and item.get("ctx") == {"gt": 0}:
        message = "must be positive"
    message = message.removeprefix("Value error, ")
    return f"{location}: {message[0].lower() + message[1:]}, got {value!r}"


_NAMES_ITS_FIELD = re.compile(r"^[a-z_][a-z0-9_]*: ")

_FRIENDLY = {
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "model_type": "must be a mapping of fields",
    "too_short": "must not be empty",
}
