"""Where results go and what they contain: output keys, shard bytes and rejection records.

Pure like the transform core, and shared by the Lambda adapter and the local CLI, so S3 and a local folder
get the same layout. Every key is derived from the source key and the identity of the bytes that were read
(the S3 ETag, or a content hash for local files): a redelivered message rewrites the very same objects, so
nothing is ever duplicated, and a changed object gets new keys instead of silently mixing versions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence

from . import tfrecord
from .transform import BatchResult, Design, Reason, Rejection, strip_archive_suffix

REJECTION_SCHEMA = "autostop.transform.rejection/v1"
SOURCE_PREFIX = "renders/"
SHARD_SUFFIX = ".tfrecord"
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
    """Everything one source archive produces, ready to be written in any order."""

    shard_key: str | None
    objects: tuple[OutputObject, ...]
    designs_written: int
    rejections: tuple[Rejection, ...]

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


def batch_token(source: SourceObject) -> str:
    """``<source key without renders/ and archive suffix>-<16 hex of sha256(key, etag or version)>``."""
    stem = source.key[len(SOURCE_PREFIX) :] if source.key.startswith(SOURCE_PREFIX) else source.key
    stem = _truncate_utf8(strip_archive_suffix(stem).strip("/"), MAX_STEM_BYTES) or "batch"
    identity = source.etag or source.version_id or ""
    return f"{stem}-{_short_hash(source.key, identity)}"


def shard_key(source: SourceObject, *, shard_prefix: str) -> str:
    return f"{shard_prefix}{batch_token(source)}{SHARD_SUFFIX}"


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


def rejection_document(source: SourceObject, rejection: Rejection, *, shard_key: str | None) -> bytes:
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
            "shard_key": shard_key,
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
            "shard_key": None,
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
    source: SourceObject, rejections: Sequence[Rejection], *, shard_key: str | None, reject_prefix: str
) -> tuple[OutputObject, ...]:
    return tuple(
        OutputObject(
            key=rejection_key(source, rejection, reject_prefix=reject_prefix),
            body=rejection_document(source, rejection, shard_key=shard_key),
            content_type="application/json",
        )
        for rejection in rejections
    )


def plan_outputs(
    source: SourceObject, result: BatchResult, *, shard_prefix: str, reject_prefix: str
) -> BatchOutputs:
    """The shard (when at least one design is good) and one record per rejection."""
    objects: list[OutputObject] = []
    key: str | None = None
    if result.designs:
        key = shard_key(source, shard_prefix=shard_prefix)
        objects.append(
            OutputObject(key=key, body=encode_shard(result.designs), content_type="application/octet-stream")
        )
    objects.extend(rejection_outputs(source, result.rejections, shard_key=key, reject_prefix=reject_prefix))
    return BatchOutputs(
        shard_key=key,
        objects=tuple(objects),
        designs_written=len(result.designs),
        rejections=result.rejections,
    )


def rejected_batch(source: SourceObject, reason: Reason, message: str, *, reject_prefix: str) -> BatchOutputs:
    """Outputs for a batch rejected before its bytes were transformed (object gone, too large, ...)."""
    rejection = Rejection(reason=reason, message=message)
    return BatchOutputs(
        shard_key=None,
        objects=rejection_outputs(source, (rejection,), shard_key=None, reject_prefix=reject_prefix),
        designs_written=0,
        rejections=(rejection,),
    )
