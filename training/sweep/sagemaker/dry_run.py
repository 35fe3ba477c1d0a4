"""``--dry-run``: every request the sweep would send, built by the SDK offline, printed; nothing is sent.

Fake credentials, a ``Session`` whose ``sagemaker_client`` only records ``create_training_job`` calls, SDK
telemetry off, no CloudWatch client: it prints each ``CreateTrainingJob`` and ``PutMetricAlarm`` request.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

from training.debugger import contract
from training.sweep import spec as spec_module
from training.sweep.sagemaker import alarms, sdk
from training.sweep.sagemaker.settings import LaunchSettings


@dataclasses.dataclass(frozen=True)
class PlannedJob:
    job: spec_module.JobConfig
    create_training_job: dict[str, Any]
    alarms: list[dict[str, Any]]


def plan(spec: spec_module.SweepSpec, launch: LaunchSettings) -> list[PlannedJob]:
    """Every request the sweep would send, built by the SDK offline (``--dry-run``)."""
    builder = sdk.RequestBuilder(spec, launch)
    return [
        PlannedJob(
            job,
            builder.create_training_job(job),
            alarms.alarm_requests(spec, job, launch.settings.alarm_prefix),
        )
        for job in spec.jobs()
    ]


def print_plan(
    planned: Sequence[PlannedJob], spec: spec_module.SweepSpec, write: Callable[[str], None]
) -> None:
    write(
        f"dry run: sweep {spec.name}: {len(planned)} training jobs, at most {spec.max_parallel_jobs} in "
        "flight; nothing is sent"
    )
    write(
        f"# when launched, each job's HyperParameters also get {contract.SIGNING_KEY_HYPERPARAMETER}: a new "
        "random key per job (its stop events are signed with it)"
    )
    sources = {
        rule["RuleParameters"]["source_s3_uri"]
        for item in planned
        for rule in item.create_training_job.get("DebugRuleConfigurations", [])
        if "source_s3_uri" in rule.get("RuleParameters", {})
    }
    for uri in sorted(sources):
        write(f"# PutObject {uri} (the custom rule's source, before the first job)")
    for item in planned:
        write(f"\n# CreateTrainingJob {item.job.name} ({item.job.label()})")
        write(json.dumps(item.create_training_job, indent=2, sort_keys=True, default=str))
        for alarm in item.alarms:
            write(f"# PutMetricAlarm {alarm['AlarmName']} (after the job is created)")
            write(json.dumps(alarm, indent=2, sort_keys=True))
