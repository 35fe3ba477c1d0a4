"""The trial's folder discipline, on a folder and on S3 (moto over HTTP): who holds it, and a resumed run's
removal of the steps an interrupted run wrote after its checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest
from smdebug.core.modes import ModeKeys
from smdebug.trials import create_trial

from tests.support import moto_server
from tests.training.debugger import support
from training.debugger import layout

BUCKET = "autostop-tensors"


@pytest.fixture
def s3_trial_root(moto_endpoint: str) -> Iterator[str]:
    """A bucket on moto; smdebug's cached S3 client is reset so it honours AWS_ENDPOINT_URL."""
    from smdebug.core.access_layer.s3handler import S3Handler

    S3Handler.client.cache_clear()
    boto3.client("s3", region_name=moto_server.REGION).create_bucket(Bucket=BUCKET)
    try:
        yield f"s3://{BUCKET}/sweep-lr-0001"
    finally:
        S3Handler.client.cache_clear()


def _trial(out_dir: str, steps: range) -> str:
    return support.write_trial(
        out_dir, support.losses({step: 1.0 / step for step in steps}), {"losses": ["loss"]}, ended=True
    )


@pytest.mark.parametrize("where", ["folder", "s3"])
def test_a_trial_is_recognised_and_its_steps_from_a_given_step_on_are_removed(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """GIVEN an ended trial with training steps 5..30 (global steps 10..60)
    WHEN the steps from training step 16 on (global 32) are removed
    THEN the folder still holds a trial, and reading it shows steps 5, 10, 15 only, with their values."""
    root = str(tmp_path) if where == "folder" else request.getfixturevalue("s3_trial_root")
    empty, out_dir = f"{root}/empty", f"{root}/tensors"
    if where == "folder":
        Path(empty).mkdir()
    _trial(out_dir, range(5, 31, 5))
    assert not layout.holds_trial(empty)
    assert layout.holds_trial(out_dir)

    removed = layout.remove_steps_from(out_dir, layout.global_step(layout.TRAIN, 16))

    assert removed == 3
    assert layout.holds_trial(out_dir)
    trial = create_trial(out_dir)
    assert trial.tensor("loss").steps(mode=ModeKeys.TRAIN) == [5, 10, 15]
    assert trial.tensor("loss").value(15, mode=ModeKeys.TRAIN) == pytest.approx(1.0 / 15)


def test_an_s3_prefix_holding_only_steps_counts_as_a_trial(s3_trial_root: str) -> None:
    """GIVEN steps on S3 but no collections file nor end marker (a writer killed early, or another writer)
    THEN the prefix is still held: a new run must not write its steps over them."""
    out_dir = f"{s3_trial_root}/steps-only"
    layout.write_record(out_dir, layout.StepRecord(layout.TRAIN, 5, {"loss": np.asarray(1.0, np.float32)}))

    assert layout.holds_trial(out_dir)
