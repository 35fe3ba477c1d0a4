"""Checkpoints: numbered, atomic, pruned, and restored from the newest one that reads back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tensorflow as tf

from training import checkpoints

# Real training (or many TensorFlow processes): a slow module, handed out first (tests/conftest.py).
pytestmark = pytest.mark.slow


def _state(value: float) -> tuple[tf.Variable, tf.train.Checkpoint]:
    variable = tf.Variable(tf.fill([64, 64], value))
    return variable, tf.train.Checkpoint(weights=variable)


def test_save_prunes_to_keep_and_latest_is_the_newest(tmp_path: Path) -> None:
    store = checkpoints.CheckpointStore(tmp_path / "checkpoints", keep=2)
    variable, checkpoint = _state(0.0)
    for step in (10, 20, 30):
        variable.assign(tf.fill([64, 64], float(step)))
        store.save(checkpoint, step=step, state={"note": "test"})

    assert [entry.step for entry in store.entries()] == [20, 30]
    assert store.latest() == checkpoints.CheckpointEntry(30, tmp_path / "checkpoints" / "step-00000030")
    assert not [path for path in (tmp_path / "checkpoints").iterdir() if path.name.startswith(".tmp-")]

    restored, target = _state(-1.0)
    entry = store.restore_latest(target)
    assert entry is not None
    assert entry.step == 30
    assert float(restored[0, 0]) == 30.0


def test_nothing_is_created_until_the_first_save(tmp_path: Path) -> None:
    store = checkpoints.CheckpointStore(tmp_path / "checkpoints", keep=1)
    assert store.latest() is None
    assert store.restore_latest(_state(0.0)[1]) is None
    assert not (tmp_path / "checkpoints").exists()


def test_incomplete_and_temporary_directories_are_ignored(tmp_path: Path) -> None:
    # GIVEN a complete checkpoint, a leftover temporary directory and a step folder without its state file
    directory = tmp_path / "checkpoints"
    store = checkpoints.CheckpointStore(directory, keep=3)
    store.save(_state(5.0)[1], step=5, state={})
    (directory / ".tmp-step-00000009-123").mkdir()
    (directory / "step-00000009").mkdir()

    # THEN only the complete one counts, and the next save cleans the temporary one
    assert [entry.step for entry in store.entries()] == [5]
    store.save(_state(6.0)[1], step=6, state={})
    assert not (directory / ".tmp-step-00000009-123").exists()


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    # GIVEN two checkpoints, the newest with its data file truncated (a partial sync from S3)
    store = checkpoints.CheckpointStore(tmp_path, keep=2)
    variable, checkpoint = _state(1.0)
    store.save(checkpoint, step=1, state={})
    variable.assign(tf.fill([64, 64], 2.0))
    newest = store.save(checkpoint, step=2, state={})
    data_file = next(newest.path.glob("checkpoint.data-*"))
    data_file.write_bytes(data_file.read_bytes()[:100])

    # WHEN restoring
    warnings: list[str] = []
    restored, target = _state(0.0)
    entry = store.restore_latest(target, warn=warnings.append)

    # THEN the older one is used and the fallback is said
    assert entry is not None
    assert entry.step == 1
    assert float(restored[0, 0]) == 1.0
    assert len(warnings) == 1
    assert "step-00000002" in warnings[0]


def test_a_checkpoint_of_another_model_is_a_clear_error(tmp_path: Path) -> None:
    store = checkpoints.CheckpointStore(tmp_path, keep=1)
    store.save(_state(1.0)[1], step=1, state={})
    other = tf.train.Checkpoint(weights=tf.Variable(tf.zeros([3])))
    with pytest.raises(checkpoints.CheckpointError, match="can be restored into this model"):
        store.restore_latest(other, warn=lambda message: None)


def test_saving_the_same_step_again_replaces_it(tmp_path: Path) -> None:
    store = checkpoints.CheckpointStore(tmp_path, keep=2)
    variable, checkpoint = _state(1.0)
    store.save(checkpoint, step=7, state={})
    variable.assign(tf.fill([64, 64], 8.0))
    store.save(checkpoint, step=7, state={})
    restored, target = _state(0.0)
    store.restore_latest(target)
    assert float(restored[0, 0]) == 8.0
    assert [path.name for path in tmp_path.iterdir()] == ["step-00000007"]


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import tensorflow as tf
    from training import checkpoints

    store = checkpoints.CheckpointStore(Path(sys.argv[1]), keep=1000)
    variable = tf.Variable(tf.zeros([256, 256]))
    checkpoint = tf.train.Checkpoint(weights=variable)
    step = 0
    while True:
        step += 1
        variable.assign(tf.fill([256, 256], float(step)))
        store.save(checkpoint, step=step, state={})
        print(f"saved {step}", flush=True)
    """
)


def test_a_kill_during_saving_never_leaves_a_half_checkpoint(tmp_path: Path) -> None:
    """SIGKILL a process that saves checkpoints back to back: every published checkpoint reads back whole.

    The kill lands at an arbitrary point of a save (the writer never pauses), which is the point: whatever
    the moment, the rename publishes complete checkpoints only.
    """
    # GIVEN a process saving checkpoints in a loop
    directory = tmp_path / "checkpoints"
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    try:
        # WHEN it is killed after a few saves, mid-loop
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip() == "saved 5":
                break
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)

    # THEN every step directory restores completely, with the values of its own step
    entries = checkpoints.CheckpointStore(directory, keep=1000).entries()
    assert len(entries) >= 5
    assert sorted(path.name for path in directory.glob("step-*")) == [entry.path.name for entry in entries]
    for entry in entries:
        variable = tf.Variable(tf.zeros([256, 256]))
        tf.train.Checkpoint(weights=variable).read(entry.prefix).assert_existing_objects_matched()
        assert float(variable[0, 0]) == float(entry.step)
