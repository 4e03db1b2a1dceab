"""Reward functions for GRPO, by name (``accuracy``, ``boxed_format``, ``format``, ``tag_count``, ``cosine``,
``length``, ``length_l1_exact``, ``length_l1_max``, ``reasoning_steps``, ``repetition_penalty``, ``overlong``), with
TRL's reward signature: ``f(prompts, completions, answers, **kwargs) -> list[float]``, all in one registry
(``REWARDS``) that the spec reads its reward names and parameters from.

``accuracy`` and ``boxed_format`` use the strict grader (last box only; an empty box earns nothing).
The others follow the definitions of the Tina recipes (tina/post_train_hf/rewards.py, from open-r1 / Kimi 1.5 /
L1 / "Demystifying Long CoT"), measured in characters (or words, for repetition) of the completion text; where
they need correctness they use the strict grader too (Tina's used math-verify's first match, boxed first).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from tina_sweep.trial.grading import grade, last_boxed

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


def make_cosine(max_len: int = 1000, min_value_correct: float = 0.5, max_value_correct: float = 1.0,
                min_value_wrong: float = -0.5, max_value_wrong: float = 0.0, clip_length: bool = True
                ) -> RewardFunction:
    """Length-scaled correctness (open-r1's cosine_scaled_reward): r = low + (high - low)(1 + cos(pi p)) / 2 with
    p = len / max_len; correct answers go from max_value_correct (empty) to min_value_correct (p = 1), wrong ones
    from min_value_wrong (empty) to max_value_wrong (p = 1). With the defaults shorter correct answers score higher
    and longer wrong ones less badly. The Tina recipes pass min_value_wrong 0.0, max_value_wrong -0.5 (so a longer
    wrong answer is penalised *more*) and do not clip p at 1 (``clip_length=False``: past max_len the reward
    follows the cosine back up and down)."""

    def cosine(completions: list, answers: list, **_: object) -> list[float]:
        rewards = []
        for text, ok in zip((completion_text(c) for c in completions), _correct(completions, answers)):
            progress = (min(len(text), max_len) if clip_length else len(text)) / max_len
            low, high = (min_value_correct, max_value_correct) if ok else (max_value_wrong, min_value_wrong)
            rewards.append(low + 0.5 * (high - low) * (1.0 + math.cos(progress * math.pi)))
        return rewards

    return cosine


def tina_cosine_params(max_len: int = 1000) -> dict:
    """The cosine parameters of the Tina recipes: tina/config.py's defaults (min_value_wrong 0.0, max_value_wrong
    -0.5, correct 0.5..1.0, max_len 1000; its train script passes --cosine_max_len 3584 for open_rs3, its Dr.GRPO
    ablation, open_r1 and thoughts), with open-r1's unclipped length."""
    return {"max_len": max_len, "min_value_wrong": 0.0, "max_value_wrong": -0.5, "min_value_correct": 0.5,
            "max_value_correct": 1.0, "clip_length": False}


def length(completions: list, answers: list, **_: object) -> list[float]:
    """Kimi 1.5 length reward over the completions of the call (one group: see ``per_group``): lambda = 0.5 -
    (len - min) / (max - min); wrong: min(0, lambda); 0 for all when every length is equal."""
    lengths = [len(completion_text(c)) for c in completions]
    shortest, longest = min(lengths), max(lengths)
    if longest == shortest:
        return [0.0] * len(completions)
    rewards = []
    for size, ok in zip(lengths, _correct(completions, answers)):
        lam = 0.5 - (size - shortest) / (longest - shortest)
        rewards.append(lam if ok else min(0.0, lam))
    return rewards


_STEP_MARKERS = re.compile(r"(Step \d+:|^\d+\.|\n-|\n\*|First,|Second,|Next,|Finally,)")


def reasoning_steps(completions: list, **_: object) -> list[float]:
    """min(1, markers / 3): 'Step N:', 'N.' at the very start, a new line opening with '-' or '*', or 'First,',
    'Second,', 'Next,', 'Finally,' (Tina's regex, without re.MULTILINE, so '^' matches only the text's start)."""
    return [min(1.0, len(_STEP_MARKERS.findall(completion_text(c))) / 3) for c in completions]


def make_repetition_penalty(ngram_size: int = 3, max_penalty: float = -1.0) -> RewardFunction:
    """N-gram repetition penalty ("Demystifying Long CoT", App. C.2): (1 - distinct / total n-grams of the
    lower-cased words) x max_penalty; 0 for a text with fewer than n words."""
    if max_penalty > 0:
        raise ValueError(f"max_penalty {max_penalty} should not be positive")
    size = int(ngram_size)

    def repetition_penalty(completions: list, **_: object) -> list[float]:
        rewards = []
        for completion in completions:
            words = completion_text(completion).lower().split()
            if len(words) < size:
                rewards.append(0.0)
                continue
            grams = list(zip(*[words[i:] for i in range(size)]))
            rewards.append((1 - len(set(grams)) / len(grams)) * max_penalty)
        return rewards

    return repetition_penalty


def _target_lengths(kwargs: dict, count: int) -> list[int]:
    targets = kwargs.get("target_length")
    if targets is None or len(targets) != count:
        raise ValueError("the length_l1_* rewards need a target_length per completion (set prompt.target_length_range)")
    return [int(t) for t in targets]


def make_length_l1_exact(alpha: float = 0.0003) -> RewardFunction:
    """L1-Exact (Aggarwal & Welleck, 2025) as the Tina recipe defines it: correct -> 1 - alpha |len - target|,
    wrong -> -alpha |len - target|, len in characters; 0 for every completion of a group of equal lengths. Tina's
    function compares each length with the whole target_length *column* (a list) and so raises a TypeError on the
    first call; this is the evident intent, per completion."""

    def length_l1_exact(completions: list, answers: list, **kwargs: object) -> list[float]:
        lengths = [len(completion_text(c)) for c in completions]
        if max(lengths) == min(lengths):
            return [0.0] * len(completions)
        targets = _target_lengths(kwargs, len(completions))
        return [(1.0 if ok else 0.0) - alpha * abs(size - target)
                for size, target, ok in zip(lengths, targets, _correct(completions, answers))]

    return length_l1_exact


def make_length_l1_max(alpha: float = 0.0003, delta: float = 0.5) -> RewardFunction:
    """L1-Max as the Tina recipe defines it: correct -> clip(alpha (target - len) + delta, 0, 1), wrong -> 0
    (lengths in characters; 0 for a group of equal lengths); per completion, like length_l1_exact."""

    def length_l1_max(completions: list, answers: list, **kwargs: object) -> list[float]:
        lengths = [len(completion_text(c)) for c in completions]
        if max(lengths) == min(lengths):
            return [0.0] * len(completions)
        targets = _target_lengths(kwargs, len(completions))
        return [max(0.0, min(alpha * (target - size) + delta, 1.0)) if ok else 0.0
                for size, target, ok in zip(lengths, targets, _correct(completions, answers))]

    return length_l1_max


# Rewards normalised over a group's lengths (min and max, or "all lengths equal"): in Tina each reward call saw
# one group (TRL 0.15 called reward functions per device micro-batch, per_device_train_batch_size =
# num_generations completions of one prompt); TRL 1.16 calls them on the whole generation batch, several groups.
def make_overlong(max_completion_length: int, cache: int | None = None) -> RewardFunction:
    """DAPO's soft overlong punishment (Yu et al., 2025, eq. 13; TRL's ``get_soft_overlong_punishment``), in
    completion tokens: 0 up to ``max_completion_length - cache``, then falling linearly to -1 at
    ``max_completion_length``. ``cache`` defaults to a quarter of the budget (DAPO: 4,096 of 20,480 is a fifth)."""
    from trl.rewards import get_soft_overlong_punishment

    punish = get_soft_overlong_punishment(max_completion_length, max(1, max_completion_length // 4)
                                          if cache is None else int(cache))

    def overlong(completions: list, completion_ids: list, **_: object) -> list[float]:
        return punish(completion_ids=completion_ids)

    return overlong


def per_group(function: RewardFunction, num_generations: int) -> RewardFunction:
    """``function`` applied to each group of a batch on its own: a group is a consecutive run of
    ``num_generations`` completions of one prompt (the order of TRL's RepeatSampler, which the batch keeps up to
    the reward call). Every argument that is a list with one item per completion is split with it. A batch that is
    not whole groups, or a group whose prompts differ, is a ValueError (one line)."""
    name = getattr(function, "__name__", "reward")

    def grouped(completions: list, **kwargs: object) -> list[float]:
        size = len(completions)
        if size % num_generations:
            raise ValueError(f"reward {name}: a batch of {size} completions is not whole groups of "
                             f"num_generations {num_generations}")
        prompts = kwargs.get("prompts")
        rewards: list[float] = []
        for start in range(0, size, num_generations):
            end = start + num_generations
            if isinstance(prompts, (list, tuple)) and any(p != prompts[start] for p in prompts[start:end]):
                raise ValueError(f"reward {name}: completions {start}..{end - 1} should be one prompt's group of "
                                 f"num_generations {num_generations}, but their prompts differ")
            part = {key: value[start:end] if isinstance(value, (list, tuple)) and len(value) == size else value
                    for key, value in kwargs.items()}
            rewards += function(completions=completions[start:end], **part)
        return rewards

    return grouped


@dataclass(frozen=True)
class Reward:
    """A registered reward: how to build it (``factory(max_completion_length, **params)``), the parameters it takes
    (``RewardSpec.params``), and whether it normalises within each prompt's group (``per_group``)."""

    factory: Callable[..., RewardFunction]
    params: tuple[str, ...] = ()
    grouped: bool = False


def _plain(function: RewardFunction) -> Callable[..., RewardFunction]:
    return lambda max_completion_length: function


# Every reward, by name: the one registry (the spec's reward names and parameters are read from it).
REWARDS: dict[str, Reward] = {
    "accuracy": Reward(_plain(accuracy)),
    "boxed_format": Reward(_plain(boxed_format)),
    "format": Reward(_plain(think_format)),
    "tag_count": Reward(_plain(tag_count)),
    "cosine": Reward(lambda max_completion_length, **p: make_cosine(**{"max_len": max(max_completion_length, 1), **p}),
                     ("max_len", "min_value_wrong", "max_value_wrong", "min_value_correct", "max_value_correct",
                      "clip_length")),
    "length": Reward(_plain(length), grouped=True),
    "length_l1_exact": Reward(lambda max_completion_length, **p: make_length_l1_exact(**p), ("alpha",), grouped=True),
    "length_l1_max": Reward(lambda max_completion_length, **p: make_length_l1_max(**p), ("alpha", "delta"),
                            grouped=True),
    "reasoning_steps": Reward(_plain(reasoning_steps)),
    "repetition_penalty": Reward(lambda max_completion_length, **p: make_repetition_penalty(**p),
                                 ("ngram_size", "max_penalty")),
    "overlong": Reward(lambda max_completion_length, **p: make_overlong(max_completion_length, **p), ("cache",)),
}
GROUPED_REWARDS = tuple(name for name, reward in REWARDS.items() if reward.grouped)


def reward_function(name: str, max_completion_length: int, params: dict | None = None,
                    num_generations: int | None = None) -> RewardFunction:
    """The reward function registered under ``name`` with its ``params``, named so TRL logs it as
    ``rewards/<name>``. Without a ``max_len`` parameter, ``cosine`` decays over ``max_completion_length``
    characters. With ``num_generations``, the length rewards (GROUPED_REWARDS) normalise within each prompt's group
    of a call (``per_group``), as Tina's did; without it, over the whole call."""
    reward = REWARDS[name]
    function = reward.factory(max_completion_length, **dict(params or {}))
    function.__name__ = name
    if num_generations is not None and reward.grouped:
        function = per_group(function, num_generations)
        function.__name__ = name
    return function
