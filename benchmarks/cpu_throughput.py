"""Where a cpu-scale trial's time goes, and how close it is to what this machine allows (issue 15).

Measured in one run on this machine, so the ratios compare like with like (these machines are noisy and differ
by 2x and more from one another):

- the machine's roofline, measured here: memory bandwidth (a large tensor copy) and GEMM throughput (fp32, and
  bf16 where the CPU has AVX512-BF16 / AMX);
- evaluation: greedy decoding of the cpu scale's arithmetic benchmark (50 prompts at once, 24 new tokens, the
  embedded SmolLM2-135M-Instruct, tina_sweep's own transformers backend) in tokens/s, and as a fraction of the
  roofline for that batch (each decode step reads every weight once and does 2 x parameters x batch FLOPs);
- one GRPO step's training half: forward + backward of the LoRA policy (rank 8 on every linear layer, as the
  cpu recipe) on 8 sequences x 96 tokens, fp32 vs bf16 autocast;
- one GRPO step's rollout half: sampling 8 completions of 24 tokens (2 prompts x 4 generations), per decode step;
- a whole cpu-scale GRPO step through TRL, fp32 vs ``training.cpu_autocast: bf16``;
- with ``--sweep``: ``tina-sweep run`` on a 4-trial study, one worker with every thread vs one single-threaded
  worker per core.

Run: ``python benchmarks/cpu_throughput.py [--repeats 3]``. Nothing here changes tina-sweep's defaults.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_description() -> tuple[str, int, list[str]]:
    """The CPU's model name, its logical cores and which of ``CPU_FLAGS`` it has."""
    name, flags = platform.processor() or "unknown CPU", set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name") and name in ("unknown CPU", "", "x86_64"):
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags |= set(line.split(":", 1)[1].split())
    return name, torch.get_num_threads(), [f for f in CPU_FLAGS if f in flags]


def timed(work, repeats: int) -> float:
    """The median wall time of ``repeats`` calls of ``work`` after one warm-up call."""
    work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def memory_bandwidth(repeats: int) -> float:
    """Bytes per second of a 256 MiB tensor copy (read + write counted)."""
    source = torch.ones(64 * 1024 * 1024, dtype=torch.float32)
    target = torch.empty_like(source)
    seconds = timed(lambda: target.copy_(source), repeats)
    return 2 * source.numel() * source.element_size() / seconds


def gemm_flops(dtype: torch.dtype, repeats: int, size: int = 1024) -> float:
    """FLOP/s of a square matrix product in ``dtype``."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    seconds = timed(lambda: torch.mm(a, b), repeats)
    return 2 * size ** 3 / seconds


def load_policy():
    from tina_sweep.trial.models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer("smollm2-135m-instruct", "float32", "sdpa")
    model.eval()
    tokenizer.padding_side = "left"
    return model, tokenizer


def evaluation_throughput(model, tokenizer, repeats: int) -> dict[str, float]:
    """The cpu scale's greedy evaluation of 50 arithmetic problems in one batch (its prompts, chat template and
    settings, as tina_sweep's transformers backend generates): its wall time, the prompt tokens it read, the decode
    steps and slots (batch x steps) it computed, and the tokens generated before an end token."""
    from tina_sweep.study.recipes import preset
    from tina_sweep.trial.datasets import load_benchmark
    from tina_sweep.trial.evaluate.scoring import problem_messages
    from tina_sweep.trial.spec import DataSpec, TrialSpec

    spec = TrialSpec.model_validate(preset("cpu"))
    problems = load_benchmark(DataSpec(name="arithmetic", limit=spec.eval.batch_size))
    prompts = [tokenizer.apply_chat_template(problem_messages(p, spec.prompt), tokenize=False,
                                             add_generation_prompt=True) for p in problems]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    shapes = []

    @torch.inference_mode()
    def work():
        output = model.generate(**batch, max_new_tokens=spec.eval.max_new_tokens, do_sample=False, temperature=None,
                                top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id)
        new = output[:, batch["input_ids"].shape[1]:]
        shapes.append((int((new != tokenizer.pad_token_id).sum()), new.shape[0], new.shape[1]))

    seconds = timed(work, repeats)
    generated, rows, steps = shapes[-1]
    return {"seconds": seconds, "prompt_tokens": int(batch["attention_mask"].sum()), "batch": rows, "steps": steps,
            "slots": rows * steps, "generated": generated}


def policy_step_seconds(model, repeats: int, autocast: bool) -> float:
    """Forward + backward of the LoRA policy (rank 8, alpha 32, every linear layer) on 8 x 96 tokens."""
    from peft import LoraConfig, get_peft_model

    from tina_sweep.study.scales import ALL_LINEAR

    policy = get_peft_model(model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.0, target_modules=ALL_LINEAR))
    policy.train()
    ids = torch.randint(0, model.config.vocab_size, (8, 96), generator=torch.Generator().manual_seed(0))

    def work():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = policy(input_ids=ids, labels=ids).loss
        loss.backward()
        policy.zero_grad(set_to_none=True)

    try:
        return timed(work, repeats)
    finally:
        policy.unload()  # the base model back, unchanged, for the next measurement


@torch.inference_mode()
def rollout_seconds_per_step(model, tokenizer, repeats: int) -> float:
    """Seconds per decode step of sampling 2 prompts x 4 completions of 24 tokens (the cpu scale's rollout)."""
    batch = tokenizer(["What is 12 + 7?"] * 8, return_tensors="pt", padding=True)
    kwargs = dict(max_new_tokens=24, min_new_tokens=24, do_sample=True, temperature=1.0, top_k=50,
                  pad_token_id=tokenizer.pad_token_id)
    return timed(lambda: model.generate(**batch, **kwargs), repeats) / 24


def grpo_step_seconds(autocast: str, steps: int = 4) -> float:
    """The median time of a whole cpu-scale GRPO step (TRL's GRPOTrainer through tina_sweep's trainer: rollouts,
    rewards, forward + backward, optimizer) over steps 2..``steps``, with ``training.cpu_autocast``."""
    import tempfile

    from tina_sweep.study.recipes import preset
    from tina_sweep.trial.spec import TrialSpec
    from tina_sweep.trial.train.trainer import train_trial

    tree = preset("cpu")
    tree["training"].update(max_steps=steps, save_steps=1000, cpu_autocast=autocast)
    tree["dataset"]["limit"] = 64
    spec = TrialSpec.model_validate(tree)
    ends: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        train_trial(spec, Path(folder) / "trial", on_step=lambda step, total, logs: ends.append(time.perf_counter()))
    return statistics.median(b - a for a, b in zip(ends, ends[1:]))


SWEEP_STUDY = """from tina_sweep import Study

study = Study(name="throughput", description="4 short cpu-scale trials (benchmarks/cpu_throughput.py --sweep)",
              recipe="arithmetic_dr_grpo", axes={"lora.rank": [4, 8, 16, 32]}, evaluate_base_model=False,
              base={"training.max_steps": 4, "training.save_steps": 1000,
                    "eval.benchmarks": [{"name": "arithmetic", "limit": 25}]})
"""


def sweep_seconds(workers: int, threads: int) -> float:
    """Wall time of ``tina-sweep run`` on a 4-trial cpu-scale study (4 steps each, 25 evaluation problems) with
    ``workers`` workers of ``threads`` threads, in a fresh sweeps folder."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        study = Path(folder) / "throughput.py"
        study.write_text(SWEEP_STUDY)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tina_sweep.cli", "run", str(study), "--scale", "cpu", "--sweeps-dir",
                        str(Path(folder) / "sweeps"), "--workers", str(workers), "--threads-per-worker", str(threads),
                        "--wandb", "off"], check=True, capture_output=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep", action="store_true", help="also time a 4-trial study with 1 worker x all threads "
                                                             "and with one single-threaded worker per core (minutes)")
    arguments = parser.parse_args()
    repeats = arguments.repeats
    torch.manual_seed(0)
    name, threads, flags = cpu_description()
    print(f"machine: {name}, {threads} threads, flags: {', '.join(flags) or 'none of ' + ', '.join(CPU_FLAGS)}")

    bandwidth = memory_bandwidth(repeats)
    fp32 = gemm_flops(torch.float32, repeats)
    bf16 = gemm_flops(torch.bfloat16, repeats)
    print(f"roofline: memory {bandwidth / 1e9:.1f} GB/s; GEMM fp32 {fp32 / 1e9:.1f} GFLOP/s, bf16 {bf16 / 1e9:.1f} "
          f"GFLOP/s (bf16/fp32 {bf16 / fp32:.2f}x)")

    model, tokenizer = load_policy()
    params = sum(p.numel() for p in model.parameters())
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    run = evaluation_throughput(model, tokenizer, repeats)
    # the floor of the call: every token (prompt and decoded) costs 2 x params FLOPs, and every decode step (and the
    # prompt pass) reads every weight once; the slower of the two bounds
    compute_floor = 2 * params * (run["prompt_tokens"] + run["slots"]) / fp32
    memory_floor = weight_bytes * (run["steps"] + 1) / bandwidth
    floor = max(compute_floor, memory_floor)
    print(f"evaluation (greedy, batch {run['batch']}, {run['prompt_tokens']} prompt tokens, {run['steps']} decode "
          f"steps, fp32): {run['seconds']:.2f} s, {run['generated'] / run['seconds']:.0f} generated tokens/s; the "
          f"roofline allows {floor:.2f} s ({'compute' if compute_floor >= memory_floor else 'memory'}-bound): "
          f"{100 * floor / run['seconds']:.0f}% of it")

    per_step = rollout_seconds_per_step(model, tokenizer, repeats)
    floor = max(weight_bytes / bandwidth, 2 * params * 8 / fp32)
    print(f"rollout (8 completions sampled, 24 tokens): {1000 * per_step:.0f} ms per decode step; floor "
          f"{1000 * floor:.0f} ms ({per_step / floor:.1f}x the floor)")

    fp32_step, bf16_step = grpo_step_seconds("off"), grpo_step_seconds("bf16")
    print(f"GRPO step (cpu scale, TRL, median of steps 2-4): fp32 {fp32_step:.2f} s, training.cpu_autocast bf16 "
          f"{bf16_step:.2f} s (fp32/bf16 {fp32_step / bf16_step:.2f}x)")

    full = policy_step_seconds(model, repeats, autocast=False)
    mixed = policy_step_seconds(model, repeats, autocast=True)
    print(f"policy forward + backward (LoRA r8, 8 x 96 tokens): fp32 {full:.2f} s, bf16 autocast {mixed:.2f} s "
          f"(fp32/bf16 {full / mixed:.2f}x)")

    if arguments.sweep:
        one = sweep_seconds(1, threads)
        many = sweep_seconds(threads, 1)
        print(f"sweep of 4 short trials: 1 worker x {threads} threads {one:.0f} s, {threads} workers x 1 thread "
              f"{many:.0f} s ({one / many:.2f}x)")


if __name__ == "__main__":
    main()
