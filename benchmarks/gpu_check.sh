#!/usr/bin/env bash
# GPU check (one H100, no network, only the packages installed there):
#   bash benchmarks/gpu_check.sh [WORK_DIR]
# builds a tiny Qwen2 locally, writes a local two-trial study (LoRA rank 8 vs 32) at paper-style settings, trains
# both trials with GRPO + vLLM colocate rollouts (refusing an adapter whose LoRA B norm is 0; the first trial probes
# TRL's per-step weight sync: after each sync the engine's greedy outputs equal the merged policy's and move away
# from the base model's), evaluates both adapters from ONE vLLM engine (a LoRARequest each) and on that engine
# checks that an adapter's greedy outputs differ from the base and match its merged copy, then evaluates the
# paper's way (merge each adapter, start a fresh engine on it), and prints step time, eval tokens/s, the ratio of
# merge-and-restart time over one-engine time and the checks; it exits 1 unless the adapter check and the weight
# sync passed (issue 12, item 8). Every phase runs in its own process (a clean GPU per engine).
# Then the same study through the real CLI (`tina-sweep run`, default scale on a GPU: paper) for the runner's
# device and cost records. Where vllm is not installed (TINA_GPU_CHECK_VLLM=0 forces it), rollouts and evaluation
# use transformers, the ratio is not measured, and a few GRPO steps of a random model with the paper model's shape
# are timed instead (SHAPE_STEPS=0 skips them). If training with vLLM rollouts fails, the script says so and
# trains with transformers generation so that vLLM evaluation is still measured (the weight sync then fails the
# verdict); each phase has PHASE_TIMEOUT seconds (default 300). With vLLM, about 8 minutes on one H100 (each
# engine start about 50-65 s; the adapter check shares the one-engine phase's engine); the closing
# `tina-sweep run` (the runner's path: device and cost records, with vLLM its shared engine and adapter check)
# runs by default only without vLLM: CLI_RUN=1 / CLI_RUN=0 force it on / off.
# Needs: a CUDA GPU; python with torch (CUDA), transformers, trl, peft, vllm (pip install -e '.[vllm]').
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${1:-${OUT:-/tmp}/tina-gpu-check}"
PY="${PYTHON:-python3}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false
export VLLM_LOGGING_LEVEL="${VLLM_LOGGING_LEVEL:-WARNING}"
# vLLM 0.25's sampler imports flashinfer unguarded unless its flashinfer sampler is switched off (an environment
# with vllm but without flashinfer-python then fails at engine start)
if ! "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('flashinfer') is None)"; then
  export VLLM_USE_FLASHINFER_SAMPLER=0
fi
mkdir -p "$WORK"
LOG="$WORK/gpu_check.log"
: > "$LOG"

phase() {  # phase NAME [ARG]: one process, its time, its output in the log
  local start end
  start=$(date +%s%N)
  if ! timeout "${PHASE_TIMEOUT:-300}" "$PY" "$REPO/benchmarks/gpu_check.py" "$1" "$WORK" "${@:2}" >> "$LOG" 2>&1; then
    echo "gpu_check: phase $* failed; last lines of $LOG:" >&2
    tail -n 40 "$LOG" >&2
    return 1
  fi
  end=$(date +%s%N)
  local ms=$(( (end - start) / 1000000 ))
  printf '%-28s %5d.%01d s\n' "$*" $(( ms / 1000 )) $(( (ms % 1000) / 100 ))
}

"$PY" - <<'PYEOF' | tee -a "$LOG"
import importlib, importlib.util, sys
import torch
if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA GPU visible")
versions = {name: importlib.import_module(name).__version__ if importlib.util.find_spec(name) else "not installed"
            for name in ("torch", "transformers", "trl", "peft", "vllm")}
print("device:", torch.cuda.get_device_name(0), "x", torch.cuda.device_count())
print("versions:", versions)
PYEOF

phase prepare || exit 1
if ! phase train; then
  # vLLM rollouts failed: say so, and train with transformers generation so vLLM evaluation still gets measured
  [ "$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['rollouts'])" "$WORK/prepare.json")" = vllm ] || exit 1
  echo "gpu_check: training with vLLM rollouts failed (log above); retrying with transformers rollouts"
  export TINA_GPU_CHECK_VLLM_ROLLOUTS=0
  rm -rf "$WORK/trials"
  phase prepare || exit 1
  phase train || exit 1
fi
if [ "$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['vllm'])" "$WORK/prepare.json")" = True ]; then
  phase one_engine || exit 1
  for name in $("$PY" -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))['trials']))" "$WORK/train.json"); do
    phase restart "$name" || exit 1
  done
else
  echo "vllm is not installed: rollouts and evaluation use transformers (no one-engine vs restart ratio)"
  phase hf_eval || exit 1
  if [ "${SHAPE_STEPS:-3}" != 0 ]; then phase shape || exit 1; fi
fi
"$PY" "$REPO/benchmarks/gpu_check.py" summary "$WORK" | tee "$WORK/summary.txt"
# (a) every adapter non-zero (the train phase refuses a zero one), (b) the adapter check, (c) the weight sync
"$PY" "$REPO/benchmarks/gpu_check.py" verdict "$WORK" | tee -a "$WORK/summary.txt" || VERDICT=1
# the closing CLI run: by default only without vllm (95 s there); with vllm the phases above take about 8 minutes
# and CLI_RUN=1 adds the runner's path (training, then one shared engine with the adapter check) on top
default_cli=1; [ "$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['vllm'])" "$WORK/prepare.json")" = True ] && default_cli=0
[ "${CLI_RUN:-$default_cli}" = 0 ] && { echo "CLI_RUN=0: the study through tina-sweep run is skipped"; exit "${VERDICT:-0}"; }
start=$(date +%s)
"$PY" -c "from tina_sweep.cli import app; app()" run "$WORK/gpu_check_study.py" --sweeps-dir "$WORK/sweeps" \
  --wandb off >> "$LOG" 2>&1 || { echo "gpu_check: tina-sweep run failed; last lines of $LOG:" >&2; tail -n 40 "$LOG" >&2; exit 1; }
printf '%-28s %7d s\n' "tina-sweep run" $(( $(date +%s) - start ))
"$PY" - "$WORK/sweeps/gpu_check" <<'PYEOF' | tee -a "$LOG"
import json, pathlib, sys
for result in sorted(pathlib.Path(sys.argv[1]).glob("trials/*/result.json")):
    r = json.loads(result.read_text())
    c = r["cost"]
    print("cli trial", result.parent.name, "|", c["device"], "x", c["device_count"], "| $/device-hour",
          c["price_per_device_hour"], "| train s", round(c["train_seconds"], 1), "eval s", round(c["eval_seconds"], 1),
          "| usd", round(c["total_usd"], 5), "| peak GB", round(c["peak_memory_gb"], 2), "| pass@1", r["pass_at_1"],
          "| eval on", sorted({b.get("device") for b in r["benchmarks"].values()}))
PYEOF
exit "${VERDICT:-0}"
