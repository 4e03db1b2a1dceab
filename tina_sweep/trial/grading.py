"""Answer grading: the strict grader (the default) and ``math_verify``, the paper's (``eval.grader``).

Strict: the answer is taken only from where the prompt asks for it: the content of the *last* ``\\boxed{...}`` in
the completion. There is no fallback over the rest of the text (a model learned to restate the question,
"29 + 26 equals \\boxed{}", and math-verify's default parsing graded the restated expression as 55), an
empty box is wrong, and when the gold answer is a number the box must hold a number literal, not an
expression that evaluates to it. A multiple-choice answer is the letter of the last "Answer: C", ``\\boxed{C}`` or
final line "(C)".

``math_verify``: Tina's LightEval metrics, through math-verify's own parse and verify: the answer is the match of
Tina's extraction targets with the best priority (a box or "final answer is ... I hope" first), the rightmost
within it; the gold is where Tina's tasks take it; letters are read with LightEval's patterns.
"""

from __future__ import annotations

import math
import re

from math_verify import ExprExtractionConfig, LatexExtractionConfig, StringExtractionConfig, parse, verify
from math_verify.parser import extract_target_from_pred

_BOX_OPENERS = ("\\boxed{", "\\fbox{")


def last_boxed(text: str) -> str | None:
    """Return the content of the last ``\\boxed{...}`` (balanced braces), or None if there is none."""
    start = max(text.rfind(opener) for opener in _BOX_OPENERS)
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth = 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j]
    return None  # unclosed box: no answer


_UNIT_TEXT = re.compile(r"\\(?:text|textnormal|textrm|textbf|textit|mbox|mathrm)\{[^{}]*\}")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
# A LaTeX fraction's numerator or denominator: braced, or a single digit (TeX's shorthand \frac13 for \frac{1}{3})
_FRAC_PART = r"(?:\{([-+]?\d+)\}|(\d))"
_FRAC = re.compile(r"([-+]?)\\[cdt]?frac" + _FRAC_PART + _FRAC_PART)
_MIXED = re.compile(r"([-+]?)(\d+)\s*\\[cdt]?frac" + _FRAC_PART + _FRAC_PART)
_MIXED_SLASH = re.compile(r"([-+]?)(\d+)\s+(\d+)/(\d+)")  # 4 4/9: a whole number, a space, a proper fraction
_SPACED_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:\s\d{3})+(?:\.\d+)?")  # 1 000, also 1\,000
_POWER_OF_TEN = re.compile(r"10\^\{?([-+]?\d+)\}?")
_PERCENT_WORD = re.compile(r"\s*(?:percent(?:age)?|per\s*cent|pct)$", re.IGNORECASE)
# A final "x = 5", "n=5", "a_1 = 5", "\\theta = 5": a variable named, then its value (the value is the answer)
_NAMED_VALUE = re.compile(r"^\s*(?:[A-Za-z](?:_\{?\w+\}?)?|\\[A-Za-z]+)\s*=\s*([^=]+)$")
_SCI = re.compile(r"([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?:\\times|\\cdot|\*|x)\s*10\^\{?([-+]?\d+)\}?")
_THOUSANDS = re.compile(r"^[-+]?[1-9]\d{0,2}(,\d{3})+(\.\d+)?$")  # 1,000 and 14,916, not 0,111 (a decimal comma)


def as_number(text: str) -> float | None:
    """Read a number literal as people write one: ``42``, ``-3.5``, ``1,000``, ``1{,}000``, ``1\\,000``, ``1 000``,
    ``11,\\! 111``, ``\\frac{1}{2}`` (also ``\\dfrac``, ``\\tfrac``, ``\\cfrac``, TeX's ``\\frac12``),
    ``2\\frac{1}{2}``, ``4 4/9``, ``3 \\times 10^{8}``, ``10^{3}``, ``$18``, ``\\left( \\frac{1}{3} \\right)``.

    Units in ``\\text{}`` (``\\textbf``, ``\\textnormal``, ``\\mbox`` ...), dollar signs, percent marks and words,
    degree marks and trailing punctuation are ignored; anything else (an expression such as ``29 + 26``, a list such
    as ``32, 349``, numbers side by side such as ``6 8``) is not a number and returns None.
    """
    s = _UNIT_TEXT.sub(" ", str(text))  # a space, so that 12\text{ and }13 stays two numbers
    s = s.replace("{,}", ",")
    s = re.sub(r",\\!\s*", ",", s)  # 11,\! 111 is LaTeX's thousands separator, the space after it typesetting
    for junk in ("\\$", "$", "\\%", "%", "^\\circ", "^{\\circ}", "\\!", "~"):
        s = s.replace(junk, "")
    s = s.replace("\\,", " ").replace("\\ ", " ")
    s = re.sub(r"\\(?:left|right)\b", "", s)  # \left( \frac{1}{3} \right): sizing only
    s = _PERCENT_WORD.sub("", s.strip()).rstrip(".,;:").strip()  # not "!": 5! is a factorial, not 5
    if s.startswith("(") and s.endswith(")") and "(" not in s[1:-1] and ")" not in s[1:-1] and "," not in s:
        s = s[1:-1].strip()  # a number in parentheses, not a pair
    if not s or re.search(r",\s", s):
        return None  # a comma and a space separate listed answers: "32, 349" is not 32349
    if m := _MIXED_SLASH.fullmatch(s):
        sign, whole, num, den = m.groups()  # 4 4/9 is 40/9; 11 7/6 is no number
        if int(den) == 0 or int(num) >= int(den):
            return None
        value = int(whole) + int(num) / int(den)
        return -value if sign == "-" else value
    if _SPACED_THOUSANDS.fullmatch(s):
        s = re.sub(r"\s", "", s)
    if re.search(r"\d\s+\d", s):
        return None  # digits either side of a space are two numbers, not one
    s = re.sub(r"\s+", "", s)
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    if _NUMBER.fullmatch(s):
        return float(s)
    if m := _FRAC.fullmatch(s):
        sign, num, den = m.group(1), m.group(2) or m.group(3), m.group(4) or m.group(5)
        # LaTeX fraction notation is a number literal, reduced or not
        if int(den) == 0:
            return None
        return -int(num) / int(den) if sign == "-" else int(num) / int(den)
    if m := re.fullmatch(r"([-+]?\d+)/([-+]?\d+)", s):
        return _reduced_fraction(int(m.group(1)), int(m.group(2)))
    if m := _SCI.fullmatch(s):
        return float(m.group(1)) * 10 ** int(m.group(2))
    if m := _POWER_OF_TEN.fullmatch(s):
        return 10.0 ** int(m.group(1))
    if m := _MIXED.fullmatch(s):
        sign, whole, num, den = m.group(1), m.group(2), m.group(3) or m.group(4), m.group(5) or m.group(6)
        # a mixed number: 2\frac{1}{2} is 2.5
        if int(den) == 0 or int(num) >= int(den):
            return None
        value = int(whole) + int(num) / int(den)
        return -value if sign == "-" else value
    return None


def final_value(prediction: str) -> str:
    """The value a boxed answer gives: for a final ``x = 5`` (a variable named, then its value) the right-hand
    side, else the answer itself."""
    if m := _NAMED_VALUE.match(prediction):
        return m.group(1).strip()
    return prediction


def _reduced_fraction(numerator: int, denominator: int) -> float | None:
    """A slash fraction is a number literal only in lowest terms: ``1/2`` is, ``290/2`` is a division to carry
    out."""
    if denominator == 0 or math.gcd(numerator, denominator) != 1:
        return None
    return numerator / denominator


def numbers_equal(a: float, b: float) -> bool:
    """Integers must match exactly (AMC golds such as 27.0 are integers); other values up to a relative
    tolerance of 1e-4 (so 4.6667 matches 14/3)."""
    if a.is_integer() and b.is_integer():
        return a == b
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-9)


# A sentence's full stop, comma or semicolon written inside the box after the answer ("\\sqrt{2}.", "(1,2)."); not
# an ellipsis ("1, 2, 3, ...")
_SENTENCE_END = re.compile(r"(.*[^.\s])\s*[.,;]\s*", re.DOTALL)


# "\\text{and}" between groups of values ("p = 5, q = 2 \\quad \\text{and} \\quad p = 7, q = 2") separates solutions;
# math-verify would read it as one more comma and lose which values go together
_AND = re.compile(r"\s*(?:\\quad\s*)?\\text\{\s*and\s*\}(?:\s*\\quad)?\s*")


def _solution_groups(answer: str) -> str:
    """Solutions joined by "and", each a group of comma-separated values, as math-verify reads separate tuples:
    joined by semicolons. Anything else unchanged."""
    parts = _AND.split(answer)
    return " ; ".join(parts) if len(parts) > 1 and all("," in part for part in parts) else answer


def _symbolic_equal(prediction: str, gold: str) -> bool:
    if m := _SENTENCE_END.fullmatch(prediction):
        prediction = m.group(1)
    prediction, gold = _solution_groups(prediction), _solution_groups(gold)
    config = [LatexExtractionConfig(boxed_match_priority=0)]
    try:
        parsed_gold = parse(f"\\boxed{{{gold}}}", extraction_config=config)
        parsed_pred = parse(f"\\boxed{{{prediction}}}", extraction_config=config)
        return bool(parsed_gold and parsed_pred and verify(parsed_gold, parsed_pred))
    except Exception:  # math-verify's own timeouts or a parser crash: not a match
        return False


def grade_answer(prediction: str | None, golds: list[str]) -> bool:
    """Is the extracted answer ``prediction`` equal to any accepted gold answer?"""
    if prediction is None or not prediction.strip():
        return False
    value = final_value(prediction)  # "x = 5" gives 5; a gold that is itself an equation compares whole
    predicted_number = as_number(value)
    for gold in golds:
        gold = gold.strip()
        gold_number = as_number(gold)
        if gold_number is not None:
            if predicted_number is not None and numbers_equal(predicted_number, gold_number):
                return True
            continue  # a numeric gold needs a number literal in the box
        if _symbolic_equal(prediction, gold) or (value != prediction and "=" not in gold
                                                 and _symbolic_equal(value, gold)):
            return True
    return False


# Golds the strict grader cannot compare with a boxed answer: a number with a unit or label after it ('9 (apples)',
# '5 cm', '15 balls'), which is neither a number nor math; or plain words ('nine apples').
_NUMBER_WITH_LABEL = re.compile(r"^\s*(?:\\?\$)?\s*[-+]?\d[\d,]*(?:\.\d+)?\s*"
                                r"(?:\(\s*[A-Za-z][A-Za-z .]*\)|[A-Za-z]{2,}[A-Za-z .]*)\s*$")
_PLAIN_WORDS = re.compile(r"^\s*[A-Za-z]+(?:\s+[A-Za-z]+)+\s*\.?\s*$")
# A word (three or more letters, lower case or capitalised, standing alone) beside a number, outside LaTeX commands,
# environments and \text{}: 'Answer: 9 apples'; not a product of variables such as 'RCs' or 'abc^2'
_LATEX_WORDS = re.compile(r"\\(?:text|mbox|mathrm|textbf|operatorname|begin|end)\{[^{}]*\}|\\[A-Za-z]+")
_OPERATOR = re.compile(r"[-+=^_{}\\*/<>|]")  # a gold with these is algebra ('\sin 3x + abc'), not a label
_WORD = re.compile(r"(?<![A-Za-z\\^_{])(?:[A-Z][a-z]{2,}|[a-z]{3,})(?![A-Za-z^_{}(])")


def ungradable_gold(gold: str) -> str | None:
    """Why a gold answer cannot be graded (a boxed answer could never match it), or None when it can."""
    if as_number(gold) is not None:
        return None
    if _NUMBER_WITH_LABEL.match(gold):
        return "a number with a unit or label (answer_format: number reads the number)"
    if _PLAIN_WORDS.match(gold):
        return "words, not a number or math"
    bare = _LATEX_WORDS.sub(" ", gold)
    if re.search(r"\d", bare) and _WORD.search(bare) and not _OPERATOR.search(bare.strip().lstrip("+-")):
        return "a number among words (answer_format: number or regex reads the number)"
    return None  # math, or text math-verify compares as text (LightEval's fallback; some Minerva golds)


def _math_of(gold: str):
    """The expression math-verify reads from ``\\boxed{gold}`` (as the strict grader compares it), or None."""
    try:
        parsed = parse(f"\\boxed{{{gold}}}", extraction_config=[LatexExtractionConfig(boxed_match_priority=0)])
    except Exception:  # a parser crash or timeout: nothing read
        return None
    return next((p for p in parsed if not isinstance(p, str)), None)


def normalised_gold(gold: str) -> str:
    """What the strict grader compares a gold as, for the outcome rows: a number's value (``1{,}000`` -> ``1000``,
    ``\\frac{1}{2}`` -> ``0.5``), else the expression math-verify reads (``\\frac{\\sqrt3}{2}`` ->
    ``sqrt(3)/2``), else the text itself."""
    number = as_number(gold.strip())
    if number is not None:
        return str(int(number)) if number.is_integer() else repr(number)
    expression = _math_of(gold.strip())
    return gold.strip() if expression is None else str(expression)


def grade(completion: str, golds: list[str]) -> bool:
    """Grade a completion: its last box against the accepted gold answers."""
    return grade_answer(last_boxed(completion), golds)


def failure_reason(completion: str, golds: list[str] | tuple[str, ...]) -> str | None:
    """Why the strict grader finds a completion wrong (None when it is right): see ``why_wrong``."""
    box = last_boxed(completion)
    return None if grade_answer(box, list(golds)) else why_wrong(box, golds)


# Why a wrong sample is wrong (``why_wrong``): the model did not give an answer where asked, or gave a wrong one
FORMAT_FAILURES = ("no_box", "empty_box", "truncated")
WRONG_ANSWERS = ("not_a_number", "wrong_value")


def why_wrong(box: str | None, golds: list[str] | tuple[str, ...], truncated: bool = False) -> str:
    """Why a sample the strict grader found wrong is wrong, from its last box's content (``last_boxed``):
    ``truncated`` (no closed box, and generation stopped at max_new_tokens), ``no_box`` (no closed box),
    ``empty_box``, ``not_a_number`` (the gold is a number, the box holds something else, e.g. an expression) or
    ``wrong_value``. The first three are format failures (``FORMAT_FAILURES``), the last two wrong answers."""
    if box is None:
        return "truncated" if truncated else "no_box"
    if not box.strip():
        return "empty_box"
    numeric = any(as_number(gold.strip()) is not None for gold in golds)
    return "not_a_number" if numeric and as_number(final_value(box)) is None else "wrong_value"


# ---------------------------------------------------------------- graders

GRADERS = ("strict", "math_verify")


def check_grader(name: str) -> str:
    """``name`` if it is a known grader, else a one-line ValueError."""
    if name not in GRADERS:
        raise ValueError(f"grader: must be one of {', '.join(GRADERS)}, got {name!r}")
    return name


# ---------------------------------------------------------------- multiple choice, strict

# Where the strict grader reads a letter: a statement of the answer ("Answer: C", "**Answer:** $C$", "the answer
# is (C)"), a box (\boxed{C}, \boxed{\text{C}}, \boxed{(C)}), or a last line that is the letter alone ("(C)",
# "C.", "**C**"). The last of these in the text wins; a letter anywhere else (an option discussed on the way)
# does not count.
_ANSWER_LETTER = re.compile(r"(?i:\banswer)(?:\s+is)?(?:\*\*)?\s*:?\s*(?:\*\*)?\s*\$?\s*"
                            r"(?:\\boxed\{\s*|\\text(?:bf)?\{\s*|\()?([A-D])\b")
_BOXED_LETTER = re.compile(r"\\boxed\{\s*(?:\\text(?:bf)?\{\s*)?\(?([A-D])\)?\s*\}")
_LETTER_LINE = re.compile(r"^[\s*$]*\(?([A-D])\)?[\s*$.]*$")


def extract_letter(text: str) -> str | None:
    """The option letter a completion gives (see the patterns above: the last occurrence wins), or None."""
    found = [(m.start(1), m.group(1)) for pattern in (_ANSWER_LETTER, _BOXED_LETTER) for m in pattern.finditer(text)]
    lines = [line for line in text.split("\n") if line.strip()]
    if lines and (m := _LETTER_LINE.match(lines[-1])):
        found.append((len(text), m.group(1)))
    return max(found)[1] if found else None


# ---------------------------------------------------------------- math-verify, as Tina's LightEval tasks

# Tina's metrics (scripts/eval/run_eval_custom_tasks.py, quoted in data/reference/tina_source/evaluation.json):
# predictions are read with expression and LaTeX targets, a box matched first; the gold with LaTeX targets
# (MATH-500, Minerva: from the full solution) or expression targets (AIME, AMC: from the answer); a first match is
# kept even when it does not parse (fallback_mode "first_match"); numbers are compared to 5 decimals.
MATH_VERIFY_PRECISION = 5
MATH_VERIFY_FALLBACK = "first_match"


def pred_targets() -> tuple:
    """How Tina's math tasks read a prediction (``pred_extraction_target``)."""
    return (ExprExtractionConfig(), LatexExtractionConfig(boxed_match_priority=0))


def gold_targets(from_reference: bool) -> tuple:
    """How Tina's math tasks read a gold (``gold_extraction_target``): LaTeX from a solution (latex_gold_metric),
    expressions from an answer (expr_gold_metric)."""
    return (LatexExtractionConfig(),) if from_reference else (ExprExtractionConfig(),)


def math_verify_golds(answers: tuple[str, ...] | list[str], reference: str | None = None) -> list[list]:
    """The gold of each accepted answer, parsed as Tina's tasks parse theirs.

    With a ``reference`` (the solution Tina's MATH-500 and Minerva tasks take their gold from), that text with
    LaTeX targets; else each answer with expression targets (Tina's AIME and AMC tasks), then -- for answers no
    expression target reads, which Tina's benchmarks do not have -- as LaTeX math (``$answer$``). A gold nothing
    reads stays its text, compared as text (LightEval's fallback)."""
    if reference is not None:
        return [parse(reference, gold_targets(True), fallback_mode=MATH_VERIFY_FALLBACK) or [reference]]
    golds = []
    for answer in answers:
        parsed = parse(answer, gold_targets(False), fallback_mode=MATH_VERIFY_FALLBACK)
        if not parsed or all(isinstance(p, str) for p in parsed):
            parsed = parse(f"${answer}$", (LatexExtractionConfig(),), fallback_mode=MATH_VERIFY_FALLBACK) or [answer]
        golds.append(parsed)
    return golds


def math_verify_grade(completion: str, golds: list[list]) -> tuple[bool, str | None]:
    """Tina's math metric on one completion: is the extracted answer equal to a gold? And what was extracted
    (the matched text)."""
    predicted = parse(completion, pred_targets(), fallback_mode=MATH_VERIFY_FALLBACK)
    if not predicted:
        return False, None
    correct = any(verify(gold, predicted, float_rounding=MATH_VERIFY_PRECISION) for gold in golds)
    return correct, str(predicted[-1])


def _lighteval_letter_patterns(letters: str = "ABCD") -> list[tuple[re.Pattern[str], int]]:
    """LightEval 0.8.1's ``IndicesExtractionConfig(prefix_for_extraction="NativeLetters")`` patterns in English
    (lighteval/metrics/utils/extractive_match_utils.py, ``lazy_indices_regex``), with their priorities; the group
    is named as math-verify's string extraction reads it."""
    keys = f"(?P<string_keys>{'|'.join(re.escape(letter) for letter in letters)})"
    suffix = r"(?:\*\*)?(?:[\.]|[\,]|[\:]|\ |$)"
    answer = rf"(^|\ )(?:\*\*)?{keys}{suffix}"
    return [(re.compile(pattern), priority) for pattern, priority in [
        (rf"(?i:final answer is)\:?\s*{keys}\.?\s?I hope", 0),
        (rf"(?i:final answer.{{0,100}}?)\s+is\:?\s*{keys}", 50),
        (rf"(?i:answer)[\:].{{0,50}}?{answer}", 100),
        (rf"(?i:answer).{{0,50}}?{answer}", 150),
        (rf"^(?:\*\*)?{keys}{suffix}", 200),
        (answer, 250),
        (keys, 300),
    ]]


_LETTER_PATTERNS = _lighteval_letter_patterns()


def math_verify_letter(completion: str) -> str | None:
    """Tina's GPQA metric's reading of a completion: LightEval's letter patterns, the best priority first, the
    rightmost match within it (math-verify's extraction loop). A bare capital A-D anywhere is the last resort."""
    found = extract_target_from_pred(completion, [(_LETTER_PATTERNS, StringExtractionConfig(lowercase=False))],
                                     fallback_mode="no_fallback", extraction_mode="any_match")
    return found[0] if found else None


# ---------------------------------------------------------------- one problem's samples

def grade_samples(completions: list[str], answers: tuple[str, ...] | list[str], grader: str = "strict", *,
                  multiple_choice: bool = False, reference: str | None = None) -> tuple[list[bool], list[str | None]]:
    """Grade one problem's completions with ``grader``: whether each is correct, and what was read from each (the
    last box's content, the matched text, or an option letter). A multiple-choice problem's answer is its
    correct letter."""
    check_grader(grader)
    if multiple_choice:
        read = extract_letter if grader == "strict" else math_verify_letter
        letters = [read(text) for text in completions]
        return [letter is not None and letter in answers for letter in letters], letters
    if grader == "strict":
        extracted = [last_boxed(text) for text in completions]
        return [grade_answer(box, list(answers)) for box in extracted], extracted
    golds = math_verify_golds(answers, reference)
    graded = [math_verify_grade(text, golds) for text in completions]
    return [correct for correct, _ in graded], [read for _, read in graded]
