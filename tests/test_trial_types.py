"""One Trial type (study expansion -> ledger -> worker -> report) and one TrialResult schema for result.json."""

from __future__ import annotations

import json

import pytest
from test_report_tables import write_sweep
from typer.testing import CliRunner

from tina_sweep.cli import app
from tina_sweep.report.frame import ReportError, load_frame
from tina_sweep.study.study import Study, resolve
from tina_sweep.trial.result import TrialResult
from tina_sweep.trial.trial import Trial


def test_trial_json_round_trip():
    [trial, _] = resolve(Study(name="rt", axes={"lora.rank": [2, 4]}), "smoke")
    assert Trial.from_json(json.loads(json.dumps(trial.to_json()))) == trial
    assert trial.to_json()["trial_id"] == trial.trial_id and trial.seed == 42
    baseline = Trial("base-x", "baseline", trial.spec.baseline(), {})
    assert Trial.from_json(baseline.to_json()) == baseline and baseline.seed == 0
    # the ledger's attempt attributes carry more keys: they are ignored
    assert Trial.from_json({**trial.to_json(), "attempt": 3, "worker": "host:1"}) == trial


def test_trial_result_errors_name_the_field():
    good = {"trial_id": "t", "kind": "trial", "pass_at_1": {"a": 0.5}, "average": 0.5}
    assert TrialResult.parse(good).to_json()["average"] == 0.5
    with pytest.raises(ValueError, match=r"^r.json: not a trial result: pass_at_1: required field is missing$"):
        TrialResult.parse({"trial_id": "t", "kind": "trial", "average": 0.5}, "r.json")
    with pytest.raises(ValueError, match=r"cost.train_secs: unknown field"):
        TrialResult.parse({**good, "cost": {"train_secs": 3.0}})
    with pytest.raises(ValueError, match=r"kind: "):
        TrialResult.parse({**good, "kind": "trail"})


def test_optional_blocks_are_written_only_when_present():
    result = TrialResult.parse({"trial_id": "t", "kind": "trial", "pass_at_1": {"a": 0.5}, "average": 0.5})
    assert not {"checkpoints", "eval_engine", "spec"} & set(result.to_json())
    assert TrialResult.parse(result.to_json()) == result


def test_report_refuses_a_result_of_another_schema_in_one_line(tmp_path):
    sweep = write_sweep(tmp_path, checkpoints=False)
    path = sweep / "trials" / "rank=2-s1-aaa" / "result.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "pass_at_one": {}}))
    with pytest.raises(ReportError, match="result.json: not a trial result: pass_at_one: unknown field"):
        load_frame(sweep)
    done = CliRunner().invoke(app, ["report", str(sweep)])
    assert done.exit_code not in (0, None)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "pass_at_one: unknown field" in lines[0]
