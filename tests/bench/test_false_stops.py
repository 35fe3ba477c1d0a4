"""A fast subset of the false-stop benchmark: two healthy and two bad jobs, rules at their defaults.

The jobs run exactly as in ``bench/false_stops.py`` (the container entry point, in this process), shorter:
100 steps, validation every 20. The bad jobs are bad by construction -- a learning rate of exactly 0 leaves
the validation loss exactly unchanged, a NaN pixel in every batch makes the loss NaN at the first step -- so
where and by which rule they stop does not depend on the CPU.
"""

from __future__ import annotations

import pytest

from bench import false_stops

STEPS = 100
VALIDATION_INTERVAL = 20
HEALTHY = ("healthy-01", "healthy-13")
BAD = ("zero-lr-small", "nan-data-small")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, false_stops.Outcome]:
    root = tmp_path_factory.mktemp("false-stops")
    channel = false_stops.prepare_data(root / "data", image_sizes=(16,))[16]
    configurations = {
        configuration.name: configuration
        for configuration in [*false_stops.healthy_configurations(), *false_stops.bad_configurations()]
    }
    return {
        name: false_stops.run_job(
            configurations[name],
            channel,
            root / name,
            steps=STEPS,
            validation_interval=VALIDATION_INTERVAL,
        )
        for name in (*HEALTHY, *BAD)
    }


@pytest.mark.slow
def test_the_subset_uses_small_jobs_of_both_losses_and_presets() -> None:
    configurations = {
        configuration.name: configuration for configuration in false_stops.healthy_configurations()
    }
    chosen = [configurations[name].hyperparameters for name in HEALTHY]
    assert {hyperparameters["image_size"] for hyperparameters in chosen} == {16}
    assert {hyperparameters["loss"] for hyperparameters in chosen} == {"ssim", "l2"}
    assert {hyperparameters["preset"] for hyperparameters in chosen} == {"optimized", "baseline"}
    assert len(false_stops.healthy_configurations()) >= 32
    assert len(false_stops.bad_configurations()) >= 8


@pytest.mark.slow
def test_healthy_jobs_run_their_whole_budget(outcomes: dict[str, false_stops.Outcome]) -> None:
    # GIVEN healthy jobs from the benchmark's grid, every rule at its defaults
    # THEN none is stopped, each ran to its budget and its trial shows no defect
    for name in HEALTHY:
        outcome = outcomes[name]
        assert (outcome.verdict, outcome.stopped_by, outcome.steps_run) == ("ok", None, STEPS), name
        assert outcome.defect is None, name


@pytest.mark.slow
def test_a_zero_learning_rate_is_stopped_by_loss_not_decreasing(
    outcomes: dict[str, false_stops.Outcome],
) -> None:
    outcome = outcomes["zero-lr-small"]

    # THEN the validation loss is unchanged from the second validation (40) on: the comparisons at 40, 60
    # and 80 find no decrease, so the stop comes at 80 (patience 3), and the job ends there
    assert (outcome.defect, outcome.defect_step) == ("validation loss did not move", 40)
    assert (outcome.stopped_by, outcome.stop_step) == ("LossNotDecreasing", 80)
    assert outcome.steps_run < STEPS
    assert outcome.verdict == "stopped"


@pytest.mark.slow
def test_nan_producing_data_is_stopped_by_exploding_tensor(outcomes: dict[str, false_stops.Outcome]) -> None:
    outcome = outcomes["nan-data-small"]

    # THEN the loss is NaN at the first step it is recorded at (losses every 5 steps; the writer may also
    # record a non-finite loss at the step it appears), which is where ExplodingTensor stops the job
    assert outcome.defect == "loss not finite"
    assert outcome.defect_step is not None
    assert outcome.defect_step <= 5
    assert (outcome.stopped_by, outcome.stop_step) == ("ExplodingTensor", outcome.defect_step)
    assert outcome.steps_run < STEPS


def test_the_table_counts_false_and_missed_stops() -> None:
    # GIVEN three healthy-grid jobs the rules would have stopped: one that learned in its budget, one whose
    # SSIM did not rise, one whose SSIM rose while a layer stayed dead to the end; and a bad job never stopped
    healthy, bad = false_stops.healthy_configurations()[0], false_stops.bad_configurations()[0]

    def outcome(configuration: false_stops.Configuration, **fields: object) -> false_stops.Outcome:
        values: dict[str, object] = {
            "exit_code": 0,
            "steps_run": false_stops.STEPS,
            "stopped_by": None,
            "stop_step": None,
            "finding": "",
            "defect": None,
            "defect_step": None,
            "first_ssim": 0.01,
            "last_ssim": 0.02,
            "seconds": 1.0,
            "lowest_peak_ratio": 1e-3,
            "embedding_spread": 1.0,
        }
        return false_stops.Outcome(configuration=configuration, **{**values, **fields})  # type: ignore[arg-type]

    outcomes = [
        outcome(healthy, stopped_by="Overfit", stop_step=90, last_ssim=0.2),
        outcome(healthy, stopped_by="VanishingGradient", stop_step=50),
        outcome(
            healthy,
            stopped_by="VanishingGradient",
            stop_step=30,
            last_ssim=0.2,
            defect="gradients/bottleneck_dense_1/bias exactly 0 to the end",
            defect_step=10,
        ),
        outcome(bad),
    ]

    # THEN the first is a false stop, the next two jobs that did not learn anyway, the last a missed stop
    verdicts = [item.verdict for item in outcomes]
    assert verdicts == [
        "FALSE STOP",
        "stopped, did not learn in its budget",
        "stopped, did not learn in its budget",
        "MISSED",
    ]
    text = false_stops.render(outcomes, seconds=60.0, cpu_seconds=90.0)
    assert "**False stops: 1 of 3** healthy-grid jobs (healthy-01)" in text
    assert "**Missed stops: 1 of 1** bad jobs (zero-lr)" in text
    assert "not false stops): healthy-01, healthy-01" in text


def test_a_job_whose_embeddings_are_all_one_vector_did_not_learn() -> None:
    # GIVEN a stopped grid job whose SSIM rose but whose encoder maps every design to one vector (or NaN)
    healthy = false_stops.healthy_configurations()[0]
    common: dict[str, object] = {
        "exit_code": 0,
        "steps_run": false_stops.STEPS,
        "stopped_by": "VanishingGradient",
        "stop_step": 30,
        "finding": "",
        "defect": None,
        "defect_step": None,
        "first_ssim": 0.01,
        "last_ssim": 0.3,
        "seconds": 1.0,
    }
    # THEN it did not learn; a spread well above round-off did
    for spread, learned in ((0.0, False), (1e-6, False), (float("nan"), False), (0.02, True)):
        outcome = false_stops.Outcome(configuration=healthy, embedding_spread=spread, **common)  # type: ignore[arg-type]
        assert outcome.learned is learned, spread
