"""The input pipeline over transformer-made shards: layout, split by design id, shuffling, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.training import support
from tests.training.conftest import RenderedShards
from training import data


def _ids(dataset: tf.data.Dataset) -> list[str]:
    return [value.decode() for batch in dataset for value in batch["design_id"].numpy()]


def _load(shards: RenderedShards, **options: object) -> tf.data.Dataset:
    arguments: dict[str, object] = {
        "image_size": shards.image_size,
        "num_views": shards.num_views,
        "batch_size": 5,
    }
    arguments.update(options)
    return data.load_dataset(shards.path, **arguments)  # type: ignore[arg-type]


def test_batches_hold_views_on_the_channel_axis_scaled_to_unit_range(rendered_shards: RenderedShards) -> None:
    # GIVEN the raw bytes of the first design as the transformer wrote them (V x H x W uint8)
    shard = sorted(rendered_shards.path.rglob("*.tfrecord"))[0]
    record = next(iter(tf.data.TFRecordDataset(str(shard))))
    example = tf.train.Example.FromString(record.numpy())
    raw = np.frombuffer(example.features.feature["views"].bytes_list.value[0], np.uint8)
    raw = raw.reshape(rendered_shards.num_views, rendered_shards.image_size, rendered_shards.image_size)
    design_id = example.features.feature["design_id"].bytes_list.value[0].decode()

    # WHEN the pipeline reads all designs with their metadata
    batches = list(_load(rendered_shards, with_metadata=True))

    # THEN views come out as (batch, H, W, V) float32 in [0, 1], view v in channel v
    first = batches[0]
    assert first["views"].shape == (5, 32, 32, 6)
    assert first["views"].dtype == tf.float32
    assert first["design_id"].numpy()[0].decode() == design_id
    np.testing.assert_allclose(first["views"].numpy()[0], raw.transpose(1, 2, 0) / 255.0, rtol=1e-6)
    # AND every design arrives once, with the family from its meta.json
    ids = [value.decode() for batch in batches for value in batch["design_id"].numpy()]
    assert sorted(ids) == list(rendered_shards.design_ids)
    families = {
        design.decode(): family.decode()
        for batch in batches
        for design, family in zip(batch["design_id"].numpy(), batch["family"].numpy(), strict=True)
    }
    assert families == rendered_shards.families
    assert len(set(families.values())) >= 6


def test_train_and_validation_never_share_a_design(rendered_shards: RenderedShards) -> None:
    train = _ids(_load(rendered_shards, split="train", validation_fraction=0.25, with_metadata=True))
    validation = _ids(
        _load(rendered_shards, split="validation", validation_fraction=0.25, with_metadata=True)
    )
    assert not set(train) & set(validation)
    assert sorted(train + validation) == list(rendered_shards.design_ids)
    assert 0 < len(validation) < len(train)


def test_the_split_depends_on_the_design_id_only(rendered_shards: RenderedShards, tmp_path: Path) -> None:
    # GIVEN the same designs re-sharded differently: one design per shard, in reverse order
    resharded = tmp_path / "resharded"
    resharded.mkdir()
    records = list(
        tf.data.TFRecordDataset([str(path) for path in sorted(rendered_shards.path.rglob("*.tfrecord"))])
    )
    for index, record in enumerate(records):
        with tf.io.TFRecordWriter(str(resharded / f"{len(records) - index:02d}.tfrecord")) as writer:
            writer.write(record.numpy())

    # WHEN both layouts are split, shuffled with different seeds
    original = _ids(
        _load(
            rendered_shards,
            split="validation",
            validation_fraction=0.25,
            shuffle=True,
            seed=1,
            with_metadata=True,
        )
    )
    moved = data.load_dataset(
        resharded,
        image_size=32,
        num_views=6,
        batch_size=3,
        split="validation",
        validation_fraction=0.25,
        shuffle=True,
        seed=2,
        with_metadata=True,
    )

    # THEN the validation designs are the same, and match the documented hash rule
    assert sorted(original) == sorted(_ids(moved))
    expected = [
        design
        for design in rendered_shards.design_ids
        if bool(data.is_validation_design(tf.constant(design), 0.25))
    ]
    assert sorted(original) == expected


def test_shuffling_is_seeded_and_repeat_is_endless(rendered_shards: RenderedShards) -> None:
    def order(seed: int) -> list[str]:
        return _ids(_load(rendered_shards, shuffle=True, seed=seed, with_metadata=True))

    assert order(3) == order(3)
    assert order(3) != order(4)
    assert sorted(order(3)) == list(rendered_shards.design_ids)
    endless = _load(rendered_shards, shuffle=True, seed=3, repeat=True, batch_size=8, drop_remainder=True)
    assert len(list(endless.take(10))) == 10  # 80 examples from 24 designs


def test_count_designs_counts_each_split(rendered_shards: RenderedShards) -> None:
    total = data.count_designs(rendered_shards.path)
    train = data.count_designs(rendered_shards.path, split="train", validation_fraction=0.25)
    validation = data.count_designs(rendered_shards.path, split="validation", validation_fraction=0.25)
    assert total == len(rendered_shards.design_ids) == train + validation


def test_shapes_that_disagree_with_the_hyperparameters_are_named(rendered_shards: RenderedShards) -> None:
    with pytest.raises(
        data.DatasetError, match=r"has 6 views of 32x32 pixels, but the hyperparameters say num_views=4"
    ):
        data.load_dataset(rendered_shards.path, image_size=32, num_views=4, batch_size=2)
    with pytest.raises(data.DatasetError, match="image_size=64"):
        data.load_dataset(rendered_shards.path, image_size=64, num_views=6, batch_size=2)


def test_a_later_record_with_another_shape_fails_in_the_pipeline_naming_the_design(tmp_path: Path) -> None:
    # GIVEN a shard whose first record fits and whose second does not (written with TensorFlow's own writer:
    # the transformer never produces inconsistent records, so this case must be crafted)
    support.write_shard(
        tmp_path / "mixed.tfrecord",
        [
            ("good", "plate", support.blob_views(1, num_views=2, image_size=16)),
            ("odd-one", "plate", support.blob_views(2, num_views=3, image_size=16)),
        ],
    )
    dataset = data.load_dataset(tmp_path, image_size=16, num_views=2, batch_size=1)

    # WHEN it is read, THEN the assertion names the design and its shape
    with pytest.raises(tf.errors.InvalidArgumentError, match="odd-one"):
        list(dataset)


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("no_folder", "does not exist"),
        ("no_shards", r"the dataset is empty: no \*.tfrecord shards"),
        ("zero_bytes", "hold no records"),
        ("not_tfrecord", "is not in the training shard format"),
    ],
)
def test_missing_or_empty_data_is_a_clear_error(tmp_path: Path, layout: str, expected: str) -> None:
    channel = tmp_path / "channel"
    if layout != "no_folder":
        channel.mkdir()
        (channel / "README.txt").write_text("not a shard")
    if layout == "zero_bytes":
        (channel / "empty.tfrecord").write_bytes(b"")
    if layout == "not_tfrecord":
        (channel / "garbage.tfrecord").write_bytes(b"this is not a TFRecord file at all")
    with pytest.raises(data.DatasetError, match=expected):
        data.load_dataset(channel, image_size=16, num_views=2, batch_size=1)


def test_an_empty_split_is_a_clear_error(rendered_shards: RenderedShards, tmp_path: Path) -> None:
    # GIVEN one design only: whichever side it hashes to, the other side is empty
    single = tmp_path / "single"
    single.mkdir()
    first = sorted(rendered_shards.path.rglob("*.tfrecord"))[0]
    with tf.io.TFRecordWriter(str(single / "one.tfrecord")) as writer:
        writer.write(next(iter(tf.data.TFRecordDataset(str(first)))).numpy())
    design = support.read_design_ids(single)[0]
    empty_side = "train" if bool(data.is_validation_design(tf.constant(design), 0.5)) else "validation"

    with pytest.raises(data.DatasetError, match=f"the {empty_side} split of .* is empty"):
        data.load_dataset(
            single, image_size=32, num_views=6, batch_size=1, split=empty_side, validation_fraction=0.5
        )


def test_shards_in_subfolders_are_found_and_hidden_files_ignored(
    rendered_shards: RenderedShards, tmp_path: Path
) -> None:
    channel = tmp_path / "channel"
    shutil.copytree(rendered_shards.path, channel / "nested" / "deeper")
    (channel / ".partial.tfrecord").write_bytes(b"half a download")
    assert data.count_designs(channel) == len(rendered_shards.design_ids)
