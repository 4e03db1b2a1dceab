"""The ledger: enqueue once, claim / complete / fail, bounded retries, recovery of dead local workers (by their
attempt locks, not their PIDs). Workers in other processes and on PostgreSQL: tests/test_scaleout.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from optuna.trial import TrialState

from tina_sweep.ledger.store import Ledger, worker_name

JOBS = {"base-1": {"kind": "baseline", "axes": {}}, "rank=2": {"kind": "trial", "axes": {"lora.rank": 2}},
        "rank=4": {"kind": "trial", "axes": {"lora.rank": 4}}}


@pytest.fixture
def ledger(tmp_path):
    return Ledger("study", None, tmp_path, max_retries=2)


def states(ledger, job):
    return [t.state for t in ledger.by_job().get(job, [])]


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_journal_file_in_sweep_dir(ledger, tmp_path):
    ledger.sync(JOBS)
    assert (tmp_path / "ledger.journal").is_file()
    # a second Ledger on the same folder sees the same jobs
    other = Ledger("study", None, tmp_path)
    assert set(other.by_job()) == set(JOBS)
    # another study name in the same journal is separate
    assert Ledger("other", None, tmp_path).by_job() == {}


def test_sync_enqueues_each_job_once(ledger):
    ledger.sync(JOBS)
    ledger.sync(JOBS)
    jobs = ledger.by_job()
    assert set(jobs) == set(JOBS)
    for job in JOBS:
        assert states(ledger, job) == [TrialState.WAITING]
        attrs = jobs[job][0].user_attrs
        assert attrs["trial_id"] == job and attrs["attempt"] == 1 and attrs["kind"] == JOBS[job]["kind"]
        assert attrs["axes"] == JOBS[job]["axes"]
    counts = ledger.counts(list(JOBS))
    assert (counts.finished, counts.waiting, counts.running, counts.failed_for_good) == (0, 3, 0, 0)


def test_claim_complete_flow(ledger):
    ledger.sync(JOBS)
    claimed = []
    while (trial := ledger.claim()) is not None:
        claimed.append(trial)
        assert trial.user_attrs["trial_id"] in JOBS
    assert sorted(t.user_attrs["trial_id"] for t in claimed) == sorted(JOBS)  # each job exactly once
    assert ledger.claim() is None
    first = claimed[0]
    job = first.user_attrs["trial_id"]
    assert states(ledger, job) == [TrialState.RUNNING]
    assert ledger.by_job()[job][0].user_attrs["worker"] == worker_name() == f"{socket.gethostname()}:{os.getpid()}"
    counts = ledger.counts(list(JOBS))
    assert (counts.running, counts.waiting) == (3, 0)
    ledger.complete(first, 0.625, {"result": {"average": 0.625, "trial_id": job}})
    [attempt] = ledger.by_job()[job]
    assert attempt.state == TrialState.COMPLETE and attempt.value == 0.625
    assert attempt.user_attrs["result"] == {"average": 0.625, "trial_id": job}
    assert ledger.counts([job]).finished == 1
    # a finished job is never enqueued again
    ledger.sync(JOBS)
    assert states(ledger, job) == [TrialState.COMPLETE]
    assert ledger.counts(list(JOBS)).finished == 1


def test_failed_job_retried_up_to_max_retries(ledger):
    job = {"rank=2": JOBS["rank=2"]}
    ledger.sync(job)
    for attempt in range(1, 4):  # max_retries 2: three attempts in all
        trial = ledger.claim()
        assert trial is not None and trial.user_attrs["attempt"] == attempt
        ledger.fail(trial, f"boom {attempt}\nTraceback line")
        assert states(ledger, "rank=2")[-1] == TrialState.FAIL
        ledger.sync(job)
    assert states(ledger, "rank=2") == [TrialState.FAIL] * 3  # not re-enqueued after the third failure
    assert ledger.claim() is None
    counts = ledger.counts(["rank=2"])
    assert (counts.failed_for_good, counts.waiting, counts.finished) == (1, 0, 0)
    errors = [t.user_attrs["error"] for t in ledger.by_job()["rank=2"]]
    assert errors == [f"boom {i}\nTraceback line" for i in (1, 2, 3)]


def test_zero_retries(tmp_path):
    ledger = Ledger("study", None, tmp_path, max_retries=0)
    ledger.sync({"j": {}})
    ledger.fail(ledger.claim(), "x")
    ledger.sync({"j": {}})
    assert states(ledger, "j") == [TrialState.FAIL]


def test_interrupted_failures_do_not_count(ledger):
    job = {"rank=4": JOBS["rank=4"]}
    ledger.sync(job)
    for _ in range(5):
        ledger.fail(ledger.claim(), "interrupted by the user", interrupted=True)
        ledger.sync(job)
    assert states(ledger, "rank=4") == [TrialState.FAIL] * 5 + [TrialState.WAITING]
    assert ledger.by_job()["rank=4"][-1].user_attrs["attempt"] == 6


def test_error_is_truncated(ledger):
    ledger.sync({"j": {}})
    ledger.fail(ledger.claim(), "x" * 5000 + "END")
    error = ledger.by_job()["j"][0].user_attrs["error"]
    assert len(error) == 2000 and error.endswith("END")


def test_dead_local_worker_recovered_by_sync(tmp_path):
    ledger = Ledger("study", None, tmp_path)
    ledger.sync(JOBS)
    trial = ledger.claim()
    job = trial.user_attrs["trial_id"]
    lock = trial.user_attrs["lock"]
    assert lock.endswith(f"ledger.journal.attempts/study-{trial.number}.lock")
    ledger.close()  # the worker dies: the kernel releases its attempt lock (its attempt stays RUNNING)
    # a fresh process (another Ledger on the same journal) syncs: the attempt is failed and re-enqueued
    later = Ledger("study", None, tmp_path)
    later.sync(JOBS)
    attempts = later.by_job()[job]
    assert [a.state for a in attempts] == [TrialState.FAIL, TrialState.WAITING]
    assert attempts[0].user_attrs["error"] == f"worker {worker_name()} died (its attempt lock was released)"
    assert "interrupted" not in attempts[0].user_attrs and attempts[0].user_attrs["dead_worker"] == worker_name()
    assert attempts[1].user_attrs["attempt"] == 2 and "worker" not in attempts[1].user_attrs
    assert not os.path.exists(lock)
    # the other jobs were untouched
    for other in set(JOBS) - {job}:
        assert states(later, other) == [TrialState.WAITING]


def test_live_or_remote_workers_not_recovered(tmp_path):
    ledger = Ledger("study", None, tmp_path)
    ledger.sync(JOBS)
    mine = ledger.claim()  # worker = this live process
    remote = ledger.claim()
    remote.set_user_attr("worker", f"some-other-host-{socket.gethostname()}:{dead_pid()}")
    assert ledger.recover_dead_workers() == 0
    ledger.sync(JOBS)
    assert states(ledger, mine.user_attrs["trial_id"]) == [TrialState.RUNNING]
    assert states(ledger, remote.user_attrs["trial_id"]) == [TrialState.RUNNING]


def test_recover_counts(tmp_path):
    ledger = Ledger("study", None, tmp_path)
    ledger.sync(JOBS)
    ledger.claim(), ledger.claim()
    ledger.close()
    other = Ledger("study", None, tmp_path)
    assert other.recover_dead_workers() == 2
    assert other.recover_dead_workers() == 0


def test_the_lock_decides_not_the_pid(tmp_path):
    """A reused PID (alive, but not the worker) cannot keep a dead worker's attempt RUNNING, and a PID this
    process cannot see (another PID namespace) cannot get a live worker's attempt failed: the lock decides."""
    ledger = Ledger("study", None, tmp_path)
    ledger.sync(JOBS)
    reused, hidden = ledger.claim(), ledger.claim()
    host = socket.gethostname()
    reused.set_user_attr("worker", f"{host}:{os.getppid()}")  # a live process...
    os.close(ledger._held.pop(reused._trial_id))  # ...but its worker is gone: the lock is free
    hidden.set_user_attr("worker", f"{host}:{dead_pid()}")  # no such PID here, but the lock is held
    other = Ledger("study", None, tmp_path)
    assert other.recover_dead_workers() == 1
    assert states(other, reused.user_attrs["trial_id"]) == [TrialState.FAIL]
    assert states(other, hidden.user_attrs["trial_id"]) == [TrialState.RUNNING]


def test_worker_dying_inside_its_claim_is_recovered(tmp_path):
    ledger = Ledger("study", None, tmp_path)
    ledger.sync({"j": {}})
    [waiting] = ledger.attempts()
    ledger.storage.set_trial_state_values(waiting._trial_id, TrialState.RUNNING)  # claimed, then died
    ledger.sync({"j": {}})
    attempts = ledger.by_job()["j"]
    assert [a.state for a in attempts] == [TrialState.FAIL, TrialState.WAITING]
    assert attempts[0].user_attrs["error"] == "worker died while claiming the trial"


def test_duplicate_waiting_attempt_is_retired_not_run(ledger):
    ledger.sync({"j": {}})
    running = ledger.claim()
    ledger.study.enqueue_trial({}, user_attrs={"trial_id": "j", "attempt": 9})  # e.g. an old version's enqueue
    assert ledger.claim() is None
    attempts = ledger.by_job()["j"]
    assert [a.state for a in attempts] == [TrialState.RUNNING, TrialState.FAIL]
    assert attempts[1].user_attrs["duplicate"] is True
    ledger.complete(running, 1.0, {})
    ledger.sync({"j": {}})
    assert [a.state for a in ledger.by_job()["j"]] == [TrialState.COMPLETE, TrialState.FAIL]  # no retry


def test_claim_only_this_definitions_jobs(ledger):
    ledger.sync(JOBS)
    assert ledger.claim(["rank=4"]).user_attrs["trial_id"] == "rank=4"
    assert ledger.claim(["rank=4"]) is None
