"""The report's arithmetic on a fixed input: compute used, extrapolated full budget, saved, winner, regret."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from training.sweep import report


def fixed_sweep() -> report.SweepRecord:
    """Five jobs with a 100-step budget: 2 completed, 2 stopped by rules, 1 crashed. The completed jobs
    logged a metric line every 10 steps: 0.4 s/step once running, after a start-up of 5 s (so their rates
    over the whole run, start-up included, are higher)."""
    return report.SweepRecord(
        name="fixed",
        backend="local",
        objective_metric="validation:ssim",
        objective_goal="maximize",
        wall_seconds=70.0,
        jobs=[
            report.JobRecord(
                name="fixed-001",
                params={"learning_rate": 0.001},
                budget_steps=100,
                state=report.COMPLETED,
                steps=100,
                compute_seconds=50.0,
                seconds_per_step=0.45,
                final_validation={"validation:ssim": 0.60, "validation:loss": 0.40},
                train_curve=[(10, 0.9), (100, 0.5)],
                step_elapsed=[(10, 9.0), (20, 13.0), (30, 17.0), (40, 21.0), (100, 45.0)],
            ),
            report.JobRecord(
                name="fixed-002",
                params={"learning_rate": 0.003},
                budget_steps=100,
                state=report.COMPLETED,
                steps=100,
                compute_seconds=48.0,
                seconds_per_step=0.45,
                final_validation={"validation:ssim": 0.70},
                # a pause (the first validation's tracing) between steps 20 and 30: not the steady rate
                step_elapsed=[(10, 8.0), (20, 12.0), (30, 19.0), (40, 23.0), (100, 47.0)],
            ),
            report.JobRecord(  # stopped at step 20 (one interval: too few) -> the sweep's 0.4 s/step
                name="fixed-003",
                params={"learning_rate": 0.0},
                budget_steps=100,
                state=report.STOPPED,
                steps=20,
                compute_seconds=12.0,
                seconds_per_step=0.5,
                stopped_by_rule="LossNotDecreasing",
                rule_step=20,
                stop_source="autostop.training",
                train_curve=[(10, 1.0), (20, 1.0)],
                step_elapsed=[(10, 7.0), (20, 12.0)],
            ),
            report.JobRecord(  # stopped at step 10, before measuring a rate: the sweep's 0.4 s/step
                name="fixed-004",
                params={"learning_rate": 40.0},
                budget_steps=100,
                state=report.STOPPED,
                steps=10,
                compute_seconds=10.0,
                stopped_by_rule="ExplodingTensor",
                train_curve=[(10, math.nan)],
                final_validation={"validation:ssim": math.nan},
            ),
            report.JobRecord(  # crashed: no saving is claimed
                name="fixed-005",
                params={"learning_rate": 0.01},
                budget_steps=100,
                state=report.FAILED,
                steps=5,
                compute_seconds=6.0,
                failure_reason="training failed: boom",
            ),
        ],
    )


def test_the_estimate_counts_the_steps_not_run_at_the_sweeps_steady_state_rate() -> None:
    """GIVEN the fixed sweep (no re-run of the stopped jobs); WHEN totalling it
    THEN the stopped jobs' remaining steps count at the steady-state rate after warm-up (the median
    interval between metric lines after the first: 0.4 s/step), not at rates that include start-up,
    tracing or a pause (0.45-0.5 s/step), and the headline says it is an estimate."""
    totals = report.totals(fixed_sweep())
    # used = 50 + 48 + 12 + 10 + 6 = 126 s
    assert totals.compute_used_seconds == pytest.approx(126.0)
    assert totals.steady_seconds_per_step == pytest.approx(0.4)
    # at full budget: job 3 12 + 80 x 0.4 = 44; job 4 10 + 90 x 0.4 = 46; the others as used
    assert totals.compute_full_budget_seconds == pytest.approx(50 + 48 + 44 + 46 + 6)
    assert totals.compute_saved_seconds == pytest.approx(194 - 126)
    assert totals.compute_saved_percent == pytest.approx(100 * 68 / 194)
    assert (totals.saved_percent, totals.saved_basis) == (totals.compute_saved_percent, "estimated")
    # AND the steps not run: 80 + 90 of the 500 budgeted (the crash's missing steps are not a saving)
    assert (totals.steps_saved, totals.steps_budget) == (170, 500)
    assert totals.steps_saved_percent == pytest.approx(34.0)
    assert totals.stopped_by_rules == 2
    assert totals.states == {report.COMPLETED: 2, report.STOPPED: 2, report.FAILED: 1}
    assert totals.wall_seconds == 70.0


def test_the_winner_is_the_best_completed_job_and_the_regret_needs_a_baseline() -> None:
    # GIVEN no baseline; WHEN totalling
    totals = report.totals(fixed_sweep())
    # THEN the winner is the best completed job; the regret is unknown, and says why
    assert (totals.winner, totals.winner_value) == ("fixed-002", 0.70)
    assert totals.regret is None
    assert "not measured" in totals.regret_note


def test_regret_is_zero_when_no_stopped_job_would_have_won() -> None:
    # GIVEN a baseline in which the stopped jobs end below the winner
    sweep = fixed_sweep()
    sweep.baseline = {"fixed-001": 0.60, "fixed-002": 0.70, "fixed-003": 0.05, "fixed-004": -math.inf}
    # WHEN totalling; THEN regret 0
    totals = report.totals(sweep)
    assert totals.best_possible == "fixed-002"
    assert totals.regret == 0.0


def test_regret_is_what_the_stop_cost_when_a_stopped_job_would_have_won() -> None:
    # GIVEN a baseline in which stopped job 3 would have reached 0.75 at its full budget
    sweep = fixed_sweep()
    sweep.baseline = {"fixed-001": 0.60, "fixed-002": 0.70, "fixed-003": 0.75}
    totals = report.totals(sweep)
    # THEN the regret is 0.75 - 0.70, named
    assert totals.best_possible == "fixed-003"
    assert totals.regret == pytest.approx(0.05)
    assert "fixed-003 would have been better" in totals.regret_note


def test_a_minimized_objective_turns_the_comparison_around() -> None:
    sweep = fixed_sweep()
    sweep.objective_metric, sweep.objective_goal = "validation:loss", "minimize"
    sweep.jobs[1].final_validation["validation:loss"] = 0.30
    sweep.baseline = {"fixed-001": 0.40, "fixed-002": 0.30, "fixed-003": 0.25}
    totals = report.totals(sweep)
    assert totals.winner == "fixed-002"
    assert totals.regret == pytest.approx(0.05)


def test_no_completed_job_means_no_winner_and_no_saving_claimed_for_failures() -> None:
    sweep = fixed_sweep()
    sweep.jobs = [sweep.jobs[4]]
    totals = report.totals(sweep)
    assert totals.winner is None
    assert totals.compute_saved_seconds == 0.0


def test_records_round_trip_through_json_keeping_nan(tmp_path: Path) -> None:
    # GIVEN records with a NaN loss; WHEN saved and loaded
    sweep = fixed_sweep()
    sweep.save(tmp_path)
    loaded = report.SweepRecord.load(tmp_path)
    # THEN the numbers are the same, NaN included (JSON has none: it is written as a string)
    assert math.isnan(loaded.jobs[3].train_curve[0][1])
    assert report.totals(loaded) == report.totals(sweep)
    json.loads((tmp_path / report.RECORDS_FILE).read_text(encoding="utf-8"))  # strict JSON


def test_write_report_writes_markdown_json_and_plots(tmp_path: Path) -> None:
    # GIVEN the fixed sweep with a baseline; WHEN writing its report
    sweep = fixed_sweep()
    sweep.baseline = {"fixed-001": 0.60, "fixed-002": 0.70, "fixed-003": 0.05}
    files = report.write_report(sweep, tmp_path)
    # THEN the markdown states the totals in words and tables
    text = files.markdown.read_text(encoding="utf-8")
    assert (
        "5 jobs ran with a budget of 100 steps each. 2 were stopped by a rule; 2 completed; 1 failed." in text
    )
    assert "**126.0 s** of compute" in text
    assert "**35.1% saved (estimate)**" in text
    assert "| 10.0 | - | 46.0* |" in text
    assert "the sweep's steady-state rate, 0.4000 s/step" in text
    assert (
        "| fixed-003 | learning_rate=0 | Stopped | LossNotDecreasing (condition at step 20) | 20/100 |"
        in text
    )
    assert "Best job: **fixed-002**" in text
    # AND the JSON carries the same totals
    document = json.loads(files.json.read_text(encoding="utf-8"))
    assert document["totals"]["compute_saved_seconds"] == pytest.approx(68.0)
    assert document["totals"]["regret"] == 0.0
    # AND the plots are PNG files
    for plot in files.plots:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_record_with_an_unknown_state_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown state 'Done'"):
        report.JobRecord(name="x", params={}, budget_steps=10, state="Done")


def test_a_job_stopped_before_any_rate_was_measured_claims_no_saving_without_a_sweep_rate() -> None:
    # GIVEN a sweep in which no job measured a rate
    sweep = fixed_sweep()
    sweep.jobs = [sweep.jobs[3]]
    # WHEN totalling; THEN nothing is extrapolated
    totals = report.totals(sweep)
    assert totals.compute_full_budget_seconds == totals.compute_used_seconds == 10.0
    assert "no rate: no saving claimed" in report.markdown(sweep)


def test_a_measured_baseline_replaces_the_extrapolation_for_the_stopped_jobs() -> None:
    # GIVEN the stopped jobs re-run to their full budget: 40 s and 60 s
    sweep = fixed_sweep()
    sweep.baseline_compute = {"fixed-003": 40.0, "fixed-004": 60.0}
    # WHEN totalling
    totals = report.totals(sweep)
    # THEN the measured full budget counts them as re-run and the others as used: 50 + 48 + 40 + 60 + 6
    assert totals.compute_full_budget_measured_seconds == pytest.approx(204.0)
    assert totals.compute_saved_measured_percent == pytest.approx(100 * (204 - 126) / 204)
    assert (totals.saved_basis, totals.saved_percent) == ("measured", totals.compute_saved_measured_percent)
    # AND the estimate stays beside it, after it: the report leads with the measured figure
    assert totals.compute_full_budget_seconds == pytest.approx(194.0)
    text = report.markdown(sweep)
    measured, estimated = text.index("**38.2% saved (measured)**"), text.index("35.1% saved (the stopped")
    assert measured < estimated
    assert "| fixed-003 | learning_rate=0 | Stopped |" in text
    assert "| 20/100 | 12.0 | 40.0 | 44.0* |" in text


def test_a_stopped_job_that_logged_enough_lines_uses_its_own_steady_rate() -> None:
    """GIVEN a stopped job (a bigger batch: 1 s/step) that logged 4 intervals after its first line
    WHEN totalling THEN its remaining steps count at its own steady rate, not the sweep's 0.4 s/step."""
    sweep = fixed_sweep()
    sweep.jobs[2].steps, sweep.jobs[2].compute_seconds = 50, 55.0
    sweep.jobs[2].step_elapsed = [(10, 12.0), (20, 22.0), (30, 32.0), (40, 42.0), (50, 52.0)]

    assert sweep.jobs[2].steady_rate == pytest.approx(1.0)
    assert sweep.jobs[2].full_budget_seconds(report.sweep_steady_rate(sweep)) == pytest.approx(55 + 50 * 1.0)


def test_on_sagemaker_each_jobs_billable_seconds_are_its_compute() -> None:
    """GIVEN SageMaker records: wall times and the billable seconds DescribeTrainingJob reported
    (BillableTimeInSeconds: what a job is charged for, less than its wall time with managed spot;
    SageMaker API reference, DescribeTrainingJob), no metric-line times, a rate from CloudWatch
    WHEN totalling THEN used and estimated compute start from the billable seconds."""
    sweep = report.SweepRecord(
        name="sm",
        backend="sagemaker",
        objective_metric="validation:ssim",
        objective_goal="maximize",
        jobs=[
            report.JobRecord(
                name="sm-1",
                params={},
                budget_steps=1000,
                state=report.COMPLETED,
                steps=1000,
                compute_seconds=900.0,
                billable_seconds=600.0,
                seconds_per_step=0.5,
            ),
            report.JobRecord(
                name="sm-2",
                params={},
                budget_steps=1000,
                state=report.STOPPED,
                steps=100,
                compute_seconds=200.0,
                billable_seconds=120.0,
                stopped_by_rule="LossNotDecreasing",
            ),
        ],
    )

    totals = report.totals(sweep)

    assert totals.compute_used_seconds == pytest.approx(720.0)
    assert totals.compute_full_budget_seconds == pytest.approx(600 + 120 + 900 * 0.5)
    assert totals.saved_basis == "estimated"
    assert report.SweepRecord.from_json_dict(sweep.to_json_dict()).jobs[1].billable_seconds == 120.0
