"""``autostop sweep run --backend sagemaker --detach``: queue the sweep, launch its first jobs, exit.

Real botocore over HTTP throughout: DynamoDB (the sweep-state table), SSM (the stop stack's scope), STS and
CloudWatch are moto; SageMaker is the local fake (tests/support/sagemaker_fake.py: moto's training jobs are
Completed the moment they exist, and it does not refuse a second create of a name with ResourceInUse as
SageMaker does -- SageMaker API reference, CreateTrainingJob, Errors). The requests are the launcher's own,
built by the SageMaker SDK offline. After the command exits, the sweep launcher Lambda's handler carries the
sweep on, as EventBridge would invoke it.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from lambdas.launch_queued_jobs import items
from tests.lambdas.launch_queued_jobs.sweeps import end_event
from tests.support.sagemaker_fake import FakeSageMaker, Fault
from tests.support.sweep_table import create_sweep_table
from tests.training.sweep.test_sagemaker_faults import JOBS, created, three_jobs, write_spec
from training import cli
from training.sweep.sagemaker import detach
from training.sweep.sagemaker.settings import LaunchError

TABLE = "autostop-sweep-state"
SWEEP = "vision-lr"
RULES_PER_JOB = 4  # the example spec's rules: one per-job alarm each


@pytest.fixture
def fake_sagemaker(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """SageMaker is the fake; the sweep-state table exists on moto; the command runs in an empty folder."""
    create_sweep_table(boto3.client("dynamodb"), TABLE)
    monkeypatch.chdir(tmp_path)
    with FakeSageMaker() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", fake.url)
        yield fake


@pytest.fixture
def launcher_lambda(fake_sagemaker: FakeSageMaker, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sweep launcher Lambda's handler, configured as the stack configures it for this deployment."""
    from lambdas.launch_queued_jobs import app

    monkeypatch.setenv(app.TABLE_ENV, TABLE)
    monkeypatch.setenv(app.JOB_PREFIX_ENV, "vision-")
    monkeypatch.setenv(app.ALARM_PREFIX_ENV, "autostop-")
    app.reset_clients()
    yield app
    app.reset_clients()


def run_detached(spec_path: Path, *extra: str) -> int:
    return cli.main(["sweep", "run", str(spec_path), "--backend", "sagemaker", "--detach", *extra])


def table_items() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return sorted(found, key=lambda item: item[items.SORT_KEY]["S"])


def stored_job(name: str) -> items.JobItem:
    answer = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key=items.job_key(SWEEP, name), ConsistentRead=True
    )
    return items.JobItem.from_item(answer["Item"])


def stored_sweep() -> items.SweepState:
    answer = boto3.client("dynamodb").get_item(
        TableName=TABLE, Key=items.sweep_key(SWEEP), ConsistentRead=True
    )
    return items.SweepState.from_item(answer["Item"])


def one_line_error(capsys: pytest.CaptureFixture[str], prefix: str) -> str:
    error = capsys.readouterr().err
    assert error.startswith(prefix), error
    assert error.count("\n") == 1, error
    return error


def test_detach_queues_every_job_launches_the_first_and_says_how_to_follow(
    fake_sagemaker: FakeSageMaker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the 3-job sweep, 2 at a time, within the deployed scope
    spec_path = write_spec(tmp_path)
    # WHEN detached
    code = run_detached(spec_path, "--table", TABLE)
    # THEN it exits 0 having launched the first two jobs, and says where the sweep is and how to follow it
    out = capsys.readouterr().out
    assert code == 0
    assert created(fake_sagemaker) == JOBS[:2]
    assert f"sweep {SWEEP} detached: 3 jobs queued in table {TABLE}, at most 2 at a time" in out
    assert f"autostop sweep status {SWEEP} --region us-east-1" in out
    assert f"aws dynamodb get-item --region us-east-1 --table-name {TABLE}" in out
    # AND each job's stored request is exactly what SageMaker received (own signing key, deployed opt-in tag)
    keys = set()
    for name in JOBS[:2]:
        request = fake_sagemaker.job(name).request
        assert request == stored_job(name).request
        keys.add(request["HyperParameters"]["autostop_signing_key"])
        assert {"Key": "autostop", "Value": "enabled"} in request["Tags"]
    assert len(keys) == 2
    # AND the sweep holds two slots, job 3 waits, and the launched jobs have their per-job alarms
    state = stored_sweep()
    assert (state.state, state.running, state.queued, state.parallel) == (items.DETACHED, 2, 1, 2)
    assert [stored_job(name).state for name in JOBS] == [items.LAUNCHED, items.LAUNCHED, items.QUEUED]
    assert stored_job(JOBS[2]).request["TrainingJobName"] == JOBS[2]
    alarms = boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert len(alarms) == 2 * RULES_PER_JOB
    # AND nothing was written on this machine for a launcher to come back to
    assert not (tmp_path / "runs").exists()


def test_the_sweep_launcher_lambda_carries_a_detached_sweep_to_its_end(
    launcher_lambda: ModuleType, fake_sagemaker: FakeSageMaker, tmp_path: Path
) -> None:
    # GIVEN a detached sweep (the command has exited)
    assert run_detached(write_spec(tmp_path), "--table", TABLE) == 0
    # WHEN its jobs end one after another, each end delivered to the Lambda as EventBridge delivers it
    for name, status in zip(JOBS, ("Completed", "Stopped", "Failed"), strict=True):
        fake_sagemaker.job(name).status = status
        launcher_lambda.handler(end_event(name, status), None)
    # THEN every job ran exactly once, from its stored request, and the sweep is finished
    assert created(fake_sagemaker) == JOBS
    assert fake_sagemaker.job(JOBS[2]).request == stored_job(JOBS[2]).request
    state = stored_sweep()
    assert (state.state, state.ended, state.running) == (items.FINISHED, 3, 0)
    assert [stored_job(name).end_status for name in JOBS] == ["Completed", "Stopped", "Failed"]


def test_a_sweep_already_detached_under_that_name_is_refused_and_nothing_is_overwritten(
    fake_sagemaker: FakeSageMaker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a sweep detached under its name
    spec_path = write_spec(tmp_path)
    assert run_detached(spec_path, "--table", TABLE) == 0
    before = table_items()
    calls = len(fake_sagemaker.calls)
    capsys.readouterr()
    # WHEN detached again under the same name
    code = run_detached(spec_path, "--table", TABLE)
    # THEN one error line naming the sweep and its state; the table and SageMaker are untouched
    error = one_line_error(
        capsys, f"autostop sweep run: error: sweep {SWEEP} is already detached in table {TABLE}"
    )
    assert "2 running, 1 queued" in error
    assert "nothing was changed" in error
    assert code == 2
    assert table_items() == before
    assert len(fake_sagemaker.calls) == calls


def test_a_request_too_large_for_one_item_is_refused_before_anything_is_written() -> None:
    # GIVEN a sweep whose second job's request outgrows a DynamoDB item (400 KB)
    spec, _ = three_jobs()

    def request_for(job: Any) -> dict[str, Any]:
        padding = "x" * (items.MAX_ITEM_BYTES if job.index == 2 else 10)
        return {"TrainingJobName": job.name, "HyperParameters": {"notes": padding}}

    # WHEN the items are prepared  THEN refused, naming the job and its size, before any write
    with pytest.raises(LaunchError, match=r"the request of vision-lr-002 \([0-9]+ bytes\) does not fit"):
        detach.queued_sweep(spec, request_for=request_for, alarm_prefix="autostop-")


def test_detach_needs_the_table_and_the_sagemaker_backend(
    fake_sagemaker: FakeSageMaker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_path = write_spec(tmp_path)
    assert run_detached(spec_path) == 2
    one_line_error(capsys, "autostop sweep run: error: --detach needs --table: the sweep-state table")
    assert cli.main(["sweep", "run", str(spec_path), "--detach", "--table", TABLE]) == 2
    one_line_error(capsys, "autostop sweep run: error: --detach runs a sweep on SageMaker only")
    assert fake_sagemaker.calls == []
    assert table_items() == []


def test_a_launch_that_must_wait_is_reported_and_resume_with_the_table_sends_it(
    fake_sagemaker: FakeSageMaker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an instance quota reached at the first launch (ResourceLimitExceeded: not retried by botocore)
    fake_sagemaker.inject_fault("CreateTrainingJob", Fault.RESOURCE_LIMIT)
    # WHEN detached
    code = run_detached(write_spec(tmp_path), "--table", TABLE)
    # THEN exit 1, saying the launch waits and how to send it; job 1 keeps its claimed slot
    out = capsys.readouterr().out
    assert code == 1
    assert "a launch must wait: ResourceLimitExceeded" in out
    assert f"autostop sweep resume {SWEEP} --table {TABLE} --region us-east-1" in out
    assert created(fake_sagemaker) == []
    assert stored_job(JOBS[0]).state == items.LAUNCHING
    # WHEN resumed with the table, once the quota allows
    code = cli.main(["sweep", "resume", SWEEP, "--table", TABLE, "--region", "us-east-1"])
    # THEN job 1 is sent again and job 2 fills the other slot: two running, one queued
    out = capsys.readouterr().out
    assert code == 0
    assert created(fake_sagemaker) == JOBS[:2]
    assert f"sweep {SWEEP}: detached; launched now: {JOBS[0]}, {JOBS[1]}; 2 running, 1 queued" in out


def test_resume_with_a_table_that_holds_no_such_sweep_is_one_line(
    fake_sagemaker: FakeSageMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["sweep", "resume", "nowhere", "--table", TABLE, "--region", "us-east-1"]) == 1
    one_line_error(capsys, f"autostop sweep resume: error: no detached sweep nowhere in table {TABLE}")


def test_what_the_command_prints_names_the_table_key_as_json() -> None:
    lines = detach.follow_lines(
        detach.Detached(
            name=SWEEP, table=TABLE, total=3, parallel=2, launched=(JOBS[0],), refused=(), waiting=None
        ),
        region="eu-west-1",
    )
    (queue_line,) = [line for line in lines if "get-item" in line]
    key = queue_line.split("--key ", 1)[1].strip("'")
    assert json.loads(key) == items.sweep_key(SWEEP)
