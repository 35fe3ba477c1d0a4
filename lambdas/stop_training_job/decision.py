"""The pure decision core of the stop Lambda: whether a training job must be stopped, and why not.

Why pure: the same rules must hold wherever a stop is decided. The Lambda (``app.py``) learns its facts
from EventBridge, ``DescribeTrainingJob`` and ``ListTags`` and acts with ``StopTrainingJob``; the local sweep
runner learns them from its own processes and acts with a signal. Both hand plain data to this module and
get plain data back, so the rules are tested once, without AWS, and cannot drift apart. Nothing here imports
boto3, reads the environment, the clock or the network.

The API, in the order an adapter uses it:

1. ``config_from_environment(env)`` -> ``Config`` (or ``ConfigError`` naming every bad setting).
2. ``interpret_event(event, config)`` -> ``EventFacts``, or ``IgnoredEvent`` with a ``Reason`` for events
   that are malformed, foreign, or carry nothing to act on. It never raises, whatever the input.
3. ``screen(facts, config)`` -> an early skip ``Decision``, or ``None`` when the job must be looked up.
   It lets an adapter avoid AWS calls for the bulk of events (state changes without an issue).
4. ``decide(facts, description, tags, config)`` -> ``Decision``: ``STOP``, ``DRY_RUN`` (would stop) or
   ``SKIP``, with the reason and the rule. ``decide`` applies ``screen`` itself, so it is complete alone.
5. Helpers for acting: ``stop_tags``, ``job_alarm_prefix``/``is_job_alarm``, ``console_url``.

Every field of an event is optional and untrusted. Values are checked for type and for the lengths and
patterns the AWS APIs allow; anything outside them makes the event ``malformed_event``: skipped with a
reason that names the field, never a stop.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import re
from collections.abc import Iterable, Mapping
from typing import Final

# --- Names fixed by AWS and by the project's contracts ---

SAGEMAKER_SOURCE: Final = "aws.sagemaker"
SAGEMAKER_DETAIL_TYPE: Final = "SageMaker Training Job State Change"
TRAINING_SOURCE: Final = "autostop.training"
TRAINING_DETAIL_TYPE: Final = "Debugger Rule Evaluation Status Change"
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


# --- Settings ---


class ConfigError(ValueError):
    """The settings are unusable. The message lists every problem, each naming its environment variable."""


@dataclasses.dataclass(frozen=True)
class Config:
    """What the operator chose: ``cdk.json`` context -> the Lambda's environment, or the sweep runner's flags.

    ``stopping_rules`` is ``None`` for "every rule stops" (``*``), else the rule configuration names that
    stop.
    ``topic_arn`` may be empty (no notification), which the local runner uses; the stack always sets it.
    """

    tag_key: str = DEFAULT_TAG_KEY
    tag_value: str = DEFAULT_TAG_VALUE
    job_prefix: str = ""
    stopping_rules: frozenset[str] | None = None
    dry_run: bool = False
    topic_arn: str = ""
    alarm_prefix: str = DEFAULT_ALARM_PREFIX

    def __post_init__(self) -> None:
        problems = _config_problems(self)
        if problems:
            raise ConfigError("invalid autostop settings: " + "; ".join(problems))

    def stops_rule(self, rule_name: str) -> bool:
        """Whether an issue found by this rule configuration stops the job."""
        return self.stopping_rules is None or rule_name in self.stopping_rules

    def job_name_in_scope(self, job_name: str) -> bool:
        return job_name.startswith(self.job_prefix)

    def tags_in_scope(self, tags: Mapping[str, str]) -> bool:
        """The opt-in: the job carries the tag key with exactly the tag value."""
        return tags.get(self.tag_key) == self.tag_value


def _config_problems(config: Config) -> list[str]:
    problems: list[str] = []
    if not isinstance(config.tag_key, str) or not TAG_KEY_PATTERN.fullmatch(config.tag_key):
        problems.append(f"{ENV_TAG_KEY} must be 1-128 tag characters (letters, digits, spaces, _.:/=+-@)")
    elif config.tag_key.lower().startswith("aws:"):
        problems.append(f"{ENV_TAG_KEY} must not start with the reserved 'aws:'")
    if not isinstance(config.tag_value, str) or not TAG_VALUE_PATTERN.fullmatch(config.tag_value):
        problems.append(f"{ENV_TAG_VALUE} must be 0-256 tag characters (letters, digits, spaces, _.:/=+-@)")
    if not isinstance(config.job_prefix, str) or (
        config.job_prefix and not JOB_PREFIX_PATTERN.fullmatch(config.job_prefix)
    ):
        problems.append(
            f"{ENV_JOB_PREFIX} must be empty or 1-63 training-job name characters (letters, digits, '-'), "
            "starting with a letter or digit"
        )
    if config.stopping_rules is not None:
        if not isinstance(config.stopping_rules, frozenset) or not config.stopping_rules:
            problems.append(f"{ENV_STOPPING_RULES} must name at least one rule, or be '*' for all rules")
        else:
            bad = sorted(
                repr(name)[:80]
                for name in config.stopping_rules
                if not isinstance(name, str) or not RULE_NAME_PATTERN.fullmatch(name)
            )
            if bad:
                problems.append(
                    f"{ENV_STOPPING_RULES} has invalid rule configuration names {', '.join(bad)} "
                    "(1-256 characters: letters, digits, _.:=+@/-, starting with a letter or digit)"
                )
    if not isinstance(config.dry_run, bool):
        problems.append(f"{ENV_DRY_RUN} must be a boolean")
    if not isinstance(config.topic_arn, str) or (
        config.topic_arn and not TOPIC_ARN_PATTERN.fullmatch(config.topic_arn)
    ):
        problems.append(f"{ENV_TOPIC_ARN} must be empty or an SNS topic ARN")
    if not isinstance(config.alarm_prefix, str) or not ALARM_PREFIX_PATTERN.fullmatch(config.alarm_prefix):
        problems.append(f"{ENV_ALARM_PREFIX} must be 1-128 characters (letters, digits, _.:=+@/-)")
    return problems


def config_from_environment(env: Mapping[str, str]) -> Config:
    """Parse the ``AUTOSTOP_*`` settings from a mapping (``os.environ`` in the Lambda; any dict in tests).

    Missing variables take the documented defaults. Bad values raise ``ConfigError`` naming every problem:
    a misconfigured stop function must fail loudly (its Errors alarm fires, events wait in the DLQ) rather
    than run with settings nobody chose.
    """
    problems: list[str] = []

    dry_run_text = env.get(ENV_DRY_RUN, "false").strip().lower()
    dry_run = dry_run_text == "true"
    if dry_run_text not in {"true", "false"}:
        problems.append(f"{ENV_DRY_RUN} must be 'true' or 'false', got {env.get(ENV_DRY_RUN, '')[:40]!r}")

    stopping_rules: frozenset[str] | None = None
    rules_text = env.get(ENV_STOPPING_RULES, ALL_RULES).strip()
    if rules_text != ALL_RULES:
        names = [name.strip() for name in rules_text.split(",")]
        if ALL_RULES in names:
            problems.append(f"{ENV_STOPPING_RULES} must be '*' alone or a comma-separated list of rule names")
        elif not all(names):
            problems.append(f"{ENV_STOPPING_RULES} has an empty rule name (got {rules_text[:80]!r})")
        else:
            stopping_rules = frozenset(names)

    settings = {
        "tag_key": env.get(ENV_TAG_KEY, DEFAULT_TAG_KEY),
        "tag_value": env.get(ENV_TAG_VALUE, DEFAULT_TAG_VALUE),
        "job_prefix": env.get(ENV_JOB_PREFIX, ""),
        "topic_arn": env.get(ENV_TOPIC_ARN, ""),
        "alarm_prefix": env.get(ENV_ALARM_PREFIX, DEFAULT_ALARM_PREFIX),
    }
    try:
        config = Config(stopping_rules=stopping_rules, dry_run=dry_run, **settings)
    except ConfigError as error:
        problems.append(str(error).removeprefix("invalid autostop settings: "))
    if problems:
        raise ConfigError("invalid autostop settings: " + "; ".join(problems))
    return config


# --- Facts learnt from an event ---


@dataclasses.dataclass(frozen=True)
class RuleFinding:
    """One rule's status as an event reports it (a Debugger/Profiler status entry, or a firing alarm)."""

    rule_name: str
    status: str
    origin: FindingOrigin
    status_details: str = ""
    step: int | None = None

    @property
    def issues_found(self) -> bool:
        return self.status == ISSUES_FOUND


@dataclasses.dataclass(frozen=True)
class EventFacts:
    """What a valid event says, in plain data.

    ``job_status`` is what the event claims (SageMaker events only); it can be stale, so only the
    irreversible states are trusted from it (to skip, never to stop).
    """

    source: EventSource
    job_name: str
    findings: tuple[RuleFinding, ...] = ()
    job_status: str | None = None
    event_id: str | None = None

    @property
    def issues(self) -> tuple[RuleFinding, ...]:
        return tuple(finding for finding in self.findings if finding.issues_found)

    @property
    def job_finished(self) -> bool:
        """The event says the job has finished: its per-job alarms can be deleted."""
        return self.job_status in FINISHED_STATUSES


@dataclasses.dataclass(frozen=True)
class IgnoredEvent:
    """An event that names nothing to act on, with the reason and a short description of the problem."""

    reason: Reason
    detail: str
    source: EventSource | None = None
    job_name: str | None = None


class _Malformed(Exception):
    """Internal: raised while walking an event, turned into ``IgnoredEvent`` by ``interpret_event``."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


def _describe_type(value: object) -> str:
    return type(value).__name__


def _optional_string(container: Mapping[object, object], key: str, path: str, max_length: int) -> str | None:
    value = container.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Malformed(f"{path}.{key}", f"expected a string, got {_describe_type(value)}")
    if len(value) > max_length:
        raise _Malformed(f"{path}.{key}", f"{len(value)} characters, more than the {max_length} allowed")
    return value


def _optional_mapping(
    container: Mapping[object, object], key: str, path: str
) -> Mapping[object, object] | None:
    value = container.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _Malformed(f"{path}.{key}", f"expected an object, got {_describe_type(value)}")
    return value


def _optional_list(container: Mapping[object, object], key: str, path: str, max_items: int) -> list[object]:
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Malformed(f"{path}.{key}", f"expected a list, got {_describe_type(value)}")
    if len(value) > max_items:
        raise _Malformed(f"{path}.{key}", f"{len(value)} items, more than the {max_items} allowed")
    return value


def _checked_job_name(value: str, path: str) -> str:
    if len(value) > JOB_NAME_MAX_LENGTH or not JOB_NAME_PATTERN.fullmatch(value):
        raise _Malformed(path, "not a SageMaker training job name")
    return value


def _job_name_from_arn(value: str, path: str) -> str:
    match = JOB_ARN_PATTERN.fullmatch(value) if len(value) <= ARN_MAX_LENGTH else None
    if match is None:
        raise _Malformed(path, "not a SageMaker training job ARN")
    return match.group("name")


def _checked_rule_name(value: str, path: str) -> str:
    if not RULE_NAME_PATTERN.fullmatch(value):
        raise _Malformed(path, "not a rule configuration name autostop accepts (letters, digits, _.:=+@/-)")
    return value


def _agreeing_job_name(candidates: Iterable[tuple[str, str]]) -> str:
    """All the places an event names its job must agree; at least one must name it."""
    named = list(candidates)
    if not named:
        raise _Malformed("detail", "names no training job (TrainingJobName, TrainingJobArn or resources)")
    first_path, first_name = named[0]
    for path, name in named[1:]:
        if name != first_name:
            raise _Malformed(path, f"names job {name!r} but {first_path} names {first_name!r}")
    return first_name


def _timestamp_is_valid(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and len(value) <= TIMESTAMP_MAX_LENGTH


def _step_from_details(status_details: str) -> int | None:
    match = STEP_IN_DETAILS_PATTERN.search(status_details)
    if match is None:
        return None
    step = int(match.group("step"))
    return step if step <= MAX_STEP else None


def _rule_findings(
    detail: Mapping[object, object], key: str, origin: FindingOrigin, step: int | None
) -> list[RuleFinding]:
    findings: list[RuleFinding] = []
    for index, entry in enumerate(_optional_list(detail, key, "detail", MAX_RULE_STATUSES)):
        path = f"detail.{key}[{index}]"
        if not isinstance(entry, Mapping):
            raise _Malformed(path, f"expected an object, got {_describe_type(entry)}")
        rule_name = _optional_string(entry, "RuleConfigurationName", path, 256)
        status = _optional_string(entry, "RuleEvaluationStatus", path, STATUS_MAX_LENGTH)
        if rule_name is None or status is None:
            raise _Malformed(path, "needs RuleConfigurationName and RuleEvaluationStatus")
        _checked_rule_name(rule_name, f"{path}.RuleConfigurationName")
        details = _optional_string(entry, "StatusDetails", path, STATUS_DETAILS_MAX_LENGTH) or ""
        arn = _optional_string(entry, "RuleEvaluationJobArn", path, ARN_MAX_LENGTH)
        if arn is not None and not arn.startswith("arn:"):
            raise _Malformed(f"{path}.RuleEvaluationJobArn", "not an ARN")
        modified = entry.get("LastModifiedTime")
        if modified is not None and not _timestamp_is_valid(modified):
            raise _Malformed(f"{path}.LastModifiedTime", "expected epoch milliseconds or an ISO-8601 string")
        finding_step = step if step is not None else _step_from_details(details)
        findings.append(RuleFinding(rule_name, status, origin, details.strip(), finding_step))
    return findings


def _interpret_job_event(
    event: Mapping[object, object], detail: Mapping[object, object], source: EventSource
) -> EventFacts:
    """SageMaker state change and in-container events: same ``detail`` shape, same code."""
    candidates: list[tuple[str, str]] = []
    name = _optional_string(detail, "TrainingJobName", "detail", JOB_NAME_MAX_LENGTH)
    if name is not None:
        candidates.append(("detail.TrainingJobName", _checked_job_name(name, "detail.TrainingJobName")))
    arn = _optional_string(detail, "TrainingJobArn", "detail", ARN_MAX_LENGTH)
    if arn is not None:
        candidates.append(("detail.TrainingJobArn", _job_name_from_arn(arn, "detail.TrainingJobArn")))
    for index, resource in enumerate(_optional_list(event, "resources", "event", MAX_RESOURCES)):
        path = f"resources[{index}]"
        if not isinstance(resource, str) or len(resource) > ARN_MAX_LENGTH:
            raise _Malformed(path, "expected an ARN string")
        match = JOB_ARN_PATTERN.fullmatch(resource)
        if match is not None:
            candidates.append((path, match.group("name")))
    job_name = _agreeing_job_name(candidates)

    job_status = None
    if source is EventSource.SAGEMAKER:
        job_status = _optional_string(detail, "TrainingJobStatus", "detail", STATUS_MAX_LENGTH)

    step = None
    if source is EventSource.TRAINING:
        raw_step = detail.get("Step")
        if raw_step is not None:
            if isinstance(raw_step, bool) or not isinstance(raw_step, int) or not 0 <= raw_step <= MAX_STEP:
                raise _Malformed("detail.Step", "expected a non-negative integer")
            step = raw_step

    findings = _rule_findings(detail, "DebugRuleEvaluationStatuses", FindingOrigin.DEBUGGER, step)
    findings += _rule_findings(detail, "ProfilerRuleEvaluationStatuses", FindingOrigin.PROFILER, step)
    return EventFacts(source, job_name, tuple(findings), job_status, _event_id(event))


def _jobs_in_alarm_metrics(detail: Mapping[object, object]) -> list[tuple[str, str]]:
    """Training jobs named by the alarm's metric dimensions: ``Host=<job>/algo-N`` or ``TrainingJobName``."""
    jobs: list[tuple[str, str]] = []
    configuration = _optional_mapping(detail, "configuration", "detail")
    if configuration is None:
        return jobs
    for index, metric_entry in enumerate(
        _optional_list(configuration, "metrics", "detail.configuration", MAX_ALARM_METRICS)
    ):
        path = f"detail.configuration.metrics[{index}]"
        if not isinstance(metric_entry, Mapping):
            raise _Malformed(path, f"expected an object, got {_describe_type(metric_entry)}")
        metric_stat = _optional_mapping(metric_entry, "metricStat", path)
        if metric_stat is None:
            continue  # a metric-math expression: names no job
        metric = _optional_mapping(metric_stat, "metric", f"{path}.metricStat")
        if metric is None:
            continue
        dimensions_path = f"{path}.metricStat.metric"
        dimensions = _optional_mapping(metric, "dimensions", dimensions_path)
        if dimensions is None:
            continue
        if len(dimensions) > MAX_DIMENSIONS:
            raise _Malformed(f"{dimensions_path}.dimensions", f"more than {MAX_DIMENSIONS} dimensions")
        host = _optional_string(
            dimensions, "Host", f"{dimensions_path}.dimensions", DIMENSION_VALUE_MAX_LENGTH
        )
        if host is not None:
            match = HOST_PATTERN.fullmatch(host)
            if match is None:
                raise _Malformed(f"{dimensions_path}.dimensions.Host", "expected '<training job>/algo-<N>'")
            jobs.append((f"{dimensions_path}.dimensions.Host", match.group("job")))
        job = _optional_string(
            dimensions, "TrainingJobName", f"{dimensions_path}.dimensions", DIMENSION_VALUE_MAX_LENGTH
        )
        if job is not None:
            path_to_job = f"{dimensions_path}.dimensions.TrainingJobName"
            jobs.append((path_to_job, _checked_job_name(job, path_to_job)))
    return jobs


def _interpret_alarm_event(
    event: Mapping[object, object], detail: Mapping[object, object], config: Config
) -> EventFacts | IgnoredEvent:
    alarm_name = _optional_string(detail, "alarmName", "detail", ALARM_NAME_MAX_LENGTH)
    if alarm_name is None:
        raise _Malformed("detail.alarmName", "missing")
    if not alarm_name.startswith(config.alarm_prefix):
        return IgnoredEvent(
            Reason.FOREIGN_EVENT,
            f"alarm name does not start with {config.alarm_prefix!r}",
            EventSource.CLOUDWATCH,
        )
    job_part, slash, rule_part = alarm_name.removeprefix(config.alarm_prefix).partition("/")
    if not slash:
        raise _Malformed("detail.alarmName", "expected '<prefix><training job>/<rule name>'")
    named_job = _checked_job_name(job_part, "detail.alarmName (job part)")
    rule_name = _checked_rule_name(rule_part, "detail.alarmName (rule part)")

    state = _optional_mapping(detail, "state", "detail")
    if state is None:
        raise _Malformed("detail.state", "missing")
    value = _optional_string(state, "value", "detail.state", STATUS_MAX_LENGTH)
    reason = _optional_string(state, "reason", "detail.state", STATUS_DETAILS_MAX_LENGTH) or ""
    metric_jobs = _jobs_in_alarm_metrics(detail)
    if not metric_jobs:
        raise _Malformed(
            "detail.configuration.metrics", "no metric has a Host or TrainingJobName dimension naming the job"
        )
    job_name = _agreeing_job_name([*metric_jobs, ("detail.alarmName", named_job)])
    if value != ALARM_STATE:
        return IgnoredEvent(
            Reason.ALARM_NOT_IN_ALARM,
            f"alarm state is {value!r}, not {ALARM_STATE!r}",
            EventSource.CLOUDWATCH,
            job_name,
        )
    finding = RuleFinding(rule_name, ISSUES_FOUND, FindingOrigin.ALARM, reason.strip(), None)
    return EventFacts(EventSource.CLOUDWATCH, job_name, (finding,), None, _event_id(event))


def _event_id(event: Mapping[object, object]) -> str | None:
    value = event.get("id")
    if isinstance(value, str) and 0 < len(value) <= EVENT_ID_MAX_LENGTH:
        return value
    return None


def interpret_event(event: object, config: Config) -> EventFacts | IgnoredEvent:
    """Read an EventBridge event of one of the three kinds into ``EventFacts``, or say why it is ignored.

    Never raises: whatever the input (wrong types, huge strings, other sources), the answer is an
    ``IgnoredEvent`` whose ``detail`` names the offending field without echoing its value.
    """
    try:
        if not isinstance(event, Mapping):
            return IgnoredEvent(
                Reason.MALFORMED_EVENT, f"event: expected an object, got {_describe_type(event)}"
            )
        source = _optional_string(event, "source", "event", 256)
        detail_type = _optional_string(event, "detail-type", "event", 256)
        if source is None or detail_type is None:
            return IgnoredEvent(Reason.MALFORMED_EVENT, "event: needs source and detail-type")
        known_sources = {member.value: member for member in EventSource}
        if source not in known_sources or DETAIL_TYPES[known_sources[source]] != detail_type:
            return IgnoredEvent(
                Reason.FOREIGN_EVENT, "not one of the three event kinds this function handles"
            )
        kind = known_sources[source]
        detail = _optional_mapping(event, "detail", "event")
        if detail is None:
            return IgnoredEvent(Reason.MALFORMED_EVENT, "event.detail: missing")
        if kind is EventSource.CLOUDWATCH:
            return _interpret_alarm_event(event, detail, config)
        return _interpret_job_event(event, detail, kind)
    except _Malformed as problem:
        return IgnoredEvent(Reason.MALFORMED_EVENT, str(problem))


def summarize_event(event: object) -> dict[str, str]:
    """A bounded, log-safe summary of an event (source, detail-type, id), never the whole, maybe huge, one."""
    summary: dict[str, str] = {}
    fields = event if isinstance(event, Mapping) else {}
    for key in ("source", "detail-type", "id"):
        value = fields.get(key)
        if isinstance(value, str):
            summary[key] = value[:128] + ("..." if len(value) > 128 else "")
        elif value is not None:
            summary[key] = f"<{_describe_type(value)}>"
    if not isinstance(event, Mapping):
        summary["type"] = _describe_type(event)
    return summary


# --- Decisions ---


@dataclasses.dataclass(frozen=True)
class Decision:
    """The answer: what to do with which job, why, and (for a stop) the rule that triggers it."""

    action: Action
    reason: Reason
    detail: str
    job_name: str | None = None
    source: EventSource | None = None
    finding: RuleFinding | None = None

    @classmethod
    def skip(cls, reason: Reason, detail: str, facts: EventFacts | None = None) -> Decision:
        return cls(
            Action.SKIP, reason, detail, facts.job_name if facts else None, facts.source if facts else None
        )

    @property
    def rule_name(self) -> str | None:
        return self.finding.rule_name if self.finding else None

    def to_dict(self) -> dict[str, object]:
        """JSON-able summary: the handler's return value and its structured log line."""
        return {
            "action": self.action.value,
            "reason": self.reason.value,
            "job": self.job_name,
            "rule": self.rule_name,
            "step": self.finding.step if self.finding else None,
            "source": self.source.value if self.source else None,
            "detail": self.detail,
        }


def screen(facts: EventFacts, config: Config) -> Decision | None:
    """Skip early on what the event alone proves; ``None`` means "look the job up, then ``decide``".

    Only skips are decided here: an event is stale and untrusted, so a stop always waits for
    ``DescribeTrainingJob`` and ``ListTags``. The states trusted from the event (Stopping, Stopped,
    Completed, Failed, Deleting) never lead back to InProgress, so a late or repeated event cannot mislead.
    """
    if facts.job_status in NOT_RUNNING_STATUSES:
        return Decision.skip(
            Reason.JOB_NOT_IN_PROGRESS, f"the event says the job is {facts.job_status}", facts
        )
    if not config.job_name_in_scope(facts.job_name):
        return Decision.skip(
            Reason.OUT_OF_SCOPE_PREFIX, f"job name does not start with {config.job_prefix!r}", facts
        )
    issues = facts.issues
    if not issues:
        return Decision.skip(Reason.NO_ISSUES_FOUND, "no rule reports IssuesFound", facts)
    if not any(config.stops_rule(finding.rule_name) for finding in issues):
        names = ", ".join(sorted({finding.rule_name for finding in issues}))
        return Decision.skip(
            Reason.RULE_NOT_STOPPING, f"issues found by rules that do not stop: {names}", facts
        )
    return None


def decide(
    facts: EventFacts, description: Mapping[str, object] | None, tags: Mapping[str, str], config: Config
) -> Decision:
    """Stop, dry run or skip, from the event's facts and the job as it is now.

    ``description`` is the ``DescribeTrainingJob`` response (``None`` when the job does not exist) and
    ``tags`` the job's tags as a dict (see ``tags_from_list``). A stop needs all of: an ``IssuesFound``
    status for a stopping rule in the event, a description of that very job (name and ARN agree), the job
    in scope (name prefix and opt-in tag) and ``TrainingJobStatus == InProgress`` in the description. The
    first stopping rule, in event order, is the one recorded.
    """
    early = screen(facts, config)
    if early is not None:
        return early
    if description is None:
        return Decision.skip(Reason.JOB_NOT_FOUND, "DescribeTrainingJob found no such job", facts)
    described_name = description.get("TrainingJobName")
    described_arn = description.get("TrainingJobArn")
    status = description.get("TrainingJobStatus")
    arn_match = JOB_ARN_PATTERN.fullmatch(described_arn) if isinstance(described_arn, str) else None
    if (
        described_name != facts.job_name
        or arn_match is None
        or arn_match.group("name") != facts.job_name
        or not isinstance(status, str)
    ):
        return Decision.skip(
            Reason.MALFORMED_DESCRIPTION, "the description lacks the job's name, ARN or status", facts
        )
    if not config.tags_in_scope(tags):
        return Decision.skip(
            Reason.OUT_OF_SCOPE_TAG, f"job is not tagged {config.tag_key}={config.tag_value}", facts
        )
    if status != IN_PROGRESS:
        return Decision.skip(Reason.JOB_NOT_IN_PROGRESS, f"the job is {status[:STATUS_MAX_LENGTH]}", facts)
    finding = next(finding for finding in facts.issues if config.stops_rule(finding.rule_name))
    if config.dry_run:
        return Decision(
            Action.DRY_RUN,
            Reason.DRY_RUN,
            f"dry run: rule {finding.rule_name} found issues; the job would be stopped",
            facts.job_name,
            facts.source,
            finding,
        )
    return Decision(
        Action.STOP,
        Reason.ISSUES_FOUND,
        f"rule {finding.rule_name} found issues",
        facts.job_name,
        facts.source,
        finding,
    )


# --- Helpers for acting on a decision ---


def tags_from_list(items: object) -> dict[str, str]:
    """``ListTags``' ``[{"Key": ..., "Value": ...}]`` as a dict; entries of the wrong shape are left out."""
    tags: dict[str, str] = {}
    if not isinstance(items, list):
        return tags
    for item in items:
        if isinstance(item, Mapping):
            key, value = item.get("Key"), item.get("Value", "")
            if isinstance(key, str) and isinstance(value, str):
                tags[key] = value
    return tags


def stop_tags(decision: Decision, stopped_at: datetime.datetime) -> dict[str, str]:
    """The three tags recorded on a stopped job (and only these: the IAM policy allows exactly these keys)."""
    if decision.action is not Action.STOP or decision.finding is None or decision.source is None:
        raise ValueError("stop tags are only for a STOP decision")
    if stopped_at.tzinfo is None:
        raise ValueError("stopped_at must be timezone-aware")
    return {
        TAG_STOPPED_BY_RULE: decision.finding.rule_name,
        TAG_STOPPED_AT: stopped_at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        TAG_STOP_SOURCE: decision.source.value,
    }


def job_alarm_prefix(job_name: str, config: Config) -> str:
    """``<alarm prefix><job>/``: the trailing slash keeps ``job-1``'s alarms apart from ``job-10``'s."""
    return f"{config.alarm_prefix}{job_name}/"


def is_job_alarm(alarm_name: str, job_name: str, config: Config) -> bool:
    return alarm_name.startswith(job_alarm_prefix(job_name, config))


def console_url(region: str, job_name: str) -> str:
    """The SageMaker console page of a training job."""
    return f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/jobs/{job_name}"
