"""The janitor over HTTP: per-job alarms on moto's CloudWatch, jobs on the SageMaker fake (moto has no
DescribeTrainingJob with statuses to script). SageMaker answers DescribeTrainingJob for a missing job with
ValidationException "Requested resource not found." (aws/aws-sdk#165), and DescribeAlarms filters by
AlarmNamePrefix (CloudWatch API Reference, DescribeAlarms)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

import boto3
import pytest

from tests.support.sagemaker_fake import FakeSageMaker, Fault

OPT_IN = {"autostop": "enabled"}


@pytest.fixture
def sagemaker(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSageMaker]:
    # The opt-in tag is required as the janitor's IAM policy requires it (aws:ResourceTag condition).
    with FakeSageMaker(require_tag=("autostop", "enabled")) as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", fake.url)
        yield fake


@pytest.fixture
def janitor(sagemaker: FakeSageMaker, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("AUTOSTOP_ALARM_PREFIX", "autostop-")
    monkeypatch.setenv("AUTOSTOP_JOB_PREFIX", "sweep-")
    app = importlib.import_module("lambdas.alarm_janitor.app")
    app.reset_clients()
    yield app
    app.reset_clients()


def put_alarm(name: str) -> None:
    boto3.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="/aws/sagemaker/TrainingJobs",
        MetricName="rule:LossNotDecreasing",
        Dimensions=[{"Name": "Host", "Value": "sweep-1/algo-1"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def alarm_names() -> list[str]:
    answer = boto3.client("cloudwatch").describe_alarms()
    return sorted(alarm["AlarmName"] for alarm in answer["MetricAlarms"])


def test_alarms_of_ended_and_vanished_jobs_go_everything_else_stays_and_a_rerun_is_a_no_op(
    janitor: ModuleType, sagemaker: FakeSageMaker
) -> None:
    # GIVEN per-job alarms of jobs in every state, and alarms that are not per-job alarms of this scope
    sagemaker.add_job("sweep-1", status="Completed", tags=dict(OPT_IN))
    sagemaker.add_job("sweep-10", status="InProgress", tags=dict(OPT_IN))
    sagemaker.add_job("sweep-2", status="Stopped", tags=dict(OPT_IN))
    sagemaker.add_job("sweep-3", status="Stopping", tags=dict(OPT_IN))
    sagemaker.add_job("sweep-4", status="Failed", tags={})  # not opted in: Describe is denied
    for name in (
        "autostop-sweep-1/LossNotDecreasing",
        "autostop-sweep-1/VanishingGradient",
        "autostop-sweep-10/LossNotDecreasing",
        "autostop-sweep-2/LossNotDecreasing",
        "autostop-sweep-3/LossNotDecreasing",
        "autostop-sweep-4/LossNotDecreasing",
        "autostop-sweep-9/LossNotDecreasing",  # its job no longer exists
        "autostop-other-1/LossNotDecreasing",  # outside the job prefix
        "my-own-alarm",
    ):
        put_alarm(name)
    # WHEN the janitor runs
    outcome = janitor.handler({"source": "aws.events"}, None)
    # THEN exactly the alarms of ended (Completed, Stopped) and vanished jobs are deleted
    assert outcome["alarms_deleted"] == [
        "autostop-sweep-1/LossNotDecreasing",
        "autostop-sweep-1/VanishingGradient",
        "autostop-sweep-2/LossNotDecreasing",
        "autostop-sweep-9/LossNotDecreasing",
    ]
    assert outcome["jobs_kept_unknown"] == ["sweep-4"]
    assert alarm_names() == [
        "autostop-other-1/LossNotDecreasing",
        "autostop-sweep-10/LossNotDecreasing",
        "autostop-sweep-3/LossNotDecreasing",
        "autostop-sweep-4/LossNotDecreasing",
        "my-own-alarm",
    ]
    # AND a second run deletes nothing (idempotent)
    again = janitor.handler({"source": "aws.events"}, None)
    assert again["alarms_deleted"] == []
    assert len(alarm_names()) == 5


def test_a_job_whose_lookup_keeps_failing_keeps_its_alarms(
    janitor: ModuleType, sagemaker: FakeSageMaker
) -> None:
    # GIVEN an ended job, but DescribeTrainingJob throttled on every attempt
    sagemaker.add_job("sweep-1", status="Completed", tags=dict(OPT_IN))
    put_alarm("autostop-sweep-1/LossNotDecreasing")
    sagemaker.inject_fault("DescribeTrainingJob", Fault.THROTTLING, times=janitor.MAX_ATTEMPTS)
    # WHEN the janitor runs, THEN it deletes only on evidence: the alarm stays for the next run
    outcome = janitor.handler({}, None)
    assert (outcome["alarms_deleted"], outcome["jobs_kept_unknown"]) == ([], ["sweep-1"])
    assert alarm_names() == ["autostop-sweep-1/LossNotDecreasing"]
    # AND the next run, the fault gone, deletes it
    assert janitor.handler({}, None)["alarms_deleted"] == ["autostop-sweep-1/LossNotDecreasing"]


def test_an_empty_alarm_prefix_is_refused(janitor: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOSTOP_ALARM_PREFIX", "")
    with pytest.raises(ValueError, match="AUTOSTOP_ALARM_PREFIX must not be empty"):
        janitor.handler({}, None)
