"""Training step time: SSIM vs L2 loss, baseline vs optimized preset; parameter counts and model sizes.

Run: ``.venv/bin/python -m bench.train_step``

One batch of 32 rendered designs (12 views of 64x64, the default input) made by the render generator is fed
to four trainers (baseline/optimized x ssim/l2). After a warm-up (tracing) the four are timed in
interleaved rounds -- each round runs a few steps of every configuration -- so a slower or busier moment of
this shared CPU hits all four alike; the ratios are computed from medians over rounds. Every step also
reports the other metric (an L2 step computes SSIM forward for its log line; an SSIM step gets SSIM from its
loss), as training does. A second table times the SSIM loss alone (forward + backward), tf.image.ssim
against training.losses.ssim, interleaved the same way. Parameter counts and the sizes of the saved
``autoencoder.keras`` / ``encoder.keras`` (exactly what a job writes to SM_MODEL_DIR) come from the same run.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from training import hparams, job, losses, model, trainer
from training.render import batches, shapes

BATCH_SIZE = 32
IMAGE_SIZE = 64
NUM_VIEWS = 12
SEED = 11
WARMUP_STEPS = 3
ROUNDS = 7
STEPS_PER_ROUND = 3
PRESETS = ("baseline", "optimized")
LOSSES = ("ssim", "l2")
COMMAND = ".venv/bin/python -m bench.train_step"


def rendered_batch() -> tf.Tensor:
    """A batch of real renders, (32, 64, 64, 12) float32 in [0, 1], views on the channel axis."""
    specs = batches.plan_designs(BATCH_SIZE, shapes.family_names(), SEED)
    views = [
        rendered.views
        for rendered in batches.render_designs(
            specs, views=NUM_VIEWS, size=IMAGE_SIZE, supersample=1, workers=1
        )
    ]
    stacked = np.stack(views).transpose(0, 2, 3, 1).astype(np.float32) / 255.0
    return tf.constant(stacked)


def build(preset: str, loss: str) -> tuple[hparams.HyperParameters, trainer.AutoencoderTrainer]:
    parameters = hparams.HyperParameters(
        preset=preset, loss=loss, image_size=IMAGE_SIZE, num_views=NUM_VIEWS, batch_size=BATCH_SIZE, seed=SEED
    )
    return parameters, trainer.build_trainer(parameters)


def time_steps(step_function: object, views: tf.Tensor, steps: int) -> float:
    """Seconds per step, waiting for the result of the last step (TF runs ops asynchronously)."""
    started = time.perf_counter()
    logs = None
    for _ in range(steps):
        logs = step_function(views)  # type: ignore[operator]
    float(logs["loss"])  # type: ignore[index]
    return (time.perf_counter() - started) / steps


def ssim_gradient_function(ssim_function: object, views: tf.Tensor, reconstruction: tf.Variable) -> object:
    """1 - mean SSIM and its gradient with respect to the reconstruction, compiled."""

    @tf.function
    def loss_and_gradient(batch: tf.Tensor) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            loss = 1.0 - tf.reduce_mean(ssim_function(batch, reconstruction))  # type: ignore[operator]
        return {"loss": loss, "gradient": tape.gradient(loss, reconstruction)}

    return loss_and_gradient


def measure_ssim_implementations(views: tf.Tensor) -> dict[str, float]:
    """ms for SSIM loss forward + backward: tf.image.ssim (121-tap window) vs training.losses (separable)."""
    reconstruction = tf.Variable(tf.clip_by_value(views + 0.05, 0.0, 1.0))
    functions = {
        "tf.image.ssim": ssim_gradient_function(
            lambda first, second: tf.image.ssim(first, second, max_val=1.0), views, reconstruction
        ),
        "training.losses.ssim": ssim_gradient_function(losses.ssim, views, reconstruction),
    }
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for function in functions.values():
        time_steps(function, views, WARMUP_STEPS)
    for _ in range(ROUNDS):
        for name, function in functions.items():
            samples[name].append(time_steps(function, views, STEPS_PER_ROUND))
    return {name: 1000 * statistics.median(values) for name, values in samples.items()}


def measure() -> dict[str, object]:
    views = rendered_batch()
    ssim_milliseconds = measure_ssim_implementations(views)
    configurations = [(preset, loss) for preset in PRESETS for loss in LOSSES]
    trainers = {}
    functions = {}
    for preset, loss in configurations:
        parameters, built = build(preset, loss)
        trainers[(preset, loss)] = (parameters, built)
        functions[(preset, loss)] = tf.function(built.train_step)
        time_steps(functions[(preset, loss)], views, WARMUP_STEPS)
    samples: dict[tuple[str, str], list[float]] = {configuration: [] for configuration in configurations}
    for round_index in range(ROUNDS):
        # Rotate the order each round so no configuration always runs first (or right after another).
        order = (
            configurations[round_index % len(configurations) :]
            + configurations[: round_index % len(configurations)]
        )
        for configuration in order:
            samples[configuration].append(time_steps(functions[configuration], views, STEPS_PER_ROUND))
    milliseconds = {
        configuration: 1000 * statistics.median(values) for configuration, values in samples.items()
    }

    sizes = {}
    for preset in PRESETS:
        parameters, built = trainers[(preset, "ssim")]
        with tempfile.TemporaryDirectory() as directory:
            saved = job.save_models(built, parameters, Path(directory), {"bench": True})
            sizes[preset] = {
                "parameters": built.autoencoder.count_params(),
                "encoder_parameters": built.encoder.count_params(),
                "layers": len(model.weighted_layers(built.autoencoder)),
                "embedding": parameters.architecture().embedding_size,
                "autoencoder_bytes": saved[job.AUTOENCODER_FILE].stat().st_size,
                "encoder_bytes": saved[job.ENCODER_FILE].stat().st_size,
            }
    return {"milliseconds": milliseconds, "sizes": sizes, "ssim": ssim_milliseconds}


def _kib(size: object) -> str:
    return f"{int(size) / 1024:,.0f} KiB"  # type: ignore[call-overload]


def main() -> str:
    results = measure()
    milliseconds: dict[tuple[str, str], float] = results["milliseconds"]  # type: ignore[assignment]
    sizes: dict[str, dict[str, int]] = results["sizes"]  # type: ignore[assignment]
    lines = [
        "## Training step time and model size",
        "",
        f"Command: `{COMMAND}` -- batch of {BATCH_SIZE} rendered designs, {NUM_VIEWS} views of "
        f"{IMAGE_SIZE}x{IMAGE_SIZE}, Adam, TF {tf.__version__} on CPU ({os.cpu_count()} cores, "
        f"{platform.machine()}); median of {ROUNDS} interleaved rounds of {STEPS_PER_ROUND} steps.",
        "",
        "| preset | loss | ms/step |",
        "|---|---|---:|",
    ]
    for (preset, loss), value in milliseconds.items():
        lines.append(f"| {preset} | {loss} | {value:.1f} |")
    lines += [
        "",
        "| ratio (same run) | value |",
        "|---|---:|",
    ]
    for preset in PRESETS:
        ratio = milliseconds[(preset, "ssim")] / milliseconds[(preset, "l2")]
        lines.append(f"| {preset}: SSIM step / L2 step | {ratio:.2f}x |")
    for loss in LOSSES:
        ratio = milliseconds[("optimized", loss)] / milliseconds[("baseline", loss)]
        lines.append(f"| {loss}: optimized step / baseline step | {ratio:.2f}x |")
    ssim_milliseconds: dict[str, float] = results["ssim"]  # type: ignore[assignment]
    lines += [
        "",
        "SSIM loss alone, forward + backward on the same batch (same run, interleaved):",
        "",
        "| implementation | ms | vs tf.image.ssim |",
        "|---|---:|---:|",
    ]
    for name, value in ssim_milliseconds.items():
        lines.append(f"| {name} | {value:.1f} | {value / ssim_milliseconds['tf.image.ssim']:.2f}x |")
    baseline, optimized = sizes["baseline"], sizes["optimized"]
    lines += [
        "",
        "| preset | parameters | encoder parameters | conv+dense layers | embedding | autoencoder.keras "
        "| encoder.keras |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for preset in PRESETS:
        size = sizes[preset]
        lines.append(
            f"| {preset} | {size['parameters']:,} | {size['encoder_parameters']:,} | {size['layers']} "
            f"| {size['embedding']} | {_kib(size['autoencoder_bytes'])} | {_kib(size['encoder_bytes'])} |"
        )
    lines += [
        "",
        f"Optimized vs baseline: {optimized['parameters'] / baseline['parameters']:.2f}x parameters, "
        f"{optimized['autoencoder_bytes'] / baseline['autoencoder_bytes']:.2f}x saved autoencoder, "
        f"{optimized['layers'] / baseline['layers']:.2f}x layers, "
        f"bottleneck {baseline['embedding'] / optimized['embedding']:.0f}x smaller.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(main())
