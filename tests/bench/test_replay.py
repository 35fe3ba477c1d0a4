"""The replay harness that compares stopping policies on recorded curves: timing, slots, and each policy.

Synthetic recordings with known shapes stand in for recorded training runs: the harness is arithmetic on
them, so each expectation below is exact by construction, not a property of one CPU.
"""

from __future__ import annotations

import math

import optuna
import pytest

from bench import _replay
from lambdas.stop_training_job import cross_job

BUDGET = 1000


def linear_job(
    name: str, final: float, *, rule_step: int | None = None, startup: float = 10.0
) -> _replay.RecordedJob:
    """``startup`` seconds, then 0.1 s per step; the objective rises linearly to ``final``."""
    steps = range(50, BUDGET + 1, 50)
    return _replay.RecordedJob(
        name=name,
        budget_steps=BUDGET,
        duration=startup + 0.1 * BUDGET,
        step_elapsed=tuple((step, startup + 0.1 * step) for step in steps),
        objective_curve=tuple((step, final * step / BUDGET) for step in steps),
        final_objective=final,
        rule_step=rule_step,
        rule_name="LossNotDecreasing" if rule_step else None,
    )


def run(
    jobs: list[_replay.RecordedJob],
    policy: _replay.Policy,
    *,
    parallel: int = 2,
    rules: bool = True,
    order: list[int] | None = None,
) -> _replay.Replay:
    return _replay.replay(
        jobs,
        policy,
        goal=cross_job.MAXIMIZE,
        order=list(range(len(jobs))) if order is None else order,
        parallel=parallel,
        stop_latency=2.0,
        rules=rules,
    )


def test_elapsed_interpolates_between_metric_lines_and_ends_at_the_duration() -> None:
    job = linear_job("a", 1.0)
    assert job.elapsed(50) == pytest.approx(15.0)
    assert job.elapsed(75) == pytest.approx(17.5)
    assert job.elapsed(BUDGET) == pytest.approx(110.0)


def test_no_stopping_uses_every_second_and_has_no_regret() -> None:
    jobs = [linear_job(f"j{index}", index / 10) for index in range(1, 5)]
    result = run(jobs, _replay.NoStopping())
    assert result.compute == pytest.approx(4 * 110.0)
    assert result.saved_fraction == 0
    assert (result.winner, result.regret) == ("j4", 0)
    # two slots, four jobs of 110 s each: two rounds
    assert result.makespan == pytest.approx(220.0)


def test_a_rule_stops_its_job_at_the_rule_step_plus_the_stop_latency() -> None:
    # GIVEN a job whose rule fires at step 100 (reached 20 s after launch)
    jobs = [linear_job("bad", 0.9, rule_step=100), linear_job("good", 0.5)]
    result = run(jobs, _replay.NoStopping(), parallel=1)
    # THEN it is charged 20 s + 2 s, the next job starts when its slot frees, and the winner is the other job
    assert result.outcomes[0].compute == pytest.approx(22.0)
    assert result.outcomes[0].stopped_by == "LossNotDecreasing"
    assert result.makespan == pytest.approx(22.0 + 110.0)
    # the stopped job was the best configuration: the regret says what stopping it cost
    assert result.winner == "good"
    assert result.regret == pytest.approx(0.4)
    # replayed without rules, nothing stops
    assert run(jobs, _replay.NoStopping(), parallel=1, rules=False).stopped == 0


def test_cross_job_asha_stops_the_worse_jobs_at_a_rung_once_enough_reported() -> None:
    # GIVEN six jobs launched together, best first, finals 0.6 .. 0.1, rungs at 100, 300, 900 (the first
    # validation at the training container's default interval, then 3 times further each)
    jobs = [linear_job(f"j{index}", index / 10) for index in range(1, 7)]
    settings = cross_job.CrossJobSettings(
        policy=cross_job.Policy.ASHA, goal=cross_job.MAXIMIZE, max_steps=BUDGET, min_reports=3
    )
    result = run(jobs, _replay.CrossJob(settings), parallel=6, order=[5, 4, 3, 2, 1, 0])
    # THEN the two that report first at rung 100 go on (fewer than 3 reports: not judged), the four after
    # them are worse than the cutoff of the best third of what the rung holds when they arrive and stop there
    assert [outcome.stopped_at for outcome in result.outcomes] == [100, 100, 100, 100, None, None]
    assert result.winner == "j6"
    assert result.regret == 0
    assert result.saved_fraction == pytest.approx(4 * (110 - 22) / 660)


def test_cross_job_rungs_start_at_the_jobs_first_validation() -> None:
    # GIVEN the same six jobs, best first, validating every 50 steps, and the cross-job defaults for that
    jobs = [linear_job(f"j{index}", index / 10) for index in range(1, 7)]
    settings = cross_job.CrossJobSettings(
        policy=cross_job.Policy.ASHA, goal=cross_job.MAXIMIZE, max_steps=BUDGET, validation_interval=50
    )
    result = run(jobs, _replay.CrossJob(settings), parallel=6, order=[5, 4, 3, 2, 1, 0])
    # THEN the worse four stop at the first validation (step 50, 15 s in), not a whole rung later
    assert [outcome.stopped_at for outcome in result.outcomes] == [50, 50, 50, 50, None, None]
    assert result.outcomes[0].compute == pytest.approx(15.0 + 2.0)
    assert result.regret == 0


def test_without_rejudge_asha_judges_a_job_only_when_it_arrives_at_a_rung() -> None:
    # GIVEN the same jobs launched worst first: each arrives at a rung before every better job
    jobs = [linear_job(f"j{index}", index / 10) for index in range(1, 7)]
    settings = cross_job.CrossJobSettings(
        policy=cross_job.Policy.ASHA, goal=cross_job.MAXIMIZE, max_steps=BUDGET, min_reports=3, rejudge=False
    )
    result = run(jobs, _replay.CrossJob(settings), parallel=6)
    # THEN nothing is stopped: judged on arrival only, a job is never compared with later arrivals
    assert result.stopped == 0


def test_with_rejudge_the_early_arrivals_are_judged_again_as_better_jobs_fill_the_rung() -> None:
    # GIVEN the same jobs, worst first, with the default rejudge
    jobs = [linear_job(f"j{index}", index / 10) for index in range(1, 7)]
    settings = cross_job.CrossJobSettings(
        policy=cross_job.Policy.ASHA, goal=cross_job.MAXIMIZE, max_steps=BUDGET, min_reports=3
    )
    result = run(jobs, _replay.CrossJob(settings), parallel=6)
    # THEN the worse four stop at a later validation, once the better jobs have reported at the rung they
    # passed first; the best two run their budget
    assert [outcome.stopped_at is not None for outcome in result.outcomes] == [True] * 4 + [False] * 2
    assert result.winner == "j6"
    assert result.regret == 0


def test_optuna_median_pruner_is_told_each_validation_and_prunes() -> None:
    jobs = [linear_job(f"j{index}", index / 10) for index in (6, 5, 4, 1)]
    policy = _replay.OptunaPruner(lambda: optuna.pruners.MedianPruner(n_startup_trials=1), cross_job.MAXIMIZE)
    result = run(jobs, policy, parallel=1)
    # the first trial completes (the startup trial); the last, worse than the median at once, is pruned
    assert result.outcomes[0].stopped_at is None
    assert result.outcomes[3].stopped_at == 50
    assert result.regret == 0


def test_optuna_hyperband_replays_the_same_way_every_time() -> None:
    # GIVEN jobs whose replay under HyperbandPruner depends on the bracket each trial is hashed into
    jobs = [linear_job(f"j{index}", index / 10) for index in (3, 6, 1, 5, 2, 4, 1, 6)]

    def replayed() -> list[int | None]:
        policy = _replay.OptunaPruner(
            lambda: optuna.pruners.HyperbandPruner(min_resource=50, max_resource=BUDGET), cross_job.MAXIMIZE
        )
        return [outcome.stopped_at for outcome in run(jobs, policy, parallel=2).outcomes]

    # THEN two replays stop the same jobs at the same steps (the study's name, hashed with each trial's
    # number, is fixed)
    assert replayed() == replayed()


def test_compare_summarises_every_policy_over_the_same_launch_orders() -> None:
    jobs = [
        linear_job(f"j{index}", index / 10, rule_step=200 if index == 1 else None) for index in range(1, 7)
    ]
    summaries = _replay.compare(
        jobs,
        {"none": (_replay.NoStopping, False), "rules": (_replay.NoStopping, True)},
        goal=cross_job.MAXIMIZE,
        orders=5,
        parallel=2,
        stop_latency=2.0,
    )
    assert [summary.label for summary in summaries] == ["none", "rules"]
    assert summaries[0].saved == (0.0,) * 5
    assert all(math.isclose(saved, (110 - 32) / 660) for saved in summaries[1].saved)
    assert summaries[1].row()[6] == "5/5"


def test_pooled_replays_of_one_policy_keep_every_replay_and_refuse_mixed_policies() -> None:
    # GIVEN one policy's replays on two recordings (2 orders each)
    first = _replay.Summary("autostop", (0.5, 0.6), (0.0, 0.01), (3, 4))
    second = _replay.Summary("autostop", (0.4, 0.7), (0.0, 0.0), (2, 5))
    # WHEN they are pooled
    both = _replay.pooled([first, second])
    # THEN the row is over all four replays
    assert both.saved == (0.5, 0.6, 0.4, 0.7)
    assert both.row()[6] == "3/4"
    assert both.regret_zero == 3
    assert both.mean_regret == pytest.approx(0.0025)
    # AND replays of different policies are never pooled
    with pytest.raises(ValueError, match="different policies"):
        _replay.pooled([first, _replay.Summary("optuna", (0.5,), (0.0,), (1,))])
