"""Which events end a job of a sweep, from the documented event shapes in tests/events."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from lambdas.launch_queued_jobs import events
from tests.lambdas.launch_queued_jobs import sweeps


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((sweeps.EVENTS / name).read_text(encoding="utf-8"))
    return loaded


@pytest.mark.parametrize("status", ["Completed", "Failed", "Stopped"])
def test_a_terminal_state_change_ends_the_named_job_of_its_sweep(status: str) -> None:
    # GIVEN SageMaker's state-change event of job vision-lr-007 reaching a status it never leaves
    event = sweeps.end_event("vision-lr-007", status)
    # THEN the job of sweep vision-lr ended, with that status
    assert events.job_ended(event) == events.JobEnded("vision-lr", "vision-lr-007", status)


def test_the_documented_stopped_event_is_read_the_same_way() -> None:
    event = fixture("sagemaker_state_change_stopped.json")
    event["detail"]["TrainingJobName"] = "sweep-lr-001"
    assert events.job_ended(event) == events.JobEnded("sweep-lr", "sweep-lr-001", "Stopped")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("sagemaker_state_change_in_progress.json", events.NOT_TERMINAL),
        ("sagemaker_state_change_issues_found.json", events.NOT_TERMINAL),
        ("autostop_rule_issues_found.json", events.FOREIGN),
        ("cloudwatch_alarm_rule_alarm.json", events.FOREIGN),
        # named sweep-lr-0001: not a name the sweep launcher gives (three digits)
        ("sagemaker_state_change_completed.json", events.NOT_A_SWEEP_JOB),
    ],
)
def test_other_events_are_ignored_with_a_reason(name: str, reason: str) -> None:
    ignored = events.job_ended(fixture(name))
    assert isinstance(ignored, events.Ignored)
    assert ignored.reason == reason


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    event = copy.deepcopy(sweeps.end_event("vision-lr-001"))
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = 7
    return event


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (None, "event"),
        ([], "event"),
        (_without(("detail",)), "detail"),
        (_without(("detail", "TrainingJobName")), "detail.TrainingJobName"),
        (_without(("detail", "TrainingJobStatus")), "detail.TrainingJobStatus"),
    ],
)
def test_malformed_events_name_the_field_and_never_raise(event: object, field: str) -> None:
    assert events.job_ended(event) == events.Ignored(events.MALFORMED, field)
