"""Detached sweeps as the ``autostop`` command leaves them, and the events that end their jobs."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import boto3

from lambdas.launch_queued_jobs import controller, items, queue

TABLE = "autostop-sweep-state"
JOB_PREFIX = "vision-"
ALARM_PREFIX = "autostop-"
SWEEP = "vision-lr"
EVENTS = Path(__file__).resolve().parents[2] / "events"
_clock = itertools.count()


def now() -> str:
    """Distinct, ordered timestamps (no wall clock: the tests are deterministic)."""
    return f"2026-11-20T10:{next(_clock) % 60:02d}:00Z"


def request(name: str, *, sweep: str = SWEEP) -> dict[str, Any]:
    """A CreateTrainingJob request of the launcher's shape: its own signing key, the opt-in and sweep tags."""
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/autostop-training:cpu",
            "TrainingInputMode": "File",
        },
        "RoleArn": "arn:aws:iam::123456789012:role/autostop-training-execution",
        "OutputDataConfig": {"S3OutputPath": "s3://autostop-models-123456789012/sweeps/"},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "HyperParameters": {"learning_rate": "0.001", "autostop_signing_key": f"key-of-{name}"},
        "Tags": [{"Key": "autostop", "Value": "enabled"}, {"Key": "autostop:sweep", "Value": sweep}],
    }


def alarm(name: str, rule: str = "LossNotDecreasing") -> dict[str, Any]:
    """A per-job alarm request of the launcher's shape (training/sweep/sagemaker/alarms.py)."""
    return {
        "AlarmName": f"{ALARM_PREFIX}{name}/{rule}",
        "Namespace": "/aws/sagemaker/TrainingJobs",
        "MetricName": f"rule:{rule}",
        "Dimensions": [{"Name": "Host", "Value": f"{name}/algo-1"}],
        "Statistic": "Maximum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
        "ActionsEnabled": False,
        "Tags": [{"Key": "autostop", "Value": "enabled"}],
    }


def sweep_queue() -> queue.SweepQueue:
    return queue.SweepQueue(boto3.client("dynamodb"), TABLE, now=now)


def sweep_controller() -> controller.Controller:
    return controller.Controller(
        queue=sweep_queue(),
        sagemaker=boto3.client("sagemaker"),
        cloudwatch=boto3.client("cloudwatch"),
        scope=controller.Scope(job_prefix=JOB_PREFIX, alarm_prefix=ALARM_PREFIX),
    )


def queue_sweep(
    total: int, parallel: int, *, sweep: str = SWEEP, with_alarms: bool = False, opened: bool = True
) -> list[str]:
    """Write a sweep as ``--detach`` does (nothing launched yet); its job names."""
    store = sweep_queue()
    store.create_sweep(name=sweep, parallel=parallel, total=total)
    names = []
    for index in range(1, total + 1):
        name = items.job_name(sweep, index)
        store.add_job(
            items.queued_job_item(
                sweep=sweep,
                index=index,
                request=request(name, sweep=sweep),
                alarms=[alarm(name)] if with_alarms else [],
            )
        )
        names.append(name)
    if opened:
        store.open_sweep(sweep)
    return names


def end_event(name: str, status: str = "Completed") -> dict[str, Any]:
    """SageMaker's documented state-change event (tests/events) for job ``name`` reaching ``status``."""
    event: dict[str, Any] = copy.deepcopy(
        json.loads((EVENTS / "sagemaker_state_change_completed.json").read_text(encoding="utf-8"))
    )
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}"
    event["resources"] = [arn]
    event["detail"].update(
        {
            "TrainingJobName": name,
            "TrainingJobArn": arn,
            "TrainingJobStatus": status,
            "SecondaryStatus": status,
        }
    )
    return event


def job_state(name: str, *, sweep: str = SWEEP) -> str:
    job = sweep_queue().job(sweep, name)
    assert job is not None
    return job.state


def sweep_state(sweep: str = SWEEP) -> items.SweepState:
    state = sweep_queue().sweep(sweep)
    assert state is not None
    return state
