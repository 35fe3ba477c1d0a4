"""The cross-job decision: rung levels, the two policies, and the guards that protect a healthy job.

Properties are checked over random sweeps (hypothesis): whatever the objectives, the best job at a rung is
never stopped, nothing is judged on fewer reports than configured, and a job is never stopped while a worse
job at the same rung would continue.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lambdas.stop_training_job import cross_job


def settings(**changes: object) -> cross_job.CrossJobSettings:
    values: dict[str, object] = {
        "policy": cross_job.Policy.ASHA,
        "goal": cross_job.MAXIMIZE,
        "max_steps": 1000,
        "grace_period": 100,
        "reduction_factor": 3.0,
        "min_reports": 3,
        "keep_best": 1,
    }
    values.update(changes)
    return cross_job.CrossJobSettings(**values)  # type: ignore[arg-type]


objectives = st.one_of(
    st.floats(min_value=-10, max_value=10, allow_nan=False),
    st.just(math.nan),
    st.just(-math.inf),
)
sweeps = st.dictionaries(st.text("abcdefgh", min_size=1, max_size=3), objectives, min_size=1, max_size=12)


def test_rungs_are_the_geometric_series_below_the_budget() -> None:
    # GIVEN a grace period of 100 steps, a reduction factor of 3 and 1000 steps per job
    # WHEN the rung levels are derived
    # THEN they are 100, 300 and 900 (2700 is past the budget, where every job ends anyway)
    assert settings().rungs() == (100, 300, 900)
    assert settings(rung_levels=(50, 500, 5000, 50)).rungs() == (50, 500)


def test_by_default_the_first_rung_is_the_first_validation() -> None:
    # GIVEN no grace period, jobs of 600 steps validating every 50 steps
    configured = cross_job.CrossJobSettings(
        policy=cross_job.Policy.ASHA, goal=cross_job.MAXIMIZE, max_steps=600, validation_interval=50
    )
    # WHEN the rung levels are derived
    # THEN the first is the first validation and each next is twice as far (the default reduction factor),
    # as Syne Tune's and Ray Tune's ASHA count rungs from one report (their grace_period=1)
    assert configured.first_rung == 50
    assert configured.rungs() == (50, 100, 200, 400)
    # AND without a validation interval, the training container's default (a validation every 100 steps)
    unset = cross_job.CrossJobSettings(policy=cross_job.Policy.ASHA, goal=cross_job.MAXIMIZE, max_steps=1000)
    assert unset.validation_interval == cross_job.DEFAULT_VALIDATION_INTERVAL == 100
    assert unset.rungs() == (100, 200, 400, 800)
    # AND an explicit grace period still wins
    assert settings(grace_period=200, validation_interval=50).rungs() == (200, 600)


def test_a_step_jump_reports_the_highest_rung_it_passed() -> None:
    # GIVEN rungs at 100, 300, 900
    # WHEN a job's metric lines jump from step 90 to 310, then 310 to 320
    # THEN the first jump reaches rung 300 (the latest evidence), the second none
    assert cross_job.rung_reached(settings(), 90, 310) == 300
    assert cross_job.rung_reached(settings(), 310, 320) is None
    assert cross_job.rung_reached(settings(), 99, 100) == 100


def test_with_rejudge_every_validation_from_the_first_rung_is_judged_at_the_highest_rung_passed() -> None:
    # GIVEN rungs at 100, 300, 900, judged again as they fill up (the default)
    assert cross_job.DEFAULT_REJUDGE is True
    # WHEN a job validates before, at and between its rungs
    # THEN nothing before the first rung; from there on, the highest rung at or below the step
    assert cross_job.rung_to_judge(settings(), 0, 50) is None
    assert cross_job.rung_to_judge(settings(), 50, 100) == 100
    assert cross_job.rung_to_judge(settings(), 100, 150) == 100
    assert cross_job.rung_to_judge(settings(), 250, 350) == 300
    assert cross_job.rung_to_judge(settings(), 900, 950) == 900
    # AND without rejudge only the validation that passes a rung is judged, once
    once = settings(rejudge=False)
    assert [cross_job.rung_to_judge(once, *steps) for steps in ((50, 100), (100, 150), (250, 350))] == [
        100,
        None,
        300,
    ]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"goal": "best"}, "goal"),
        ({"reduction_factor": 1.5}, "reduction_factor"),
        ({"min_reports": 1}, "min_reports"),
        ({"keep_best": 0}, "keep_best"),
        ({"grace_period": 0}, "grace_period"),
        ({"rejudge": "yes"}, "rejudge must be true or false"),
        ({"grace_period": None, "validation_interval": 0}, "validation_interval"),
    ],
)
def test_unusable_settings_are_refused_with_the_setting_named(
    changes: dict[str, object], fragment: str
) -> None:
    with pytest.raises(cross_job.SettingsError, match=fragment):
        settings(**changes)


def test_asha_keeps_the_best_third_and_stops_the_rest() -> None:
    # GIVEN six jobs at rung 100 with validation SSIM 0.1 .. 0.6 (maximize)
    peers = {f"job-{index}": index / 10 for index in range(1, 7)}
    decisions = {job: cross_job.judge(settings(), rung=100, job=job, peers=peers) for job in peers}
    # THEN the two best continue and the four others stop: job-4's five others put the cutoff of their best
    # third at 0.5 - (0.5 - 0.3) / 3 (numpy's linear interpolation, as Ray Tune's ASHA), above its 0.4
    assert sorted(job for job, judged in decisions.items() if not judged.stops) == ["job-5", "job-6"]
    assert decisions["job-4"].threshold == pytest.approx(0.5 - 0.2 / 3)
    assert decisions["job-1"].reason == (
        "objective 0.1 is worse than 0.466667, the cutoff of the best 1/3 of 5 others"
    )


def test_asha_does_not_stop_a_job_for_trailing_slightly_when_the_rest_is_broken() -> None:
    # GIVEN a rung holding a healthy job, one whose loss never moved, and a second healthy job slightly behind
    # the first (the demo's sweep at step 150: SSIM 0.326, 0.012 and 0.310)
    peers = {"healthy": 0.326, "flat": 0.012, "behind": 0.310}
    # WHEN the job slightly behind arrives
    judged = cross_job.judge(settings(), rung=150, job="behind", peers=peers)
    # THEN it continues: the cutoff of the best third of its two others lies between them (a cut by rank
    # alone, a third of three is one, would stop it); the broken job stops
    assert not judged.stops
    assert judged.threshold == pytest.approx(0.012 + (0.326 - 0.012) * 2 / 3)
    assert cross_job.judge(settings(), rung=150, job="flat", peers=peers).stops


def test_asha_is_not_lenient_to_a_nan_objective_and_no_job_is_stopped_for_trailing_one() -> None:
    # GIVEN a rung where one job diverged (NaN)
    peers = {"best": 0.5, "second": 0.4, "diverged": math.nan}
    # THEN the diverged job stops, and the second is not stopped for being behind the best of the two others
    # (the cutoff between 0.5 and a NaN, the worst, is no finite objective)
    assert cross_job.judge(settings(), rung=100, job="diverged", peers=peers).stops
    assert not cross_job.judge(settings(), rung=100, job="second", peers=peers).stops


def test_median_rule_stops_only_what_is_worse_than_the_others_median() -> None:
    # GIVEN four jobs minimizing a loss
    peers = {"a": 0.2, "b": 0.3, "c": 0.4, "d": 0.9}
    policy = settings(policy=cross_job.Policy.MEDIAN, goal=cross_job.MINIMIZE)
    # THEN b (0.3 = median of a, c, d) continues, d (worse than 0.3) stops, a continues
    assert not cross_job.judge(policy, rung=100, job="b", peers=peers).stops
    judged = cross_job.judge(policy, rung=100, job="d", peers=peers)
    assert judged.stops
    assert judged.threshold == pytest.approx(0.3)
    assert not cross_job.judge(policy, rung=100, job="a", peers=peers).stops


def test_a_nan_objective_ranks_last() -> None:
    peers = {"a": 0.5, "b": 0.4, "nan": math.nan}
    judged = cross_job.judge(settings(), rung=300, job="nan", peers=peers)
    assert judged.rank == 3
    assert judged.stops


@given(sweep=sweeps, policy=st.sampled_from(list(cross_job.Policy)), goal=st.sampled_from(cross_job.GOALS))
def test_property_the_best_job_and_thin_evidence_never_stop(
    sweep: dict[str, float], policy: cross_job.Policy, goal: str
) -> None:
    configured = settings(policy=policy, goal=goal, min_reports=3, keep_best=1)
    for job in sweep:
        judged = cross_job.judge(configured, rung=100, job=job, peers=sweep)
        if len(sweep) < configured.min_reports or judged.rank == 1:
            assert not judged.stops, judged


@given(sweep=sweeps, policy=st.sampled_from(list(cross_job.Policy)), goal=st.sampled_from(cross_job.GOALS))
def test_property_a_better_job_is_never_stopped_while_a_worse_one_continues(
    sweep: dict[str, float], policy: cross_job.Policy, goal: str
) -> None:
    configured = settings(policy=policy, goal=goal, min_reports=2)
    judged = {job: cross_job.judge(configured, rung=100, job=job, peers=sweep) for job in sweep}
    for stopped in (job for job, verdict in judged.items() if verdict.stops):
        for continuing in (job for job, verdict in judged.items() if not verdict.stops):
            assert judged[continuing].rank < judged[stopped].rank


def test_a_job_without_a_report_cannot_be_judged() -> None:
    with pytest.raises(ValueError, match="no objective"):
        cross_job.judge(settings(), rung=100, job="ghost", peers={"a": 1.0})
