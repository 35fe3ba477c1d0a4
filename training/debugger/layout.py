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
# Which run owns the trial, beside it: created exclusively by a new run (two runs never share a folder).
RUN_FILE_NAME = "autostop-run.json"

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


def _is_s3(path: str) -> bool:
    return path.startswith("s3://")


def holds_trial(out_dir: str) -> bool:
    """Whether ``out_dir`` already holds (part of) a trial: its collections file, a step, the end marker,
    or another run's claim. A new run must not write there: its steps would carry the same numbers as the
    old run's, and a reader that already read those steps never reads them again (the rules go blind)."""
    from smdebug.core.access_layer import has_training_ended
    from smdebug.core.access_layer.utils import file_exists
    from smdebug.core.utils import get_path_to_collections

    if has_training_ended(out_dir):
        return True
    if file_exists(get_path_to_collections(out_dir) + COLLECTIONS_FILE_NAME):
        return True
    if file_exists(os.path.join(out_dir, RUN_FILE_NAME)):
        return True
    if _is_s3(out_dir):
        return bool(_s3_keys(out_dir, "index/", limit=1))
    index = os.path.join(out_dir, "index")
    return os.path.isdir(index) and any(files for _, _, files in os.walk(index))


def claim(out_dir: str, text: str) -> bool:
    """Write the run file beside the trial, exclusively in a folder (``O_EXCL``: of two runs starting into
    one folder at the same moment, exactly one wins). ``False``: another run claimed it first. On S3 the
    write is a plain PutObject (S3 has no exclusive create in smdebug's access layer): ``holds_trial``
    checked just before is the guard there."""
    path = os.path.join(out_dir, RUN_FILE_NAME)
    if _is_s3(out_dir):
        write_text(path, text)
        return True
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)
    return True


def _s3_keys(out_dir: str, relative_prefix: str, *, limit: int | None = None) -> list[str]:
    from smdebug.core.access_layer.s3handler import ListRequest, S3Handler
    from smdebug.core.utils import is_s3

    _, bucket, prefix = is_s3(out_dir)
    keys: list[str] = S3Handler.list_prefix(
        ListRequest(Bucket=bucket, Prefix=os.path.join(prefix, relative_prefix))
    )
    return keys[:limit] if limit is not None else keys


def _step_of_file(name: str) -> int | None:
    """The global step of an index file (``000000000040_worker_0.json``) or an event file."""
    head = os.path.basename(name).split("_", 1)[0]
    return int(head) if head.isdigit() else None


def remove_steps_from(out_dir: str, first_global_step: int) -> int:
    """Delete the steps ``>= first_global_step`` of a trial (index and event files); returns how many.

    A resumed job restarts at its checkpoint; steps the interrupted run wrote after that checkpoint are
    from an abandoned future, and the resumed run writes the same step numbers again. Left in place, a
    reader could judge the old values and never see the new ones; removed, the trial holds one history."""
    from smdebug.core.access_layer.s3handler import DeleteRequest, S3Handler
    from smdebug.core.utils import is_s3

    removed: set[int] = set()
    if _is_s3(out_dir):
        _, bucket, _ = is_s3(out_dir)
        stale = [
            key
            for relative in ("index/", "events/")
            for key in _s3_keys(out_dir, relative)
            if (step := _step_of_file(key)) is not None and step >= first_global_step
        ]
        for key in stale:
            step = _step_of_file(key)
            if step is not None:
                removed.add(step)
        # Index files first: a reader never finds an index that points into a deleted event file.
        stale.sort(key=lambda key: "/events/" in key)
        for key in stale:
            S3Handler.delete_prefix(delete_request=DeleteRequest(Bucket=bucket, Prefix=key))
        return len(removed)
    index = os.path.join(out_dir, "index")
    for directory, _, files in os.walk(index):
        for name in files:
            step = _step_of_file(name)
            if step is not None and step >= first_global_step:
                os.remove(os.path.join(directory, name))
                removed.add(step)
    events = os.path.join(out_dir, "events")
    if os.path.isdir(events):
        for name in os.listdir(events):
            step = int(name) if name.isdigit() else None
            if step is not None and step >= first_global_step:
                for directory, _, files in os.walk(os.path.join(events, name), topdown=False):
                    for file_name in files:
                        os.remove(os.path.join(directory, file_name))
                    os.rmdir(directory)
                removed.add(step)
    return len(removed)
