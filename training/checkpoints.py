"""Numbered, atomic training checkpoints, and resuming from the newest usable one.

Layout: ``<checkpoint dir>/step-00000120/{checkpoint.index, checkpoint.data-*, state.json}``. A checkpoint
is written into a hidden ``.tmp-step-...`` directory and renamed into place: rename is atomic on one file
system, so a kill (SIGKILL, spot reclaim, out of memory) at any moment leaves either the previous
checkpoints alone or a complete new one -- never a half-written ``step-*`` directory. Leftover ``.tmp-*``
directories are ignored and cleaned up.

On SageMaker, ``/opt/ml/checkpoints`` is synced to the job's S3 checkpoint URI while training runs and
downloaded again when a (spot) job restarts. That sync copies files, not directories atomically, so a
restarted job may find an incomplete newest checkpoint: ``restore_latest`` then falls back to the next
older one instead of failing.

What is saved: the autoencoder's weights and the optimizer (its iteration counter is the global step, and
its slots make the resumed run continue exactly where it stopped). ``state.json`` records the step and the
hyperparameters for humans.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import tensorflow as tf

PREFIX = "step-"
TEMPORARY_PREFIX = ".tmp-"
CHECKPOINT_NAME = "checkpoint"
STATE_FILE = "state.json"


class CheckpointError(ValueError):
    """No usable checkpoint can be restored although some exist (e.g. written for another architecture)."""


@dataclasses.dataclass(frozen=True)
class CheckpointEntry:
    step: int
    path: Path

    @property
    def prefix(self) -> str:
        return str(self.path / CHECKPOINT_NAME)


class CheckpointStore:
    """The checkpoints of one job in one directory, newest last."""

    def __init__(self, directory: Path, *, keep: int) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = directory
        self.keep = keep

    def entries(self) -> list[CheckpointEntry]:
        """Complete checkpoints (their state file was written before the rename), oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for child in self.directory.iterdir():
            if not child.is_dir() or not child.name.startswith(PREFIX):
                continue
            try:
                step = int(child.name.removeprefix(PREFIX))
            except ValueError:
                continue
            if (child / STATE_FILE).is_file():
                found.append(CheckpointEntry(step=step, path=child))
        return sorted(found, key=lambda entry: entry.step)

    def latest(self) -> CheckpointEntry | None:
        entries = self.entries()
        return entries[-1] if entries else None

    def save(
        self, checkpoint: tf.train.Checkpoint, *, step: int, state: Mapping[str, Any]
    ) -> CheckpointEntry:
        """Write ``checkpoint`` as step ``step`` atomically, then drop all but the newest ``keep``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._remove_temporaries()
        final = self.directory / f"{PREFIX}{step:08d}"
        temporary = self.directory / f"{TEMPORARY_PREFIX}{final.name}-{os.getpid()}"
        temporary.mkdir()
        checkpoint.write(str(temporary / CHECKPOINT_NAME))
        state_path = temporary / STATE_FILE
        state_path.write_text(json.dumps({"step": step, **state}, indent=2, sort_keys=True), encoding="utf-8")
        _fsync_tree(temporary)
        if final.exists():
            # Same step written again (a resumed run stopped before its first new step): swap it.
            retired = self.directory / f"{TEMPORARY_PREFIX}retired-{final.name}-{os.getpid()}"
            final.rename(retired)
            temporary.rename(final)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            temporary.rename(final)
        _fsync_directory(self.directory)
        self._prune()
        return CheckpointEntry(step=step, path=final)

    def restore_latest(
        self, checkpoint: tf.train.Checkpoint, *, warn: Callable[[str], None] = print
    ) -> CheckpointEntry | None:
        """Restore the newest checkpoint that reads back completely; None when there is none at all."""
        entries = self.entries()
        failures = []
        for entry in reversed(entries):
            try:
                status = checkpoint.read(entry.prefix)
                status.assert_existing_objects_matched()
            except Exception as error:  # any way a checkpoint fails to read back means: try an older one
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                failures.append(f"{entry.path.name}: {reason}")
                warn(f"checkpoint {entry.path} is not usable ({reason}); trying an older one")
                continue
            return entry
        if entries:
            raise CheckpointError(
                f"none of the {len(entries)} checkpoint(s) in {self.directory} can be restored into this "
                f"model (different preset, image_size or num_views?): {failures[0]}"
            )
        return None

    def _prune(self) -> None:
        for entry in self.entries()[: -self.keep]:
            shutil.rmtree(entry.path, ignore_errors=True)

    def _remove_temporaries(self) -> None:
        for child in self.directory.iterdir():
            if child.name.startswith(TEMPORARY_PREFIX):
                shutil.rmtree(child, ignore_errors=True)


def _fsync_tree(directory: Path) -> None:
    """Flush the files to disk before the rename publishes them (a crash must not publish empty files)."""
    for child in directory.iterdir():
        if child.is_file():
            with child.open("rb") as handle:
                os.fsync(handle.fileno())
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
