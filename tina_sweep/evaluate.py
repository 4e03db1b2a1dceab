"""Evaluation with the transformers backend: batched sampling (left padding), grading, Pass@1.

Pass@1 with n samples per problem is the mean over problems of the per-problem success rate (the unbiased
pass@k estimator at k = 1). Per-problem outcomes are saved so later statistics (bootstrap CIs, paired tests)
can be computed from them. ``eval.grader`` picks the grader (``strict``: our last-box grader; ``math_verify``:
Tina's LightEval metrics); every result and outcome row names it. A multiple-choice problem (GPQA) is posed with
Tina's GPQA template and graded on its letter. The vLLM backend builds its prompts and grades through
``problem_messages`` and ``score_benchmark`` too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from tina_sweep.config import EvalSpec, ModelSpec, PromptSpec
from tina_sweep.data import Problem, load_benchmark
from tina_sweep.grading import grade_samples, math_verify_golds, normalised_gold, why_wrong
from tina_sweep.prompts import chat_messages

# Tina's GPQA user turn (GPQA_QUERY_TEMPLATE of scripts/eval/run_eval_custom_tasks.py, from simple-evals), filled
# with str.format as Tina does: the question, then the options in the order shown.
MULTIPLE_CHOICE_TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should be of the following "
    "format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before answering."
    "\n\n{Question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}"
)


@dataclass
class BenchmarkResult:
    """Pass@1 on one benchmark, with what it took to get it."""

    benchmark: str
    pass_at_1: float
    problems: int
    samples_per_problem: int
    generated_tokens: int
    wall_seconds: float
    outcomes: list[dict] = field(default_factory=list, repr=False)
    device: str = ""  # where generation ran ("cuda:0", "cpu")
    grader: str = "strict"  # what graded it: "strict", "math_verify", or "lighteval" (LightEval's own metrics)


def pass_at_1(successes_per_problem: list[list[bool]]) -> float:
    """Mean over problems of the fraction of correct samples."""
    if not successes_per_problem:
        return 0.0
    return sum(sum(s) / len(s) for s in successes_per_problem) / len(successes_per_problem)


def load_eval_model(model: ModelSpec, adapter_dir: Path | None, dtype: str):
    """The base model, with a LoRA adapter merged in when given (merged weights decode faster), on the GPU where
    there is one (the job's process sees only its own GPU)."""
    from tina_sweep.train import load_model_and_tokenizer

    base, tokenizer = load_model_and_tokenizer(model.name, dtype, model.attn_implementation)
    if torch.cuda.is_available():
        base = base.to("cuda")
    if adapter_dir is not None:
        from peft import PeftModel

        base = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    base.eval()
    tokenizer.padding_side = "left"
    return base, tokenizer


def problem_messages(problem: Problem, prompt: PromptSpec) -> list[dict[str, str]]:
    """The chat for one problem. A multiple-choice problem's user turn is Tina's GPQA template with its options
    (the prompt's template, instruction and few-shot turns are for free-answer math and are left out; its system
    prompt, if any, is kept); any other problem's is ``chat_messages``'s."""
    if not problem.choices:
        return chat_messages(problem.question, prompt)
    if len(problem.choices) != 4:
        raise ValueError(f"{problem.id}: the multiple-choice template shows 4 options, got {len(problem.choices)}")
    options = dict(zip("ABCD", problem.choices))
    user = {"role": "user", "content": MULTIPLE_CHOICE_TEMPLATE.format(Question=problem.question, **options)}
    return ([{"role": "system", "content": prompt.system}] if prompt.system is not None else []) + [user]


def compared_golds(problem: Problem, grader: str) -> list[str]:
    """Each gold as the grader compares it (``normalised_gold``; math_verify: what math-verify reads from it)."""
    if grader == "strict":
        return [normalised_gold(answer) for answer in problem.answers]
    return [str(parsed[0]) for parsed in math_verify_golds(problem.answers, problem.reference)]


def problem_outcome(problem: Problem, samples: list[str], grader: str, truncated: list[bool] | None = None) -> dict:
    """One line of ``eval/<benchmark>.jsonl``: the problem, its golds (as written and as compared), its samples,
    what was read from each and whether it is correct, and the grader; ``truncated``: which samples stopped at
    max_new_tokens. A multiple-choice problem adds its options in the order shown and its gold letter; strict
    grading adds why each wrong sample is wrong (``reasons``)."""
    correct, extracted = grade_samples(samples, problem.answers, grader, multiple_choice=bool(problem.choices),
                                       reference=problem.reference)
    truncated = truncated or [False] * len(samples)
    outcome = {"id": problem.id, "answers": list(problem.answers), "correct": correct,
               "success_rate": sum(correct) / len(correct), "extracted": extracted, "completions": samples,
               "truncated": truncated, "grader": grader}
    if problem.raw_answer is not None:
        outcome["answer_written"] = problem.raw_answer
    if problem.choices:
        outcome.update(choices=list(problem.choices), gold=problem.answers[0])
        return outcome
    outcome["answers_compared"] = compared_golds(problem, grader)
    if grader == "strict":  # why each wrong sample is wrong: a format failure or a wrong answer
        outcome["reasons"] = [None if ok else why_wrong(box, problem.answers, cut)
                              for ok, box, cut in zip(correct, extracted, truncated)]
    return outcome


def score_benchmark(name: str, problems: list[Problem], samples: list[list[str]], n: int, tokens: int,
                    seconds: float, grader: str = "strict", device: str = "",
                    truncated: list[list[bool]] | None = None) -> BenchmarkResult:
    """Grade n samples per problem with ``grader`` and score the benchmark (every backend but LightEval's);
    ``truncated``: per problem, which samples stopped at max_new_tokens."""
    cut = truncated or [None] * len(problems)
    outcomes = [problem_outcome(problem, texts, grader, flags) for problem, texts, flags in zip(problems, samples, cut)]
    return BenchmarkResult(name, pass_at_1([o["correct"] for o in outcomes]), len(problems), n, tokens, seconds,
                           outcomes, device=device, grader=grader)


@torch.inference_mode()
def generate(model, tokenizer, prompts: list[str], spec: EvalSpec, seed: int
             ) -> tuple[list[list[str]], int, list[list[bool]]]:
    """n completions for each prompt in one batch; returns the texts, the number of generated tokens, and which
    completions stopped at max_new_tokens (their last token is neither end-of-sequence nor padding)."""
    n = spec.samples_per_problem
    torch.manual_seed(seed)
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    sampling = {"do_sample": True, "temperature": spec.temperature, "top_p": spec.top_p, "top_k": spec.top_k} \
        if spec.temperature > 0 else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    output = model.generate(**batch, max_new_tokens=spec.max_new_tokens, num_return_sequences=n,
                            pad_token_id=tokenizer.pad_token_id, **sampling)
    new_tokens = output[:, batch["input_ids"].shape[1]:]
    tokens = int((new_tokens != tokenizer.pad_token_id).sum())
    decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    stops = {tokenizer.pad_token_id, *_eos_ids(model, tokenizer)} - {None}
    cut = [new_tokens.shape[1] == spec.max_new_tokens and int(row[-1]) not in stops for row in new_tokens]
    return ([decoded[i:i + n] for i in range(0, len(decoded), n)], tokens,
            [cut[i:i + n] for i in range(0, len(cut), n)])


def _eos_ids(model, tokenizer) -> set[int]:
    """The token ids that end generation: the generation config's (one or a list) and the tokenizer's."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(configured if isinstance(configured, (list, tuple)) else [configured])
    return {i for i in ids | {tokenizer.eos_token_id} if i is not None}


def evaluate_benchmark(model, tokenizer, problems: list[Problem], name: str, prompt: PromptSpec, spec: EvalSpec,
                       seed: int, on_progress: Callable[[int], None] | None = None) -> BenchmarkResult:
    """Generate, grade and score one benchmark."""
    started = time.perf_counter()
    chats = [tokenizer.apply_chat_template(problem_messages(p, prompt), tokenize=False, add_generation_prompt=True)
             for p in problems]
    completions: list[list[str]] = []
    truncated: list[list[bool]] = []
    tokens = 0
    chunk = max(1, spec.batch_size // spec.samples_per_problem)
    for start in range(0, len(chats), chunk):
        texts, used, cut = generate(model, tokenizer, chats[start:start + chunk], spec, seed + start)
        completions.extend(texts)
        truncated.extend(cut)
        tokens += used
        if on_progress:
            on_progress(len(completions))  # problems done so far
    return score_benchmark(name, problems, completions, spec.samples_per_problem, tokens,
                           time.perf_counter() - started, spec.grader, str(model.device), truncated)


def evaluation_prompt(prompt: PromptSpec, spec: EvalSpec) -> PromptSpec:
    """The prompt evaluation uses: ``eval.prompt`` when set (the paper evaluates with its own math template and
    no system prompt), else the trial's training prompt."""
    return spec.prompt if spec.prompt is not None else prompt


def evaluate_model(model_spec: ModelSpec, prompt: PromptSpec, spec: EvalSpec, adapter_dir: Path | None,
                   out_dir: Path, seed: int,
                   on_progress: Callable[[str, int, int], None] | None = None) -> list[BenchmarkResult]:
    """Evaluate a model (optionally with an adapter) on every benchmark with the spec's backend; write
    per-problem outcomes."""
    prompt = evaluation_prompt(prompt, spec)
    if spec.backend == "vllm":
        from tina_sweep.backends.vllm_backend import evaluate_with_vllm

        return evaluate_with_vllm(model_spec, prompt, spec, adapter_dir, out_dir, seed, on_progress)
    if spec.backend == "lighteval":
        from tina_sweep.backends.lighteval_backend import evaluate_with_lighteval

        results = evaluate_with_lighteval(model_spec, prompt, spec, adapter_dir, out_dir, seed, on_progress)
        for result in results:
            result.grader = "lighteval"  # LightEval's own metrics graded these, whatever eval.grader says
        return results
    from tina_sweep.prompts import apply_chat_template_choice

    model, tokenizer = load_eval_model(model_spec, adapter_dir, spec.dtype)
    apply_chat_template_choice(tokenizer, prompt)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for benchmark in spec.benchmarks:
        problems = load_benchmark(benchmark)
        progress = (lambda done, name=benchmark.name, total=len(problems): on_progress(name, done, total)) \
            if on_progress else None
        result = evaluate_benchmark(model, tokenizer, problems, benchmark.name, prompt, spec, seed, progress)
        with open(out_dir / f"{benchmark.name}.jsonl", "w") as handle:
            for outcome in result.outcomes:
                handle.write(json.dumps(outcome) + "\n")
        results.append(result)
    return results


def summary(results: list[BenchmarkResult]) -> dict:
    """JSON-ready per-benchmark numbers (without the per-problem outcomes)."""
    return {r.benchmark: {k: v for k, v in asdict(r).items() if k != "outcomes"} for r in results}
