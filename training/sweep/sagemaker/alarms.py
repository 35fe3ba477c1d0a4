"""The per-job CloudWatch alarms: one per rule, on the job's ``rule:<Name>`` metric, deleted when it ends.

Why alarms: the ``rule:<Name>=1`` log line becomes a metric through the job's metric definitions, and an
alarm on it reaches the stop Lambda through EventBridge: the stop path that works with network isolation
(docs/events.md). The stop Lambda deletes a job's alarms on its terminal event too; deleting twice is
harmless.
"""

from __future__ import annotations

import sys
from typing import Any

from lambdas.stop_training_job import decision
from training.sweep import spec as spec_module
from training.sweep.sagemaker.settings import SWEEP_TAG_KEY

METRIC_NAMESPACE = "/aws/sagemaker/TrainingJobs"
HOST_SUFFIX = "/algo-1"  # one instance per job: SageMaker's first host


def alarm_name(prefix: str, job_name: str, rule_name: str) -> str:
    return f"{prefix}{job_name}/{rule_name}"


def alarm_requests(
    spec: spec_module.SweepSpec, job: spec_module.JobConfig, prefix: str
) -> list[dict[str, Any]]:
    """``PutMetricAlarm`` requests: one per rule, ALARM when the job prints ``rule:<Name>=1``."""
    requests = []
    for rule in spec.rules:
        requests.append(
            {
                "AlarmName": alarm_name(prefix, job.name, rule.name),
                "AlarmDescription": (
                    f"autostop: rule {rule.name} found issues in training job {job.name} "
                    f"(sweep {spec.name}); the stop Lambda stops the job on this alarm's state change"
                ),
                "Namespace": METRIC_NAMESPACE,
                "MetricName": f"rule:{rule.name}",
                "Dimensions": [{"Name": "Host", "Value": job.name + HOST_SUFFIX}],
                "Statistic": "Maximum",
                "Period": 60,
                "EvaluationPeriods": 1,
                "DatapointsToAlarm": 1,
                "Threshold": 1.0,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                "ActionsEnabled": False,
                "Tags": [
                    {"Key": decision.DEFAULT_TAG_KEY, "Value": decision.DEFAULT_TAG_VALUE},
                    {"Key": SWEEP_TAG_KEY, "Value": spec.name},
                ],
            }
        )
    return requests


def delete_job_alarms(cloudwatch: Any, job_name: str, prefix: str) -> list[str]:
    """Delete the alarms named ``<prefix><job>/...`` (the trailing slash keeps job-1 apart from job-10)."""
    job_prefix = f"{prefix}{job_name}/"
    names: list[str] = []
    try:
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=job_prefix):
            names += [
                alarm["AlarmName"]
                for alarm in page.get("MetricAlarms", [])
                if alarm["AlarmName"].startswith(job_prefix)
            ]
        for start in range(0, len(names), 100):
            cloudwatch.delete_alarms(AlarmNames=names[start : start + 100])
    except Exception as error:
        print(f"{job_name}: could not delete its alarms: {error}", file=sys.stderr, flush=True)
    return names
