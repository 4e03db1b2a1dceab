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


def evaluation_throughput(model, tokenizer, repeats: int, shared_prefix: bool) -> dict[str, float]:
    """The cpu scale's greedy evaluation of 50 arithmetic problems in one batch (its prompts, chat template and
    settings): a plain left-padded ``generate``, or (``shared_prefix``) tina-sweep's transformers backend, which
    computes the prefix all prompts share once. Its wall time, the prompt tokens it computed, the decode steps and
    slots (batch x steps), and the tokens generated before an end token."""
    from tina_sweep.study.recipes import preset
    from tina_sweep.trial.datasets import load_benchmark
    from tina_sweep.trial.evaluate import local
    from tina_sweep.trial.evaluate.scoring import problem_messages
    from tina_sweep.trial.spec import DataSpec, TrialSpec

    spec = TrialSpec.model_validate(preset("cpu"))
    problems = load_benchmark(DataSpec(name="arithmetic", limit=spec.eval.batch_size))
    prompts = [tokenizer.apply_chat_template(problem_messages(p, spec.prompt), tokenize=False,
                                             add_generation_prompt=True) for p in problems]
    rows = [tokenizer(prompt, add_special_tokens=False)["input_ids"] for prompt in prompts]
    prefix = local.shared_prefix_length(rows) if shared_prefix else 0
    settings = dict(max_new_tokens=spec.eval.max_new_tokens, do_sample=False, temperature=None, top_p=None,
                    top_k=None, pad_token_id=tokenizer.pad_token_id)
    shapes = []

    @torch.inference_mode()
    def work():
        if shared_prefix:
            output = local.generate_sharing_prefix(model, rows, prefix, tokenizer.pad_token_id, **settings)
        else:
            batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            output = model.generate(**batch, **settings)
        new = output[:, max(map(len, rows)):]
        shapes.append((new, int((new != tokenizer.pad_token_id).sum()), new.shape[0], new.shape[1]))

    seconds = timed(work, repeats)
    tokens, generated, batch_rows, steps = shapes[-1]
    return {"seconds": seconds, "prompt_tokens": prefix + sum(len(row) - prefix for row in rows),
            "batch": batch_rows, "steps": steps, "slots": batch_rows * steps, "generated": generated,
            "tokens": tokens}


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
def rollout_seconds(model, tokenizer, repeats: int, fast: bool) -> float:
    """Seconds to sample the cpu scale's rollout: 2 arithmetic prompts (its chat template) x 4 completions of 24
    tokens from the LoRA policy (rank 8 on every linear layer), with ``generate`` as TRL calls it, or (``fast``)
    through ``training.cpu_fast_path``: each prompt's prefill once, the frozen weights prepacked."""
    from peft import LoraConfig, get_peft_model

    from tina_sweep.study.recipes import preset
    from tina_sweep.study.scales import ALL_LINEAR
    from tina_sweep.trial.datasets import load_benchmark
    from tina_sweep.trial.evaluate.scoring import problem_messages
    from tina_sweep.trial.spec import DataSpec, TrialSpec
    from tina_sweep.trial.train.cpu_fast_path import generate_sharing_prompts, prepacked_linears

    spec = TrialSpec.model_validate(preset("cpu"))
    prompts = [tokenizer.apply_chat_template(problem_messages(p, spec.prompt), tokenize=False,
                                             add_generation_prompt=True)
               for p in load_benchmark(DataSpec(name="arithmetic", limit=2)) for _ in range(4)]
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    kwargs = dict(max_new_tokens=24, min_new_tokens=24, do_sample=True, temperature=1.0, top_k=0,
                  pad_token_id=tokenizer.pad_token_id)
    policy = get_peft_model(model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.0, target_modules=ALL_LINEAR))
    packed: dict = {}

    def work():
        if not fast:
            return policy.generate(**batch, **kwargs)
        with prepacked_linears(policy, packed, rows=8):
            return generate_sharing_prompts(policy, batch["input_ids"], batch["attention_mask"], **kwargs)

    try:
        return timed(work, repeats)
    finally:
        policy.unload()


def grpo_step_seconds(autocast: str, fast_path: bool, steps: int = 5) -> float:
    """The median time of a whole cpu-scale GRPO step (TRL's GRPOTrainer through tina_sweep's trainer: rollouts,
    rewards, forward + backward, optimizer) over steps 2..``steps``, with ``training.cpu_autocast`` and
    ``training.cpu_fast_path``."""
    import tempfile

    from tina_sweep.study.recipes import preset
    from tina_sweep.trial.spec import TrialSpec
    from tina_sweep.trial.train.trainer import train_trial

    tree = preset("cpu")
    tree["training"].update(max_steps=steps, save_steps=1000, cpu_autocast=autocast, cpu_fast_path=fast_path)
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


def sweep_seconds(workers: int | None, threads: int | None) -> float:
    """Wall time of ``tina-sweep run`` on a 4-trial cpu-scale study (4 steps each, 25 evaluation problems) with
    ``workers`` workers of ``threads`` threads (None: tina-sweep's defaults), in a fresh sweeps folder."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        study = Path(folder) / "throughput.py"
        study.write_text(SWEEP_STUDY)
        options = (["--workers", str(workers)] if workers else []) + \
            (["--threads-per-worker", str(threads)] if threads else [])
        return run_seconds(["-m", "tina_sweep.cli", "run", str(study), "--scale", "cpu", "--sweeps-dir",
                            str(Path(folder) / "sweeps"), "--wandb", "off", *options])


def default_workers_line() -> str:
    """What ``tina-sweep run`` starts on this machine at the cpu scale without --workers."""
    from tina_sweep.run.runner import describe_slots
    from tina_sweep.run.worker import default_workers, plan_slots

    return describe_slots(plan_slots(default_workers("cpu")))


def run_seconds(arguments: list[str]) -> float:
    """Wall time of ``python <arguments>`` in a new process, from start to its exit, as a shell sees it (output to a
    file: a pipe would also wait for the fork server, which outlives the run by its own teardown); failure
    raises with the output's tail."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryFile("w+") as output:
        started = time.perf_counter()
        code = subprocess.run([sys.executable, *arguments], stdout=output, stderr=subprocess.STDOUT).returncode
        seconds = time.perf_counter() - started
        if code:
            output.seek(0)
            raise RuntimeError(f"python {' '.join(arguments)} exited with {code}: {output.read()[-2000:]}")
    return seconds


# (a) one trial of the cpu scale's size (30 steps; 150 problems evaluated) through tina-sweep, on TRL's own path (no
# cpu_fast_path, fp32) so that the same run can be written with TRL directly
OVERHEAD_STUDY = """from tina_sweep import Study

study = Study(name="overhead", description="one cpu-scale trial (benchmarks/cpu_throughput.py --overhead)",
              recipe="arithmetic_dr_grpo", axes={"lora.rank": [8]}, evaluate_base_model=False,
              base={"training.cpu_fast_path": False, "training.cpu_autocast": "off"})
"""


def direct_trial(spec_path: Path, folder: Path) -> None:
    """The trial of ``spec_path`` written with TRL directly, as a user would without tina-sweep: load the model,
    GRPOTrainer with the trial's GRPOConfig, LoRA and rewards, train, save the adapter, merge it, then generate the
    benchmarks in the same batches and grade them with the same grader; writes the Pass@1s, the training and
    evaluation seconds and each GRPO step's seconds to pass_at_1.json."""
    import json

    from datasets import Dataset
    from trl import GRPOTrainer

    from tina_sweep.trial.datasets import load_benchmark, load_training_problems
    from tina_sweep.trial.evaluate.local import evaluate_benchmark
    from tina_sweep.trial.evaluate.scoring import evaluation_prompt
    from tina_sweep.trial.models import load_model_and_tokenizer
    from tina_sweep.trial.prompts import apply_chat_template_choice
    from tina_sweep.trial.rewards import reward_function
    from tina_sweep.trial.spec import TrialSpec
    from tina_sweep.trial.train.trainer import grpo_config, lora_config, training_rows

    spec = TrialSpec.model_validate(json.loads(spec_path.read_text())["spec"])  # a trial folder's spec.json
    model, tokenizer = load_model_and_tokenizer(spec.model.name, spec.model.dtype, spec.model.attn_implementation)
    apply_chat_template_choice(tokenizer, spec.prompt)
    rewards = [reward_function(r.name, spec.algorithm.max_completion_length, r.params, spec.algorithm.num_generations)
               for r in spec.algorithm.rewards]
    trainer = GRPOTrainer(model=model, reward_funcs=rewards, args=grpo_config(spec, folder / "checkpoints", True),
                          train_dataset=Dataset.from_list(training_rows(spec, load_training_problems(spec))),
                          processing_class=tokenizer, peft_config=lora_config(spec))
    started = time.perf_counter()
    trainer.train()
    trainer.save_model(str(folder / "adapter"))
    trained = time.perf_counter()
    merged = trainer.model.merge_and_unload().eval()
    tokenizer.padding_side = "left"
    prompt = evaluation_prompt(spec.prompt, spec.eval)
    scores = {b.name: evaluate_benchmark(merged, tokenizer, load_benchmark(b), b.name, prompt, spec.eval,
                                         spec.seed).pass_at_1 for b in spec.eval.benchmarks}
    (folder / "pass_at_1.json").write_text(json.dumps(
        {"pass_at_1": scores, "train_seconds": trained - started, "eval_seconds": time.perf_counter() - trained,
         "step_seconds": step_seconds(trainer.state.log_history)}))


def overhead_seconds(rounds: int = 2) -> tuple[list[dict], list[dict]]:
    """One trial through ``tina-sweep run`` and the same run written with TRL directly (``direct_trial``), each
    in a new process, ``rounds`` times in alternating order (tina-sweep first, then the direct run first): per run
    its wall time, training and evaluation seconds, each GRPO step's seconds and the Pass@1s."""
    import json
    import tempfile

    swept, direct = [], []
    with tempfile.TemporaryDirectory() as folder:
        study = Path(folder) / "overhead.py"
        study.write_text(OVERHEAD_STUDY)
        spec_file = None
        for round_ in range(rounds):
            for which in (("swept", "direct") if round_ % 2 == 0 else ("direct", "swept")):
                if which == "direct" and spec_file is None:
                    continue  # the direct run reads the spec tina-sweep wrote: after the first tina-sweep run
                if which == "swept":
                    sweeps = Path(folder) / f"sweeps{round_}"
                    seconds = run_seconds(["-m", "tina_sweep.cli", "run", str(study), "--scale", "cpu",
                                           "--sweeps-dir", str(sweeps), "--wandb", "off", "--workers", "1"])
                    trial = next((sweeps / "overhead" / "trials").glob("rank=*"))
                    spec_file = trial / "spec.json"
                    result = json.loads((trial / "result.json").read_text())
                    log = [json.loads(line) for line in (trial / "train_log.jsonl").read_text().splitlines()]
                    swept.append({"seconds": seconds, "train": result["cost"]["train_seconds"],
                                  "eval": result["cost"]["eval_seconds"], "pass_at_1": result["pass_at_1"],
                                  "steps": step_seconds(log)})
                else:
                    direct.append(_direct_run(spec_file, Path(folder) / f"direct{round_}"))
        if len(direct) < len(swept):  # an odd number of rounds: the last direct run
            direct.append(_direct_run(spec_file, Path(folder) / "direct-last"))
    return swept, direct


def _direct_run(spec_file: Path, out: Path) -> dict:
    """``direct_trial`` in a new process: its wall time, training and evaluation seconds and Pass@1s."""
    import json

    seconds = run_seconds([__file__, "--direct-trial", str(spec_file), str(out)])
    measured = json.loads((out / "pass_at_1.json").read_text())
    return {"seconds": seconds, "train": measured["train_seconds"], "eval": measured["eval_seconds"],
            "pass_at_1": measured["pass_at_1"], "steps": measured["step_seconds"]}


def step_seconds(log_history: list[dict]) -> list[float]:
    """Each optimizer step's seconds as TRL measured them (``step_time``: the step's rollouts, rewards, forward,
    backward and optimizer), in step order."""
    return [entry["step_time"] for entry in log_history if "step_time" in entry]


def _mean(runs: list[dict], key: str) -> float:
    return statistics.mean(run[key] for run in runs)


def step_time_ratio(swept: list[dict], direct: list[dict], resamples: int = 10_000) -> tuple[float, float, float]:
    """The mean GRPO step time through tina-sweep over the direct run's, with a 95% bootstrap interval (steps
    resampled within each side): whether a step itself is slower inside a tina-sweep trial, apart from this
    machine's step-to-step noise (a cpu-scale step of TRL's path took 6.9 s to 10.7 s from one step to the next)."""
    import random

    from tina_sweep.report.stats import percentile_ci

    ours, theirs = [t for run in swept for t in run["steps"]], [t for run in direct for t in run["steps"]]
    rng = random.Random(0)
    ratios = [statistics.fmean(rng.choices(ours, k=len(ours))) / statistics.fmean(rng.choices(theirs, k=len(theirs)))
              for _ in range(resamples)]
    return (statistics.fmean(ours) / statistics.fmean(theirs), *percentile_ci(ratios))


def print_overhead(swept: list[dict], direct: list[dict]) -> None:
    """(a): each run's parts, the wall-time ratio as measured, and the orchestration overhead apart from the GRPO
    steps (TRL's own code in both, whose duration is this machine's noise: compared separately)."""
    for name, runs in (("tina-sweep run", swept), ("TRL directly", direct)):
        print(f"    {name}: " + "; ".join(
            f"{r['seconds']:.1f} s (train {r['train']:.1f} of which GRPO steps {sum(r['steps']):.1f}, eval "
            f"{r['eval']:.1f}, other {r['seconds'] - r['train'] - r['eval']:.1f})" for r in runs))
    wall, direct_wall = _mean(swept, "seconds"), _mean(direct, "seconds")
    outside = wall - statistics.mean(sum(r["steps"]) for r in swept)
    direct_outside = direct_wall - statistics.mean(sum(r["steps"]) for r in direct)
    ratio, low, high = step_time_ratio(swept, direct)
    print(f"(a) one cpu-scale trial (30 steps, 150 problems; TRL's path, fp32), mean of {len(swept)} run(s) each, "
          f"alternating: tina-sweep run {wall:.1f} s, the same run written with TRL directly {direct_wall:.1f} s "
          f"(ratio {wall / direct_wall:.3f} as measured); outside the GRPO steps {outside:.1f} s vs "
          f"{direct_outside:.1f} s: tina-sweep adds {outside - direct_outside:.1f} s, a ratio of "
          f"{(direct_wall + outside - direct_outside) / direct_wall:.3f} with the steps held equal; a GRPO step "
          f"inside tina-sweep / directly: {ratio:.3f} (95% interval {low:.3f}-{high:.3f}, "
          f"{sum(len(r['steps']) for r in swept)} vs {sum(len(r['steps']) for r in direct)} steps); Pass@1 "
          f"{swept[-1]['pass_at_1']} vs {direct[-1]['pass_at_1']}")


def machine_parts(repeats: int) -> None:
    """The roofline, evaluation, rollout, GRPO step and forward + backward timings."""
    bandwidth = memory_bandwidth(repeats)
    fp32 = gemm_flops(torch.float32, repeats)
    bf16 = gemm_flops(torch.bfloat16, repeats)
    print(f"roofline: memory {bandwidth / 1e9:.1f} GB/s; GEMM fp32 {fp32 / 1e9:.1f} GFLOP/s, bf16 {bf16 / 1e9:.1f} "
          f"GFLOP/s (bf16/fp32 {bf16 / fp32:.2f}x)")

    model, tokenizer = load_policy()
    params = sum(p.numel() for p in model.parameters())
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    # the floor of a call: every token computed (prompt and decoded) costs 2 x params FLOPs, and every decode step
    # (and the prompt pass) reads every weight once; the slower of the two bounds
    runs = {shared: evaluation_throughput(model, tokenizer, repeats, shared) for shared in (False, True)}
    for shared, run in runs.items():
        compute_floor = 2 * params * (run["prompt_tokens"] + run["slots"]) / fp32
        memory_floor = weight_bytes * (run["steps"] + 1) / bandwidth
        floor = max(compute_floor, memory_floor)
        print(f"(c) evaluation, {'prefix shared (tina-sweep)' if shared else 'plain left-padded generate'} (greedy, "
              f"batch {run['batch']}, {run['prompt_tokens']} prompt tokens computed, {run['steps']} decode steps, "
              f"fp32): {run['seconds']:.2f} s, {run['generated'] / run['seconds']:.0f} generated tokens/s; the "
              f"roofline allows {floor:.2f} s ({'compute' if compute_floor >= memory_floor else 'memory'}-bound): "
              f"{100 * floor / run['seconds']:.0f}% of it")
    same = torch.equal(runs[False]["tokens"], runs[True]["tokens"])
    print(f"    shared prefix: {runs[False]['seconds'] / runs[True]['seconds']:.2f}x faster, same completions: "
          f"{'yes' if same else 'no'}")

    before, after = rollout_seconds(model, tokenizer, repeats, False), rollout_seconds(model, tokenizer, repeats, True)
    floor = 24 * max(weight_bytes / bandwidth, 2 * params * 8 / fp32)
    print(f"rollout (2 prompts x 4 completions sampled, 24 tokens, fp32): TRL's generate {before:.2f} s, "
          f"training.cpu_fast_path {after:.2f} s ({before / after:.2f}x); decode floor {floor:.2f} s")

    steps = {(autocast, fast): grpo_step_seconds(autocast, fast)
             for autocast, fast in (("off", False), ("off", True), ("bf16", True))}
    trl = steps["off", False]
    print(f"(b) GRPO step (cpu scale, median of steps 2-5): before (TRL's path, fp32) {trl:.2f} s; "
          f"cpu_fast_path fp32 {steps['off', True]:.2f} s ({trl / steps['off', True]:.2f}x); "
          f"cpu_fast_path + cpu_autocast bf16 {steps['bf16', True]:.2f} s ({trl / steps['bf16', True]:.2f}x)")

    full = policy_step_seconds(model, repeats, autocast=False)
    mixed = policy_step_seconds(model, repeats, autocast=True)
    print(f"policy forward + backward (LoRA r8, 8 x 96 tokens, no prompt sharing): fp32 {full:.2f} s, bf16 autocast "
          f"{mixed:.2f} s (fp32/bf16 {full / mixed:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep", action="store_true", help="(d) also time a 4-trial study with 1 worker x all "
                                                             "threads and with tina-sweep's default workers (minutes)")
    parser.add_argument("--overhead", action="store_true", help="(a) also time one trial through tina-sweep against "
                                                                "the same run written with TRL directly (minutes)")
    parser.add_argument("--rounds", type=int, default=2, help="(a) runs of each, in alternating order")
    parser.add_argument("--no-machine", action="store_true", help="skip the roofline and the per-part timings (run "
                                                                   "only --overhead / --sweep)")
    parser.add_argument("--direct-trial", nargs=2, type=Path, metavar=("SPEC_JSON", "FOLDER"),
                        help=argparse.SUPPRESS)  # the direct run of (a), in its own process
    arguments = parser.parse_args()
    if arguments.direct_trial:
        return direct_trial(*arguments.direct_trial)
    repeats = arguments.repeats
    torch.manual_seed(0)
    name, threads, flags = cpu_description()
    print(f"machine: {name}, {threads} threads, flags: {', '.join(flags) or 'none of ' + ', '.join(CPU_FLAGS)}")

    if not arguments.no_machine:
        machine_parts(repeats)
    if arguments.overhead:
        print_overhead(*overhead_seconds(arguments.rounds))

    if arguments.sweep:
        one = sweep_seconds(1, threads)
        default = sweep_seconds(None, None)
        print(f"(d) sweep of 4 short trials: 1 worker x {threads} threads {one:.0f} s, tina-sweep's default "
              f"({default_workers_line()}) {default:.0f} s ({one / default:.2f}x)")

if __name__ == "__main__":
    main()
