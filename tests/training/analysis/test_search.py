"""Nearest-neighbour search and the retrieval metrics: arithmetic on a fixed input, then a real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.training.analysis.conftest import TrainedModel, design_folder
from training.analysis import embeddings, search

# 1-D signatures whose leave-one-out rankings are worked out by hand in test_evaluate_on_a_fixed_input.
FIXED = {"a1": 0.0, "a2": 1.0, "b1": 1.5, "a3": 3.2, "b2": 10.0, "b3": 10.5, "c1": 100.0, "x1": 200.0}
FIXED_FAMILIES = {"a1": "a", "a2": "a", "a3": "a", "b1": "b", "b2": "b", "b3": "b", "c1": "c", "x1": ""}


def fixed_set() -> embeddings.EmbeddingSet:
    return embeddings.EmbeddingSet(
        vectors=np.array([[value] for value in FIXED.values()], np.float32),
        design_ids=tuple(FIXED),
        families=tuple(FIXED_FAMILIES[design] for design in FIXED),
    )


def test_precision_at_k_and_average_precision() -> None:
    assert search.precision_at_k([True, False, True, False], 2) == 0.5
    assert search.precision_at_k([True, False], 5) == 0.5  # k capped at the ranking's length
    assert search.average_precision([True, False, True, False, False]) == pytest.approx((1 + 2 / 3) / 2)
    assert search.average_precision([False, False, False, True, True]) == pytest.approx((1 / 4 + 2 / 5) / 2)
    with pytest.raises(ValueError, match="at least one relevant"):
        search.average_precision([False, False])


def test_evaluate_on_a_fixed_input() -> None:
    # GIVEN six designs of families a and b on a line, one alone in family c and one without a family
    # WHEN retrieval is evaluated at k=2
    report = search.evaluate_retrieval(fixed_set(), k=2)

    # THEN (rankings by hand, "1" = same family):
    #   a1: a2 b1 a3 ...      -> 1 0 1,     p@2 1/2, AP (1 + 2/3)/2
    #   a2: b1 a1 a3 ...      -> 0 1 1,     p@2 1/2, AP (1/2 + 2/3)/2
    #   a3: b1 a2 a1 ...      -> 0 1 1,     p@2 1/2, AP (1/2 + 2/3)/2
    #   b1: a2 a1 a3 b2 b3 .. -> 0 0 0 1 1, p@2 0,   AP (1/4 + 2/5)/2
    #   b2: b3 a3 b1 ...      -> 1 0 1,     p@2 1/2, AP (1 + 2/3)/2
    #   b3: b2 a3 b1 ...      -> 1 0 1,     p@2 1/2, AP (1 + 2/3)/2
    high, low, last = (1 + 2 / 3) / 2, (1 / 2 + 2 / 3) / 2, (1 / 4 + 2 / 5) / 2
    scores = {family.family: family for family in report.families}
    assert set(scores) == {"a", "b"}
    assert scores["a"].precision_at_k == pytest.approx(0.5)
    assert scores["a"].average_precision == pytest.approx((high + 2 * low) / 3)
    assert scores["b"].precision_at_k == pytest.approx(1 / 3)
    assert scores["b"].average_precision == pytest.approx((last + 2 * high) / 3)
    assert (report.designs, report.queries, report.skipped) == (8, 6, 2)
    assert report.precision_at_k == pytest.approx(2.5 / 6)
    assert report.mean_average_precision == pytest.approx((3 * high + 2 * low + last) / 6)
    assert report.macro_precision_at_k == pytest.approx((0.5 + 1 / 3) / 2)
    assert "| **all** | 6 | **0.417** |" in report.markdown()


def test_perfectly_separated_families_score_one() -> None:
    rng = np.random.default_rng(0)
    vectors = np.concatenate([rng.normal(size=(6, 4)) * 0.01 + offset for offset in (0.0, 5.0, 10.0)])
    separated = embeddings.EmbeddingSet(
        vectors=vectors.astype(np.float32),
        design_ids=tuple(f"d{index}" for index in range(18)),
        families=tuple(family for family in "xyz" for _ in range(6)),
    )

    report = search.evaluate_retrieval(separated, k=5)

    assert (report.precision_at_k, report.mean_average_precision) == (1.0, 1.0)


def test_groups_are_evaluated_among_themselves() -> None:
    # GIVEN families a and b in one group, c in another
    embedded = embeddings.EmbeddingSet(
        vectors=np.array([[0.0], [0.1], [5.0], [5.1], [0.05], [9.0]], np.float32),
        design_ids=("a1", "a2", "b1", "b2", "c1", "c2"),
        families=("a", "a", "b", "b", "c", "c"),
    )

    # WHEN retrieval is evaluated by group
    reports = search.evaluate_by_group(embedded, {"a": "seen", "b": "seen", "c": "new"}, k=1)

    # THEN c's designs rank only each other (in the whole set a's designs would come between them)
    assert search.evaluate_retrieval(embedded, k=1).families[2].precision_at_k == 0.0
    assert reports["new"].precision_at_k == 1.0
    assert reports["new"].designs == 2
    assert reports["seen"].precision_at_k == 1.0
    assert reports["seen"].designs == 4
    assert list(reports) == ["new", "seen"]


def test_a_family_without_a_group_is_a_clear_error() -> None:
    with pytest.raises(search.SearchError, match="no group given for families: 'c'"):
        search.evaluate_by_group(fixed_set(), {"a": "seen", "b": "seen", "": "seen"})


def test_index_queries_exclude_and_rank() -> None:
    index = search.SimilarityIndex(fixed_set())

    nearest = index.neighbours_of("a3", k=3)
    from_vector = index.query(np.array([3.2]), k=2)

    assert [(result.rank, result.design_id, result.family) for result in nearest] == [
        (1, "b1", "b"),
        (2, "a2", "a"),
        (3, "a1", "a"),
    ]
    assert nearest[0].distance == pytest.approx(1.7)
    assert [result.design_id for result in from_vector] == ["a3", "b1"]
    assert from_vector[0].distance == 0.0


def test_index_save_and_load_round_trip(tmp_path: Path) -> None:
    search.SimilarityIndex(fixed_set(), metric="cosine").save(tmp_path / "index")

    loaded = search.load_index(tmp_path / "index")

    assert loaded.metric == "cosine"
    assert loaded.embeddings.design_ids == tuple(FIXED)
    assert search.is_index(tmp_path / "index")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda index: index.neighbours_of("nope"), "design 'nope' is not in the index"),
        (lambda index: index.query(np.zeros(3)), "query vectors have 3 dimensions, the index 1"),
        (lambda index: index.query(np.zeros(1), k=0), "k must be > 0"),
    ],
)
def test_bad_queries_are_clear_errors(call: object, message: str) -> None:
    index = search.SimilarityIndex(fixed_set())
    with pytest.raises(search.SearchError, match=message):
        call(index)  # type: ignore[operator]


def test_bad_index_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(search.SearchError, match="unknown metric"):
        search.SimilarityIndex(fixed_set(), metric="manhattan")
    with pytest.raises(search.SearchError, match="NaN"):
        search.SimilarityIndex(
            embeddings.EmbeddingSet(np.array([[np.nan]], np.float32), design_ids=("a",), families=("f",))
        )
    with pytest.raises(embeddings.EmbeddingError, match="not an embeddings folder"):
        search.load_index(tmp_path)
    lonely = embeddings.EmbeddingSet(np.zeros((2, 1), np.float32), design_ids=("a", "b"), families=("f", "g"))
    with pytest.raises(search.SearchError, match="nothing to evaluate"):
        search.evaluate_retrieval(lonely)


def test_a_designs_own_views_come_first(trained_model: TrainedModel, tmp_path: Path) -> None:
    # GIVEN an index of every rendered design, made with a trained encoder
    encoder = embeddings.load_encoder(trained_model.model_dir)
    index = search.SimilarityIndex(embeddings.embed_shards(encoder, trained_model.shards.path))

    for design_id in trained_model.shards.design_ids[:: len(trained_model.shards.design_ids) // 4]:
        # WHEN a design's own folder of views (from its render batch) is the query
        folder = design_folder(trained_model.shards, design_id, tmp_path)
        image_size, num_views = embeddings.input_shape(encoder)
        stack = embeddings.read_views_folder(folder, image_size=image_size, num_views=num_views)
        results = index.query(embeddings.embed_views(encoder, embeddings.views_to_model_input(stack))[0], k=3)

        # THEN that design is the first result, at distance ~0 (same pixels as its shard record)
        assert results[0].design_id == design_id
        assert results[0].distance < 1e-4 * max(results[1].distance, 1e-6)
