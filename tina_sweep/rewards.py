"""Reward functions for GRPO, by name (``accuracy``, ``boxed_format``, ``format``, ``tag_count``, ``cosine``,
``length``), with TRL's reward signature: ``f(prompts, completions, answers, **kwargs) -> list[float]``.

``accuracy`` and ``boxed_format`` use the strict grader (last box only; an empty box earns nothing).
``format``, ``tag_count``, ``cosine`` and ``length`` follow the definitions used by the Tina recipes
(open-r1 / Kimi 1.5), measured in characters of the completion text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from tina_sweep.grading import grade, last_boxed

RewardFunction = Callable[..., list[float]]


def completion_text(completion: object) -> str:
    """TRL passes plain strings, or for chat prompts a list of messages: return the text."""
    if isinstance(completion, list):
        return "".join(message.get("content", "") for message in completion)
    return str(completion)


def _correct(completions: list, answers: list) -> list[bool]:
    return [grade(completion_text(c), list(golds)) for c, golds in zip(completions, answers)]


def accuracy(completions: list, answers: list, **_: object) -> list[float]:
    """1 if the last box holds a correct answer, else 0."""
    return [float(ok) for ok in _correct(completions, answers)]


def boxed_format(completions: list, **_: object) -> list[float]:
    """1 if the completion ends its answer in exactly one non-empty box, else 0."""
    rewards = []
    for completion in completions:
        text = completion_text(completion)
        content = last_boxed(text)
        single = text.count("\\boxed{") == 1
        rewards.append(float(single and content is not None and content.strip() != ""))
    return rewards


_THINK_CLOSED = re.compile(r"^.*?\n</think>\n.*$", re.DOTALL)


def think_format(completions: list, **_: object) -> list[float]:
    """Tina's ``format``: 1 if the reasoning block is closed exactly once (``</think>`` on its own line)."""
    return [float(completion_text(c).count("\n</think>\n") == 1 and bool(_THINK_CLOSED.match(completion_text(c))))
            for c in completions]


def tag_count(completions: list, **_: object) -> list[float]:
    """0.5 for exactly one opening ``<think>\\n`` and 0.5 for exactly one closing ``\\n</think>\\n``."""
    rewards = []
    for completion in completions:
        text = completion_text(completion)
        rewards.append(0.5 * (text.count("<think>\n") == 1) + 0.5 * (text.count("\n</think>\n") == 1))
    return rewards


def make_cosine(max_len: int = 1000, min_correct: float = 0.5, max_correct: float = 1.0,
                min_wrong: float = -0.5, max_wrong: float = 0.0) -> RewardFunction:
    """Length-scaled correctness: shorter correct answers score higher, longer wrong ones less badly."""

    def cosine(completions: list, answers: list, **_: object) -> list[float]:
        rewards = []
        for text, ok in zip((completion_text(c) for c in completions), _correct(completions, answers)):
            progress = min(len(text), max_len) / max_len
            low, high = (min_correct, max_correct) if ok else (max_wrong, min_wrong)
            rewards.append(low + 0.5 * (high - low) * (1.0 + math.cos(progress * math.pi)))
        return rewards

    return cosine


def length(completions: list, answers: list, **_: object) -> list[float]:
    """Kimi 1.5 length reward over the group: lambda = 0.5 - (len - min) / (max - min); wrong: min(0, lambda)."""
    lengths = [len(completion_text(c)) for c in completions]
    shortest, longest = min(lengths), max(lengths)
    if longest == shortest:
        return [0.0] * len(completions)
    rewards = []
    for size, ok in zip(lengths, _correct(completions, answers)):
        lam = 0.5 - (size - shortest) / (longest - shortest)
        rewards.append(lam if ok else min(0.0, lam))
    return rewards


def reward_function(name: str, max_completion_length: int) -> RewardFunction:
    """The reward function registered under ``name``, named so TRL logs it as ``rewards/<name>``."""
    table: dict[str, RewardFunction] = {
        "accuracy": accuracy,
        "boxed_format": boxed_format,
        "format": think_format,
        "tag_count": tag_count,
        "cosine": make_cosine(max_len=max(max_completion_length, 1)),
        "length": length,
    }
    function = table[name]
    function.__name__ = name
    return function
