"""The intra/inter-family distance ratio, the watch that turns ratios into a verdict, and the custom rule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from smdebug.exceptions import RuleEvaluationConditionMet
from smdebug.rules.rule_invoker import invoke_rule
from smdebug.trials import create_trial

from tests.training.analysis import trials
from training.analysis import clustering


def test_ratio_matches_hand_computed_distances() -> None:
    # GIVEN two families on a line: a at 0 and 1, b at 10 and 12
    embeddings = np.array([[0.0], [1.0], [10.0], [12.0]])
    families = ["a", "a", "b", "b"]

    # WHEN the separation is measured
    separation = clustering.family_separation(embeddings, families)

    # THEN intra = mean(1, 2) = 1.5, inter = mean(10, 12, 9, 11) = 10.5
    assert separation.intra == pytest.approx(1.5)
    assert separation.inter == pytest.approx(10.5)
    assert separation.ratio == pytest.approx(1.5 / 10.5)
    assert (separation.intra_pairs, separation.inter_pairs, separation.families) == (2, 4, 2)


def test_unlabelled_designs_are_left_out() -> None:
    embeddings = np.array([[0.0], [1.0], [10.0], [12.0], [500.0]])

    separation = clustering.family_separation(embeddings, ["a", "a", "b", "b", ""])

    assert separation.designs == 4
    assert separation.ratio == pytest.approx(1.5 / 10.5)


def test_ratio_is_scale_free_and_separates_clustered_from_random() -> None:
    rng = np.random.default_rng(0)
    families = [f"family_{index % 6}" for index in range(60)]
    centres = rng.normal(size=(6, 16)) * 10
    clustered = np.stack([centres[index % 6] for index in range(60)]) + rng.normal(size=(60, 16))
    random = rng.normal(size=(60, 16))

    clustered_ratio = clustering.family_distance_ratio(clustered, families)
    random_ratio = clustering.family_distance_ratio(random, families)

    assert clustered_ratio < 0.2
    assert random_ratio == pytest.approx(1.0, abs=0.05)
    assert clustering.family_distance_ratio(clustered * 1e-6, families) == pytest.approx(clustered_ratio)


def test_collapsed_embeddings_count_as_not_clustered_at_any_threshold() -> None:
    assert clustering.family_distance_ratio(np.zeros((4, 3)), ["a", "a", "b", "b"]) == math.inf


def test_pairwise_distances_are_exact_on_the_diagonal() -> None:
    vectors = np.random.default_rng(1).normal(size=(5, 7)) * 1e3
    distances = clustering.pairwise_distances(vectors)
    assert np.all(np.diag(distances) == 0)
    assert distances[1, 3] == pytest.approx(np.linalg.norm(vectors[1] - vectors[3]))


@pytest.mark.parametrize(
    ("embeddings", "families", "message"),
    [
        (np.zeros((3, 2)), ["a", "a"], "3 embeddings but 2 family labels"),
        (np.array([[0.0, math.nan], [1.0, 1.0]]), ["a", "b"], "NaN or infinite"),
        (np.zeros((3, 2)), ["a", "a", "a"], "at least two families"),
        (np.zeros((3, 2)), ["a", "b", "c"], "two or more designs"),
        (np.zeros(4), ["a", "a", "b", "b"], "2-D"),
    ],
)
def test_undefined_ratios_raise_clear_errors(
    embeddings: np.ndarray, families: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        clustering.family_separation(embeddings, families)


def test_watch_fires_only_after_start_step_and_patience() -> None:
    # GIVEN a watch with threshold 0.5 that ignores steps before 10 and needs 2 steps in a row above it
    watch = clustering.RatioWatch(threshold=0.5, start_step=10, patience=2)

    # WHEN ratios arrive; THEN early high ratios are ignored, a dip resets the count, two in a row fire
    verdicts = [
        watch.observe(step, ratio)
        for step, ratio in [(0, 0.9), (5, 0.9), (10, 0.9), (15, 0.4), (20, 0.8), (25, 0.8), (30, 0.3)]
    ]
    assert verdicts == [False, False, False, False, False, True, False]


def test_watch_counts_a_repeated_step_once() -> None:
    watch = clustering.RatioWatch(threshold=0.5, patience=2)
    assert watch.observe(1, 0.9) is False
    assert watch.observe(1, 0.9) is False
    assert watch.observe(2, 0.9) is True


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 0.5, "patience": 0}, "patience"),
        ({"threshold": 0.5, "start_step": -1}, "start_step"),
    ],
)
def test_watch_rejects_bad_parameters(arguments: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        clustering.RatioWatch(**arguments)  # type: ignore[arg-type]


def probe_trial(path: Path, embeddings_by_step: dict[int, np.ndarray], families: np.ndarray) -> Path:
    """A trial with the writer's ``embeddings`` collection: probe embeddings and family indices per step."""
    return trials.write_trial(
        path,
        {
            step: {
                "embeddings": {
                    clustering.EMBEDDING_TENSOR: vectors.astype(np.float32),
                    clustering.FAMILY_INDEX_TENSOR: families.astype(np.int32),
                }
            }
            for step, vectors in embeddings_by_step.items()
        },
    )


def clustered_and_random(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    families = np.arange(32) % 4
    centres = rng.normal(size=(4, 8)) * 5
    clustered = centres[families] + rng.normal(size=(32, 8))
    return clustered, rng.normal(size=(32, 8)), families


def _fires(rule: clustering.LatentClusterRule, steps: int) -> int | None:
    """The global step at which smdebug's own invoke_rule stops on the rule's condition, or None."""
    try:
        invoke_rule(rule, start_step=0, end_step=steps, raise_eval_cond=True)
    except RuleEvaluationConditionMet as met:
        return int(met.step)
    return None


def test_custom_rule_fires_on_unclustered_embeddings_under_invoke_rule(tmp_path: Path) -> None:
    # GIVEN probe embeddings recorded every 10 steps: clustered at steps 10-20, mixed from step 30 on
    clustered, random, families = clustered_and_random(0)
    trial_path = probe_trial(
        tmp_path / "trial", {10: clustered, 20: clustered, 30: random, 40: random, 50: random}, families
    )
    rule = clustering.LatentClusterRule(
        create_trial(str(trial_path)), ratio_threshold="0.8", start_step="0", patience="2"
    )

    # WHEN smdebug runs the rule over the trial; THEN it fires at the second mixed step (training step 40)
    assert _fires(rule, steps=2 * 50 + 1) == 2 * 40
    assert rule.ratios[10] < 0.5
    assert rule.ratios[30] > 0.8
    assert "> 0.8 at step 40, 2 saved step(s) in a row" in rule.last_finding


def test_custom_rule_stays_quiet_on_clustered_embeddings(tmp_path: Path) -> None:
    clustered, _, families = clustered_and_random(1)
    trial_path = probe_trial(tmp_path / "trial", dict.fromkeys((10, 20, 30), clustered), families)
    rule = clustering.LatentClusterRule(create_trial(str(trial_path)), ratio_threshold="0.8", patience="1")

    assert _fires(rule, steps=2 * 30 + 1) is None
    assert set(rule.ratios) == {10, 20, 30}


def test_custom_rule_waits_for_start_step(tmp_path: Path) -> None:
    _, random, families = clustered_and_random(2)
    trial_path = probe_trial(tmp_path / "trial", {10: random, 20: random, 30: random}, families)
    rule = clustering.LatentClusterRule(create_trial(str(trial_path)), start_step="25", patience="1")

    assert _fires(rule, steps=2 * 30 + 1) == 2 * 30


def test_custom_rule_parameters_arrive_as_strings_and_are_checked(tmp_path: Path) -> None:
    _, random, families = clustered_and_random(3)
    trial = create_trial(str(probe_trial(tmp_path / "trial", {0: random}, families)))
    with pytest.raises(ValueError, match="ratio_threshold must be a float"):
        clustering.LatentClusterRule(trial, ratio_threshold="high")
    with pytest.raises(ValueError, match="patience must be >= 1"):
        clustering.LatentClusterRule(trial, patience="0")
    rule = clustering.LatentClusterRule(trial, end_step="100", rule_to_invoke="LatentClusterRule")
    assert rule.watch.threshold == clustering.DEFAULT_RATIO_THRESHOLD


def test_in_container_rule_and_custom_rule_judge_a_trial_identically(tmp_path: Path) -> None:
    # GIVEN the standalone custom rule's tensor names are the in-container writer's
    from training.debugger import layout, rules

    assert clustering.EMBEDDING_TENSOR == layout.EMBEDDING_TENSOR
    assert clustering.FAMILY_INDEX_TENSOR == layout.FAMILY_INDEX_TENSOR
    # AND a trial that is clustered, then mixed, then collapsed
    clustered, random, families = clustered_and_random(4)
    collapsed = np.ones_like(clustered)
    by_step = {10: clustered, 20: random, 30: random, 40: collapsed, 50: clustered}
    trial_path = probe_trial(tmp_path / "trial", by_step, families)

    # WHEN both rules run over it with the same parameters under smdebug's invoke_rule
    custom = clustering.LatentClusterRule(create_trial(str(trial_path)), ratio_threshold="0.8", patience="3")
    in_container = rules.LatentClusterRule(create_trial(str(trial_path)), ratio_threshold=0.8, patience=3)

    # THEN they fire at the same step (the collapsed one, third above the threshold) with the same ratios
    assert _fires(custom, steps=2 * 50 + 1) == _fires(in_container, steps=2 * 50 + 1) == 2 * 40
    assert custom.ratios == in_container.ratios
    assert custom.ratios[40] == math.inf
