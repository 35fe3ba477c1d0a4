"""Keras callbacks for the SageMaker contract: metric log lines and TensorBoard scalars.

Metric log lines are how SageMaker sees training metrics of a bring-your-own container: a metric
definition is a regex over the job's log lines (docs/training.md lists them). Two line shapes, one per
event, always starting with the global step:

    step=120 loss=0.1234 ssim=0.8766 l2=0.0101 learning_rate=0.001
    step=120 val_loss=0.1301 val_ssim=0.8699 val_l2=0.0112

Training values are means over the last ``log_interval`` steps (a single batch is too noisy to read);
validation values are means over the validation set.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from training import log_lines

TRAIN_METRICS = ("loss", "ssim", "l2", "learning_rate")
VALIDATION_METRICS = ("loss", "ssim", "l2")

# SageMaker metric definitions for these lines (CreateTrainingJob AlgorithmSpecification.MetricDefinitions;
# also what a sweep passes as an estimator's metric_definitions). The leading space keeps " loss=" from
# matching inside "val_loss=".
METRIC_DEFINITIONS: tuple[dict[str, str], ...] = (
    *({"Name": f"train:{name}", "Regex": f" {name}=(\\S+)"} for name in TRAIN_METRICS),
    *({"Name": f"validation:{name}", "Regex": f" val_{name}=(\\S+)"} for name in VALIDATION_METRICS),
)


def _print_line(line: str) -> None:
    log_lines.write_line(line)  # whole and alone, whichever thread prints


def format_value(value: float) -> str:
    """Six significant digits; ``nan``/``inf`` stay readable (a diverged run must show it)."""
    return f"{value:.6g}" if math.isfinite(value) else str(value)


class IntervalMeans:
    """Means of the values logged since the last ``pop``."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self._sums = dict.fromkeys(names, 0.0)
        self._count = 0

    def add(self, logs: Mapping[str, float]) -> None:
        for name in self.names:
            self._sums[name] += float(logs.get(name, math.nan))
        self._count += 1

    def pop(self) -> dict[str, float]:
        means = {name: total / self._count for name, total in self._sums.items()} if self._count else {}
        self._sums = dict.fromkeys(self.names, 0.0)
        self._count = 0
        return means

    def __bool__(self) -> bool:
        return self._count > 0


def _current_step(model: Any) -> int:
    return int(model.optimizer.iterations)


class MetricLogLines(keras.callbacks.Callback):
    """Print the metric lines SageMaker metric definitions parse.

    With ``history_file`` each line's values are also appended there as one JSON object
    (``{"step": 120, "mode": "train", "loss": ...}``), flushed at once, so even a killed job leaves its
    metric history in ``SM_OUTPUT_DATA_DIR`` (uploaded as output.tar.gz) without parsing logs.
    """

    def __init__(
        self,
        log_interval: int,
        write: Callable[[str], None] = _print_line,
        history_file: Path | None = None,
    ) -> None:
        super().__init__()
        if log_interval <= 0:
            raise ValueError(f"log_interval must be > 0, got {log_interval}")
        self.log_interval = log_interval
        self.write = write
        self.history_file = history_file
        self._means = IntervalMeans(TRAIN_METRICS)
        self._last_step = 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._means.add(logs or {})
        self._last_step = batch
        if batch % self.log_interval == 0:
            self._write_train(batch)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._means:  # the steps since the last line (a stop or an end between two intervals)
            self._write_train(self._last_step)

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if not logs:
            return
        step = _current_step(self.model)
        values = " ".join(f"val_{name}={format_value(float(logs[name]))}" for name in VALIDATION_METRICS)
        self.write(f"step={step} {values}")
        self._append_history(step, "validation", {name: float(logs[name]) for name in VALIDATION_METRICS})

    def _write_train(self, step: int) -> None:
        means = self._means.pop()
        self.write(
            f"step={step} " + " ".join(f"{name}={format_value(means[name])}" for name in TRAIN_METRICS)
        )
        self._append_history(step, "train", means)

    def _append_history(self, step: int, mode: str, values: Mapping[str, float]) -> None:
        if self.history_file is None:
            return
        self.history_file.parent.mkdir(parents=True, exist_ok=True)
        record = {"step": step, "mode": mode, **{name: _json_number(value) for name, value in values.items()}}
        with self.history_file.open("a", encoding="utf-8") as history:
            history.write(json.dumps(record) + "\n")


def _json_number(value: float) -> float | str:
    """JSON has no NaN or infinity: a diverged value is written as the string "nan"/"inf"."""
    return value if math.isfinite(value) else str(value)


class TensorBoardScalars(keras.callbacks.Callback):
    """Scalars for TensorBoard: ``train/`` (interval means) and ``validation/`` runs with the same tags.

    SageMaker uploads ``/opt/ml/output/tensorboard`` when the job has a TensorBoardOutputConfig; the writer
    is created when training starts, so a job that fails validation leaves no event files.
    """

    def __init__(self, log_dir: Path, log_interval: int) -> None:
        super().__init__()
        self.log_dir = log_dir
        self.log_interval = log_interval
        self._means = IntervalMeans(TRAIN_METRICS)
        self._writers: dict[str, Any] = {}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._writers = {
            run: tf.summary.create_file_writer(str(self.log_dir / run)) for run in ("train", "validation")
        }

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._means.add(logs or {})
        if batch % self.log_interval == 0:
            self._write("train", batch, self._means.pop())

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if logs and self._writers:
            self._write(
                "validation", _current_step(self.model), {name: logs[name] for name in VALIDATION_METRICS}
            )

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for writer in self._writers.values():
            writer.flush()
            writer.close()
        self._writers = {}

    def _write(self, run: str, step: int, values: Mapping[str, float]) -> None:
        with self._writers[run].as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)
