"""Strict grading against every bundled benchmark's gold format, the reward-hack regressions, and rewards."""

from __future__ import annotations

import math

import pytest

from tina_sweep.trial.spec import DataSpec
from tina_sweep.trial.datasets import BENCHMARKS, bundled_path, load_benchmark, load_source, read_rows
from tina_sweep.trial.grading import (GRADERS, as_number, check_grader, extract_letter, grade, grade_answer, grade_samples,
                                last_boxed, math_verify_golds, math_verify_letter)
from tina_sweep.trial.rewards import completion_text, reward_function


def boxed(answer: str) -> str:
    return f"Let me think step by step.\nThe answer is \\boxed{{{answer}}}."


def wrong_answer(gold: str) -> str:
    """A plausible but wrong boxed answer for a gold answer."""
    number = as_number(gold)
    if number is not None:
        return repr(number + max(1.0, abs(number)))  # never equal to the gold, even with a tolerance
    return "\\text{definitely not it}"


# ------------------------------------------------------------------ every benchmark's gold format

NUMERIC_BENCHMARKS = ["aime24", "aime25", "amc23", "gsm8k", "mawps", "svamp"]


@pytest.mark.parametrize("name", NUMERIC_BENCHMARKS)
def test_numeric_benchmarks_every_gold(name):
    problems = load_source(BENCHMARKS[name])
    assert problems and all(p.answers for p in problems)
    for problem in problems:
        golds = list(problem.answers)
        assert grade(boxed(golds[0]), golds), (problem.id, golds)
        assert not grade(boxed(wrong_answer(golds[0])), golds), (problem.id, golds)
        assert not grade("no box here " + golds[0], golds)


@pytest.mark.parametrize("name,limit", [("math500", 60), ("minerva", 60)])
def test_latex_benchmarks_first_problems(name, limit):
    problems = load_benchmark(DataSpec(name=name, limit=limit))
    assert len(problems) == limit
    for problem in problems:
        golds = list(problem.answers)
        assert grade(boxed(golds[0]), golds), (problem.id, golds)
        assert not grade(boxed(wrong_answer(golds[0])), golds), (problem.id, golds)


def test_aime24_known_answers():
    problems = load_benchmark(DataSpec(name="aime24", limit=3))
    assert [p.answers for p in problems] == [("204",), ("113",), ("371",)]
    assert grade(boxed("204"), ["204"]) and grade(boxed("0204"), ["204"])
    assert not grade(boxed("205"), ["204"])


def test_aime25_reads_question_field():
    problems = load_benchmark(DataSpec(name="aime25", limit=1))
    assert problems[0].answers == ("70",)
    assert problems[0].question.startswith("Find the sum of all integer bases $b>9$")
    assert grade(boxed("70"), list(problems[0].answers)) and not grade(boxed("7"), list(problems[0].answers))


def test_amc23_float_golds():
    raw = read_rows(bundled_path("benchmarks/amc23.jsonl"))
    assert raw[0]["answer"] == 27.0 and isinstance(raw[0]["answer"], float)
    problems = load_source(BENCHMARKS["amc23"])
    assert problems[0].answers == ("27",)
    assert grade("\\boxed{27}", ["27.0"])  # the raw float form accepts an integer box
    assert grade("\\boxed{27.0}", ["27"])
    assert grade("\\boxed{27}", list(problems[0].answers))
    assert not grade("\\boxed{27.5}", ["27.0"])
    assert not grade("\\boxed{28}", list(problems[0].answers))


def test_math500_latex_golds():
    problems = load_benchmark(DataSpec(name="math500", limit=3))
    tuple_gold, expr_gold, frac_gold = (list(p.answers) for p in problems)
    assert tuple_gold == ["\\left( 3, \\frac{\\pi}{2} \\right)"]
    assert grade(boxed("\\left( 3, \\frac{\\pi}{2} \\right)"), tuple_gold)
    assert grade(boxed("(3, \\frac{\\pi}{2})"), tuple_gold)
    assert not grade(boxed("(3, \\frac{\\pi}{3})"), tuple_gold)
    assert not grade(boxed("(\\frac{\\pi}{2}, 3)"), tuple_gold)
    assert expr_gold == ["p - q"]
    assert grade(boxed("p-q"), expr_gold) and not grade(boxed("q - p"), expr_gold)
    assert frac_gold == ["\\frac{14}{3}"]
    for ok in ("\\frac{14}{3}", "\\dfrac{14}{3}", "14/3", "\\frac{28}{6}"):
        assert grade(boxed(ok), frac_gold), ok
    for bad in ("\\frac{13}{3}", "5", "14"):
        assert not grade(boxed(bad), frac_gold), bad


def test_minerva_list_golds_with_trailing_newline():
    raw = read_rows(bundled_path("benchmarks/minerva_math.json"))
    with_newline = [r for r in raw if any(a.endswith("\n") for a in r["answer"])]
    assert with_newline, "the bundled Minerva file has answers with a trailing newline"
    assert all(isinstance(r["answer"], list) for r in raw)
    problems = load_source(BENCHMARKS["minerva"])
    assert len(problems) == 272
    assert not any(a.endswith("\n") for p in problems for a in p.answers)
    assert problems[1].answers == ("8.7 \\times 10^{8}",)
    assert grade(boxed("8.7 \\times 10^{8}"), ["8.7 \\times 10^{8}"])
    assert grade(boxed("870000000"), ["8.7 \\times 10^{8}"])
    assert not grade(boxed("8.7 \\times 10^{9}"), ["8.7 \\times 10^{8}"])
    # raw gold with its trailing newline still grades
    assert grade(boxed("9.6"), ["9.6\n"]) and not grade(boxed("9.7"), ["9.6\n"])
    # any of several accepted answers counts
    multi = next(p for p in problems if len(p.answers) > 1)
    for answer in multi.answers:
        assert grade(boxed(answer), list(multi.answers))


def test_gsm8k_hash_answers_and_commas():
    raw = read_rows(bundled_path("benchmarks/gsm8k_test.jsonl"))
    problems = load_source(BENCHMARKS["gsm8k"])
    assert len(problems) == len(raw) == 1319
    assert problems[0].answers == ("18",)
    assert raw[0]["answer"].rstrip().endswith("#### 18")
    comma_rows = [i for i, r in enumerate(raw) if "," in r["answer"].split("####")[-1]]
    assert comma_rows
    for index in comma_rows:
        gold = problems[index].answers[0]
        assert "," not in gold
        with_commas = f"{int(gold):,}"
        assert "," in with_commas
        assert grade(boxed(with_commas), [gold]) and grade(boxed(gold), [gold])
        assert not grade(boxed(f"{2 * int(gold) + 1:,}"), [gold])


def test_mawps_and_svamp_float_targets():
    mawps = load_benchmark(DataSpec(name="mawps", limit=2))
    assert mawps[0].answers == ("43",)
    assert mawps[0].question.startswith("Joan found 70 seashells")
    assert grade(boxed("43"), ["43"]) and grade(boxed("43.0"), ["43"]) and not grade(boxed("27"), ["43"])
    svamp = load_benchmark(DataSpec(name="svamp", limit=1))
    assert svamp[0].answers == ("145",)
    # Body + Question are joined with a full stop between them
    assert svamp[0].question.endswith("93 groups. How big is each group of bananas?")
    assert grade(boxed("145"), ["145"]) and not grade(boxed("290 - 145"), ["145"])
    assert not grade(boxed("290 / 2"), ["145"])  # a division to carry out, not a number literal
    assert grade(boxed("1/2"), ["0.5"])  # a slash fraction in lowest terms is a number literal


@pytest.mark.parametrize("prediction,gold", [("70001", "70000"), ("999950", "1000000"), ("1201566", "1201565")])
def test_off_by_one_on_large_integer_gold_is_wrong(prediction, gold):
    assert not grade(boxed(prediction), [gold])


# ------------------------------------------------------------------ regressions: reward hacks and box rules

def test_empty_box_restating_the_question_is_wrong():
    assert not grade("29 + 26 equals \\boxed{}.", ["55"])
    assert not grade("\\boxed{ }", ["55"])


def test_unboxed_answer_is_wrong():
    assert not grade("29 + 26 = 55", ["55"])
    assert not grade("The answer is 55.", ["55"])


def test_expression_in_box_is_not_a_number():
    assert not grade("\\boxed{29+26}", ["55"])
    assert not grade("\\boxed{29 + 26}", ["55"])
    assert not grade("\\boxed{110/2 + 0}", ["55"])


def test_last_box_wins():
    assert grade("\\boxed{54} no wait \\boxed{55}", ["55"])
    assert not grade("\\boxed{55} no wait \\boxed{54}", ["55"])
    assert last_boxed("\\boxed{1} \\fbox{2}") == "2"
    assert last_boxed("\\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"


def test_unclosed_box_is_wrong():
    assert last_boxed("\\boxed{55") is None
    assert not grade("\\boxed{55", ["55"])
    assert not grade("\\boxed{55} then \\boxed{5", ["55"])  # the last box is unclosed


def test_number_literal_forms():
    assert as_number("1,000") == 1000 and as_number("-3.5") == -3.5 and as_number("\\$18") == 18
    assert as_number("\\frac{1}{2}") == 0.5 and as_number("3 \\times 10^{8}") == 3e8
    assert as_number("50\\%") == 50 and as_number("90^\\circ") == 90 and as_number("12 \\text{ cm}") == 12
    assert as_number("29 + 26") is None and as_number("") is None and as_number("x") is None
    assert as_number("\\frac{1}{0}") is None
    assert grade_answer(None, ["1"]) is False and grade_answer("  ", ["1"]) is False
    assert grade_answer("-5", ["-5"]) and not grade_answer("-5", ["5"])


# ------------------------------------------------------------------ eval.grader: strict vs math_verify

def _both(completion: str, answers: tuple[str, ...], reference: str | None = None) -> dict[str, bool]:
    return {grader: grade_samples([completion], answers, grader, reference=reference)[0][0] for grader in GRADERS}


def test_unboxed_final_answer_counts_only_for_math_verify():
    assert _both("So the answer is 5", ("5",)) == {"strict": False, "math_verify": True}
    assert _both("Therefore, the final answer is: $\\boxed{5}$. I hope it is correct", ("5",)) == {
        "strict": True, "math_verify": True}


def test_a_fraction_box_against_a_decimal_gold():
    # strict: a numeric gold needs a number literal; \frac12 is TeX's shorthand for \frac{1}{2} (Math-Verify's tests agree)
    assert _both("\\boxed{\\frac12}", ("0.5",)) == {"strict": True, "math_verify": True}
    assert _both("\\boxed{0.5}", ("\\frac{1}{2}",)) == {"strict": True, "math_verify": True}


def test_first_and_last_box():
    # strict takes the last box; math-verify (boxes outside $...$) reads every box as one set {3, 5}
    assert _both("\\boxed{5} hmm, no: \\boxed{3}", ("3",)) == {"strict": True, "math_verify": False}
    assert _both("\\boxed{3} hmm, no: \\boxed{5}", ("3",)) == {"strict": False, "math_verify": False}
    # inside $...$ math-verify takes the rightmost box, as strict does
    assert _both("$\\boxed{5}$ hmm, no: $\\boxed{3}$", ("3",)) == {"strict": True, "math_verify": True}


def test_math_verify_keeps_the_known_restatement_hack():
    """The paper's grader reads '29 + 26' out of an empty-boxed restatement and evaluates it: strict does not."""
    assert _both("29 + 26 equals \\boxed{}.", ("55",)) == {"strict": False, "math_verify": True}
    assert _both("\\boxed{}", ("55",)) == {"strict": False, "math_verify": False}


def test_math_verify_takes_the_gold_from_the_solution_when_there_is_one():
    solution = "We find $x = 2$, so the sum is $\\boxed{7}$."
    [gold] = math_verify_golds(("ignored",), solution)
    assert "7" in [str(g) for g in gold]
    assert grade_samples(["\\boxed{7}", "\\boxed{2}"], ("ignored",), "math_verify", reference=solution)[0] == [
        True, False]
    # the answers are the gold when there is no reference; a LaTeX answer expression targets cannot read is read
    # as LaTeX math
    assert grade_samples(["\\boxed{\\sqrt{2}}"], ("\\sqrt{2}",), "math_verify")[0] == [True]
    assert grade_samples(["\\boxed{\\sqrt{3}}"], ("\\sqrt{2}",), "math_verify")[0] == [False]


def test_math_verify_every_math500_answer_against_its_solution():
    """Each MATH-500 answer, boxed as Tina's template asks, is correct against the gold Tina's task takes (the
    solution); a wrong one is not."""
    problems = load_benchmark(DataSpec(name="math500", limit=40))
    for problem in problems:
        assert problem.reference and "\\boxed" in problem.reference
        right = f"Therefore, the final answer is: $\\boxed{{{problem.answers[0]}}}$. I hope it is correct"
        assert grade_samples([right], problem.answers, "math_verify", reference=problem.reference)[0] == [True], \
            problem.id
    assert grade_samples(["\\boxed{p + q}"], problems[1].answers, "math_verify",
                         reference=problems[1].reference)[0] == [False]


def test_graders_record_what_they_read():
    assert grade_samples(["\\boxed{4} and \\boxed{5}", "none"], ("5",), "strict") == ([True, False], ["5", None])
    correct, read = grade_samples(["the answer is 5", "nothing"], ("5",), "math_verify")
    assert correct == [True, False] and read == ["5", None]


def test_unknown_grader_is_one_line():
    with pytest.raises(ValueError, match=r"^grader: must be one of strict, math_verify, got 'x'$"):
        check_grader("x")
    with pytest.raises(ValueError, match="must be one of"):
        grade_samples(["\\boxed{1}"], ("1",), "lenient")


# ------------------------------------------------------------------ multiple choice: reading the letter

@pytest.mark.parametrize("text,letter", [
    ("Let me think.\nAnswer: C", "C"),
    ("**Answer:** $B$", "B"),
    ("**Answer**: (D)", "D"),
    ("So the correct answer is (B).", "B"),
    ("thus \\boxed{D}", "D"),
    ("thus \\boxed{\\text{A}}", "A"),
    ("thus \\boxed{(C)}", "C"),
    ("I compared the options.\n(C)", "C"),
    ("I compared the options.\nB.", "B"),
    ("Answer: B\n\nWait, that is wrong. \\boxed{C}", "C"),  # the last statement wins
    ("Option (C) fails, A fits too.\nAnswer: A", "A"),  # an option discussed on the way does not count
    ("Answer: Carbon", None),  # a word starting with a capital C is not a letter
    ("Because Both are Allowed.", None),
    ("\\boxed{E}", None),
    ("", None),
])
def test_strict_letter_extraction(text, letter):
    assert extract_letter(text) == letter


@pytest.mark.parametrize("text,letter", [
    ("Answer: C", "C"),
    ("blah\n\nAnswer: B", "B"),
    ("thus \\boxed{D}", "D"),
    ("Answer: Carbon", "C"),  # LightEval's last resort: the rightmost capital A-D anywhere
    ("Because of that.", "B"),
    ("Answer: A. Then again, what about B", "A"),  # an "answer:" anchor beats a later bare letter
    ("no capital letters here", None),
])
def test_math_verify_letter_is_lighteval_s(text, letter):
    assert math_verify_letter(text) == letter


def test_multiple_choice_grading_compares_letters():
    texts = ["Answer: C", "Answer: B", "no idea"]
    assert grade_samples(texts, ("C",), "strict", multiple_choice=True) == ([True, False, False], ["C", "B", None])
    assert grade_samples(texts, ("C",), "math_verify", multiple_choice=True) == (
        [True, False, False], ["C", "B", None])


# ------------------------------------------------------------------ rewards

def test_boxed_format_reward():
    fn = reward_function("boxed_format", 24)
    assert fn.__name__ == "boxed_format"
    completions = ["so \\boxed{}", "so \\boxed{12}", "no box", "\\boxed{1} and \\boxed{2}", "\\boxed{3"]
    assert fn(completions=completions, prompts=[""] * 5) == [0.0, 1.0, 0.0, 0.0, 0.0]


def test_accuracy_reward_plain_and_conversational():
    fn = reward_function("accuracy", 24)
    answers = [["55"], ["55"], ["12"], ["7"]]
    plain = ["\\boxed{55}", "29 + 26 equals \\boxed{}.", "\\boxed{12}", "7"]
    assert fn(prompts=["p"] * 4, completions=plain, answers=answers) == [1.0, 0.0, 1.0, 0.0]
    chat = [[{"role": "assistant", "content": text}] for text in plain]
    assert fn(prompts=["p"] * 4, completions=chat, answers=answers) == [1.0, 0.0, 1.0, 0.0]
    assert completion_text([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]) == "ab"


def test_cosine_reward_hand_computed():
    fn = reward_function("cosine", 20)  # max_len = 20 characters
    right12 = "abc\\boxed{5}"  # 12 chars, correct
    assert len(right12) == 12
    completions = ["\\boxed{5}" + " " * 11,  # 20 chars: progress 1 -> min_correct 0.5
                   "\\boxed{5}",            # 9 chars
                   "\\boxed{4}" + " " * 1,  # 10 chars, wrong: progress 0.5 -> -0.25
                   "\\boxed{4}" + " " * 31,  # 40 chars, wrong, capped: progress 1 -> 0.0
                   right12]
    got = fn(completions=completions, answers=[["5"]] * 5)
    expected = [0.5,
                0.5 + 0.25 * (1 + math.cos(9 / 20 * math.pi)),
                -0.25,
                0.0,
                0.5 + 0.25 * (1 + math.cos(12 / 20 * math.pi))]
    assert got == pytest.approx(expected)
    # shorter correct answers earn more; shorter wrong answers are penalised more
    assert got[1] > got[4] > got[0]
    assert got[2] < got[3]


def test_length_reward_hand_computed():
    fn = reward_function("length", 24)
    completions = ["\\boxed{5}",           # 9 chars, correct: lambda 0.5
                   "\\boxed{5}" + "x" * 5,  # 14, correct: 0.5 - 5/10 = 0
                   "\\boxed{4}" + "x" * 2,  # 11, wrong: lambda 0.3 -> min(0, 0.3) = 0
                   "\\boxed{4}" + "x" * 10]  # 19, wrong: lambda -0.5
    got = fn(completions=completions, answers=[["5"]] * 4)
    assert got == pytest.approx([0.5, 0.0, 0.0, -0.5])
    assert fn(completions=["\\boxed{5}", "\\boxed{4}"], answers=[["5"]] * 2) == [0.0, 0.0]  # equal lengths


def test_format_and_tag_count_rewards():
    think = reward_function("format", 24)
    tags = reward_function("tag_count", 24)
    good = "<think>\nreasoning\n</think>\n<answer>\\boxed{1}</answer>"
    assert think(completions=[good, "no tags", "<think>\nx</think>\n", good + "\n</think>\n"]) == [1.0, 0.0, 0.0, 0.0]
    assert tags(completions=[good, "<think>\nx", "x\n</think>\n", "none"]) == [1.0, 0.5, 0.5, 0.0]


# ---------------------------------------------------------------- issue 13, item 2: answers as models write them

@pytest.mark.parametrize("completion, gold", [
    ("\\boxed{x = 5}", "5"), ("\\boxed{n=5}", "5"), ("\\boxed{a_1 = 5}", "5"), ("\\boxed{\\theta = 30}", "30"),
    ("\\boxed{1{,}000}", "1000"), ("\\boxed{14{,}916}", "14916"), ("\\boxed{1\\,000}", "1000"),
    ("\\boxed{10^{3}}", "1000"), ("\\boxed{10^3}", "1000"), ("\\boxed{10^{-2}}", "0.01"),
    ("\\boxed{28 percent}", "28\\%"), ("\\boxed{28\\text{ percent}}", "28\\%"), ("\\boxed{28\\%}", "28"),
    ("\\boxed{\\dfrac{1}{2}}", "0.5"), ("\\boxed{\\tfrac{3}{4}}", "\\frac{3}{4}"), ("\\boxed{2\\frac{1}{2}}", "2.5"),
    ("\\boxed{12 \\text{ cm}}", "12"), ("\\boxed{5.}", "5"), ("\\boxed{5;}", "5"), ("\\boxed{x = \\frac{1}{2}}", "0.5"),
    ("\\boxed{x = \\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),
])
def test_answers_as_models_write_them_are_right(completion, gold):
    assert grade(completion, [gold])


@pytest.mark.parametrize("completion, gold", [
    ("\\boxed{29+26}", "55"), ("\\boxed{x = 29 + 26}", "55"), ("\\boxed{5x}", "5"), ("\\boxed{x = }", "5"),
    ("\\boxed{2\\frac{3}{2}}", "3.5"), ("\\boxed{10^{3}}", "100"), ("\\boxed{x = 5 = y}", "5"), ("\\boxed{}", "5"),
    ("x = 5", "5"),
])
def test_strictness_stays(completion, gold):
    """An expression that evaluates to the gold, an improper 'mixed number', an empty box or no box: still wrong."""
    assert not grade(completion, [gold])


@pytest.mark.parametrize("text, number", [
    ("\\frac13", 1 / 3), ("\\cfrac{1}{3}", 1 / 3), ("\\frac 59", 5 / 9), ("\\left( \\frac{1}{3} \\right)", 1 / 3),
    ("4 4/9", 40 / 9), ("-4 4/9", -40 / 9), ("1 000", 1000), ("11,\\! 111", 11111), ("28 pct", 28),
    ("125\\textnormal{ miles}", 125), ("11 7/6", None), ("11.0 4/9", None), ("32, 349", None), ("1 2", None),
    ("6 \\text{ and } 8", None), ("12\\text{ and }13", None), ("0,111", None), ("(9+1)", None),
])
def test_number_literals_as_tex_and_others_tests_read_them(text, number):
    """Issue 13 item 5: readings that Math-Verify's and LightEval's tests expect (tests/test_grading_external.py)."""
    assert as_number(text) == (pytest.approx(number) if number is not None else None)


def test_an_equation_gold_still_compares_whole():
    assert grade("\\boxed{y = 2x + 3}", ["y = 2x + 3"])


@pytest.mark.parametrize("name", ["arithmetic", "aime24", "aime25", "amc23", "math500", "minerva", "gsm8k", "mawps",
                                  "svamp"])
def test_every_bundled_gold_grades_its_own_box_correct(name):
    """Self-consistency: ``\\boxed{<gold>}`` is right for every accepted gold of every bundled benchmark."""
    from tina_sweep.trial.spec import DataSpec
    from tina_sweep.trial.datasets import load_benchmark

    problems = load_benchmark(DataSpec(name=name, limit=1000 if name == "arithmetic" else None))
    assert len(problems) >= 30
    unread = [answer for problem in problems for answer in problem.answers if not grade(f"\\boxed{{{answer}}}", [answer])]
    assert not unread, f"{name}: {len(unread)} golds fail their own box, e.g. {unread[:3]}"


# ---------------------------------------------------------------- issue 13, item 4: why each sample failed

@pytest.mark.parametrize("completion, golds, reason", [
    ("The answer is 55.", ["55"], "no_box"), ("\\boxed{55", ["55"], "no_box"), ("\\boxed{ }", ["55"], "empty_box"),
    ("\\boxed{29+26}", ["55"], "not_a_number"), ("\\boxed{54}", ["55"], "wrong_value"),
    ("\\boxed{x^2}", ["x^3"], "wrong_value"), ("\\boxed{55}", ["55"], None), ("\\boxed{x = 55}", ["55"], None),
])
def test_each_wrong_sample_says_why(completion, golds, reason):
    from tina_sweep.trial.grading import failure_reason

    assert failure_reason(completion, golds) == reason
    assert (reason is None) == grade(completion, golds)


def test_outcome_rows_record_the_reasons():
    from tina_sweep.trial.datasets import Problem
    from tina_sweep.trial.evaluate.scoring import problem_outcome

    outcome = problem_outcome(Problem("p-0", "What is 29 + 26?", ("55",)),
                              ["\\boxed{55}", "55", "\\boxed{}", "\\boxed{29+26}", "\\boxed{56}"], "strict")
    assert outcome["correct"] == [True, False, False, False, False]
    assert outcome["reasons"] == [None, "no_box", "empty_box", "not_a_number", "wrong_value"]


def test_a_factorial_is_not_its_operand():
    """``5!`` is 120 written as an expression: neither 5 (a trailing "!" is not punctuation) nor, strictly, 120."""
    assert not grade("\\boxed{5!}", ["5"]) and not grade("\\boxed{5!}", ["120"])
    assert grade("\\boxed{120}.", ["120"]) and grade("\\boxed{3!}", ["3!"])
