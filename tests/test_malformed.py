"""Malformed input through the real command line: each case must fail with ONE line on stderr that names what is
wrong (the field or option and the value), a non-zero exit code, and nothing written to the ledger or the sweeps
folder. Passwords in storage URLs never show."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import STUDIES_DIR
from tina_sweep.cli import app

SMOKE = STUDIES_DIR / "smoke.py"
PASSWORD = "s3cret-Pa55"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "240"})


@dataclass
class Case:
    id: str
    study: str | None  # the body of a study file (after `from tina_sweep import Study`); None: the smoke study
    args: list[str] = field(default_factory=list)  # extra options for `run`; {tmp} is the test's folder
    expect: list[str] = field(default_factory=list)  # fragments the one error line must contain
    files: dict[str, str] = field(default_factory=dict)  # extra files to write under {tmp}


def _rank(extra: str = "", axes: str = '{"lora.rank": [2]}', name: str = "bad") -> str:
    return f'study = Study(name="{name}", axes={axes}{", " + extra if extra else ""})\n'


GOOD_ROWS = '{"question": "What is 1 + 1?", "answer": "2"}\n{"question": "What is 2 + 2?", "answer": "4"}\n'

CASES = [
    # ---- the study file itself
    Case("syntax-error", 'study = Study(name="x", axes={"lora.rank": [2, 4]]\n', expect=["study.py:2: syntax error"]),
    Case("no-study-variable", 'studi = Study(name="x", axes={"lora.rank": [2]})\n',
         expect=["defines no `study = Study(...)`"]),
    Case("study-is-a-dict", 'study = {"name": "x", "axes": {"lora.rank": [2]}}\n', expect=["defines no `study"]),
    Case("name-error-at-import", 'study = Study(name="x", axes={"lora.rank": RANKS})\n',
         expect=["NameError", "'RANKS' is not defined"]),
    Case("missing-study-file", None, args=["--study-file-override", "{tmp}/nothing.py"],
         expect=["nothing.py: no such study file"]),
    # ---- unknown fields, top level and nested
    Case("unknown-top-level-field", _rank("seed=[1, 2]"), expect=["Study.seed: unknown field"]),
    Case("unknown-nested-field", _rank('base={"algorithm.scale_reward": True}'),
         expect=["algorithm.scale_reward: unknown field"]),
    Case("unknown-field-in-axis", _rank(axes='{"lora.rnak": [2, 4]}'), expect=["lora.rnak: unknown field"]),
    Case("unknown-section", _rank(axes='{"optimizer.lr": [0.1]}'), expect=["optimizer: unknown field"]),
    Case("unknown-scale-override", _rank('scales={"gpu": {}}'), expect=["Study.scales", "unknown scale 'gpu'"]),
    Case("unknown-field-in-scale-override", _rank('scales={"smoke": {"axis": {}}}'),
         expect=["Study.scales.smoke.axis: unknown field"]),
    # ---- wrong types
    Case("rank-is-a-string", _rank(axes='{"lora.rank": ["8"]}'), expect=["lora.rank: must be an integer, got '8'"]),
    Case("rank-is-a-float", _rank(axes='{"lora.rank": [2.5]}'), expect=["lora.rank: must be an integer, got 2.5"]),
    Case("axis-is-not-a-list", _rank(axes='{"lora.rank": 8}'), expect=["Study.axes.lora.rank", "list", "got 8"]),
    Case("seeds-are-strings", _rank('seeds=["a"]'), expect=["Study.seeds.0", "'a'"]),
    Case("design-unknown", _rank('design="random"'), expect=["Study.design", "'random'"]),
    Case("section-is-a-value", _rank('base={"lora": 2}'), expect=["lora.rank: 'lora' is a value, not a section (it is 2)"]),
    Case("section-is-a-value-no-axis", _rank('base={"lora": 2}', axes='{"training.max_steps": [1]}'),
         expect=["lora: must be a mapping of fields, got 2"]),
    Case("bad-study-name", 'study = Study(name="bad name!", axes={"lora.rank": [2]})\n',
         expect=["Study.name", "'bad name!'"]),
    Case("learning-rate-is-a-word", _rank('base={"training.learning_rate": "fast"}'),
         expect=["training.learning_rate: must be a number, got 'fast'"]),
    # ---- empty and duplicate axes, equal trials
    Case("no-axes", 'study = Study(name="bad", axes={})\n', expect=["Study.axes: must not be empty"]),
    Case("empty-axis", _rank(axes='{"lora.rank": []}'), expect=["axis 'lora.rank' has no values"]),
    Case("duplicate-axis-value", _rank(axes='{"lora.rank": [2, 4, 2]}'),
         expect=["axis 'lora.rank' repeats a value: [2, 4, 2]"]),
    Case("two-values-same-trial", _rank(axes='{"training.learning_rate": [1, 1.0]}'),
         expect=["{'training.learning_rate': 1}", "{'training.learning_rate': 1.0}", "resolve to the same trial"]),
    Case("seed-as-axis", _rank(axes='{"seed": [1, 2]}'), expect=["seed: set seeds with Study(seeds=[...])"]),
    Case("empty-seeds", _rank("seeds=[]"), expect=["Study.seeds: must not be empty"]),
    # ---- out-of-range numbers
    Case("rank-zero", _rank(axes='{"lora.rank": [0, 2]}'), expect=["lora.rank: must be a positive integer, got 0"]),
    Case("rank-negative", _rank(axes='{"lora.rank": [-3]}'), expect=["lora.rank: must be a positive integer, got -3"]),
    Case("lr-zero", _rank('base={"training.learning_rate": 0}'),
         expect=["training.learning_rate: must be positive, got 0"]),
    Case("lr-negative", _rank(axes='{"training.learning_rate": [1e-3, -1e-4]}'),
         expect=["training.learning_rate: must be positive, got -0.0001"]),
    Case("temperature-zero", _rank('base={"algorithm.temperature": 0}'),
         expect=["algorithm.temperature: must be positive, got 0"]),
    Case("temperature-negative", _rank('base={"algorithm.temperature": -0.5}'),
         expect=["algorithm.temperature: must be positive, got -0.5"]),
    Case("eval-temperature-negative", _rank('base={"eval.temperature": -1}'),
         expect=["eval.temperature", "got -1"]),
    Case("max-steps-zero", _rank('base={"training.max_steps": 0}'), expect=["training.max_steps", "got 0"]),
    Case("negative-seed", _rank("seeds=[-1]"), expect=["seed", "got -1"]),
    Case("dropout-one", _rank('base={"lora.dropout": 1.0}'), expect=["lora.dropout: must be less than 1, got 1.0"]),
    Case("num-generations-one", _rank('base={"algorithm.num_generations": 1}'),
         expect=["algorithm.num_generations", "got 1"]),
    Case("top-p-above-one", _rank('base={"algorithm.top_p": 1.5}'), expect=["algorithm.top_p", "got 1.5"]),
    Case("eval-limit-zero", _rank('base={"eval.benchmarks": [{"name": "arithmetic", "limit": 0}]}'),
         expect=["eval.benchmarks.0.limit: must be a positive integer, got 0"]),
    # ---- unknown catalogs
    Case("unknown-dataset", _rank('base={"dataset.name": "nope"}'), expect=["dataset.name: unknown training set 'nope'"]),
    Case("unknown-benchmark", _rank('base={"eval.benchmarks": [{"name": "aime2024"}]}'),
         expect=["eval.benchmarks.0.name: unknown benchmark 'aime2024'"]),
    Case("unknown-reward", _rank('base={"algorithm.rewards": [{"name": "bogus"}]}'),
         expect=["algorithm.rewards.0.name", "'bogus'"]),
    Case("unknown-algorithm", _rank(axes='{"algorithm.name": ["grpo", "ppo"]}'),
         expect=["algorithm.name: must be 'grpo', 'dr_grpo' or 'dapo', got 'ppo'"]),
    Case("unknown-model", _rank('base={"model.name": "no-such-model"}'),
         expect=["model.name: unknown model 'no-such-model'"]),
    Case("missing-model-directory", _rank('base={"model.name": "./models/not-here"}'),
         expect=["model.name: no such model directory './models/not-here'"]),
    Case("model-directory-without-config", _rank('base={"model.name": "{tmp}/emptymodel"}'),
         files={"emptymodel/README": "no weights here"}, expect=["model.name:", "emptymodel", "config.json"]),
    # ---- the user's own data files
    Case("dataset-file-missing", _rank('base={"dataset": {"name": "mine", "path": "{tmp}/missing.jsonl"}}'),
         expect=["dataset.path:", "missing.jsonl: no such file"]),
    Case("dataset-bad-json-line", _rank('base={"dataset": {"name": "mine", "path": "{tmp}/bad.jsonl"}}'),
         files={"bad.jsonl": GOOD_ROWS + '{"question": "What is 3 + 3?", "answer": \n'},
         expect=["dataset.path:", "bad.jsonl: line 3 is not valid JSON"]),
    Case("dataset-row-without-answer", _rank('base={"dataset": {"name": "mine", "path": "{tmp}/noanswer.jsonl"}}'),
         files={"noanswer.jsonl": GOOD_ROWS + '{"question": "What is 3 + 3?", "solution": "6"}\n'},
         expect=["dataset.path:", "noanswer.jsonl: line 3 has no field 'answer'"]),
    Case("dataset-renamed-field-missing",
         _rank('base={"dataset": {"name": "mine", "path": "{tmp}/rows.jsonl", "question_field": "q"}}'),
         files={"rows.jsonl": GOOD_ROWS}, expect=["dataset.path:", "line 1 has no field 'q'"]),
    Case("dataset-empty-answer", _rank('base={"dataset": {"name": "mine", "path": "{tmp}/empty_answer.jsonl"}}'),
         files={"empty_answer.jsonl": GOOD_ROWS + '{"question": "What is 3 + 3?", "answer": ""}\n'},
         expect=["dataset.path:", "line 3: unreadable answer: empty answer"]),
    Case("dataset-row-not-an-object", _rank('base={"dataset": {"name": "mine", "path": "{tmp}/list_row.jsonl"}}'),
         files={"list_row.jsonl": '[1, 2]\n'}, expect=["dataset.path:", "line 1 is not an object", "[1, 2]"]),
    Case("dataset-empty-file", _rank('base={"dataset": {"name": "mine", "path": "{tmp}/empty.jsonl"}}'),
         files={"empty.jsonl": "\n"}, expect=["dataset.path:", "empty.jsonl: has no rows"]),
    Case("dataset-json-not-a-list", _rank('base={"dataset": {"name": "mine", "path": "{tmp}/rows.json"}}'),
         files={"rows.json": '{"question": "q", "answer": "1"}'},
         expect=["dataset.path:", "rows.json: a .json file must hold a list of rows, got dict"]),
    Case("dataset-json-broken", _rank('base={"dataset": {"name": "mine", "path": "{tmp}/broken.json"}}'),
         files={"broken.json": '[{"question": "q", "answer": "1"},'},
         expect=["dataset.path:", "broken.json: not valid JSON"]),
    Case("benchmark-row-without-question",
         _rank('base={"eval.benchmarks": [{"name": "mine", "path": "{tmp}/bench.jsonl"}]}'),
         files={"bench.jsonl": '{"problem": "What is 1 + 1?", "answer": "2"}\n'},
         expect=["eval.benchmarks.0.path:", "bench.jsonl: line 1 has no field 'question'"]),
    Case("benchmark-gsm8k-answer-without-marker",
         _rank('base={"eval.benchmarks": [{"name": "mine", "path": "{tmp}/gsm.jsonl", "answer_format": "gsm8k"}]}'),
         files={"gsm.jsonl": '{"question": "What is 1 + 1?", "answer": "2"}\n'},
         expect=["eval.benchmarks.0.path:", "line 1: unreadable answer: no '#### answer' line"]),
    # ---- options
    Case("scale-unknown", None, args=["--scale", "huge"], expect=["--scale", "'huge'"]),
    Case("workers-zero", None, args=["--workers", "0"], expect=["--workers", "got 0"]),
    Case("workers-not-a-number", None, args=["--workers", "two"], expect=["--workers", "got two"]),
    Case("max-retries-negative", None, args=["--max-retries", "-1"], expect=["--max-retries", "got -1"]),
    Case("threads-zero", None, args=["--threads-per-worker", "0"], expect=["--threads-per-worker", "got 0"]),
    Case("eval-checkpoints-negative", None, args=["--eval-checkpoints", "-2"], expect=["--eval-checkpoints", "got -2"]),
    Case("wandb-mode-unknown", None, args=["--wandb", "maybe"], expect=["--wandb", "'maybe'"]),
    Case("unknown-option", None, args=["--worker", "2"], expect=["No such option: --worker"]),
    Case("prices-file-missing", None, args=["--prices", "{tmp}/nope.json"], expect=["--prices", "nope.json: no such file"]),
    Case("prices-not-json", None, args=["--prices", "{tmp}/p.json"], files={"p.json": "cpu: 1"},
         expect=["--prices", "p.json: not valid JSON"]),
    Case("prices-a-list", None, args=["--prices", "{tmp}/p.json"], files={"p.json": "[1, 2]"},
         expect=["--prices", "must hold a JSON object", "[1, 2]"]),
    Case("prices-negative", None, args=["--prices", "{tmp}/p.json"], files={"p.json": '{"cpu": -1}'},
         expect=["--prices", "'cpu': must be a non-negative number of dollars per device-hour, got -1"]),
    Case("prices-a-word", None, args=["--prices", "{tmp}/p.json"], files={"p.json": '{"NVIDIA H100": "cheap"}'},
         expect=["--prices", "'NVIDIA H100'", 'got "cheap"']),
    Case("prices-not-finite", None, args=["--prices", "{tmp}/p.json"], files={"p.json": '{"cpu": NaN}'},
         expect=["--prices", "'cpu'", "got NaN"]),
    Case("prices-boolean", None, args=["--prices", "{tmp}/p.json"], files={"p.json": '{"cpu": true}'},
         expect=["--prices", "'cpu'", "got true"]),
    # ---- the ledger's storage
    Case("storage-empty", None, args=["--storage", " "], expect=["--storage: empty"]),
    Case("storage-not-a-url", None, args=["--storage", "my ledger"], expect=["--storage 'my ledger': not a storage URL"]),
    Case("storage-unknown-database", None, args=["--storage", f"mongodb://tina:{PASSWORD}@localhost/ledger"],
         expect=["--storage mongodb://tina:***@localhost/ledger: unknown database type 'mongodb'"]),
    Case("storage-journal-is-a-directory", None, args=["--storage", "{tmp}/dir.journal"], files={"dir.journal/x": ""},
         expect=["--storage", "dir.journal: is a directory"]),
    Case("storage-sqlite-unopenable", None, args=["--storage", "sqlite:////nonexistent-dir/ledger.db"],
         expect=["--storage sqlite:////nonexistent-dir/ledger.db: cannot open the ledger", "unable to open database file"]),
    Case("storage-sqlite-no-file", None, args=["--storage", "sqlite://"],
         expect=["--storage sqlite://: an in-memory SQLite database, which vanishes when the run ends"]),
    Case("storage-sqlite-memory", None, args=["--storage", "sqlite:///:memory:"],
         expect=["--storage sqlite:///:memory:: an in-memory SQLite database"]),
    Case("storage-sqlite-memory-uri", None, args=["--storage", "sqlite:///file:ledger?mode=memory&uri=true"],
         expect=["--storage sqlite:///file:ledger?mode=memory&uri=true: an in-memory SQLite database"]),
    # ---- numbers that are not finite numbers
    Case("lr-is-a-numeric-string", _rank('base={"training.learning_rate": "1e-4"}'),
         expect=["training.learning_rate: must be a number, got '1e-4'"]),
    Case("lr-is-a-bool", _rank('base={"training.learning_rate": True}'),
         expect=["training.learning_rate: must be a number, got True"]),
    Case("lr-infinite", _rank('base={"training.learning_rate": float("inf")}'),
         expect=["training.learning_rate: must be a finite number, got inf"]),
    Case("lr-nan", _rank(axes='{"training.learning_rate": [1e-3, float("nan")]}'),
         expect=["training.learning_rate: must be a finite number, got nan"]),
    Case("reward-weight-nan", _rank('base={"algorithm.rewards": [{"name": "accuracy", "weight": float("nan")}]}'),
         expect=["algorithm.rewards.0.weight: must be a finite number, got nan"]),
    Case("reward-weight-infinite",
         _rank('base={"algorithm.rewards": [{"name": "accuracy"}, {"name": "length", "weight": -float("inf")}]}'),
         expect=["algorithm.rewards.1.weight: must be a finite number, got -inf"]),
    Case("reward-weight-a-string", _rank('base={"algorithm.rewards": [{"name": "accuracy", "weight": "2"}]}'),
         expect=["algorithm.rewards.0.weight: must be a number, got '2'"]),
    Case("reward-param-nan",
         _rank('base={"algorithm.rewards": [{"name": "cosine", "params": {"max_len": float("nan")}}]}'),
         expect=["algorithm.rewards.0.params.max_len: must be a finite number, got nan"]),
    # ---- LoRA against the rule and the model
    Case("alpha-rounds-to-zero", _rank('base={"lora.alpha_per_rank": 0.1}'),
         expect=["lora.alpha_per_rank: 0.1 x rank 2 rounds lora_alpha to 0", "got 0.1"]),
    Case("rank-above-hidden-size", _rank(axes='{"lora.rank": [2, 128]}'),
         expect=["lora.rank: must not exceed the hidden size of model 'tiny-random-qwen2' (64), got 128"]),
    Case("unknown-target-module", _rank('base={"lora.target_modules": ["q_proj", "qkv_proj"]}'),
         expect=["lora.target_modules: 'qkv_proj' names no layer of model 'tiny-random-qwen2'", "q_proj, up_proj",
                 "got ['q_proj', 'qkv_proj']"]),
    Case("target-module-not-a-layer", _rank('base={"lora.target_modules": ["mlp"]}'),
         expect=["lora.target_modules: 'mlp' names no layer of model 'tiny-random-qwen2'"]),
    # ---- prompts
    Case("chat-template-does-not-compile", _rank('base={"prompt.chat_template": "{% for m in messages %}{{ m }"}'),
         expect=["prompt.chat_template: not a valid Jinja template (line 1: unexpected '}')",
                 "got '{% for m in messages %}{{ m }'"]),
    Case("eval-chat-template-does-not-render",
         _rank('base={"eval.prompt": {"chat_template": "{{ messages[0].content + 1 }}"}}'),
         expect=["eval.prompt.chat_template: fails to render a conversation (TypeError:",
                 "got '{{ messages[0].content + 1 }}'"]),
    # ---- data: too little, nulls, names, the hub
    Case("dataset-smaller-than-a-step",
         _rank('base={"dataset": {"name": "mine", "path": "{tmp}/two.jsonl"}, "training.prompts_per_step": 4}'),
         files={"two.jsonl": GOOD_ROWS},
         expect=["dataset.path: 2 training problem(s), fewer than one optimizer step takes (training.prompts_per_step "
                 "4 x training.gradient_accumulation_steps 1 = 4)", "two.jsonl'"]),
    Case("dataset-limit-smaller-than-a-step",
         _rank('base={"dataset.limit": 3, "training.prompts_per_step": 2, "training.gradient_accumulation_steps": 2}'),
         expect=["dataset.limit: 3 training problem(s), fewer than one optimizer step takes", "= 4), got 3"]),
    Case("dataset-null-question", _rank('base={"dataset": {"name": "mine", "path": "{tmp}/nullq.jsonl"}}'),
         files={"nullq.jsonl": GOOD_ROWS + '\n{"question": null, "answer": "6"}\n'},
         expect=["dataset.path:", "nullq.jsonl: line 4: field 'question' is null"]),
    Case("dataset-null-answer", _rank('base={"dataset": {"name": "mine", "path": "{tmp}/nulla.jsonl"}}'),
         files={"nulla.jsonl": GOOD_ROWS + '{"question": "What is 3 + 3?", "answer": null}\n'},
         expect=["dataset.path:", "nulla.jsonl: line 3: field 'answer' is null"]),
    Case("benchmark-null-in-joined-question",
         _rank('base={"eval.benchmarks": [{"name": "mine", "path": "{tmp}/b.json", "question_field": "a+b"}]}'),
         files={"b.json": '[{"a": "Tom has 3.", "b": "How many?", "answer": "3"}, {"a": "x", "b": null, "answer": "1"}]'},
         expect=["eval.benchmarks.0.path:", "b.json: row 1: field 'b' is null"]),
    Case("benchmark-null-in-answer-list",
         _rank('base={"eval.benchmarks": [{"name": "mine", "path": "{tmp}/l.jsonl", "answer_format": "list"}]}'),
         files={"l.jsonl": '{"question": "q", "answer": ["1", null]}\n'},
         expect=["eval.benchmarks.0.path:", "line 1: unreadable answer: answer 1 of the list is empty"]),
    Case("duplicate-benchmark", _rank('base={"eval.benchmarks": [{"name": "arithmetic", "limit": 4}, '
                                      '{"name": "arithmetic", "limit": 8}]}'),
         expect=["eval.benchmarks: benchmark 'arithmetic' is listed twice"]),
    Case("duplicate-benchmark-up-to-case",
         _rank('base={"eval.benchmarks": [{"name": "Mine", "path": "{tmp}/a.jsonl"}, '
               '{"name": "mine", "path": "{tmp}/b.jsonl"}]}'),
         expect=["eval.benchmarks: benchmark 'Mine' is listed twice (as 'Mine' and 'mine')"]),
    Case("benchmark-name-escapes-the-folder",
         _rank('base={"eval.benchmarks": [{"name": "../../escape", "path": "{tmp}/good.jsonl"}]}'),
         files={"good.jsonl": GOOD_ROWS},
         expect=["eval.benchmarks.0.name: must be a plain file name", "got '../../escape'"]),
    Case("benchmark-name-with-a-slash",
         _rank('base={"eval.benchmarks": [{"name": "sub/bench", "path": "{tmp}/good.jsonl"}]}'),
         files={"good.jsonl": GOOD_ROWS}, expect=["eval.benchmarks.0.name: must be a plain file name", "got 'sub/bench'"]),
    Case("dataset-name-dot-dot", _rank('base={"dataset": {"name": "..", "path": "{tmp}/good.jsonl"}}'),
         files={"good.jsonl": GOOD_ROWS}, expect=["dataset.name: must be a plain file name", "got '..'"]),
    Case("hub-only-benchmark-offline", _rank('base={"eval.benchmarks": [{"name": "arithmetic", "limit": 4}, '
                                             '{"name": "gpqa_diamond"}]}'),
         expect=["eval.benchmarks.1.name: 'gpqa_diamond' lives on the Hugging Face hub only (Idavidrein/gpqa)",
                 "give a local copy with path"]),
    Case("hub-only-training-set-offline", _rank('base={"dataset.name": "deepscaler"}'),
         expect=["dataset.name: 'deepscaler' lives on the Hugging Face hub only"]),
    # ---- the study file's own kind and behaviour
    Case("study-file-not-python", None, args=["--study-file-override", "{tmp}/study.txt"],
         files={"study.txt": "from tina_sweep import Study\n" + _rank()},
         expect=["study.txt: a study file is a Python file whose name ends in .py, got 'study.txt'"]),
    Case("study-file-exits-zero", 'raise SystemExit(0)\n',
         expect=["study.py: exits while being loaded (SystemExit(0))", "must only define `study = Study(...)`"]),
    Case("study-file-calls-sys-exit", 'import sys\n' + _rank() + 'sys.exit("done")\n',
         expect=["study.py: exits while being loaded (SystemExit('done'))"]),
]


def _materialize(case: Case, tmp_path: Path) -> list[str]:
    """Write the case's files and study; return the `run` arguments."""
    tmp = str(tmp_path)
    for name, text in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{tmp}", tmp))
    args = [a.replace("{tmp}", tmp) for a in case.args]
    study_file = SMOKE
    if "--study-file-override" in args:
        index = args.index("--study-file-override")
        study_file = args[index + 1]
        del args[index:index + 2]
    elif case.study is not None:
        study_file = tmp_path / "study.py"
        study_file.write_text("from tina_sweep import Study\n" + case.study.replace("{tmp}", tmp))
    if "--scale" not in args:
        args = ["--scale", "smoke", *args]
    return ["run", str(study_file), *args, "--sweeps-dir", str(tmp_path / "sweeps")]


def assert_one_line_failure(result, expect: list[str], secrets: tuple[str, ...] = (PASSWORD,)) -> str:
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    line = lines[0]
    assert line.startswith("error: "), line
    for fragment in expect:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert "Traceback" not in result.output
    for secret in secrets:
        assert secret not in result.output
    return line


def test_at_least_thirty_cases():
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_malformed_input(case, tmp_path):
    args = _materialize(case, tmp_path)
    result = invoke(*args)
    assert_one_line_failure(result, case.expect)
    assert result.stdout.strip() == "", result.stdout
    assert not (tmp_path / "sweeps").exists(), "something was written to the sweeps folder"


# ------------------------------------------------------------------ storage that cannot be reached

@pytest.mark.parametrize("url", [
    f"postgresql://tina:{PASSWORD}@127.0.0.1:1/ledger",
    f"postgresql+psycopg2://tina:{PASSWORD}@127.0.0.1:1/ledger",
])
def test_unreachable_postgres_fails_fast_and_masked(url, tmp_path):
    if "psycopg2" in url:
        pytest.importorskip("psycopg2", reason="the postgres extra (psycopg2-binary) is not installed")
    result = invoke("run", SMOKE, "--scale", "smoke", "--sweeps-dir", tmp_path / "sweeps", "--storage", url)
    line = assert_one_line_failure(result, ["--storage postgresql", "tina:***@127.0.0.1:1/ledger"])
    # fails on the first refused connection (no retry loop, no timeout): the reason is the refusal itself
    if "psycopg2" in url:
        assert "cannot open the ledger" in line and "Connection refused" in line
    else:  # the driver SQLAlchemy picks for postgresql:// may be missing: that is the one line then
        assert "cannot open the ledger" in line or "database driver is not installed" in line
    assert not (tmp_path / "sweeps").exists()


@pytest.mark.parametrize("command", ["run", "status"])
def test_missing_database_driver_is_one_line_naming_the_extra(command, tmp_path):
    """mysql+pymysql:// with pymysql absent: the driver is missing; the line says so and how to get one."""
    url = f"mysql+pymysql://tina:{PASSWORD}@127.0.0.1:1/ledger"
    args = ["--scale", "smoke", "--sweeps-dir", tmp_path / "sweeps"] if command == "run" else []
    result = invoke(command, SMOKE, *args, "--storage", url)
    assert_one_line_failure(result, ["driver is not installed", "tina:***@127.0.0.1:1/ledger"])
    assert not (tmp_path / "sweeps").exists()


# ------------------------------------------------------------------ one name, one study

def _ledger_state(sweep: Path) -> tuple:
    import optuna

    from tina_sweep.ledger.store import open_storage

    study = optuna.load_study(study_name=sweep.name, storage=open_storage(None, sweep))  # reads only
    trials = [(t.number, t.state.name, t.user_attrs.get("trial_id")) for t in study.get_trials()]
    return trials, dict(study.user_attrs)


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _seed_ledger(sweep_dir: Path, axes: dict, name: str = "clash") -> list[str]:
    """What `run` does before training: check and record the definition, write study.json, enqueue the jobs."""
    from tina_sweep.ledger.store import Ledger
    from tina_sweep.run.preflight import guard_ledger
    from tina_sweep.run.runner import study_jobs
    from tina_sweep.study.study import Study, resolve

    study = Study(name=name, axes=axes)
    jobs = study_jobs(study, resolve(study, "smoke"))
    guard_ledger(study, "smoke", [j.trial_id for j in jobs], None, sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "study.json").write_text(json.dumps({"study": study.model_dump(mode="json"), "scale": "smoke"}))
    Ledger(name, None, sweep_dir).sync({j.trial_id: j.to_json() for j in jobs})
    return [j.trial_id for j in jobs]


def test_study_name_clash_is_refused_and_nothing_changes(tmp_path):
    sweeps = tmp_path / "sweeps"
    _seed_ledger(sweeps / "clash", {"lora.rank": [2, 4]})
    before_ledger, before_files = _ledger_state(sweeps / "clash"), _tree(sweeps)
    other = tmp_path / "other.py"
    other.write_text(textwrap.dedent("""
        from tina_sweep import Study

        study = Study(name="clash", axes={"training.learning_rate": [1e-3, 3e-3]})
        """))
    result = invoke("run", other, "--scale", "smoke", "--sweeps-dir", sweeps)
    line = assert_one_line_failure(result, [
        "clash: the ledger", "already holds a study named 'clash' at scale smoke with other trials",
        "give this study another name", "--redefine"])
    assert "rank=2-s42-" in line or "rank=4-s42-" in line  # names a trial it would orphan
    assert _ledger_state(sweeps / "clash") == before_ledger
    assert _tree(sweeps) == before_files


def test_same_name_edits_that_only_add_or_drop_trials_are_the_same_study(tmp_path):
    from tina_sweep.trial.spec import ConfigError
    from tina_sweep.run.preflight import DEFINITION_KEY, guard_ledger
    from tina_sweep.run.runner import study_jobs
    from tina_sweep.study.study import Study, resolve

    sweep = tmp_path / "clash"
    first = _seed_ledger(sweep, {"lora.rank": [2, 4]})

    def ids(axes):
        study = Study(name="clash", axes=axes)
        return study, [j.trial_id for j in study_jobs(study, resolve(study, "smoke"))]

    bigger, bigger_ids = ids({"lora.rank": [2, 4, 8]})
    guard_ledger(bigger, "smoke", bigger_ids, None, sweep)  # an added axis value: fine
    smaller, smaller_ids = ids({"lora.rank": [2]})
    guard_ledger(smaller, "smoke", smaller_ids, None, sweep)  # a dropped one: fine
    other, other_ids = ids({"lora.rank": [16]})
    guard_ledger(other, "cpu", other_ids, None, sweep)  # another scale has its own record
    with pytest.raises(ConfigError, match="already holds a study named 'clash' at scale smoke"):
        guard_ledger(other, "smoke", other_ids, None, sweep)
    guard_ledger(other, "smoke", other_ids, None, sweep, redefine=True)
    _, attrs = _ledger_state(sweep)
    assert attrs[DEFINITION_KEY.format(scale="smoke")] == sorted(other_ids)
    assert set(first) != set(other_ids)


def test_clash_in_a_database_ledger(tmp_path):
    """The same check where the ledger is a database URL (sqlite here; PostgreSQL behaves the same)."""
    from tina_sweep.ledger.store import Ledger
    from tina_sweep.run.preflight import guard_ledger
    from tina_sweep.run.runner import study_jobs
    from tina_sweep.study.study import Study, resolve

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    study = Study(name="smoke", axes={"lora.rank": [8, 16]})
    jobs = study_jobs(study, resolve(study, "smoke"))
    guard_ledger(study, "smoke", [j.trial_id for j in jobs], url, tmp_path / "unused")
    Ledger("smoke", url, tmp_path / "unused").sync({j.trial_id: j.to_json() for j in jobs})
    size = (tmp_path / "ledger.db").stat().st_size
    result = invoke("run", SMOKE, "--scale", "smoke", "--sweeps-dir", tmp_path / "sweeps", "--storage", url)
    assert_one_line_failure(result, [f"the ledger {url} already holds a study named 'smoke'"])
    assert not (tmp_path / "sweeps").exists()
    assert (tmp_path / "ledger.db").stat().st_size == size
    assert len(Ledger("smoke", url, tmp_path / "unused").attempts()) == 3


# ------------------------------------------------------------------ the plan command shares the checks

def test_plan_reports_the_same_one_line_error(tmp_path):
    study = tmp_path / "study.py"
    study.write_text("from tina_sweep import Study\n" + _rank('base={"algorithm.scale_reward": True}'))
    result = invoke("plan", study, "--scale", "smoke")
    assert_one_line_failure(result, ["bad: algorithm.scale_reward: unknown field (check its spelling)"])
    result = invoke("plan", study, "--scale", "huge")
    assert_one_line_failure(result, ["--scale", "'huge'"])


# ------------------------------------------------------------------ secrets: a password in the storage URL

def _postgres_binary(name: str) -> str | None:
    import glob
    import shutil

    return shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL server whose user needs a password: the URL to it carries PASSWORD."""
    import os
    import pwd
    import shutil
    import socket
    import subprocess
    import tempfile

    pytest.importorskip("psycopg2", reason="the postgres extra (psycopg2-binary) is not installed")
    initdb, pg_ctl = _postgres_binary("initdb"), _postgres_binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="tina-pg-"))
    (root / "pw").write_text(PASSWORD)
    owner = None
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        for path in (root, root / "pw"):
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def as_user():
        if owner is not None:
            os.setgid(owner.pw_gid)
            os.setuid(owner.pw_uid)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = root / "data"
    run = dict(capture_output=True, text=True, preexec_fn=as_user, timeout=120)
    made = subprocess.run([initdb, "-D", str(data), "-U", "tina", "--auth=scram-sha-256", f"--pwfile={root / 'pw'}"],
                          **run)
    if made.returncode != 0:
        pytest.skip(f"initdb failed: {made.stderr.strip()[-200:]}")
    started = subprocess.run([pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "-o",
                              f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"], **run)
    if started.returncode != 0:
        pytest.skip(f"PostgreSQL did not start: {started.stderr.strip()[-200:]}")
    try:
        yield f"postgresql+psycopg2://tina:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([pg_ctl, "-D", str(data), "-m", "immediate", "stop"], **run)
        shutil.rmtree(root, ignore_errors=True)


def test_password_never_printed_nor_written(postgres_url, tmp_path, tiny_model_dir):
    """A smoke study run against a ledger whose URL carries a password (W&B offline on, report written), then
    `status`, a `worker` that finds nothing to do, a launch dry run and a wrong password: the password appears in
    no output and in no file of the sweep folder (trial folders, study.json, result.json, results, report, W&B
    run files)."""
    masked = postgres_url.replace(PASSWORD, "***")
    sweeps = tmp_path / "sweeps"
    wandb = ["--wandb", "offline"] if __import__("importlib").util.find_spec("wandb") else []
    outputs = {}
    result = invoke("run", SMOKE, "--scale", "smoke", "--sweeps-dir", sweeps, "--storage", postgres_url, *wandb)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert masked in " ".join(result.stdout.split())  # the ledger line shows where, masked
    outputs["run"] = result.output
    for name, args in {
        "status": ["status", "smoke", "--sweeps-dir", sweeps, "--storage", postgres_url],
        "worker": ["worker", SMOKE, "--scale", "smoke", "--sweeps-dir", sweeps, "--storage", postgres_url],
        "launch": ["launch", "slurm", SMOKE, "--scale", "smoke", "--sweeps-dir", sweeps, "--storage", postgres_url,
                   "--workers", "2", "--dry-run"],
        "wrong-password": ["status", "smoke", "--sweeps-dir", sweeps, "--storage",
                           postgres_url.replace(PASSWORD, PASSWORD + "-wrong")],
    }.items():
        outcome = invoke(*args)
        outputs[name] = outcome.output
        if name != "wrong-password":
            assert outcome.exit_code == 0, f"{name}: {outcome.output}"
    assert "***" in outputs["status"] and "***" in outputs["launch"]
    wrong = [line for line in outputs["wrong-password"].splitlines() if line.strip()]
    assert len(wrong) == 1 and wrong[0].startswith("error: ") and "password authentication failed" in wrong[0]
    for name, text in outputs.items():
        assert PASSWORD not in text, f"the password shows in the output of {name}"
    files = [p for p in sweeps.rglob("*") if p.is_file()]
    assert any(p.name == "result.json" for p in files) and (sweeps / "smoke" / "study.json").is_file()
    assert (sweeps / "smoke" / "report").is_dir()
    if wandb:
        assert any("wandb" in p.parts for p in files)
    leaks = [str(p) for p in files if PASSWORD.encode() in p.read_bytes()]
    assert not leaks, f"the password was written to {leaks}"


# ------------------------------------------------------------------ backends that cannot run here

LIGHTEVAL = {"eval.backend": "lighteval", "eval.benchmarks": [{"name": "aime24"}]}
BACKEND_CASES = {  # id: (base fields, what is installed (vllm, lighteval, CUDA GPU), the error)
    "vllm-not-installed": ({"eval.backend": "vllm"}, (False, True, True),
                           "eval.backend: 'vllm' cannot run here: the vllm package is not installed"),
    "vllm-without-gpu": ({"eval.backend": "vllm"}, (True, True, False),
                         "eval.backend: 'vllm' cannot run here: it needs a CUDA GPU and this machine has none"),
    "lighteval-not-importable": (LIGHTEVAL, (True, False, True), "eval.backend: 'lighteval' cannot run here:"),
    "lighteval-benchmark-it-has-no-task-for": (
        {**LIGHTEVAL, "eval.benchmarks": [{"name": "aime24"}, {"name": "gsm8k"}]}, (True, True, True),
        "eval.benchmarks: gsm8k: no LightEval task (supported: aime24, aime25, amc23, math500, minerva, gpqa_diamond)"
        " (eval.backend 'lighteval')"),
    "vllm-rollouts-without-gpu": ({"algorithm.use_vllm": True}, (True, True, False),
                                  "algorithm.use_vllm: True cannot run here: it needs a CUDA GPU"),
}


@pytest.mark.parametrize("case", sorted(BACKEND_CASES))
def test_backend_that_cannot_run_here_is_one_line_before_anything_runs(case, tmp_path, monkeypatch):
    """What is installed is stubbed, so the outcome is the same on a machine with vLLM and a GPU."""
    import tina_sweep.run.preflight as preflight

    base, (vllm, lighteval, gpu), message = BACKEND_CASES[case]
    monkeypatch.delenv("TINA_SWEEP_VLLM_MODULE", raising=False)
    monkeypatch.setattr(preflight, "module_available", lambda name: vllm if name == "vllm" else True)
    monkeypatch.setattr(preflight, "lighteval_importable", lambda python: lighteval)
    monkeypatch.setattr(preflight, "cuda_available", lambda: gpu)
    study = tmp_path / "study.py"
    study.write_text("from tina_sweep import Study\n" + _rank(f"base={base!r}"))
    result = invoke("run", study, "--scale", "smoke", "--sweeps-dir", tmp_path / "sweeps")
    assert_one_line_failure(result, [f"bad: {message}"])
    assert not (tmp_path / "sweeps").exists()


def test_a_stand_in_vllm_engine_needs_no_gpu(monkeypatch):
    """TINA_SWEEP_VLLM_MODULE (tests/fake_vllm.py) is how the pipeline runs without a GPU: the check lets it by,
    and names it when it cannot be imported."""
    import tina_sweep.run.preflight as preflight
    from conftest import smoke_spec

    spec = smoke_spec(**{"eval.backend": "vllm"})
    monkeypatch.setattr(preflight, "cuda_available", lambda: False)
    monkeypatch.setenv("TINA_SWEEP_VLLM_MODULE", "fake_vllm")
    preflight.check_backends(spec)
    monkeypatch.setenv("TINA_SWEEP_VLLM_MODULE", "no_such_vllm_stand_in")
    with pytest.raises(preflight.ConfigError, match="the no_such_vllm_stand_in package is not installed"):
        preflight.check_backends(spec)


def test_hub_only_benchmark_when_the_hub_cannot_be_reached(tmp_path, monkeypatch):
    """Not offline by the environment, but no network: the hub is asked once, before anything runs."""
    import tina_sweep.run.preflight as preflight

    asked = []
    monkeypatch.setattr(preflight, "hub_offline", lambda: False)
    monkeypatch.setattr(preflight, "hub_unreachable", lambda repo: asked.append(repo) or "ConnectError: no route")
    study = tmp_path / "study.py"
    study.write_text("from tina_sweep import Study\n" + _rank('base={"eval.benchmarks": [{"name": "gpqa_diamond"}]}'))
    result = invoke("run", study, "--scale", "smoke", "--sweeps-dir", tmp_path / "sweeps")
    assert_one_line_failure(result, ["eval.benchmarks.0.name: 'gpqa_diamond' lives on the Hugging Face hub only",
                                     "cannot be reached from here (ConnectError: no route)"])
    assert asked == ["Idavidrein/gpqa"]
    assert not (tmp_path / "sweeps").exists()


# ------------------------------------------------------------------ report: files a killed run leaves torn

def _finished_sweep(tmp_path: Path) -> Path:
    """A hand-made finished sweep (tests/test_report_tables.py) whose trained trials have training logs."""
    from test_report_tables import write_sweep

    sweep = write_sweep(tmp_path)
    for trial in ("rank=2-s1-aaa", "rank=2-s2-bbb", "rank=4-s1-ccc"):
        (sweep / "trials" / trial / "train_log.jsonl").write_text("".join(
            json.dumps({"step": step, "reward": 0.1 * step, "completions/mean_length": 8.0}) + "\n"
            for step in (1, 2, 3)))
    return sweep


def _tear(path: Path, line: int, keep: int = 10) -> None:
    """Cut the file ``keep`` characters into its line ``line`` (1-based), as a killed writer leaves it."""
    lines = path.read_text().split("\n")
    path.write_text("\n".join(lines[:line - 1] + [lines[line - 1][:keep]]))


@pytest.mark.parametrize("torn,line,keep,expect", [
    ("trials/rank=2-s1-aaa/result.json", 1, 40, ["rank=2-s1-aaa/result.json: not valid JSON", "a truncated file?"]),
    ("trials/rank=4-s1-ccc/result.json", 1, 0, ["rank=4-s1-ccc/result.json: not valid JSON"]),
    ("study.json", 1, 100, ["hand/study.json: not valid JSON"]),
    ("trials/rank=2-s2-bbb/eval/arithmetic.jsonl", 2, 10,
     ["rank=2-s2-bbb/eval/arithmetic.jsonl: line 2 is not valid JSON"]),
], ids=["result-json", "result-json-empty", "study-json", "eval-jsonl"])
def test_report_on_a_torn_file_is_one_line_naming_it(torn, line, keep, expect, tmp_path):
    sweep = _finished_sweep(tmp_path)
    _tear(sweep / torn, line, keep)
    result = invoke("report", sweep)
    assert_one_line_failure(result, expect)
    assert result.exit_code == 1


def test_report_on_a_training_log_torn_before_its_last_line_is_one_line(tmp_path):
    """Only the last line is what a kill leaves: a bad line with whole ones after it is an error."""
    sweep = _finished_sweep(tmp_path)
    log = sweep / "trials" / "rank=2-s2-bbb" / "train_log.jsonl"
    log.write_text('{"step": 1, "rew\n' + log.read_text())
    result = invoke("report", sweep)
    assert_one_line_failure(result, [f"{log}: line 1 is not valid JSON"])


def test_report_skips_the_torn_last_line_of_a_training_log_with_a_warning(tmp_path):
    sweep = _finished_sweep(tmp_path)
    log = sweep / "trials" / "rank=4-s1-ccc" / "train_log.jsonl"
    _tear(log, 3)  # a kill in the middle of writing step 3
    result = invoke("report", sweep)
    assert result.exit_code == 0, result.output + repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"warning: {log}: line 3, the last, is torn (a killed run?): skipped"]
    assert (sweep / "report" / "pass_at_1.md").is_file()
    from tina_sweep.report.plots import load_curves

    with pytest.warns(UserWarning, match="line 3, the last, is torn"):
        curves = {curve.trial_id: curve for curve in load_curves(sweep)}
    assert [step for step, _ in curves["rank=4-s1-ccc"].steps["reward"]] == [1, 2]
    assert [step for step, _ in curves["rank=2-s1-aaa"].steps["reward"]] == [1, 2, 3]
