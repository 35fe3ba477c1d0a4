"""Helpers for the training tests: shards in the training format, and the container's directory layout."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf


def serialize_design(design_id: str, family: str, views: np.ndarray) -> bytes:
    """One design as a tf.train.Example in the training shard format (docs/data-format.md)."""
    num_views, height, width = views.shape
    feature = {
        "design_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[design_id.encode()])),
        "family": tf.train.Feature(bytes_list=tf.train.BytesList(value=[family.encode()])),
        "views": tf.train.Feature(bytes_list=tf.train.BytesList(value=[views.astype(np.uint8).tobytes()])),
        "num_views": tf.train.Feature(int64_list=tf.train.Int64List(value=[num_views])),
        "height": tf.train.Feature(int64_list=tf.train.Int64List(value=[height])),
        "width": tf.train.Feature(int64_list=tf.train.Int64List(value=[width])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_shard(path: Path, designs: Iterable[tuple[str, str, np.ndarray]]) -> Path:
    """Write designs to one TFRecord file with TensorFlow's own writer."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for design_id, family, views in designs:
            writer.write(serialize_design(design_id, family, views))
    return path


def read_design_ids(path: Path) -> list[str]:
    ids = []
    for shard in sorted(path.rglob("*.tfrecord")):
        for record in tf.data.TFRecordDataset(str(shard)):
            example = tf.train.Example.FromString(record.numpy())
            ids.append(example.features.feature["design_id"].bytes_list.value[0].decode())
    return ids


def blob_views(seed: int, *, num_views: int, image_size: int) -> np.ndarray:
    """A V x H x W uint8 stack of smooth blobs (for tests of shapes and the split, not of rendering)."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(-1.0, 1.0, image_size)
    ys, xs = np.meshgrid(grid, grid, indexing="ij")
    views = np.empty((num_views, image_size, image_size), np.uint8)
    for view in range(num_views):
        cx, cy = rng.uniform(-0.5, 0.5, size=2)
        radius = rng.uniform(0.2, 0.6)
        views[view] = (255 * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / radius**2)).astype(np.uint8)
    return views


def container_layout(
    root: Path,
    *,
    train_channel: Path | None,
    hyperparameters: Mapping[str, str],
    validation_channel: Path | None = None,
) -> dict[str, str]:
    """Lay out ``root`` like /opt/ml (hyperparameters.json, channel links) and return the environment.

    The channels are copies of the shards, as SageMaker's File mode downloads them; nothing in the
    environment but AUTOSTOP_OPT_ML points at the layout, so the contract's default paths are tested.
    """
    config = root / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters)), encoding="utf-8")
    data = root / "input" / "data"
    data.mkdir(parents=True, exist_ok=True)
    if train_channel is not None:
        shutil.copytree(train_channel, data / "train")
    if validation_channel is not None:
        shutil.copytree(validation_channel, data / "validation")
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SM_", "AUTOSTOP_")) and name != "TF_CONFIG"
    }
    environment.update({"AUTOSTOP_OPT_ML": str(root), "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"})
    return environment


def train_command(*arguments: str) -> list[str]:
    """The entry point as the container's ``train`` executable runs it."""
    return [sys.executable, "-m", "training.train", *arguments]
