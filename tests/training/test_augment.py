"""The contrastive term's augmentations: each copy is its own design, changed; seeded, stateless."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from training import augment


def _constant_views(values: np.ndarray, size: int = 16) -> tf.Tensor:
    """``(designs, views)`` values -> views that are uniform images of those values."""
    return tf.constant(
        np.broadcast_to(values[:, None, None, :], (values.shape[0], size, size, values.shape[1]))
    )


def test_the_shape_and_range_stay_and_the_same_seed_gives_the_same_copy() -> None:
    views = tf.constant(np.random.default_rng(0).random((5, 16, 16, 6), np.float32))

    first = augment.augment_views(views, tf.constant([1, 2]))
    again = augment.augment_views(views, tf.constant([1, 2]))
    other = augment.augment_views(views, tf.constant([1, 3]))

    assert first.shape == views.shape
    assert float(tf.reduce_min(first)) >= 0.0
    assert float(tf.reduce_max(first)) <= 1.0
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert not np.array_equal(first.numpy(), other.numpy())


def test_a_copy_is_made_of_its_own_design_only() -> None:
    # GIVEN designs whose views are all one uniform grey, a different grey per design
    greys = np.array([0.1, 0.3, 0.5, 0.7], np.float32)
    views = _constant_views(np.repeat(greys[:, None], 4, axis=1))

    # WHEN copies are drawn with many seeds
    for seed in range(20):
        copy = augment.augment_views(views, tf.constant([seed, 0])).numpy()

        # THEN every design stays one uniform grey, its own within the brightness range
        for design, grey in enumerate(greys):
            np.testing.assert_allclose(copy[design], copy[design].flat[0], atol=1e-5)
            low, high = augment.BRIGHTNESS_RANGE
            assert low * grey - 1e-5 <= copy[design].flat[0] <= high * grey + 1e-5


def test_views_are_shuffled_and_some_replaced_by_others_of_the_same_design(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN no crop and no brightness change, and views that are uniform images numbered by their view
    monkeypatch.setattr(augment, "MIN_CROP_FRACTION", 1.0)
    monkeypatch.setattr(augment, "BRIGHTNESS_RANGE", (1.0, 1.0))
    numbers = np.tile(np.arange(1, 7, dtype=np.float32) / 10, (8, 1))
    views = _constant_views(numbers)

    # WHEN copies are drawn
    orders = []
    for seed in range(5):
        copy = augment.augment_views(views, tf.constant([seed, 7])).numpy()
        orders.extend(tuple(np.round(copy[design, 0, 0] * 10).astype(int)) for design in range(8))

    # THEN every output view is one of the design's views; orders change, and some views repeat
    assert all(set(order) <= set(range(1, 7)) for order in orders)
    assert any(order != tuple(range(1, 7)) for order in orders)
    assert any(len(set(order)) < 6 for order in orders)
    assert any(sorted(order) == list(range(1, 7)) and order != tuple(range(1, 7)) for order in orders)
