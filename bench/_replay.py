"""Replay early-stopping policies on a sweep's recorded curves, as if its jobs were launched in a given order.

Why replay: a fair comparison of stopping policies needs every policy to see the same jobs behave the same
way. Training each configuration once to its full budget (no termination, per-job rules evaluated as a dry
run so the step at which each would have fired is known) records, per job, when each training step was
reached, the objective at each validation and the final objective. Each policy is then replayed on those
recordings in several random launch orders, with the sweep's parallelism: jobs start as slots free up, every
validation is reported to the policy at the moment it happened, and a stopped job frees its slot after the
measured stop latency. The same code serves every policy, so the differences are the policies'.

Measures per replay: compute used (job-seconds; stopped jobs charged up to their stop plus the latency),
compute saved against running every job to its budget, the winner (best final objective among the jobs
that ran to their budget) and its regret (best final objective of all configurations minus the winner's,
in the objective's direction: 0 means stopping lost nothing).
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import math
import random
import statistics
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from lambdas.stop_training_job import cross_job


@dataclasses.dataclass(frozen=True)
class RecordedJob:
    """One configuration run to its budget. Times are seconds since the job was launched."""

    name: str
    budget_steps: int
    duration: float
    step_elapsed: tuple[tuple[int, float], ...]
    objective_curve: tuple[tuple[int, float], ...]
    final_objective: float
    rule_step: int | None = None
    rule_name: str | None = None

    def elapsed(self, step: int) -> float:
        """When ``step`` was reached: interpolated between recorded metric lines, clamped to the run."""
        steps = [point[0] for point in self.step_elapsed]
        if not steps:
            return self.duration * min(1.0, step / self.budget_steps)
        index = bisect.bisect_left(steps, step)
        if index < len(steps) and steps[index] == step:
            return self.step_elapsed[index][1]
        if index == 0:
            first_step, first_time = self.step_elapsed[0]
            return first_time * step / first_step if first_step else first_time
        if index == len(steps):
            last_step, last_time = self.step_elapsed[-1]
            if last_step >= self.budget_steps:
                return last_time
            share = (step - last_step) / (self.budget_steps - last_step)
            return last_time + share * (self.duration - last_time)
        (left_step, left_time), (right_step, right_time) = (
            self.step_elapsed[index - 1],
            self.step_elapsed[index],
        )
        return left_time + (right_time - left_time) * (step - left_step) / (right_step - left_step)


class Policy(Protocol):
    """What a stopping policy is told during a replay. ``report`` returns True to stop the job."""

    def launch(self, job: str) -> None: ...

    def report(self, job: str, step: int, value: float) -> bool: ...

    def finish(self, job: str, value: float | None, *, stopped: bool) -> None: ...


class NoStopping:
    def launch(self, job: str) -> None:
        pass

    def report(self, job: str, step: int, value: float) -> bool:
        return False

    def finish(self, job: str, value: float | None, *, stopped: bool) -> None:
        pass


class CrossJob:
    """autostop's cross-job rule: the pure core, with an in-memory rung store (first report wins): each
    validation is judged where ``cross_job.rung_to_judge`` says, as the local runner and the container do."""

    def __init__(self, settings: cross_job.CrossJobSettings, sweep: str = "replay") -> None:
        self.settings = settings
        self.sweep = sweep
        self._rungs: dict[int, dict[str, float]] = {}
        self._last_step: dict[str, int] = {}

    def launch(self, job: str) -> None:
        self._last_step[job] = 0

    def report(self, job: str, step: int, value: float) -> bool:
        rung = cross_job.rung_to_judge(self.settings, self._last_step[job], step)
        self._last_step[job] = step
        if rung is None:
            return False
        peers = self._rungs.setdefault(rung, {})
        peers.setdefault(job, value)
        return cross_job.judge(self.settings, rung=rung, job=job, peers=peers).stops

    def finish(self, job: str, value: float | None, *, stopped: bool) -> None:
        pass


class OptunaPruner:
    """An Optuna pruner told each validation as ``trial.report(value, step)``; pruned when it says so."""

    def __init__(self, make_pruner: Callable[[], Any], goal: str) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        # A fixed name: HyperbandPruner puts each trial in a bracket by a hash of the study's name and the
        # trial's number, and a generated name would draw other brackets on every run.
        self._study = optuna.create_study(direction=goal, pruner=make_pruner(), study_name="replay")
        self._trials: dict[str, Any] = {}

    def launch(self, job: str) -> None:
        self._trials[job] = self._study.ask()

    def report(self, job: str, step: int, value: float) -> bool:
        trial = self._trials[job]
        with warnings.catch_warnings():
            # A diverged job reports NaN; Optuna's pruners skip NaN values with a RuntimeWarning.
            warnings.simplefilter("ignore", RuntimeWarning)
            trial.report(value, step)
            return bool(trial.should_prune())

    def finish(self, job: str, value: float | None, *, stopped: bool) -> None:
        trial = self._trials[job]
        states = self._optuna.trial.TrialState
        if stopped:
            self._study.tell(trial, state=states.PRUNED)
        elif value is None or not math.isfinite(value):
            self._study.tell(trial, state=states.FAIL)
        else:
            self._study.tell(trial, value)


class SyneTuneAsha:
    """Syne Tune's ``ASHA`` scheduler (AWS's tuning library), told each validation as a trial result.

    The scheduler's ``on_trial_result`` answers ``STOP`` or ``CONTINUE``; it is driven directly rather than
    through a Syne Tune backend, so the launch order and the timing are the replay's, as for every policy.
    """

    def __init__(self, goal: str, *, max_steps: int, grace_period: int, seed: int = 0) -> None:
        import logging
        from datetime import datetime

        from syne_tune.backend.trial_status import Trial
        from syne_tune.optimizer.baselines import ASHA
        from syne_tune.optimizer.scheduler import SchedulerDecision

        logging.getLogger("syne_tune").setLevel(logging.ERROR)
        self._trial_type = Trial
        self._now = datetime.now
        self._stop = SchedulerDecision.STOP
        # The configuration space is not searched (the sweep's jobs are given); one entry names the job.
        self._scheduler = ASHA(
            config_space={"job": "replay"},
            metric="objective",
            time_attr="step",
            max_t=max_steps,
            grace_period=grace_period,
            do_minimize=goal == cross_job.MINIMIZE,
            random_seed=seed,
        )
        self._trials: dict[str, Any] = {}

    def launch(self, job: str) -> None:
        trial = self._trial_type(
            trial_id=len(self._trials), config={"job": "replay"}, creation_time=self._now()
        )
        self._scheduler.on_trial_add(trial)
        self._trials[job] = trial

    def report(self, job: str, step: int, value: float) -> bool:
        decision = self._scheduler.on_trial_result(self._trials[job], {"objective": value, "step": step})
        return bool(decision == self._stop)

    def finish(self, job: str, value: float | None, *, stopped: bool) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class JobOutcome:
    name: str
    compute: float
    stopped_at: int | None
    stopped_by: str | None


@dataclasses.dataclass(frozen=True)
class Replay:
    outcomes: tuple[JobOutcome, ...]
    compute: float
    full_compute: float
    winner: str | None
    regret: float
    makespan: float

    @property
    def saved_fraction(self) -> float:
        return 1 - self.compute / self.full_compute if self.full_compute else 0.0

    @property
    def stopped(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.stopped_at is not None)


def _better(goal: str) -> Callable[[float, float], bool]:
    return (lambda a, b: a > b) if goal == cross_job.MAXIMIZE else (lambda a, b: a < b)


def best_job(jobs: Sequence[RecordedJob], goal: str) -> RecordedJob | None:
    better = _better(goal)
    best: RecordedJob | None = None
    for job in jobs:
        if math.isfinite(job.final_objective) and (
            best is None or better(job.final_objective, best.final_objective)
        ):
            best = job
    return best


def replay(
    jobs: Sequence[RecordedJob],
    policy: Policy,
    *,
    goal: str,
    order: Sequence[int],
    parallel: int,
    stop_latency: float,
    rules: bool,
) -> Replay:
    """Simulate the sweep: ``order`` is the launch order (indices into ``jobs``), ``parallel`` the slots."""
    if sorted(order) != list(range(len(jobs))):
        raise ValueError("order must be a permutation of the jobs")
    if parallel < 1:
        raise ValueError("parallel must be >= 1")
    events: list[tuple[float, int, str, int, int, float]] = []
    sequence = 0
    launched_at: dict[int, float] = {}
    done: dict[int, JobOutcome] = {}
    queue = list(order)
    makespan = 0.0

    def push(moment: float, kind: str, index: int, step: int = 0, value: float = math.nan) -> None:
        nonlocal sequence
        heapq.heappush(events, (moment, sequence, kind, index, step, value))
        sequence += 1

    def launch(index: int, moment: float) -> None:
        job = jobs[index]
        launched_at[index] = moment
        policy.launch(job.name)
        for step, value in job.objective_curve:
            push(moment + job.elapsed(step), "report", index, step, value)
        if rules and job.rule_step is not None:
            push(moment + job.elapsed(job.rule_step), "rule", index, job.rule_step)
        push(moment + job.duration, "end", index)

    def stop(index: int, moment: float, step: int, by: str) -> None:
        compute = min(jobs[index].duration, moment - launched_at[index] + stop_latency)
        done[index] = JobOutcome(jobs[index].name, compute, step, by)
        policy.finish(jobs[index].name, None, stopped=True)
        push(launched_at[index] + compute, "free", index)

    for _ in range(min(parallel, len(queue))):
        launch(queue.pop(0), 0.0)
    while events:
        moment, _, kind, index, step, value = heapq.heappop(events)
        if kind == "free":
            makespan = max(makespan, moment)
            if queue:
                launch(queue.pop(0), moment)
            continue
        if index in done:
            continue
        job = jobs[index]
        if kind == "end":
            done[index] = JobOutcome(job.name, job.duration, None, None)
            policy.finish(job.name, job.final_objective, stopped=False)
            push(moment, "free", index)
        elif kind == "rule":
            stop(index, moment, step, job.rule_name or "rule")
        elif kind == "report" and step < job.budget_steps and policy.report(job.name, step, value):
            stop(index, moment, step, "cross-job")
    outcomes = tuple(done[index] for index in range(len(jobs)))
    completed = [job for job, outcome in zip(jobs, outcomes, strict=True) if outcome.stopped_at is None]
    winner = best_job(completed, goal)
    best = best_job(jobs, goal)
    if best is None:
        regret = 0.0
    elif winner is None:
        regret = math.inf
    else:
        regret = abs(best.final_objective - winner.final_objective)
    return Replay(
        outcomes=outcomes,
        compute=sum(outcome.compute for outcome in outcomes),
        full_compute=sum(job.duration for job in jobs),
        winner=winner.name if winner else None,
        regret=regret,
        makespan=makespan,
    )


@dataclasses.dataclass(frozen=True)
class Summary:
    label: str
    saved: tuple[float, ...]
    regret: tuple[float, ...]
    stopped: tuple[int, ...]

    @property
    def mean_regret(self) -> float:
        """The expected cost of the policy's stops over the replays (inf if one kept no finished job): a
        policy that loses the best job as often as another, but to a close second, loses less."""
        return statistics.fmean(self.regret)

    @property
    def regret_zero(self) -> int:
        """How many replays kept the best configuration."""
        return sum(1 for value in self.regret if value == 0)

    def row(self) -> list[str]:
        return [
            self.label,
            f"{100 * statistics.median(self.saved):.1f}%",
            f"{100 * min(self.saved):.1f}-{100 * max(self.saved):.1f}%",
            f"{statistics.median(self.regret):.4f}",
            f"{self.mean_regret:.4f}",
            f"{max(self.regret):.4f}",
            f"{self.regret_zero}/{len(self.regret)}",
            f"{statistics.median(self.stopped):.0f}",
        ]


HEADER = [
    "| policy | compute saved (median) | saved (range) | regret (median) | regret (mean) | regret (max) "
    "| replays with regret 0 "
    "| jobs stopped (median) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
]


def compare(
    jobs: Sequence[RecordedJob],
    policies: Mapping[str, tuple[Callable[[], Policy], bool]],
    *,
    goal: str,
    orders: int,
    parallel: int,
    stop_latency: float,
    seed: int = 0,
) -> list[Summary]:
    """Replay each policy (a factory and whether per-job rules apply) in ``orders`` random launch orders."""
    generator = random.Random(seed)
    permutations = []
    for _ in range(orders):
        order = list(range(len(jobs)))
        generator.shuffle(order)
        permutations.append(order)
    summaries = []
    for label, (factory, rules) in policies.items():
        runs = [
            replay(
                jobs,
                factory(),
                goal=goal,
                order=order,
                parallel=parallel,
                stop_latency=stop_latency,
                rules=rules,
            )
            for order in permutations
        ]
        summaries.append(
            Summary(
                label,
                tuple(run.saved_fraction for run in runs),
                tuple(run.regret for run in runs),
                tuple(run.stopped for run in runs),
            )
        )
    return summaries


def pooled(summaries: Sequence[Summary]) -> Summary:
    """One policy's replays on several recordings as one summary (same label): the spread is over all."""
    labels = {summary.label for summary in summaries}
    if len(labels) != 1:
        raise ValueError(f"pooling summaries of different policies: {sorted(labels)}")
    return Summary(
        summaries[0].label,
        tuple(value for summary in summaries for value in summary.saved),
        tuple(value for summary in summaries for value in summary.regret),
        tuple(value for summary in summaries for value in summary.stopped),
    )
