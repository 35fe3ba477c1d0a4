"""Which per-job alarms to delete: those of jobs that have ended or no longer exist. Pure (no AWS SDK).

Why a janitor besides the stop Lambda's clean-up: the stop Lambda deletes a job's alarms when SageMaker's
terminal state-change event arrives. An event that is never delivered (dead-lettered, a rule disabled for a
while, a stack deployed after the job ended) would leave the alarms forever. The janitor looks at every
per-job alarm on a schedule and deletes the alarms of jobs whose ``DescribeTrainingJob`` says they ended.

The names here are the stop path's (``lambdas/stop_training_job/vocabulary.py``); the janitor's asset does
not ship that package, so tests/lambdas/alarm_janitor/test_plan.py keeps the copies equal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

JOB_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
# Job states after which nothing of the job runs any more: its per-job alarms can go.
FINISHED_STATUSES: Final = frozenset({"Stopped", "Completed", "Failed", "Deleting"})
# DescribeTrainingJob found no such job (deleted, or never created in this account and region).
GONE: Final = "gone"


def job_of_alarm(alarm_name: str, alarm_prefix: str) -> str | None:
    """``<alarm prefix><job>/<rule>`` -> ``<job>``; ``None`` for any other name (never deleted)."""
    if not alarm_name.startswith(alarm_prefix):
        return None
    job_name, slash, rule_name = alarm_name.removeprefix(alarm_prefix).partition("/")
    if not slash or not rule_name or not JOB_NAME_PATTERN.fullmatch(job_name):
        return None
    return job_name


def alarms_by_job(alarm_names: Iterable[str], alarm_prefix: str) -> dict[str, list[str]]:
    """The per-job alarms grouped by job, names sorted; names that are not per-job alarms are left out."""
    grouped: dict[str, list[str]] = {}
    for name in alarm_names:
        job_name = job_of_alarm(name, alarm_prefix)
        if job_name is not None:
            grouped.setdefault(job_name, []).append(name)
    return {job_name: sorted(names) for job_name, names in sorted(grouped.items())}


def alarms_to_delete(grouped: Mapping[str, list[str]], statuses: Mapping[str, str | None]) -> list[str]:
    """The alarms of jobs whose status is finished or ``GONE``. A job with no known status (``None``:
    the lookup was denied or failed) keeps its alarms: the janitor deletes only on evidence."""
    doomed: list[str] = []
    for job_name, names in grouped.items():
        status = statuses.get(job_name)
        if status == GONE or status in FINISHED_STATUSES:
            doomed.extend(names)
    return sorted(doomed)
