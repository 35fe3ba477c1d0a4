"""The stop Lambda's AWS adapter: one EventBridge event in; StopTrainingJob, AddTags, SNS and metrics out.

Every judgement lives in ``decision`` (pure, shared with the local sweep runner). This module only learns the
facts the decision needs (``DescribeTrainingJob``, ``ListTags``) and carries the decision out:

    interpret -> (finished job: delete its per-job alarms) -> screen -> Describe + ListTags -> decide
      -> STOP: AddTags (stop-requested-at) -> StopTrainingJob -> AddTags (stop tags) -> SNS
               -> AddTags (audit=notified)
         DRY_RUN: SNS only      SKIP: nothing (or, for a job autostop stopped whose trail was cut short:
                                the stop tags, SNS and audit=notified)
      -> EMF metrics and one structured log line; the outcome dict is returned.

A cross-job rung report (``rung_reports``) takes the same path with one step more: screen -> Describe +
ListTags -> admit (signed by the job, launched for cross-job stopping) -> record it in the sweep-state table
(``rung_store``: PutItem, Query) -> judge (``cross_job``) -> the same STOP / DRY_RUN / SKIP as above, under
the rule name ``CrossJob``. A report that is not admitted writes nothing.

The audit trail always lands: ``autostop:stop-requested-at`` is written before ``StopTrainingJob`` (a
failure there stops nothing and the retried event starts over), ``autostop:audit`` after the stop tags and
the notification. A retry that finds the job no longer InProgress with the first marker but without the
second (AddTags or SNS failed after the stop) writes the stop tags and the notification, then closes the
trail. Only an event that passes every other check (scope, stopping rule, an in-container event's
signature) can do that, so no forged event sends mail. A failure between the notification and the closing
tag sends the notification again on the retry: at least once, never lost.

Failure policy: malformed or foreign events are a logged skip (never retried, never a stop). Throttling and
5xx are retried by botocore (standard mode, ``MAX_ATTEMPTS``), then raised, so EventBridge retries the event
and its dead-letter queue keeps what still fails. A retried event is harmless: a job that is already
Stopping/Stopped/Completed/Failed is a no-op success.

boto3 is imported on first use, not at import: most events (state changes without an issue, malformed or
foreign events) are settled by ``decision.screen`` without any AWS call, and the module import is the
cold-start cost every container pays (``bench/stop_handler.py`` measures it).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Mapping
from typing import Any, Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from . import cross_job, decision, rung_reports
from .rung_store import DynamoDbRungStore

# Fixed by CONTRACTS (the account-wide "rule issues" alarm reads namespace Autostop, service dimension).
SERVICE_NAME: Final = "stop-training-job"
METRICS_NAMESPACE: Final = "Autostop"

# botocore retry policy: standard mode (exponential backoff with jitter, throttling-aware), attempts in total.
MAX_ATTEMPTS = 3
CONNECT_TIMEOUT_S: Final = 2
READ_TIMEOUT_S: Final = 5
DELETE_ALARMS_BATCH: Final = 100  # DeleteAlarms accepts at most 100 names per call.
SNS_SUBJECT_MAX_LENGTH: Final = 100

ACCESS_DENIED_CODES: Final = frozenset({"AccessDeniedException", "AccessDenied"})
NOT_FOUND_CODES: Final = frozenset({"ResourceNotFound", "ResourceNotFoundException"})

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)

_clients: dict[str, Any] = {}


def _client(service_name: str) -> Any:
    """A boto3 client per service, created on first use and kept for the container's lifetime."""
    client = _clients.get(service_name)
    if client is None:
        import boto3
        from botocore.config import Config as BotocoreConfig

        client = boto3.client(
            service_name,
            config=BotocoreConfig(
                retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
                connect_timeout=CONNECT_TIMEOUT_S,
                read_timeout=READ_TIMEOUT_S,
            ),
        )
        _clients[service_name] = client
    return client


def reset_clients() -> None:
    """Forget the cached clients. Lambda never needs this (a container's endpoints and credentials chain do
    not change); tests point botocore at a different local endpoint, or retry policy, per test."""
    _clients.clear()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: object, context: LambdaContext) -> dict[str, object]:
    """Handle one EventBridge event (SageMaker state change, in-container rule event, alarm change, or
    cross-job rung report)."""
    try:
        config = decision.config_from_environment(os.environ)
    except decision.ConfigError as error:
        logger.error(
            "invalid settings: the stop function cannot decide anything", extra={"problem": str(error)}
        )
        raise
    facts = _interpret(event, config)
    if isinstance(facts, decision.IgnoredEvent):
        return _finish(_ignored(facts), event=event)
    if isinstance(facts, decision.RungReport):
        return _handle_rung_report(facts, config)

    logger.append_keys(job=facts.job_name, source=facts.source.value, event_id=facts.event_id)
    _count_issues(facts)
    alarms_deleted = _delete_job_alarms(facts.job_name, config) if facts.job_finished else None

    verdict = decision.screen(facts, config)
    lookup = _Lookup()
    if verdict is None:
        lookup = _look_up(facts.job_name, facts.source)
        verdict = lookup.denied or decision.decide(
            facts, lookup.description, lookup.tags, config, now=datetime.datetime.now(datetime.UTC)
        )
    return _act(
        verdict, lookup, config, recorded=decision.recorded_stop(facts, config), alarms_deleted=alarms_deleted
    )


def _handle_rung_report(report: decision.RungReport, config: decision.Config) -> dict[str, object]:
    """Admit, record and judge a job's objective at a rung; stop it through the same path as a rule."""
    logger.append_keys(job=report.job_name, source=report.source.value, event_id=report.event_id)
    early = rung_reports.screen(report, config)
    if early is not None:
        return _finish(early)
    lookup = _look_up(report.job_name, report.source)
    if lookup.denied is not None:
        return _finish(lookup.denied)
    admitted = rung_reports.admit(
        report, lookup.description, lookup.tags, config, now=datetime.datetime.now(datetime.UTC)
    )
    if isinstance(admitted, decision.Decision):
        return _finish(admitted)
    if not config.sweep_table:
        # A deployment without the table cannot compare jobs: fail loudly (Errors alarm; the event is retried,
        # then kept in the dead-letter queue for a redrive once the setting is fixed).
        problem = f"{decision.ENV_SWEEP_TABLE} is not set: rung reports cannot be recorded"
        logger.error("invalid settings: the stop function cannot compare jobs", extra={"problem": problem})
        raise decision.ConfigError(problem)
    store = DynamoDbRungStore(_client("dynamodb"), config.sweep_table)
    peers = store.report(
        sweep=admitted.comparison.sweep, rung=report.rung, job=admitted.job_name, value=report.objective
    )
    judgement = cross_job.judge(admitted.settings, rung=report.rung, job=admitted.job_name, peers=peers)
    verdict = rung_reports.verdict(admitted, judgement, config)
    result = _act(verdict, lookup, config, recorded=rung_reports.recorded_stop(admitted, judgement))
    return {**result, "sweep": admitted.comparison.sweep, "rung": report.rung, "reported": judgement.reported}


def _ignored(ignored: decision.IgnoredEvent) -> decision.Decision:
    return decision.Decision(
        decision.Action.SKIP, ignored.reason, ignored.detail, ignored.job_name, ignored.source
    )


def _act(
    verdict: decision.Decision,
    lookup: _Lookup,
    config: decision.Config,
    *,
    recorded: decision.Decision | None,
    alarms_deleted: list[str] | None = None,
) -> dict[str, object]:
    """Carry the verdict out: the stop path, a dry run's notification, or completing a cut-short audit trail
    (``recorded``: the STOP this event asked for, when the job is no longer running)."""
    failure: Exception | None = None
    audit_completed = False
    if verdict.action is decision.Action.STOP:  # a STOP is only decided for a job whose ARN was checked
        verdict, failure = _stop(verdict, lookup.job_arn, config)
    elif verdict.action is decision.Action.DRY_RUN:
        _notify(verdict, config, added_tags=None)
    elif (
        verdict.reason is decision.Reason.JOB_NOT_IN_PROGRESS
        and recorded is not None
        and decision.audit_pending(lookup.description, lookup.tags)
    ):
        _write_trail(recorded, lookup.job_arn, config, existing_tags=lookup.tags)
        logger.info("completed the audit trail of a job autostop stopped", extra={"job": recorded.job_name})
        audit_completed = True
    result = _finish(verdict, alarms_deleted=alarms_deleted)
    if audit_completed:
        result["audit_completed"] = True
    if failure is not None:
        # The job IS stopped, tagged and counted; the notification or its marker failed after botocore's
        # retries. Raising makes the Errors alarm tell the operator; the retried event completes the trail.
        raise failure
    return result


def _interpret(
    event: object, config: decision.Config
) -> decision.EventFacts | decision.RungReport | decision.IgnoredEvent:
    """``interpret_event`` and ``interpret_rung_report`` never raise by design (property-tested). Should an
    event the tests never imagined make one raise anyway, the event is still a logged skip: retrying it could
    only fail the same way."""
    try:
        if decision.is_rung_report(event):
            return decision.interpret_rung_report(event)
        return decision.interpret_event(event, config)
    except Exception:
        logger.exception("event interpretation failed unexpectedly", extra=decision.summarize_event(event))
        return decision.IgnoredEvent(
            decision.Reason.MALFORMED_EVENT, "interpretation failed unexpectedly (see the logged exception)"
        )


@dataclasses.dataclass(frozen=True)
class _Lookup:
    """What ``DescribeTrainingJob`` and ``ListTags`` said (nothing when the event was settled without);
    ``denied``: the skip when IAM refused them (the job is not opted in)."""

    job_arn: str = ""
    description: dict[str, Any] | None = None
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    denied: decision.Decision | None = None


def _look_up(job_name: str, source: decision.EventSource) -> _Lookup:
    """The job as it is NOW (events are stale, repeated, out of order): one describe, then its tags."""
    sagemaker = _client("sagemaker")
    description: dict[str, Any] | None
    try:
        description = sagemaker.describe_training_job(TrainingJobName=job_name)
    except ClientError as error:
        if _is_access_denied(error):
            return _Lookup(denied=_access_denied(job_name, source, "DescribeTrainingJob"))
        if not _is_not_found(error):
            raise
        description = None

    job_arn = ""
    tags: dict[str, str] = {}
    if description is not None and isinstance(description.get("TrainingJobArn"), str):
        job_arn = str(description["TrainingJobArn"])
        try:
            for page in sagemaker.get_paginator("list_tags").paginate(ResourceArn=job_arn):
                tags.update(decision.tags_from_list(page.get("Tags")))
        except ClientError as error:
            if _is_access_denied(error):
                return _Lookup(denied=_access_denied(job_name, source, "ListTags"))
            if not _is_not_found(error):
                raise
            description = None
    return _Lookup(job_arn, description, tags)


def _access_denied(job_name: str, source: decision.EventSource, operation: str) -> decision.Decision:
    # IAM allows the SageMaker actions only on jobs carrying the opt-in tag (aws:ResourceTag condition), so
    # AccessDenied means "not opted in": out of scope, not an error.
    return decision.Decision(
        decision.Action.SKIP,
        decision.Reason.OUT_OF_SCOPE_ACCESS_DENIED,
        f"{operation} was denied: the job does not carry the opt-in tag the IAM policy requires",
        job_name,
        source,
    )


def _stop(
    verdict: decision.Decision, job_arn: str, config: decision.Config
) -> tuple[decision.Decision, Exception | None]:
    """AddTags (the stop tags), StopTrainingJob, the notification and its marker; returns the final
    decision and any failure after the stop (raised by the handler once the outcome is recorded)."""
    sagemaker = _client("sagemaker")
    job_name = str(verdict.job_name)
    # Before the stop: a failure here (raised) stops nothing, and the retried event starts over.
    _add_tags(job_arn, {decision.TAG_STOP_REQUESTED_AT: _timestamp()})
    try:
        sagemaker.stop_training_job(TrainingJobName=job_name)
    except ClientError as error:
        if _is_not_found(error):
            return _skipped(verdict, decision.Reason.JOB_NOT_FOUND, "StopTrainingJob: the job is gone"), None
        if _is_access_denied(error):
            reason = decision.Reason.OUT_OF_SCOPE_ACCESS_DENIED
            return _skipped(verdict, reason, "StopTrainingJob was denied: the job lost its opt-in tag"), None
        if _error_code(error) != "ValidationException":
            raise
        # SageMaker rejects stopping a job that is no longer InProgress (it finished, or another invocation
        # stopped it since we described it). Confirm with a fresh description rather than parse the message.
        status = _current_status(job_name)
        if status == decision.IN_PROGRESS:
            raise
        # autostop did not stop this job: the closing marker says so, and no retry claims a stop.
        _add_tags(job_arn, {decision.TAG_AUDIT: f"stop-rejected: the job was already {status}"[:256]})
        detail = f"StopTrainingJob was rejected: the job is already {status}"
        return _skipped(verdict, decision.Reason.JOB_NOT_IN_PROGRESS, detail), None

    try:
        _write_trail(verdict, job_arn, config)
    except (ClientError, BotoCoreError) as error:
        logger.exception("the job is stopped but its tags or notification failed (the retry completes them)")
        return verdict, error
    return verdict, None


def _write_trail(
    verdict: decision.Decision,
    job_arn: str,
    config: decision.Config,
    *,
    existing_tags: Mapping[str, str] | None = None,
) -> None:
    """The stop tags, the notification, then the closing marker: each step only after the one before.
    Stop tags a cut-short attempt already wrote are kept as they are (their time is the stop's)."""
    tags = decision.stop_tags(verdict, datetime.datetime.now(datetime.UTC))
    if existing_tags is not None and all(key in existing_tags for key in tags):
        tags = {key: existing_tags[key] for key in tags}
    _add_tags(job_arn, tags)
    _notify(verdict, config, added_tags=tags)
    _add_tags(job_arn, {decision.TAG_AUDIT: decision.AUDIT_NOTIFIED})


def _add_tags(job_arn: str, tags: dict[str, str]) -> None:
    _client("sagemaker").add_tags(
        ResourceArn=job_arn, Tags=[{"Key": key, "Value": value} for key, value in tags.items()]
    )


def _timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _skipped(verdict: decision.Decision, reason: decision.Reason, detail: str) -> decision.Decision:
    return dataclasses.replace(verdict, action=decision.Action.SKIP, reason=reason, detail=detail)


def _current_status(job_name: str) -> str:
    try:
        description = _client("sagemaker").describe_training_job(TrainingJobName=job_name)
    except ClientError as error:
        if _is_not_found(error):
            return "deleted"
        raise
    return str(description.get("TrainingJobStatus", "unknown"))


def _notify(verdict: decision.Decision, config: decision.Config, added_tags: dict[str, str] | None) -> None:
    """Tell the operator: job, rule, StatusDetails, console link; a dry run says so in subject and body."""
    if not config.topic_arn:
        logger.warning("no AUTOSTOP_TOPIC_ARN configured: notification not sent")
        return
    finding = verdict.finding
    job_name = str(verdict.job_name)
    rule_name = finding.rule_name if finding else "unknown"
    dry_run = verdict.action is decision.Action.DRY_RUN
    region = str(_client("sagemaker").meta.region_name)
    cause = f"rule {rule_name} found issues"
    if finding is not None and finding.origin is decision.FindingOrigin.CROSS_JOB:
        cause = f"{rule_name}: worse than its sweep's other jobs"
    if dry_run:
        subject = f"[DRY RUN] autostop would stop {job_name}: {cause}"
        headline = (
            f"DRY RUN: autostop would have stopped the SageMaker training job {job_name}. "
            "Nothing was stopped or tagged (AUTOSTOP_DRY_RUN=true)."
        )
    else:
        subject = f"autostop stopped {job_name}: {cause}"
        headline = f"autostop stopped the SageMaker training job {job_name}."
    lines = [
        headline,
        "",
        f"Job:           {job_name}",
        f"Rule:          {rule_name} ({finding.origin.value if finding else 'unknown'} rule)",
        f"Step:          {finding.step if finding and finding.step is not None else 'not reported'}",
        # In-container events carry no StatusDetails here (``events`` drops the unsigned free text); managed
        # Debugger and alarm events are written by AWS.
        f"StatusDetails: {(finding.status_details if finding else '') or 'not reported'}",
        f"Event source:  {verdict.source.value if verdict.source else 'unknown'}",
        f"Console:       {decision.console_url(region, job_name)}",
    ]
    if added_tags:
        lines.append("Tags added:    " + ", ".join(f"{key}={value}" for key, value in added_tags.items()))
    _client("sns").publish(
        TopicArn=config.topic_arn,
        Subject=subject[:SNS_SUBJECT_MAX_LENGTH],
        Message="\n".join(lines),
        MessageAttributes={
            "action": {"DataType": "String", "StringValue": verdict.action.value},
            "job": {"DataType": "String", "StringValue": job_name},
            "rule": {"DataType": "String", "StringValue": rule_name},
        },
    )


def _delete_job_alarms(job_name: str, config: decision.Config) -> list[str]:
    """Delete exactly this job's per-job alarms (``<prefix><job>/...``; never ``<prefix><job>0/...``)."""
    cloudwatch = _client("cloudwatch")
    prefix = decision.job_alarm_prefix(job_name, config)
    names: list[str] = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix):
        for alarm in page.get("MetricAlarms", []):
            name = alarm.get("AlarmName")
            # Re-checked here: the deletion must not depend on the server honouring the prefix filter.
            if isinstance(name, str) and decision.is_job_alarm(name, job_name, config):
                names.append(name)
    names.sort()
    for start in range(0, len(names), DELETE_ALARMS_BATCH):
        cloudwatch.delete_alarms(AlarmNames=names[start : start + DELETE_ALARMS_BATCH])
    if names:
        logger.info("deleted the finished job's alarms", extra={"alarms": names})
    return names


def _count_issues(facts: decision.EventFacts) -> None:
    """IssuesFound: rule issues reported for jobs not known to be finished (a signal, not distinct jobs)."""
    issues = facts.issues
    if not issues or facts.job_status in decision.NOT_RUNNING_STATUSES:
        return
    metrics.add_metric(name="IssuesFound", unit=MetricUnit.Count, value=len(issues))
    for rule_name in sorted({finding.rule_name for finding in issues}):
        with single_metric(
            name="IssuesFound",
            unit=MetricUnit.Count,
            value=1,
            namespace=METRICS_NAMESPACE,
            default_dimensions={"service": SERVICE_NAME},
        ) as metric:
            metric.add_dimension(name="rule", value=rule_name)


def _finish(
    verdict: decision.Decision, *, alarms_deleted: list[str] | None = None, event: object = None
) -> dict[str, object]:
    """Metrics and the one structured log line of the invocation; returns the outcome dict."""
    if verdict.action is decision.Action.STOP:
        metrics.add_metric(name="JobsStopped", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="StopSkipped", unit=MetricUnit.Count, value=1)
        with single_metric(
            name="StopSkipped",
            unit=MetricUnit.Count,
            value=1,
            namespace=METRICS_NAMESPACE,
            default_dimensions={"service": SERVICE_NAME},
        ) as metric:
            metric.add_dimension(name="reason", value=verdict.reason.value)
    result = verdict.to_dict()
    if alarms_deleted is not None:
        result["alarms_deleted"] = alarms_deleted
    if verdict.reason in (decision.Reason.MALFORMED_EVENT, decision.Reason.FOREIGN_EVENT):
        logger.warning("event ignored", extra={**result, "event": decision.summarize_event(event)})
    else:
        logger.info("decision", extra=result)
    return result


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_access_denied(error: ClientError) -> bool:
    return _error_code(error) in ACCESS_DENIED_CODES


def _is_not_found(error: ClientError) -> bool:
    # SageMaker answers a missing job with ValidationException "Requested resource not found." although its
    # model declares ResourceNotFound (aws/aws-sdk#165); accept both.
    code = _error_code(error)
    message = str(error.response.get("Error", {}).get("Message", "")).lower()
    return code in NOT_FOUND_CODES or (code == "ValidationException" and "not found" in message)
