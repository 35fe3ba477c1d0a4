"""Losses and metrics on multi-view images (views on the channel axis)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from training import losses


def _images(seed: int = 0, batch: int = 2, size: int = 32, views: int = 3) -> np.ndarray:
    """Shapes with edges (a bright square per view) on a dark background, like the renders."""
    rng = np.random.default_rng(seed)
    images = np.zeros((batch, size, size, views), np.float32)
    for example in range(batch):
        for view in range(views):
            top, left = rng.integers(2, size // 2, size=2)
            images[example, top : top + size // 3, left : left + size // 3, view] = rng.uniform(0.5, 1.0)
    return images


@pytest.mark.parametrize("name", ["ssim", "l2", "ssim_l1"])
def test_a_perfect_reconstruction_has_zero_loss_per_example(name: str) -> None:
    images = _images()
    values = losses.get(name)(images, images)
    assert values.shape == (2,)
    np.testing.assert_allclose(values.numpy(), 0.0, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_equals_tensorflows_reference_implementation(seed: int) -> None:
    # Our SSIM filters with the separable window (faster); it must give tf.image.ssim's values.
    images = _images(seed=seed, batch=3, views=4)
    rng = np.random.default_rng(seed)
    damaged = np.clip(images + rng.normal(scale=0.2, size=images.shape), 0, 1).astype(np.float32)
    blurred = tf.nn.avg_pool2d(images, 5, 1, "SAME")
    for other in (damaged, blurred, images):
        np.testing.assert_allclose(
            losses.ssim(images, other).numpy(), tf.image.ssim(images, other, max_val=1.0).numpy(), atol=1e-5
        )


def test_ssim_gradients_match_the_reference() -> None:
    images = tf.constant(_images(seed=4))
    reconstruction = tf.Variable(np.clip(_images(seed=4) + 0.1, 0, 1))
    gradients = []
    for function in (losses.ssim, lambda a, b: tf.image.ssim(a, b, max_val=1.0)):
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(function(images, reconstruction))
        gradients.append(tape.gradient(value, reconstruction).numpy())
    np.testing.assert_allclose(gradients[0], gradients[1], atol=1e-6)


def test_ssim_loss_is_one_minus_mean_ssim() -> None:
    images, noisy = _images(), np.clip(_images() + 0.2 * _images(seed=1), 0, 1)
    loss = tf.reduce_mean(losses.ssim_loss(images, noisy))
    assert float(loss) == pytest.approx(1.0 - float(tf.reduce_mean(losses.ssim(images, noisy))))
    assert 0.0 < float(loss) < 2.0


def test_ssim_averages_the_views() -> None:
    # GIVEN an example whose view 1 is badly reconstructed and views 0 and 2 perfectly
    images = _images(batch=1)
    reconstruction = images.copy()
    reconstruction[..., 1] = 0.5

    # WHEN SSIM is computed on the stack
    stacked = float(losses.ssim(images, reconstruction)[0])

    # THEN it is the mean of the per-view SSIMs (each view counts the same)
    per_view = [float(losses.ssim(images[..., [v]], reconstruction[..., [v]])[0]) for v in range(3)]
    assert stacked == pytest.approx(np.mean(per_view), abs=1e-5)
    assert per_view[0] == pytest.approx(1.0)
    assert per_view[1] < 0.5


def test_losses_grow_with_the_damage() -> None:
    images = _images()
    lightly = tf.nn.avg_pool2d(images, 3, 1, "SAME")
    heavily = tf.nn.avg_pool2d(images, 9, 1, "SAME")
    for name in ("ssim", "l2", "ssim_l1"):
        loss = losses.get(name)
        assert float(tf.reduce_mean(loss(images, lightly))) < float(tf.reduce_mean(loss(images, heavily))), (
            name
        )


def test_ssim_l1_mixes_ssim_and_l1_with_the_published_weight() -> None:
    images, other = _images(), _images(seed=3)
    expected = 0.84 * losses.ssim_loss(images, other) + 0.16 * losses.l1(images, other)
    np.testing.assert_allclose(losses.ssim_l1_loss(images, other).numpy(), expected.numpy(), rtol=1e-6)


def test_l2_is_the_mean_squared_error() -> None:
    images, other = _images(), _images(seed=5)
    np.testing.assert_allclose(
        losses.l2(images, other).numpy(), ((images - other) ** 2).mean(axis=(1, 2, 3)), rtol=1e-6
    )


def test_losses_are_registered_for_saving() -> None:
    # load_model finds them by their registered names once training.losses is imported.
    for function in (losses.ssim_loss, losses.l2, losses.ssim_l1_loss, losses.ssim):
        name = keras.saving.get_registered_name(function)
        assert name.startswith("autostop>")
        assert keras.saving.get_registered_object(name) is function


def test_an_unknown_loss_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown loss 'mse'"):
        losses.get("mse")


# --- the contrastive term -----------------------------------------------------------------------------------


def test_nt_xent_is_near_zero_when_each_designs_copies_agree_and_designs_point_apart() -> None:
    # GIVEN 8 designs along 8 orthogonal directions, both copies identical
    designs = np.eye(8, dtype=np.float32)

    values = losses.nt_xent(designs, designs, temperature=0.1)

    # THEN one value per design, each near 0: log(1 + 14 exp(-10)) ~ 6e-4
    assert values.shape == (8,)
    np.testing.assert_allclose(values.numpy(), np.log1p(14 * np.exp(-10.0)), rtol=1e-4)


def test_nt_xent_grows_when_the_copies_belong_to_other_designs() -> None:
    designs = np.eye(8, dtype=np.float32)
    agreeing = float(tf.reduce_mean(losses.nt_xent(designs, designs, temperature=0.1)))
    mismatched = float(tf.reduce_mean(losses.nt_xent(designs, np.roll(designs, 1, axis=0), temperature=0.1)))
    # Each anchor's positive is orthogonal to it, while the copy of another design matches it exactly.
    assert mismatched > 9.0 > 0.01 > agreeing


def test_nt_xent_of_indistinguishable_designs_is_log_of_the_candidates() -> None:
    same = np.ones((4, 3), np.float32)
    np.testing.assert_allclose(losses.nt_xent(same, same, temperature=0.5).numpy(), np.log(7.0), rtol=1e-5)


def test_nt_xent_compares_directions_not_lengths() -> None:
    rng = np.random.default_rng(0)
    first, second = rng.normal(size=(2, 6, 5)).astype(np.float32)
    np.testing.assert_allclose(
        losses.nt_xent(3.0 * first, 0.5 * second, temperature=0.2).numpy(),
        losses.nt_xent(first, second, temperature=0.2).numpy(),
        rtol=1e-5,
    )


def test_the_contrastive_term_sends_a_gradient_to_every_encoder_weight() -> None:
    # GIVEN a small encoder over 4 views and a batch of designs
    keras.utils.set_random_seed(0)
    views = keras.Input((16, 16, 4))
    hidden = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(views)
    embedding = keras.layers.Dense(6)(keras.layers.Flatten()(hidden))
    encoder = keras.Model(views, embedding)
    batch = tf.constant(_images(batch=4, size=16, views=4))
    term = losses.ContrastiveLoss(weight=0.5, temperature=0.1)

    # WHEN the term is differentiated
    with tf.GradientTape() as tape:
        value = term(encoder, batch, tf.constant([3, 0], tf.int64), training=True)
    gradients = tape.gradient(value, encoder.trainable_variables)

    # THEN it is a finite scalar and every weight gets a finite, non-zero gradient
    assert value.shape == ()
    assert np.isfinite(float(value))
    assert all(gradient is not None for gradient in gradients)
    assert all(
        np.isfinite(gradient.numpy()).all() and np.abs(gradient.numpy()).max() > 0 for gradient in gradients
    )
