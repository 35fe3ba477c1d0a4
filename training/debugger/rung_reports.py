"""Cross-job rung reports: the job's objective at each rung, signed, sent to the stop Lambda with PutEvents.

Why from the container: on SageMaker nothing else sees a job's validation values as they are computed (the
metric lines reach CloudWatch late and unsigned). A sweep launched with a ``cross_job`` section gives every
job the hyperparameter ``autostop_cross_job`` (the comparison's settings, its objective metric and its
rungs). Each validation the job runs, ``RungReporter`` checks whether the job passed a rung since the last
one (the highest rung passed, exactly as ``cross_job.rung_reached`` and the local runner count: the first
validation at or after a rung reports it), and if so sends one event (docs/events.md section 4); with
``rejudge`` (the comparison's default) every later validation reports the highest rung passed again, so the
Lambda judges the job again as that rung fills up (``cross_job.rung_to_judge``):

    detail: TrainingJobName, TrainingJobArn, Step, Rung, ObjectiveMetric, Objective, Provenance

``Objective`` is text (``repr`` of the float, or ``nan``/``inf``/``-inf``: a diverged job must still rank
last, and JSON has no NaN), signed with the job's key together with the job name, rung, step and metric
(``provenance.rung_report_message``), so the stop Lambda records only what the job itself measured. The
Lambda records the report in the sweep's table, judges the job against its siblings at that rung, and may
stop it through the same path as a rule's stop.

The settings' other fields (policy, reduction factor, ...) are the Lambda's business: the container needs
the metric, the rungs and ``rejudge`` only, and the image does not ship ``lambdas/`` (``contract``), so the
launcher writes the rungs out. Delivery is ``signals.EventBridgeSink``'s (its own thread, retries, never
raising into training).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from training import log_lines
from training.debugger import contract, provenance, signals

OBJECTIVE_METRIC_PREFIX = "validation:"
# A rung list longer than cross_job.MAX_RUNGS is not one the launcher writes.
MAX_RUNGS = 32


class CrossJobConfigError(ValueError):
    """The ``autostop_cross_job`` hyperparameter cannot be used; the message says why."""


def _print_line(line: str) -> None:
    log_lines.write_line(line)  # whole and alone, whichever thread prints


@dataclasses.dataclass(frozen=True)
class CrossJobReporting:
    """What the container needs of the sweep's comparison: the objective's metric, the rungs, and whether
    to report again at every validation after a rung (``rejudge``)."""

    metric: str
    rungs: tuple[int, ...]
    rejudge: bool = False

    def __post_init__(self) -> None:
        name = self.metric.removeprefix(OBJECTIVE_METRIC_PREFIX)
        if not self.metric.startswith(OBJECTIVE_METRIC_PREFIX) or not name or not name.isidentifier():
            raise CrossJobConfigError(f"metric must be validation:<name>, got {self.metric[:80]!r}")
        # No rung at all is possible (a budget within the first rung): the job then never reports.
        if len(self.rungs) > MAX_RUNGS or list(self.rungs) != sorted(set(self.rungs)):
            raise CrossJobConfigError(f"rungs must be at most {MAX_RUNGS} increasing step counts")
        if any(isinstance(rung, bool) or not isinstance(rung, int) or rung < 1 for rung in self.rungs):
            raise CrossJobConfigError("rungs must be positive step counts")
        if not isinstance(self.rejudge, bool):
            raise CrossJobConfigError("rejudge must be true or false")

    @property
    def value_name(self) -> str:
        """The validation value's name (``validation:loss`` -> ``loss``, as ``on_test_end`` names it)."""
        return self.metric.removeprefix(OBJECTIVE_METRIC_PREFIX)


def parse_reporting(value: object, origin: str) -> CrossJobReporting:
    """The hyperparameter's value (JSON, possibly JSON-quoted once more by the SageMaker Python SDK)."""
    try:
        document = json.loads(value) if isinstance(value, str) else None
        if isinstance(document, str):
            document = json.loads(document)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise CrossJobConfigError(f"{origin}: expected the launcher's JSON object")
    metric, rungs = document.get("metric"), document.get("rungs")
    if not isinstance(metric, str) or not isinstance(rungs, list):
        raise CrossJobConfigError(f"{origin}: needs metric (a string) and rungs (a list of step counts)")
    try:
        # Absent: a launcher from before rejudge, whose Lambda judged each rung once.
        return CrossJobReporting(metric=metric, rungs=tuple(rungs), rejudge=document.get("rejudge", False))
    except CrossJobConfigError as error:
        raise CrossJobConfigError(f"{origin}: {error}") from None


def reporting_from(environ: Mapping[str, str]) -> CrossJobReporting | None:
    """The job's ``autostop_cross_job`` hyperparameter from SageMaker's hyperparameters file, or ``None``
    when the job was not launched for cross-job stopping (or has no file: a local run)."""
    path = provenance.hyperparameters_file(environ)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # no file (local runs) or one the hyperparameter parser reports itself
    value = values.get(contract.CROSS_JOB_HYPERPARAMETER) if isinstance(values, dict) else None
    if value is None:
        return None
    return parse_reporting(value, f"{path}: {contract.CROSS_JOB_HYPERPARAMETER}")


def rung_reached(rungs: Sequence[int], previous_step: int, step: int) -> int | None:
    """The highest rung passed moving from ``previous_step`` to ``step`` (exclusive, inclusive): the Lambda's
    ``cross_job.rung_reached`` for the rungs its settings give (tests keep the two equal)."""
    passed = [level for level in rungs if previous_step < level <= step]
    return passed[-1] if passed else None


def rung_to_report(reporting: CrossJobReporting, previous_step: int, step: int) -> int | None:
    """The rung a validation at ``step`` reports: the Lambda's ``cross_job.rung_to_judge`` (tests keep the
    two equal)."""
    if not reporting.rejudge:
        return rung_reached(reporting.rungs, previous_step, step)
    passed = [level for level in reporting.rungs if level <= step]
    return passed[-1] if passed else None


def objective_text(value: float) -> str:
    """The objective as the event carries and signs it (the Lambda's rung store keeps the same text)."""
    return repr(float(value)) if math.isfinite(value) else str(float(value))


@dataclasses.dataclass(frozen=True)
class RungReport:
    rung: int
    step: int
    metric: str
    objective: float
    time: datetime.datetime

    @property
    def objective_text(self) -> str:
        return objective_text(self.objective)


def report_detail(job: signals.JobIdentity, report: RungReport) -> dict[str, Any]:
    """The event's ``detail``, fields in the documented order (docs/events.md section 4)."""
    if job.name is None or job.signing_key is None:
        raise ValueError(
            "a rung report needs the job's name and signing key (the Lambda refuses it unsigned)"
        )
    detail: dict[str, Any] = {"TrainingJobName": job.name}
    if job.arn is not None:
        detail["TrainingJobArn"] = job.arn
    detail |= {
        "Step": report.step,
        "Rung": report.rung,
        "ObjectiveMetric": report.metric,
        "Objective": report.objective_text,
    }
    signed_at = signals.format_time(report.time)
    message = provenance.rung_report_message(
        job_name=job.name,
        rung=report.rung,
        step=report.step,
        metric=report.metric,
        objective=report.objective_text,
        signed_at=signed_at,
    )
    detail["Provenance"] = {
        "Algorithm": contract.SIGNATURE_ALGORITHM,
        "SignedAt": signed_at,
        "Signature": provenance.sign(job.signing_key, message),
    }
    return detail


def put_events_entry(job: signals.JobIdentity, report: RungReport) -> dict[str, Any]:
    """The ``PutEvents`` entry, as docs/events.md shows it (``json.dumps`` defaults)."""
    return {
        "Source": contract.SOURCE,
        "DetailType": contract.RUNG_REPORT_DETAIL_TYPE,
        "Resources": [job.arn] if job.arn else [],
        "Detail": json.dumps(report_detail(job, report)),
    }


def event_envelope(job: signals.JobIdentity, report: RungReport, *, event_id: str) -> dict[str, Any]:
    """The event as EventBridge delivers the entry (what the stop Lambda receives)."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": contract.RUNG_REPORT_DETAIL_TYPE,
        "source": contract.SOURCE,
        "account": job.account or "",
        "time": signals.format_time(report.time),
        "region": job.region or "",
        "resources": [job.arn] if job.arn else [],
        "detail": report_detail(job, report),
    }


class Sender(Protocol):
    """What a reporter sends with: ``signals.EventBridgeSink``."""

    def send(
        self, entry: dict[str, Any], *, rule_name: str, what: str, fallback: str | None = None
    ) -> None: ...

    def close(self) -> None: ...


class RungReporter:
    """Follows the job's validations and sends one signed report per rung passed.

    ``validated(step, values)`` is called with each validation's means (``on_test_end``'s ``loss``,
    ``ssim``, ``l2``) at the job's global step; it never raises into training. ``first_step``: the step the
    job starts (or resumes) from, so a resumed job reports the highest rung it passes at its first
    validation, as the local runner does (the table keeps a job's first report at a rung, so a rung reported
    before the interruption is not counted twice).
    """

    def __init__(
        self,
        reporting: CrossJobReporting,
        *,
        job: signals.JobIdentity,
        sender: Sender,
        first_step: int = 0,
        clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
        log: Callable[[str], None] = _print_line,
    ) -> None:
        if job.name is None or job.signing_key is None:
            raise CrossJobConfigError(
                f"{contract.CROSS_JOB_HYPERPARAMETER} needs the job's name ({signals.JOB_NAME_ENV}) and its "
                f"signing key ({contract.SIGNING_KEY_HYPERPARAMETER}): the stop Lambda refuses unsigned "
                "reports"
            )
        self.reporting = reporting
        self.job = job
        self.sender = sender
        self.clock = clock
        self.log = log
        self.last_step = first_step
        self.reports: list[RungReport] = []

    def validated(self, step: int, values: Mapping[str, float]) -> RungReport | None:
        """Report the rung this validation is judged at, if any (``None``: no rung to report)."""
        try:
            rung = rung_to_report(self.reporting, self.last_step, step)
            self.last_step = max(self.last_step, step)
            if rung is None:
                return None
            value = float(values.get(self.reporting.value_name, math.nan))
            report = RungReport(rung, step, self.reporting.metric, value, self.clock())
            self.sender.send(
                put_events_entry(self.job, report),
                rule_name=contract.CROSS_JOB_RULE,
                what=f"rung report (rung {rung}, {report.metric} {report.objective_text})",
            )
        except Exception as error:  # a report that cannot be sent must never fail training
            self.log(f"cross-job: the report at step {step} could not be sent: {error!r}")
            return None
        self.reports.append(report)
        return report

    def close(self) -> None:
        """Training ended: give the last report the sender's drain time."""
        self.sender.close()
