"""The rules' semantics on small trials written by the production writer code, under smdebug's invoke_rule."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from smdebug.core.modes import ModeKeys
from smdebug.exceptions import NoMoreData, RuleEvaluationConditionMet
from smdebug.rules import invoke_rule
from smdebug.trials import create_trial

from tests.training.debugger import support
from training.debugger import layout, rules

LOSSES = {"losses": [layout.LOSS_TENSOR]}


def _fires_at(rule: rules.AutostopRule) -> int | None:
    """The training step at which smdebug's invoke_rule says the condition is met, or None (clean end)."""
    try:
        invoke_rule(rule, raise_eval_cond=True)
    except RuleEvaluationConditionMet as met:
        return layout.training_step_of(met.step)
    except NoMoreData:
        return None
    raise AssertionError("invoke_rule ended without RuleEvaluationConditionMet or NoMoreData")


def _trial(tmp_path: Path, records: list[support.Record], collections: dict[str, list[str]]) -> Any:
    return create_trial(support.write_trial(tmp_path / "trial", records, collections))


# --- LossNotDecreasing ---


def _validation(values: dict[int, float]) -> list[support.Record]:
    return support.losses(values, mode=layout.EVAL)


def test_a_decreasing_validation_loss_passes_and_a_flat_one_fires_after_patience_comparisons(
    tmp_path: Path,
) -> None:
    # GIVEN validation losses every 10 steps that decrease, and ones that stay flat
    decreasing = _trial(tmp_path / "a", _validation({step: 1 / step for step in range(10, 61, 10)}), LOSSES)
    flat = _trial(tmp_path / "b", _validation(dict.fromkeys(range(10, 61, 10), 0.7)), LOSSES)

    # WHEN LossNotDecreasing (defaults: num_steps 10, a decrease of 3e-7 of the loss per step, patience 3)
    # runs under invoke_rule
    passing = rules.LossNotDecreasing(decreasing)
    failing = rules.LossNotDecreasing(flat)

    # THEN the decreasing loss ends cleanly; the flat one fires at its third comparison (20, 30, 40)
    assert _fires_at(passing) is None
    assert _fires_at(failing) == 40
    assert failing.last_finding == (
        "loss (EVAL): validation loss 0.7 at step 40 is not 0.0003% below 0.7 at step 30, "
        "3 comparison(s) in a row"
    )


def test_the_reference_is_the_latest_point_num_steps_back_and_checks_are_num_steps_apart(
    tmp_path: Path,
) -> None:
    # GIVEN training losses saved every 3 steps: falling on the grid 0, 12, 24, higher at 18 than at 6, flat
    # from 24 to 36
    values = {0: 1.0, 3: 0.9, 6: 0.5, 9: 0.85, 12: 0.8, 15: 0.7, 18: 0.6, 21: 0.55, 24: 0.4, 27: 0.4, 30: 0.4}
    values |= {33: 0.4, 36: 0.4}
    trial = _trial(tmp_path, support.losses(values), LOSSES)

    # WHEN the rule judges single training losses (window 1) and fires at the first finding (patience 1)
    rule = rules.LossNotDecreasing(trial, num_steps=10, mode=ModeKeys.TRAIN, window=1, patience=1)

    # THEN it compares 12 with 0, 24 with 12 (so 18 vs 6 is never judged) and fires at 36 against 24
    assert _fires_at(rule) == 36
    assert rule.last_finding.endswith(
        "at step 36 is not 0.00036% below 0.4 at step 24, 1 comparison(s) in a row"
    )


def test_diff_percent_requires_a_minimum_decrease(tmp_path: Path) -> None:
    # GIVEN a validation loss that falls 5% every 10 steps
    records = _validation({step: 0.95 ** (step / 10) for step in range(10, 61, 10)})

    # THEN a 1% requirement passes, a 10% requirement fires at the third comparison
    assert _fires_at(rules.LossNotDecreasing(_trial(tmp_path / "a", records, LOSSES), diff_percent=1)) is None
    assert _fires_at(rules.LossNotDecreasing(_trial(tmp_path / "b", records, LOSSES), diff_percent=10)) == 40


def test_a_decrease_within_float32_round_off_is_not_a_decrease(tmp_path: Path) -> None:
    # GIVEN a validation loss that moves by 1e-8 of its value per evaluation (a learning rate of 1e-7 moves
    # it by less), and one that moves by 3e-5 (the smallest step measured on a healthy job's plateau)
    stuck = _validation({step: 0.9877 * (1 - 1e-8 * step) for step in range(10, 41, 10)})
    slow = _validation({step: 0.9877 * (1 - 3e-6 * step) for step in range(10, 41, 10)})

    # THEN the first is not decreasing, the second is
    assert _fires_at(rules.LossNotDecreasing(_trial(tmp_path / "a", stuck, LOSSES))) == 40
    assert _fires_at(rules.LossNotDecreasing(_trial(tmp_path / "b", slow, LOSSES))) is None


def test_a_loss_falling_slower_than_min_decrease_per_step_is_not_decreasing(tmp_path: Path) -> None:
    # GIVEN a validation loss every 30 steps falling by 1.8e-7 of itself per step (as measured on a job with a
    # learning rate of 1e-7: measurable, useless), and one falling by 4e-7 per step (a healthy job at a
    # learning rate of 1e-4 on its initial plateau falls faster)
    crawling = _validation({step: 0.1988 * (1 - 1.8e-7) ** step for step in range(30, 151, 30)})
    slow = _validation({step: 0.9877 * (1 - 4e-7) ** step for step in range(30, 151, 30)})

    # THEN the default (3e-7 per step) fires on the first at its third comparison and passes the second
    rule = rules.LossNotDecreasing(_trial(tmp_path / "a", crawling, LOSSES))
    assert _fires_at(rule) == 120
    assert "is not 0.0009% below" in rule.last_finding
    assert _fires_at(rules.LossNotDecreasing(_trial(tmp_path / "b", slow, LOSSES))) is None
    # AND min_decrease_per_step 0 counts any decrease beyond round-off, as managed Debugger's rule does
    relaxed = rules.LossNotDecreasing(_trial(tmp_path / "c", crawling, LOSSES), min_decrease_per_step=0)
    assert _fires_at(relaxed) is None


def test_until_the_validation_loss_first_falls_only_a_loss_that_does_not_move_counts(tmp_path: Path) -> None:
    # GIVEN validation losses that drift up by 1e-5 of themselves per evaluation from the start (a healthy
    # job's initial plateau), and the same drift after a first fall
    plateau = _validation({step: 0.98777 * (1 + 1e-6 * step) for step in range(10, 61, 10)})
    stalled = _validation(
        {10: 0.99, 20: 0.98, **{step: 0.98 * (1 + 1e-6 * step) for step in range(30, 71, 10)}}
    )

    # THEN the plateau is no finding; once the loss has fallen, not falling any more is
    assert _fires_at(rules.LossNotDecreasing(_trial(tmp_path / "a", plateau, LOSSES))) is None
    assert _fires_at(rules.LossNotDecreasing(_trial(tmp_path / "b", stalled, LOSSES))) == 50


def test_increase_threshold_percent_catches_a_rise_from_the_lowest_loss(tmp_path: Path) -> None:
    # GIVEN a validation loss that dips to 0.5, then climbs to 0.6, still below its value 10 steps earlier
    records = _validation({1: 1.0, 5: 0.5, 11: 0.6})

    # THEN the default only compares with the reference (0.6 < 1.0: no issue); a 10% threshold fires
    assert _fires_at(rules.LossNotDecreasing(_trial(tmp_path / "a", records, LOSSES), patience=1)) is None
    rule = rules.LossNotDecreasing(
        _trial(tmp_path / "b", records, LOSSES), increase_threshold_percent=10, patience=1
    )
    assert _fires_at(rule) == 11
    assert "more than 10% above the lowest 0.5" in rule.last_finding


def test_by_default_training_losses_are_never_judged_as_if_they_were_validation(tmp_path: Path) -> None:
    # GIVEN flat training losses and falling validation losses
    records = support.losses(dict.fromkeys(range(1, 61), 0.8))
    records += _validation({step: 1 / step for step in range(10, 61, 10)})
    records.sort(key=lambda record: layout.global_step(record[0], record[1]))
    trial = _trial(tmp_path, records, LOSSES)

    # THEN by default only validation is judged (it falls: no issue); mode TRAIN judges the flat training
    # loss: medians of steps 1-5, 6-10, ..., judged every 10 steps (at 15, 25, 35), fires at the third
    assert _fires_at(rules.LossNotDecreasing(trial)) is None
    training = rules.LossNotDecreasing(trial, mode=ModeKeys.TRAIN)
    assert _fires_at(training) == 35
    assert training.last_finding.startswith("loss (TRAIN): median of 5 losses 0.8 at step 35 is not 0.0")


def _noisy_losses(seed: int, *, steps: int, plateau: range = range(0)) -> dict[int, float]:
    """A healthy job's batch losses saved every 5 steps: 3% lower every 10 steps (flat over ``plateau``)
    times 5% batch noise."""
    rng = np.random.default_rng(seed)
    values, level = {}, 1.0
    for step in range(5, steps + 1, 5):
        if step not in plateau:
            level *= 0.97**0.5
        values[step] = level * (1 + 0.05 * rng.standard_normal())
    return values


@pytest.mark.parametrize("seed", range(5))
def test_training_loss_windows_ride_out_batch_noise_and_a_50_step_plateau(tmp_path: Path, seed: int) -> None:
    # GIVEN a healthy job's noisy training losses over 300 steps, flat from step 100 to 150, and a stuck job's
    # (the same noise around a constant)
    healthy = support.losses(_noisy_losses(seed, steps=300, plateau=range(100, 151)))
    stuck = support.losses({step: 0.9 * (1 + 0.05 * value) for step, value in _standard_normal(seed)})

    # WHEN mode TRAIN judges medians of 5 saved losses, num_steps 10, patience 3 (the defaults)
    # THEN the healthy job is never stopped; the stuck one is, by step 200 (125-200 over these seeds)
    assert (
        _fires_at(rules.LossNotDecreasing(_trial(tmp_path / "a", healthy, LOSSES), mode=ModeKeys.TRAIN))
        is None
    )
    stuck_at = _fires_at(rules.LossNotDecreasing(_trial(tmp_path / "b", stuck, LOSSES), mode=ModeKeys.TRAIN))
    assert stuck_at is not None
    assert stuck_at <= 200
    # ... while Debugger's single-point comparison (window 1, patience 1) stops the healthy job early on
    single = rules.LossNotDecreasing(
        _trial(tmp_path / "c", healthy, LOSSES), mode=ModeKeys.TRAIN, window=1, patience=1
    )
    single_at = _fires_at(single)
    assert single_at is not None
    assert single_at <= 50


def _standard_normal(seed: int) -> list[tuple[int, float]]:
    rng = np.random.default_rng(seed + 100)
    return [(step, float(rng.standard_normal())) for step in range(5, 301, 5)]


def test_a_nan_loss_is_not_judged_by_loss_not_decreasing(tmp_path: Path) -> None:
    # GIVEN a validation loss that becomes NaN (ExplodingTensor's finding, not a "not decreasing" one)
    trial = _trial(tmp_path, _validation({10: 1.0, 20: math.nan, 30: math.nan, 40: math.nan}), LOSSES)

    # THEN LossNotDecreasing does not fire
    assert _fires_at(rules.LossNotDecreasing(trial, patience=1)) is None


# --- VanishingGradient, ExplodingTensor ---


def _gradient_records(kernel: dict[int, float], zero_from: int | None = None) -> list[support.Record]:
    """Gradients of one dense layer: the kernel's values all equal ``kernel[step]``; the bias stays healthy;
    from ``zero_from`` on the kernel gradient is exactly 0 (no gradient reaches the layer)."""
    return [
        (
            layout.TRAIN,
            step,
            {
                "gradients/dense/kernel": np.full((4, 4), 0.0 if zero_from and step >= zero_from else value),
                "gradients/dense/bias": np.full(4, 1e-3),
            },
        )
        for step, value in kernel.items()
    ]


GRADIENTS = {"gradients": ["gradients/dense/kernel", "gradients/dense/bias"]}


def test_a_freshly_initialized_layers_tiny_gradient_is_its_scale_not_a_vanished_one(tmp_path: Path) -> None:
    # GIVEN a kernel gradient of 1e-11 (measured at initialization on a healthy model) that grows to 1e-5
    trial = _trial(tmp_path, _gradient_records({step: 1e-11 * 10**step for step in range(1, 7)}), GRADIENTS)

    # THEN VanishingGradient at its defaults never fires
    assert _fires_at(rules.VanishingGradient(trial)) is None


def test_a_gradient_that_falls_far_below_its_own_peak_vanishes_after_patience_steps(tmp_path: Path) -> None:
    # GIVEN a kernel gradient of 1e-3 that shrinks to 1e-10 at step 4
    records = _gradient_records({step: 1e-3 if step < 4 else 1e-10 for step in range(1, 9)})
    trial = _trial(tmp_path, records, GRADIENTS)

    # THEN it fires at the third vanished step (4, 5, 6); with patience 1 at 4; a threshold of 1e-11 never;
    # a fall to 1e-5 of its peak (1e-4 was measured on a partly dead layer of a job that kept learning) is no
    # finding
    rule = rules.VanishingGradient(trial)
    assert _fires_at(rule) == 6
    assert rule.last_finding == (
        "gradients/dense/kernel vanished at step 6: mean |gradient| 1e-10 < 1e-07 and < 1e-06 x its peak "
        "0.001, 3 saved step(s) in a row"
    )
    assert _fires_at(rules.VanishingGradient(trial, patience=1)) == 4
    assert _fires_at(rules.VanishingGradient(trial, threshold=1e-11)) is None
    partly_dead = _gradient_records({step: 1e-3 if step < 4 else 1e-8 for step in range(1, 9)})
    assert _fires_at(rules.VanishingGradient(_trial(tmp_path / "b", partly_dead, GRADIENTS))) is None


def test_an_exactly_zero_gradient_is_dead_whatever_its_history(tmp_path: Path) -> None:
    # GIVEN a kernel gradient that is exactly 0 from step 1 (dead from the start) and one from step 3
    dead = _trial(tmp_path / "a", _gradient_records(dict.fromkeys(range(1, 6), 1e-4), zero_from=1), GRADIENTS)
    dying = _trial(
        tmp_path / "b", _gradient_records(dict.fromkeys(range(1, 8), 1e-4), zero_from=3), GRADIENTS
    )

    # THEN both fire after 3 dead steps
    rule = rules.VanishingGradient(dead)
    assert _fires_at(rule) == 3
    assert rule.last_finding == (
        "gradients/dense/kernel vanished at step 3: 100% of its values are exactly 0, "
        "3 saved step(s) in a row"
    )
    assert _fires_at(rules.VanishingGradient(dying)) == 5


def test_exploding_tensor_finds_nan_and_infinity_in_any_collection(tmp_path: Path) -> None:
    # GIVEN finite losses, weights that become infinite at step 3 and NaN at step 5, and an integer tensor
    records: list[support.Record] = [
        (
            layout.TRAIN,
            step,
            {
                "loss": 0.5,
                "weights/dense/kernel": [1.0, math.inf if step >= 3 else 1.0, math.nan if step >= 5 else 1.0],
                layout.FAMILY_INDEX_TENSOR: np.array([0, 1], np.int32),
            },
        )
        for step in range(1, 7)
    ]
    collections = {
        "losses": ["loss"],
        "weights": ["weights/dense/kernel"],
        "embeddings": [layout.FAMILY_INDEX_TENSOR],
    }
    trial = _trial(tmp_path, records, collections)

    # THEN by default infinity fires at step 3; only_nan waits for the NaN; restricted to losses: nothing
    default = rules.ExplodingTensor(trial)
    assert _fires_at(default) == 3
    assert default.last_finding == "weights/dense/kernel has 1 NaN or infinite values at step 3"
    assert _fires_at(rules.ExplodingTensor(trial, only_nan=True)) == 5
    assert _fires_at(rules.ExplodingTensor(trial, collection_names=["losses"])) is None
    assert _fires_at(rules.ExplodingTensor(trial, tensor_regex=["^weights/"])) == 3


# --- Overfit ---


def _overfit_records(validation: dict[int, float]) -> list[support.Record]:
    records = support.losses(dict.fromkeys(range(5, 41, 5), 0.8))
    records += support.losses(validation, mode=layout.EVAL)
    return sorted(records, key=lambda record: layout.global_step(record[0], record[1]))


def test_overfit_compares_validation_with_the_training_mean_since_the_last_evaluation(tmp_path: Path) -> None:
    # GIVEN training losses of 0.8 and validation losses 5%, 25%, 25%, 5% above them
    records = _overfit_records({10: 0.84, 20: 1.0, 30: 1.0, 40: 0.84})

    # THEN ratio_threshold 0.1 fires at the first 25% gap; patience 2 at the second; start_step 25 at 30
    assert _fires_at(rules.Overfit(_trial(tmp_path / "a", records, LOSSES))) == 20
    assert _fires_at(rules.Overfit(_trial(tmp_path / "b", records, LOSSES), patience=2)) == 30
    assert _fires_at(rules.Overfit(_trial(tmp_path / "c", records, LOSSES), start_step=25)) == 30
    assert _fires_at(rules.Overfit(_trial(tmp_path / "d", records, LOSSES), ratio_threshold=0.3)) is None


def test_overfit_needs_a_gap_at_consecutive_evaluations_for_patience(tmp_path: Path) -> None:
    # GIVEN gaps at evaluations 20 and 40 but not at 30
    records = _overfit_records({10: 0.84, 20: 1.0, 30: 0.84, 40: 1.0})

    # THEN patience 2 never fires
    assert _fires_at(rules.Overfit(_trial(tmp_path, records, LOSSES), patience=2)) is None


# --- LatentClusterRule ---


def test_cluster_ratio_is_small_for_grouped_families_and_near_one_for_random_embeddings() -> None:
    rng = np.random.default_rng(5)
    families = np.repeat(np.arange(4), 6)
    centers = rng.normal(size=(4, 8)) * 10
    grouped = centers[families] + rng.normal(size=(24, 8)) * 0.1
    random = rng.normal(size=(24, 8))

    grouped_ratio = rules.cluster_ratio(grouped, families)
    random_ratio = rules.cluster_ratio(random, families)
    assert grouped_ratio is not None
    assert random_ratio is not None
    assert grouped_ratio[0] < 0.05
    assert 0.85 < random_ratio[0] < 1.15
    assert rules.cluster_ratio(random, np.zeros(24, np.int32)) is None  # one family: nothing to compare
    assert rules.cluster_ratio(random[:4], np.arange(4)) is None  # no two designs of a family
    collapsed = rules.cluster_ratio(np.ones((24, 8)), families)
    assert collapsed is not None
    assert collapsed[0] == math.inf


def _embedding_records(embeddings: list[np.ndarray], families: np.ndarray) -> list[support.Record]:
    return [
        (
            layout.TRAIN,
            10 * (index + 1),
            {layout.EMBEDDING_TENSOR: value, layout.FAMILY_INDEX_TENSOR: families},
        )
        for index, value in enumerate(embeddings)
    ]


def test_latent_cluster_rule_fires_after_patience_steps_without_family_structure(tmp_path: Path) -> None:
    # GIVEN probe embeddings that are random at steps 10-30 and grouped by family from step 40 on
    rng = np.random.default_rng(9)
    families = np.repeat(np.arange(4), 6).astype(np.int32)
    grouped = (rng.normal(size=(4, 32)) * 10)[families] + rng.normal(size=(24, 32)) * 0.1
    steps = [rng.normal(size=(24, 32)) for _ in range(3)] + [grouped, grouped]
    collections = {"embeddings": [layout.EMBEDDING_TENSOR, layout.FAMILY_INDEX_TENSOR]}
    trial = _trial(tmp_path, _embedding_records(steps, families), collections)

    # THEN patience 3 (default) fires at the third random step; patience 4 never; start_step 30 never
    default = rules.LatentClusterRule(trial)
    assert _fires_at(default) == 30
    assert default.ratios[10] > 0.9
    assert _fires_at(rules.LatentClusterRule(trial, patience=4)) is None
    assert _fires_at(rules.LatentClusterRule(trial, start_step=30)) is None


def test_latent_cluster_rule_never_fires_on_what_it_cannot_judge(tmp_path: Path) -> None:
    # GIVEN random embeddings of a single family, and NaN embeddings of two
    single = _embedding_records([np.random.default_rng(1).normal(size=(6, 4))] * 4, np.zeros(6, np.int32))
    nan = _embedding_records([np.full((6, 4), np.nan)] * 4, np.array([0, 0, 0, 1, 1, 1], np.int32))
    collections = {"embeddings": [layout.EMBEDDING_TENSOR, layout.FAMILY_INDEX_TENSOR]}

    # THEN the rule passes both (ExplodingTensor reports the NaN)
    assert _fires_at(rules.LatentClusterRule(_trial(tmp_path / "a", single, collections), patience=1)) is None
    assert _fires_at(rules.LatentClusterRule(_trial(tmp_path / "b", nan, collections), patience=1)) is None


# --- parameters ---


def test_rules_are_built_from_sagemaker_string_parameters(tmp_path: Path) -> None:
    trial = _trial(tmp_path, support.losses({1: 1.0}), LOSSES)

    rule = rules.RULES["LossNotDecreasing"].from_rule_parameters(
        trial,
        {
            "rule_to_invoke": "LossNotDecreasing",
            "num_steps": "20",
            "diff_percent": "2.5",
            "use_losses_collection": "False",
            "tensor_regex": "loss, val_.*",
            "mode": "train",
            "start_step": "100",
        },
    )

    assert isinstance(rule, rules.LossNotDecreasing)
    assert (rule.num_steps, rule.diff_percent, rule.use_losses_collection) == (20, 2.5, False)
    assert rule.tensor_regex == ["loss", "val_.*"]
    assert rule.mode is ModeKeys.TRAIN
    assert sorted(rules.RULES) == [
        "ExplodingTensor",
        "LatentClusterRule",
        "LossNotDecreasing",
        "Overfit",
        "VanishingGradient",
    ]


@pytest.mark.parametrize(
    ("rule_name", "parameters", "message"),
    [
        ("LossNotDecreasing", {"num_step": "5"}, "LossNotDecreasing: unknown parameter 'num_step' (known: "),
        ("LossNotDecreasing", {"num_steps": "ten"}, "parameter 'num_steps': expected an integer, got 'ten'"),
        ("LossNotDecreasing", {"num_steps": "0"}, "num_steps must be > 0, got 0"),
        ("LossNotDecreasing", {"mode": "PREDICT"}, "expected one of TRAIN, EVAL, GLOBAL"),
        ("LossNotDecreasing", {"window": "0"}, "window must be > 0, got 0"),
        ("LossNotDecreasing", {"patience": "-1"}, "patience must be > 0, got -1"),
        ("LossNotDecreasing", {"min_decrease_per_step": "0.5"}, "min_decrease_per_step must be in [0, 0.01)"),
        ("VanishingGradient", {"threshold": "nan"}, "expected a finite number"),
        ("VanishingGradient", {"peak_fraction": "1"}, "peak_fraction must be in (0, 1), got 1.0"),
        ("VanishingGradient", {"zero_fraction": "0"}, "zero_fraction must be in (0, 1], got 0.0"),
        ("VanishingGradient", {"patience": "0"}, "patience must be > 0, got 0"),
        ("ExplodingTensor", {"only_nan": "maybe"}, "expected True or False"),
        ("ExplodingTensor", {"tensor_regex": "("}, "tensor_regex '(' is invalid"),
        ("Overfit", {"patience": "0"}, "patience must be > 0"),
        ("LatentClusterRule", {"ratio_threshold": "-1"}, "ratio_threshold must be > 0"),
    ],
)
def test_bad_rule_parameters_name_the_rule_and_the_parameter(
    tmp_path: Path, rule_name: str, parameters: dict[str, str], message: str
) -> None:
    trial = _trial(tmp_path, support.losses({1: 1.0}), LOSSES)
    with pytest.raises(rules.RuleConfigurationError) as raised:
        rules.RULES[rule_name].from_rule_parameters(trial, parameters)
    assert message in str(raised.value)
    assert str(raised.value).startswith(rule_name)
