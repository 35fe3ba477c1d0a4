"""The SageMaker backend of ``autostop sweep``: one module per job.

- ``settings``: the spec's ``sagemaker`` section with the CLI's overrides, checked (``LaunchSettings``);
- ``requests``: one job's ``Estimator`` (hyperparameters, Debugger hook and rules, tags, metric definitions);
- ``custom_rules``: ``LatentClusterRule`` as a SageMaker custom rule, its source uploaded once per sweep;
- ``alarms``: the per-job CloudWatch alarms on ``rule:<Name>`` metrics, created and deleted;
- ``sdk``: the SDK builds requests offline, telemetry off, Ctrl-C never swallowed; the AWS clients;
- ``dry_run``: every request printed, nothing sent;
- ``preflight``: credentials, region and account checked before any job is created;
- ``faults``: which AWS errors to wait out, and the retry with backoff;
- ``launcher``: the launch loop (``SageMakerSweep``), ``records.json`` rewritten as each job ends;
- ``records``: a job's report record from SageMaker and CloudWatch;
- ``resume``: reattach to a sweep's jobs by tag after the launcher's machine went away;
- ``detach``: queue a sweep in the sweep-state table for the sweep launcher Lambda, launch its first jobs.

The names below are the backend's interface (``autostop sweep``, ``sweep status``, the benchmarks, tests).
"""

from __future__ import annotations

from training.sweep.sagemaker.alarms import (
    HOST_SUFFIX,
    METRIC_NAMESPACE,
    alarm_name,
    alarm_requests,
    delete_job_alarms,
)
from training.sweep.sagemaker.custom_rules import (
    CUSTOM_RULE_FOLDER,
    custom_rule_arguments,
    custom_rule_source,
    custom_rule_source_uri,
    upload_custom_rule_source,
    uses_custom_rules,
)
from training.sweep.sagemaker.dry_run import PlannedJob, plan, print_plan
from training.sweep.sagemaker.launcher import SageMakerSweep
from training.sweep.sagemaker.records import job_record, metric_series, training_job_tags
from training.sweep.sagemaker.requests import (
    MANAGED_RULE_FUNCTIONS,
    PUT_EVENTS_HYPERPARAMETER,
    RULES_HYPERPARAMETER,
    STEP_METRIC_DEFINITION,
    TRAINING_METRIC_DEFINITIONS,
    build_estimator,
    container_hyperparameters,
    job_tags,
    metric_definitions,
    required_collections,
    training_inputs,
)
from training.sweep.sagemaker.sdk import (
    AwsClients,
    RecordingSageMakerClient,
    aws_clients,
    no_sdk_telemetry,
    offline_session,
)
from training.sweep.sagemaker.settings import (
    CUSTOM_RULES,
    SWEEP_TAG_KEY,
    TERMINAL_STATUSES,
    LaunchError,
    LaunchSettings,
)

__all__ = [
    "CUSTOM_RULES",
    "CUSTOM_RULE_FOLDER",
    "HOST_SUFFIX",
    "MANAGED_RULE_FUNCTIONS",
    "METRIC_NAMESPACE",
    "PUT_EVENTS_HYPERPARAMETER",
    "RULES_HYPERPARAMETER",
    "STEP_METRIC_DEFINITION",
    "SWEEP_TAG_KEY",
    "TERMINAL_STATUSES",
    "TRAINING_METRIC_DEFINITIONS",
    "AwsClients",
    "LaunchError",
    "LaunchSettings",
    "PlannedJob",
    "RecordingSageMakerClient",
    "SageMakerSweep",
    "alarm_name",
    "alarm_requests",
    "aws_clients",
    "build_estimator",
    "container_hyperparameters",
    "custom_rule_arguments",
    "custom_rule_source",
    "custom_rule_source_uri",
    "delete_job_alarms",
    "job_record",
    "job_tags",
    "metric_definitions",
    "metric_series",
    "no_sdk_telemetry",
    "offline_session",
    "plan",
    "print_plan",
    "required_collections",
    "training_inputs",
    "training_job_tags",
    "upload_custom_rule_source",
    "uses_custom_rules",
]
