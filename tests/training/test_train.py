"""The SageMaker entry point, run as the container runs it: a subprocess over the /opt/ml layout.

The image cannot be built here (no Docker), so each test lays out a temporary directory exactly like
``/opt/ml`` (hyperparameters.json with string values, the ``train`` channel with transformer-made shards),
points ``AUTOSTOP_OPT_ML`` at it and runs ``python -m training.train`` -- what the image's ``train``
executable runs. Everything is real: TensorFlow training, checkpoints, signals, model files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.training import support
from tests.training.conftest import RenderedShards
from training import callbacks, checkpoints, data, hparams, job, trainer

# Real training (or many TensorFlow processes): a slow module, handed out first (tests/conftest.py).
pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[2]
# Tiny but real: rendered 6-view 32x32 designs, the optimized preset with few filters.
HYPERPARAMETERS = {
    "image_size": "32",
    "num_views": "6",
    "base_filters": "4",
    "bottleneck_width": "64",
    "embedding_size": "12",
    "batch_size": "8",
    "steps": "48",
    "learning_rate": "0.01",
    "log_interval": "8",
    "checkpoint_interval": "16",
    "validation_interval": "16",
    "validation_fraction": "0.25",
    "seed": "3",
    "loss": "ssim",
    "preset": "optimized",
}
TRAIN_LINE = re.compile(r"^step=(\d+) loss=")
RUN_TIMEOUT_S = 300


@dataclasses.dataclass(frozen=True)
class Run:
    root: Path
    returncode: int
    stdout: str
    stderr: str

    def train_steps(self) -> list[int]:
        return [int(match.group(1)) for line in self.stdout.splitlines() if (match := TRAIN_LINE.match(line))]

    def metric(self, name: str) -> list[float]:
        regex = next(item["Regex"] for item in callbacks.METRIC_DEFINITIONS if item["Name"] == name)
        return [
            float(match.group(1)) for line in self.stdout.splitlines() if (match := re.search(regex, line))
        ]


def _run(root: Path, environment: dict[str, str], *arguments: str, command: list[str] | None = None) -> Run:
    completed = subprocess.run(
        command or support.train_command(*arguments),
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    return Run(root, completed.returncode, completed.stdout, completed.stderr)


def _layout(root: Path, shards: RenderedShards, **overrides: str) -> dict[str, str]:
    return support.container_layout(
        root, train_channel=shards.path, hyperparameters={**HYPERPARAMETERS, **overrides}
    )


@pytest.fixture(scope="module")
def completed_run(rendered_shards: RenderedShards, tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("opt_ml")
    run = _run(root, _layout(root, rendered_shards))
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def test_a_short_run_lowers_the_loss(completed_run: Run) -> None:
    # GIVEN a 48-step run logging every 8 steps, validating every 16
    losses = completed_run.metric("train:loss")
    validation = completed_run.metric("validation:loss")

    # THEN the metric lines parse with the documented regexes and the loss goes down
    assert completed_run.train_steps() == [8, 16, 24, 32, 40, 48]
    assert len(validation) == 3
    assert losses[-1] < losses[0] - 0.1, losses
    assert validation[-1] < validation[0], validation
    assert all(0 < value < 1 for value in completed_run.metric("train:ssim"))
    assert "training ended step=48 stopped=false" in completed_run.stdout


def test_the_autoencoder_and_the_encoder_are_saved_and_reload(
    completed_run: Run, rendered_shards: RenderedShards
) -> None:
    # GIVEN the model directory of the finished job
    model_dir = completed_run.root / "model"
    assert sorted(path.name for path in model_dir.iterdir()) == [
        job.AUTOENCODER_FILE,
        job.ENCODER_FILE,
        job.SUMMARY_FILE,
    ]

    # WHEN both models are loaded (the losses are registered by importing training.losses)
    autoencoder = keras.models.load_model(model_dir / job.AUTOENCODER_FILE)
    encoder = keras.models.load_model(model_dir / job.ENCODER_FILE)
    views = next(iter(data.load_dataset(rendered_shards.path, image_size=32, num_views=6, batch_size=5)))

    # THEN the autoencoder reconstructs and evaluates with its SSIM loss; the encoder gives 12-wide embeddings
    assert autoencoder.predict(views, verbose=0).shape == (5, 32, 32, 6)
    assert autoencoder.loss.__name__ == "ssim_loss"
    evaluation = autoencoder.evaluate(views, views, verbose=0, return_dict=True)
    assert 0 < evaluation["ssim"] <= 1
    embeddings = encoder.predict(views, verbose=0)
    assert embeddings.shape == (5, 12)
    np.testing.assert_array_equal(
        encoder.get_layer("embedding").get_weights()[0], autoencoder.get_layer("embedding").get_weights()[0]
    )
    summary = json.loads((model_dir / job.SUMMARY_FILE).read_text())
    assert (summary["step"], summary["stopped"], summary["embedding_size"]) == (48, False, 12)


def test_checkpoints_and_tensorboard_events_are_written(completed_run: Run) -> None:
    store = checkpoints.CheckpointStore(completed_run.root / "checkpoints", keep=2)
    assert [entry.step for entry in store.entries()] == [32, 48]  # every 16 steps, the newest 2 kept
    for run in ("train", "validation"):
        assert list((completed_run.root / "output" / "tensorboard" / run).glob("events.out.tfevents.*"))
    history = (completed_run.root / "output" / "data" / job.METRICS_FILE).read_text().splitlines()
    modes = [json.loads(line)["mode"] for line in history]
    assert (modes.count("train"), modes.count("validation")) == (6, 3)
    assert not (completed_run.root / "output" / "failure").exists()


def test_a_restarted_job_resumes_from_the_latest_checkpoint(completed_run: Run, tmp_path: Path) -> None:
    # GIVEN the finished job's directories (as a spot restart finds them), asked for 16 more steps
    root = tmp_path / "opt_ml"
    shutil.copytree(completed_run.root, root, symlinks=True)
    environment = {**os.environ, "AUTOSTOP_OPT_ML": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"}
    environment = {name: value for name, value in environment.items() if not name.startswith("SM_")}

    # WHEN it runs again
    run = _run(root, environment, "--steps", "64")

    # THEN it continues the step count from 48 instead of starting over
    assert run.returncode == 0, run.stdout + run.stderr
    assert "at step=48" in run.stdout
    assert run.train_steps() == [56, 64]
    resumed_checkpoints = checkpoints.CheckpointStore(root / "checkpoints", keep=2).entries()
    assert [entry.step for entry in resumed_checkpoints] == [48, 64]
    assert json.loads((root / "model" / job.SUMMARY_FILE).read_text())["step"] == 64


def test_sigterm_checkpoints_and_exits_zero(rendered_shards: RenderedShards, tmp_path: Path) -> None:
    # GIVEN a long job that checkpoints rarely, so only the SIGTERM checkpoint can exist
    root = tmp_path / "opt_ml"
    environment = _layout(
        root,
        rendered_shards,
        steps="100000",
        log_interval="1",
        checkpoint_interval="100000",
        validation_fraction="0",
    )
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            support.train_command(),
            cwd=REPOSITORY,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            # WHEN SIGTERM arrives once the log shows a training step
            assert process.stdout is not None
            seen_step = 0
            for line in process.stdout:
                match = TRAIN_LINE.match(line)
                if match:
                    seen_step = int(match.group(1))
                    break
            assert seen_step, stderr_path.read_text()
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            rest, _ = process.communicate(timeout=110)  # SageMaker kills 120 s after SIGTERM
            seconds = time.monotonic() - signalled
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    # THEN it exits 0 in time, saying why, with a checkpoint at or after the step it had shown
    assert process.returncode == 0, rest + stderr_path.read_text()
    assert seconds < 110
    assert "received SIGTERM: finishing the current step, then checkpointing" in rest
    entries = checkpoints.CheckpointStore(root / "checkpoints", keep=1).entries()
    assert len(entries) == 1
    assert entries[0].step >= seen_step
    assert f"training ended step={entries[0].step} stopped=true" in rest
    # AND that checkpoint is usable: it restores into a fresh trainer at its step
    parameters = hparams.from_mapping(json.loads((root / "input/config/hyperparameters.json").read_text()))
    fresh = trainer.build_trainer(parameters)
    restored = checkpoints.CheckpointStore(root / "checkpoints", keep=1).restore_latest(
        trainer.training_checkpoint(fresh)
    )
    assert restored == entries[0]
    assert int(fresh.optimizer.iterations) == entries[0].step
    assert json.loads((root / "model" / job.SUMMARY_FILE).read_text())["stopped"] is True


def _assert_rejected(run: Run, expected: str) -> None:
    """Exit 2, exactly one stderr line naming the problem, nothing written but SageMaker's failure file."""
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stderr.splitlines() == [run.stderr.strip()], run.stderr
    assert run.stderr.startswith("error: "), run.stderr
    assert expected in run.stderr, run.stderr
    assert not (run.root / "model").exists()
    assert not (run.root / "checkpoints").exists()
    assert not (run.root / "output" / "tensorboard").exists()
    assert not (run.root / "output" / "data").exists()
    assert (run.root / "output" / "failure").read_text().strip() == run.stderr.strip().removeprefix("error: ")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"learning_rate": "-0.01"}, "learning_rate must be >= 0, got -0.01"),
        ({"learning_rate": "ten"}, "learning_rate must be a number, got 'ten'"),
        ({"loss": "mae"}, "unknown loss 'mae': expected one of ssim, l2, ssim_l1"),
        ({"preset": "tiny"}, "unknown preset 'tiny': expected one of baseline, optimized"),
        ({"batch_size": "-8"}, "batch_size must be > 0"),
    ],
)
def test_bad_hyperparameters_give_one_clear_error(
    rendered_shards: RenderedShards, tmp_path: Path, overrides: dict[str, str], expected: str
) -> None:
    run = _run(tmp_path, _layout(tmp_path, rendered_shards, **overrides))
    _assert_rejected(run, expected)


def test_a_missing_channel_gives_one_clear_error(tmp_path: Path) -> None:
    environment = support.container_layout(tmp_path, train_channel=None, hyperparameters=HYPERPARAMETERS)
    run = _run(tmp_path, environment)
    _assert_rejected(run, "missing training channel 'train'")


@pytest.mark.parametrize("content", [None, b""], ids=["no-shards", "zero-byte-shard"])
def test_an_empty_dataset_gives_one_clear_error(tmp_path: Path, content: bytes | None) -> None:
    channel = tmp_path / "empty_channel"
    channel.mkdir()
    if content is not None:
        (channel / "part-0.tfrecord").write_bytes(content)
    root = tmp_path / "opt_ml"
    run = _run(root, support.container_layout(root, train_channel=channel, hyperparameters=HYPERPARAMETERS))
    _assert_rejected(run, "the dataset is empty")


def test_the_train_executable_runs_the_entry_point(rendered_shards: RenderedShards, tmp_path: Path) -> None:
    # The image puts training/bin/train on PATH: SageMaker runs `docker run <image> train`.
    environment = _layout(tmp_path, rendered_shards, loss="perceptual")
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    environment["PYTHONPATH"] = str(REPOSITORY)
    run = _run(tmp_path, environment, command=[str(REPOSITORY / "training" / "bin" / "train")])
    _assert_rejected(run, "unknown loss 'perceptual'")


def test_data_that_does_not_match_the_hyperparameters_fails_before_writing(
    rendered_shards: RenderedShards, tmp_path: Path
) -> None:
    # GIVEN shards of 6 views but a job configured for 3: found only once TensorFlow reads a record
    run = _run(tmp_path, _layout(tmp_path, rendered_shards, num_views="3"))

    # THEN exit 2 with one error line of ours (TensorFlow's own start-up chatter may precede it on stderr)
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [run.stderr.strip().splitlines()[-1]]
    assert "has 6 views of 32x32 pixels, but the hyperparameters say num_views=3" in errors[0]
    assert not (tmp_path / "model").exists()
    assert not (tmp_path / "checkpoints").exists()
