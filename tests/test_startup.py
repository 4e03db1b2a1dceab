"""What a run pays before its first trial starts: on a machine without a GPU the `tina-sweep run` process imports
neither torch nor transformers (the trials' fork server does, at the same time), and a model's shape for the LoRA
checks is read once and kept, keyed by its config.json."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import STUDIES_DIR
from tina_sweep.trial.gpus import cuda_available, gpu_device_nodes
from tina_sweep.trial.models import cache_root, model_shape

PROBE = textwrap.dedent("""
    import atexit, json, sys
    if __name__ == "__main__":
        answer = sys.argv.pop(1)
        atexit.register(lambda: print(json.dumps({m: m in sys.modules for m in ("torch", "transformers")}),
                                      file=open(answer, "w")))
        sys.argv[0] = "tina-sweep"
        from tina_sweep.cli import main
        main()
""")


def _modules_after(arguments: list[str], tmp_path: Path, **env: str) -> dict[str, bool]:
    """Run ``tina-sweep ARGUMENTS`` in a new process; which of torch and transformers it imported."""
    probe, answer = tmp_path / "probe.py", tmp_path / "imported.json"
    probe.write_text(PROBE)
    done = subprocess.run([sys.executable, str(probe), str(answer), *arguments], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(answer.read_text())


@pytest.mark.skipif(bool(gpu_device_nodes()), reason="this machine has GPU device nodes: torch is asked")
def test_a_cpu_run_imports_neither_torch_nor_transformers_in_its_own_process(tiny_model_dir, tmp_path):
    model_shape("tiny-random-qwen2")  # built and read once (the first run on a machine does this)
    imported = _modules_after(["run", str(STUDIES_DIR / "smoke.py"), "--scale", "smoke", "--sweeps-dir",
                               str(tmp_path / "sweeps"), "--wandb", "off", "--workers", "1"], tmp_path)
    assert imported == {"torch": False, "transformers": False}
    result = json.loads(next((tmp_path / "sweeps" / "smoke" / "trials").glob("rank=*/result.json")).read_text())
    assert result["cost"]["device"] and result["train_steps"] > 0  # the trials themselves did run


def test_gpu_answers_agree_with_torch():
    import torch

    assert cuda_available() == torch.cuda.is_available()


def test_a_models_shape_is_kept_by_its_config(tiny_model_dir, tmp_path):
    model = tmp_path / "my-model"
    shutil.copytree(tiny_model_dir, model)
    shape = model_shape(str(model))
    assert "model.layers.1.self_attn.q_proj" in shape.layers and shape.hidden_size == 64
    kept = list((cache_root() / "shapes").glob("*.json"))
    assert any(sorted(json.loads(f.read_text())["layers"]) == sorted(shape.layers) for f in kept)

    # read again in a new process: from the kept file, without importing transformers
    script = (f"import json, sys; from tina_sweep.trial.models import model_shape; s = model_shape({str(model)!r}); "
              f"print(json.dumps([sorted(s.layers), s.hidden_size, 'transformers' in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    layers, hidden, imported = json.loads(done.stdout)
    assert (frozenset(layers), hidden, imported) == (shape.layers, 64, False)

    # another config is another model: one layer fewer is read afresh
    config = json.loads((model / "config.json").read_text())
    config["num_hidden_layers"] = 1
    if "layer_types" in config:
        config["layer_types"] = config["layer_types"][:1]
    (model / "config.json").write_text(json.dumps(config))
    smaller = model_shape(str(model))
    assert "model.layers.0.self_attn.q_proj" in smaller.layers
    assert not any(layer.startswith("model.layers.1.") for layer in smaller.layers)
