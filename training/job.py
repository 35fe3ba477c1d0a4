"""One training job end to end: data -> model -> resume -> train -> save. No SageMaker specifics here.

Order matters for "nothing half-written": everything that can reject the job (hyperparameters, shapes,
empty splits, an incompatible checkpoint) is checked before the first file is written. Checkpoints are
written only after optimizer steps; the model directory only at the end, atomically per file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import tensorflow as tf

from training import callbacks as callbacks_module
from training import checkpoints, data, log_lines, losses, model, trainer
from training import hparams as hparams_module

AUTOENCODER_FILE = "autoencoder.keras"
ENCODER_FILE = "encoder.keras"
SUMMARY_FILE = "training.json"
# In SM_OUTPUT_DATA_DIR: every metric line as JSON (training.callbacks.MetricLogLines).
METRICS_FILE = "metrics.jsonl"


def _print_line(line: str) -> None:
    log_lines.write_line(line)  # whole and alone, whichever thread prints


@dataclasses.dataclass(frozen=True)
class JobLocations:
    train_channel: Path
    model_dir: Path
    checkpoint_dir: Path
    validation_channel: Path | None = None
    tensorboard_dir: Path | None = None
    output_data_dir: Path | None = None


@dataclasses.dataclass(frozen=True)
class Datasets:
    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    total_steps: int


def load_datasets(
    hparams: hparams_module.HyperParameters, locations: JobLocations, *, start_step: int = 0
) -> Datasets:
    """Training batches (endless, shuffled with a seed that moves on after a resume) and validation batches.

    With a validation channel both channels are used whole; otherwise the training channel is split by
    design id (``validation_fraction``; 0 means no validation).
    """
    image_size, num_views, batch_size = hparams.image_size, hparams.num_views, hparams.batch_size
    if locations.validation_channel is not None:
        train_split, fraction = "all", 0.0
        validation: tf.data.Dataset | None = data.load_dataset(
            locations.validation_channel, image_size=image_size, num_views=num_views, batch_size=batch_size
        )
    elif hparams.validation_fraction > 0:
        train_split, fraction = "train", hparams.validation_fraction
        validation = data.load_dataset(
            locations.train_channel,
            image_size=image_size,
            num_views=num_views,
            batch_size=batch_size,
            split="validation",
            validation_fraction=fraction,
        )
    else:
        train_split, fraction, validation = "all", 0.0, None
    train = data.load_dataset(
        locations.train_channel,
        image_size=image_size,
        num_views=num_views,
        batch_size=batch_size,
        split=train_split,
        validation_fraction=fraction,
        shuffle=True,
        seed=hparams.seed + start_step,
        shuffle_buffer=hparams.shuffle_buffer,
        repeat=True,
        drop_remainder=True,
    )
    designs = (
        data.count_designs(locations.train_channel, split=train_split, validation_fraction=fraction)
        if hparams.epochs is not None
        else 0
    )
    return Datasets(train=train, validation=validation, total_steps=hparams.total_steps(designs))


def save_models(
    trained: trainer.AutoencoderTrainer,
    hparams: hparams_module.HyperParameters,
    model_dir: Path,
    summary: dict[str, object],
) -> dict[str, Path]:
    """Save the autoencoder (compiled with its loss and metrics) and the encoder alone, atomically.

    The weights go into freshly built models so the saved files carry no training state (optimizer
    slots, gradient variables: those live in checkpoints); ``keras.models.load_model`` needs
    ``training.losses`` imported.
    """
    autoencoder, encoder = model.build_model(hparams)
    autoencoder.set_weights(trained.autoencoder.get_weights())
    autoencoder.compile(
        # Plain SGD keeps no per-weight state: the file holds the weights only (Adam's slots would triple
        # it), and loading builds exactly the variables that were saved (no optimizer mismatch warning).
        optimizer=keras.optimizers.SGD(learning_rate=hparams.learning_rate),
        loss=losses.get(hparams.loss),
        metrics=[losses.ssim, losses.l2],
    )
    model_dir.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=".tmp-", dir=model_dir))
    try:
        autoencoder.save(temporary / AUTOENCODER_FILE)
        encoder.save(temporary / ENCODER_FILE)
        (temporary / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")
        saved = {}
        for name in (AUTOENCODER_FILE, ENCODER_FILE, SUMMARY_FILE):
            os.replace(temporary / name, model_dir / name)
            saved[name] = model_dir / name
        return saved
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _op_error_text(error: tf.errors.OpError) -> str:
    """TensorFlow's message without its function-node prefix and op suffix, on one line."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", error.message)
    text = re.sub(r"\s*\[Op:[^\]]*\].*$", "", text, flags=re.DOTALL)
    return " ".join(text.split())


def run(
    hparams: hparams_module.HyperParameters,
    locations: JobLocations,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    log: Callable[[str], None] = _print_line,
) -> trainer.FitResult:
    """Train (or resume) one job; raises DatasetError/CheckpointError before writing anything."""
    trainer.seed_process(hparams)
    datasets = load_datasets(hparams, locations)
    trained = trainer.build_trainer(hparams)
    checkpoint = trainer.training_checkpoint(trained)
    store = checkpoints.CheckpointStore(locations.checkpoint_dir, keep=hparams.checkpoints_to_keep)
    resumed = store.restore_latest(checkpoint, warn=log)
    start_step = int(trained.optimizer.iterations)
    if resumed is not None:
        log(f"resumed from checkpoint {resumed.path} at step={start_step}")
        datasets = load_datasets(hparams, locations, start_step=start_step)
    log(
        f"training steps {start_step}..{datasets.total_steps} parameters={trained.autoencoder.count_params()}"
    )

    state = {"hyperparameters": hparams.to_json_dict()}

    def save_checkpoint(step: int) -> None:
        store.save(checkpoint, step=step, state=state)

    history = locations.output_data_dir / METRICS_FILE if locations.output_data_dir is not None else None
    # The extra callbacks (the Debugger writer) first: one that refuses to start (a tensor folder holding
    # another run's trial) does so before TensorBoard writes a file.
    callbacks: list[keras.callbacks.Callback] = [
        *extra_callbacks,
        callbacks_module.MetricLogLines(hparams.log_interval, history_file=history),
    ]
    if locations.tensorboard_dir is not None:
        callbacks.append(callbacks_module.TensorBoardScalars(locations.tensorboard_dir, hparams.log_interval))
    try:
        result = trainer.fit(
            trained,
            datasets.train,
            total_steps=datasets.total_steps,
            validation_batches=datasets.validation,
            validation_interval=hparams.validation_interval,
            validation_steps=hparams.validation_steps,
            checkpoint_interval=hparams.checkpoint_interval,
            save_checkpoint=save_checkpoint,
            callbacks=callbacks,
            should_stop=should_stop,
        )
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as error:
        # A record that does not match the hyperparameters (the pipeline's assertion) or a corrupt shard.
        raise data.DatasetError(f"bad training record: {_op_error_text(error)}") from None
    if result.step > 0:
        summary = {
            "step": result.step,
            "stopped": result.stopped,
            "train": result.last_logs,
            "validation": result.validation_logs,
            "hyperparameters": hparams.to_json_dict(),
            "parameters": trained.autoencoder.count_params(),
            "embedding_size": hparams.architecture().embedding_size,
        }
        save_models(trained, hparams, locations.model_dir, summary)
    log(f"training ended step={result.step} stopped={str(result.stopped).lower()}")
    return result
