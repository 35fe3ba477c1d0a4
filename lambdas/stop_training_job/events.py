"""Event parsers: an EventBridge event of one of the three kinds -> ``EventFacts`` or ``IgnoredEvent``;
a cross-job rung report (``Cross-Job Rung Report``) -> ``RungReport`` or ``IgnoredEvent``.

Every field of an event is optional and untrusted. Values are checked for type and for the lengths and
patterns the AWS APIs allow; anything outside them makes the event ``malformed_event``: skipped with a
reason that names the field, never a stop. Pure: no AWS SDK, no environment, no clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from .provenance import Signature
from .settings import Config
from .vocabulary import (
    ALARM_NAME_MAX_LENGTH,
    ALARM_STATE,
    ARN_MAX_LENGTH,
    DETAIL_TYPES,
    DIMENSION_VALUE_MAX_LENGTH,
    EVENT_ID_MAX_LENGTH,
    FINISHED_STATUSES,
    HOST_PATTERN,
    ISSUES_FOUND,
    JOB_ARN_PATTERN,
    JOB_NAME_MAX_LENGTH,
    JOB_NAME_PATTERN,
    MAX_ALARM_METRICS,
    MAX_DIMENSIONS,
    MAX_RESOURCES,
    MAX_RULE_STATUSES,
    MAX_STEP,
    OBJECTIVE_MAX_LENGTH,
    OBJECTIVE_METRIC_PATTERN,
    OBJECTIVE_PATTERN,
    RULE_NAME_PATTERN,
    RUNG_REPORT_DETAIL_TYPE,
    SIGNATURE_ALGORITHM,
    SIGNATURE_PATTERN,
    STATUS_DETAILS_MAX_LENGTH,
    STATUS_MAX_LENGTH,
    STEP_IN_DETAILS_PATTERN,
    TIMESTAMP_MAX_LENGTH,
    TRAINING_SOURCE,
    EventSource,
    FindingOrigin,
    Reason,
    same_job_name,
)


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
    # In-container events only: the signature to verify against the job's key (``provenance``).
    signature: Signature | None = None

    @property
    def issues(self) -> tuple[RuleFinding, ...]:
        return tuple(finding for finding in self.findings if finding.issues_found)

    @property
    def job_finished(self) -> bool:
        """The event says the job has finished: its per-job alarms can be deleted."""
        return self.job_status in FINISHED_STATUSES


@dataclasses.dataclass(frozen=True)
class RungReport:
    """What a valid rung report says: the job's objective (``metric``) at ``rung``, measured at ``step``.

    ``objective_text`` is the value as the event carries and signs it; ``objective`` is its number (NaN or
    infinite for a diverged job, which ranks last). Nothing here is trusted until ``provenance`` verifies.
    """

    job_name: str
    rung: int
    step: int
    metric: str
    objective_text: str
    signature: Signature | None = None
    event_id: str | None = None
    source: EventSource = EventSource.TRAINING

    @property
    def objective(self) -> float:
        return float(self.objective_text)


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
        if not same_job_name(name, first_name):
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


def _named_job(event: Mapping[object, object], detail: Mapping[object, object]) -> str:
    """The job a SageMaker or in-container event names: ``TrainingJobName``, ``TrainingJobArn`` and the
    training-job ARNs in ``resources``, which must all agree."""
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
    return _agreeing_job_name(candidates)


def _interpret_job_event(
    event: Mapping[object, object], detail: Mapping[object, object], source: EventSource
) -> EventFacts:
    """SageMaker state change and in-container events: same ``detail`` shape, same code."""
    job_name = _named_job(event, detail)

    job_status = None
    if source is EventSource.SAGEMAKER:
        job_status = _optional_string(detail, "TrainingJobStatus", "detail", STATUS_MAX_LENGTH)

    step = None
    signature = None
    if source is EventSource.TRAINING:
        raw_step = detail.get("Step")
        if raw_step is not None:
            if isinstance(raw_step, bool) or not isinstance(raw_step, int) or not 0 <= raw_step <= MAX_STEP:
                raise _Malformed("detail.Step", "expected a non-negative integer")
            step = raw_step
        signature = _signature(detail)

    findings = _rule_findings(detail, "DebugRuleEvaluationStatuses", FindingOrigin.DEBUGGER, step)
    findings += _rule_findings(detail, "ProfilerRuleEvaluationStatuses", FindingOrigin.PROFILER, step)
    if source is EventSource.TRAINING:
        # The container's StatusDetails is free text nobody signs: it never reaches a notification. The
        # signed fields (rule, status, step) say all the operator needs.
        findings = [dataclasses.replace(finding, status_details="") for finding in findings]
        if signature is not None and len(findings) != 1:
            raise _Malformed(
                "detail.DebugRuleEvaluationStatuses", "a signed event carries exactly one status"
            )
    return EventFacts(source, job_name, tuple(findings), job_status, _event_id(event), signature)


def _signature(detail: Mapping[object, object]) -> Signature | None:
    """``detail.Provenance`` of an in-container event, checked for shape only (``provenance`` verifies)."""
    provenance = _optional_mapping(detail, "Provenance", "detail")
    if provenance is None:
        return None
    algorithm = _optional_string(provenance, "Algorithm", "detail.Provenance", 32)
    signed_at = _optional_string(provenance, "SignedAt", "detail.Provenance", TIMESTAMP_MAX_LENGTH)
    value = _optional_string(provenance, "Signature", "detail.Provenance", 64)
    if algorithm != SIGNATURE_ALGORITHM:
        raise _Malformed("detail.Provenance.Algorithm", f"expected {SIGNATURE_ALGORITHM}")
    if signed_at is None or value is None or not SIGNATURE_PATTERN.fullmatch(value):
        raise _Malformed("detail.Provenance", "needs SignedAt and a hex HMAC-SHA256 Signature")
    return Signature(signed_at=signed_at, value=value)


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


def is_rung_report(event: object) -> bool:
    """Whether the event claims to be a cross-job rung report (``interpret_rung_report`` checks the rest)."""
    return (
        isinstance(event, Mapping)
        and event.get("source") == TRAINING_SOURCE
        and event.get("detail-type") == RUNG_REPORT_DETAIL_TYPE
    )


def _step_count(detail: Mapping[object, object], key: str) -> int:
    value = detail.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_STEP:
        raise _Malformed(f"detail.{key}", "expected a positive integer")
    return value


def interpret_rung_report(event: object) -> RungReport | IgnoredEvent:
    """Read a cross-job rung report (docs/events.md section 4) into ``RungReport``, or say why it is ignored.

    Never raises, like ``interpret_event``. Shape only: whether the job signed it, and whether the rung is
    one of its sweep's, is checked against the job's description (``rung_reports.admit``).
    """
    try:
        if not is_rung_report(event) or not isinstance(event, Mapping):
            return IgnoredEvent(Reason.FOREIGN_EVENT, "not a cross-job rung report")
        detail = _optional_mapping(event, "detail", "event")
        if detail is None:
            return IgnoredEvent(Reason.MALFORMED_EVENT, "event.detail: missing", EventSource.TRAINING)
        job_name = _named_job(event, detail)
        rung = _step_count(detail, "Rung")
        step = _step_count(detail, "Step")
        if step < rung:
            raise _Malformed("detail.Step", "a rung is reported at or after it, never before")
        metric = _optional_string(detail, "ObjectiveMetric", "detail", 128)
        if metric is None or not OBJECTIVE_METRIC_PATTERN.fullmatch(metric):
            raise _Malformed("detail.ObjectiveMetric", "expected validation:<metric>")
        objective = _optional_string(detail, "Objective", "detail", OBJECTIVE_MAX_LENGTH)
        if objective is None or not OBJECTIVE_PATTERN.fullmatch(objective):
            raise _Malformed("detail.Objective", "expected a number as text (or nan, inf, -inf)")
        return RungReport(job_name, rung, step, metric, objective, _signature(detail), _event_id(event))
    except _Malformed as problem:
        return IgnoredEvent(Reason.MALFORMED_EVENT, str(problem), EventSource.TRAINING)


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
