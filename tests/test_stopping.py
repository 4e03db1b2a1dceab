"""Spend only what the conclusion needs (issue 16): the dev split (never a training or test problem), its score at
every checkpoint, early stopping on it, the best checkpoint chosen on it, and arms pruned across workers by
Optuna's pruners on the shared ledger -- recorded PRUNED, never retried -- with every axis an Optuna param."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState

from conftest import smoke_tree
from test_scaleout import TINA_SWEEP, Processes
from tina_sweep import Study
from tina_sweep.ledger.store import Ledger
from tina_sweep.study.study import resolve
from tina_sweep.trial.datasets import DataError, load_benchmark, load_training_problems, question_key, split_dev
from tina_sweep.trial.spec import ConfigError, TrialSpec

WAIT = 300


def _questions(problems) -> set[str]:
    return {question_key(p.question) for p in problems}


# ---------------------------------------------------------------------------- the dev split

def test_dev_split_is_disjoint_from_training_and_test_and_the_same_for_every_seed():
    study = Study(name="dev", axes={"lora.rank": [4]}, seeds=[42, 7], stopping={"problems": 64})
    first, second = (trial.spec for trial in resolve(study, "cpu"))
    training, dev = split_dev(first)
    test = set().union(*(_questions(load_benchmark(b)) for b in first.eval.benchmarks))
    assert len(dev) == 64 and len(training) == first.dataset.limit
    assert not _questions(dev) & _questions(training)
    assert not _questions(dev) & test
    assert _questions(split_dev(second)[1]) == _questions(dev)  # every trial scores the same problems
    assert not _questions(dev) & _questions(load_training_problems(second))
    # without a dev split the training set is what it always was
    assert len(load_training_problems(first.model_copy(update={"dev": None}))) == first.dataset.limit


def test_dev_split_from_a_file_training_set_skips_test_questions(tmp_path):
    test_questions = [p.question for p in load_benchmark(TrialSpec().eval.benchmarks[0])][:5]
    rows = [{"question": q, "answer": "0"} for q in test_questions]  # a training file that leaks test problems
    rows += [{"question": f"How many apples are in basket {i}?", "answer": str(i)} for i in range(40)]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    spec = TrialSpec.model_validate({**smoke_tree(), "dataset": {"name": "mine", "path": str(path)},
                                     "dev": {"problems": 30}})
    training, dev = split_dev(spec)
    assert len(dev) == 30 and not _questions(dev) & {question_key(q) for q in test_questions}
    assert not _questions(dev) & _questions(training) and len(training) == len(rows) - 30
    with pytest.raises(DataError, match="dev.problems: training set 'mine' has only 40 problems outside"):
        split_dev(spec.model_copy(update={"dev": spec.dev.model_copy(update={"problems": 41})}))


def test_dev_benchmark_drops_training_and_test_problems_and_must_not_be_a_test_benchmark(tmp_path):
    spec = TrialSpec.model_validate(smoke_tree())
    test_question = load_benchmark(spec.eval.benchmarks[0])[0].question
    training_question = load_training_problems(spec)[0].question
    path = tmp_path / "dev.jsonl"
    path.write_text("".join(json.dumps({"question": q, "answer": "1"}) + "\n"
                            for q in [test_question, training_question, "What is 1000 + 1?", "What is 2000 + 2?"]))
    spec = TrialSpec.model_validate({**smoke_tree(), "dev": {"problems": 2, "benchmark": {"name": "mine",
                                                                                           "path": str(path)}}})
    assert [p.question for p in split_dev(spec)[1]] == ["What is 1000 + 1?", "What is 2000 + 2?"]
    with pytest.raises(ValueError, match="dev.benchmark.name: 'arithmetic' is a test benchmark"):
        TrialSpec.model_validate({**smoke_tree(), "dev": {"benchmark": {"name": "arithmetic"}}})


def test_stopping_is_checked_like_every_field():
    with pytest.raises(ValueError, match="stopping.pruner: must be 'none', 'median'"):
        Study(name="bad", axes={"lora.rank": [2]}, stopping={"pruner": "medain"})
    with pytest.raises(ValueError, match="stopping.patience: unknown field|stopping.patient: unknown field"):
        Study(name="bad", axes={"lora.rank": [2]}, stopping={"patient": 2})
    with pytest.raises(ConfigError):
        resolve(Study(name="bad", axes={"lora.rank": [2]}, base={"dev.problems": 0}), "smoke")


# ---------------------------------------------------------------------------- inside the trial

def _run_trial(tmp_path, **dev):
    from tina_sweep.run.job import run_job
    from tina_sweep.trial.cost import load_prices
    from tina_sweep.trial.trial import Trial

    tree = smoke_tree(**{"training.max_steps": 4, "training.save_steps": 1})
    tree["dev"] = {"problems": 4, **dev}
    spec = TrialSpec.model_validate(tree)
    folder = tmp_path / "trial"
    return run_job(Trial("t", "trial", spec, {}), folder, load_prices(None)), folder


def test_dev_scores_every_checkpoint_and_the_best_one_is_evaluated_on_test(tiny_model_dir, tmp_path):
    result, folder = _run_trial(tmp_path)
    lines = [json.loads(line) for line in (folder / "dev_log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4] and all(line["problems"] == 4 for line in lines)
    assert all(json.loads((folder / "checkpoints" / f"checkpoint-{s}" / "dev.json").read_text())["step"] == s
               for s in (1, 2, 3, 4))
    assert result.dev.curve == {line["step"]: line["pass_at_1"] for line in lines}
    assert result.dev.best_step == max(result.dev.curve, key=lambda s: (result.dev.curve[s], -s))
    assert result.stopped.reason == "finished" and (result.stopped.step, result.stopped.horizon) == (4, 4)
    chosen = [name for name, entry in result.checkpoints.items() if entry.chosen_by == "dev"]
    assert chosen == [f"checkpoint-{result.dev.best_step}"]  # evaluated on the test benchmarks too
    assert (folder / "eval" / chosen[0] / "arithmetic.jsonl").is_file()


def test_early_stopping_ends_training_after_patience_scores_without_gain(tiny_model_dir, tmp_path):
    # a gain of more than 1.0 in Pass@1 is impossible: training stops after the second dev score
    result, folder = _run_trial(tmp_path, patience=1, min_delta=1.0)
    assert result.stopped.reason == "early_stopped" and result.stopped.step == 2 and result.stopped.horizon == 4
    assert result.train_steps == 2 and sorted(result.dev.curve) == [1, 2]
    assert [json.loads(line)["step"] for line in (folder / "train_log.jsonl").open()] == [1, 2]


# ---------------------------------------------------------------------------- pruning across workers

PRUNED_STUDY = textwrap.dedent("""
    from tina_sweep import Study

    study = Study(
        name="prune",
        base={"training.max_steps": 6, "training.save_steps": 1, "dev.problems": 4,
              "eval.benchmarks": [{"name": "arithmetic", "limit": 4}]},
        axes={"lora.rank": [2, 4]},
        evaluate_base_model=False,
        stopping={"pruner": "median", "startup_trials": 1, "min_steps": 1},
    )
""")


@pytest.fixture(scope="module")
def pruned_sweep(tiny_model_dir, tmp_path_factory):
    """Two workers share a journal in which an earlier, stronger trial finished (dev Pass@1 1.0 at every step):
    the median pruner, reading the shared storage, prunes each worker's trial at its first dev score (step 1).
    Trials wait at step 1, before it is scored (tests/gate.py), until both are there, so each worker holds one,
    whatever the machine's speed. Returns (sweeps root, study file, the workers)."""
    tmp_path = tmp_path_factory.mktemp("pruned")
    study_file = tmp_path / "prune.py"
    study_file.write_text(PRUNED_STUDY)
    root = tmp_path / "sweeps"
    journal = root / "prune" / "ledger.journal"
    Ledger("prune", None, root / "prune").close()
    strong = optuna.load_study(study_name="prune", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))))
    strong.add_trial(optuna.trial.create_trial(value=1.0, intermediate_values={s: 1.0 for s in range(1, 7)}))

    processes = Processes(tmp_path)
    try:
        workers = [processes.start(f"worker{i}", "worker", study_file, "--scale", "smoke", "--sweeps-dir", root,
                                   "--workers", "1", "--threads-per-worker", "1", env={"TINA_GATE_STEP": "1"})
                   for i in range(2)]
        deadline = time.monotonic() + WAIT
        while len(list(processes.gate.glob("*.waiting"))) < 2:
            if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                pytest.fail("the two trials did not both reach step 1:\n" + processes.logs())
            time.sleep(0.1)
        processes.open_gate()
        processes.wait(workers, WAIT)
    finally:
        processes.kill_all()
    assert all(w.returncode == 0 for w in workers), processes.logs()
    return root, study_file, workers


def _jobs(root: Path) -> dict[str, list]:
    ledger = Ledger("prune", None, root / "prune", create=False)
    try:
        return {job: tries for job, tries in ledger.by_job().items() if job != "?"}
    finally:
        ledger.close()


def test_pruning_across_two_workers_on_one_journal(pruned_sweep):
    """Each trial stops cleanly (a checkpoint where it stopped, evaluated) and is recorded PRUNED with its params
    and intermediate values."""
    root, _, workers = pruned_sweep
    owners = {line.split("]")[0] for w in workers for line in w.log_path.read_text().splitlines()
              if "claimed rank=" in line}
    assert len(owners) == 2  # one trial on each worker
    jobs = _jobs(root)
    assert len(jobs) == 2
    for job, tries in jobs.items():
        assert [t.state for t in tries] == [TrialState.PRUNED], (job, [t.user_attrs.get("error") for t in tries])
        attempt = tries[0]
        assert attempt.params == {"lora.rank": int(job.split("-")[0].split("=")[1]), "seed": 42}
        assert attempt.distributions["lora.rank"] == IntDistribution(2, 4)
        assert list(attempt.intermediate_values) == [1]
        assert [step for step, _ in attempt.user_attrs["train_reward"]] == [1]  # the training curve, per step
        result = attempt.user_attrs["result"]
        assert result["stopped"]["reason"] == "pruned" and result["stopped"]["horizon"] == 6
        assert result["train_steps"] == 1  # stopped at the step its pruning was decided on
        folder = root / "prune" / "trials" / job
        assert (folder / "checkpoints" / "checkpoint-1").is_dir() and (folder / "eval" / "arithmetic.jsonl").is_file()
        assert "checkpoints" not in result  # a pruned arm: no second test evaluation of its best dev checkpoint
        assert json.loads((folder / "stop.json").read_text())["pruner"] == "median"


def test_a_pruned_trial_is_not_retried(pruned_sweep):
    root, study_file, _ = pruned_sweep
    again = subprocess.run([str(TINA_SWEEP), "run", str(study_file), "--scale", "smoke", "--sweeps-dir", str(root),
                            "--wandb", "off"], capture_output=True, text=True, timeout=WAIT,
                           env={**os.environ, "COLUMNS": "200"})
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 jobs (2 finished, 0 to run)" in again.stdout
    assert sum(len(tries) for tries in _jobs(root).values()) == 2  # nothing retried
    status = subprocess.run([str(TINA_SWEEP), "status", str(root / "prune")], capture_output=True, text=True, timeout=WAIT,
                            env={**os.environ, "COLUMNS": "250"})
    assert status.returncode == 0 and status.stdout.count("pruned") >= 2, status.stdout + status.stderr


def test_the_report_shows_where_each_trial_stopped(pruned_sweep):
    from tina_sweep.report import build_report

    root, _, _ = pruned_sweep
    out = build_report(root / "prune", which="best", n_boot=50)
    stopping = (out / "stopping.md").read_text()
    assert stopping.count("| pruned") == 2 and stopping.count("1 / 6") == 2
    assert "The study trained 2 of the full grid's 12 steps (17%)" in stopping
    assert "by its dev score" in (out / "pass_at_1.md").read_text()  # --which best chose on dev, not on test
    assert "optimistic" not in (out / "pass_at_1.md").read_text()
    svg = (out / "figures" / "learning_curves.svg").read_text()
    assert svg.count('id="dev:rank=') == 2 and svg.count('id="dev:pruned:rank=') == 2


def test_optuna_dashboard_shows_params_and_intermediate_values(pruned_sweep):
    """optuna-dashboard on the study's journal: its JSON API lists every trial with its params and its dev
    curve (intermediate values), as its pages draw them."""
    import socket
    import urllib.request

    root, _, _ = pruned_sweep
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dashboard = subprocess.Popen([str(Path(sys.executable).with_name("optuna-dashboard")),
                                  str(root / "prune" / "ledger.journal"), "--port", str(port), "--host", "127.0.0.1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:  # until the server answers (an event, not a fixed wait)
            try:
                studies = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5))
                break
            except OSError:
                if time.monotonic() > deadline or dashboard.poll() is not None:
                    pytest.fail("optuna-dashboard did not start")
                time.sleep(0.2)
        study_id = next(s["study_id"] for s in studies["study_summaries"] if s["study_name"] == "prune")
        detail = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{study_id}", timeout=30))
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)
    ours = [t for t in detail["trials"] if any(a["key"] == "trial_id" for a in t["user_attrs"])]
    assert len(ours) == 2 and {t["state"] for t in ours} == {"Pruned"}
    for trial in ours:
        params = {p["name"]: p["param_external_value"] for p in trial["params"]}
        assert set(params) == {"lora.rank", "seed"} and params["seed"] == "42"
        assert [v["step"] for v in trial["intermediate_values"]] == [1]
    assert {p["name"] for p in detail["union_search_space"]} == {"lora.rank", "seed"}
