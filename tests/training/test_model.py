"""The autoencoder's structure: shapes, layer names, presets (measured), overrides."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from training import hparams, model

DOCS = Path(__file__).resolve().parents[2] / "docs" / "model.md"
# Layer names recorded tensors are identified by (see training/model.py).
LAYER_NAME = re.compile(
    r"^(views|encoder_conv_\d+|encoder_flatten|bottleneck_dense_\d+|embedding|decoder_dense_\d+"
    r"|decoder_projection|decoder_reshape|decoder_conv_\d+|reconstruction)$"
)


def _tiny(**overrides: object) -> hparams.HyperParameters:
    values: dict[str, object] = {"image_size": 32, "num_views": 6, "base_filters": 4}
    values.update(overrides)
    return hparams.HyperParameters(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("preset", ["baseline", "optimized"])
def test_shapes_and_names(preset: str) -> None:
    # GIVEN a small model of each preset
    autoencoder, encoder = model.build_model(_tiny(preset=preset, embedding_size=10))

    # THEN it maps views to views, the encoder maps views to the configured embedding size
    assert autoencoder.input.shape == (None, 32, 32, 6)
    assert autoencoder.output.shape == (None, 32, 32, 6)
    assert encoder.output.shape == (None, 10)
    # AND every layer carries a name from the documented scheme (no auto-generated "conv2d_3")
    names = [layer.name for layer in autoencoder.layers]
    assert all(LAYER_NAME.match(name) for name in names), names
    assert len(names) == len(set(names))
    # AND the encoder is the first half of the autoencoder, sharing its weights
    assert encoder.get_layer("embedding") is autoencoder.get_layer("embedding")
    assert [layer.name for layer in encoder.layers][-1] == "embedding"


def test_the_output_is_an_image_in_the_unit_range() -> None:
    autoencoder, _ = model.build_model(_tiny())
    output = autoencoder.predict(np.random.default_rng(0).random((2, 32, 32, 6), np.float32), verbose=0)
    assert output.min() >= 0.0
    assert output.max() <= 1.0


def test_bottleneck_is_configurable() -> None:
    autoencoder, _encoder = model.build_model(
        _tiny(preset="baseline", bottleneck_layers=3, bottleneck_width=16, embedding_size=7)
    )
    for index in (1, 2, 3):
        assert autoencoder.get_layer(f"bottleneck_dense_{index}").units == 16
        assert autoencoder.get_layer(f"decoder_dense_{index}").units == 16
    assert autoencoder.get_layer("embedding").units == 7
    with pytest.raises(ValueError, match="bottleneck_dense_4"):
        autoencoder.get_layer("bottleneck_dense_4")

    no_hidden, _ = model.build_model(_tiny(bottleneck_layers=0))
    assert not any(layer.name.startswith("bottleneck_dense") for layer in no_hidden.layers)


def test_presets_at_full_size_are_measured_and_documented() -> None:
    # GIVEN both presets at the default input (64x64, 12 views)
    built = {name: model.build_model(hparams.HyperParameters(preset=name)) for name in hparams.PRESETS}
    parameters = {name: pair[0].count_params() for name, pair in built.items()}
    layers = {name: len(model.weighted_layers(pair[0])) for name, pair in built.items()}
    embeddings = {name: pair[1].output.shape[-1] for name, pair in built.items()}

    # THEN the optimized preset is what the published optimization says
    assert parameters["optimized"] <= 0.6 * parameters["baseline"]
    assert embeddings["baseline"] >= 3 * embeddings["optimized"]
    assert 0.6 <= layers["optimized"] / layers["baseline"] <= 0.72  # "about a third fewer layers"
    # AND the counted layers are the spec's (conv + dense)
    for name in hparams.PRESETS:
        assert layers[name] == hparams.HyperParameters(preset=name).architecture().weighted_layer_count
    # AND docs/model.md states the measured numbers (so the documentation cannot go stale silently)
    documentation = DOCS.read_text(encoding="utf-8")
    for name in hparams.PRESETS:
        assert f"{parameters[name]:,}" in documentation, (name, parameters[name])


def test_an_image_size_the_encoder_cannot_halve_is_refused() -> None:
    architecture = hparams.HyperParameters().architecture()
    with pytest.raises(ValueError, match="not a multiple of the encoder's downsampling factor 16"):
        model.build_autoencoder(architecture, image_size=40, num_views=3)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_view_pooling_gives_an_embedding_that_ignores_the_order_of_the_views(pooling: str) -> None:
    # GIVEN a small view-pooling model with a unit-length embedding, and a batch of designs
    autoencoder, encoder = model.build_model(_tiny(view_pooling=pooling, normalize_embedding=True))
    views = np.random.default_rng(1).random((3, 32, 32, 6), np.float32)

    # WHEN the views of every design are shuffled
    shuffled = views[..., [4, 0, 5, 2, 1, 3]]
    embedded = np.asarray(encoder(views))
    embedded_shuffled = np.asarray(encoder(shuffled))

    # THEN the embedding is the same (up to float summation order), of unit length, and not constant
    np.testing.assert_allclose(embedded, embedded_shuffled, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(embedded, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(embedded[0], embedded[1])
    # AND the autoencoder still maps views to views in the same layout, through the shared embedding
    assert autoencoder.output.shape == (None, 32, 32, 6)
    assert encoder.get_layer("embedding") is autoencoder.get_layer("embedding")
    assert encoder.layers[-1].name == "embedding"
    # AND the per-view convolutions share one set of weights whatever the number of views
    assert autoencoder.get_layer("encoder_conv_1").layer.kernel.shape == (3, 3, 1, 4)


def test_view_pooling_model_is_no_larger_for_the_optimized_preset() -> None:
    # GIVEN both presets with view pooling at the default input
    parameters = {
        name: model.build_model(hparams.HyperParameters(preset=name, view_pooling="mean"))[0].count_params()
        for name in hparams.PRESETS
    }

    # THEN optimized keeps to 0.6x the baseline's parameters
    assert parameters["optimized"] <= 0.6 * parameters["baseline"]


def test_a_view_pooling_model_saves_and_loads_as_the_analysis_tools_load_it(tmp_path: Path) -> None:
    from training.analysis import embeddings

    # GIVEN a saved view-pooling autoencoder
    autoencoder, encoder = model.build_model(_tiny(view_pooling="max"))
    autoencoder.save(tmp_path / "autoencoder.keras")
    views = np.random.default_rng(2).random((2, 32, 32, 6), np.float32)

    # WHEN its encoder is taken from the saved file
    loaded = embeddings.load_encoder(tmp_path / "autoencoder.keras")

    # THEN it gives the same signatures
    np.testing.assert_allclose(np.asarray(loaded(views)), np.asarray(encoder(views)), atol=1e-6)
