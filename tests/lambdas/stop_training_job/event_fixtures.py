"""The documented event shapes (``tests/events/*.json``) and small helpers to derive variants from them.

Variants are built by changing one documented fixture at a path, so every test event stays traceable to a
documented shape instead of being written from memory.
"""

from __future__ import annotations

import copy
import datetime
import json
from pathlib import Path
from typing import Any

from lambdas.stop_training_job import cross_job
from training.debugger import provenance

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
JOB_NAME = "sweep-lr-0001"
JOB_ARN = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB_NAME}"
# The documented in-container sample is signed with this key at this time (docs/events.md section 2).
SAMPLE_SIGNING_KEY = "sample-signing-key-of-sweep-lr-0001-not-secret"
SAMPLE_TIME = datetime.datetime(2026, 11, 20, 10, 15, 31, tzinfo=datetime.UTC)

SAGEMAKER_ISSUES_FOUND = "sagemaker_state_change_issues_found"
SAGEMAKER_PROFILER_ISSUES_FOUND = "sagemaker_state_change_profiler_issues_found"
SAGEMAKER_IN_PROGRESS = "sagemaker_state_change_in_progress"
SAGEMAKER_COMPLETED = "sagemaker_state_change_completed"
SAGEMAKER_STOPPED = "sagemaker_state_change_stopped"
TRAINING_ISSUES_FOUND = "autostop_rule_issues_found"
ALARM_HOST = "cloudwatch_alarm_rule_alarm"
ALARM_TRAINING_JOB_NAME = "cloudwatch_alarm_rule_alarm_training_job_name_dimension"
ALARM_OK = "cloudwatch_alarm_rule_ok"
RUNG_REPORT = "autostop_cross_job_rung_report"
# The comparison the documented rung report is judged under: rungs at 100, 300 and 900 (its Rung is 300);
# the reduction factor is set, not left to the default, so that the worst of three reports there is stopped.
RUNG_REPORT_SETTINGS = cross_job.CrossJobSettings(
    policy=cross_job.Policy.ASHA,
    goal=cross_job.MINIMIZE,
    max_steps=1000,
    grace_period=100,
    reduction_factor=3,
    min_reports=3,
)

# Fixtures whose job is (or, for alarms, whose rule says it is) worth stopping when in scope.
STOPPING_FIXTURES = (
    SAGEMAKER_ISSUES_FOUND,
    SAGEMAKER_PROFILER_ISSUES_FOUND,
    TRAINING_ISSUES_FOUND,
    ALARM_HOST,
    ALARM_TRAINING_JOB_NAME,
)
STOP_LAMBDA_FIXTURES = tuple(
    sorted(
        path.stem
        for path in EVENTS_DIR.glob("*.json")
        if path.stem.startswith(("sagemaker_state_change_", "autostop_rule_", "cloudwatch_alarm_rule_"))
    )
)


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    return event


def changed(event: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A deep copy of ``event`` with the node at ``path`` set to ``value``."""
    result = copy.deepcopy(event)
    parent: Any = result
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return result


def for_job(event: dict[str, Any], job_name: str) -> dict[str, Any]:
    """A SageMaker or in-container event about another job (name, ARN and resources all agree)."""
    arn = JOB_ARN.replace(JOB_NAME, job_name)
    result = changed(event, ("resources",), [arn])
    result = changed(result, ("detail", "TrainingJobName"), job_name)
    return changed(result, ("detail", "TrainingJobArn"), arn)


def without(event: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    """A deep copy of ``event`` with the node at ``path`` removed."""
    result = copy.deepcopy(event)
    parent: Any = result
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return result


def signed(
    event: dict[str, Any], *, key: str = SAMPLE_SIGNING_KEY, at: datetime.datetime = SAMPLE_TIME
) -> dict[str, Any]:
    """An in-container event re-signed as the container signs it (``training/debugger/provenance.py``):
    with ``key``, at ``at``, over the event's own job name, rule, status and step."""
    result = copy.deepcopy(event)
    detail = result["detail"]
    status = detail["DebugRuleEvaluationStatuses"][0]
    signed_at = at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result["time"] = status["LastModifiedTime"] = signed_at
    message = provenance.signed_message(
        job_name=detail["TrainingJobName"],
        rule_name=status["RuleConfigurationName"],
        status=status["RuleEvaluationStatus"],
        step=detail.get("Step"),
        signed_at=signed_at,
    )
    detail["Provenance"] = {
        "Algorithm": "HMAC-SHA256",
        "SignedAt": signed_at,
        "Signature": provenance.sign(key, message),
    }
    return result


def rung_report(
    *,
    job_name: str = JOB_NAME,
    rung: int = 300,
    step: int | None = None,
    objective: str = "0.0412",
    metric: str = "validation:loss",
    key: str = SAMPLE_SIGNING_KEY,
    at: datetime.datetime = SAMPLE_TIME,
) -> dict[str, Any]:
    """The documented rung report about ``job_name`` with these values, signed as the container signs it
    (``training/debugger/provenance.py``): with ``key``, at ``at``."""
    event = for_job(load(RUNG_REPORT), job_name)
    detail = event["detail"]
    detail.update(Step=rung if step is None else step, Rung=rung, ObjectiveMetric=metric, Objective=objective)
    return signed_rung_report(event, key=key, at=at)


def signed_rung_report(
    event: dict[str, Any], *, key: str = SAMPLE_SIGNING_KEY, at: datetime.datetime = SAMPLE_TIME
) -> dict[str, Any]:
    """A rung report re-signed over its own job name, rung, step, metric and objective."""
    result = copy.deepcopy(event)
    detail = result["detail"]
    signed_at = at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result["time"] = signed_at
    message = provenance.rung_report_message(
        job_name=detail["TrainingJobName"],
        rung=detail["Rung"],
        step=detail["Step"],
        metric=detail["ObjectiveMetric"],
        objective=detail["Objective"],
        signed_at=signed_at,
    )
    detail["Provenance"] = {
        "Algorithm": "HMAC-SHA256",
        "SignedAt": signed_at,
        "Signature": provenance.sign(key, message),
    }
    return result
