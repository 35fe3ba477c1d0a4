"""``autostop sweep status``: a sweep's jobs, their rule statuses, and who stopped what.

Why a command of its own: when a sweep runs on SageMaker the launcher may be long gone (a laptop closed); the
truth is in SageMaker and CloudWatch. For each job of the sweep (``ListTrainingJobs`` by name, then
``DescribeTrainingJob`` and ``ListTags``) it shows the status, the rule statuses from every source -- managed
Debugger's ``DebugRuleEvaluationStatuses``, the per-job alarms ``<prefix><job>/<rule>`` (ALARM: the container
printed ``rule:<Name>=1``) and the final ``rule:<Name>`` metric values (the alarms are deleted when a job
ends) -- and the audit trail the stop Lambda leaves: ``autostop:stopped-by-rule``, ``autostop:stopped-at``,
``autostop:stop-source``. Given a local sweep's folder (``runs/<sweep>``) it shows the same from the runner's
records and each job's ``tags.json``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lambdas.stop_training_job import decision
from training.sweep import report as report_module
from training.sweep import sagemaker as sagemaker_backend
from training.sweep import spec as spec_module

ALARM_STATUS = {"ALARM": "IssuesFound", "OK": "InProgress", "INSUFFICIENT_DATA": "InProgress"}


@dataclasses.dataclass
class JobStatus:
    name: str
    status: str
    detail: str = ""  # SageMaker's SecondaryStatus, or the local runner's step count
    rules: dict[str, str] = dataclasses.field(default_factory=dict)
    stopped_by_rule: str | None = None
    stopped_at: str | None = None
    stop_source: str | None = None
    compute_seconds: float | None = None
    console_url: str | None = None  # the job's page in the SageMaker console (SageMaker jobs)

    def to_json_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _paginate(client: Any, operation: str, key: str, **arguments: Any) -> Iterable[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**arguments):
        yield from page.get(key, [])


def sweep_job_names(sagemaker_client: Any, sweep_name: str) -> list[str]:
    """The sweep's training jobs: names ``<sweep>-NNN`` (the launcher's naming), oldest first."""
    pattern = re.compile(re.escape(sweep_name) + r"-[0-9]{" + str(spec_module.JOB_NUMBER_WIDTH) + r"}")
    summaries = _paginate(
        sagemaker_client, "list_training_jobs", "TrainingJobSummaries", NameContains=f"{sweep_name}-"
    )
    return sorted(
        {summary["TrainingJobName"] for summary in summaries if pattern.fullmatch(summary["TrainingJobName"])}
    )


def _alarm_states(cloudwatch_client: Any, prefix: str, sweep_name: str) -> dict[str, dict[str, str]]:
    """job -> rule -> rule status, from the alarms named ``<prefix><sweep>-NNN/<rule>``."""
    states: dict[str, dict[str, str]] = {}
    for alarm in _paginate(
        cloudwatch_client, "describe_alarms", "MetricAlarms", AlarmNamePrefix=f"{prefix}{sweep_name}-"
    ):
        job, slash, rule = str(alarm["AlarmName"]).removeprefix(prefix).partition("/")
        if slash:
            states.setdefault(job, {})[rule] = ALARM_STATUS.get(alarm.get("StateValue", ""), "InProgress")
    return states


def console_url(job_arn: str) -> str:
    """The training job's page in the SageMaker console (its logs and metrics are linked from there)."""
    partition, region = job_arn.split(":")[1], job_arn.split(":")[3]
    name = job_arn.rsplit("/", 1)[-1]
    domain = "console.amazonaws.cn" if partition == "aws-cn" else "console.aws.amazon.com"
    return f"https://{region}.{domain}/sagemaker/home?region={region}#/jobs/{name}"


def sagemaker_status(
    sweep_name: str, *, sagemaker_client: Any, cloudwatch_client: Any, alarm_prefix: str
) -> list[JobStatus]:
    alarms = _alarm_states(cloudwatch_client, alarm_prefix, sweep_name)
    statuses = []
    for name in sweep_job_names(sagemaker_client, sweep_name):
        description = sagemaker_client.describe_training_job(TrainingJobName=name)
        tags = sagemaker_backend.training_job_tags(sagemaker_client, description["TrainingJobArn"])
        status = str(description.get("TrainingJobStatus", ""))
        rules: dict[str, str] = {}
        for item in description.get("FinalMetricDataList", []) or []:
            metric = str(item.get("MetricName", ""))
            if metric.startswith("rule:"):
                finished = status in {"Completed", "Failed", "Stopped"}
                rules[metric.removeprefix("rule:")] = (
                    "IssuesFound"
                    if float(item.get("Value", 0)) >= 1
                    else ("NoIssuesFound" if finished else "InProgress")
                )
        rules.update(alarms.get(name, {}))
        for item in description.get("DebugRuleEvaluationStatuses", []) or []:
            rules[str(item.get("RuleConfigurationName"))] = str(item.get("RuleEvaluationStatus"))
        billable = description.get("BillableTimeInSeconds")
        statuses.append(
            JobStatus(
                name=name,
                status=status,
                detail=str(description.get("SecondaryStatus", "")),
                rules=rules,
                stopped_by_rule=tags.get(decision.TAG_STOPPED_BY_RULE),
                stopped_at=tags.get(decision.TAG_STOPPED_AT),
                stop_source=tags.get(decision.TAG_STOP_SOURCE),
                compute_seconds=float(billable) if billable is not None else None,
                console_url=console_url(str(description["TrainingJobArn"])),
            )
        )
    return statuses


def local_status(directory: Path) -> list[JobStatus]:
    """A local sweep's jobs from ``records.json`` and each job's ``tags.json`` (the local ListTags)."""
    record = report_module.SweepRecord.load(directory)
    statuses = []
    for job in record.jobs:
        tags: Mapping[str, str] = {}
        tags_file = directory / "jobs" / job.name / "tags.json"
        if tags_file.is_file():
            try:
                tags = json.loads(tags_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                tags = {}
        statuses.append(
            JobStatus(
                name=job.name,
                status=job.state,
                detail=f"step {job.steps}/{job.budget_steps}",
                rules=dict(job.rule_statuses),
                stopped_by_rule=tags.get(decision.TAG_STOPPED_BY_RULE, job.stopped_by_rule),
                stopped_at=tags.get(decision.TAG_STOPPED_AT),
                stop_source=tags.get(decision.TAG_STOP_SOURCE, job.stop_source),
                compute_seconds=job.compute_seconds,
            )
        )
    return statuses


def render(statuses: Sequence[JobStatus]) -> str:
    """A plain text table (readable in a terminal, a log or a ticket)."""
    headers = ("job", "status", "detail", "rules", "stopped by", "stopped at", "source", "compute s")
    rows = [
        (
            status.name,
            status.status,
            status.detail,
            ", ".join(f"{rule}={value}" for rule, value in status.rules.items()) or "-",
            status.stopped_by_rule or "-",
            status.stopped_at or "-",
            status.stop_source or "-",
            f"{status.compute_seconds:.0f}" if status.compute_seconds is not None else "-",
        )
        for status in statuses
    ]
    widths = [max(len(row[index]) for row in [headers, *rows]) for index in range(len(headers))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    stopped = sum(1 for status in statuses if status.stopped_by_rule)
    lines.append(f"{len(statuses)} job(s); {stopped} stopped by a rule")
    links = [f"  {status.name}: {status.console_url}" for status in statuses if status.console_url]
    if links:
        lines += ["console (logs, metrics, rule statuses):", *links]
    return "\n".join(lines)
