"""The decision for a cross-job rung report: record it or not, then stop the job or let it go on.

A job of a sweep launched with ``cross_job`` reports its objective each time it reaches a rung, and with
``rejudge`` (the default) again at every later validation, naming the highest rung it has passed (the
training container, ``training/debugger/rung_reports.py``). The stop Lambda learns the job as it is now
(``DescribeTrainingJob``, ``ListTags``), then, with this module:

1. ``screen(report, config)``: a job outside the job prefix is skipped before any AWS call.
2. ``admit(report, description, tags, config, now=...)``: the report is recorded only if the job itself
   signed it (``provenance``: the rung, step, metric and objective are signed), the job is opted in, it was
   launched for cross-job stopping (``sweep_settings``: the ``autostop_cross_job`` hyperparameter) and the
   report fits those settings (the sweep's objective metric, one of its rungs). Anything else is a skip
   that writes nothing: a forged or malformed report never reaches the table.
3. The adapter records the admitted report (``rung_store``, first report wins) and judges the job against
   every objective recorded at that rung (``cross_job.judge``, unchanged).
4. ``verdict(admitted, judgement, config)``: ``SKIP`` when the job is no longer InProgress, or ranks well
   enough (or too few jobs reported yet); else ``DRY_RUN`` (the deployment's or the sweep's dry run) or
   ``STOP`` (rule ``CrossJob``, through the same stop path as a rule's).

Why record a verified report of a job that is no longer InProgress: its objective at that rung is still a
fact the sweep's other jobs are judged against (a late delivery of a report sent while it ran). Pure, like
``decision``: no AWS SDK, no environment, no clock.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping

from . import cross_job, provenance, sweep_settings
from .decision import Decision, described_status
from .events import RuleFinding, RungReport
from .settings import Config
from .vocabulary import CROSS_JOB_RULE, IN_PROGRESS, ISSUES_FOUND, Action, FindingOrigin, Reason

# A continuing job's status in the decision's finding (the rule found no issue with it).
NO_ISSUES_FOUND = "NoIssuesFound"


@dataclasses.dataclass(frozen=True)
class Admitted:
    """A verified report of a job launched for cross-job stopping: what to record, and how to judge."""

    report: RungReport
    job_name: str  # as DescribeTrainingJob spells it: the name recorded in the table
    status: str  # TrainingJobStatus now
    comparison: sweep_settings.SweepComparison

    @property
    def settings(self) -> cross_job.CrossJobSettings:
        return self.comparison.settings


def _skip(reason: Reason, detail: str, report: RungReport) -> Decision:
    return Decision(Action.SKIP, reason, detail, report.job_name, report.source)


def screen(report: RungReport, config: Config) -> Decision | None:
    """Skip a job outside the configured prefix before any lookup; ``None``: look the job up."""
    if not config.job_name_in_scope(report.job_name):
        return _skip(
            Reason.OUT_OF_SCOPE_PREFIX, f"job name does not start with {config.job_prefix!r}", report
        )
    return None


def admit(
    report: RungReport,
    description: Mapping[str, object] | None,
    tags: Mapping[str, str],
    config: Config,
    *,
    now: datetime.datetime,
) -> Admitted | Decision:
    """The report, admitted for recording, or the skip that says why it must not be recorded."""
    early = screen(report, config)
    if early is not None:
        return early
    if description is None:
        return _skip(Reason.JOB_NOT_FOUND, "DescribeTrainingJob found no such job", report)
    status = described_status(description, report.job_name)
    described_name = description.get("TrainingJobName")
    if status is None or not isinstance(described_name, str):
        return _skip(
            Reason.MALFORMED_DESCRIPTION, "the description lacks the job's name, ARN or status", report
        )
    problem = provenance.rung_report_problem(
        job_name=report.job_name,
        rung=report.rung,
        step=report.step,
        metric=report.metric,
        objective=report.objective_text,
        provenance=report.signature,
        description=description,
        now=now,
    )
    if problem is not None:
        return _skip(Reason.UNVERIFIED_EVENT, problem, report)
    if not config.tags_in_scope(tags):
        return _skip(
            Reason.OUT_OF_SCOPE_TAG, f"job is not tagged {config.tag_key}={config.tag_value}", report
        )
    try:
        comparison = sweep_settings.from_description(description)
    except sweep_settings.SweepSettingsError as error:
        return _skip(Reason.CROSS_JOB_NOT_CONFIGURED, str(error), report)
    if report.metric != comparison.metric:
        detail = f"the report is about {report.metric}, the sweep compares {comparison.metric}"
        return _skip(Reason.MALFORMED_EVENT, detail, report)
    if report.rung not in comparison.settings.rungs():
        detail = f"rung {report.rung} is not one of the sweep's rungs {list(comparison.settings.rungs())}"
        return _skip(Reason.MALFORMED_EVENT, detail, report)
    return Admitted(report, described_name, status, comparison)


def _finding(admitted: Admitted, judgement: cross_job.Judgement) -> RuleFinding:
    details = f"{admitted.settings.policy.value} at rung {judgement.rung}: {judgement.reason}"
    return RuleFinding(
        CROSS_JOB_RULE,
        ISSUES_FOUND if judgement.stops else NO_ISSUES_FOUND,
        FindingOrigin.CROSS_JOB,
        details,
        admitted.report.step,
    )


def verdict(admitted: Admitted, judgement: cross_job.Judgement, config: Config) -> Decision:
    """Stop, dry run or skip, from the judgement of the recorded report and the job's status now."""
    report = admitted.report
    finding = _finding(admitted, judgement)
    if admitted.status != IN_PROGRESS:
        detail = f"the job is {admitted.status[:64]}"
        return Decision(
            Action.SKIP, Reason.JOB_NOT_IN_PROGRESS, detail, admitted.job_name, report.source, finding
        )
    stop = recorded_stop(admitted, judgement)
    if stop is None:
        detail = f"rung {judgement.rung}: {judgement.reason}"
        return Decision(
            Action.SKIP, Reason.CROSS_JOB_CONTINUE, detail, admitted.job_name, report.source, finding
        )
    if config.dry_run or admitted.settings.dry_run:
        whose = "the deployment's" if config.dry_run else "the sweep's"
        detail = f"dry run ({whose}): {finding.status_details}; the job would be stopped"
        return Decision(Action.DRY_RUN, Reason.DRY_RUN, detail, admitted.job_name, report.source, finding)
    return stop


def recorded_stop(admitted: Admitted, judgement: cross_job.Judgement) -> Decision | None:
    """The STOP this report asks for, if the judgement stops the job (``None`` otherwise): what ``verdict``
    decides for a running job, and what a retried report uses to complete a cut-short audit trail. A report
    whose judgement lets the job go on never claims a stop, so it never writes another stop's trail."""
    if not judgement.stops:
        return None
    finding = _finding(admitted, judgement)
    return Decision(
        Action.STOP,
        Reason.WORSE_THAN_PEERS,
        finding.status_details,
        admitted.job_name,
        admitted.report.source,
        finding,
    )
