"""Where results go and what they contain: output keys, shard bytes and rejection records.

Pure like the transform core, and shared by the Lambda adapter and the local CLI, so S3 and a local folder
get the same layout.

* Shards are named after the source key alone: one shard per render batch and split, whatever the number of
  deliveries or uploads of that key. A re-uploaded batch replaces its shards (and a split the new version
  no longer has is removed), so no design is ever trained on twice; a deleted batch's shards are removed.
* Each design goes to ``train/`` or ``validation/`` by a hash of its id alone, so a design never moves
  across when batches are re-packed, and the training channels get the layout training expects.
* Rejection records are named after the source key and the identity of the bytes read (the ETag): they are
  a history of what each uploaded version was refused for, and a redelivery rewrites the same records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence

from . import tfrecord
from .transform import BatchResult, Design, Reason, Rejection, strip_archive_suffix

REJECTION_SCHEMA = "autostop.transform.rejection/v2"
SOURCE_PREFIX = "renders/"
SHARD_SUFFIX = ".tfrecord"
TRAIN = "train"
VALIDATION = "validation"
SPLITS = (TRAIN, VALIDATION)
# The held-out share of designs; the same 10% training holds out by default (training/hparams.py).
DEFAULT_VALIDATION_FRACTION = 0.1
SPLIT_BUCKETS = 10_000
# Output keys embed the source key; S3 keys are at most 1024 UTF-8 bytes, so long stems are cut.
MAX_STEM_BYTES = 512
# A malformed message body is copied into its rejection record up to this many characters.
MAX_BODY_EXCERPT = 16 * 1024
MESSAGE_REJECTION_FOLDER = "_messages"


@dataclasses.dataclass(frozen=True)
class SourceObject:
    """The archive a batch came from. ``etag`` identifies the bytes read (quotes stripped)."""

    key: str
    etag: str
    bucket: str | None = None
    version_id: str | None = None


@dataclasses.dataclass(frozen=True)
class OutputObject:
    key: str
    body: bytes
    content_type: str


@dataclasses.dataclass(frozen=True)
class BatchOutputs:
    """Everything one source key comes to: shards to write, shards to remove, rejection records to write.

    ``shards`` and ``removed_shard_keys`` together cover every split of the source key, so applying them
    leaves exactly the shards of the version that was read.
    """

    shards: tuple[OutputObject, ...]
    removed_shard_keys: tuple[str, ...]
    records: tuple[OutputObject, ...]
    designs_written: int
    rejections: tuple[Rejection, ...]

    @property
    def shard_keys(self) -> tuple[str, ...]:
        return tuple(shard.key for shard in self.shards)

    @property
    def objects(self) -> tuple[OutputObject, ...]:
        return (*self.shards, *self.records)

    @property
    def bytes_out(self) -> int:
        return sum(len(output.body) for output in self.objects)


def normalize_etag(etag: str | None) -> str:
    return (etag or "").strip().strip('"')


def _short_hash(*parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:16]


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore")


def _stem(source_key: str) -> str:
    stem = source_key[len(SOURCE_PREFIX) :] if source_key.startswith(SOURCE_PREFIX) else source_key
    return _truncate_utf8(strip_archive_suffix(stem).strip("/"), MAX_STEM_BYTES) or "batch"


def batch_token(source: SourceObject) -> str:
    """``<source key without renders/ and archive suffix>-<16 hex of sha256(key, etag or version)>``."""
    identity = source.etag or source.version_id or ""
    return f"{_stem(source.key)}-{_short_hash(source.key, identity)}"


def shard_token(source_key: str) -> str:
    """``<source key without renders/ and archive suffix>-<16 hex of sha256(key)>``: the key alone, so
    every version of a batch maps to the same shards; the hash keeps ``a.tar`` and ``a.zip`` apart."""
    return f"{_stem(source_key)}-{_short_hash(source_key)}"


def shard_key(source_key: str, split: str, *, shard_prefix: str) -> str:
    """``<shard prefix><split>/<shard token>.tfrecord``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return f"{shard_prefix}{split}/{shard_token(source_key)}{SHARD_SUFFIX}"


def shard_keys(source_key: str, *, shard_prefix: str) -> tuple[str, ...]:
    """Every shard key a source key can have, one per split."""
    return tuple(shard_key(source_key, split, shard_prefix=shard_prefix) for split in SPLITS)


def validation_threshold(validation_fraction: float) -> int:
    if isinstance(validation_fraction, bool) or not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
    return round(validation_fraction * SPLIT_BUCKETS)


def design_split(design_id: str, validation_fraction: float) -> str:
    """``validation`` iff ``int(sha256(design id)[:8 bytes]) mod 10000 < round(fraction * 10000)``.

    A function of the id alone (never of the batch, its order or a seed), so a design stays on its side
    when batches are re-packed or re-uploaded, and the same id lands on the same side in S3 and locally.
    """
    digest = hashlib.sha256(design_id.encode("utf-8", "surrogatepass")).digest()
    bucket = int.from_bytes(digest[:8], "big") % SPLIT_BUCKETS
    return VALIDATION if bucket < validation_threshold(validation_fraction) else TRAIN


def rejection_key(source: SourceObject, rejection: Rejection, *, reject_prefix: str) -> str:
    """One object per rejection, under the batch's own folder.

    Valid design ids are used as file names; anything else (the batch itself, a stray member, an invalid
    id) gets a name starting with ``_``, which no valid design id can start with, so names never collide.
    """
    folder = f"{reject_prefix}{batch_token(source)}/"
    if rejection.is_batch_level:
        return f"{folder}_batch.json"
    if rejection.design_id is not None and rejection.reason != Reason.INVALID_DESIGN_ID:
        return f"{folder}{rejection.design_id}.json"
    if rejection.design_id is not None:
        return f"{folder}_design-{_short_hash(rejection.design_id)}.json"
    return f"{folder}_member-{_short_hash(rejection.member or '')}.json"


def message_rejection_key(message_id: str, *, reject_prefix: str) -> str:
    safe = "".join(
        character if character.isalnum() or character in "-_." else "_" for character in message_id
    )
    return f"{reject_prefix}{MESSAGE_REJECTION_FOLDER}/{safe[:200] or _short_hash(message_id)}.json"


def encode_design(design: Design) -> bytes:
    """One ``tf.train.Example`` (see docs/data-format.md for the feature spec)."""
    num_views, height, width = design.views.shape
    return tfrecord.encode_example(
        {
            "design_id": design.design_id.encode("utf-8"),
            "family": design.family.encode("utf-8"),
            "views": design.views.tobytes(order="C"),
            "num_views": int(num_views),
            "height": int(height),
            "width": int(width),
        }
    )


def encode_shard(designs: Sequence[Design]) -> bytes:
    return tfrecord.frame_records([encode_design(design) for design in designs])


def _json_bytes(document: dict[str, object]) -> bytes:
    return json.dumps(document, sort_keys=True, indent=2).encode("utf-8") + b"\n"


def rejection_document(source: SourceObject, rejection: Rejection, *, shard_keys: Sequence[str]) -> bytes:
    return _json_bytes(
        {
            "schema": REJECTION_SCHEMA,
            "reason": str(rejection.reason),
            "message": rejection.message,
            "design_id": rejection.design_id,
            "member": rejection.member,
            "source": {
                "bucket": source.bucket,
                "key": source.key,
                "etag": source.etag,
                "version_id": source.version_id,
            },
            "shard_keys": list(shard_keys),
        }
    )


def message_rejection(message_id: str, body: str, problem: str, *, reject_prefix: str) -> OutputObject:
    """The record of an SQS message that could not be understood: kept (up to a bound), never dropped."""
    document = _json_bytes(
        {
            "schema": REJECTION_SCHEMA,
            "reason": str(Reason.MALFORMED_MESSAGE),
            "message": problem,
            "design_id": None,
            "member": None,
            "source": None,
            "shard_keys": [],
            "message_id": message_id,
            "body": body[:MAX_BODY_EXCERPT],
            "body_truncated": len(body) > MAX_BODY_EXCERPT,
        }
    )
    return OutputObject(
        key=message_rejection_key(message_id, reject_prefix=reject_prefix),
        body=document,
        content_type="application/json",
    )


def rejection_outputs(
    source: SourceObject, rejections: Sequence[Rejection], *, shard_keys: Sequence[str], reject_prefix: str
) -> tuple[OutputObject, ...]:
    return tuple(
        OutputObject(
            key=rejection_key(source, rejection, reject_prefix=reject_prefix),
            body=rejection_document(source, rejection, shard_keys=shard_keys),
            content_type="application/json",
        )
        for rejection in rejections
    )


def plan_outputs(
    source: SourceObject,
    result: BatchResult,
    *,
    shard_prefix: str,
    reject_prefix: str,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
) -> BatchOutputs:
    """One shard per split that has a good design, removal of the other split's shard, one record per
    rejection."""
    by_split: dict[str, list[Design]] = {split: [] for split in SPLITS}
    for design in result.designs:
        by_split[design_split(design.design_id, validation_fraction)].append(design)
    shards = tuple(
        OutputObject(
            key=shard_key(source.key, split, shard_prefix=shard_prefix),
            body=encode_shard(designs),
            content_type="application/octet-stream",
        )
        for split, designs in by_split.items()
        if designs
    )
    written = tuple(shard.key for shard in shards)
    return BatchOutputs(
        shards=shards,
        removed_shard_keys=tuple(
            key for key in shard_keys(source.key, shard_prefix=shard_prefix) if key not in written
        ),
        records=rejection_outputs(source, result.rejections, shard_keys=written, reject_prefix=reject_prefix),
        designs_written=len(result.designs),
        rejections=result.rejections,
    )


def rejected_batch(
    source: SourceObject, reason: Reason, message: str, *, shard_prefix: str, reject_prefix: str
) -> BatchOutputs:
    """A batch rejected before its bytes were transformed (too large, not an archive): its record, and
    removal of the shards an earlier version of the same key may have left."""
    rejection = Rejection(reason=reason, message=message)
    return BatchOutputs(
        shards=(),
        removed_shard_keys=shard_keys(source.key, shard_prefix=shard_prefix),
        records=rejection_outputs(source, (rejection,), shard_keys=(), reject_prefix=reject_prefix),
        designs_written=0,
        rejections=(rejection,),
    )


def removed_batch(source_key: str, *, shard_prefix: str) -> BatchOutputs:
    """A batch that no longer exists (deleted): its shards are removed, nothing is recorded."""
    return BatchOutputs(
        shards=(),
        removed_shard_keys=shard_keys(source_key, shard_prefix=shard_prefix),
        records=(),
        designs_written=0,
        rejections=(),
    )
