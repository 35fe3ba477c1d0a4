"""Which events end a job of a sweep: SageMaker's own "SageMaker Training Job State Change" event.

The event's shape (Amazon SageMaker Developer Guide, "Automating Amazon SageMaker with Amazon EventBridge",
training job state change; a sample is tests/events/sagemaker_state_change_completed.json): ``source``
``aws.sagemaker``, ``detail-type`` ``SageMaker Training Job State Change``, and in ``detail`` the job's
``DescribeTrainingJob`` fields, of which only ``TrainingJobName`` and ``TrainingJobStatus`` are read here.

Why so little is trusted: EventBridge delivers at least once, so the same event may come twice, and two jobs
may end at the same moment; the conditional writes in ``queue`` make that harmless. What this module decides
is only whether the event names a job that ended (``Completed``, ``Failed`` or ``Stopped``: the statuses a
training job never leaves) with a name of the sweep launcher's form ``<sweep>-NNN``. Anything else is
ignored with a reason, never raised: a malformed event must not be retried forever or stop the controller.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

from . import items

SAGEMAKER_SOURCE: Final = "aws.sagemaker"
TRAINING_JOB_STATE_CHANGE: Final = "SageMaker Training Job State Change"
TERMINAL_STATUSES: Final = ("Completed", "Failed", "Stopped")

MALFORMED: Final = "malformed_event"
FOREIGN: Final = "foreign_event"
NOT_TERMINAL: Final = "job_not_ended"
NOT_A_SWEEP_JOB: Final = "not_a_sweep_job_name"


@dataclasses.dataclass(frozen=True)
class JobEnded:
    sweep: str
    job_name: str
    status: str


@dataclasses.dataclass(frozen=True)
class Ignored:
    """Not an end of a sweep's job. ``field`` names what was wrong in a malformed event (never its value)."""

    reason: str
    field: str = ""


def job_ended(event: object) -> JobEnded | Ignored:
    """The job that ended and how, or why the event is ignored."""
    if not isinstance(event, Mapping):
        return Ignored(MALFORMED, "event")
    if event.get("source") != SAGEMAKER_SOURCE or event.get("detail-type") != TRAINING_JOB_STATE_CHANGE:
        return Ignored(FOREIGN, "source")
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        return Ignored(MALFORMED, "detail")
    name = detail.get("TrainingJobName")
    if not isinstance(name, str) or not name:
        return Ignored(MALFORMED, "detail.TrainingJobName")
    status = detail.get("TrainingJobStatus")
    if not isinstance(status, str):
        return Ignored(MALFORMED, "detail.TrainingJobStatus")
    if status not in TERMINAL_STATUSES:
        return Ignored(NOT_TERMINAL)
    sweep = items.sweep_of_job(name)
    if sweep is None:
        return Ignored(NOT_A_SWEEP_JOB)
    return JobEnded(sweep=sweep, job_name=name, status=status)
