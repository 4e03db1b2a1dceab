"""Datasets and benchmarks: catalog names -> lists of problems with accepted answers.

Three kinds of source: files bundled in ``tina_sweep/data`` (see its SOURCES.md), sets on the Hugging Face
hub (real loading code; offline they fail with a message that says so), and the built-in seeded arithmetic
task used at CPU scale. Any JSONL file with named question/answer fields works too.
"""

from __future__ import annotations

import json
import random
import re
import string
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Literal

# boxed: the last \boxed{} of a worked solution; number: the leading number of '9 (apples)', '5 cm', '$18';
# choice: the option letter of '(C)', '\text{(C)}', 'C'; regex: the one group of a user's pattern
AnswerFormat = Literal["plain", "gsm8k", "list", "boxed", "number", "choice", "regex"]
# formats that read the gold out of a longer text a user wrote: the outcome rows keep that text beside the gold
_REWRITING_FORMATS = ("number", "choice", "regex")
_LEADING_NUMBER = re.compile(r"^\s*(?:\\?\$)?\s*([-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?)")
_CHOICE = re.compile(r"^\s*(?:\\text\{\s*)?\(?\s*([A-Za-z])\s*\)?\s*\}?\s*\.?\s*$")


class DataError(ValueError):
    """A dataset or benchmark could not be loaded; the message says which and why."""


class HubUnavailable(DataError):
    """A hub-only dataset could not be fetched (offline, gated, missing)."""


@dataclass(frozen=True)
class Problem:
    """One question with every accepted gold answer.

    A multiple-choice problem (GPQA) has ``choices``: its options in the order they are shown (A, B, C, D), its
    one answer being the correct option's letter. ``reference`` is the text Tina's LightEval task takes its gold
    from when that is not the answer (the full solution of MATH-500 and Minerva), read by the ``math_verify``
    grader."""

    id: str
    question: str
    answers: tuple[str, ...]
    choices: tuple[str, ...] = ()
    reference: str | None = None
    raw_answer: str | None = None  # the answer as the row writes it, when answer_format read the gold out of it


@dataclass(frozen=True)
class Source:
    """Where a named dataset or benchmark comes from and how to read its rows."""

    name: str
    kind: Literal["bundled", "hub", "generated"]
    location: str  # bundled file under tina_sweep/data, or a hub id
    question_field: str = "problem"
    answer_field: str = "answer"
    answer_format: AnswerFormat = "plain"
    split: str = "train"
    hub_config: str | None = None
    description: str = ""
    # Training sets of Tina's recipes: which of the columns its training script looks at (problem, question, prompt,
    # solution, answer, messages, verification_info) the set has (a bundled file's fields; a hub set's columns as its
    # dataset card lists them, not checked offline); analysis/recipe_parity.py derives Tina's question and gold column
    # from these by running its quoted column rules, and tests/test_recipes.py compares them with ours.
    columns: tuple[str, ...] = ()
    columns_note: str = ""  # where the question and gold columns come from (Tina's file:line @ commit)
    reference_field: str | None = None  # benchmarks: where Tina's LightEval task takes its gold, if not answer_field
    choice_fields: tuple[str, ...] = ()  # multiple choice: the wrong options' fields (answer_field: the right one)


BENCHMARKS: dict[str, Source] = {s.name: s for s in [
    Source("arithmetic", "generated", "arithmetic:eval", description="held-out two-operand arithmetic (CPU scale)"),
    Source("aime24", "bundled", "benchmarks/aime24.jsonl", description="AIME 2024, 30 problems"),
    Source("aime25", "bundled", "benchmarks/aime25.jsonl", "question", description="AIME 2025, 30 problems"),
    Source("amc23", "bundled", "benchmarks/amc23.jsonl", description="AMC 2023, 40 problems (float answers)"),
    Source("math500", "bundled", "benchmarks/math500.jsonl", description="MATH-500, LaTeX answers",
           reference_field="solution"),
    Source("minerva", "bundled", "benchmarks/minerva_math.json", answer_format="list",
           description="Minerva Math, 272 problems (lists of accepted answers)", reference_field="solution"),
    Source("gsm8k", "bundled", "benchmarks/gsm8k_test.jsonl", "question", answer_format="gsm8k",
           description="GSM8K test, 1319 problems ('#### N' answers)"),
    Source("mawps", "bundled", "benchmarks/mawps.jsonl", "input", "target", description="MAWPS, 2065 word problems"),
    Source("svamp", "bundled", "benchmarks/svamp.jsonl", "Body+Question", "Answer", description="SVAMP, 1000 word problems"),
    Source("gpqa_diamond", "hub", "Idavidrein/gpqa", "Question", "Correct Answer", hub_config="gpqa_diamond",
           description="GPQA-Diamond, 198 four-option questions posed as multiple choice (gated, hub only: its "
                       "authors ask that it not be posted in plain text)",
           choice_fields=("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")),
]}

# The question and gold column of every set Tina trains on follow its training script: a set's own `solution`
# column when it has one (a worked solution: its boxed answer is the gold), else its `answer` column; DeepScaleR's
# `answer`; II-Thought's verification_info (tina/post_train_hf/grpo.py:96-122 @ e16606f, :142-157 @ 3135405).
_TINA_COLUMNS = "tina/post_train_hf/grpo.py:96-122 @ e16606f"
TRAINING_SETS: dict[str, Source] = {s.name: s for s in [
    Source("arithmetic", "generated", "arithmetic:train", description="seeded two-operand arithmetic (CPU scale)"),
    Source("limr", "bundled", "train/limr.jsonl", description="LIMR, 1389 problems (GAIR-NLP/LIMR)",
           columns=("problem", "answer"),
           columns_note=f"problem / answer ({_TINA_COLUMNS}: no solution column, so answer is the gold)"),
    Source("gsm8k_train", "bundled", "train/gsm8k_train.jsonl", "question", answer_format="gsm8k",
           description="GSM8K train, 7473 problems"),
    Source("aime_1983_2023", "bundled", "train/aime_1983_2023.json", description="AIME 1983-2023, 975 problems"),
    Source("deepscaler", "hub", "agentica-org/DeepScaleR-Preview-Dataset", description="DeepScaleR, 40.3k",
           columns=("problem", "answer", "solution"),
           columns_note=f"problem / answer ({_TINA_COLUMNS}: DeepScaleR's answer, its solution set aside)"),
    Source("still3", "hub", "RUC-AIBOX/STILL-3-Preview-RL-Data", "question", description="STILL-3, 33k",
           columns=("question", "answer"),
           columns_note=f"question / answer ({_TINA_COLUMNS}: no solution column)"),
    Source("open_rs", "hub", "knoveleng/open-rs", answer_field="solution", answer_format="boxed",
           description="Open-RS, 7k", columns=("problem", "solution", "answer"),
           columns_note=f"problem / solution's boxed answer ({_TINA_COLUMNS}: the set has a solution column)"),
    Source("open_s1", "hub", "knoveleng/open-s1", answer_field="solution", answer_format="boxed",
           description="Open-S1, 18.6k", columns=("problem", "solution", "answer", "messages"),
           columns_note=f"problem / solution's boxed answer ({_TINA_COLUMNS}: the set has a solution column)"),
    Source("open_r1", "hub", "open-r1/OpenR1-Math-220k", answer_field="solution", answer_format="boxed",
           hub_config="default", description="OpenR1-Math, 93.7k",
           columns=("problem", "solution", "answer", "messages"),
           columns_note=f"problem / solution's boxed answer ({_TINA_COLUMNS}: the set has a solution column)"),
    Source("open_thoughts", "hub", "bethgelab/CuratedThoughts", answer_field="solution", answer_format="boxed",
           hub_config="OpenThoughts-114k-math-default", description="OpenThoughts (CuratedThoughts), 66.1k",
           columns=("problem", "solution", "messages"),
           columns_note=f"problem / solution's boxed answer ({_TINA_COLUMNS}: the set has a solution column and "
                        "no answer column)"),
    Source("ii_thought", "hub", "Intelligent-Internet/II-Thought-RL-v0-Math-50K", "messages", "verification_info",
           description="II-Thought math, 50k (question: first message; answer: verification_info's answer.value)",
           columns=("messages", "verification_info"),
           columns_note="messages[0].content / verification_info's answer.value "
                        "(tina/post_train_hf/grpo.py:142-157 @ 3135405)"),
    Source("fastcurl", "hub", "Nickyang/FastCuRL", description="FastCuRL, 80.6k (Tina's recipe 'fastcurl')",
           columns_note="problem / answer: not in Tina's dataset map (its line is commented out), so Tina names "
                        "no columns for it"),
]}


# ---------------------------------------------------------------- the arithmetic task

ARITHMETIC_EVAL_SEED = 20250421  # fixed: the held-out set is the same for every trial and study


def arithmetic_problem(rng: random.Random) -> Problem:
    """A two-operand problem: a + b, a - b (a >= b) with a, b in 1..50, or a * b with a, b in 2..12."""
    op = rng.choice("+-*")
    if op == "*":
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        answer = a * b
    else:
        a, b = rng.randint(1, 50), rng.randint(1, 50)
        if op == "-":
            a, b = max(a, b), min(a, b)
        answer = a + b if op == "+" else a - b
    question = f"What is {a} {op} {b}?"
    return Problem(question, question, (str(answer),))


def arithmetic_set(count: int, seed: int, exclude: set[str] = frozenset()) -> list[Problem]:
    """``count`` distinct arithmetic problems from ``seed``, none of whose questions is in ``exclude``."""
    rng = random.Random(seed)
    seen: dict[str, Problem] = {}
    for _ in range(count * 50):
        if len(seen) == count:
            break
        problem = arithmetic_problem(rng)
        if problem.question not in exclude and problem.question not in seen:
            seen[problem.question] = problem
    return list(seen.values())


def arithmetic_eval(count: int) -> list[Problem]:
    return arithmetic_set(count, ARITHMETIC_EVAL_SEED)


def arithmetic_train(count: int, seed: int, eval_count: int = 1000) -> list[Problem]:
    """Training problems that never repeat one of the first ``eval_count`` held-out problems."""
    held_out = {p.question for p in arithmetic_eval(eval_count)}
    return arithmetic_set(count, seed, exclude=held_out)


# ---------------------------------------------------------------- multiple choice (GPQA)

CHOICE_ORDER_SEED = 1234  # with the question, seeds the option order of each multiple-choice problem


def choice_order(correct: str, wrong: list[str], question: str) -> tuple[list[str], int]:
    """The options in the order shown, and the index of the correct one.

    Tina's GPQA task (as LightEval's) draws ``gold_index = random.randint(0, 3)`` and inserts the correct answer
    there among the wrong ones, kept in their order. We make the same draw from a generator seeded per problem
    (``CHOICE_ORDER_SEED`` and the question text), so a problem's order is the same in every run, process and
    subset. Tina draws from Python's global generator; under its launch (two GPUs: LightEval 0.8.1 with
    data_parallel_size=2, the engines in Ray workers) nothing seeds it before the prompts are built (LightEval
    seeds it with 1234 afterwards), so Tina's order changed from run to run and no seed can match it."""
    rng = random.Random(f"{CHOICE_ORDER_SEED}:{question}")
    gold_index = rng.randint(0, len(wrong))
    options = list(wrong)
    options.insert(gold_index, correct)
    return options, gold_index


def choice_problems(rows: list[dict], source: Source, places: list[str] | None = None) -> list[Problem]:
    """Multiple-choice problems: the question and options as the rows have them (Tina formats them unstripped),
    the options in ``choice_order``, the answer the correct option's letter."""
    fields = [source.question_field, source.answer_field, *source.choice_fields]
    problems = []
    for index, row in enumerate(rows):
        place = places[index] if places else f"row {index}"
        if not isinstance(row, dict):
            raise DataError(f"{source.name}: {place} is not an object with named fields, got {str(row)[:60]!r}")
        missing = [f for f in fields if f not in row]
        if missing:
            raise DataError(f"{source.name}: {place} has no field {missing[0]!r} (fields: {sorted(row)})")
        blank = _blank_field(row, fields)
        if blank:
            raise DataError(f"{source.name}: {place}: {blank}")
        question = str(row[source.question_field])
        options, gold = choice_order(str(row[source.answer_field]), [str(row[f]) for f in source.choice_fields],
                                     question)
        problems.append(Problem(f"{source.name}-{index}", question, (string.ascii_uppercase[gold],), tuple(options)))
    return problems


# ---------------------------------------------------------------- reading rows

def gold_answers(raw: object, answer_format: AnswerFormat, pattern: str | None = None) -> tuple[str, ...]:
    """Normalise a row's raw answer into the tuple of accepted answers (``pattern``: answer_format regex's
    expression, its one group the gold)."""
    if answer_format == "list":
        if not isinstance(raw, list) or not raw:
            raise ValueError(f"expected a non-empty list of answers, got {raw!r}")
        blank = [i for i, a in enumerate(raw) if a is None or str(a).strip() == ""]
        if blank:
            raise ValueError(f"answer {blank[0]} of the list is empty, got {raw!r}")
        return tuple(str(a).strip() for a in raw)
    if raw is None or str(raw).strip() == "":
        raise ValueError("empty answer")
    if answer_format == "boxed":
        boxed = _boxed_answer(raw)
        if boxed is None:
            raise ValueError(f"no \\boxed{{}} answer in {str(raw)[-60:]!r}")
        return (boxed,)
    if answer_format == "number":
        match = _LEADING_NUMBER.match(str(raw))
        if not match:
            raise ValueError(f"no leading number in {str(raw)[:60]!r}")
        return (match.group(1).replace(",", ""),)
    if answer_format == "regex":
        match = re.search(pattern or "", str(raw))
        if not match or not (match.group(1) or "").strip():
            raise ValueError(f"answer_pattern {pattern!r} finds no answer in {str(raw)[:60]!r}")
        return (match.group(1).strip(),)
    if answer_format == "choice":
        match = _CHOICE.match(str(raw))
        if not match:
            raise ValueError(f"not an option letter: {str(raw)[:60]!r}")
        return (match.group(1).upper(),)
    if answer_format == "gsm8k":
        match = re.search(r"####\s*(.+?)\s*$", str(raw))
        if not match:
            raise ValueError(f"no '#### answer' line in {str(raw)[-60:]!r}")
        return (match.group(1).replace(",", ""),)
    if isinstance(raw, float) and raw.is_integer():
        return (str(int(raw)),)
    return (str(raw).strip(),)


def _question(row: dict, field: str) -> str:
    parts = [str(row[f]).strip() for f in field.split("+")]
    return " ".join(p if p.endswith((".", "?", "!")) or i == len(parts) - 1 else p + "." for i, p in enumerate(parts))


def _blank_field(row: dict, fields: list[str]) -> str | None:
    """The first of ``fields`` that is null, blank text, or not text at all (a list, an object), described."""
    for name in fields:
        value = row[name]
        if value is None:
            return f"field {name!r} is null"
        if isinstance(value, (list, dict)):
            return f"field {name!r} is not text, got {str(value)[:60]!r}"
        if str(value).strip() == "":
            return f"field {name!r} is empty"
    return None


def rows_to_problems(rows: list[dict], source_name: str, question_field: str, answer_field: str,
                     answer_format: AnswerFormat, places: list[str] | None = None,
                     pattern: str | None = None) -> list[Problem]:
    """Turn raw rows into problems; a row missing a field, with a null or empty question, or with an unreadable
    answer is an error naming the row (``places``: how to name each row, e.g. ``line 3``; default ``row N``)."""
    problems = []
    for index, row in enumerate(rows):
        place = places[index] if places else f"row {index}"
        if not isinstance(row, dict):
            raise DataError(f"{source_name}: {place} is not an object with named fields, got {str(row)[:60]!r}")
        missing = [f for f in question_field.split("+") + [answer_field] if f not in row]
        if missing:
            raise DataError(f"{source_name}: {place} has no field {missing[0]!r} (fields: {sorted(row)})")
        blank = _blank_field(row, question_field.split("+"))
        if blank is None and row[answer_field] is None:
            blank = f"field {answer_field!r} is null"
        if blank:
            raise DataError(f"{source_name}: {place}: {blank}")
        try:
            answers = gold_answers(row[answer_field], answer_format, pattern)
        except ValueError as error:
            raise DataError(f"{source_name}: {place}: unreadable answer: {error}") from None
        raw = str(row[answer_field]).strip() if answer_format in _REWRITING_FORMATS else None
        problems.append(Problem(f"{source_name}-{index}", _question(row, question_field), answers, raw_answer=raw))
    return problems


def read_rows(path: Path) -> list[dict]:
    """Rows of a JSONL file, or of a JSON file holding a list."""
    return read_placed_rows(path)[0]


def read_placed_rows(path: Path) -> tuple[list[dict], list[str]]:
    """Rows of a JSONL file, or of a JSON file holding a list, and where each stands (``line 3`` of a JSONL file,
    ``row 0`` of a JSON list). JSONL lines end at "\n" only: a JSON string may hold U+2028 and the like, which
    ``str.splitlines`` would take for line ends."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start})") from None
    if path.suffix == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
        if not isinstance(rows, list):
            raise DataError(f"{path}: a .json file must hold a list of rows, got {type(rows).__name__}")
        return rows, [f"row {index}" for index in range(len(rows))]
    rows, places = [], []
    for line_number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise DataError(f"{path}: line {line_number} is not valid JSON ({error.msg})") from None
            places.append(f"line {line_number}")
    return rows, places


def bundled_path(relative: str) -> Path:
    return Path(str(resources.files("tina_sweep") / "data" / relative))


def _load_hub(source: Source) -> list[dict]:
    try:
        from datasets import load_dataset

        dataset = load_dataset(source.location, source.hub_config, split=source.split)
    except Exception as error:  # offline, gated, or missing
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise HubUnavailable(
            f"{source.name}: lives on the Hugging Face hub only ({source.location}) and could not be loaded "
            f"here ({reason}); run with hub access, or set path to a local JSONL file") from None
    return [dict(row) for row in dataset]


def _boxed_answer(raw: object) -> str | None:
    """The last non-empty ``\\boxed{}`` of a worked solution (what math-verify's boxed match finds in Tina's gold)."""
    from tina_sweep.trial.grading import last_boxed

    boxed = last_boxed(str(raw)) if isinstance(raw, str) else None
    return boxed.strip() if boxed and boxed.strip() else None


def _rows_with_boxed_gold(rows: list[dict], places: list[str] | None,
                          source: Source) -> tuple[list[dict], list[str] | None]:
    """Drop the rows whose solution has no boxed answer, with one warning line: Tina's rewards skipped them (a gold
    math-verify cannot parse gives no accuracy reward), so they carry no correctness signal."""
    keep = [i for i, row in enumerate(rows)
            if not isinstance(row, dict) or source.answer_field not in row or _boxed_answer(row[source.answer_field])]
    if len(keep) < len(rows):
        import logging

        logging.getLogger(__name__).warning(
            "%s: %d of %d rows have no \\boxed{} answer in %r and are left out", source.name,
            len(rows) - len(keep), len(rows), source.answer_field)
    return [rows[i] for i in keep], ([places[i] for i in keep] if places else places)


def ii_thought_row(row: dict) -> dict:
    """II-Thought keeps the question as a chat (``messages[0].content``) and the answer inside a JSON string
    (``verification_info`` -> ``answer.value``), as Tina's grpo.py reads them."""
    return {**row, "messages": row["messages"][0]["content"],
            "verification_info": json.loads(row["verification_info"])["answer"]["value"]}


def load_source(source: Source, *, count: int | None = None, seed: int = 0) -> list[Problem]:
    """Load every problem of a catalog source (``count`` sizes the generated arithmetic task)."""
    if source.kind == "generated":
        if source.location == "arithmetic:eval":
            return arithmetic_eval(count or 100)
        return arithmetic_train(count or 2000, seed)
    rows, places = read_placed_rows(bundled_path(source.location)) if source.kind == "bundled" else \
        (_load_hub(source), None)
    if source.name == "ii_thought":
        rows = [ii_thought_row(row) for row in rows]
    if source.answer_format == "boxed":
        rows, places = _rows_with_boxed_gold(rows, places, source)
    if source.choice_fields:
        return choice_problems(rows, source, places)
    problems = rows_to_problems(rows, source.name, source.question_field, source.answer_field, source.answer_format,
                                places)
    if source.reference_field:
        problems = [replace(p, reference=None if row.get(source.reference_field) is None
                            else str(row[source.reference_field])) for p, row in zip(problems, rows)]
    return problems


def load_file(path: str | Path, question_field: str, answer_field: str,
              answer_format: AnswerFormat = "plain", name: str | None = None,
              pattern: str | None = None) -> list[Problem]:
    """Load a user's own JSONL/JSON file with named question and answer fields (``pattern``: answer_format
    regex's expression)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    rows, places = read_placed_rows(path)
    return rows_to_problems(rows, name or path.stem, question_field, answer_field, answer_format, places, pattern)


# ---------------------------------------------------------------- specs -> problems

def load_dataspec(spec, catalog: dict[str, Source], *, seed: int = 0) -> list[Problem]:
    """Problems for a ``DataSpec``: its own file when ``path`` is set, else the catalog entry; ``limit`` applies."""
    if spec.path:
        problems = load_file(spec.path, spec.question_field, spec.answer_field, spec.answer_format, spec.name,
                             spec.answer_pattern)
    else:
        problems = load_source(catalog[spec.name], count=spec.limit, seed=seed)
    return problems[: spec.limit] if spec.limit else problems


def load_training_problems(trial) -> list[Problem]:
    """The training problems of a ``TrialSpec`` (without its dev split, when it has one)."""
    if trial.dev is None:
        return load_dataspec(trial.dataset, TRAINING_SETS, seed=trial.seed)
    return split_dev(trial)[0]


def load_dev_problems(trial) -> list[Problem]:
    """The dev problems of a ``TrialSpec`` with a dev split (the same for every seed of a study)."""
    return split_dev(trial)[1]


DEV_SEED = 20261201  # fixed: every trial of a study scores the same dev problems, whatever its seed


def question_key(question: str) -> str:
    """A question compared across sets: whitespace collapsed, case folded."""
    return " ".join(question.split()).casefold()


def split_dev(trial) -> tuple[list[Problem], list[Problem]]:
    """(training problems, dev problems) of a ``TrialSpec`` with ``dev`` set. The dev problems are never a test
    benchmark's (``eval.benchmarks``) nor a training problem's question: by default they are drawn (seeded by
    ``DEV_SEED``, so every trial of a study shares them) from the training set's source, which then trains on the
    rest; with ``dev.benchmark`` they are its first problems that appear in neither. Raises DataError (one line)
    when not enough problems are left."""
    dev = trial.dev
    test = {question_key(p.question) for b in trial.eval.benchmarks for p in load_benchmark(b)}
    if dev.benchmark is not None:
        training = load_dataspec(trial.dataset, TRAINING_SETS, seed=trial.seed)
        taken = test | {question_key(p.question) for p in training}
        held = [p for p in load_benchmark(dev.benchmark) if question_key(p.question) not in taken][:dev.problems]
    elif trial.dataset.path is None and TRAINING_SETS[trial.dataset.name].kind == "generated":
        excluded = {p.question for p in arithmetic_eval(1000)}  # the held-out arithmetic benchmark's pool
        held = [p for p in arithmetic_set(dev.problems, DEV_SEED, exclude=excluded)
                if question_key(p.question) not in test]
        excluded |= {p.question for p in held}
        training = arithmetic_set(trial.dataset.limit or 2000, trial.seed, exclude=excluded)
    else:
        pool = load_dataspec(trial.dataset.model_copy(update={"limit": None}), TRAINING_SETS, seed=trial.seed)
        candidates = [p for p in pool if question_key(p.question) not in test]
        held = random.Random(DEV_SEED).sample(candidates, min(dev.problems, len(candidates)))
        chosen = {question_key(p.question) for p in held}
        training = [p for p in pool if question_key(p.question) not in chosen]
        training = training[: trial.dataset.limit] if trial.dataset.limit else training
    if len(held) < dev.problems:
        where = f"benchmark {dev.benchmark.name!r}" if dev.benchmark is not None else \
            f"training set {trial.dataset.name!r}"
        raise DataError(f"dev.problems: {where} has only {len(held)} problems outside the training and test sets, "
                        f"got {dev.problems}")
    if not training:
        raise DataError(f"dev.problems: holding out {dev.problems} problems leaves training set "
                        f"{trial.dataset.name!r} empty")
    return training, held


def load_benchmark(spec) -> list[Problem]:
    """The evaluation problems of one benchmark ``DataSpec``."""
    return load_dataspec(spec, BENCHMARKS)
