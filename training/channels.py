"""Finding the TFRecord shards of a data channel, without importing TensorFlow.

A SageMaker channel is a directory (``/opt/ml/input/data/<channel>``) holding whatever the S3 prefix held,
subfolders included; the transformer writes shards under ``shards/`` as ``*.tfrecord``. Checking here,
before TensorFlow is imported, lets a missing or empty channel fail in a second with one clear line.
"""

from __future__ import annotations

from pathlib import Path

SHARD_SUFFIX = ".tfrecord"


class DatasetError(ValueError):
    """The data cannot be trained on (missing, empty, wrong shapes); the message says which and why."""


def list_shards(path: Path) -> list[Path]:
    """Every ``*.tfrecord`` file under ``path`` (or ``path`` itself), sorted; an error if there is no data."""
    if not path.exists():
        raise DatasetError(f"data path {path} does not exist")
    if path.is_file():
        candidates = [path] if path.name.endswith(SHARD_SUFFIX) else []
    else:
        candidates = [
            candidate
            for candidate in path.rglob(f"*{SHARD_SUFFIX}")
            if candidate.is_file() and not candidate.name.startswith(".")
        ]
    shards = sorted(candidates)
    if not shards:
        raise DatasetError(f"the dataset is empty: no *{SHARD_SUFFIX} shards under {path}")
    if all(shard.stat().st_size == 0 for shard in shards):
        raise DatasetError(f"the dataset is empty: the {len(shards)} shard(s) under {path} hold no records")
    return shards
