"""The report states the global batch (prompts and completions per optimizer step) each trial trained with, and
"Steps (% of 1 epoch)" counts it (issue 12, item 2)."""

from __future__ import annotations

import json

import polars as pl

from test_report_tables import write_sweep
from tina_sweep.report import build_report, load_frame


def test_global_batch_in_frame_epoch_share_and_caption(tmp_path):
    sweep = write_sweep(tmp_path, checkpoints=False)
    # one trial recorded what it ran with: 2 processes' batch, 8 prompts (16 completions) per optimizer step
    path = sweep / "trials" / "rank=4-s1-ccc" / "result.json"
    result = json.loads(path.read_text())
    result["global_batch"] = {"prompts_per_step": 8, "completions_per_step": 16, "processes": 1,
                              "gradient_accumulation_steps": 4, "prompts_per_micro_step": 2,
                              "defined_for_processes": 2}
    path.write_text(json.dumps(result))
    frame = load_frame(sweep)
    trials = frame.filter(pl.col("kind") == "trial").sort("trial_id")
    # the others' spec: prompts_per_step 2 x accumulation 2 x 1 process = 4 prompts x 2 generations
    assert trials["prompts_per_step"].to_list() == [4, 4, 8]
    assert trials["completions_per_step"].to_list() == [8, 8, 16]
    # 10 steps x prompts per optimizer step over the 20 problems
    assert trials["steps_pct_epoch"].to_list() == [200.0, 200.0, 400.0]
    assert frame.filter(pl.col("kind") == "baseline")["prompts_per_step"].to_list() == [None]
    caption = (build_report(sweep, n_boot=50) / "pass_at_1.md").read_text().splitlines()[0]
    assert "Global batch: 4 prompts (8 completions) or 8 prompts (16 completions) per optimizer step." in caption
    assert "training steps x prompts per optimizer step / training-set size" in caption
