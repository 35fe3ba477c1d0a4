"""Recording overhead: training steps/s with Debugger tensors recorded at the default save intervals and the
rules evaluated, vs without; the same model, interleaved in one run (target: >= 0.95x).

Run: ``.venv/bin/python -m bench.hook_overhead``

The reference model (``optimized`` preset, 1.26 M parameters) trains on one batch of 32 rendered designs (12
views of 64x64; SSIM loss, Adam). Three trainers built with the same seed train in interleaved blocks of
``BLOCK_STEPS`` steps, the order rotating every round, so a busier moment of the CPU hits all alike:

- ``off``: no Debugger;
- ``thread``: the production setup: ``DebuggerTensorWriter`` at the default schedules
  (``config.default_hook_config``: losses/metrics every 10 steps, embeddings of a 32-design probe every 100,
  gradients every 200, weights and biases every 1000) and the five rules in the evaluator thread;
- ``process``: the same writer, with the evaluator as a separate process
  (``python -m training.debugger.evaluator``) following the trial -- the alternative to the thread.

Each block is one ``trainer.fit`` of ``BLOCK_STEPS`` steps; a configuration keeps one writer (one trial, one
evaluator) across its blocks, as a job does, so short blocks keep the three close in time without counting a
writer start per block. Per-round ratios (same moment of the machine), then the median over rounds; the
spread over rounds is shown because a shared machine's load moves. The size on disk of one
fully saved step of this model (every collection) and its write time (on the writer's thread) come from the
same run.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SMDEBUG_LOG_LEVEL", "error")

import numpy as np
import tensorflow as tf

from training import hparams, trainer
from training.debugger import config, evaluator, signals, writer
from training.render import batches, shapes

COMMAND = ".venv/bin/python -m bench.hook_overhead"
BATCH_SIZE = 32
IMAGE_SIZE = 64
NUM_VIEWS = 12
SEED = 11
BLOCK_STEPS = 20
ROUNDS = 15
RULES = "LossNotDecreasing,VanishingGradient,ExplodingTensor,Overfit,LatentClusterRule"
CONFIGURATIONS = ("off", "thread", "process")


def quiet(_: str) -> None:
    """Benchmarks print only their report."""


def rendered_designs() -> tuple[tf.Tensor, writer.Probe]:
    """A batch of real renders (views on the channel axis, [0, 1]) and the same designs as the probe."""
    specs = batches.plan_designs(BATCH_SIZE, shapes.family_names(), SEED)
    rendered = batches.render_designs(specs, views=NUM_VIEWS, size=IMAGE_SIZE, supersample=1, workers=1)
    views = np.stack([design.views for design in rendered]).transpose(0, 2, 3, 1).astype(np.float32) / 255.0
    probe = writer.Probe(
        views=views,
        design_ids=tuple(spec.design_id for spec in specs),
        families=tuple(spec.family for spec in specs),
    )
    return tf.constant(views), probe


def build_trainer(*, learning_rate: float = 1e-3, records: bool) -> trainer.AutoencoderTrainer:
    """The reference model, traced before timing (both step variants when gradients are recorded)."""
    parameters = hparams.HyperParameters(
        image_size=IMAGE_SIZE,
        num_views=NUM_VIEWS,
        batch_size=BATCH_SIZE,
        seed=SEED,
        learning_rate=learning_rate,
    )
    built = trainer.build_trainer(parameters)
    warm_up = tf.zeros((BATCH_SIZE, IMAGE_SIZE, IMAGE_SIZE, NUM_VIEWS))
    if records:
        built.enable_gradient_recording(lambda step: False)
        built.compiled_step(record_gradients=True)(warm_up)
        built.encoder(warm_up, training=False)
    float(built.compiled_step(record_gradients=False)(warm_up)["loss"])
    built.optimizer.iterations.assign(0)  # the save schedules count from step 1 again
    return built


def evaluator_process(trial: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "training.debugger.evaluator", "--trial", str(trial), "--rules", RULES],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "SMDEBUG_LOG_LEVEL": "error"},
    )


class OpenWriter(writer.DebuggerTensorWriter):
    """The production writer, kept open across blocks (``trainer.fit`` ends each block with
    ``on_train_end``); closed once after the measurement."""

    def on_train_end(self, logs: dict[str, object] | None = None) -> None:
        return


def setup(
    name: str, probe: writer.Probe, root: Path
) -> tuple[list[OpenWriter], subprocess.Popen[bytes] | None]:
    """The callbacks of configuration ``name`` (and its evaluator process), for the whole measurement."""
    if name == "off":
        return [], None
    out_dir = root / name
    listeners = []
    process = None
    if name == "thread":
        rules = config.parse_rule_configurations(RULES)
        listeners.append(evaluator.RuleEvaluator(rules, dispatcher=signals.SignalDispatcher([]), log=quiet))
    else:
        process = evaluator_process(out_dir)
    hook = config.default_hook_config(str(out_dir))
    return [OpenWriter(hook, probe=probe, listeners=listeners, log=quiet)], process


def run_block(built: trainer.AutoencoderTrainer, views: tf.Tensor, callbacks: list[OpenWriter]) -> float:
    """Steps per second of one block of ``BLOCK_STEPS`` steps, exactly as ``trainer.fit`` runs them."""
    start = int(built.optimizer.iterations)
    started = time.perf_counter()
    trainer.fit(
        built,
        tf.data.Dataset.from_tensors(views).repeat(),
        total_steps=start + BLOCK_STEPS,
        callbacks=callbacks,
    )
    return BLOCK_STEPS / (time.perf_counter() - started)


def full_save(
    built: trainer.AutoencoderTrainer, views: tf.Tensor, probe: writer.Probe, root: Path
) -> dict[str, float]:
    """One step with every collection saved: its size on disk and the writer thread's time for it."""
    names = (
        config.LOSSES,
        config.METRICS,
        config.WEIGHTS,
        config.BIASES,
        config.GRADIENTS,
        config.EMBEDDINGS,
    )
    every_step = config.HookConfig(
        out_dir=str(root / "full"),
        collections=tuple(config.CollectionConfig(name, config.SaveSchedule(1)) for name in names),
        source="bench",
    )
    tensor_writer = writer.DebuggerTensorWriter(every_step, probe=probe, log=quiet)
    trainer.fit(
        built,
        tf.data.Dataset.from_tensors(views).repeat(),
        total_steps=int(built.optimizer.iterations) + 1,
        callbacks=[tensor_writer],
    )
    step = tensor_writer.steps_written[-1]
    files = [*(root / "full").glob(f"events/{step:012d}/*"), *(root / "full").glob(f"index/*/{step:012d}_*")]
    return {
        "megabytes": sum(path.stat().st_size for path in files) / 1e6,
        "write_seconds": tensor_writer.write_seconds[-1],
    }


def measure() -> dict[str, object]:
    views, probe = rendered_designs()
    root = Path(tempfile.mkdtemp(prefix="hook-overhead-"))
    rates: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
    setups = {name: setup(name, probe, root) for name in CONFIGURATIONS}  # the process starts loading now
    trainers = {name: build_trainer(records=name != "off") for name in CONFIGURATIONS}
    try:
        for round_index in range(ROUNDS):
            order = CONFIGURATIONS[round_index % 3 :] + CONFIGURATIONS[: round_index % 3]
            for name in order:
                rates[name].append(run_block(trainers[name], views, setups[name][0]))
    finally:
        for callbacks, process in setups.values():
            for callback in callbacks:
                callback.close()
            if process is not None:
                process.wait(timeout=300)  # it ends at the trial's end marker
    try:
        saved = full_save(trainers["thread"], views, probe, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    steps = {name: int(built.optimizer.iterations) for name, built in trainers.items()}
    return {
        "rates": rates,
        "saved": saved,
        "parameters": trainers["off"].autoencoder.count_params(),
        "steps": steps,
    }


def main() -> str:
    results = measure()
    rates: dict[str, list[float]] = results["rates"]  # type: ignore[assignment]
    saved: dict[str, float] = results["saved"]  # type: ignore[assignment]
    steps: dict[str, int] = results["steps"]  # type: ignore[assignment]
    per_round = {
        name: [rate / off for rate, off in zip(rates[name], rates["off"], strict=True)]
        for name in CONFIGURATIONS
    }
    lines = [
        "## Debugger recording overhead",
        "",
        f"Command: `{COMMAND}` -- `optimized` preset ({results['parameters']:,} parameters), batch of "
        f"{BATCH_SIZE} rendered designs ({NUM_VIEWS} views of {IMAGE_SIZE}x{IMAGE_SIZE}), SSIM loss, "
        f"TF {tf.__version__} on CPU ({os.cpu_count()} cores, {platform.machine()}); {ROUNDS} interleaved "
        f"rounds of {BLOCK_STEPS}-step blocks, {steps['off']} steps per configuration. Recording at the "
        "default save intervals (losses and metrics every 10 steps, probe embeddings every 100, gradients "
        f"every 200, weights and biases every 1000) with the five rules ({RULES.replace(',', ', ')}).",
        "",
        "| configuration | steps/s (median) | vs off: median of per-round ratios | per-round range "
        "| target |",
        "|---|---:|---:|---:|---:|",
    ]
    labels = {
        "off": "no Debugger",
        "thread": "recording + evaluator thread (production)",
        "process": "recording + evaluator process",
    }
    for name, label in labels.items():
        ratios = per_round[name]
        target = "" if name == "off" else ">= 0.95x"
        lines.append(
            f"| {label} | {statistics.median(rates[name]):.2f} | {statistics.median(ratios):.3f}x | "
            f"{min(ratios):.2f}-{max(ratios):.2f} | {target} |"
        )
    lines += [
        "",
        "One step with every collection saved (weights, biases, gradients, losses, metrics, probe "
        f"embeddings): {saved['megabytes']:.1f} MB on disk, written in "
        f"{saved['write_seconds']:.2f} s on the writer's thread (training does not wait for it).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(main())
