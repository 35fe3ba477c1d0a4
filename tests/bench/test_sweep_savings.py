"""The sweep-savings benchmark's own bookkeeping: which recordings it reuses, and its options.

Recording a sweep trains every job (tens of minutes), so the benchmark keeps its recordings and replays them;
what is under test is that a recording is reused only for the recipe it was made with.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import sweep_savings

SPEC = {
    "name": "realistic",
    "steps_per_job": 600,
    "hyperparameters": {"validation_interval": 50},
    "rules": ["LossNotDecreasing"],
    "stopping": {"rules": "*"},
}


def test_a_run_without_stopping_does_not_depend_on_the_stopping_sections() -> None:
    # GIVEN the recipe of a sweep run without stopping
    full = sweep_savings.recording_recipe(SPEC, stop_jobs=False)
    # WHEN only the stopping sections change (a cross_job section is added, the rules stop nothing)
    changed = {**SPEC, "cross_job": {"policy": "asha"}, "stopping": {"rules": []}}
    # THEN the recording stays valid; a run with stopping is another recording
    assert sweep_savings.recording_recipe(changed, stop_jobs=False) == full
    assert sweep_savings.recording_recipe(changed, stop_jobs=True) != sweep_savings.recording_recipe(
        SPEC, stop_jobs=True
    )
    # AND what training depends on (the budget, the rules evaluated on the trial) changes it
    assert sweep_savings.recording_recipe({**SPEC, "steps_per_job": 300}, stop_jobs=False) != full
    assert sweep_savings.recording_recipe({**SPEC, "rules": []}, stop_jobs=False) != full


def test_a_recording_is_reused_only_when_finished_with_the_same_recipe(tmp_path: Path) -> None:
    wanted = sweep_savings.recording_recipe(SPEC, stop_jobs=False)
    # GIVEN no recipe file: an unfinished (or never started) recording
    assert not sweep_savings.cached(tmp_path, wanted, reuse=True)
    # WHEN the recipe is written last, as a finished recording does
    (tmp_path / sweep_savings.RECIPE_FILE).write_text(wanted, encoding="utf-8")
    # THEN it is reused, unless asked to record afresh or the recipe differs
    assert sweep_savings.cached(tmp_path, wanted, reuse=True)
    assert not sweep_savings.cached(tmp_path, wanted, reuse=False)
    assert not sweep_savings.cached(
        tmp_path, sweep_savings.recording_recipe(SPEC, stop_jobs=True), reuse=True
    )


def test_options_default_to_the_documented_orders_and_refuse_nonsense(
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = sweep_savings.parse_options([])
    assert (options.orders, options.seed, options.check_orders, options.record) == (7, 2026, 140, False)
    assert sweep_savings.parse_options(["--seed", "1", "--check-orders", "0"]).check_orders == 0
    for bad in (["--orders", "0"], ["--check-orders", "-1"]):
        with pytest.raises(SystemExit):
            sweep_savings.parse_options(bad)
    assert "must be" in capsys.readouterr().err
