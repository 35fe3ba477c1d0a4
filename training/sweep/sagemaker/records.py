"""Job records from SageMaker: ``DescribeTrainingJob``, ``ListTags`` and the job's CloudWatch metrics.

Why from three sources: the description has the status, the billable time and the final metric values; the
tags carry the stop Lambda's audit trail (who stopped the job, when, on which signal); the curves and the
seconds per step are only in CloudWatch (the ``train:step`` metric's timestamps).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from lambdas.stop_training_job import decision
from training.sweep import report as report_module
from training.sweep import spec as spec_module
from training.sweep.sagemaker.alarms import HOST_SUFFIX, METRIC_NAMESPACE
from training.sweep.sagemaker.settings import TERMINAL_STATUSES


def _seconds_between(start: object, end: object) -> float | None:
    if isinstance(start, datetime.datetime) and isinstance(end, datetime.datetime):
        return max(0.0, (end - start).total_seconds())
    return None


def training_job_tags(sagemaker_client: Any, arn: str) -> dict[str, str]:
    """A training job's tags as a dict, every ``ListTags`` page read (the stop Lambda's tags among them)."""
    items: list[dict[str, str]] = []
    token = None
    while True:
        response = sagemaker_client.list_tags(ResourceArn=arn, **({"NextToken": token} if token else {}))
        items += response.get("Tags", [])
        token = response.get("NextToken")
        if not token:
            return decision.tags_from_list(items)


def metric_series(
    cloudwatch: Any,
    job_name: str,
    metric_names: Sequence[str],
    start: datetime.datetime,
    end: datetime.datetime,
) -> dict[str, list[tuple[datetime.datetime, float]]]:
    """The job's metrics from CloudWatch (``Host=<job>/algo-1``), each as (timestamp, value), oldest first."""
    queries = [
        {
            "Id": f"m{index}",
            "MetricStat": {
                "Metric": {
                    "Namespace": METRIC_NAMESPACE,
                    "MetricName": name,
                    "Dimensions": [{"Name": "Host", "Value": job_name + HOST_SUFFIX}],
                },
                "Period": 1,
                "Stat": "Maximum",
            },
            "ReturnData": True,
        }
        for index, name in enumerate(metric_names)
    ]
    series: dict[str, list[tuple[datetime.datetime, float]]] = {name: [] for name in metric_names}
    token = None
    while True:
        arguments: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        if token:
            arguments["NextToken"] = token
        response = cloudwatch.get_metric_data(**arguments)
        for result in response.get("MetricDataResults", []):
            name = metric_names[int(result["Id"][1:])]
            series[name] += list(zip(result.get("Timestamps", []), result.get("Values", []), strict=False))
        token = response.get("NextToken")
        if not token:
            break
    return {name: sorted(points) for name, points in series.items()}


def job_record(
    clients: Any,
    job: spec_module.JobConfig,
    description: Mapping[str, Any],
    *,
    unfinished_state: str = report_module.INTERRUPTED,
) -> report_module.JobRecord:
    """A report record from ``DescribeTrainingJob``, ``ListTags`` and the job's CloudWatch metrics.

    ``unfinished_state``: the state of a job that has not ended (``Interrupted`` when the launcher stopped
    it; ``Running`` when the launcher detaches and leaves it to ``autostop sweep resume``).
    """
    status = str(description.get("TrainingJobStatus", ""))
    tags = training_job_tags(clients.sagemaker, str(description.get("TrainingJobArn", "")))
    final = {
        item["MetricName"]: float(item["Value"]) for item in description.get("FinalMetricDataList", []) or []
    }
    start = description.get("TrainingStartTime") or description.get("CreationTime")
    end = description.get("TrainingEndTime") or description.get("LastModifiedTime")
    billable = description.get("BillableTimeInSeconds")
    billable_seconds = float(billable) if billable is not None else None
    reported = description.get("TrainingTimeInSeconds")
    training_seconds = float(reported) if reported is not None else _seconds_between(start, end)
    # compute: the training time (wall) where SageMaker gave the times; billable (spot-discounted, what is
    # paid) apart, in billable_seconds, which the report prefers.
    compute = training_seconds if training_seconds is not None else (billable_seconds or 0.0)

    train_curve: list[tuple[int, float]] = []
    validation_curve: list[tuple[int, dict[str, float]]] = []
    seconds_per_step = None
    if isinstance(start, datetime.datetime) and isinstance(end, datetime.datetime):
        names = ["train:step", "train:loss", "validation:loss", "validation:ssim", "validation:l2"]
        try:
            series = metric_series(
                clients.cloudwatch,
                job.name,
                names,
                start - datetime.timedelta(minutes=1),
                end + datetime.timedelta(minutes=1),
            )
        except Exception:  # curves are a nicety; the numbers below do not depend on them
            series = {name: [] for name in names}
        steps_by_time = dict(series["train:step"])
        train_curve = [
            (int(steps_by_time[moment]), value)
            for moment, value in series["train:loss"]
            if moment in steps_by_time
        ]
        validation_by_time: dict[datetime.datetime, dict[str, float]] = {}
        for name in names[2:]:
            for moment, value in series[name]:
                validation_by_time.setdefault(moment, {})[name] = value
        ordered_steps = sorted(steps_by_time.items())
        for moment, values in sorted(validation_by_time.items()):
            earlier = [step for when, step in ordered_steps if when <= moment]
            if earlier:
                validation_curve.append((int(earlier[-1]), values))
        if len(ordered_steps) >= 2 and ordered_steps[-1][1] > ordered_steps[0][1]:
            elapsed = (ordered_steps[-1][0] - ordered_steps[0][0]).total_seconds()
            seconds_per_step = elapsed / (ordered_steps[-1][1] - ordered_steps[0][1]) or None

    if "train:step" in final:
        steps = int(final["train:step"])
    elif train_curve:
        steps = train_curve[-1][0]
    else:  # no step metric at all (e.g. an emulator): a completed job ran its budget, others are unknown
        steps = job.steps if status == "Completed" else 0
    rule = tags.get(decision.TAG_STOPPED_BY_RULE)
    if status == "Completed":
        state = report_module.COMPLETED
    elif status == "Failed":
        state = report_module.FAILED
    elif status == "Stopped" and rule is not None:
        state = report_module.STOPPED
    elif status == "InProgress":
        state = unfinished_state
    else:
        state = report_module.INTERRUPTED
    rule_statuses = {
        item["RuleConfigurationName"]: item.get("RuleEvaluationStatus", "")
        for item in description.get("DebugRuleEvaluationStatuses", []) or []
    }
    for name, value in final.items():
        if name.startswith("rule:"):
            in_container = (
                "IssuesFound"
                if value >= 1
                else ("NoIssuesFound" if status in TERMINAL_STATUSES else "InProgress")
            )
            rule_statuses.setdefault(name.removeprefix("rule:"), in_container)
    rule_step = None
    for item in description.get("DebugRuleEvaluationStatuses", []) or []:
        if item.get("RuleConfigurationName") == rule:
            match = decision.STEP_IN_DETAILS_PATTERN.search(str(item.get("StatusDetails", "")))
            rule_step = int(match.group("step")) if match else None
    return report_module.JobRecord(
        name=job.name,
        params=dict(job.params),
        budget_steps=job.steps,
        state=state,
        steps=min(steps, job.steps),
        compute_seconds=compute,
        billable_seconds=billable_seconds,
        seconds_per_step=seconds_per_step,
        stopped_by_rule=rule,
        rule_step=rule_step,
        stop_source=tags.get(decision.TAG_STOP_SOURCE),
        rule_statuses=rule_statuses,
        train_curve=train_curve,
        validation_curve=validation_curve,
        final_validation={name: value for name, value in final.items() if name.startswith("validation:")},
        failure_reason=str(description.get("FailureReason")) if description.get("FailureReason") else None,
    )
