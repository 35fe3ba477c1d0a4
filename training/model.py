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

View pooling (``view_pooling`` "mean" or "max", off by default): the same layers, but every view is
encoded by itself (``TimeDistributed`` convolutions over a ``(views, H, W, 1)`` stack, so all views
share the weights, and the dense layers act per view) into a per-view code
``view_embedding``; the design embedding is the mean or max of the per-view codes over the views. It is
therefore the same whatever order the views come in, and a design turned so that its views swap places
keeps its embedding -- which channel stacking cannot offer, since its first convolution ties each
feature to a fixed camera (what a design in an arbitrary pose does not have). The decoder rebuilds each
view from its own code *and* the design embedding (repeated per view and concatenated), so the
embedding stays on the reconstruction path: it is trained to carry what all views of a design share.
``normalize_embedding`` divides the embedding by its length (``UnitNormalization``): distances then
compare directions only, not how strongly a design activates the encoder.
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
# The layer inside each per-view wrapper of the view-pooling model.
PER_VIEW = "per_view"


def build_autoencoder(
    architecture: hparams_module.ArchitectureSpec, *, image_size: int, num_views: int
) -> tuple[keras.Model, keras.Model]:
    """Build ``(autoencoder, encoder)``; the encoder shares its layers (and weights) with the autoencoder."""
    _check(architecture, image_size=image_size)
    if architecture.view_pooling != "none":
        return _build_pooled(architecture, image_size=image_size, num_views=num_views)
    return _build_stacked(architecture, image_size=image_size, num_views=num_views)


def _check(architecture: hparams_module.ArchitectureSpec, *, image_size: int) -> None:
    if architecture.view_pooling not in hparams_module.VIEW_POOLINGS:
        raise ValueError(
            f"view_pooling must be one of {', '.join(hparams_module.VIEW_POOLINGS)}, "
            f"not {architecture.view_pooling!r}"
        )
    if image_size % architecture.downsampling_factor:
        raise ValueError(
            f"image_size {image_size} is not a multiple of the encoder's downsampling factor "
            f"{architecture.downsampling_factor}"
        )
    if len(architecture.encoder_filters) != len(architecture.encoder_strides):
        raise ValueError("encoder_filters and encoder_strides must have the same length")


def _mirrored_filters(architecture: hparams_module.ArchitectureSpec) -> tuple[int, ...]:
    """Decoder conv j mirrors encoder conv n+1-j: maps that layer's output width back to its input width."""
    return (architecture.encoder_filters[0], *architecture.encoder_filters[:-1])[::-1]


def _build_stacked(
    architecture: hparams_module.ArchitectureSpec, *, image_size: int, num_views: int
) -> tuple[keras.Model, keras.Model]:
    """The reference model: views on the channel axis, plain 2-D convolutions."""
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
    if architecture.normalize_embedding:
        projected = keras.layers.Dense(architecture.embedding_size, name="embedding_projection")(hidden)
        embedding = keras.layers.UnitNormalization(name=EMBEDDING_LAYER_NAME)(projected)
    else:
        embedding = keras.layers.Dense(architecture.embedding_size, name=EMBEDDING_LAYER_NAME)(hidden)
    encoder = keras.Model(inputs, embedding, name=ENCODER_NAME)

    hidden = embedding
    for index, units in enumerate(reversed(architecture.bottleneck_units), start=1):
        hidden = keras.layers.Dense(units, activation="relu", name=f"decoder_dense_{index}")(hidden)
    hidden = keras.layers.Dense(math.prod(feature_map_shape), activation="relu", name="decoder_projection")(
        hidden
    )
    features = keras.layers.Reshape(feature_map_shape, name="decoder_reshape")(hidden)
    for index, (filters, stride) in enumerate(
        zip(_mirrored_filters(architecture), reversed(architecture.encoder_strides), strict=True), start=1
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


def _build_pooled(
    architecture: hparams_module.ArchitectureSpec, *, image_size: int, num_views: int
) -> tuple[keras.Model, keras.Model]:
    """Per-view encoding with shared weights, pooled over the views (module docstring)."""
    inputs = keras.Input(shape=(image_size, image_size, num_views), name=INPUT_NAME)
    # (H, W, V) -> (V, H, W, 1): one single-channel image per view.
    features = keras.layers.Permute((3, 1, 2), name="views_first")(inputs)
    features = keras.layers.Reshape((num_views, image_size, image_size, 1), name="view_stack")(features)
    for index, (filters, stride) in enumerate(
        zip(architecture.encoder_filters, architecture.encoder_strides, strict=True), start=1
    ):
        conv = keras.layers.Conv2D(
            filters, 3, strides=stride, padding="same", activation="relu", name=PER_VIEW
        )
        features = _per_view(conv, f"encoder_conv_{index}")(features)
    feature_map_shape = tuple(int(size) for size in features.shape[2:])
    hidden = keras.layers.Reshape((num_views, math.prod(feature_map_shape)), name="encoder_flatten")(features)
    for index, units in enumerate(architecture.bottleneck_units, start=1):
        hidden = keras.layers.Dense(units, activation="relu", name=f"bottleneck_dense_{index}")(hidden)
    view_codes = keras.layers.Dense(architecture.embedding_size, name="view_embedding")(hidden)
    pooling = (
        keras.layers.GlobalAveragePooling1D
        if architecture.view_pooling == "mean"
        else keras.layers.GlobalMaxPooling1D
    )
    if architecture.normalize_embedding:
        pooled = pooling(name="view_pooling")(view_codes)
        embedding = keras.layers.UnitNormalization(name=EMBEDDING_LAYER_NAME)(pooled)
    else:
        embedding = pooling(name=EMBEDDING_LAYER_NAME)(view_codes)
    encoder = keras.Model(inputs, embedding, name=ENCODER_NAME)

    shared = keras.layers.RepeatVector(num_views, name="embedding_per_view")(embedding)
    hidden = keras.layers.Concatenate(name="decoder_input")([view_codes, shared])
    for index, units in enumerate(reversed(architecture.bottleneck_units), start=1):
        hidden = keras.layers.Dense(units, activation="relu", name=f"decoder_dense_{index}")(hidden)
    hidden = keras.layers.Dense(math.prod(feature_map_shape), activation="relu", name="decoder_projection")(
        hidden
    )
    features = keras.layers.Reshape((num_views, *feature_map_shape), name="decoder_reshape")(hidden)
    for index, (filters, stride) in enumerate(
        zip(_mirrored_filters(architecture), reversed(architecture.encoder_strides), strict=True), start=1
    ):
        if stride == 1:
            layer: keras.layers.Layer = keras.layers.Conv2D(
                filters, 3, padding="same", activation="relu", name=PER_VIEW
            )
        else:
            layer = keras.layers.Conv2DTranspose(
                filters, 3, strides=stride, padding="same", activation="relu", name=PER_VIEW
            )
        features = _per_view(layer, f"decoder_conv_{index}")(features)
    output_conv = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid", name=PER_VIEW)
    views = _per_view(output_conv, "view_reconstruction")(features)
    views = keras.layers.Reshape((num_views, image_size, image_size), name="view_unstack")(views)
    reconstruction = keras.layers.Permute((2, 3, 1), name=OUTPUT_LAYER_NAME)(views)
    autoencoder = keras.Model(inputs, reconstruction, name=AUTOENCODER_NAME)
    return autoencoder, encoder


def _per_view(layer: keras.layers.Layer, name: str) -> keras.layers.Layer:
    """`layer` applied to every view alike (one set of weights), named `name`.

    ``TimeDistributed`` folds the views into the batch, so a plain Conv2D does the work: measured 40-150x
    faster on CPU than the same model with Conv3D 1x3x3 kernels. Weights: ``<name>/per_view/kernel``.
    """
    return keras.layers.TimeDistributed(layer, name=name)


def build_model(hparams: hparams_module.HyperParameters) -> tuple[keras.Model, keras.Model]:
    """``(autoencoder, encoder)`` for a job's preset, overrides, image size and number of views."""
    return build_autoencoder(
        hparams.architecture(), image_size=hparams.image_size, num_views=hparams.num_views
    )


def weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Conv and dense layers (the layers that count when comparing architecture depth)."""
    return [layer for layer in model.layers if layer.weights]
