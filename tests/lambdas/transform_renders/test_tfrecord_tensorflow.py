"""Shards written without TensorFlow are read by TensorFlow itself (tf.data + tf.io.parse_single_example).

Kept in its own module so TensorFlow's import cost (seconds) is paid once, here only.
"""

from __future__ import annotations

from pathlib import Path

import numpy
import pytest

from lambdas.transform_renders import layout
from tests.lambdas.transform_renders import archives

pytestmark = pytest.mark.slow

FEATURE_NAMES = ("design_id", "family", "views", "num_views", "height", "width")


def test_tensorflow_reads_every_field_of_a_shard(tmp_path: Path) -> None:
    tensorflow = pytest.importorskip("tensorflow")
    # GIVEN a shard of two designs (one without meta.json) written by the Lambda's own code
    files = {
        **archives.design_files("bracket-7", seed=1),
        **archives.design_files("gear-2", seed=2, family=None),
    }
    designs = archives.transform_files(files, kind="tar.gz").designs
    shard_path = tmp_path / layout.shard_key("renders/batch.tar.gz", layout.TRAIN, shard_prefix="").replace(
        "/", "_"
    )
    shard_path.write_bytes(layout.encode_shard(designs))
    spec = {
        "design_id": tensorflow.io.FixedLenFeature([], tensorflow.string),
        "family": tensorflow.io.FixedLenFeature([], tensorflow.string),
        "views": tensorflow.io.FixedLenFeature([], tensorflow.string),
        "num_views": tensorflow.io.FixedLenFeature([], tensorflow.int64),
        "height": tensorflow.io.FixedLenFeature([], tensorflow.int64),
        "width": tensorflow.io.FixedLenFeature([], tensorflow.int64),
    }
    # WHEN TensorFlow reads it (TFRecordDataset checks both CRCs of every record)
    records = list(tensorflow.data.TFRecordDataset([str(shard_path)]))
    parsed = [tensorflow.io.parse_single_example(record, spec) for record in records]
    # THEN every contract field matches what the core produced
    assert len(parsed) == len(designs) == 2
    for design, example in zip(designs, parsed, strict=True):
        assert set(example) == set(FEATURE_NAMES)
        assert example["design_id"].numpy().decode() == design.design_id
        assert example["family"].numpy().decode() == design.family
        shape = (int(example["num_views"]), int(example["height"]), int(example["width"]))
        assert shape == (12, 64, 64)
        views = tensorflow.reshape(
            tensorflow.io.decode_raw(example["views"], tensorflow.uint8), shape
        ).numpy()
        numpy.testing.assert_array_equal(views, design.views)
    assert [design.family for design in designs] == ["bracket", ""]
