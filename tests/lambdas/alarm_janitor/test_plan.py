"""The janitor's pure core: which per-job alarms go, and its copies of the stop path's names."""

from __future__ import annotations

from lambdas.alarm_janitor import plan
from lambdas.stop_training_job import vocabulary


def test_the_janitors_names_are_the_stop_paths() -> None:
    # The janitor's asset does not ship the stop Lambda's package: its copies must stay equal.
    assert plan.JOB_NAME_PATTERN.pattern == vocabulary.JOB_NAME_PATTERN.pattern
    assert plan.FINISHED_STATUSES == vocabulary.FINISHED_STATUSES


def test_alarms_are_grouped_by_job_and_other_names_are_left_alone() -> None:
    names = [
        "autostop-job-1/LossNotDecreasing",
        "autostop-job-10/LossNotDecreasing",
        "autostop-job-1/team:Loss/x",
        "autostop-job-1",  # no rule part: not a per-job alarm
        "autostop-bad_name/Rule",  # not a training job name
        "autostop-job-2/",  # empty rule
        "other-job-1/LossNotDecreasing",
    ]
    assert plan.alarms_by_job(names, "autostop-") == {
        "job-1": ["autostop-job-1/LossNotDecreasing", "autostop-job-1/team:Loss/x"],
        "job-10": ["autostop-job-10/LossNotDecreasing"],
    }


def test_only_ended_or_gone_jobs_lose_their_alarms() -> None:
    grouped = {
        "done": ["autostop-done/A"],
        "failed": ["autostop-failed/A"],
        "gone": ["autostop-gone/A", "autostop-gone/B"],
        "running": ["autostop-running/A"],
        "stopping": ["autostop-stopping/A"],
        "unknown": ["autostop-unknown/A"],
    }
    statuses = {
        "done": "Completed",
        "failed": "Failed",
        "gone": plan.GONE,
        "running": "InProgress",
        "stopping": "Stopping",
        "unknown": None,
    }
    assert plan.alarms_to_delete(grouped, statuses) == [
        "autostop-done/A",
        "autostop-failed/A",
        "autostop-gone/A",
        "autostop-gone/B",
    ]
