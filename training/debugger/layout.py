"""How autostop lays out an smdebug trial, and the low-level writes (smdebug's core writer). No TensorFlow.

Steps. smdebug gives every saved step a *global* step and a *mode step*. Here the mode step is always the
training (optimizer) step: ``TRAIN`` records the state after training step ``s`` at global step ``2s``;
``EVAL`` records the validation means computed after training step ``s`` at global step ``2s + 1``. So a
training step and the validation after it never share a file, a resumed job continues the same numbering,
and ``trial.tensor("loss").value(s, mode=ModeKeys.EVAL)`` means "validation loss after training step s".
Analysis code should use mode steps (``trial.steps(mode=ModeKeys.TRAIN)``), as with every smdebug hook.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

TRAIN = "train"
EVAL = "eval"
MODES = (TRAIN, EVAL)

WORKER = "worker_0"  # smdebug's DEFAULT_WORKER_NAME: one training process writes the trial
COLLECTIONS_FILE_NAME = f"{WORKER}_collections.json"
END_OF_JOB_FILE_NAME = "training_job_end.ts"  # smdebug's END_OF_JOB_FILENAME
PROBE_FILE_NAME = "autostop-probe.json"  # the probe designs' ids and families, beside the trial

# Scalar and probe tensors; weights, biases, gradients and outputs are ``<collection>/<weight or layer>``.
LOSS_TENSOR = "loss"
METRIC_TENSORS = ("ssim", "l2", "learning_rate")
EMBEDDING_TENSOR = "embeddings/probe"
FAMILY_INDEX_TENSOR = "embeddings/family_index"


def global_step(mode: str, training_step: int) -> int:
    """The smdebug global step of a record: ``2s`` for training step ``s``, ``2s + 1`` for its validation."""
    if training_step < 0:
        raise ValueError(f"training_step must be >= 0, got {training_step}")
    if mode == TRAIN:
        return 2 * training_step
    if mode == EVAL:
        return 2 * training_step + 1
    raise ValueError(f"mode must be {TRAIN!r} or {EVAL!r}, got {mode!r}")


def training_step_of(global_step_number: int) -> int:
    """The training step a global step belongs to (both modes)."""
    return global_step_number // 2


@dataclasses.dataclass(frozen=True)
class StepRecord:
    """The tensors of one saved step: ``mode`` train or eval, at ``training_step``."""

    mode: str
    training_step: int
    tensors: Mapping[str, np.ndarray]

    @property
    def global_step(self) -> int:
        return global_step(self.mode, self.training_step)


@dataclasses.dataclass(frozen=True)
class CollectionEntry:
    """A collection as the collections file records it: its tensors and per-mode save schedules."""

    name: str
    tensor_names: tuple[str, ...]
    include_regex: tuple[str, ...] = ()
    schedules: Mapping[str, Mapping[str, Any] | None] = dataclasses.field(default_factory=dict)


def write_record(out_dir: str, record: StepRecord) -> None:
    """One step's event file and index file (a folder or ``s3://``); readable only once both exist."""
    from smdebug.core.modes import ModeKeys
    from smdebug.core.writer import FileWriter

    mode = ModeKeys.TRAIN if record.mode == TRAIN else ModeKeys.EVAL
    writer = FileWriter(trial_dir=out_dir, worker=WORKER, step=record.global_step)
    try:
        for name, value in record.tensors.items():
            writer.write_tensor(tdata=value, tname=name, mode=mode, mode_step=record.training_step)
    finally:
        writer.close()  # the event file first, then the index file that points into it


def export_collections(out_dir: str, collections: Iterable[CollectionEntry]) -> None:
    """The collections file ``create_trial`` waits for (smdebug's ``CollectionManager.export``)."""
    from smdebug.core.collection_manager import CollectionManager
    from smdebug.core.modes import ModeKeys
    from smdebug.core.save_config import SaveConfig, SaveConfigMode

    manager = CollectionManager()
    for entry in collections:
        collection = manager.get(entry.name)
        collection.include_regex = list(entry.include_regex)
        for name in entry.tensor_names:
            collection.add_tensor_name(name)
        modes = {}
        for mode_key, mode in ((ModeKeys.TRAIN, TRAIN), (ModeKeys.EVAL, EVAL)):
            schedule = entry.schedules.get(mode)
            modes[mode_key] = None if schedule is None else SaveConfigMode(**schedule)
        collection.save_config = SaveConfig(mode_save_configs=modes)
    manager.set_num_workers(1)
    manager.export(out_dir, COLLECTIONS_FILE_NAME)


def write_text(path: str, text: str) -> None:
    """A small file beside the trial, atomically (a folder: temp file + rename; S3: one PutObject)."""
    from smdebug.core.access_layer import TSAccessFile, TSAccessS3
    from smdebug.core.utils import is_s3

    on_s3, bucket, key = is_s3(path)
    writer = TSAccessS3(bucket, key, binary=False) if on_s3 else TSAccessFile(path, "w")
    writer.write(text)
    writer.close()


def write_end_marker(out_dir: str) -> None:
    """Mark the trial ended. smdebug's ``training_has_ended`` skips this under SageMaker; a trial read after
    the job, or by an evaluator in another process, needs it to know that no step is missing."""
    write_text(os.path.join(out_dir, END_OF_JOB_FILE_NAME), "")


def remove_end_marker(out_dir: str) -> bool:
    """A resumed job writes into a trial that ended once: readers must not believe it ended again."""
    from smdebug.core.access_layer import has_training_ended
    from smdebug.core.access_layer.s3handler import S3Handler
    from smdebug.core.utils import is_s3

    if not has_training_ended(out_dir):
        return False
    marker = os.path.join(out_dir, END_OF_JOB_FILE_NAME)
    if is_s3(marker)[0]:
        S3Handler.delete_prefix(path=marker)
    else:
        os.remove(marker)
    return True
