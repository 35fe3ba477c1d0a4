"""The ``autostop_cross_job`` hyperparameter: what the launcher writes is what the Lambda judges with, every
setting spelled out, and a value that cannot be trusted to mean one thing is refused with every problem."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from lambdas.stop_training_job import cross_job, sweep_settings

SETTINGS = cross_job.CrossJobSettings(
    policy=cross_job.Policy.MEDIAN,
    goal=cross_job.MINIMIZE,
    max_steps=1000,
    grace_period=50,
    reduction_factor=4.0,
    min_reports=4,
    keep_best=2,
    dry_run=True,
)
COMPARISON = sweep_settings.SweepComparison(sweep="vision-lr", metric="validation:loss", settings=SETTINGS)


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(sweep_settings.encode(COMPARISON))
    return loaded


def test_the_value_round_trips_with_every_setting_spelled_out() -> None:
    # GIVEN a comparison with settings away from their defaults
    value = sweep_settings.encode(COMPARISON)
    document = json.loads(value)
    # THEN the value is compact JSON naming the sweep, the objective, every field of the settings (none
    # left to a default) and the rungs they give
    fields = [field.name for field in dataclasses.fields(cross_job.CrossJobSettings)]
    assert list(document) == ["sweep", "metric", *fields, "rungs"]
    assert {key: document[key] for key in ("sweep", "metric", "policy", "goal", "max_steps")} == {
        "sweep": "vision-lr",
        "metric": "validation:loss",
        "policy": "median",
        "goal": "minimize",
        "max_steps": 1000,
    }
    assert {key: document[key] for key in ("grace_period", "reduction_factor", "rung_levels")} == {
        "grace_period": 50,
        "reduction_factor": 4.0,
        "rung_levels": [],
    }
    assert (document["min_reports"], document["keep_best"], document["dry_run"]) == (4, 2, True)
    assert document["rungs"] == [50, 200, 800]
    assert " " not in value
    # AND it reads back as the same comparison
    assert sweep_settings.decode(value) == COMPARISON


def test_a_value_json_quoted_again_by_the_sdk_reads_the_same() -> None:
    value = json.dumps(sweep_settings.encode(COMPARISON))
    assert sweep_settings.decode(value) == COMPARISON


def test_explicit_rung_levels_round_trip() -> None:
    settings = cross_job.CrossJobSettings(
        policy=cross_job.Policy.ASHA, goal=cross_job.MAXIMIZE, max_steps=600, rung_levels=(100, 400)
    )
    comparison = sweep_settings.SweepComparison(sweep="s", metric="validation:ssim", settings=settings)
    assert sweep_settings.decode(sweep_settings.encode(comparison)) == comparison


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"policy": "hyperband"}, "policy must be one of"),
        ({"goal": "up"}, "goal must be maximize or minimize"),
        ({"min_reports": "3"}, "min_reports must be an integer"),
        ({"keep_best": True}, "keep_best must be an integer"),
        ({"reduction_factor": "3"}, "reduction_factor must be a number"),
        ({"dry_run": "false"}, "dry_run must be true or false"),
        ({"rejudge": 1}, "rejudge must be true or false"),
        ({"rung_levels": [100, "400"]}, "rung_levels must be a list of integers"),
        ({"min_reports": 1}, "min_reports must be >= 2"),
        ({"sweep": "no spaces"}, "is not a sweep name"),
        ({"metric": "train:loss"}, "is not validation:<metric>"),
        ({"rungs": [50, 200]}, "are not the settings' own"),
        ({"patience": 3}, "unknown key 'patience'"),
    ],
)
def test_a_bad_value_is_refused_naming_the_problem(change: dict[str, Any], problem: str) -> None:
    value = json.dumps({**document(), **change})
    with pytest.raises(sweep_settings.SweepSettingsError, match=problem):
        sweep_settings.decode(value)


@pytest.mark.parametrize("value", [None, 3, "", "not json", "[1, 2]", '"\\"nested\\""', "x" * 2501])
def test_a_value_that_is_not_the_launchers_json_object_is_refused(value: object) -> None:
    with pytest.raises(sweep_settings.SweepSettingsError, match="autostop_cross_job"):
        sweep_settings.decode(value)


def test_a_missing_key_is_named() -> None:
    incomplete = document()
    del incomplete["max_steps"]
    with pytest.raises(sweep_settings.SweepSettingsError, match="missing key 'max_steps'"):
        sweep_settings.decode(json.dumps(incomplete))


def test_the_description_of_a_job_launched_without_it_says_so() -> None:
    with pytest.raises(sweep_settings.SweepSettingsError, match="not launched for cross-job stopping"):
        sweep_settings.from_description({"HyperParameters": {"learning_rate": "0.01"}})
    value = sweep_settings.encode(COMPARISON)
    assert sweep_settings.from_description({"HyperParameters": {"autostop_cross_job": value}}) == COMPARISON
