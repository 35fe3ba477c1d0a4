"""The vanishing-gradient diagnosis on a real run made to vanish, recorded by the in-container writer.

A deep stack of 20 sigmoid dense layers is trained for real (``trainer.fit``, the job's loop) while
``training.debugger.writer.DebuggerTensorWriter`` records gradients, weights and losses every 5 steps. A
sigmoid's slope is at most 1/4, so each layer shrinks the gradient passing back through it about fourfold:
the layers nearest the input get ~1e-12 of what the output layer gets. Nothing here is simulated; the
analysis must find it from the recorded tensors alone.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from training import trainer
from training.analysis import gradients
from training.debugger import config, writer

DEPTH = 20
WIDTH = 16
IMAGE_SIZE = 16
SAVE_INTERVAL = 5
STEPS = 20


def saturating_stack() -> tuple[keras.Model, keras.Model]:
    inputs = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 1), name="views")
    hidden = keras.layers.Flatten(name="flatten")(inputs)
    for index in range(1, DEPTH + 1):
        hidden = keras.layers.Dense(WIDTH, activation="sigmoid", name=f"dense_{index}")(hidden)
    encoder = keras.Model(inputs, hidden, name="encoder")
    pixels = keras.layers.Dense(IMAGE_SIZE * IMAGE_SIZE, activation="sigmoid", name="dense_out")(hidden)
    outputs = keras.layers.Reshape((IMAGE_SIZE, IMAGE_SIZE, 1), name="reconstruction")(pixels)
    return keras.Model(inputs, outputs, name="autoencoder"), encoder


@pytest.fixture(scope="module")
def vanishing_trial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("vanishing") / "tensors"
    keras.utils.set_random_seed(5)
    autoencoder, encoder = saturating_stack()
    trained = trainer.AutoencoderTrainer(autoencoder, encoder, loss="l2")
    trained.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5))
    images = np.random.default_rng(5).uniform(size=(64, IMAGE_SIZE, IMAGE_SIZE, 1)).astype(np.float32)
    batches = tf.data.Dataset.from_tensor_slices(images).batch(16, drop_remainder=True).repeat()
    hook_config = config.parse_debug_hook_config(
        {
            "LocalPath": str(out_dir),
            "HookParameters": {"save_interval": str(SAVE_INTERVAL)},
            "CollectionConfigurations": [
                {"CollectionName": name} for name in ("gradients", "weights", "biases", "losses")
            ],
        },
        source="test",
    )
    recorder = writer.DebuggerTensorWriter(hook_config, log=lambda line: None)
    trainer.fit(trained, batches, total_steps=STEPS, callbacks=[recorder])
    return out_dir


def test_the_layers_nearest_the_input_vanish_from_the_first_saved_step(vanishing_trial: Path) -> None:
    # GIVEN the recorded trial of the saturating stack; WHEN it is analysed with the default threshold
    report = gradients.build_report(gradients.collect(gradients.open_trial(str(vanishing_trial))))

    # THEN the layers are found in forward order at the saved steps
    assert report.layers == (*(f"dense_{index}" for index in range(1, DEPTH + 1)), "dense_out")
    assert report.steps == (5, 10, 15, 20)
    # AND the first layers vanish from the first saved step, while the last ones still learn
    vanishing = report.vanishing_layers
    assert vanishing[0] == "dense_1"
    assert vanishing == [f"dense_{index}" for index in range(1, len(vanishing) + 1)]
    assert 5 <= len(vanishing) < DEPTH
    assert report.first_vanishing_step == 5
    assert report.diagnoses["dense_out"].status == "ok"
    # AND the magnitudes fall monotonically towards the input, by orders of magnitude
    last_step = {layer: report.layer_statistics[layer][20].mean_abs for layer in report.layers}
    assert last_step["dense_1"] < 1e-12 < 1e-5 < last_step["dense_out"]
    assert all(last_step[f"dense_{index}"] < last_step[f"dense_{index + 4}"] for index in range(1, DEPTH - 3))
    # AND the vanishing layers' weights barely move, which the update ratios show
    assert report.update_ratios["dense_1"][0].per_step < 1e-8
    assert "dense_1" in report.barely_updated


def test_the_summary_and_plots_of_the_vanishing_run(vanishing_trial: Path, tmp_path: Path) -> None:
    result = gradients.analyze(str(vanishing_trial), tmp_path)

    summary = result.summary.read_text(encoding="utf-8")
    assert "**Vanishing gradients** in" in summary
    assert "They are the layers nearest the input" in summary
    assert "non-saturating activations" in summary
    assert set(result.report.histograms) == {"dense_1", "dense_out"}
    assert "| loss (train) | 5 |" in summary
    for plot in (gradients.DISTRIBUTIONS_PLOT, gradients.MAGNITUDES_PLOT, gradients.UPDATE_RATIOS_PLOT):
        assert (tmp_path / plot).stat().st_size > 10_000
