"""Metric log lines (what SageMaker metric definitions parse) and TensorBoard scalars."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import tensorflow as tf

from training import callbacks

DOCS = Path(__file__).resolve().parents[2] / "docs" / "training.md"


def _fake_model(step: int) -> SimpleNamespace:
    """Only what the callbacks read from a trainer: the optimizer's iteration counter."""
    return SimpleNamespace(optimizer=SimpleNamespace(iterations=tf.Variable(step, dtype=tf.int64)))


def _parse(lines: list[str]) -> dict[str, list[float]]:
    """Apply the metric definitions the way SageMaker does: each regex against each log line."""
    found: dict[str, list[float]] = {}
    for line in lines:
        for definition in callbacks.METRIC_DEFINITIONS:
            match = re.search(definition["Regex"], line)
            if match:
                found.setdefault(definition["Name"], []).append(float(match.group(1)))
    return found


def test_lines_carry_interval_means_and_validation_values() -> None:
    # GIVEN the metric line callback with an interval of 2 steps
    lines: list[str] = []
    logger = callbacks.MetricLogLines(2, write=lines.append)
    logger.set_model(_fake_model(4))

    # WHEN four steps and a validation pass report, then training ends after a fifth step
    for step, loss in enumerate([0.9, 0.7, 0.5, 0.3], start=1):
        logger.on_train_batch_end(
            step, {"loss": loss, "ssim": 1 - loss, "l2": loss / 10, "learning_rate": 0.001}
        )
    logger.on_test_end({"loss": 0.25, "ssim": 0.75, "l2": 0.02})
    logger.on_train_batch_end(5, {"loss": 0.2, "ssim": 0.8, "l2": 0.02, "learning_rate": 0.001})
    logger.on_train_end({})

    # THEN every line starts with the global step, and the documented regexes read the values
    assert lines == [
        "step=2 loss=0.8 ssim=0.2 l2=0.08 learning_rate=0.001",
        "step=4 loss=0.4 ssim=0.6 l2=0.04 learning_rate=0.001",
        "step=4 val_loss=0.25 val_ssim=0.75 val_l2=0.02",
        "step=5 loss=0.2 ssim=0.8 l2=0.02 learning_rate=0.001",
    ]
    parsed = _parse(lines)
    assert parsed["train:loss"] == pytest.approx([0.8, 0.4, 0.2])  # " loss=" never matches "val_loss="
    assert parsed["train:ssim"] == pytest.approx([0.2, 0.6, 0.8])
    assert parsed["validation:loss"] == [0.25]
    assert parsed["validation:ssim"] == [0.75]
    assert parsed["validation:l2"] == [0.02]


def test_the_history_file_gets_every_line_as_json(tmp_path: Path) -> None:
    history = tmp_path / "output" / "metrics.jsonl"
    logger = callbacks.MetricLogLines(1, write=lambda line: None, history_file=history)
    logger.set_model(_fake_model(1))
    logger.on_train_batch_end(1, {"loss": 0.5, "ssim": 0.5, "l2": float("nan"), "learning_rate": 0.1})
    logger.on_test_end({"loss": 0.4, "ssim": 0.6, "l2": 0.05})
    records = [json.loads(line) for line in history.read_text().splitlines()]
    assert records == [
        {"step": 1, "mode": "train", "loss": 0.5, "ssim": 0.5, "l2": "nan", "learning_rate": 0.1},
        {"step": 1, "mode": "validation", "loss": 0.4, "ssim": 0.6, "l2": 0.05},
    ]


def test_a_diverged_run_prints_nan() -> None:
    lines: list[str] = []
    logger = callbacks.MetricLogLines(1, write=lines.append)
    logger.on_train_batch_end(
        1, {"loss": float("nan"), "ssim": float("nan"), "l2": float("inf"), "learning_rate": 1.0}
    )
    assert lines == ["step=1 loss=nan ssim=nan l2=inf learning_rate=1"]


def test_the_documentation_lists_the_metric_definitions() -> None:
    documentation = DOCS.read_text(encoding="utf-8")
    block = documentation.split("<!-- metric-definitions", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    assert json.loads(block) == list(callbacks.METRIC_DEFINITIONS)


def test_tensorboard_scalars_are_written_per_run(tmp_path: Path) -> None:
    # GIVEN the TensorBoard callback over two steps and a validation pass
    board = callbacks.TensorBoardScalars(tmp_path, log_interval=2)
    board.set_model(_fake_model(2))
    board.on_train_begin()
    for step in (1, 2):
        board.on_train_batch_end(step, {"loss": 0.5, "ssim": 0.5, "l2": 0.1, "learning_rate": 0.01})
    board.on_test_end({"loss": 0.4, "ssim": 0.6, "l2": 0.05})
    board.on_train_end()

    # THEN train/ and validation/ hold the scalars at step 2
    def tags(run: str) -> dict[str, int]:
        found = {}
        for event_file in (tmp_path / run).glob("events.out.tfevents.*"):
            for record in tf.data.TFRecordDataset(str(event_file)):
                event = tf.compat.v1.Event.FromString(record.numpy())
                for value in event.summary.value:
                    found[value.tag] = event.step
        return found

    assert tags("train") == {"loss": 2, "ssim": 2, "l2": 2, "learning_rate": 2}
    assert tags("validation") == {"loss": 2, "ssim": 2, "l2": 2}
