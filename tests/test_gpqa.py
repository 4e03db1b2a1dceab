"""GPQA-Diamond as multiple choice: Tina's prompt and option draw (read from its quoted task code), a seeded and
stable option order, the gold letter, the letter graded, and the outcomes that record them -- end to end through
the transformers and vLLM evaluation paths.

GPQA itself is gated and must not be posted in plain text, so the records here are made up, shaped as the hub set
(Idavidrein/gpqa) has them: Question, Correct Answer, Incorrect Answer 1..3.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tina_sweep.trial.datasets as data
import tina_sweep.trial.evaluate.local as evaluate
from tina_sweep.trial.spec import DataSpec, EvalSpec, ModelSpec, PromptSpec
from tina_sweep.trial.datasets import BENCHMARKS, CHOICE_ORDER_SEED, choice_problems, load_benchmark
from tina_sweep.trial.evaluate.scoring import MULTIPLE_CHOICE_TEMPLATE, problem_messages
from tina_sweep.trial.evaluate import evaluate_model, summary
from tina_sweep.trial.prompts import TINA_MATH_QUERY_TEMPLATE
from tina_sweep.trial.tina_source import quote

REPO = Path(__file__).resolve().parents[1]
TINY = ModelSpec(name="tiny-random-qwen2")
PAPER_PROMPT = PromptSpec(system=None, instruction="", template=TINA_MATH_QUERY_TEMPLATE)
GPQA = BENCHMARKS["gpqa_diamond"]


def record(i: int) -> dict:
    """A made-up record with GPQA's fields (the question and options are ours, not GPQA's)."""
    return {"Question": f"Which made-up compound number {i} is the most stable? ",
            "Correct Answer": f"right {i}", "Incorrect Answer 1": f"wrong-a {i}",
            "Incorrect Answer 2": f"wrong-b {i}", "Incorrect Answer 3": f"wrong-c {i}\n", "Subdomain": "none"}


RECORDS = [record(i) for i in range(40)]


def _string_value(text: str) -> str:
    """The string a quoted ``NAME = \"\"\"...\"\"\".strip()`` assignment gives, evaluated as Python would."""
    node = ast.parse(text).body[0].value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "strip":
        return ast.literal_eval(node.func.value).strip()
    return ast.literal_eval(node)


class _SeededDraw:
    """Stands in for Tina's global ``random`` module: draws from our per-problem generator instead."""

    def __init__(self, question: str):
        import random

        self.rng = random.Random(f"{CHOICE_ORDER_SEED}:{question}")

    def randint(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)


def tina_doc(line: dict) -> dict:
    """Tina's own gpqa_prompt_fn (the quoted code, run as is) on ``line``, its global ``random`` replaced by our
    per-problem generator: the query it builds and its gold index."""
    namespace = {"GPQA_QUERY_TEMPLATE": _string_value(quote("eval.gpqa.query_template").text),
                 "Doc": lambda **fields: fields, "random": _SeededDraw(line["Question"])}
    exec(compile(quote("eval.gpqa.prompt_fn").text, "gpqa_prompt_fn", "exec"), namespace)
    return namespace["gpqa_prompt_fn"](line, task_name="custom|gpqa:diamond")


# ------------------------------------------------------------------ fidelity to Tina's task

def test_our_template_is_tinas():
    assert MULTIPLE_CHOICE_TEMPLATE == _string_value(quote("eval.gpqa.query_template").text)


def test_tinas_draw_on_our_generator_gives_our_order_gold_and_prompt():
    """Tina's quoted prompt function, run with our seeded generator, poses each problem exactly as we do: the
    same user turn (options in the same order) and the same gold letter."""
    problems = choice_problems(RECORDS, GPQA)
    for line, problem in zip(RECORDS, problems):
        doc = tina_doc(line)
        assert doc["choices"] == ["A", "B", "C", "D"]
        assert problem.answers == (doc["choices"][doc["gold_index"]],)
        [user] = problem_messages(problem, PAPER_PROMPT)
        assert user == {"role": "user", "content": doc["query"]}
        assert doc["instruction"] == doc["query"]


def test_tinas_draw_is_randint_0_3_from_the_global_generator():
    """What we cannot match: Tina's gold position comes from Python's global generator (import random), which
    its task never seeds -- hence our per-problem seed (recorded in the outcomes)."""
    assert quote("eval.random_import").text == "import random"
    code = quote("eval.gpqa.prompt_fn").text
    calls = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    draw = next(c for c in calls if c.func.attr == "randint")
    assert ast.unparse(draw) == "random.randint(0, 3)"
    assert "seed" not in code
    task = quote("eval.task.gpqa_diamond").text
    assert "prompt_function=gpqa_prompt_fn" in task and "metric=[gpqa_metric]" in task
    assert 'hf_repo="Idavidrein/gpqa"' in task and 'hf_subset="gpqa_diamond"' in task
    assert (GPQA.location, GPQA.hub_config) == ("Idavidrein/gpqa", "gpqa_diamond")


# ------------------------------------------------------------------ the option order

def test_order_is_seeded_and_the_gold_letter_follows_the_correct_answer():
    first = choice_problems(RECORDS, GPQA)
    again = choice_problems(RECORDS, GPQA)
    assert first == again
    for line, problem in zip(RECORDS, first):
        assert sorted(problem.choices) == sorted(str(line[f]) for f in ("Correct Answer", "Incorrect Answer 1",
                                                                         "Incorrect Answer 2", "Incorrect Answer 3"))
        letter = problem.answers[0]
        assert problem.choices["ABCD".index(letter)] == line["Correct Answer"]
        wrong = [c for c in problem.choices if c != line["Correct Answer"]]
        assert wrong == [line["Incorrect Answer 1"], line["Incorrect Answer 2"], line["Incorrect Answer 3"]]
    assert {p.answers[0] for p in first} == set("ABCD")  # the gold is not always in one place


def test_a_problems_order_does_not_depend_on_the_others_or_the_process():
    alone = choice_problems([RECORDS[7]], GPQA)[0]
    assert alone.choices == choice_problems(RECORDS, GPQA)[7].choices and alone.answers == \
        choice_problems(RECORDS, GPQA)[7].answers
    script = ("import json, sys; from tina_sweep.trial.datasets import BENCHMARKS, choice_problems; "
              "rows = json.load(sys.stdin); print(json.dumps([p.choices for p in choice_problems(rows, "
              "BENCHMARKS['gpqa_diamond'])]))")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "12345"}
    done = subprocess.run([sys.executable, "-c", script], input=json.dumps(RECORDS[:5]), capture_output=True,
                          text=True, env=env, check=True)
    assert json.loads(done.stdout) == [list(p.choices) for p in choice_problems(RECORDS[:5], GPQA)]


def test_question_and_options_are_kept_as_the_hub_has_them():
    problem = choice_problems([RECORDS[0]], GPQA)[0]
    assert problem.question == RECORDS[0]["Question"]  # trailing space kept: Tina formats line["Question"] as is
    assert "wrong-c 0\n" in problem.choices
    assert problem.id == "gpqa_diamond-0"


def test_a_record_missing_an_option_is_one_line():
    broken = {k: v for k, v in RECORDS[0].items() if k != "Incorrect Answer 2"}
    with pytest.raises(data.DataError, match=r"^gpqa_diamond: row 1 has no field 'Incorrect Answer 2'"):
        choice_problems([RECORDS[1], broken], GPQA)
    with pytest.raises(data.DataError, match=r"^gpqa_diamond: row 0: field 'Correct Answer' is empty$"):
        choice_problems([{**RECORDS[0], "Correct Answer": " "}], GPQA)


# ------------------------------------------------------------------ the prompt

def test_the_prompt_replaces_the_math_template_and_keeps_a_system_prompt():
    problem = choice_problems([RECORDS[3]], GPQA)[0]
    options = dict(zip("ABCD", problem.choices))
    expected = MULTIPLE_CHOICE_TEMPLATE.format(Question=problem.question, **options)
    assert problem_messages(problem, PAPER_PROMPT) == [{"role": "user", "content": expected}]
    assert "Solve the following math problem" not in expected and "A) " + options["A"] in expected
    with_system = problem_messages(problem, PromptSpec(system="S", instruction="Box it."))
    assert with_system == [{"role": "system", "content": "S"}, {"role": "user", "content": expected}]


# ------------------------------------------------------------------ end to end

@pytest.fixture()
def hub_gpqa(monkeypatch):
    """The hub loader answers Idavidrein/gpqa with the made-up records."""
    asked = []

    def fake_hub(source):
        asked.append((source.location, source.hub_config))
        return [dict(r) for r in RECORDS]

    monkeypatch.setattr(data, "_load_hub", fake_hub)
    return asked


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_gpqa_through_the_transformers_path_on_the_tiny_model(tmp_path, tiny_model_dir, hub_gpqa):
    spec = EvalSpec(benchmarks=[DataSpec(name="gpqa_diamond", limit=3)], max_new_tokens=4, batch_size=8)
    [result] = evaluate_model(TINY, PAPER_PROMPT, spec, None, tmp_path, seed=0)
    assert hub_gpqa == [("Idavidrein/gpqa", "gpqa_diamond")]
    rows = _rows(tmp_path / "gpqa_diamond.jsonl")
    problems = load_benchmark(DataSpec(name="gpqa_diamond", limit=3))
    assert [r["id"] for r in rows] == [p.id for p in problems]
    for row, problem in zip(rows, problems):
        assert row["choices"] == list(problem.choices) and row["gold"] == problem.answers[0]
        assert row["answers"] == [row["gold"]] and row["grader"] == "strict"
        assert len(row["completions"]) == len(row["extracted"]) == len(row["correct"]) == 1
        assert row["extracted"][0] in (None, "A", "B", "C", "D")
        assert row["correct"] == [row["extracted"][0] == row["gold"]]
    assert result.grader == "strict" and result.problems == 3


@pytest.mark.parametrize("grader", ["strict", "math_verify"])
def test_gpqa_letters_graded_end_to_end(tmp_path, tiny_model_dir, hub_gpqa, monkeypatch, grader):
    """Forced completions: the prompts carry each problem's options in order; the letters are graded, the right
    one correct whichever position the seed put it in; the outcomes record order, gold and what was read."""
    problems = load_benchmark(DataSpec(name="gpqa_diamond", limit=4))
    seen = []

    def fake_generate(model, tokenizer, prompts, spec, seed):
        seen.extend(prompts)
        texts = []
        for problem in problems[len(seen) - len(prompts):len(seen)]:
            gold = problem.answers[0]
            other = "ABCD"[("ABCD".index(gold) + 1) % 4]
            texts.append([f"Thinking.\nAnswer: {gold}", f"Thinking.\nAnswer: {other}"])
        return texts, 5, [[False, False]] * len(texts)

    monkeypatch.setattr(evaluate, "generate", fake_generate)
    spec = EvalSpec(benchmarks=[DataSpec(name="gpqa_diamond", limit=4)], samples_per_problem=2, temperature=0.7,
                    batch_size=8, grader=grader)
    [result] = evaluate_model(TINY, PAPER_PROMPT, spec, None, tmp_path, seed=0)
    for prompt, problem in zip(seen, problems):
        options = dict(zip("ABCD", problem.choices))
        assert MULTIPLE_CHOICE_TEMPLATE.format(Question=problem.question, **options) in prompt
    rows = _rows(tmp_path / "gpqa_diamond.jsonl")
    for row, problem in zip(rows, problems):
        assert row["correct"] == [True, False] and row["extracted"][0] == row["gold"] == problem.answers[0]
        assert row["choices"] == list(problem.choices) and row["grader"] == grader
    assert result.pass_at_1 == 0.5 and result.grader == grader
    assert summary([result])["gpqa_diamond"]["grader"] == grader


def test_gpqa_through_the_vllm_path(tmp_path, tiny_model_dir, hub_gpqa):
    """The vLLM backend renders the same multiple-choice prompts and grades letters with eval.grader."""
    from fake_vllm import LoRARequest, SamplingParams, _Choice, _Output
    from tina_sweep.trial.evaluate import vllm_backend as vb

    problems = load_benchmark(DataSpec(name="gpqa_diamond", limit=3))

    class LetterLLM:
        prompts: list = []

        def __init__(self, **kwargs):
            pass

        def generate(self, prompts, params, lora_request=None, use_tqdm=False):
            LetterLLM.prompts = list(prompts)
            return [_Output([_Choice(f"\\boxed{{{p.answers[0]}}}", [1, 2])]) for p in problems]

    spec = EvalSpec(benchmarks=[DataSpec(name="gpqa_diamond", limit=3)], grader="math_verify")
    evaluator = vb.VLLMEvaluator(TINY, spec, [vb.EvalTarget("base", None, tmp_path)], llm_factory=LetterLLM,
                                 lora_request_class=LoRARequest, sampling_class=SamplingParams)
    [result] = evaluator.evaluate_all(PAPER_PROMPT)["base"]
    for prompt, problem in zip(LetterLLM.prompts, problems):
        assert "A) " + problem.choices[0] + "\nB) " + problem.choices[1] in prompt
    rows = _rows(tmp_path / "gpqa_diamond.jsonl")
    assert [r["extracted"] for r in rows] == [[p.answers[0]] for p in problems]
    assert result.pass_at_1 == 1.0 and result.grader == "math_verify" and rows[0]["grader"] == "math_verify"
