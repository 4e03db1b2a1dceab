#!/usr/bin/env bash
# GPU check (one H100, no network, only the packages installed there; about 5-8 minutes):
#   bash benchmarks/gpu_check.sh [WORK_DIR]
# builds a tiny Qwen2 locally, writes a local two-trial study (LoRA rank 8 vs 32) at paper-style settings, trains
# both trials with GRPO + vLLM colocate rollouts, evaluates both adapters from ONE vLLM engine (a LoRARequest each),
# then the paper's way (merge each adapter, start a fresh engine on it), checks once that an adapter's greedy
# outputs differ from the base and match its merged copy, and prints step time, eval tokens/s and the ratio of
# merge-and-restart time over one-engine time. Every phase runs in its own process (a clean GPU per engine).
# Needs: a CUDA GPU; python with torch (CUDA), transformers, trl, peft, vllm (pip install -e '.[vllm]').
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${1:-${OUT:-/tmp}/tina-gpu-check}"
PY="${PYTHON:-python3}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false
export VLLM_LOGGING_LEVEL="${VLLM_LOGGING_LEVEL:-WARNING}"
mkdir -p "$WORK"
LOG="$WORK/gpu_check.log"
: > "$LOG"

phase() {  # phase NAME [ARG]: one process, its time, its output in the log
  local start end
  start=$(date +%s%N)
  if ! "$PY" "$REPO/benchmarks/gpu_check.py" "$1" "$WORK" "${@:2}" >> "$LOG" 2>&1; then
    echo "gpu_check: phase $* failed; last lines of $LOG:" >&2
    tail -n 40 "$LOG" >&2
    exit 1
  fi
  end=$(date +%s%N)
  local ms=$(( (end - start) / 1000000 ))
  printf '%-28s %5d.%01d s\n' "$*" $(( ms / 1000 )) $(( (ms % 1000) / 100 ))
}

"$PY" - <<'PYEOF' | tee -a "$LOG"
import importlib, sys
import torch
if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA GPU visible")
versions = {name: importlib.import_module(name).__version__ for name in ("torch", "transformers", "trl", "peft", "vllm")}
print("device:", torch.cuda.get_device_name(0), "x", torch.cuda.device_count())
print("versions:", versions)
PYEOF

phase prepare
phase train
phase one_engine
for name in $("$PY" -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))['trials']))" "$WORK/train.json"); do
  phase restart "$name"
done
phase check
"$PY" "$REPO/benchmarks/gpu_check.py" summary "$WORK" | tee "$WORK/summary.txt"
