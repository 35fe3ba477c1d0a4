"""The multi-view convolutional autoencoder: functional Keras, every layer named.

Input layout: one example is the V grayscale views of a design stacked on the CHANNEL axis, shape
``(image_size, image_size, num_views)``, values in [0, 1]. Why channels and not a leading view axis: the
viewpoints are fixed and ordered (view_00 is always the same camera), so the first convolution can learn
how the views relate at each pixel, the model stays a plain 2-D conv net (fast on CPU, small), and SSIM on
a multi-channel image is the mean of the per-view SSIMs -- exactly "how well are all views reconstructed".

Architecture (``hparams.ArchitectureSpec``): encoder convs ``encoder_conv_1..n`` (3x3, ReLU; stride 2
halves the image) -> ``encoder_flatten`` -> hidden dense ``bottleneck_dense_1..k`` -> ``embedding``
(linear: the design signature used for similarity search) -> ``decoder_dense_1..k`` ->
``decoder_projection`` -> ``decoder_reshape`` -> mirrored convs ``decoder_conv_1..n`` (transposed
convs where the encoder downsampled) -> ``reconstruction`` (sigmoid, one channel per view).
Stable names make recorded tensors identifiable (``encoder_conv_1/kernel``, ``embedding`` output, ...).
"""

from __future__ import annotations

import math

import keras

from training import hparams as hparams_module

INPUT_NAME = "views"
EMBEDDING_LAYER_NAME = "embedding"
OUTPUT_LAYER_NAME = "reconstruction"
AUTOENCODER_NAME = "autoencoder"
ENCODER_NAME = "encoder"


def build_autoencoder(
    architecture: hparams_module.ArchitectureSpec, *, image_size: int, num_views: int
) -> tuple[keras.Model, keras.Model]:
    """Build ``(autoencoder, encoder)``; the encoder shares its layers (and weights) with the autoencoder."""
    if image_size % architecture.downsampling_factor:
        raise ValueError(
            f"image_size {image_size} is not a multiple of the encoder's downsampling factor "
            f"{architecture.downsampling_factor}"
        )
    if len(architecture.encoder_filters) != len(architecture.encoder_strides):
        raise ValueError("encoder_filters and encoder_strides must have the same length")
    inputs = keras.Input(shape=(image_size, image_size, num_views), name=INPUT_NAME)

    features = inputs
    for index, (filters, stride) in enumerate(
        zip(architecture.encoder_filters, architecture.encoder_strides, strict=True), start=1
    ):
        features = keras.layers.Conv2D(
            filters, 3, strides=stride, padding="same", activation="relu", name=f"encoder_conv_{index}"
        )(features)
    feature_map_shape = tuple(int(size) for size in features.shape[1:])
    hidden = keras.layers.Flatten(name="encoder_flatten")(features)
    for index, units in enumerate(architecture.bottleneck_units, start=1):
        hidden = keras.layers.Dense(units, activation="relu", name=f"bottleneck_dense_{index}")(hidden)
    embedding = keras.layers.Dense(architecture.embedding_size, name=EMBEDDING_LAYER_NAME)(hidden)
    encoder = keras.Model(inputs, embedding, name=ENCODER_NAME)

    hidden = embedding
    for index, units in enumerate(reversed(architecture.bottleneck_units), start=1):
        hidden = keras.layers.Dense(units, activation="relu", name=f"decoder_dense_{index}")(hidden)
    hidden = keras.layers.Dense(math.prod(feature_map_shape), activation="relu", name="decoder_projection")(
        hidden
    )
    features = keras.layers.Reshape(feature_map_shape, name="decoder_reshape")(hidden)
    # Decoder conv j mirrors encoder conv n+1-j: it maps that layer's output width back to its input width.
    mirrored_filters = (architecture.encoder_filters[0], *architecture.encoder_filters[:-1])[::-1]
    for index, (filters, stride) in enumerate(
        zip(mirrored_filters, reversed(architecture.encoder_strides), strict=True), start=1
    ):
        if stride == 1:
            layer: keras.layers.Layer = keras.layers.Conv2D(
                filters, 3, padding="same", activation="relu", name=f"decoder_conv_{index}"
            )
        else:
            layer = keras.layers.Conv2DTranspose(
                filters, 3, strides=stride, padding="same", activation="relu", name=f"decoder_conv_{index}"
            )
        features = layer(features)
    reconstruction = keras.layers.Conv2D(
        num_views, 3, padding="same", activation="sigmoid", name=OUTPUT_LAYER_NAME
    )(features)
    autoencoder = keras.Model(inputs, reconstruction, name=AUTOENCODER_NAME)
    return autoencoder, encoder


def build_model(hparams: hparams_module.HyperParameters) -> tuple[keras.Model, keras.Model]:
    """``(autoencoder, encoder)`` for a job's preset, overrides, image size and number of views."""
    return build_autoencoder(
        hparams.architecture(), image_size=hparams.image_size, num_views=hparams.num_views
    )


def weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Conv and dense layers (the layers that count when comparing architecture depth)."""
    return [layer for layer in model.layers if layer.weights]
