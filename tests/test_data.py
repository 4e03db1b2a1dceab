"""Data: the arithmetic split, bundled file integrity, user files, and hub-only sets offline."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from tina_sweep.trial.spec import DataSpec, TrialSpec
from tina_sweep.trial.datasets import (BENCHMARKS, TRAINING_SETS, DataError, arithmetic_eval, arithmetic_train, bundled_path,
                             load_benchmark, load_file, load_source, load_training_problems, read_rows)
from conftest import smoke_tree

# ------------------------------------------------------------------ arithmetic


@pytest.mark.parametrize("seed", [0, 42, 7])
def test_arithmetic_train_never_contains_held_out_question(seed):
    held_out = {p.question for p in load_source(BENCHMARKS["arithmetic"], count=1000)}
    assert len(held_out) == 1000
    train = load_source(TRAINING_SETS["arithmetic"], count=2000, seed=seed)
    assert len(train) == 2000
    assert len({p.question for p in train}) == 2000
    assert not held_out & {p.question for p in train}


def test_arithmetic_problems_are_correct():
    for problem in arithmetic_eval(300) + arithmetic_train(300, seed=1):
        match = re.fullmatch(r"What is (\d+) ([-+*]) (\d+)\?", problem.question)
        assert match, problem.question
        a, op, b = int(match[1]), match[2], int(match[3])
        assert problem.answers == (str({"+": a + b, "-": a - b, "*": a * b}[op]),)
        assert int(problem.answers[0]) >= 0


def test_arithmetic_eval_deterministic_and_prefix_stable():
    first = load_benchmark(DataSpec(name="arithmetic", limit=100))
    second = load_benchmark(DataSpec(name="arithmetic", limit=100))
    assert first == second and len(first) == 100
    assert arithmetic_eval(1000)[:100] == first  # a bigger eval set starts with the smaller one
    assert [p.id for p in first] == [p.question for p in first]


def test_arithmetic_train_depends_on_trial_seed():
    a = load_training_problems(TrialSpec.model_validate(smoke_tree(seed=1)))
    b = load_training_problems(TrialSpec.model_validate(smoke_tree(seed=1)))
    c = load_training_problems(TrialSpec.model_validate(smoke_tree(seed=2)))
    assert len(a) == 64  # the smoke preset's dataset.limit
    assert a == b and a != c


# ------------------------------------------------------------------ bundled files

def _sources_table() -> dict[str, tuple[int, str]]:
    text = bundled_path("SOURCES.md").read_text()
    table = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and re.fullmatch(r"(benchmarks|train)/\S+", cells[0]):
            assert re.fullmatch(r"[0-9a-f]{64}", cells[-1]), line
            table[cells[0]] = (int(cells[1]), cells[-1])
    return table


def test_sources_table_covers_every_bundled_file():
    table = _sources_table()
    bundled = {s.location for s in list(BENCHMARKS.values()) + list(TRAINING_SETS.values()) if s.kind == "bundled"}
    assert len(table) == 11
    assert bundled == set(table)
    on_disk = {f"{d}/{p.name}" for d in ("benchmarks", "train") for p in bundled_path(d).iterdir()}
    assert on_disk == set(table)


@pytest.mark.parametrize("relative", sorted(_sources_table()))
def test_bundled_file_sha256_and_records(relative):
    records, sha256 = _sources_table()[relative]
    path = bundled_path(relative)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    assert len(read_rows(path)) == records


@pytest.mark.parametrize("name", [n for n, s in TRAINING_SETS.items() if s.kind == "bundled"])
def test_bundled_training_sets_load(name):
    problems = load_source(TRAINING_SETS[name])
    assert problems and all(p.question and p.answers and p.answers[0] for p in problems)
    assert len({p.id for p in problems}) == len(problems)


# ------------------------------------------------------------------ user files

def test_user_jsonl_with_custom_fields(tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [{"q": "How many legs has a cat?", "a": 4, "extra": 1},
            {"q": "Half of 3?", "a": "\\frac{3}{2}"},
            {"q": "Ten times 2.5", "a": 25.0}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    spec = DataSpec(name="mine", path=str(path), question_field="q", answer_field="a")
    problems = load_benchmark(spec)
    assert [p.question for p in problems] == [r["q"] for r in rows]
    assert [p.answers for p in problems] == [("4",), ("\\frac{3}{2}",), ("25",)]
    assert [p.id for p in problems] == ["mine-0", "mine-1", "mine-2"]
    assert len(load_benchmark(spec.model_copy(update={"limit": 2}))) == 2
    # the same file as a training set of a trial
    trial = TrialSpec.model_validate(smoke_tree(dataset={"name": "mine", "path": str(path), "question_field": "q",
                                                         "answer_field": "a"}))
    assert load_training_problems(trial) == problems


def test_user_file_answer_formats(tmp_path):
    gsm = tmp_path / "g.jsonl"
    gsm.write_text(json.dumps({"question": "q", "answer": "work\n#### 1,234"}) + "\n")
    assert load_file(gsm, "question", "answer", "gsm8k")[0].answers == ("1234",)
    lst = tmp_path / "l.json"
    lst.write_text(json.dumps([{"problem": "p", "answer": ["1\n", " 2 "]}]))
    assert load_file(lst, "problem", "answer", "list")[0].answers == ("1", "2")
    joined = tmp_path / "j.jsonl"
    joined.write_text(json.dumps({"Body": "Tom has 3 apples", "Question": "How many?", "A": 3}) + "\n")
    assert load_file(joined, "Body+Question", "A")[0].question == "Tom has 3 apples. How many?"


def test_user_file_missing_field_names_row_and_field(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps({"q": "1+1", "a": "2"}) + "\n" + json.dumps({"q": "2+2", "ans": "4"}) + "\n")
    with pytest.raises(DataError) as caught:
        load_benchmark(DataSpec(name="broken", path=str(path), question_field="q", answer_field="a"))
    assert str(caught.value) == "broken: line 2 has no field 'a' (fields: ['ans', 'q'])"
    as_list = tmp_path / "broken.json"
    as_list.write_text(json.dumps([{"q": "1+1", "a": "2"}, {"q": "2+2", "ans": "4"}]))
    with pytest.raises(DataError, match=r"^broken: row 1 has no field 'a'"):  # a JSON list: its index
        load_file(as_list, "q", "a")


def test_jsonl_lines_end_at_newline_only(tmp_path):
    """U+2028, U+2029, U+0085 and a form feed are valid inside a JSON string; str.splitlines() would split there."""
    question = "What is 1\u2028+ 2?\u2029 Think\x85 twice\x0c."
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"question": question, "answer": "3"}, ensure_ascii=False) + "\r\n"
                    + json.dumps({"question": "What is 2 + 2?", "answer": "4"}) + "\n", encoding="utf-8")
    problems = load_file(path, "question", "answer")
    assert [p.question for p in problems] == [question, "What is 2 + 2?"]
    assert [p.answers for p in problems] == [("3",), ("4",)]


@pytest.mark.parametrize("row,message", [
    ({"q": None, "a": "1"}, "line 2: field 'q' is null"),
    ({"q": "   ", "a": "1"}, "line 2: field 'q' is empty"),
    ({"q": ["What", "is"], "a": "1"}, "line 2: field 'q' is not text, got \"['What', 'is']\""),
    ({"q": "What?", "a": None}, "line 2: field 'a' is null"),
])
def test_null_or_empty_question_or_answer_names_the_line(tmp_path, row, message):
    """A null question used to be trained as the text 'None'."""
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"q": "What is 1 + 1?", "a": "2"}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError) as caught:
        load_file(path, "q", "a")
    assert str(caught.value) == f"rows: {message}"


def test_user_file_errors(tmp_path):
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"q": "1", "a": "1"}\n{"q": oops}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: line 2 is not valid JSON"):
        load_file(bad_json, "q", "a")
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"q": "x", "a": ""}) + "\n")
    with pytest.raises(DataError, match=r"^empty: line 1: unreadable answer: empty answer$"):
        load_file(empty, "q", "a")
    no_hash = tmp_path / "nohash.jsonl"
    no_hash.write_text(json.dumps({"q": "x", "a": "42"}) + "\n")
    with pytest.raises(DataError, match=r"line 1: unreadable answer: no '#### answer' line"):
        load_file(no_hash, "q", "a", "gsm8k")
    with pytest.raises(DataError, match="no such file"):
        load_file(tmp_path / "missing.jsonl", "q", "a")


# ------------------------------------------------------------------ hub-only sets

def test_hub_only_dataset_offline_fails_with_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # datasets and huggingface_hub read these variables when first imported: pin the flags too
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True, raising=False)
    source = TRAINING_SETS["deepscaler"]
    assert source.kind == "hub"
    with pytest.raises(DataError) as caught:
        load_source(source)
    message = str(caught.value)
    assert message.startswith("deepscaler: lives on the Hugging Face hub only (agentica-org/DeepScaleR-Preview-Dataset)")
    assert "hub" in message and "set path to a local JSONL file" in message
    assert "\n" not in message


def test_large_arithmetic_eval_does_not_leak_into_training():
    from pydantic import ValidationError

    try:
        trial = TrialSpec.model_validate(smoke_tree(**{"eval.benchmarks": [{"name": "arithmetic", "limit": 1500}],
                                                       "dataset.limit": 2000}))
    except ValidationError:
        return  # refusing the configuration is a fix too
    held_out = {p.question for p in load_benchmark(trial.eval.benchmarks[0])}
    assert not held_out & {p.question for p in load_training_problems(trial)}
