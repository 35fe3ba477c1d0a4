"""From a render batch to what a training job reads: the data path end to end.

Real parts: an archive uploaded to moto's S3 (over HTTP) notifies moto's SQS queue; the handler, configured
as the deployed construct configures it (shards to the training data bucket, rejections to the render
bucket, 25% of designs held out), consumes the queue; the shards are then copied from the channel prefixes
of ``training/sweep/specs/sagemaker-example.yaml`` into channel folders, as SageMaker's File input mode
copies an ``S3Prefix`` channel (every object under the prefix, relative paths kept), and read by training's
own reader (training/data.py), with the channels used whole as training/job.py uses them.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdas.transform_renders import app, layout
from tests.lambdas.transform_renders import archives
from tests.lambdas.transform_renders.conftest import (
    FakeLambdaContext,
    RendersBucket,
    lambda_event,
    receive_all,
)
from training.sweep import spec as spec_module

pytestmark = pytest.mark.slow  # imports TensorFlow

EXAMPLE_SPEC = Path(__file__).resolve().parents[3] / "training" / "sweep" / "specs" / "sagemaker-example.yaml"
DATA_BUCKET = "autostop-data-test"
IMAGE_SIZE, NUM_VIEWS = 16, 3


def download_channel(s3: Any, uri: str, channel: Path) -> None:
    """What SageMaker File mode does with an S3Prefix channel: every object under it, relative paths kept."""
    bucket, prefix = urllib.parse.urlsplit(uri).netloc, urllib.parse.urlsplit(uri).path.lstrip("/")
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
        target = channel / item["Key"][len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())


def test_a_render_batch_reaches_the_training_channels_the_example_spec_names(
    renders: RendersBucket, lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tensorflow_data = pytest.importorskip("training.data")
    # GIVEN the transformer configured as deployed with a shard bucket: the training data bucket
    renders.s3.create_bucket(Bucket=DATA_BUCKET)
    for name, value in {
        "SHARD_BUCKET": DATA_BUCKET,
        "OUTPUT_BUCKET": renders.bucket,
        "VALIDATION_FRACTION": "0.25",
        "IMAGE_SIZE": str(IMAGE_SIZE),
        "NUM_VIEWS": str(NUM_VIEWS),
    }.items():
        monkeypatch.setenv(name, value)
    # AND the example spec's channels, in the data bucket `autostop sweep configure` puts them in
    channels = spec_module.load_spec(EXAMPLE_SPEC).datasets["renders"].channels
    locations = {
        name: urllib.parse.urlunsplit(("s3", DATA_BUCKET, urllib.parse.urlsplit(uri).path, "", ""))
        for name, uri in channels.items()
    }
    # WHEN a batch of 16 designs is dropped under renders/ and its notification is handled
    design_ids = [f"part-{number:02d}" for number in range(16)]
    files: dict[str, bytes] = {}
    for number, design_id in enumerate(design_ids):
        files.update(archives.design_files(design_id, views=NUM_VIEWS, seed=number))
    renders.s3.put_object(
        Bucket=renders.bucket,
        Key="renders/2026/batch.tar.gz",
        Body=archives.tar_bytes(files, compressed=True),
    )
    event = lambda_event(receive_all(renders.sqs, renders.queue_url), renders.queue_arn)
    assert app.handler(event, lambda_context) == {"batchItemFailures": []}
    # AND each channel is copied into its folder as SageMaker does before the job starts
    for name, uri in locations.items():
        download_channel(boto3.client("s3"), uri, tmp_path / name)
    # THEN training's reader finds every design in exactly one channel, on the side its id names
    found = {
        name: sorted(
            example["design_id"].decode()
            for example in tensorflow_data.load_examples(
                tmp_path / name, image_size=IMAGE_SIZE, num_views=NUM_VIEWS
            ).as_numpy_iterator()
        )
        for name in ("train", "validation")
    }
    expected = {
        split: sorted(design for design in design_ids if layout.design_split(design, 0.25) == split)
        for split in layout.SPLITS
    }
    assert found == expected
    assert found["train"]
    assert found["validation"]
    # AND nothing but shards landed in the data bucket; the render bucket holds no shard
    data_keys = [item["Key"] for item in renders.s3.list_objects_v2(Bucket=DATA_BUCKET)["Contents"]]
    assert all(key.startswith(("shards/train/", "shards/validation/")) for key in data_keys)
    assert "Contents" not in renders.s3.list_objects_v2(Bucket=renders.bucket, Prefix="shards/")
