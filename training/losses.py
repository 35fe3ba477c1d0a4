"""Reconstruction losses and metrics over multi-view images (views on the channel axis, values in [0, 1]).

Why SSIM: the published optimization of this model replaced L2 by SSIM because L2 rewards blurry averages,
while SSIM compares local structure (means, contrasts and correlations in an 11x11 Gaussian window) and
gives sharper, more detailed reconstructions -- what a visual similarity signature needs. ``ssim_l1`` is the
mix of Zhao et al., "Loss Functions for Image Restoration with Neural Networks" (2017): alpha * (1 - SSIM) +
(1 - alpha) * L1 with alpha = 0.84, keeping SSIM's structure and L1's exact intensities.

Every function returns one value per example (shape ``[batch]``) like Keras' own losses, so they work in
``model.compile`` and ``evaluate`` as well as in the custom train step (which averages them). They are
registered with Keras under the package ``autostop``: import this module before
``keras.models.load_model`` on a saved autoencoder.

Besides the reconstruction loss, the trainer adds *auxiliary terms* (``AuxiliaryLoss``: a name, a weight,
and a scalar computed from the encoder and the batch): the objective is reconstruction + sum of
weight x term. One exists, ``ContrastiveLoss`` (``contrastive_weight`` > 0): NT-Xent (``nt_xent``, the
normalized temperature-scaled cross entropy of SimCLR, Chen et al. 2020) between the embeddings of two
augmented copies of each design (``training.augment``). Reconstruction alone makes the embedding keep
whatever rebuilds the pixels -- pose, size, lighting included -- so designs of one family in different
poses need not end up near each other; the contrastive term asks for exactly that, with the other designs
of the batch as the negatives. The reconstruction loss stays what ``loss`` says (SSIM by default).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import keras
import tensorflow as tf

from training import augment

SSIM_L1_ALPHA = 0.84
# Pixel values are scaled to [0, 1] by the input pipeline.
MAX_PIXEL_VALUE = 1.0
# Subtracted from a design's similarity with itself, so it is never its own positive or negative.
SELF_SIMILARITY_MASK = 1e9
# tf.image.ssim's constants (Wang et al. 2004).
SSIM_FILTER_SIZE = 11
SSIM_FILTER_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

LossFunction = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def _gaussian_window() -> tf.Tensor:
    """The 1-D Gaussian of tf.image.ssim (size 11, sigma 1.5), normalized to sum 1."""
    offsets = tf.range(SSIM_FILTER_SIZE, dtype=tf.float32) - (SSIM_FILTER_SIZE - 1) / 2.0
    weights = tf.exp(-tf.square(offsets) / (2.0 * SSIM_FILTER_SIGMA**2))
    return weights / tf.reduce_sum(weights)


def _gaussian_blur(images: tf.Tensor) -> tf.Tensor:
    """Per-channel Gaussian filter, VALID padding, as two 1-D depthwise convolutions."""
    channels = images.shape[-1]
    window = _gaussian_window()
    vertical = tf.tile(tf.reshape(window, [SSIM_FILTER_SIZE, 1, 1, 1]), [1, 1, channels, 1])
    horizontal = tf.tile(tf.reshape(window, [1, SSIM_FILTER_SIZE, 1, 1]), [1, 1, channels, 1])
    blurred = tf.nn.depthwise_conv2d(images, vertical, strides=[1, 1, 1, 1], padding="VALID")
    return tf.nn.depthwise_conv2d(blurred, horizontal, strides=[1, 1, 1, 1], padding="VALID")


@keras.saving.register_keras_serializable(package="autostop", name="ssim")
def ssim(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Structural similarity per example, averaged over the views (channels): 1 means identical.

    The same value as ``tf.image.ssim(y_true, y_pred, max_val=1.0)`` (Gaussian window 11, sigma 1.5,
    k1 0.01, k2 0.03; tests compare the two), computed with the separable window as two 1-D depthwise
    convolutions (22 taps instead of 121): 4-5x faster forward + backward on CPU, where SSIM
    otherwise costs more than the autoencoder itself (bench/train_step.py).
    """
    first = tf.cast(y_true, tf.float32)
    second = tf.cast(y_pred, tf.float32)
    c1 = (SSIM_K1 * MAX_PIXEL_VALUE) ** 2
    c2 = (SSIM_K2 * MAX_PIXEL_VALUE) ** 2
    mean_first = _gaussian_blur(first)
    mean_second = _gaussian_blur(second)
    variance_first = _gaussian_blur(first * first) - mean_first * mean_first
    variance_second = _gaussian_blur(second * second) - mean_second * mean_second
    covariance = _gaussian_blur(first * second) - mean_first * mean_second
    luminance = (2.0 * mean_first * mean_second + c1) / (mean_first**2 + mean_second**2 + c1)
    contrast_structure = (2.0 * covariance + c2) / (variance_first + variance_second + c2)
    return tf.reduce_mean(luminance * contrast_structure, axis=[1, 2, 3])


@keras.saving.register_keras_serializable(package="autostop", name="l2")
def l2(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Mean squared error per example."""
    difference = tf.cast(y_true, tf.float32) - tf.cast(y_pred, tf.float32)
    return tf.reduce_mean(tf.square(difference), axis=[1, 2, 3])


@keras.saving.register_keras_serializable(package="autostop", name="l1")
def l1(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Mean absolute error per example."""
    difference = tf.cast(y_true, tf.float32) - tf.cast(y_pred, tf.float32)
    return tf.reduce_mean(tf.abs(difference), axis=[1, 2, 3])


@keras.saving.register_keras_serializable(package="autostop", name="ssim_loss")
def ssim_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """1 - SSIM per example; its batch mean is 1 - mean SSIM."""
    return 1.0 - ssim(y_true, y_pred)


@keras.saving.register_keras_serializable(package="autostop", name="ssim_l1_loss")
def ssim_l1_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """alpha * (1 - SSIM) + (1 - alpha) * L1 per example."""
    return SSIM_L1_ALPHA * ssim_loss(y_true, y_pred) + (1.0 - SSIM_L1_ALPHA) * l1(y_true, y_pred)


LOSSES: dict[str, LossFunction] = {"ssim": ssim_loss, "l2": l2, "ssim_l1": ssim_l1_loss}
# Reported for every loss so runs with different losses can be compared.
METRICS: dict[str, LossFunction] = {"ssim": ssim, "l2": l2}


def get(name: str) -> LossFunction:
    """The loss function for a ``loss`` hyperparameter value."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}: expected one of {', '.join(LOSSES)}") from None


# --- auxiliary terms ----------------------------------------------------------------------------------------


def nt_xent(first: tf.Tensor, second: tf.Tensor, *, temperature: float) -> tf.Tensor:
    """NT-Xent per design (shape ``[batch]``): row i of ``first`` and of ``second`` are the same design.

    Both are scaled to unit length, so the similarity is the cosine (an embedding that is already unit
    length, ``normalize_embedding``, is unchanged). Each of the 2N embeddings is an anchor whose positive
    is its design's other copy and whose negatives are the 2N - 2 copies of the other designs:
    ``-log(exp(s_pos / t) / sum over the other 2N - 1 of exp(s / t))``; a design's value is the mean of
    its two anchors. Near 0 when each design's copies agree and the designs point apart; about
    ``log(2N - 1)`` when nothing tells the designs apart.
    """
    first = tf.math.l2_normalize(tf.cast(first, tf.float32), axis=1)
    second = tf.math.l2_normalize(tf.cast(second, tf.float32), axis=1)
    count = tf.shape(first)[0]
    both = tf.concat([first, second], axis=0)
    logits = tf.matmul(both, both, transpose_b=True) / temperature
    logits -= SELF_SIMILARITY_MASK * tf.eye(2 * count)
    positives = tf.concat([tf.range(count, 2 * count), tf.range(0, count)], axis=0)
    per_anchor = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=positives, logits=logits)
    return (per_anchor[:count] + per_anchor[count:]) / 2.0


class AuxiliaryLoss(Protocol):
    """A term the trainer adds to the reconstruction loss, ``weight`` times (logged under ``name``)."""

    @property
    def name(self) -> str: ...

    @property
    def weight(self) -> float: ...

    def __call__(self, encoder: Any, views: tf.Tensor, seed: tf.Tensor, *, training: bool) -> tf.Tensor:
        """The term's scalar value for a batch of views; ``seed`` (shape [2]) seeds any randomness."""
        ...


@dataclasses.dataclass(frozen=True)
class ContrastiveLoss:
    """NT-Xent between the embeddings of two augmented copies of a batch (module docstring)."""

    weight: float
    temperature: float
    name: str = "contrastive"

    def __call__(self, encoder: Any, views: tf.Tensor, seed: tf.Tensor, *, training: bool) -> tf.Tensor:
        first_seed, second_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
        first = encoder(augment.augment_views(views, first_seed), training=training)
        second = encoder(augment.augment_views(views, second_seed), training=training)
        return tf.reduce_mean(nt_xent(first, second, temperature=self.temperature))
