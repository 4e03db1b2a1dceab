"""The ``math_verify`` grader against Tina's own evaluation code (read from the quotes of
scripts/eval/run_eval_custom_tasks.py, never from our transcription): each benchmark takes its gold from the field
Tina's task does and reads it with the same extraction targets; predictions are read as Tina's metrics read them;
GPQA is graded on letters."""

from __future__ import annotations

import ast

import pytest
from math_verify import ExprExtractionConfig, LatexExtractionConfig

from tina_sweep.trial.datasets import BENCHMARKS
from tina_sweep.trial.grading import MATH_VERIFY_FALLBACK, MATH_VERIFY_PRECISION, gold_targets, pred_targets
from tina_sweep.trial.tina_source import quote

# our benchmark -> the variable of Tina's LightEval task
TINA_TASKS = {"aime24": "aime24", "aime25": "aime25", "amc23": "amc23", "math500": "math_500", "minerva": "minerva"}
CLASSES = {"ExprExtractionConfig": ExprExtractionConfig, "LatexExtractionConfig": LatexExtractionConfig}


def _call(key: str) -> ast.Call:
    """The call on the right of a quoted ``name = call(...)`` assignment."""
    node = ast.parse(quote(key).text).body[0]
    assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Call), key
    return node.value


def _keywords(call: ast.Call) -> dict[str, ast.expr]:
    return {k.arg: k.value for k in call.keywords}


def _metric(key: str) -> dict:
    """A quoted metric's settings, its extraction targets built with math-verify's classes."""
    words = _keywords(_call(key))
    targets = {name: tuple(eval(compile(ast.Expression(words[name]), key, "eval"), dict(CLASSES)))
               for name in ("gold_extraction_target", "pred_extraction_target")}
    return {"fallback_mode": ast.literal_eval(words["fallback_mode"]),
            "precision": ast.literal_eval(words["precision"]), **targets}


def _gold_field(prompt_fn: str) -> str:
    """The field a quoted prompt function takes its gold from: ``choices=[line["<field>"]]``, ``gold_index=0``."""
    tree = ast.parse(quote(f"eval.math.{prompt_fn}").text)
    doc = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Doc")
    words = _keywords(doc)
    assert ast.literal_eval(words["gold_index"]) == 0
    [subscript] = words["choices"].elts
    return ast.literal_eval(subscript.slice)


@pytest.mark.parametrize("ours,task", TINA_TASKS.items())
def test_each_benchmark_takes_its_gold_where_tinas_task_does(ours, task):
    words = _keywords(_call(f"eval.task.{task}"))
    prompt_fn, [metric] = words["prompt_function"].id, [m.id for m in words["metric"].elts]
    field = _gold_field(prompt_fn)
    source = BENCHMARKS[ours]
    if field == "solution":
        assert metric == "latex_gold_metric"
        assert source.reference_field == "solution"  # the math_verify grader's gold: the solution
    else:
        assert (field, metric) == ("answer", "expr_gold_metric")
        assert source.reference_field is None and source.answer_field == field
    assert gold_targets(source.reference_field is not None) == _metric(f"eval.math.{metric}")["gold_extraction_target"]


@pytest.mark.parametrize("metric", ["latex_gold_metric", "expr_gold_metric"])
def test_predictions_are_read_as_tinas_metrics_read_them(metric):
    settings = _metric(f"eval.math.{metric}")
    assert pred_targets() == settings["pred_extraction_target"]
    assert settings["pred_extraction_target"][1].boxed_match_priority == 0  # a box first
    assert MATH_VERIFY_FALLBACK == settings["fallback_mode"]
    assert MATH_VERIFY_PRECISION == settings["precision"]


def test_gpqa_is_graded_on_letters_both_sides():
    words = _keywords(_call("eval.gpqa.metric"))
    for side in ("gold_extraction_target", "pred_extraction_target"):
        assert ast.unparse(words[side]) == "[IndicesExtractionConfig(prefix_for_extraction='NativeLetters')]"
    assert "fallback_mode" not in words  # LightEval's default: first_match


def test_gpqa_reads_the_fields_tinas_prompt_function_reads():
    tree = ast.parse(quote("eval.gpqa.prompt_fn").text)
    wrong = next(n.value for n in ast.walk(tree) if isinstance(n, ast.Assign) and n.targets[0].id == "choices")
    insert = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "insert")
    question = next(k.value for n in ast.walk(tree) if isinstance(n, ast.Call) for k in n.keywords
                    if k.arg == "Question")
    source = BENCHMARKS["gpqa_diamond"]
    assert source.choice_fields == tuple(ast.literal_eval(e.slice) for e in wrong.elts)
    assert source.answer_field == ast.literal_eval(insert.args[1].slice)
    assert source.question_field == ast.literal_eval(question.slice)
