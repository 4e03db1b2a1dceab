"""Strict answer grading with math-verify.

The answer is taken only from where the prompt asks for it: the content of the *last* ``\\boxed{...}`` in
the completion. There is no fallback over the rest of the text (a model learned to restate the question,
"29 + 26 equals \\boxed{}", and math-verify's default parsing graded the restated expression as 55), an
empty box is wrong, and when the gold answer is a number the box must hold a number literal, not an
expression that evaluates to it.
"""

from __future__ import annotations

import math
import re

from math_verify import LatexExtractionConfig, parse, verify

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


_UNIT_TEXT = re.compile(r"\\(?:text|mbox|mathrm)\{[^{}]*\}")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_FRAC = re.compile(r"([-+]?)\\d?frac\{([-+]?\d+)\}\{([-+]?\d+)\}")
_SCI = re.compile(r"([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?:\\times|\\cdot|\*|x)\s*10\^\{?([-+]?\d+)\}?")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$")


def as_number(text: str) -> float | None:
    """Read a number literal (``42``, ``-3.5``, ``1,000``, ``\\frac{1}{2}``, ``3 \\times 10^{8}``, ``$18``).

    Units in ``\\text{}``, dollar signs, percent and degree marks are ignored; anything else (an expression
    such as ``29 + 26``) is not a number and returns None.
    """
    s = _UNIT_TEXT.sub("", str(text)).strip()
    for junk in ("\\$", "$", "\\%", "%", "^\\circ", "^{\\circ}", "\\!", "\\,", "\\ ", "~", " "):
        s = s.replace(junk, "")
    s = s.rstrip(".").strip()
    if not s:
        return None
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    if _NUMBER.fullmatch(s):
        return float(s)
    if m := _FRAC.fullmatch(s):
        sign, num, den = m.groups()  # LaTeX fraction notation is a number literal, reduced or not
        if int(den) == 0:
            return None
        return -int(num) / int(den) if sign == "-" else int(num) / int(den)
    if m := re.fullmatch(r"([-+]?\d+)/([-+]?\d+)", s):
        return _reduced_fraction(int(m.group(1)), int(m.group(2)))
    if m := _SCI.fullmatch(s):
        return float(m.group(1)) * 10 ** int(m.group(2))
    return None


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


def _symbolic_equal(prediction: str, gold: str) -> bool:
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
    predicted_number = as_number(prediction)
    for gold in golds:
        gold = gold.strip()
        gold_number = as_number(gold)
        if gold_number is not None:
            if predicted_number is not None and numbers_equal(predicted_number, gold_number):
                return True
            continue  # a numeric gold needs a number literal in the box
        if _symbolic_equal(prediction, gold):
            return True
    return False


def grade(completion: str, golds: list[str]) -> bool:
    """Grade a completion: its last box against the accepted gold answers."""
    return grade_answer(last_boxed(completion), golds)
