"""The decision of the stop path: whether a training job must be stopped, and why not.

Why pure: the same rules must hold wherever a stop is decided. The Lambda (``app.py``) learns its facts
from EventBridge, ``DescribeTrainingJob`` and ``ListTags`` and acts with ``StopTrainingJob``; the local sweep
runner learns them from its own processes and acts with a signal. Both hand plain data to this module and
get plain data back, so the rules are tested once, without AWS, and cannot drift apart. Nothing here imports
boto3, reads the environment, the clock or the network (the caller passes ``now``).

The stop path's modules, each with one job: ``vocabulary`` (names, limits, patterns), ``settings``
(``Config``), ``events`` (the three event parsers), ``provenance`` (the in-container event's signature) and
this module (the decision and the helpers for acting on it). ``decision`` re-exports the others' public
names, so an adapter imports one module. The API, in the order an adapter uses it:

1. ``config_from_environment(env)`` -> ``Config`` (or ``ConfigError`` naming every bad setting).
2. ``interpret_event(event, config)`` -> ``EventFacts``, or ``IgnoredEvent`` with a ``Reason`` for events
   that are malformed, foreign, or carry nothing to act on. It never raises, whatever the input.
3. ``screen(facts, config)`` -> an early skip ``Decision``, or ``None`` when the job must be looked up.
   It lets an adapter avoid AWS calls for the bulk of events (state changes without an issue).
4. ``decide(facts, description, tags, config, now=...)`` -> ``Decision``: ``STOP``, ``DRY_RUN`` (would
   stop) or ``SKIP``, with the reason and the rule. ``decide`` applies ``screen`` itself, so it is complete
   alone; an in-container event must also carry a valid signature from the job it names.
5. Helpers for acting: ``stop_tags``, ``audit_pending``/``recorded_stop`` (completing a cut-short audit
   trail), ``job_alarm_prefix``/``is_job_alarm``, ``console_url``.
"""

# ruff: noqa: F405 (the vocabulary's names come in by the re-exporting star import)
from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping

from . import provenance
from .events import EventFacts as EventFacts
from .events import IgnoredEvent as IgnoredEvent
from .events import RuleFinding as RuleFinding
from .events import RungReport as RungReport
from .events import interpret_event as interpret_event
from .events import interpret_rung_report as interpret_rung_report
from .events import is_rung_report as is_rung_report
from .events import summarize_event as summarize_event
from .settings import Config as Config
from .settings import ConfigError as ConfigError
from .settings import config_from_environment as config_from_environment
from .vocabulary import *  # noqa: F403 (re-exported: adapters import ``decision`` alone)

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
    facts: EventFacts,
    description: Mapping[str, object] | None,
    tags: Mapping[str, str],
    config: Config,
    *,
    now: datetime.datetime,
) -> Decision:
    """Stop, dry run or skip, from the event's facts and the job as it is now.

    ``description`` is the ``DescribeTrainingJob`` response (``None`` when the job does not exist) and
    ``tags`` the job's tags as a dict (see ``tags_from_list``). A stop needs all of: an ``IssuesFound``
    status for a stopping rule in the event, a description of that very job (name and ARN agree), the job
    in scope (name prefix and opt-in tag) and ``TrainingJobStatus == InProgress`` in the description. An
    in-container event must also verify with the job's own key, signed within the window around ``now``
    (``provenance``). The first stopping rule, in event order, is the one recorded. Names are compared
    without case where the description's ARN may spell them lowercased.
    """
    early = screen(facts, config)
    if early is not None:
        return early
    if description is None:
        return Decision.skip(Reason.JOB_NOT_FOUND, "DescribeTrainingJob found no such job", facts)
    status = described_status(description, facts.job_name)
    if status is None:
        return Decision.skip(
            Reason.MALFORMED_DESCRIPTION, "the description lacks the job's name, ARN or status", facts
        )
    if facts.source is EventSource.TRAINING:
        finding = facts.issues[0] if len(facts.findings) == 1 and facts.issues else None
        problem = (
            "a signed event carries exactly one IssuesFound status"
            if finding is None and facts.signature is not None
            else provenance.problem(
                job_name=facts.job_name,
                rule_name=finding.rule_name if finding else "",
                status=finding.status if finding else "",
                step=finding.step if finding else None,
                provenance=facts.signature,
                description=description,
                now=now,
            )
        )
        if problem is not None:
            return Decision.skip(Reason.UNVERIFIED_EVENT, problem, facts)
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


def described_status(description: Mapping[str, object], job_name: str) -> str | None:
    """The ``TrainingJobStatus`` of a description of ``job_name`` (its name and ARN both name that job),
    else ``None``: a description of another job, or one lacking these fields, proves nothing."""
    described_name = description.get("TrainingJobName")
    described_arn = description.get("TrainingJobArn")
    status = description.get("TrainingJobStatus")
    arn_match = JOB_ARN_PATTERN.fullmatch(described_arn) if isinstance(described_arn, str) else None
    if (
        not isinstance(described_name, str)
        or not same_job_name(described_name, job_name)
        or arn_match is None
        or not same_job_name(arn_match.group("name"), job_name)
        or not isinstance(status, str)
    ):
        return None
    return status


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


def audit_pending(description: Mapping[str, object] | None, tags: Mapping[str, str]) -> bool:
    """autostop asked SageMaker to stop the job (``stop-requested-at``), the job is no longer running, and
    the trail was never closed (no ``audit`` tag): a failure after the stop cut it short, and the retried
    event must write the stop tags and the notification. A job stopped by someone else has no marker."""
    status = description.get("TrainingJobStatus") if description is not None else None
    return status in NOT_RUNNING_STATUSES and TAG_STOP_REQUESTED_AT in tags and TAG_AUDIT not in tags


def recorded_stop(facts: EventFacts, config: Config) -> Decision | None:
    """The STOP this event asked for (its first issue of a stopping rule), to complete its audit trail."""
    finding = next((found for found in facts.issues if config.stops_rule(found.rule_name)), None)
    if finding is None:
        return None
    return Decision(
        Action.STOP,
        Reason.ISSUES_FOUND,
        f"rule {finding.rule_name} found issues",
        facts.job_name,
        facts.source,
        finding,
    )


def job_alarm_prefix(job_name: str, config: Config) -> str:
    """``<alarm prefix><job>/``: the trailing slash keeps ``job-1``'s alarms apart from ``job-10``'s."""
    return f"{config.alarm_prefix}{job_name}/"


def is_job_alarm(alarm_name: str, job_name: str, config: Config) -> bool:
    return alarm_name.startswith(job_alarm_prefix(job_name, config))


def console_url(region: str, job_name: str) -> str:
    """The SageMaker console page of a training job."""
    return f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/jobs/{job_name}"
