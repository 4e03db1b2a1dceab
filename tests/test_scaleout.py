"""Scale-out: workers sharing one study through PostgreSQL or the journal file, every trial exactly once;
a worker killed in the middle of a trial (its trial is retried elsewhere and resumes from its checkpoint);
concurrent enqueues and claims; resume inside a trial; `tina-sweep status` against both storages.

The PostgreSQL tests run a throwaway server (tests/conftest.py) and skip where none can start. Every process a
test starts runs in its own session and is killed (with its children) at the end, whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from optuna.trial import TrialState

from conftest import smoke_spec
from tina_sweep.ledger.store import Ledger, attempt_error

TINA_SWEEP = Path(sys.executable).with_name("tina-sweep")
STEPS = 8  # training steps of each trial (a checkpoint after every step)
GATE_STEP = 2  # trials wait at this step (after its checkpoint) until the test opens the gate: tests/gate.py
GATE = str(Path(__file__).with_name("gate.py")) + ":Gate"
def smoke_study(name: str, description: str, axes: str) -> str:
    """A study file's text: smoke trials of STEPS steps with a checkpoint after each, over ``axes``."""
    return textwrap.dedent(f"""
        from tina_sweep import Study

        study = Study(
            name="{name}",
            description="{description}",
            base={{"training.max_steps": {STEPS}, "training.save_steps": 1,
                  "eval.benchmarks": [{{"name": "arithmetic", "limit": 4}}]}},
            axes={axes},
            evaluate_base_model=False,
        )
    """)


SIX = smoke_study("six", "six smoke trials for the scale-out tests",
                  '{"lora.rank": [2, 4, 8], "training.learning_rate": [1e-3, 2e-3]}')
WAIT = 240  # seconds any group of workers may take (they take well under a minute here)


@pytest.fixture
def study_file(tmp_path) -> Path:
    path = tmp_path / "six.py"
    path.write_text(SIX)
    return path


@pytest.fixture
def job_ids(study_file) -> list[str]:
    from tina_sweep.study.study import load_study, resolve

    trials = resolve(load_study(study_file), "smoke")
    assert len(trials) == 6
    return [t.trial_id for t in trials]


class Processes:
    """Processes started by a test, each in its own session; all of them (and their children) are killed at
    the end. Their trials wait at step GATE_STEP until ``open_gate()``: a test acts in the middle of a trial by
    waiting for that event, whatever the machine's speed."""

    def __init__(self, root: Path):
        self.root, self.started = root, []
        self.gate = root / "gate"
        self.gate.mkdir(exist_ok=True)

    def open_gate(self) -> None:
        (self.gate / "open").touch()

    def start(self, name: str, *args: str, env: dict | None = None) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "w")
        environment = {**os.environ, "COLUMNS": "200", "TINA_SWEEP_HEARTBEAT_INTERVAL": "1",
                       "TINA_SWEEP_GRACE_PERIOD": "6", "TINA_SWEEP_CALLBACKS": GATE,
                       "TINA_GATE_DIR": str(self.gate), "TINA_GATE_STEP": str(GATE_STEP), **(env or {})}
        process = subprocess.Popen([str(TINA_SWEEP), *map(str, args)], stdout=log, stderr=subprocess.STDOUT,
                                   env=environment, start_new_session=True)
        process.log_path, process.name = self.root / f"{name}.log", name
        log.close()
        self.started.append(process)
        return process

    def wait(self, processes, timeout: float = WAIT) -> float:
        """Wait for all of ``processes`` to exit; return the wall time; fail (with their logs) on a timeout."""
        started = time.monotonic()
        for process in processes:
            left = max(1.0, timeout - (time.monotonic() - started))
            try:
                process.wait(timeout=left)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{process.name} still running after {timeout}s:\n" + self.logs())
        return time.monotonic() - started

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} (exit {p.returncode})\n{p.log_path.read_text()[-3000:]}" for p in self.started)

    def kill_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            # children left in the process's session (a killed worker's fork server, say)
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def processes(tmp_path):
    group = Processes(tmp_path)
    yield group
    group.kill_all()


def start_workers(processes: Processes, count: int, study_file: Path, root: Path, storage: str | None,
                  name: str = "worker", *more: str):
    extra = (["--storage", storage] if storage else []) + list(more)
    return [processes.start(f"{name}{i}", "worker", study_file, "--scale", "smoke", "--sweeps-dir", root,
                            "--workers", "1", "--threads-per-worker", "1", *extra)  # one trial at a time each
            for i in range(count)]


def claims(processes: Processes) -> Counter:
    """How many times each job was claimed, over every process's log."""
    found = Counter()
    for process in processes.started:
        found.update(re.findall(r"claimed (\S+) \(attempt", process.log_path.read_text()))
    return found


def ledger_jobs(storage: str | None, root: Path) -> dict[str, list]:
    ledger = Ledger("six", storage, root / "six", create=False)
    try:
        return ledger.by_job()
    finally:
        ledger.close()


def check_exactly_once(storage: str | None, root: Path, job_ids: list[str], retried: set[str] = frozenset()):
    """Every job finished exactly once in the ledger and in its trial folder; only ``retried`` jobs have a
    failed attempt before their finished one (their worker died)."""
    jobs = ledger_jobs(storage, root)
    assert set(jobs) == set(job_ids)
    for job in job_ids:
        states = [t.state for t in jobs[job]]
        expected = [TrialState.FAIL, TrialState.COMPLETE] if job in retried else [TrialState.COMPLETE]
        assert states == expected, (job, states, [t.user_attrs.get("error") for t in jobs[job]])
        finished = jobs[job][-1]
        assert finished.user_attrs["result"]["trial_id"] == job
    folders = {p.name for p in (root / "six" / "trials").iterdir()}
    assert folders == set(job_ids)
    assert not (root / "six" / "attempts").exists()  # every attempt folder renamed into place or cleaned up
    for job in job_ids:
        result = json.loads((root / "six" / "trials" / job / "result.json").read_text())
        assert result["trial_id"] == job and result["train_steps"] == STEPS
        steps = [json.loads(line)["step"] for line in (root / "six" / "trials" / job / "train_log.jsonl").open()]
        assert steps == list(range(1, STEPS + 1)), (job, steps)  # no step lost, none done twice
    return jobs


def wait_for_checkpointed_trial(storage: str | None, root: Path, owner_pids: set[int], processes: Processes,
                                timeout: float = WAIT, study: str = "six") -> tuple[str, int, dict]:
    """A trial of one of ``owner_pids`` held at the gate (its checkpoint of step GATE_STEP saved) whose
    training step the ledger shows (for `status`): (job id, its worker's pid, its progress). Waits for these
    events, not for a time window: the held trial cannot finish before the test acts, however fast it is."""
    owners = {f"{socket.gethostname()}:{pid}": pid for pid in owner_pids}
    deadline = time.monotonic() + timeout
    ledger = None
    try:
        while time.monotonic() < deadline:
            time.sleep(0.1)
            for waiting in processes.gate.glob("*.waiting"):
                try:
                    folder = Path(json.loads(waiting.read_text())["attempt"])
                    progress = json.loads((folder / "progress.json").read_text())
                except (OSError, ValueError, KeyError):
                    continue
                if progress.get("phase") != "train" or progress.get("worker") not in owners:
                    continue
                if ledger is None:
                    ledger = Ledger(study, storage, root / study, create=False)
                job = folder.parent.name
                running = [t for t in ledger.by_job().get(job, []) if t.state == TrialState.RUNNING]
                if running and (running[0].user_attrs.get("progress") or {}).get("phase") == "train":
                    return job, owners[progress["worker"]], progress
    finally:
        if ledger is not None:
            ledger.close()
    pytest.fail("no trial reached the gate:\n" + processes.logs())


def gone(pid: int, timeout: float = 60) -> bool:  # a process's exit is the event; the cap only bounds a failure
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def run_status(*args) -> str:
    result = subprocess.run([str(TINA_SWEEP), "status", *map(str, args)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "COLUMNS": "250"})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def status_now(sweep_dir: Path, storage: str | None) -> str:
    """`tina-sweep status` in this process (fast enough to run between seeing a trial run and killing it)."""
    import io

    from rich.console import Console

    from tina_sweep.run.status import show_status

    console = Console(file=io.StringIO(), width=250, record=True)
    show_status("six", sweep_dir, storage, console)
    return console.export_text()


# ---------------------------------------------------------------------------- enqueue and claim races

RACER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from tina_sweep.ledger.store import Ledger

    storage, folder, start = (None if sys.argv[1] == "-" else sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    jobs = {f"job-{i}": {"kind": "trial", "axes": {"i": i}} for i in range(6)}
    ledger = Ledger("race", storage, folder)
    time.sleep(max(0.0, start - time.time()))  # every racer syncs at the same moment
    ledger.sync(jobs)
    claimed = []
    while (trial := ledger.claim(jobs)) is not None:
        claimed.append(trial.user_attrs["trial_id"])
        ledger.complete(trial, 1.0, {})
    print(json.dumps(claimed))
""")


@pytest.mark.parametrize("backend", ["postgresql", "journal"])
def test_concurrent_enqueue_and_claim_run_each_job_once(backend, request, tmp_path):
    storage = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    start = time.time() + 8  # time enough for every racer to import optuna and open the ledger
    racers = [subprocess.Popen([sys.executable, str(script), storage or "-", str(tmp_path), str(start)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
              for _ in range(5)]
    try:
        outputs = [racer.communicate(timeout=120) for racer in racers]
    finally:
        for racer in racers:
            if racer.poll() is None:
                os.killpg(racer.pid, signal.SIGKILL)
                racer.wait(timeout=10)
    assert all(r.returncode == 0 for r in racers), [err[-2000:] for _, err in outputs]
    claimed = [job for out, _ in outputs for job in json.loads(out)]
    assert sorted(claimed) == sorted(f"job-{i}" for i in range(6))  # each claimed once, none lost
    ledger = Ledger("race", storage, tmp_path, create=False)
    jobs = ledger.by_job()
    ledger.close()
    assert {job: [t.state for t in tries] for job, tries in jobs.items()} == \
        {f"job-{i}": [TrialState.COMPLETE] for i in range(6)}  # enqueued once: no stray waiting duplicates


# ---------------------------------------------------------------------------- workers on PostgreSQL

@pytest.mark.skipif(not os.environ.get("TINA_SWEEP_MEASURE_SPEEDUP"),
                    reason="timing only (2 minutes): set TINA_SWEEP_MEASURE_SPEEDUP=1 to time 3 workers against 1")
def test_three_workers_against_one_on_postgres(study_file, job_ids, postgres_server, processes, tmp_path,
                                               tiny_model_dir):
    walls = {}
    processes.open_gate()  # timing only: nothing waits at the gate
    for count in (3, 1):
        url, root = postgres_server.database(), tmp_path / f"sweeps{count}"
        started = time.monotonic()
        workers = start_workers(processes, count, study_file, root, url, name=f"of{count}-worker")
        processes.wait(workers)
        walls[count] = time.monotonic() - started
        assert all(w.returncode == 0 for w in workers), processes.logs()
        check_exactly_once(url, root, job_ids)
    print(f"\n6 smoke trials on PostgreSQL, {os.cpu_count()} cores: 3 workers {walls[3]:.1f}s, 1 worker "
          f"{walls[1]:.1f}s wall (speed-up {walls[1] / walls[3]:.2f}x)")
    assert claims(processes) == Counter({job: 2 for job in job_ids}), processes.logs()  # once per run


def test_three_workers_on_postgres_every_trial_once_one_killed(study_file, job_ids, postgres_url, processes, tmp_path,
                                                             tiny_model_dir):
    root = tmp_path / "sweeps"
    # --max-retries 0: a worker's death must not use up the trial's retries (it used to lose the trial)
    workers = start_workers(processes, 3, study_file, root, postgres_url, "worker", "--max-retries", "0")
    victim_job, victim_pid, progress = wait_for_checkpointed_trial(postgres_url, root, {w.pid for w in workers},
                                                                   processes)
    os.kill(victim_pid, signal.SIGKILL)
    assert not (root / "six" / "trials" / victim_job).exists()  # killed in the middle
    # status: the dead worker's trial shows as running (until its grace period ends) with its worker
    # (host:pid) and step; the password is masked
    out = status_now(root / "six", postgres_url)
    assert re.search(rf"{re.escape(victim_job)} +│ running +│ 1 +│ 0 +│ {socket.gethostname()}:{victim_pid} +│ "
                     rf"[0-9:]+ +│ train \d/{STEPS}", out), out
    assert "s3cret" not in out and "tina:***@" in out
    assert gone(progress["pid"]), "the killed worker's trial process outlived it"
    processes.open_gate()
    survivors = [w for w in workers if w.pid != victim_pid]
    processes.wait(survivors)
    assert all(w.returncode == 0 for w in survivors), processes.logs()
    jobs = check_exactly_once(postgres_url, root, job_ids, retried={victim_job})
    dead = jobs[victim_job][0]
    assert "no heartbeat" in attempt_error(dead) and dead.user_attrs["worker"].endswith(f":{victim_pid}")
    result = json.loads((root / "six" / "trials" / victim_job / "result.json").read_text())
    assert result["resumed_from_checkpoint"].startswith("checkpoint-"), result["resumed_from_checkpoint"]
    counted = claims(processes)
    assert counted == Counter({job: 2 if job == victim_job else 1 for job in job_ids}), processes.logs()
    out = run_status(study_file, "--storage", postgres_url, "--sweeps-dir", root)
    assert out.count("complete") == 6 and "6 finished" in out  # the retried job shows as complete
    assert "s3cret" not in out and "tina:***@" in out  # the password is masked


# ---------------------------------------------------------------------------- the journal file, one machine

def test_killed_worker_on_journal_trial_retried_by_lock(study_file, job_ids, processes, tmp_path, tiny_model_dir):
    """`run --workers 2` and a separate `worker` share the default journal; the worker is killed in the middle
    of a trial: its attempt lock is released, `run` sees it, re-enqueues the trial and finishes it."""
    root = tmp_path / "sweeps"
    run = processes.start("run", "run", study_file, "--scale", "smoke", "--sweeps-dir", root, "--workers", "2",
                          "--threads-per-worker", "1", "--max-retries", "0")
    [worker] = start_workers(processes, 1, study_file, root, None, "worker", "--max-retries", "0")
    victim_job, victim_pid, progress = wait_for_checkpointed_trial(None, root, {worker.pid}, processes)
    out = status_now(root / "six", None)
    os.kill(victim_pid, signal.SIGKILL)
    assert not (root / "six" / "trials" / victim_job).exists()  # killed in the middle
    assert re.search(rf"{re.escape(victim_job)} +│ running +│ 1 +│ 0 +│ {socket.gethostname()}:{victim_pid} +│ "
                     rf"[0-9:]+ +│ train \d/{STEPS}", out), out
    assert gone(progress["pid"]), "the killed worker's trial process outlived it"
    processes.open_gate()
    processes.wait([run])
    assert run.returncode == 0, processes.logs()
    jobs = check_exactly_once(None, root, job_ids, retried={victim_job})
    assert "its attempt lock was released" in jobs[victim_job][0].user_attrs["error"]
    result = json.loads((root / "six" / "trials" / victim_job / "result.json").read_text())
    assert result["resumed_from_checkpoint"] == f"checkpoint-{GATE_STEP}"
    # the cost counts both attempts' training (the killed one trained GATE_STEP steps)
    assert [a["step"] for a in result["train_attempts"]] == [GATE_STEP, STEPS]
    assert result["cost"]["train_seconds"] == pytest.approx(sum(a["train_seconds"] for a in result["train_attempts"]))
    assert claims(processes) == Counter({job: 2 if job == victim_job else 1 for job in job_ids}), processes.logs()
    assert not list((root / "six" / "ledger.journal.attempts").glob("*.lock"))  # no lock left behind
    assert "results.md" in run.log_path.read_text()


# ---------------------------------------------------------------------------- resume inside a trial

class _Stopped(Exception):
    pass


class _StopAfter:
    """A trainer callback that kills training (an exception) right after checkpoint ``step`` is saved."""

    def __init__(self, step: int):
        from transformers import TrainerCallback

        self.step = step
        outer = self

        class Callback(TrainerCallback):
            def on_save(self, args, state, control, **kwargs):
                if state.global_step >= outer.step:
                    raise _Stopped(f"stopped after checkpoint-{state.global_step}")

        self.callback = Callback()


def test_resumed_trial_reaches_the_same_steps(tmp_path, tiny_model_dir):
    from tina_sweep.trial.cost import load_prices
    from tina_sweep.run.job import run_job
    from tina_sweep.trial.trial import Trial
    from tina_sweep.trial.train.trainer import train_trial

    steps = 4
    spec = smoke_spec(**{"training.max_steps": steps, "training.save_steps": 1, "training.lr_scheduler_type": "linear",
                         "eval.benchmarks": [{"name": "arithmetic", "limit": 4}]})
    job, prices = Trial("resume", "trial", spec, {}), load_prices(None)
    whole = run_job(job, tmp_path / "whole", prices).to_json()
    with pytest.raises(_Stopped):
        train_trial(spec, tmp_path / "cut", extra_callbacks=[_StopAfter(2).callback])
    saved = tmp_path / "cut" / "checkpoints" / "checkpoint-2"
    for name in ("optimizer.pt", "scheduler.pt", "trainer_state.json", "adapter_model.safetensors"):
        assert (saved / name).is_file(), name
    assert not (tmp_path / "cut" / "checkpoints" / "checkpoint-3").exists()
    resumed = run_job(job, tmp_path / "cut", prices).to_json()
    assert resumed["resumed_from_checkpoint"] == "checkpoint-2" and whole["resumed_from_checkpoint"] is None
    assert resumed["train_steps"] == whole["train_steps"] == steps
    on_disk = json.loads((tmp_path / "cut" / "result.json").read_text())
    assert on_disk["resumed_from_checkpoint"] == "checkpoint-2" and on_disk["train_steps"] == steps

    def log(folder):
        return [json.loads(line) for line in (tmp_path / folder / "train_log.jsonl").open()]

    assert [e["step"] for e in log("cut")] == [e["step"] for e in log("whole")] == list(range(1, steps + 1))
    # the scheduler's state came back with the checkpoint: the same learning rate at every step
    assert [e["learning_rate"] for e in log("cut")] == pytest.approx([e["learning_rate"] for e in log("whole")])
    state = json.loads((tmp_path / "cut" / "checkpoints" / f"checkpoint-{steps}" / "trainer_state.json").read_text())
    assert state["global_step"] == steps


# ---------------------------------------------------------------------------- paused, hung and preempted workers

ONE = smoke_study("one", "one smoke trial", '{"lora.rank": [2]}')


@pytest.fixture
def one_file(tmp_path) -> Path:
    path = tmp_path / "one.py"
    path.write_text(ONE)
    return path


def one_attempts(storage: str | None, root: Path) -> list:
    ledger = Ledger("one", storage, root / "one", create=False)
    try:
        [tries] = ledger.by_job().values()
        return tries
    finally:
        ledger.close()


def test_paused_worker_on_postgres_does_not_record_twice(one_file, postgres_url, processes, tmp_path, tiny_model_dir):
    """Worker A is paused (SIGSTOP) past the grace period; B takes its trial over and finishes it; A resumes.
    Before: both finished, two COMPLETE attempts, both writing one trial folder. Now A sees its attempt was
    declared dead, stops its child and records nothing; B resumed from A's checkpoint in a folder of its own."""
    root = tmp_path / "sweeps"
    [a] = start_workers(processes, 1, one_file, root, postgres_url, "a")
    job, _, progress = wait_for_checkpointed_trial(postgres_url, root, {a.pid}, processes, study="one")
    os.kill(a.pid, signal.SIGSTOP)  # the worker only: its child keeps running (held at the gate)
    [b] = start_workers(processes, 1, one_file, root, postgres_url, "b")
    processes.wait([b])  # B declares A's attempt dead after the grace period, retries it and finishes it
    assert b.returncode == 0, processes.logs()
    processes.open_gate()  # A's child may now run on in its own folder
    os.kill(a.pid, signal.SIGCONT)
    processes.wait([a])
    assert a.returncode == 0, processes.logs()
    tries = one_attempts(postgres_url, root)
    assert [t.state for t in tries] == [TrialState.FAIL, TrialState.COMPLETE], processes.logs()
    assert tries[1].user_attrs["worker"].endswith(f":{b.pid}")
    assert "declared this attempt dead" in a.log_path.read_text()
    assert gone(progress["pid"]), "A's child outlived A's notice"
    folder = root / "one" / "trials" / job
    result = json.loads((folder / "result.json").read_text())
    assert result["resumed_from_checkpoint"] == f"checkpoint-{GATE_STEP}"
    assert [a["attempt"] for a in result["train_attempts"]] == [str(tries[0].number), str(tries[1].number)]
    steps = [json.loads(line)["step"] for line in (folder / "train_log.jsonl").open()]
    assert steps == list(range(1, STEPS + 1))


def test_hung_trial_is_killed_at_the_trial_timeout(one_file, processes, tmp_path, tiny_model_dir):
    """A child that hangs (here: held at the gate, never opened) used to hold its slot forever, its worker
    heartbeating for it. The trial timeout kills it; a hang is the trial's failure and counts as one."""
    root = tmp_path / "sweeps"
    run = processes.start("run", "run", one_file, "--scale", "smoke", "--sweeps-dir", root, "--max-retries", "0",
                          "--trial-timeout", "20")
    processes.wait([run])
    assert run.returncode == 1, processes.logs()
    [attempt] = one_attempts(None, root)
    assert attempt.state == TrialState.FAIL
    assert attempt.user_attrs["error"] == "timed out: still running after 20 s (--trial-timeout)"
    assert "timed out" in run.log_path.read_text()
    waiting = list(processes.gate.glob("*.waiting"))
    assert waiting and all(gone(json.loads(w.read_text())["pid"]) for w in waiting)


def test_sigterm_to_the_whole_job_hands_trials_back(one_file, processes, tmp_path, tiny_model_dir):
    """`scancel` or a preemption sends SIGTERM to every process of the job: the children used to die of it first
    and count as failed. Now they leave the signal to the worker, which stops them and records the attempt as
    interrupted (not a failure); the next worker resumes it."""
    root = tmp_path / "sweeps"
    [worker] = start_workers(processes, 1, one_file, root, None, "worker", "--max-retries", "0")
    job, _, progress = wait_for_checkpointed_trial(None, root, {worker.pid}, processes, study="one")
    os.killpg(worker.pid, signal.SIGTERM)
    processes.wait([worker])
    assert worker.returncode == 130, processes.logs()
    assert gone(progress["pid"])
    [attempt] = one_attempts(None, root)
    assert attempt.state == TrialState.FAIL and attempt.user_attrs.get("interrupted") is True, attempt.user_attrs
    processes.open_gate()
    [again] = start_workers(processes, 1, one_file, root, None, "again", "--max-retries", "0")
    processes.wait([again])
    assert again.returncode == 0, processes.logs()
    assert [t.state for t in one_attempts(None, root)] == [TrialState.FAIL, TrialState.COMPLETE]
    result = json.loads((root / "one" / "trials" / job / "result.json").read_text())
    assert result["resumed_from_checkpoint"] == f"checkpoint-{GATE_STEP}"
