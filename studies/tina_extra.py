"""The Tina repository's six recipes that no table of the paper reports: 2thought (II-Thought), fastcurl,
l1_exact and l1_max (L1 length control on DeepScaleR), and the open_rs3 format-reward and long-completion
ablations. Kept so every one of its 21 recipes maps onto a trial (tests/test_recipes.py). Three need repairs
to run at all, each stated where it is set:

- fastcurl, l1_exact, l1_max: their datasets are commented out of the repository's dataset map (its training
  script fails on them); fastcurl uses the hub id of that commented line (Nickyang/FastCuRL) and the L1 recipes
  DeepScaleR, as the comments say.
- l1_exact, l1_max: the repository's L1 rewards compare each length with the whole target-length column and fail
  on the first call; ours use each completion's target (tina_sweep.trial.rewards). Targets are drawn uniformly in
  [100, 4000] per problem and stated in the system prompt, as its make_conv_for_grpo_l1.
- long_completion: its recipe caps vLLM at max_model_len 4608 while asking for 8,960-token completions, which
  vLLM cannot produce past that cap; we raise the cap to 512 + 8960 = 9472 (the recipe's max prompt length plus
  its completion length) so the ablation tests what it is named for. Its cosine reward uses max_len 3584: the
  repository's long-completion launch script (scripts/train/post_train_model_grpo_long_completion.sh:49 @ b490b48)
  passes --cosine_max_len 3584 to every run. That script trains on 2 processes and gives vLLM a third GPU of its
  own at the recipe's 0.7 memory share; we keep vLLM colocated on the training GPU (docs/recipe_parity.md).

Every recipe stops at the step its file's comment names ("use 1500 for lr scheduler but stop at 850 steps");
these six files are not in the quote store, so their stop steps come from tina_sweep/data/reference/tina_recipes.csv.
"""

from tina_sweep import Study
from tina_sweep.trial.prompts import OPEN_RS_SYSTEM_PROMPT
from tina_sweep.trial.rewards import tina_cosine_params

FORMAT_ACCURACY = [{"name": "format", "weight": 1.0}, {"name": "accuracy", "weight": 2.0}]
OPEN_RS3 = {"dataset.name": "open_rs", "algorithm.num_generations": 6, "training.max_steps": 1500,
            "training.stop_at_step": 850, "training.save_steps": 50, "prompt.system": OPEN_RS_SYSTEM_PROMPT}
L1 = {"dataset.name": "deepscaler", "training.max_steps": 11000, "training.stop_at_step": 5500,
      "training.save_steps": 100,
      "prompt.target_length_range": [100, 4000]}

study = Study(
    name="tina_extra",
    description="Tina recipes without a published row",
    recipe="tina_limr",  # what every Tina recipe shares; each axis value's linked fields set the rest
    axes={"recipe": ["2thought", "fastcurl", "l1_exact", "l1_max", "open_rs3_format_ablation",
                     "open_rs3_long_completion_ablation"]},
    linked={"recipe": {
        "open_rs3_format_ablation": {"algorithm.rewards": [
            {"name": "format", "weight": 1.0}, {"name": "tag_count", "weight": 1.0},
            {"name": "length", "weight": 1.0}, {"name": "reasoning_steps", "weight": 1.0},
            {"name": "repetition_penalty", "weight": 1.0}]},
        "open_rs3_long_completion_ablation": {"algorithm.rewards": [
            {"name": "format", "weight": 1.0}, {"name": "cosine", "weight": 2.0, "params": tina_cosine_params(3584)}]},
    }},
    scales={
        "paper": {"linked": {"recipe": {
            "2thought": {"dataset.name": "ii_thought", "training.max_steps": 13320, "training.stop_at_step": 6660,
                         "training.save_steps": 100,
                         "algorithm.rewards": FORMAT_ACCURACY},
            "fastcurl": {"dataset.name": "fastcurl", "training.max_steps": 11000, "training.stop_at_step": 5500,
                         "training.save_steps": 100,
                         "algorithm.rewards": FORMAT_ACCURACY},
            "l1_exact": {**L1, "algorithm.rewards": [{"name": "length_l1_exact", "weight": 1.0}]},
            "l1_max": {**L1, "algorithm.rewards": [{"name": "length_l1_max", "weight": 1.0}]},
            "open_rs3_format_ablation": OPEN_RS3,
            "open_rs3_long_completion_ablation": {**OPEN_RS3, "algorithm.max_completion_length": 8960,
                                                  "algorithm.vllm_gpu_memory_utilization": 0.7,
                                                  "algorithm.vllm_max_model_length": 9472},
        }}},
        "cpu": {"recipe": "arithmetic_dr_grpo",
                "axes": {"recipe": ["open_rs3_format_ablation", "open_rs3_long_completion_ablation"]}},
        "smoke": {"recipe": "arithmetic_smoke",
                  "axes": {"recipe": ["open_rs3_format_ablation", "open_rs3_long_completion_ablation"]}},
    },
)
