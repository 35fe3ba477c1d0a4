"""The controller's steps: a job ended -> free its slot -> finish the launches in flight -> fill free slots.

One step at a time, each recorded by a conditional write (``queue``) before the next begins, so that an
invocation may die anywhere and the next one (a retried event, another job's end, or the ``autostop``
command) carries on from what the table says:

1. ``job_ended``: the job's item goes ``ended`` and its slot is freed -- once, however often the event comes;
2. ``advance`` -> every job recorded as ``launching`` (claimed; its ``CreateTrainingJob`` not confirmed) is
   sent again: its name is fixed, so a second ``CreateTrainingJob`` of a job that exists answers
   ``ResourceInUse`` and nothing is launched twice (``outcomes``);
3. ``advance`` -> while a slot is free, claim the next queued job and launch it;
4. the sweep is marked ``finished`` once every job was claimed and none holds a slot.

A launch creates the job from its stored request, then its per-job alarms (best effort: the in-container
events stop a job without them, as in the launcher), then records it ``launched``. An error that waiting
may fix is raised after the job is recorded ``launching``: the invocation fails, and the job is sent again
by whatever runs step 2 next. The AWS clients are passed in: the Lambda passes its own, the command its.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Final

from . import events, items, outcomes
from .queue import SweepQueue

# What a launch came to, besides outcomes.CREATED / ALREADY_EXISTS / REFUSED.
ENDED_BEFORE_SEEN: Final = "ended_before_seen"
NOT_LAUNCHING: Final = "not_launching"


@dataclasses.dataclass(frozen=True)
class Scope:
    """What the deployed stop stack watches: requests outside it are refused, alarms outside it not put."""

    job_prefix: str
    alarm_prefix: str


@dataclasses.dataclass(frozen=True)
class Launch:
    job_name: str
    outcome: str
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class Progress:
    """What one ``advance`` did."""

    launches: tuple[Launch, ...]
    finished: bool

    def named(self, *wanted: str) -> list[str]:
        return [launch.job_name for launch in self.launches if launch.outcome in wanted]

    @property
    def launched(self) -> list[str]:
        return self.named(outcomes.CREATED, outcomes.ALREADY_EXISTS)

    @property
    def refused(self) -> list[str]:
        return self.named(outcomes.REFUSED)


class Controller:
    def __init__(
        self,
        *,
        queue: SweepQueue,
        sagemaker: Any,
        cloudwatch: Any,
        scope: Scope,
        log: Callable[[Mapping[str, object]], None] = lambda _: None,
    ) -> None:
        self.queue = queue
        self.sagemaker = sagemaker
        self.cloudwatch = cloudwatch
        self.scope = scope
        self.log = log

    def job_ended(self, ended: events.JobEnded) -> dict[str, object]:
        """Steps 1-4 for a job's terminal event; the outcome, for the log line."""
        job = self.queue.job(ended.sweep, ended.job_name)
        if job is None:
            # A job of a sweep that was not detached (or of another table): nothing to do.
            return {"action": "skip", "reason": "not_a_detached_sweep_job", "job": ended.job_name}
        freed = self.queue.mark_ended(ended.sweep, ended.job_name, ended.status)
        progress = self.advance(ended.sweep)
        return {
            "action": "job_ended" if freed else "already_ended",
            "sweep": ended.sweep,
            "job": ended.job_name,
            "status": ended.status,
            "slot_freed": freed,
            "launched": progress.launched,
            "launch_refused": progress.refused,
            "sweep_finished": progress.finished,
        }

    def advance(self, sweep: str) -> Progress:
        """Steps 2-4: finish the launches in flight, fill the free slots, mark the sweep finished."""
        state = self.queue.sweep(sweep)
        # A sweep cancelled by hand (sweep_state no longer detached) sends nothing more, claimed or not.
        in_flight = sorted(state.launching) if state is not None and state.state == items.DETACHED else []
        launches = [self.launch(sweep, name) for name in in_flight]
        while (name := self.queue.claim_next(sweep)) is not None:
            launches.append(self.launch(sweep, name))
        finished = self.queue.finish_if_done(sweep)
        return Progress(launches=tuple(launches), finished=finished)

    def launch(self, sweep: str, name: str) -> Launch:
        """Create a claimed job from its stored request and record how it went (module docstring)."""
        job = self.queue.job(sweep, name)
        if job is None or job.state != items.LAUNCHING:
            return Launch(name, NOT_LAUNCHING)
        problem = outcomes.request_problem(job.request, job_name=name, job_prefix=self.scope.job_prefix)
        if problem is not None:
            return self._refuse(sweep, name, problem)
        outcome = outcomes.CREATED
        try:
            self.sagemaker.create_training_job(**job.request)
        except Exception as error:
            outcome = outcomes.create_outcome(outcomes.error_code(error))
            if outcome == outcomes.RETRY:
                self.log(
                    {
                        "message": "CreateTrainingJob failed: the job stays claimed and is sent again",
                        "sweep": sweep,
                        "job": name,
                        "error": outcomes.describe(error),
                    }
                )
                raise
            if outcome == outcomes.REFUSED:
                return self._refuse(sweep, name, f"CreateTrainingJob refused: {outcomes.describe(error)}")
            status = self.sagemaker.describe_training_job(TrainingJobName=name).get("TrainingJobStatus")
            if status in events.TERMINAL_STATUSES:
                # Created by an earlier try and already over: its end event may have come while the item
                # was not yet launched, so the end is recorded here (once, whichever comes first).
                self.queue.mark_ended(sweep, name, str(status))
                return Launch(name, ENDED_BEFORE_SEEN, str(status))
        self._put_alarms(job)
        self.queue.mark_launched(sweep, name)
        return Launch(name, outcome)

    def _refuse(self, sweep: str, name: str, failure: str) -> Launch:
        self.queue.mark_launch_failed(sweep, name, failure)
        self.log({"message": "job not launched", "sweep": sweep, "job": name, "failure": failure})
        return Launch(name, outcomes.REFUSED, failure)

    def _put_alarms(self, job: items.JobItem) -> None:
        for alarm in job.alarms:
            if not outcomes.alarm_in_scope(alarm, alarm_prefix=self.scope.alarm_prefix, job_name=job.name):
                self.log({"message": "alarm outside the per-job alarm prefix: not put", "job": job.name})
                continue
            try:
                self.cloudwatch.put_metric_alarm(**alarm)
            except Exception as error:  # the in-container events still stop the job without its alarm
                self.log(
                    {
                        "message": "per-job alarm not put",
                        "job": job.name,
                        "alarm": str(alarm.get("AlarmName")),
                        "error": outcomes.describe(error),
                    }
                )
