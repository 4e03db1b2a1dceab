"""The length rewards normalise within each prompt's group (issue 12, item 3).

In Tina each reward call saw one group: TRL 0.15 called reward functions once per device micro-batch (its
``_prepare_inputs``), and every recipe's per_device_train_batch_size equals its num_generations, which its
RepeatRandomSampler fills with one prompt repeated. TRL 1.16 calls them once on the whole generation batch (several
prompts' groups), so min/max over the call would mix groups. The reference values here come from Tina's own
len_reward lines (a quote), executed on one group at a time.
"""

from __future__ import annotations

import textwrap

import pytest

from tina_sweep.trial.rewards import GROUPED_REWARDS, reward_function
from tina_sweep.trial.tina_source import quote


def tina_len_reward(contents: list[str], correctness: list[bool]) -> list[float]:
    """Tina's len_reward from its lengths on: the quoted lines, run as they are on one call's completions."""
    body = quote("training.rewards.len_reward").text
    source = "def tail(contents, correctness, completions):\n" + textwrap.indent(textwrap.dedent(body), "    ")
    namespace: dict = {}
    exec(compile(source, quote("training.rewards.len_reward").where, "exec"), namespace)
    return namespace["tail"](contents, correctness, contents)


def test_tina_called_rewards_on_one_group():
    """What the quotes say: one reward call per device micro-batch of per_device_train_batch_size completions,
    filled by a sampler that repeats each prompt num_generations times in a row; the recipe makes the two equal."""
    assert "prompts = [x[\"prompt\"] for x in inputs]" in quote("training.trainer.micro_batch_prompts").text
    assert "reward_func(prompts=prompts, completions=completions" in quote("training.trainer.reward_call").text
    assert "RepeatRandomSampler(self.train_dataset, self.num_generations" in quote("training.trainer.train_sampler").text
    assert "for _ in range(self.repeat_count)" in quote("training.trainer.repeat_sampler").text
    per_device = quote("training.recipe.limr.per_device_train_batch_size").yaml_value()
    generations = quote("training.recipe.limr.num_generations").yaml_value()
    assert per_device["per_device_train_batch_size"] == generations["num_generations"]


def test_trl_keeps_groups_as_consecutive_runs():
    """TRL 1.16's RepeatSampler (installed): each prompt index num_generations times in a row."""
    from trl.trainer.utils import RepeatSampler

    order = list(RepeatSampler(list(range(10)), mini_repeat_count=3, batch_size=2, repeat_count=2, seed=1))
    runs = [order[i:i + 3] for i in range(0, len(order), 3)]
    assert all(len(set(run)) == 1 for run in runs)
    assert len({run[0] for run in runs[:2]}) == 2  # a generation batch holds two different prompts' groups


# two prompts' groups of 4 in one call (TRL 1.16), lengths and correctness chosen so that mixing them changes
# every value: group A is short (9..19 characters), group B long (30..60)
GROUP_A = ["\\boxed{5}", "\\boxed{5}" + "x" * 5, "\\boxed{4}" + "x" * 2, "\\boxed{4}" + "x" * 10]
GROUP_B = ["\\boxed{7}" + "y" * 21, "\\boxed{7}" + "y" * 51, "\\boxed{1}" + "y" * 31, "\\boxed{1}" + "y" * 41]
ANSWERS = [["5"]] * 4 + [["7"]] * 4
PROMPTS = [[{"role": "user", "content": "a"}]] * 4 + [[{"role": "user", "content": "b"}]] * 4


def test_length_reward_is_tinas_per_group():
    fn = reward_function("length", 24, num_generations=4)
    got = fn(prompts=PROMPTS, completions=GROUP_A + GROUP_B, answers=ANSWERS)
    per_group = (tina_len_reward(GROUP_A, [True, True, False, False])
                 + tina_len_reward(GROUP_B, [True, True, False, False]))
    assert got == pytest.approx(per_group)
    assert got == pytest.approx([0.5, 0.0, 0.0, -0.5, 0.5, -0.5, 0.0, -0.1666667])
    mixed = tina_len_reward(GROUP_A + GROUP_B, [True, True, False, False] * 2)
    # over the mixed batch (lengths 9..60) group A's second completion would earn 0.5 - 5/51, not 0
    assert mixed == pytest.approx([0.5, 0.5 - 5 / 51, 0.0, 0.0, 0.5 - 21 / 51, -0.5, 0.5 - 31 / 51, 0.5 - 41 / 51])
    assert got != pytest.approx(mixed)
    # alone, each group gets what it gets inside the batch
    assert fn(prompts=PROMPTS[:4], completions=GROUP_A, answers=ANSWERS[:4]) == pytest.approx(got[:4])
    assert fn(prompts=PROMPTS[4:], completions=GROUP_B, answers=ANSWERS[4:]) == pytest.approx(got[4:])
    # without num_generations (a direct call) the call is one group: the mixed values
    assert reward_function("length", 24)(completions=GROUP_A + GROUP_B, answers=ANSWERS) == pytest.approx(mixed)


@pytest.mark.parametrize("name", ["length_l1_exact", "length_l1_max"])
def test_l1_rewards_are_per_group(name):
    """The L1 rewards zero a group whose lengths are all equal (as Tina's, per call): per group, not per batch."""
    equal = ["\\boxed{5}", "\\boxed{4}", "\\boxed{5}", "\\boxed{3}"]  # group A: four completions of 9 characters
    completions = equal + GROUP_B
    targets = [5] * 4 + [40] * 4
    fn = reward_function(name, 24, num_generations=4)
    got = fn(prompts=PROMPTS, completions=completions, answers=ANSWERS, target_length=targets)
    assert got[:4] == [0.0] * 4
    alone_b = fn(prompts=PROMPTS[4:], completions=GROUP_B, answers=ANSWERS[4:], target_length=targets[4:])
    assert got[4:] == pytest.approx(alone_b)
    mixed = reward_function(name, 24)(completions=completions, answers=ANSWERS, target_length=targets)
    assert mixed[:4] != [0.0] * 4  # mixed with group B, group A's equal lengths no longer zero it


def test_batches_that_are_not_whole_groups_are_refused():
    fn = reward_function("length", 24, num_generations=4)
    with pytest.raises(ValueError, match=r"^reward length: a batch of 6 completions is not whole groups of "
                                         r"num_generations 4$"):
        fn(prompts=PROMPTS[:6], completions=(GROUP_A + GROUP_B)[:6], answers=ANSWERS[:6])
    shuffled = [PROMPTS[0], PROMPTS[4]] * 4
    with pytest.raises(ValueError, match=r"^reward length: completions 0\.\.3 should be one prompt's group of "
                                         r"num_generations 4, but their prompts differ$"):
        fn(prompts=shuffled, completions=GROUP_A + GROUP_B, answers=ANSWERS)


def test_only_the_length_rewards_are_grouped():
    assert GROUPED_REWARDS == ("length", "length_l1_exact", "length_l1_max")
    accuracy = reward_function("accuracy", 24, num_generations=4)
    # a per-completion reward needs no grouping: any batch size goes
    assert accuracy(prompts=PROMPTS[:3], completions=GROUP_A[:3], answers=ANSWERS[:3]) == [1.0, 1.0, 0.0]
