"""One job end to end, in process: data problems found while reading become clear errors, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training import support
from tests.training.conftest import RenderedShards
from training import data, hparams, job

# Real training (or many TensorFlow processes): a slow module, handed out first (tests/conftest.py).
pytestmark = pytest.mark.slow


def test_a_truncated_shard_is_a_dataset_error_and_nothing_is_written(tmp_path: Path) -> None:
    # GIVEN a shard whose first record is fine and whose second was cut short (an interrupted upload);
    # written with TensorFlow's own writer because the transformer never writes a truncated file
    shard = support.write_shard(
        tmp_path / "channel" / "part.tfrecord",
        [
            (f"design-{index}", "plate", support.blob_views(index, num_views=2, image_size=16))
            for index in (1, 2)
        ],
    )
    content = shard.read_bytes()
    shard.write_bytes(content[: len(content) - 100])
    locations = job.JobLocations(
        train_channel=tmp_path / "channel",
        model_dir=tmp_path / "model",
        checkpoint_dir=tmp_path / "checkpoints",
        tensorboard_dir=tmp_path / "tensorboard",
        output_data_dir=tmp_path / "output",
    )
    parameters = hparams.HyperParameters(
        image_size=16, num_views=2, base_filters=2, batch_size=2, steps=3, validation_fraction=0.0
    )

    # WHEN the job runs  THEN it fails with a data error naming the problem, before any file is written
    with pytest.raises(data.DatasetError, match=r"^bad training record: truncated record at \d+"):
        job.run(parameters, locations, log=lambda line: None)
    assert not (tmp_path / "model").exists()
    assert not (tmp_path / "checkpoints").exists()
    assert not (tmp_path / "output").exists()


def test_a_deterministic_job_gives_the_same_numbers_run_after_run(
    rendered_shards: RenderedShards, tmp_path: Path
) -> None:
    # GIVEN a job with TensorFlow's deterministic ops on (the hyperparameter the sweep tests use), run through
    # the container entry point in its own process each time: the setting is process-wide and for good, so
    # in this process it would slow every later test
    arguments = {
        "image_size": rendered_shards.image_size,
        "num_views": rendered_shards.num_views,
        "base_filters": 4,
        "batch_size": 4,
        "steps": 12,
        "log_interval": 4,
        "validation_interval": 6,
        "validation_fraction": 0.25,
        "checkpoint_interval": 1000,
        "deterministic": "true",
    }
    argv = [item for key, value in arguments.items() for item in (f"--{key}", str(value))]

    def run(name: str) -> list[str]:
        environment = {
            **os.environ,
            "AUTOSTOP_OPT_ML": str(tmp_path / name),
            "SM_CHANNEL_TRAIN": str(rendered_shards.path),
        }
        subprocess.run(
            [sys.executable, "-m", "training.train", *argv],
            env=environment,
            check=True,
            capture_output=True,
            timeout=600,
        )
        metrics = tmp_path / name / "output" / "data" / "metrics.jsonl"
        return metrics.read_text(encoding="utf-8").splitlines()

    # WHEN it runs twice on this machine
    first, second = run("first"), run("second")

    # THEN every metric record (training and validation) is the same, to the last digit: what a test of a
    # healthy job's fate relies on (another CPU may give other digits: no test asserts the digits)
    assert first
    assert first == second
