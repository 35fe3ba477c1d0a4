"""The benchmark's peer: Optuna's MedianPruner replayed on recorded curves, on a fixed input."""

from __future__ import annotations

import math

import pytest

from bench import sweep_savings
from training.sweep import report


def recorded(
    name: str, losses: list[float], *, start_s: float = 5.0, per_step_s: float = 0.1
) -> report.JobRecord:
    steps = [10 * (index + 1) for index in range(len(losses))]
    return report.JobRecord(
        name=name,
        params={"name": name},
        budget_steps=steps[-1],
        state=report.COMPLETED,
        steps=steps[-1],
        compute_seconds=start_s + steps[-1] * per_step_s,
        seconds_per_step=per_step_s,
        train_curve=list(zip(steps, losses, strict=True)),
        step_elapsed=[(step, start_s + step * per_step_s) for step in steps],
        final_validation={"validation:ssim": 1 - losses[-1]},
    )


def test_trials_worse_than_the_median_of_completed_trials_are_pruned_after_the_startup_trials() -> None:
    # GIVEN 5 completed startup trials, then a good, a flat and a NaN trial (in launch order)
    falling = [1.0, 0.8, 0.6, 0.5]
    jobs = [recorded(f"job-{index}", [value + index * 0.01 for value in falling]) for index in range(5)]
    jobs.append(recorded("good", [0.9, 0.7, 0.5, 0.4]))
    jobs.append(recorded("flat", [1.0, 1.0, 1.0, 1.0]))
    jobs.append(recorded("nan", [math.nan, math.nan, math.nan, math.nan]))
    baseline = report.SweepRecord("s", "local", "validation:ssim", "maximize", jobs)
    # WHEN replaying MedianPruner(n_startup_trials=5, n_warmup_steps=0), with a 2 s stop latency
    replay = sweep_savings.median_pruner_replay(baseline, stop_seconds=2.0)
    states = {job.name: (job.state, job.steps) for job in replay.jobs}
    # THEN the startup trials and the good one ran fully; the flat one was pruned at step 20, its first
    # report above the completed trials' median at that step (at step 10 its 1.0 is below their 1.015);
    # the NaN one at its first report
    assert all(states[f"job-{index}"] == (report.COMPLETED, 40) for index in range(5))
    assert states["good"] == (report.COMPLETED, 40)
    assert states["flat"] == (report.STOPPED, 20)
    assert states["nan"] == (report.STOPPED, 10)
    # AND a pruned trial is charged the recorded time to its pruning step plus the stop latency
    flat = next(job for job in replay.jobs if job.name == "flat")
    assert flat.compute_seconds == pytest.approx(5.0 + 20 * 0.1 + 2.0)
    assert flat.stopped_by_rule == "MedianPruner"
