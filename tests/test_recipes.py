"""Recipe parity: every field of Tina's 21 recipes against the studies' resolved paper-scale trials, with Tina's
values read from quotes of its own files (tina_sweep.trial.tina_source), the rewards the recipes use, linked axis values
in studies, and the generated docs/recipe_parity.md."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import recipe_parity as recipes
from tina_sweep.trial.spec import ConfigError, RewardSpec, TrialSpec
from tina_sweep.trial.datasets import TRAINING_SETS, DataError, load_source
from tina_sweep.trial.prompts import (DEEPSEEK_R1_REASON_TEMPLATE, OPEN_R1_SYSTEM_PROMPT, OPEN_RS_SYSTEM_PROMPT,
                                chat_messages)
from recipe_parity import (DEVIATIONS, FIELDS, KNOWN_ERA_DIFFERENCES, RECIPE_TRIALS, compare, era_differences,
                                gpu_config, latest_era_recipes, load_recipes, paper_era_recipes, parity_markdown,
                                tina_columns, trial_for)
from tina_sweep.trial.rewards import reward_function, tina_cosine_params
from tina_sweep.study.study import Study, load_study, resolve
from tina_sweep.trial.tina_source import PAPER_ERA_COMMIT, quote

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted(load_recipes())
STOP = re.compile(r"^max_steps: (\d+) # use \1 for lr scheduler but stop at (\d+) steps$", re.M)


def _trials(recipe: str):
    return [trial_for(study, point) for study, point in RECIPE_TRIALS[recipe]]


def test_the_csv_has_the_latest_eras_21_recipes_and_each_runs_somewhere():
    assert len(RECIPES) == 21 and sorted(latest_era_recipes()) == RECIPES  # the latest launch script's list
    assert len(paper_era_recipes()) == 15 and set(paper_era_recipes()) < set(RECIPES)
    assert sorted(RECIPE_TRIALS) == RECIPES
    for recipe in RECIPES:
        _trials(recipe)  # exactly one paper-scale trial at each place


def test_paper_era_recipes_are_quoted_whole_at_the_paper_commit():
    for recipe in paper_era_recipes():
        item = quote(f"recipe.{recipe}")
        assert item.file == f"recipes/DeepSeek-R1-Distill-Qwen-1.5B/grpo/model_curated_{recipe}.yaml"
        assert item.first_line == 1 and item.yaml_value()["model_post_train_dataset_name"] == f"curated_{recipe}"
        # still is stored only at e16606f, an earlier paper-era commit
        assert item.commit == PAPER_ERA_COMMIT or (recipe == "still" and item.commit.startswith("e16606f"))


def test_every_csv_column_is_a_compared_field():
    columns = set(next(iter(load_recipes().values()))) - {"recipe", "dataset_key"}
    names = {f.name for f in FIELDS}
    assert {"stop step" if c == "stop_at_step" else c for c in columns} <= names


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_values_match_the_trials_and_every_difference_has_a_reason(recipe):
    comparisons = compare(recipe)
    assert len(comparisons) >= len(RECIPE_TRIALS[recipe]) * (len(FIELDS) - 3)  # all but cosine/repetition rows
    assert not [(c.study, c.field, c.expected, c.ours) for c in comparisons if not c.ok]
    assert not [(c.field, c.theirs, c.ours) for c in comparisons if c.differs and not c.deviation]


def test_each_deviation_is_a_real_difference():
    seen = set()
    for (recipe, name), (ours, why) in DEVIATIONS.items():
        for each in (RECIPES if recipe == "*" else [recipe]):
            for c in compare(each):
                if c.field == name and c.deviation == why:
                    seen.add((recipe, name))
                    assert recipes._same(c.ours, ours) and not recipes._same(c.theirs, ours), (each, name)
    assert seen == set(DEVIATIONS)  # a deviation no comparison uses would be stale


def test_the_generator_refuses_a_difference_without_a_reason(monkeypatch):
    monkeypatch.delitem(DEVIATIONS, ("open_rs3_long_completion_ablation", "vllm_max_model_len"))
    with pytest.raises(ValueError, match="vllm_max_model_len differs from Tina's .* no reason"):
        parity_markdown()


def test_a_recipe_in_several_studies_is_one_trial_spec():
    for recipe in RECIPES:
        assert len({t.spec.trial_hash() for t in _trials(recipe)}) == 1, recipe


def test_parity_doc_is_current():
    assert (REPO / "docs" / "recipe_parity.md").read_text() == parity_markdown(), \
        "regenerate: python analysis/recipe_parity.py > docs/recipe_parity.md"


def test_parity_doc_has_one_table_per_recipe_citing_commits():
    text = (REPO / "docs" / "recipe_parity.md").read_text()
    for recipe in RECIPES:
        assert f"### {recipe}\n" in text
    assert text.count("| field | Tina | Tina's source | ours | our field | difference |") == 21
    assert "@ 077329b" in text and "@ b490b48" in text and "@ e16606f" in text


# ------------------------------------------------------------------ issue 12: the values read from Tina's quotes

def test_stop_steps_are_the_recipe_comments():
    """Item 5: each trial stops where its recipe's comment says; the schedule's horizon stays max_steps."""
    for recipe in RECIPES:
        if recipe in paper_era_recipes():
            text = quote(f"recipe.{recipe}").text
            found = STOP.search(text)
            stop = int(found.group(2)) if found else None
            assert found or "max_steps:" not in text, recipe  # a max_steps line always carries its stop comment
        else:
            stop = int(load_recipes()[recipe]["stop_at_step"] or 0) or None
        for trial in _trials(recipe):
            assert trial.spec.training.stop_at_step == stop, (recipe, trial.trial_id)
    assert STOP.search(quote("recipe.open_rs3").text).group(2) == "850"
    assert trial_for("tina_main", {"recipe": "open_rs3"}).spec.training.max_steps == 1500


def test_cosine_max_len_follows_the_launch_scripts():
    """Item 4: --cosine_max_len 3584 for the recipes the launch scripts name, and the long-completion script's."""
    paper_if = quote("launch.paper.launch").text.split("\n")[0]
    named = set(re.findall(r'"curated_(\w+)"', paper_if))
    assert named == {"thoughts", "open_r1", "open_rs3", "open_rs3_drgrpo_ablation"}
    assert "--cosine_max_len 3584" in quote("launch.paper.launch").text.split("else")[0]
    assert "--cosine_max_len 3584" in quote("launch.long_completion.launch").text
    named.add("open_rs3_long_completion_ablation")
    for recipe in RECIPES:
        if "cosine" in load_recipes()[recipe]["reward_funcs"].split():
            want = 3584 if recipe in named else 1000
            for trial in _trials(recipe):
                params = next(r.params for r in trial.spec.algorithm.rewards if r.name == "cosine")
                assert params["max_len"] == want, recipe
    extra = (REPO / "studies/tina_extra.py").read_text()
    assert "--cosine_max_len 3584" in extra and "keeps the default" not in extra


def test_long_completion_vllm_runs_on_its_own_gpu_in_tina():
    text = quote("launch.long_completion.gpus").text
    assert "GRPO_GPU_COUNT=$(($GPU_COUNT - 1))" in text and "1 GPU for VLLM" in text
    assert recipes.training_processes("open_rs3_long_completion_ablation")[0] == 2
    assert ("open_rs3_long_completion_ablation", "vLLM rollouts") in DEVIATIONS


def test_global_batch_is_computed_from_the_launch_scripts():
    assert "CUDA_VISIBLE_DEVICES=0,1" in quote("launch.paper.devices").text
    assert '--num_processes="${GPU_COUNT}"' in quote("launch.paper.launch").text
    theirs = recipes.tina_values("open_rs3")["global batch (prompts per optimizer step)"].value
    assert theirs == 6 * 4 * 2 // 6 == 8


def test_gold_columns_follow_tinas_column_rules():
    """Item 7: for every training set, the columns Tina's quoted grpo.py reads equal our catalog's."""
    assert tina_columns("curated_x", ("question", "answer")) == ("question", "answer")
    assert tina_columns("curated_x", ("prompt", "answer")) == ("prompt", "answer")
    assert tina_columns("curated_x", ("problem", "solution", "answer")) == ("problem", "solution")
    assert tina_columns("curated_deepscaler", ("problem", "answer", "solution")) == ("problem", "answer")
    checked = []
    for name, source in TRAINING_SETS.items():
        if not source.columns:
            continue
        key = "curated_2thought" if name == "ii_thought" else f"curated_{name}"
        assert tina_columns(key, source.columns) == (source.question_field, source.answer_field), name
        rule = quote("grpo.columns_2thought" if name == "ii_thought" else "grpo.columns").where
        assert rule in source.columns_note, name
        if source.answer_field == "solution":
            assert source.answer_format == "boxed", name
        checked.append(name)
    hubs = {s.location for s in TRAINING_SETS.values() if s.kind == "hub"}
    in_tina_map = set(quote("constant.dataset_map").python_value().values()) | {
        "Intelligent-Internet/II-Thought-RL-v0-Math-50K"}
    assert {TRAINING_SETS[n].location for n in checked} | {"GAIR/LIMR"} >= hubs & in_tina_map
    assert TRAINING_SETS["open_thoughts"].answer_field == "solution"


def test_a_solution_gold_is_its_boxed_answer(monkeypatch):
    rows = [{"problem": "p1", "solution": "so \\boxed{3} then \\boxed{\\frac{1}{2}}"},
            {"problem": "p2", "solution": "no box here"}, {"problem": "p3", "solution": "\\boxed{7}."}]
    monkeypatch.setattr("tina_sweep.trial.datasets._load_hub", lambda source: rows)
    problems = load_source(TRAINING_SETS["open_thoughts"])
    assert [(p.question, p.answers) for p in problems] == [("p1", ("\\frac{1}{2}",)), ("p3", ("7",))]
    monkeypatch.setattr("tina_sweep.trial.datasets._load_hub", lambda source: [{"problem": "p"}])
    with pytest.raises(DataError, match="has no field 'solution'"):
        load_source(TRAINING_SETS["open_thoughts"])


def test_the_csv_agrees_with_the_paper_era_quotes_but_for_known_era_differences():
    """Item 10: the CSV is our transcription of the latest era; for the 15 recipes both eras have it equals the
    paper-era quotes field by field, except where KNOWN_ERA_DIFFERENCES says why."""
    assert set(era_differences()) == set(KNOWN_ERA_DIFFERENCES)
    assert era_differences()[("still", "save_steps")] == (quote("recipe.still").yaml_value()["save_steps"], 10)


def test_spot_values_read_from_the_trials():
    """A few values checked by hand, independently of the comparison machinery."""
    rank = {t.axes["lora.rank"]: t.spec for t in resolve(load_study(REPO / "studies/lora_rank.py"), "paper")}
    assert sorted(rank) == [4, 8, 16, 32, 128]  # the paper's "64" row ran rank 128 / alpha 512
    assert rank[128].lora.resolved_alpha == 512 and rank[128].training.save_steps == 50
    assert rank[32].training.save_steps == 10
    algo = {t.axes["algorithm.name"]: t.spec for t in resolve(load_study(REPO / "studies/rl_algorithm.py"), "paper")}
    grpo, dr = gpu_config(algo["grpo"]), gpu_config(algo["dr_grpo"])
    assert (grpo["loss_type"], grpo["scale_rewards"]) == ("grpo", "group")
    assert (dr["loss_type"], dr["scale_rewards"]) == ("dr_grpo", "none")
    assert algo["grpo"].prompt.system == OPEN_RS_SYSTEM_PROMPT
    main = {t.axes["recipe"]: t.spec for t in resolve(load_study(REPO / "studies/tina_main.py"), "paper")}
    assert main["open_rs1"].prompt.system == OPEN_R1_SYSTEM_PROMPT  # knoveleng/open-s1 has no "open-rs"
    assert main["open_rs2"].dataset.name == main["open_rs3"].dataset.name == "open_rs"
    config = gpu_config(main["open_rs3"])
    assert config["per_device_train_batch_size"] == 6 and config["gradient_accumulation_steps"] == 4
    assert config["use_vllm"] and config["vllm_mode"] == "colocate" and config["vllm_max_model_length"] == 4608
    assert config["bf16"] and config["gradient_checkpointing"] and config["beta"] == 0.04


def test_the_study_docstrings_say_what_they_do_with_the_defects():
    assert "rank 128" in (REPO / "studies/lora_rank.py").read_text()
    rl = (REPO / "studies/rl_algorithm.py").read_text()
    assert "scale_reward" in rl and "dropped" in rl


def test_grpo_config_kwargs_are_grpo_config_fields():
    import dataclasses

    from trl import GRPOConfig

    names = {f.name for f in dataclasses.fields(GRPOConfig)}
    for recipe in RECIPES:
        study, point = RECIPE_TRIALS[recipe][0]
        assert set(gpu_config(trial_for(study, point).spec)) <= names


# ------------------------------------------------------------------ prompts and chat template

def test_tina_system_prompts_equal_the_quoted_source():
    """Our constants against Tina's tina/utils/prompt.py as Python reads it (its \\n escapes are newlines)."""
    for name, ours in (("OPEN_R1_SYSTEM_PROMPT", OPEN_R1_SYSTEM_PROMPT),
                       ("OPEN_RS_SYSTEM_PROMPT", OPEN_RS_SYSTEM_PROMPT)):
        theirs = quote(f"prompt.{name}").python_value()
        assert ours == theirs, f"{name} differs from {quote(f'prompt.{name}').where}"
    assert "<think>\n...\n</think>\n<answer>" in OPEN_R1_SYSTEM_PROMPT  # real newlines, not backslash + n
    assert "\\n" not in OPEN_R1_SYSTEM_PROMPT


def test_reason_chat_template_renders_deepseek_turns():
    import jinja2

    template = jinja2.Environment().from_string(DEEPSEEK_R1_REASON_TEMPLATE)
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    assert template.render(messages=messages, bos_token="<B>", add_generation_prompt=True) == \
        "<B>S<｜User｜>Q<｜Assistant｜>"
    history = messages + [{"role": "assistant", "content": "A"}]
    assert template.render(messages=history, bos_token="<B>") == "<B>S<｜User｜>Q<｜Assistant｜>A<｜end▁of▁sentence｜>"


def test_l1_prompt_and_rows():
    from tina_sweep.trial.datasets import Problem
    from tina_sweep.trial.train.trainer import training_rows

    spec = trial_for("tina_extra", {"recipe": "l1_exact"}).spec
    problems = [Problem(f"p{i}", f"q{i}", ("1",)) for i in range(50)]
    rows = training_rows(spec, problems)
    targets = [row["target_length"] for row in rows]
    assert all(100 <= t <= 4000 for t in targets) and len(set(targets)) > 10
    assert rows[0]["prompt"][0]["content"] == OPEN_R1_SYSTEM_PROMPT + f"\nThink for {targets[0]} tokens."
    assert training_rows(spec, problems) == rows  # seeded
    plain = training_rows(trial_for("dataset", {"dataset.name": "limr"}).spec, problems[:2])
    assert "target_length" not in plain[0]
    assert chat_messages("q", spec.prompt, 7)[0]["content"].endswith("\nThink for 7 tokens.")


def test_l1_rewards_need_a_target_range():
    tree = trial_for("tina_extra", {"recipe": "l1_max"}).spec.model_dump(mode="json")
    tree["prompt"]["target_length_range"] = None
    with pytest.raises(ValueError, match="target_length_range"):
        TrialSpec.model_validate(tree)


# ------------------------------------------------------------------ rewards the recipes use

def test_reasoning_steps_reward():
    fn = reward_function("reasoning_steps", 100)
    texts = ["Step 1: a\nStep 2: b\nStep 3: c", "First, x. Next, y.", "1. only at the start\n2. not here",
             "nothing", "\n- a\n* b\nFinally, c\nSecond, d"]
    assert fn(completions=texts) == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0, 1.0])


def test_repetition_penalty_reward():
    fn = reward_function("repetition_penalty", 100)
    # "a b a b a b": 3-grams (a b a), (b a b), (a b a), (b a b): 2 distinct of 4 -> (1 - 0.5) x -1
    assert fn(completions=["a b a b a b", "one two three four", "too short", ""]) == [-0.5, 0.0, 0.0, 0.0]
    assert fn(completions=["A b a B a b"]) == [-0.5]  # lower-cased
    half = reward_function("repetition_penalty", 100, {"ngram_size": 2, "max_penalty": -0.5})
    assert half(completions=["x x x"]) == [pytest.approx(-0.25)]  # (x x) twice: 1 - 1/2, x -0.5
    with pytest.raises(ValueError):
        reward_function("repetition_penalty", 100, {"max_penalty": 0.5})


def test_length_l1_rewards_hand_computed():
    exact = reward_function("length_l1_exact", 100)
    most = reward_function("length_l1_max", 100)
    texts = ["\\boxed{5}", "\\boxed{5}" + "x" * 991, "\\boxed{4}" + "x" * 91]  # 9, 1000, 100 characters
    answers, targets = [["5"]] * 3, [1000, 1000, 50]
    assert exact(completions=texts, answers=answers, target_length=targets) == pytest.approx(
        [1 - 0.0003 * 991, 1.0, -0.0003 * 50])
    assert most(completions=texts, answers=answers, target_length=targets) == pytest.approx(
        [min(1.0, 0.0003 * 991 + 0.5), 0.5, 0.0])
    assert exact(completions=["\\boxed{5}"] * 2, answers=[["5"]] * 2, target_length=[1, 2]) == [0.0, 0.0]
    with pytest.raises(ValueError, match="target_length"):
        exact(completions=texts, answers=answers)


def test_tina_cosine_is_unclipped_and_penalises_long_wrong_answers():
    fn = reward_function("cosine", 3584, tina_cosine_params(20))
    wrong_short, wrong_full, wrong_double = "\\boxed{4}" + " " * 1, "\\boxed{4}" + " " * 11, "\\boxed{4}" + " " * 31
    right_full, right_half = "\\boxed{5}" + " " * 11, "\\boxed{5}" + " " * 1
    got = fn(completions=[wrong_short, wrong_full, wrong_double, right_full, right_half], answers=[["5"]] * 5)
    wrong = lambda n: -0.5 + 0.25 * (1 + math.cos(n / 20 * math.pi))  # noqa: E731
    right = lambda n: 0.5 + 0.25 * (1 + math.cos(n / 20 * math.pi))  # noqa: E731
    assert got == pytest.approx([wrong(10), wrong(20), wrong(40), right(20), right(10)])
    assert got[0] > got[1]  # a longer wrong answer scores lower
    assert got[2] == pytest.approx(0.0)  # past max_len the cosine comes back up (40 characters: cos(2 pi) = 1)
    assert reward_function("cosine", 20)(completions=[wrong_double], answers=[["5"]]) == [0.0]  # default: clipped


def test_reward_params_are_validated():
    assert RewardSpec(name="cosine", params={"max_len": 10}).params == {"max_len": 10}
    with pytest.raises(ValueError, match="takes no parameters"):
        RewardSpec(name="accuracy", params={"max_len": 10})
    with pytest.raises(ValueError, match="params.max_lenn"):
        RewardSpec(name="cosine", params={"max_lenn": 10})


# ------------------------------------------------------------------ linked axis values

def _study(**kwargs) -> Study:
    return Study(name="t", **kwargs)


def test_linked_fields_follow_their_axis_value():
    study = _study(axes={"lora.rank": [2, 4]}, linked={"lora.rank": {"4": {"training.save_steps": 7}}})
    trials = {t.axes["lora.rank"]: t.spec for t in resolve(study, "smoke")}
    assert trials[4].training.save_steps == 7 and trials[2].training.save_steps == 1


def test_label_axis_values_are_defined_by_their_linked_fields():
    study = _study(axes={"recipe": ["a", "b"]},
                   linked={"recipe": {"a": {"lora.rank": 2}, "b": {"lora.rank": 3}}})
    trials = resolve(study, "smoke")
    assert [(t.axes, t.spec.lora.rank) for t in trials] == [({"recipe": "a"}, 2), ({"recipe": "b"}, 3)]
    assert trials[0].trial_id.startswith("recipe=a-s42-")
    with pytest.raises(ConfigError, match="recipe=b: a label axis value needs linked fields"):
        resolve(_study(axes={"recipe": ["a", "b"]}, linked={"recipe": {"a": {"lora.rank": 2}}}), "smoke")


def test_linked_errors():
    with pytest.raises(ValueError, match="linked.lora.rank.5: not a value"):
        _study(axes={"lora.rank": [2, 4]}, linked={"lora.rank": {"5": {"training.save_steps": 7}}})
    with pytest.raises(ValueError, match="linked.seed: not an axis"):
        _study(axes={"lora.rank": [2, 4]}, linked={"seed": {"1": {}}})
    study = _study(axes={"lora.rank": [2, 4], "lora.dropout": [0.0, 0.1]},
                   linked={"lora.rank": {"4": {"lora.dropout": 0.2}}})
    with pytest.raises(ConfigError, match="sets the axis field 'lora.dropout'"):
        resolve(study, "smoke")


def test_scale_linked_fields_merge_over_the_study_ones():
    study = _study(axes={"recipe": ["a", "b"]},
                   linked={"recipe": {"a": {"lora.rank": 2, "training.save_steps": 3}, "b": {"lora.rank": 3}}},
                   scales={"cpu": {"linked": {"recipe": {"a": {"training.save_steps": 9}}}}})
    smoke = {t.axes["recipe"]: t.spec for t in resolve(study, "smoke")}
    cpu = {t.axes["recipe"]: t.spec for t in resolve(study, "cpu")}
    assert smoke["a"].training.save_steps == 3 and cpu["a"].training.save_steps == 9 and cpu["a"].lora.rank == 2
