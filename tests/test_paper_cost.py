"""benchmarks/paper_cost.py on CPU: the paper's cost table read against Tina's own launch script and recipe files,
the projection's arithmetic, the full-vocabulary tokenizer as vLLM loads it, and a real (tiny, transformers-rollout)
timing of a recipe's steps. The vLLM measurement itself runs on a lent GPU (its evaluation pass also on vLLM's CPU
build: tests/test_vllm_cpu.py)."""

from __future__ import annotations

import csv
import json
import random

import pytest

from recipe_parity import paper_era_recipes
from scripts import load_script
from tina_sweep.trial.datasets import bundled_path


@pytest.fixture(scope="module")
def paper_cost():
    return load_script("paper_cost")


def published() -> dict[str, dict[str, str]]:
    with open(bundled_path("reference/tina_paper_cost_usd.csv"), newline="") as handle:
        return {row["task"]: row for row in csv.DictReader(handle)}


def test_the_task_rows_add_up_to_the_published_totals():
    rows = published()
    tasks = [r for name, r in rows.items() if not name.startswith("Total:")]
    main = [r for name, r in rows.items() if name.startswith("Main:")]
    for column in ("train_usd", "eval_usd", "total_usd"):
        assert sum(float(r[column] or 0) for r in tasks) == float(rows["Total: All Tasks"][column])
        assert sum(float(r[column] or 0) for r in main) == float(rows["Total: Main Tasks"][column])


def test_every_recipe_of_the_paper_era_launch_script_is_costed_in_exactly_one_row(paper_cost):
    """The 15 recipes scripts/training/post_train_grpo.sh @ 077329b launches (quoted) are the training rows' recipes,
    each once; the rows are every Main and Ablation row of the published table."""
    costed = [recipe for names in paper_cost.TASK_RECIPES.values() for recipe in names]
    assert sorted(costed) == sorted(paper_era_recipes())
    assert len(costed) == len(set(costed)) == 15
    assert set(paper_cost.TASK_RECIPES) == {t for t in published() if t.startswith(("Main:", "Ablation:"))}


def test_steps_and_shapes_come_from_tinas_recipe_files_and_launch_script(paper_cost):
    # model_curated_open_rs2.yaml @ 077329b: "use 1500 for lr scheduler but stop at 850 steps"; per-device batch 6,
    # accumulation 4; the launch script runs 2 processes -> 48 completions (8 prompts of 6) per optimizer step
    assert paper_cost.recipe_steps("open_rs2") == (850, "stop step")
    assert paper_cost.recipe_shape("open_rs2") == paper_cost.Shape(48, 3584)
    assert paper_cost.recipe_steps("limr") == (180, "stop step")
    assert paper_cost.recipe_shape("limr") == paper_cost.Shape(32, 3584)
    # open_r1 sets no max_steps: one epoch of the 93.7k problems the paper's dataset table names, 8 prompts a step
    assert paper_cost.recipe_steps("open_r1") == (11713, "one epoch (93,700 / 8 prompts)")
    assert paper_cost.recipe_shape("open_r1") == paper_cost.Shape(64, 3584)


@pytest.mark.parametrize("recipe", ["limr", "open_rs3", "open_r1", "limr_large_rank_ablation"])
def test_the_trial_we_time_has_the_shape_we_project(paper_cost, recipe):
    """What measure trains (our study's trial for the recipe) generates the recipe's completions per step at its cap."""
    spec = paper_cost.recipe_trial_spec(recipe)
    completions = spec.training.global_prompts_per_step * spec.algorithm.num_generations
    shape = paper_cost.Shape(completions, spec.algorithm.max_completion_length)
    assert shape == paper_cost.recipe_shape(recipe)
    assert spec.algorithm.use_vllm and spec.algorithm.vllm_mode == "colocate"


def test_the_papers_implied_gpu_seconds_per_step(paper_cost):
    rows = {row["task"]: row for row in paper_cost.paper_tasks()}
    deepscaler = rows["Main: Tina-DeepScaleR-1.5B-Preview"]
    assert deepscaler["gpu_hours"] == 84.0  # $84 at $1.00 per L40S-hour
    assert deepscaler["gpu_seconds_per_step"] == pytest.approx(84 * 3600 / 5500)
    ranks = rows["Ablation: LoRA Rank/Alpha"]
    assert ranks["total_steps"] == 4 * 180 and ranks["gpu_seconds_per_step"] == pytest.approx(14 * 3600 / 720)
    assert sum(paper_cost.benchmark_problems().values()) == 30 + 30 + 40 + 500 + 198 + 272


def measurement(shape=(32, 3584), recipe_shape=(32, 3584), rollouts="vllm", seconds=(100.0, 30.0, 32.0),
                device="NVIDIA H100 80GB HBM3", count=1, tokens_per_second=None) -> dict:
    found = {"train": {"rollouts": rollouts, "device": device, "device_kind": "cuda", "device_count": count,
                       "shape": dict(zip(("completions_per_step", "completion_cap"), shape)),
                       "recipe_shape": dict(zip(("completions_per_step", "completion_cap"), recipe_shape)),
                       "step_seconds": list(seconds)}}
    if tokens_per_second:
        found["eval"] = {"tokens_per_second": tokens_per_second, "prompts": 128, "max_tokens": 8192}
    return found


def test_projection_arithmetic(paper_cost):
    prices = {**paper_cost.load_prices(None), "NVIDIA H100": 2.5}
    projection = paper_cost.project([measurement(tokens_per_second=10_000)], prices)
    rows = {row["task"]: row for row in projection["tasks"]}
    limr = rows["Ablation: LIMR Dataset"]["projected"]
    # the first step (warm-up) left out: median(30, 32) = 31 s; 180 steps on one GPU
    assert limr["gpu_hours"] == pytest.approx(180 * 31 / 3600)
    assert limr["usd"] == pytest.approx(180 * 31 / 3600 * 2.5)
    assert limr["usd_ratio"] == pytest.approx(180 * 31 / 3600 * 2.5 / 4)
    assert limr["gpu_hours_ratio"] == pytest.approx(180 * 31 / 3600 / 4)
    assert rows["Ablation: LoRA Rank/Alpha"]["projected"]["gpu_hours"] == pytest.approx(720 * 31 / 3600)
    # every one of Tina's 21 recipes, the six the paper never ran included (no cost-table row)
    per_recipe = projection["recipes"]
    assert len(per_recipe) == 21
    assert per_recipe["2thought"]["task"] is None
    assert per_recipe["2thought"]["projected"]["gpu_hours"] == pytest.approx(6660 * 31 / 3600)
    assert per_recipe["open_rs3_long_completion_ablation"]["shape"] == paper_cost.Shape(48, 8960)
    assert per_recipe["open_rs3_long_completion_ablation"]["projected"] is None
    assert rows["Ablation: LoRA Rank/Alpha"]["projected"]["usd"] == pytest.approx(
        sum(per_recipe[name]["projected"]["usd"] for name in paper_cost.TASK_RECIPES["Ablation: LoRA Rank/Alpha"]))
    # shapes not measured stay unprojected, and say which shape is missing
    assert rows["Main: Tina-Open-RS2"]["projected"] is None and rows["Main: Tina-Open-RS2"]["missing"] == ["48 x 3584"]
    ev = projection["eval"]
    assert ev["gpu_hours_at_cap"] == pytest.approx(1070 * 32768 / 10_000 / 3600)
    assert ev["usd_at_cap"] == pytest.approx(1070 * 32768 / 10_000 / 3600 * 2.5)
    # $1 of an H100 at $2.50/h is 1,440 s: 14.4 M tokens at 10,000 tokens/s over 1,070 problems
    assert ev["tokens_per_problem_for_paper_usd"] == pytest.approx(3600 / 2.5 * 10_000 / 1070)


def test_two_gpus_count_twice_and_unlike_measurements_project_nothing(paper_cost):
    prices = paper_cost.load_prices(None)
    two = paper_cost.project([measurement(count=2, seconds=(20.0,))], prices)
    limr = next(r for r in two["tasks"] if r["task"] == "Ablation: LIMR Dataset")["projected"]
    assert limr["gpu_hours"] == pytest.approx(180 * 20 * 2 / 3600)  # a single step is used as it is
    assert limr["device"] == "2 x NVIDIA H100 80GB HBM3"
    # transformers rollouts, or completions shorter than the recipe's cap: measured, but not the recipe's step
    for unlike in (measurement(rollouts="transformers"), measurement(shape=(32, 8))):
        assert all(row["projected"] is None for row in paper_cost.project([unlike], prices)["tasks"])


def test_the_cli_projects_a_measured_file_and_refuses_a_bad_price_table(paper_cost, tmp_path, capsys):
    measured = tmp_path / "measured-limr.json"
    measured.write_text(json.dumps(measurement(tokens_per_second=12_000)))
    paper_cost.main(["project", str(measured)])
    out = capsys.readouterr().out
    assert "Ablation: LIMR Dataset" in out and "not measured: shape 48 x 3584" in out
    assert "evaluation pass (1,070 problems" in out
    prices = tmp_path / "prices.json"
    prices.write_text('{"NVIDIA H100": -1}')
    with pytest.raises(SystemExit) as stopped:
        paper_cost.main(["project", str(measured), "--prices", str(prices)])
    assert str(stopped.value).startswith(f"--prices {prices}: 'NVIDIA H100': must be a non-negative number")


def test_the_measured_model_has_the_paper_models_size(paper_cost):
    """The architecture measure builds (on the meta device here: no memory): DeepSeek-R1-Distill-Qwen-1.5B's config
    as its fine-tunes carry it (e.g. huggingface.co/oumi-ai/MiniMath-R1-1.5B config.json, _name_or_path
    deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B: 28 layers, hidden 1536, untied embeddings, vocabulary 151,936), 1.78 B
    parameters as the hub lists it, 1.31 B outside the embedding and LM head (Qwen2.5-1.5B's model card)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=paper_cost.PAPER_VOCAB_SIZE, **paper_cost.PAPER_SHAPE)
    with torch.device("meta"):
        model = Qwen2ForCausalLM(config)
    total = sum(p.numel() for p in model.parameters())
    embeddings = model.model.embed_tokens.weight.numel() + model.lm_head.weight.numel()
    assert round(total / 1e9, 2) == 1.78 and round((total - embeddings) / 1e9, 2) == 1.31
    assert model.lm_head.weight is not model.model.embed_tokens.weight


def test_the_full_vocabulary_tokenizer_survives_vllms_loader(paper_cost, tmp_path):
    """vLLM loads the tokenizer with AutoTokenizer, which rebuilds a Qwen2 model's as Qwen2Tokenizer: it must keep
    all 151,936 tokens (every id a random model samples decodes) and encode text as the saved one does."""
    from transformers import AutoTokenizer, Qwen2Config

    from gpu_check import save_model_dir

    class NoModel:  # save_model_dir saves a model and a tokenizer; here only the config matters
        def save_pretrained(self, folder):
            Qwen2Config(vocab_size=paper_cost.PAPER_VOCAB_SIZE).save_pretrained(folder)

    tokenizer = paper_cost.build_full_vocab_tokenizer()
    save_model_dir(NoModel(), tokenizer, tmp_path / "model")
    loaded = AutoTokenizer.from_pretrained(tmp_path / "model")
    assert len(tokenizer) == len(loaded) == 151936
    text = "Solve $\\frac{1}{2} + 3^2$. Ünïcode ✓ 中文\n\n<|im_start|>user\n"
    assert loaded(text).input_ids == tokenizer(text).input_ids
    assert loaded.decode(loaded(text).input_ids) == text
    # merges learnt from the prompts' own text: about a word, digit or symbol a token, as a real vocabulary, not a
    # byte a token (the measured step's prompt length depends on it)
    problems = paper_cost.tokenizer_corpus()[:200]
    chars_per_token = sum(map(len, problems)) / sum(len(loaded(p).input_ids) for p in problems)
    assert 2.5 < chars_per_token < 6
    ids = random.Random(0).sample(range(151936), 5000) + [151935]
    assert None not in loaded.convert_ids_to_tokens(ids)
    assert loaded.eos_token_id == tokenizer.eos_token_id < 151936


def test_measure_training_times_a_recipes_steps_on_a_tiny_model(paper_cost, tmp_path):
    """The real train path (our study's limr trial, TRL GRPOTrainer, LoRA r32): 2 steps of 32 completions on a tiny
    random model with transformers rollouts and 8-token completions."""
    model = tmp_path / "model"
    built = paper_cost.random_paper_model(model, body=paper_cost.PLUMBING_BODY, vocab_size=4096)
    assert built["vocab_size"] == 4096 and built["layers"] == 2
    measured = paper_cost.measure_training(model, tmp_path / "trial", "limr", 2, rollouts="transformers",
                                           completion_cap=8)
    assert measured["steps"] == 2 and len(measured["step_seconds"]) == 2 and len(measured["trl_step_time"]) == 2
    assert measured["shape"] == {"completions_per_step": 32, "completion_cap": 8}
    assert measured["recipe_shape"] == {"completions_per_step": 32, "completion_cap": 3584}
    assert measured["global_batch"]["prompts_per_step"] == 8 and measured["lora_rank"] == 32
    assert 0 < max(measured["completion_mean_length"]) <= 8
    assert measured["generated_tokens"] <= 2 * 32 * 8
    assert (tmp_path / "trial" / "adapter" / "adapter_config.json").exists()
    # a shortened cap is not the recipe's step: it projects nothing
    assert all(r["projected"] is None for r in paper_cost.project([{"train": measured}], {"cpu": 0.1})["tasks"])


def test_measure_runs_its_phases_in_their_own_processes_and_writes_what_project_reads(paper_cost, tmp_path,
                                                                                       capsys):
    """The command a lent GPU runs, end to end with --plumbing (a 2-layer model, 8-token completions, transformers
    rollouts, no evaluation pass): the train phase in a child process, measured-limr.json, then project."""
    work = tmp_path / "work"
    paper_cost.main(["measure", str(work), "--plumbing", "--rollouts", "transformers", "--steps", "2",
                     "--eval-prompts", "0", "--phase-timeout", "600"])
    measured = json.loads((work / "measured-limr.json").read_text())
    assert measured["model"]["plumbing"] is True and measured["model"]["vocab_size"] == 4096
    assert measured["train"]["steps"] == 2 and measured["train"]["shape"]["completion_cap"] == 8
    assert "eval" not in measured and measured["versions"]["trl"] != "not installed"
    paper_cost.main(["project", str(work / "measured-limr.json")])
    out = capsys.readouterr().out
    assert "not measured: shape 32 x 3584" in out  # a plumbing run is never projected
    # a phase that fails (here: the saved weights are gone) stops measure with one line naming it
    (work / paper_cost.MODEL_DIR / "model.safetensors").unlink()
    with pytest.raises(SystemExit) as stopped:
        paper_cost.main(["measure", str(work), "--plumbing", "--rollouts", "transformers", "--eval-prompts", "0"])
    assert str(stopped.value).startswith("paper_cost: the train phase failed (exit ")
    with pytest.raises(SystemExit):
        paper_cost.main(["measure", str(work), "--steps", "0"])
    assert "--steps: must be a positive integer, got '0'" in capsys.readouterr().err
