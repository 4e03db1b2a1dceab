"""Issue 11's ledger guarantees, each reproduced as it failed before: a worker's death does not use up the trial's
retries (and `status` applies the bound `run` used); a worker on another machine sharing a journal is declared
dead when its heartbeat stops; a declared-dead attempt never records; the ledger lock times out with a message
naming its holder; a torn journal tail (a full disk, a kill mid-write) is repaired instead of breaking the ledger
for good; a torn checkpoint is passed over for the one before it; a retried trial's cost sums every attempt."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from optuna.trial import TrialState

from conftest import smoke_spec
from tina_sweep.ledger.store import MAX_WORKER_LOSSES, Ledger, LedgerLockTimeout, job_state, worker_name

JOBS = {"j": {"kind": "trial", "axes": {}}}


def wait_until(condition, what: str, limit: float = 120.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after a generous ``limit`` (a hang, not a slow
    machine: the heartbeats these tests wait for come every second)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {limit:g} s waiting for {what}")
        time.sleep(0.05)


def states(ledger, job="j"):
    return [t.state for t in ledger.by_job().get(job, [])]


def die(ledger: Ledger) -> None:
    """The worker holding ``ledger``'s attempts dies: its attempt locks are released, nothing is recorded."""
    ledger.close()


# ---------------------------------------------------------------------------- 1. worker deaths vs the retry budget

def test_worker_deaths_do_not_use_up_retries(tmp_path):
    """With --max-retries 0, one kill -9 of the worker used to lose the trial for good; three kills with the
    default budget did too. A worker's death is not the trial's failure."""
    for _ in range(3):
        worker = Ledger("study", None, tmp_path, max_retries=0)
        worker.sync(JOBS)
        assert worker.claim() is not None
        die(worker)
    survivor = Ledger("study", None, tmp_path, max_retries=0)
    survivor.sync(JOBS)
    assert states(survivor) == [TrialState.FAIL] * 3 + [TrialState.WAITING]
    assert job_state(survivor.by_job()["j"], 0) == "waiting"
    trial = survivor.claim()
    survivor.complete(trial, 0.5, {})
    assert states(survivor)[-1] == TrialState.COMPLETE


def test_the_trials_own_failure_still_counts(tmp_path):
    ledger = Ledger("study", None, tmp_path, max_retries=0)
    ledger.sync(JOBS)
    ledger.fail(ledger.claim(), "CUDA out of memory")
    ledger.sync(JOBS)
    assert states(ledger) == [TrialState.FAIL]
    assert job_state(ledger.by_job()["j"], 0) == "failed"


def test_worker_losses_are_bounded_too(tmp_path):
    """A trial that keeps taking its worker down is given up after MAX_WORKER_LOSSES, not retried forever."""
    ledger = Ledger("study", None, tmp_path, max_retries=0)
    ledger.sync(JOBS)
    for _ in range(MAX_WORKER_LOSSES):
        ledger.fail(ledger.claim(), "the worker failed: RuntimeError: boom", lost=True)
        ledger.sync(JOBS)
    assert states(ledger) == [TrialState.FAIL] * MAX_WORKER_LOSSES
    assert job_state(ledger.by_job()["j"], 0) == "failed" and ledger.claim() is None


def test_status_applies_the_budget_run_recorded(tmp_path):
    Ledger("study", None, tmp_path, max_retries=5).sync(JOBS)
    assert Ledger("study", None, tmp_path, max_retries=None, create=False).max_retries == 5
    ledger = Ledger("study", None, tmp_path, max_retries=0)
    ledger.sync(JOBS)
    ledger.fail(ledger.claim(), "boom")
    reader = Ledger("study", None, tmp_path, max_retries=None, create=False)
    assert reader.max_retries == 0 and reader.counts(["j"]).failed_for_good == 1


# ---------------------------------------------------------------------------- 5. other machines on one journal

def test_worker_on_another_machine_recovered_by_its_stopped_heartbeat(tmp_path, monkeypatch):
    """A flock cannot be tested from another host; its lock file's heartbeat (mtime) can. Before, a crashed
    node's trial stayed RUNNING forever."""
    monkeypatch.setenv("TINA_SWEEP_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("TINA_SWEEP_GRACE_PERIOD", "2")
    monkeypatch.setenv("TINA_SWEEP_HOST", "node-a")
    node_a = Ledger("study", None, tmp_path)
    node_a.sync(JOBS)
    trial = node_a.claim()
    assert trial.user_attrs["worker"] == f"node-a:{os.getpid()}"
    lock = trial.user_attrs["lock"]
    before = os.stat(lock).st_mtime_ns
    wait_until(lambda: os.stat(lock).st_mtime_ns != before, "node A's heartbeat to touch the attempt lock file")
    node_a._heart_stop.set()  # node A hangs up (its flock stays held: a flock on another machine proves nothing)
    node_a._heart.join()
    monkeypatch.setenv("TINA_SWEEP_HOST", "node-b")
    node_b = Ledger("study", None, tmp_path)
    assert node_b.recover_dead_workers() == 0  # first look: the heartbeat is recorded, not judged
    # recovered once the grace period has passed without a heartbeat (each look before that recovers nothing)
    recovered: list[int] = []
    wait_until(lambda: recovered.append(node_b.recover_dead_workers()) or sum(recovered) > 0,
               "node B to recover node A's trial")
    assert sum(recovered) == 1
    failed = node_b.by_job()["j"][0]
    assert failed.state == TrialState.FAIL and "on another machine went 2 s without a heartbeat" in failed.user_attrs["error"]
    node_b.sync(JOBS)
    assert states(node_b) == [TrialState.FAIL, TrialState.WAITING]


def test_a_live_remote_worker_is_not_recovered(tmp_path, monkeypatch):
    monkeypatch.setenv("TINA_SWEEP_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("TINA_SWEEP_GRACE_PERIOD", "2")
    monkeypatch.setenv("TINA_SWEEP_HOST", "node-a")
    node_a = Ledger("study", None, tmp_path)
    node_a.sync(JOBS)
    lock = node_a.claim().user_attrs["lock"]
    monkeypatch.setenv("TINA_SWEEP_HOST", "node-b")
    node_b = Ledger("study", None, tmp_path)
    for _ in range(3):  # node A's heartbeats keep coming: each look sees a new mtime
        before = os.stat(lock).st_mtime_ns
        assert node_b.recover_dead_workers() == 0
        wait_until(lambda: os.stat(lock).st_mtime_ns != before, "node A's next heartbeat")
    assert states(node_b) == [TrialState.RUNNING]
    node_a.close()


# ---------------------------------------------------------------------------- 2. a declared-dead attempt

def test_declared_dead_attempt_never_records(tmp_path, monkeypatch):
    """A worker paused past the grace period comes back after its attempt was failed and retried: its late
    result is refused (before, it became a second COMPLETE), and its heartbeat tells it to stop its child."""
    monkeypatch.setenv("TINA_SWEEP_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("TINA_SWEEP_GRACE_PERIOD", "2")
    paused = Ledger("study", None, tmp_path)
    paused.sync(JOBS)
    trial = paused.claim()
    other = Ledger("study", None, tmp_path)
    other.storage.set_trial_user_attr(trial._trial_id, "error", "declared dead")  # what recovery does
    other.storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    other.sync(JOBS)
    retry = other.claim()
    # the heartbeat notices within an interval
    wait_until(lambda: trial._trial_id in paused.declared_dead(), "the paused worker to learn it was declared dead")
    assert paused.complete(trial, 0.9, {"result": {"late": True}}) is False
    assert other.complete(retry, 0.5, {}) is True
    assert states(other) == [TrialState.FAIL, TrialState.COMPLETE]
    assert [t.value for t in other.by_job()["j"] if t.state == TrialState.COMPLETE] == [0.5]


# ---------------------------------------------------------------------------- 6. the ledger lock times out

def test_ledger_lock_times_out_naming_its_holder(tmp_path, monkeypatch):
    """A worker stopped with Ctrl-Z inside the ledger lock used to stall every other worker forever."""
    ledger = Ledger("study", None, tmp_path)
    claims = tmp_path / "ledger.journal.claims"
    holder = os.open(claims, os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # a stopped worker holds it
    os.ftruncate(holder, 0)
    os.pwrite(holder, b"node-z:4242\n", 0)
    monkeypatch.setenv("TINA_SWEEP_LOCK_TIMEOUT", "1")
    with pytest.raises(LedgerLockTimeout) as raised:
        ledger.sync(JOBS)
    message = str(raised.value)
    assert "still held after 1 s by node-z:4242" in message and "kill -CONT 4242" in message
    assert "\n" not in message
    os.close(holder)
    ledger.sync(JOBS)  # free again: works
    assert states(ledger) == [TrialState.WAITING]


@pytest.mark.parametrize("name,value", [("TINA_SWEEP_HEARTBEAT_INTERVAL", "abc"), ("TINA_SWEEP_LOCK_TIMEOUT", "1.5"),
                                        ("TINA_SWEEP_GRACE_PERIOD", "-3")])
def test_malformed_environment_is_one_line(tmp_path, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as raised:
        Ledger("study", None, tmp_path)
    assert str(raised.value) == f"{name}: must be a positive whole number of seconds, got {value!r}"
    assert not (tmp_path / "ledger.journal").exists()


# ---------------------------------------------------------------------------- 4. torn journal writes

def test_torn_journal_tail_is_repaired(tmp_path):
    """A kill in the middle of an append (or a full disk) leaves half a record without a newline; the next append
    used to join it, and every later read failed with a JSONDecodeError for good."""
    ledger = Ledger("study", None, tmp_path)
    ledger.sync(JOBS)
    journal = tmp_path / "ledger.journal"
    with open(journal, "ab") as file:
        file.write(b'{"op_code": 5, "worker_id": "x", "trial_id": 0, "user_att')  # torn
    with pytest.warns(UserWarning, match="cut off a torn last record"):
        later = Ledger("study", None, tmp_path)
        later.sync({**JOBS, "k": {"kind": "trial", "axes": {}}})
    assert journal.read_bytes().endswith(b"\n")
    fresh = Ledger("study", None, tmp_path)  # a reader from scratch parses every line
    assert sorted(fresh.by_job()) == ["j", "k"]
    for line in journal.read_bytes().splitlines():
        json.loads(line)


FULL_DISK = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from tina_sweep.ledger.store import Ledger

    folder = Path(sys.argv[1])
    ledger = Ledger("study", None, folder)
    size = (folder / "ledger.journal").stat().st_size
    print(f"size: {size}")
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 40, resource.RLIM_INFINITY))  # room for half a record
    try:
        ledger.sync({f"job-{i}": {"kind": "trial", "axes": {"payload": "x" * 200}} for i in range(3)})
    except OSError as error:
        print(f"refused: {error.errno}")
""")


def test_a_write_the_disk_refuses_leaves_nothing_half_written(tmp_path):
    Ledger("study", None, tmp_path).sync(JOBS)
    journal = tmp_path / "ledger.journal"
    script = tmp_path / "full.py"
    script.write_text(FULL_DISK)
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert "refused: 27" in done.stdout, done.stdout + done.stderr  # EFBIG: the file may not grow
    size = int(done.stdout.split("size: ")[1].split()[0])
    assert journal.stat().st_size == size and journal.read_bytes().endswith(b"\n")  # cut back: no torn tail
    assert not list(tmp_path.rglob("*.tmp"))
    ledger = Ledger("study", None, tmp_path)  # space again: the ledger works
    ledger.sync({"job-0": {"kind": "trial", "axes": {}}})
    assert sorted(ledger.by_job()) == ["j", "job-0"]


def test_atomic_json_leaves_no_tmp_file_on_failure(tmp_path):
    from tina_sweep.trial.attempts import write_json_atomic

    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "x.json", {1j: "a complex key JSON cannot hold"})
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- 3. a torn checkpoint; 8. cost

def test_resume_passes_over_a_torn_checkpoint(tmp_path, tiny_model_dir):
    """A kill between open and write of trainer_state.json made every retry fail with a JSONDecodeError while a
    good checkpoint sat beside it."""
    from tina_sweep.trial.attempts import seed_attempt
    from tina_sweep.trial.cost import load_prices
    from tina_sweep.run.job import run_job
    from tina_sweep.trial.trial import Trial

    spec = smoke_spec(**{"training.max_steps": 3, "training.save_steps": 1, "training.lr_scheduler_type": "linear",
                         "eval.benchmarks": [{"name": "arithmetic", "limit": 2}]})
    first = tmp_path / "attempts" / "job" / "0"
    first.mkdir(parents=True)
    run_job(Trial("job", "trial", spec, {}), first, load_prices(None))
    (first / "result.json").unlink()  # as if the attempt died after its last checkpoint
    (first / "checkpoints" / "checkpoint-3" / "trainer_state.json").write_text('{"global_step": 3, "log_hi')  # torn
    second = tmp_path / "attempts" / "job" / "1"
    assert seed_attempt(second, [first]) == 2
    result = run_job(Trial("job", "trial", spec, {}), second, load_prices(None)).to_json()
    assert result["resumed_from_checkpoint"] == "checkpoint-2" and result["train_steps"] == 3
    steps = [json.loads(line)["step"] for line in (second / "train_log.jsonl").open()]
    assert steps == [1, 2, 3]
    # 8: the cost sums both attempts' training time (the second only trained one step)
    attempts = result["train_attempts"]
    assert [a["attempt"] for a in attempts] == ["0", "1"] and [a["step"] for a in attempts] == [3, 3]
    assert result["cost"]["train_seconds"] == pytest.approx(sum(a["train_seconds"] for a in attempts))
    assert attempts[0]["train_seconds"] > 0 and attempts[1]["train_seconds"] > 0
    assert not list(tmp_path.rglob("*.tmp"))


# ---------------------------------------------------------------------------- a result on disk; a worker's crash

class _Quiet:
    """A worker display that records what happened (``crash_on_claim``: the worker itself fails)."""

    def __init__(self, crash_on_claim: bool = False):
        self.events, self.crash = [], crash_on_claim

    def claimed(self, job, attempt, slot):
        if self.crash:
            raise RuntimeError("a bug in the worker")
        self.events.append(("claimed", job.trial_id))

    def progress(self, job, progress):
        pass

    def finished(self, job, result, reused):
        self.events.append(("finished", job.trial_id, reused))

    def failed(self, job, reason):
        self.events.append(("failed", job.trial_id, reason))

    def evaluating(self, jobs):
        pass

    def abandoned(self, job, reason):
        self.events.append(("abandoned", job.trial_id, reason))


def _smoke_job():
    from tina_sweep.trial.trial import Trial

    return Trial("t", "trial", smoke_spec(**{"eval.benchmarks": [{"name": "arithmetic", "limit": 2}]}), {})


def test_a_result_on_disk_survives_any_number_of_worker_deaths(tmp_path):
    """Three kills of the worker of a trial whose result.json was already written used to lose the trial. Its
    result is recorded by the next worker, without running anything again."""
    from tina_sweep.trial.attempts import attempt_dir
    from tina_sweep.run.worker import Worker, plan_slots

    job = _smoke_job()
    attrs = {job.trial_id: job.to_json()}
    first = None
    for _ in range(3):  # each worker claims the trial and dies
        dying = Ledger("study", None, tmp_path, max_retries=0)
        dying.sync(attrs)
        trial = dying.claim()
        if first is None:  # the first attempt's child got as far as writing its result
            first = attempt_dir(tmp_path, job.trial_id, trial.number)
            first.mkdir(parents=True)
            (first / "result.json").write_text(json.dumps({"trial_id": "t", "kind": "trial", "average": 0.75,
                                                       "pass_at_1": {"arithmetic": 0.75}}))
        die(dying)
    ledger = Ledger("study", None, tmp_path, max_retries=0)
    display = _Quiet()
    summary = Worker(ledger, {job.trial_id: job}, tmp_path, plan_slots(1), display=display).run()
    assert summary.finished == 1 and display.events[-1] == ("finished", "t", True)
    tries = Ledger("study", None, tmp_path, create=False).by_job()["t"]
    assert [t.state for t in tries] == [TrialState.FAIL] * 3 + [TrialState.COMPLETE]
    assert tries[-1].user_attrs["reused_result"] is True and tries[-1].value == 0.75
    assert json.loads((tmp_path / "trials" / "t" / "result.json").read_text())["average"] == 0.75
    assert not (tmp_path / "attempts").exists()


def test_a_worker_crash_is_a_bounded_loss_not_an_interruption(tmp_path):
    """A worker that fails by a bug of its own used to record its attempts as 'interrupted', retried without
    bound; now they are losses: not the trial's failure, but counted against MAX_WORKER_LOSSES."""
    from tina_sweep.run.worker import Worker, plan_slots

    job = _smoke_job()
    ledger = Ledger("study", None, tmp_path, max_retries=0)
    with pytest.raises(RuntimeError, match="a bug in the worker"):
        Worker(ledger, {job.trial_id: job}, tmp_path, plan_slots(1), display=_Quiet(crash_on_claim=True)).run()
    [attempt] = Ledger("study", None, tmp_path, create=False).by_job()["t"]
    assert attempt.state == TrialState.FAIL and attempt.user_attrs["lost"] is True
    assert "interrupted" not in attempt.user_attrs
    assert attempt.user_attrs["error"] == "the worker failed: RuntimeError: a bug in the worker"


def test_slurm_checkpoint_stops_the_children_before_handing_back(tmp_path):
    """At a preemption signal, submitit calls the task's checkpoint(): it used to mark the worker's attempts
    failed while their children still ran (and wrote). Now the worker in this process kills its children first,
    then records their attempts as interrupted."""
    import multiprocessing

    from tina_sweep.run.launch import release_attempts
    from tina_sweep.run.worker import _ACTIVE, Worker, _Running, plan_slots

    job = _smoke_job()
    ledger = Ledger("study", None, tmp_path)
    ledger.sync({job.trial_id: job.to_json()})
    trial = ledger.claim()
    worker = Worker(ledger, {job.trial_id: job}, tmp_path, plan_slots(1), display=_Quiet())
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(600,))
    child.start()
    worker.running[0] = _Running(trial, job, worker.slots[0], child, tmp_path / "attempt")
    _ACTIVE.append(worker)
    try:
        released = release_attempts("study", None, tmp_path, "preempted on Slurm; requeued")
    finally:
        _ACTIVE.remove(worker)
    assert released == 1 and child.exitcode == -9 and not worker.running
    [attempt] = Ledger("study", None, tmp_path, create=False).by_job()["t"]
    assert attempt.state == TrialState.FAIL and attempt.user_attrs["interrupted"] is True
    assert attempt.user_attrs["error"] == "preempted on Slurm; requeued"
