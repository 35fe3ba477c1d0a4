"""The vocabulary every part of the stop path shares: event kinds, statuses, tag names, limits and patterns.

Why one module: the decision core, the settings, the event parsers, the signature check, the CDK stack
(``infra/config.py``), the launcher's spec and the container's contract (``training/debugger/contract.py``,
kept equal by a test) all validate the same names; one definition means a rule name, a job name or a prefix
accepted in one place is accepted in all of them. Pure: no AWS SDK, no environment, no clock.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Final

# --- Names fixed by AWS and by the project's contracts ---

SAGEMAKER_SOURCE: Final = "aws.sagemaker"
SAGEMAKER_DETAIL_TYPE: Final = "SageMaker Training Job State Change"
TRAINING_SOURCE: Final = "autostop.training"
TRAINING_DETAIL_TYPE: Final = "Debugger Rule Evaluation Status Change"
# The container's objective at a rung (cross-job stopping: docs/events.md section 4, ``rung_reports``).
RUNG_REPORT_DETAIL_TYPE: Final = "Cross-Job Rung Report"
CLOUDWATCH_SOURCE: Final = "aws.cloudwatch"
CLOUDWATCH_DETAIL_TYPE: Final = "CloudWatch Alarm State Change"

IN_PROGRESS: Final = "InProgress"
ISSUES_FOUND: Final = "IssuesFound"
ALARM_STATE: Final = "ALARM"
# Job states that never lead back to InProgress: an event claiming one of them is enough to skip.
NOT_RUNNING_STATUSES: Final = frozenset({"Stopping", "Stopped", "Completed", "Failed", "Deleting"})
# Job states after which nothing of the job runs any more: its per-job alarms can go.
FINISHED_STATUSES: Final = frozenset({"Stopped", "Completed", "Failed", "Deleting"})

TAG_STOPPED_BY_RULE: Final = "autostop:stopped-by-rule"
TAG_STOPPED_AT: Final = "autostop:stopped-at"
TAG_STOP_SOURCE: Final = "autostop:stop-source"
# The audit trail's two markers. ``stop-requested-at`` is written before StopTrainingJob; ``audit`` last,
# ``notified`` once the stop is tagged and notified, or ``stop-rejected: ...`` when SageMaker refused the
# stop because the job had ended by itself. A job with the first and without the second is one autostop
# stopped whose trail a failure cut short: the retried event completes it (``decision.audit_pending``).
TAG_STOP_REQUESTED_AT: Final = "autostop:stop-requested-at"
TAG_AUDIT: Final = "autostop:audit"
AUDIT_NOTIFIED: Final = "notified"

DEFAULT_TAG_KEY: Final = "autostop"
DEFAULT_TAG_VALUE: Final = "enabled"
DEFAULT_ALARM_PREFIX: Final = "autostop-"
ALL_RULES: Final = "*"

ENV_TAG_KEY: Final = "AUTOSTOP_TAG_KEY"
ENV_TAG_VALUE: Final = "AUTOSTOP_TAG_VALUE"
ENV_JOB_PREFIX: Final = "AUTOSTOP_JOB_PREFIX"
ENV_STOPPING_RULES: Final = "AUTOSTOP_STOPPING_RULES"
ENV_DRY_RUN: Final = "AUTOSTOP_DRY_RUN"
ENV_TOPIC_ARN: Final = "AUTOSTOP_TOPIC_ARN"
ENV_ALARM_PREFIX: Final = "AUTOSTOP_ALARM_PREFIX"
# The sweep-state DynamoDB table (``infra/sweep_state.py`` sets it; ``rung_store`` writes to it).
ENV_SWEEP_TABLE: Final = "AUTOSTOP_SWEEP_TABLE"

# The in-container event's signature (docs/events.md section 2; ``provenance``). The launcher gives every
# job a random key as this hyperparameter; DescribeTrainingJob returns it to the stop Lambda.
SIGNING_KEY_HYPERPARAMETER: Final = "autostop_signing_key"
SIGNING_KEY_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{32,256}")
SIGNATURE_ALGORITHM: Final = "HMAC-SHA256"
SIGNATURE_PATTERN: Final = re.compile(r"[0-9a-f]{64}")
SIGNED_MESSAGE_VERSION: Final = "autostop-event-v1"
# A signed event older than this is stale. EventBridge gives up delivering an event after the stop rules'
# maximum event age (one hour, ``infra/auto_stop.py``); Lambda's own retries of an async invoke add at most
# a few minutes, so a genuine event is never older. Signed more than MAX_CLOCK_SKEW_S in the future (or
# before the job started) is refused too.
SIGNATURE_MAX_AGE_S: Final = 75 * 60
MAX_CLOCK_SKEW_S: Final = 5 * 60

# Cross-job stopping (``rung_reports``, ``sweep_settings``). The launcher gives every job of a sweep with a
# ``cross_job`` section this hyperparameter: the comparison's settings, the objective and the sweep's name,
# as compact JSON. The container reports its objective at each rung in an event signed like a rule event
# (another message version, so neither kind of signature can stand for the other); a job stopped by the
# comparison is recorded under the rule name ``CrossJob``, as the local runner records it.
CROSS_JOB_HYPERPARAMETER: Final = "autostop_cross_job"
RUNG_REPORT_MESSAGE_VERSION: Final = "autostop-rung-report-v1"
CROSS_JOB_RULE: Final = "CrossJob"
# SageMaker: a hyperparameter value holds at most 2500 characters.
HYPERPARAMETER_VALUE_MAX_LENGTH: Final = 2500
# The objective travels as text (``repr`` of the float, or nan/inf/-inf, as the rung store keeps it): JSON
# has no NaN, and text is signed byte for byte whatever a JSON encoder on the way does to numbers.
OBJECTIVE_PATTERN: Final = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|nan|-?inf")
OBJECTIVE_MAX_LENGTH: Final = 32
# Sweep names: training-job name characters (the spec's pattern), jobs being ``<sweep>-NNN``.
SWEEP_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
OBJECTIVE_METRIC_PATTERN: Final = re.compile(r"validation:[a-z0-9_]{1,64}")

# --- Limits and patterns (from the SageMaker, CloudWatch and EventBridge API models) ---

JOB_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
JOB_NAME_MAX_LENGTH: Final = 63
JOB_ARN_PATTERN: Final = re.compile(
    r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:training-job/(?P<name>[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})"
)
ARN_MAX_LENGTH: Final = 256
# SageMaker allows any 1-256 characters in RuleConfigurationName. The rule name also becomes a tag value, a
# metric dimension and part of an alarm name, so autostop accepts the portable subset and skips the rest.
RULE_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:=+@/-]{0,255}")
STATUS_MAX_LENGTH: Final = 64
STATUS_DETAILS_MAX_LENGTH: Final = 1024  # SageMaker StatusDetails; CloudWatch StateReason is 1023.
MAX_RULE_STATUSES: Final = 20  # DebugRuleEvaluationStatuses / ProfilerRuleEvaluationStatuses: at most 20.
MAX_RESOURCES: Final = 10
ALARM_NAME_MAX_LENGTH: Final = 255
MAX_ALARM_METRICS: Final = 20
MAX_DIMENSIONS: Final = 30
DIMENSION_VALUE_MAX_LENGTH: Final = 1024
EVENT_ID_MAX_LENGTH: Final = 128
TIMESTAMP_MAX_LENGTH: Final = 64
MAX_STEP: Final = 2**63 - 1
HOST_PATTERN: Final = re.compile(r"(?P<job>[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})/algo-[0-9]{1,5}")
STEP_IN_DETAILS_PATTERN: Final = re.compile(r"\bat step (?P<step>[0-9]{1,19})\b")
TAG_KEY_PATTERN: Final = re.compile(r"[\w .:/=+\-@]{1,128}")
TAG_VALUE_PATTERN: Final = re.compile(r"[\w .:/=+\-@]{0,256}")
JOB_PREFIX_PATTERN: Final = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9-]{0,62}")
ALARM_PREFIX_PATTERN: Final = re.compile(r"[A-Za-z0-9_.:=+@/-]{1,128}")
# SageMaker returns training-job ARNs with the job name lowercased in places (and IAM evaluates those):
# names are compared case-insensitively wherever one side may come from an ARN (``same_job_name``).
# DynamoDB table names (the API reference's TableName pattern and lengths).
TABLE_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9_.-]{3,255}")
TOPIC_ARN_PATTERN: Final = re.compile(
    r"arn:aws[a-z\-]*:sns:[a-z0-9\-]+:[0-9]{12}:[A-Za-z0-9_\-]{1,256}(\.fifo)?"
)


class EventSource(enum.StrEnum):
    """The three event kinds the Lambda handles (EventBridge ``source``); also the ``stop-source`` tag."""

    SAGEMAKER = SAGEMAKER_SOURCE
    TRAINING = TRAINING_SOURCE
    CLOUDWATCH = CLOUDWATCH_SOURCE


DETAIL_TYPES: Final[Mapping[EventSource, str]] = {
    EventSource.SAGEMAKER: SAGEMAKER_DETAIL_TYPE,
    EventSource.TRAINING: TRAINING_DETAIL_TYPE,
    EventSource.CLOUDWATCH: CLOUDWATCH_DETAIL_TYPE,
}


class FindingOrigin(enum.StrEnum):
    """Where a rule status came from: a Debugger rule, a Profiler rule, or a per-job CloudWatch alarm."""

    DEBUGGER = "debugger"
    PROFILER = "profiler"
    ALARM = "alarm"
    CROSS_JOB = "cross-job"  # the Lambda's own comparison of a job with its sweep's other jobs


class Action(enum.StrEnum):
    STOP = "stop"
    DRY_RUN = "dry_run"  # every condition for a stop holds, but the settings say dry run: notify only
    SKIP = "skip"


class Reason(enum.StrEnum):
    """Why a decision was taken. Skip reasons are the ``reason`` dimension of the ``StopSkipped`` metric."""

    ISSUES_FOUND = "issues_found"  # the reason of a stop (or of a dry run's would-be stop)
    DRY_RUN = "dry_run"
    MALFORMED_EVENT = "malformed_event"
    FOREIGN_EVENT = "foreign_event"
    ALARM_NOT_IN_ALARM = "alarm_not_in_alarm"
    NO_ISSUES_FOUND = "no_issues_found"
    RULE_NOT_STOPPING = "rule_not_stopping"
    OUT_OF_SCOPE_PREFIX = "out_of_scope_prefix"
    OUT_OF_SCOPE_TAG = "out_of_scope_tag"
    OUT_OF_SCOPE_ACCESS_DENIED = "out_of_scope_access_denied"
    JOB_NOT_FOUND = "job_not_found"
    MALFORMED_DESCRIPTION = "malformed_description"
    JOB_NOT_IN_PROGRESS = "job_not_in_progress"
    UNVERIFIED_EVENT = "unverified_event"  # an in-container event without a valid signature from its job
    WORSE_THAN_PEERS = "worse_than_peers"  # the reason of a cross-job stop (or of a dry run's would-be stop)
    CROSS_JOB_CONTINUE = "cross_job_continue"  # the comparison lets the job go on (or cannot judge yet)
    CROSS_JOB_NOT_CONFIGURED = "cross_job_not_configured"  # no usable autostop_cross_job hyperparameter


def same_job_name(first: str, second: str) -> bool:
    """Whether two spellings may name one training job: SageMaker lowercases the name inside some ARNs it
    returns (training and tuning job ARNs), so a name taken from an ARN is compared without case."""
    return first.lower() == second.lower()


def is_rule_name(name: object) -> bool:
    """The one definition of a valid rule configuration name, shared by the stack's settings, the decision
    core, the launcher's spec and the container (a name valid in one is valid in all)."""
    return isinstance(name, str) and RULE_NAME_PATTERN.fullmatch(name) is not None
