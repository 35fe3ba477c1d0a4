"""The input pipeline: tf.data over the transformer's TFRecord shards (docs/data-format.md).

One ``tf.train.Example`` per design: ``design_id`` and ``family`` (bytes), ``views`` (uint8, V x H x W
row-major) and ``num_views``/``height``/``width`` (int64). ``load_dataset`` reads a local folder or a
SageMaker channel directory: files interleaved and parsed in parallel, split, shuffled, batched, prefetched.

Train/validation split: a design goes to validation iff
``Fingerprint64(design_id) mod 10000 < round(validation_fraction * 10000)``
(``tf.strings.to_hash_bucket_fast``: FarmHash Fingerprint64, stable across processes, machines and TF
versions). The split depends on the design id only -- never on shard layout, order or seed -- so a design
is never on both sides, and re-sharding or adding designs never moves an existing design across.

Examples come out as float32 ``(image_size, image_size, num_views)`` in [0, 1]: views on the channel axis,
view_00 first (see training/model.py for why). Shapes are checked against the hyperparameters: the first
record eagerly (a clear error before training starts), every record in the pipeline (an assertion).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from training import channels

SPLITS = ("train", "validation", "all")
HASH_BUCKETS = 10_000
MAX_PIXEL_VALUE = 255.0

FEATURES = {
    "design_id": tf.io.FixedLenFeature([], tf.string),
    "family": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "views": tf.io.FixedLenFeature([], tf.string),
    "num_views": tf.io.FixedLenFeature([], tf.int64),
    "height": tf.io.FixedLenFeature([], tf.int64),
    "width": tf.io.FixedLenFeature([], tf.int64),
}
DatasetError = channels.DatasetError


def validation_threshold(validation_fraction: float) -> int:
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    return round(validation_fraction * HASH_BUCKETS)


def is_validation_design(design_id: tf.Tensor, validation_fraction: float) -> tf.Tensor:
    """True where a design id belongs to the validation split (works on scalars and vectors)."""
    bucket = tf.strings.to_hash_bucket_fast(design_id, HASH_BUCKETS)
    return bucket < validation_threshold(validation_fraction)


def _split_predicate(split: str, validation_fraction: float) -> Callable[[dict[str, tf.Tensor]], tf.Tensor]:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    threshold = validation_threshold(validation_fraction)

    def keep(example: dict[str, tf.Tensor]) -> tf.Tensor:
        if split == "all":
            return tf.constant(True)
        in_validation = tf.strings.to_hash_bucket_fast(example["design_id"], HASH_BUCKETS) < threshold
        return in_validation if split == "validation" else tf.logical_not(in_validation)

    return keep


def parse_example(serialized: tf.Tensor, *, image_size: int, num_views: int) -> dict[str, tf.Tensor]:
    """One serialized design -> ``{"views": float32 HxWxV in [0, 1], "design_id", "family"}``."""
    features = tf.io.parse_single_example(serialized, FEATURES)
    raw = tf.io.decode_raw(features["views"], tf.uint8)
    expected = tf.constant([num_views, image_size, image_size], tf.int64)
    actual = tf.stack([features["num_views"], features["height"], features["width"]])
    matches = tf.logical_and(
        tf.reduce_all(tf.equal(actual, expected)),
        tf.equal(tf.size(raw, out_type=tf.int64), num_views * image_size * image_size),
    )
    check = tf.debugging.Assert(
        matches,
        [
            f"record does not match num_views={num_views} image_size={image_size}: design_id, "
            "[num_views height width], view bytes =",
            features["design_id"],
            actual,
            tf.size(raw),
        ],
    )
    with tf.control_dependencies([check]):
        views = tf.reshape(raw, [num_views, image_size, image_size])
    views = tf.cast(tf.transpose(views, [1, 2, 0]), tf.float32) / MAX_PIXEL_VALUE
    return {"views": views, "design_id": features["design_id"], "family": features["family"]}


def check_first_record(shard: Path, *, image_size: int, num_views: int) -> None:
    """Read one record eagerly and compare its shape with the hyperparameters, with a readable error."""
    try:
        first_records = list(tf.data.TFRecordDataset(str(shard)).take(1))
        parsed = [tf.io.parse_single_example(serialized, FEATURES) for serialized in first_records]
    except tf.errors.OpError as error:
        message = " ".join(error.message.split())
        raise DatasetError(f"shard {shard} is not in the training shard format: {message}") from None
    for features in parsed:
        design_id = features["design_id"].numpy().decode("utf-8", "replace")
        shape = (int(features["num_views"]), int(features["height"]), int(features["width"]))
        if shape != (num_views, image_size, image_size):
            raise DatasetError(
                f"shard {shard}: design {design_id!r} has {shape[0]} views of {shape[1]}x{shape[2]} pixels, "
                f"but the hyperparameters say num_views={num_views} image_size={image_size}"
            )
        view_bytes = len(features["views"].numpy())
        if view_bytes != num_views * image_size * image_size:
            raise DatasetError(
                f"shard {shard}: design {design_id!r} has {view_bytes} view bytes, expected "
                f"{num_views}x{image_size}x{image_size}"
            )


def _records(shards: list[Path], *, shuffle: bool, seed: int) -> tf.data.Dataset:
    files = tf.data.Dataset.from_tensor_slices([str(shard) for shard in shards])
    if shuffle:
        files = files.shuffle(len(shards), seed=seed, reshuffle_each_iteration=True)
    return files.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(shards), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def _parse_all(records: tf.data.Dataset, *, image_size: int, num_views: int) -> tf.data.Dataset:
    return records.map(
        lambda serialized: parse_example(serialized, image_size=image_size, num_views=num_views),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def load_examples(
    path: str | Path,
    *,
    image_size: int,
    num_views: int,
    split: str = "all",
    validation_fraction: float = 0.0,
    shuffle: bool = False,
    seed: int = 0,
    shuffle_buffer: int = 512,
    repeat: bool = False,
) -> tf.data.Dataset:
    """Unbatched parsed examples (dicts) of one split; raises DatasetError when there is nothing to read.

    Shuffling happens on the serialized records (uint8 bytes, 4x smaller than the decoded floats).
    """
    path = Path(path)
    shards = channels.list_shards(path)
    check_first_record(shards[0], image_size=image_size, num_views=num_views)
    keep = _split_predicate(split, validation_fraction)
    # A cheap unshuffled pass that stops at the first design of the split: fails fast on an empty split.
    probe = _parse_all(_records(shards, shuffle=False, seed=seed), image_size=image_size, num_views=num_views)
    if not any(True for _ in probe.filter(keep).take(1)):
        raise DatasetError(
            f"the {split} split of {path} is empty (validation_fraction={validation_fraction}): "
            "add designs or change validation_fraction"
        )
    records = _records(shards, shuffle=shuffle, seed=seed)
    if shuffle:
        records = records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        records = records.repeat()
    return _parse_all(records, image_size=image_size, num_views=num_views).filter(keep)


def load_dataset(
    path: str | Path,
    *,
    image_size: int,
    num_views: int,
    batch_size: int,
    split: str = "all",
    validation_fraction: float = 0.0,
    shuffle: bool = False,
    seed: int = 0,
    shuffle_buffer: int = 512,
    repeat: bool = False,
    drop_remainder: bool = False,
    with_metadata: bool = False,
) -> tf.data.Dataset:
    """Batches of views ``(batch, H, W, V)``, or dicts with ``design_id``/``family`` when ``with_metadata``.

    ``repeat`` makes it endless (training counts steps, not epochs); ``shuffle`` shuffles files and
    records with ``seed`` and reshuffles every pass.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    examples = load_examples(
        path,
        image_size=image_size,
        num_views=num_views,
        split=split,
        validation_fraction=validation_fraction,
        shuffle=shuffle,
        seed=seed,
        shuffle_buffer=shuffle_buffer,
        repeat=repeat,
    )
    if not with_metadata:
        examples = examples.map(lambda example: example["views"], num_parallel_calls=tf.data.AUTOTUNE)
    return examples.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def count_designs(path: str | Path, *, split: str = "all", validation_fraction: float = 0.0) -> int:
    """How many designs a split holds (reads every record's id once; used to turn epochs into steps)."""
    keep = _split_predicate(split, validation_fraction)
    ids = _records(channels.list_shards(Path(path)), shuffle=False, seed=0).map(
        lambda serialized: {
            "design_id": tf.io.parse_single_example(serialized, {"design_id": FEATURES["design_id"]})[
                "design_id"
            ]
        },
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return int(ids.filter(keep).reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))
