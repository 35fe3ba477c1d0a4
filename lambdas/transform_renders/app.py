"""SQS -> render batch transformer: the Lambda adapter around the pure core.

One SQS record names one or more source keys (an S3 event notification of a created or removed object,
URL-encoded keys, possibly several ``Records``; or a direct ``{"bucket": ..., "key": ...}`` message from
``autostop transform submit``). Whatever the message says happened, the function brings the key's shards in
line with the object as it is *now*: it reads the current object (never an older version a late message
names), writes its shards under ``<SHARD_PREFIX>train/`` and ``<SHARD_PREFIX>validation/`` and removes a
split it no longer has; a key that no longer exists gets its shards removed. So duplicate, late and
out-of-order deliveries of several uploads of one key all end with the newest upload's shards:

* before writing, a shard already written from a newer object (metadata ``source-last-modified``) is left
  alone and the message is acknowledged;
* after writing, the source is looked at again: if it changed (or went) meanwhile, the record fails and
  its retry reads the newer object. Concurrent workers therefore converge on the newest version.

Outcomes of a record:

* success, including a rejected batch -> acknowledged (a rejection record says why);
* a malformed message -> a rejection record under ``<REJECT_PREFIX>_messages/<message id>.json`` and ack;
* too little invocation time left (``RECORD_TIME_RESERVE_MS``), before a record or between the designs of
  one -> this record and every later one of the batch are reported as batch item failures before Lambda's
  timeout, so a slow archive never takes the rest of its batch down with it (SQS redelivers them);
* anything else (throttling, 5xx, timeouts, network, access denied, an unexpected bug) -> a batch item
  failure too; SQS redelivers it and the DLQ keeps what keeps failing. Every output key is deterministic, so
  a retry of a half-written batch rewrites the same objects.

Environment (set by infra/render_transformer.py): OUTPUT_BUCKET (rejection records; default: the source
bucket), SHARD_BUCKET (default: OUTPUT_BUCKET), SHARD_PREFIX (``shards/``), REJECT_PREFIX (``rejected/``),
VALIDATION_FRACTION (0.1), IMAGE_SIZE (64), NUM_VIEWS (12), RECORD_TIME_RESERVE_MS (30000), MEMORY_MB (1024:
the limits of ``transform.Limits.for_memory``), and MAX_ARCHIVE_BYTES, MAX_EXPANDED_BYTES, MAX_MEMBERS,
MAX_MEMBER_BYTES, MAX_IMAGE_PIXELS to override single limits.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from . import layout, transform

SERVICE = "transform-renders"
NAMESPACE = "Autostop"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# S3 error codes that mean "this object version does not exist": permanent, so rejected and acknowledged.
_GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
# A record is started only with at least this much invocation time left (the construct sets it from the
# function's timeout); with less, it and the rest of the batch are failed early and retried.
DEFAULT_RECORD_TIME_RESERVE_MS = 30_000
# S3 user metadata of a shard: when the source object it was made from was last modified (ISO 8601, UTC,
# S3's one-second resolution), so a late message about an older upload never overwrites a newer shard.
SOURCE_LAST_MODIFIED = "source-last-modified"
_LIMIT_VARIABLES = {
    "max_archive_bytes": "MAX_ARCHIVE_BYTES",
    "max_expanded_bytes": "MAX_EXPANDED_BYTES",
    "max_members": "MAX_MEMBERS",
    "max_member_bytes": "MAX_MEMBER_BYTES",
    "max_image_pixels": "MAX_IMAGE_PIXELS",
}


@dataclasses.dataclass(frozen=True)
class Settings:
    output_bucket: str | None
    shard_bucket: str | None
    shard_prefix: str
    reject_prefix: str
    validation_fraction: float
    record_time_reserve_ms: int
    config: transform.TransformConfig

    @classmethod
    def from_environment(cls, environment: Mapping[str, str]) -> Settings:
        """Read and validate the function's environment; a bad value fails the invocation loudly."""

        def integer(name: str, default: int) -> int:
            raw = environment.get(name, "").strip()
            if not raw:
                return default
            try:
                return int(raw)
            except ValueError as error:
                raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from error

        raw_fraction = environment.get("VALIDATION_FRACTION", "").strip()
        try:
            validation_fraction = float(raw_fraction) if raw_fraction else layout.DEFAULT_VALIDATION_FRACTION
            layout.validation_threshold(validation_fraction)
        except ValueError as error:
            raise ValueError(f"environment variable VALIDATION_FRACTION: {error}") from error
        reserve_ms = integer("RECORD_TIME_RESERVE_MS", DEFAULT_RECORD_TIME_RESERVE_MS)
        if reserve_ms < 0:
            raise ValueError(f"environment variable RECORD_TIME_RESERVE_MS must be >= 0, got {reserve_ms}")
        by_memory = transform.Limits.for_memory(integer("MEMORY_MB", transform.REFERENCE_MEMORY_MB))
        limits = dataclasses.replace(
            by_memory,
            **{
                field: integer(variable, getattr(by_memory, field))
                for field, variable in _LIMIT_VARIABLES.items()
            },
        )
        output_bucket = environment.get("OUTPUT_BUCKET") or None
        return cls(
            output_bucket=output_bucket,
            shard_bucket=environment.get("SHARD_BUCKET") or output_bucket,
            shard_prefix=environment.get("SHARD_PREFIX", "shards/"),
            reject_prefix=environment.get("REJECT_PREFIX", "rejected/"),
            validation_fraction=validation_fraction,
            record_time_reserve_ms=reserve_ms,
            config=transform.TransformConfig(
                image_size=integer("IMAGE_SIZE", 64), num_views=integer("NUM_VIEWS", 12), limits=limits
            ),
        )


@dataclasses.dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None


class MalformedMessage(ValueError):
    """The record body is neither an S3 event notification nor a direct job message."""


class OutOfTime(Exception):
    """Too little invocation time is left to process this record: it is failed, and retried later."""


class SourceChanged(Exception):
    """The source object changed while it was transformed: the retry reads the newer one."""


@functools.cache
def s3_client() -> Any:
    """One client per execution environment (endpoint, retries and credentials come from botocore's config).

    Standard retry mode retries throttling and 5xx inside the call; AWS_MAX_ATTEMPTS still applies.
    """
    config = botocore.config.Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=60)
    return boto3.client("s3", config=config)


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedMessage(f"{what} must be a non-empty string")
    return value


def _notification_refs(records: object) -> list[ObjectRef]:
    if not isinstance(records, list) or not records:
        raise MalformedMessage("'Records' must be a non-empty list")
    refs: list[ObjectRef] = []
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("s3"), dict):
            raise MalformedMessage("each notification record must be an object with an 's3' object")
        event_name = str(record.get("eventName", ""))
        if not event_name.startswith(("ObjectCreated:", "ObjectRemoved:")):
            logger.warning(
                "Ignoring S3 notification that is neither ObjectCreated nor ObjectRemoved",
                extra={"event_name": event_name},
            )
            continue
        bucket = record["s3"].get("bucket")
        target = record["s3"].get("object")
        if not isinstance(bucket, dict) or not isinstance(target, dict):
            raise MalformedMessage("notification record lacks s3.bucket or s3.object")
        size = target.get("size")
        refs.append(
            ObjectRef(
                bucket=_text(bucket.get("name"), "s3.bucket.name"),
                # S3 notifications URL-encode keys, with '+' for spaces (form encoding).
                key=urllib.parse.unquote_plus(_text(target.get("key"), "s3.object.key")),
                version_id=target.get("versionId") or None,
                etag=target.get("eTag") or None,
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            )
        )
    return refs


def parse_message(body: str) -> list[ObjectRef]:
    """The source keys a record body names; empty for ``s3:TestEvent`` and other notifications."""
    try:
        document = json.loads(body)
    except json.JSONDecodeError as error:
        raise MalformedMessage(f"body is not JSON: {error}") from error
    if not isinstance(document, dict):
        raise MalformedMessage("body is not a JSON object")
    if document.get("Event") == "s3:TestEvent":
        logger.info("Acknowledging s3:TestEvent", extra={"bucket": document.get("Bucket")})
        return []
    if "Records" in document:
        return _notification_refs(document["Records"])
    if "bucket" in document or "key" in document:
        version_id = document.get("version_id")
        if version_id is not None and not isinstance(version_id, str):
            raise MalformedMessage("version_id must be a string when present")
        # Direct messages carry keys as they are (not URL-encoded).
        return [
            ObjectRef(
                bucket=_text(document.get("bucket"), "bucket"),
                key=_text(document.get("key"), "key"),
                version_id=version_id or None,
            )
        ]
    raise MalformedMessage("body has neither 'Records' (S3 notification) nor 'bucket'/'key' (direct message)")


def _error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_gone(error: botocore.exceptions.ClientError) -> bool:
    return _error_code(error) in _GONE_CODES


def _timestamp(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class _Read:
    """The current object: its identity, when it was last modified, and its bytes (None: over the bound)."""

    source: layout.SourceObject
    last_modified: str
    data: bytes | None
    length: int


def _read_current(ref: ObjectRef, settings: Settings) -> _Read | None:
    """The key's current object (always the newest version, whatever the message named), None if gone."""
    try:
        response = s3_client().get_object(Bucket=ref.bucket, Key=ref.key)
    except botocore.exceptions.ClientError as error:
        if not _is_gone(error):
            raise
        return None
    body = response["Body"]
    source = layout.SourceObject(
        bucket=ref.bucket,
        key=ref.key,
        etag=layout.normalize_etag(response.get("ETag")),
        version_id=response.get("VersionId") or None,
    )
    last_modified = _timestamp(response["LastModified"])
    length = int(response.get("ContentLength", 0))
    limit = settings.config.limits.max_archive_bytes
    if length > limit:
        body.close()
        return _Read(source=source, last_modified=last_modified, data=None, length=length)
    with body:
        data: bytes = body.read(limit + 1)
    return _Read(source=source, last_modified=last_modified, data=data, length=len(data))


def _existing_shards(bucket: str, keys: tuple[str, ...]) -> dict[str, str | None]:
    """Each shard key that exists, with the ``source-last-modified`` it was written from (None: unknown)."""
    existing: dict[str, str | None] = {}
    for key in keys:
        try:
            response = s3_client().head_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as error:
            if _is_gone(error):
                continue
            raise
        existing[key] = response.get("Metadata", {}).get(SOURCE_LAST_MODIFIED)
    return existing


def _current_etag(ref: ObjectRef) -> str | None:
    try:
        response = s3_client().head_object(Bucket=ref.bucket, Key=ref.key)
    except botocore.exceptions.ClientError as error:
        if _is_gone(error):
            return None
        raise
    return layout.normalize_etag(response.get("ETag"))


def _apply(
    outputs: layout.BatchOutputs,
    *,
    settings: Settings,
    ref: ObjectRef,
    read: _Read | None,
    existing: dict[str, str | None],
) -> None:
    """Write the shards, remove the splits the object no longer has, write the rejection records."""
    client = s3_client()
    shard_bucket = settings.shard_bucket or ref.bucket
    metadata = {"source-key": urllib.parse.quote(ref.key, safe="/")}
    if read is not None:
        metadata |= {"source-etag": read.source.etag, SOURCE_LAST_MODIFIED: read.last_modified}
    for shard in outputs.shards:
        client.put_object(
            Bucket=shard_bucket,
            Key=shard.key,
            Body=shard.body,
            ContentType=shard.content_type,
            Metadata=metadata,
        )
    for key in outputs.removed_shard_keys:
        if key in existing:  # a versioned bucket would add a delete marker even for a key never written
            client.delete_object(Bucket=shard_bucket, Key=key)
    for record in outputs.records:
        client.put_object(
            Bucket=settings.output_bucket or ref.bucket,
            Key=record.key,
            Body=record.body,
            ContentType=record.content_type,
            Metadata=metadata,
        )


@dataclasses.dataclass
class Tally:
    """What one invocation did, published as EMF metrics once at its end."""

    messages: int = 0
    designs_written: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    durations_ms: list[float] = dataclasses.field(default_factory=list)
    rejections: Counter[tuple[str, str]] = dataclasses.field(default_factory=Counter)

    def add_rejections(self, rejections: tuple[transform.Rejection, ...]) -> None:
        for rejection in rejections:
            name = "BatchesRejected" if rejection.is_batch_level else "DesignsRejected"
            self.rejections[(name, str(rejection.reason))] += 1


# Powertools keeps one metric set per process (class-level); Lambda runs one invocation per process at a
# time, but the load test runs the handler from many threads, so publishing is serialized. Uncontended here.
_PUBLISH_LOCK = threading.Lock()


def publish(tally: Tally, *, failed_messages: int) -> None:
    with _PUBLISH_LOCK:
        metrics.add_metric(name="MessagesReceived", unit=MetricUnit.Count, value=tally.messages)
        metrics.add_metric(name="MessagesFailed", unit=MetricUnit.Count, value=failed_messages)
        metrics.add_metric(name="DesignsWritten", unit=MetricUnit.Count, value=tally.designs_written)
        metrics.add_metric(name="BytesIn", unit=MetricUnit.Bytes, value=tally.bytes_in)
        metrics.add_metric(name="BytesOut", unit=MetricUnit.Bytes, value=tally.bytes_out)
        for duration_ms in tally.durations_ms:
            metrics.add_metric(name="DurationMs", unit=MetricUnit.Milliseconds, value=duration_ms)
        totals: Counter[str] = Counter()
        for (name, reason), count in sorted(tally.rejections.items()):
            totals[name] += count
            # One extra document per reason, so alarms and dashboards can split rejections by cause.
            with single_metric(
                name=name,
                unit=MetricUnit.Count,
                value=count,
                namespace=NAMESPACE,
                default_dimensions={"service": SERVICE},
            ) as metric:
                metric.add_dimension(name="reason", value=reason)
        for name in ("DesignsRejected", "BatchesRejected"):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=totals[name])
        metrics.flush_metrics()


def _plan(
    ref: ObjectRef, read: _Read | None, settings: Settings, out_of_time: Callable[[], bool]
) -> layout.BatchOutputs:
    prefixes = {"shard_prefix": settings.shard_prefix, "reject_prefix": settings.reject_prefix}
    if read is None:
        return layout.removed_batch(ref.key, shard_prefix=settings.shard_prefix)
    limit = settings.config.limits.max_archive_bytes
    if read.data is None or read.length > limit:
        message = f"archive is {read.length} bytes (limit {limit})"
        return layout.rejected_batch(read.source, transform.Reason.ARCHIVE_TOO_LARGE, message, **prefixes)
    try:
        result = transform.transform_archive(
            read.data, archive_name=ref.key, config=settings.config, out_of_time=out_of_time
        )
    except transform.OutOfTime as error:
        raise OutOfTime(str(error)) from error
    return layout.plan_outputs(
        read.source, result, validation_fraction=settings.validation_fraction, **prefixes
    )


def process_object(
    ref: ObjectRef, settings: Settings, tally: Tally, out_of_time: Callable[[], bool] = lambda: False
) -> layout.BatchOutputs:
    """Bring the shards of ``ref.key`` in line with the key's current object (see the module docstring)."""
    started = time.perf_counter()
    if transform.archive_kind(ref.key) is None:
        suffixes = ", ".join(transform.ACCEPTED_SUFFIXES)
        source = layout.SourceObject(bucket=ref.bucket, key=ref.key, etag=layout.normalize_etag(ref.etag))
        outputs = layout.rejected_batch(
            source,
            transform.Reason.UNSUPPORTED_ARCHIVE,
            f"{ref.key!r} does not end with one of {suffixes}",
            shard_prefix=settings.shard_prefix,
            reject_prefix=settings.reject_prefix,
        )
        _apply(outputs, settings=settings, ref=ref, read=None, existing={})
        tally.add_rejections(outputs.rejections)
        return outputs
    read = _read_current(ref, settings)
    outputs = _plan(ref, read, settings, out_of_time)
    shard_bucket = settings.shard_bucket or ref.bucket
    existing = _existing_shards(shard_bucket, layout.shard_keys(ref.key, shard_prefix=settings.shard_prefix))
    read_at = read.last_modified if read is not None else ""
    newer = sorted(
        written
        for written in existing.values()
        if written is not None and read is not None and written > read_at
    )
    if newer:
        logger.warning(
            "A newer upload's shards are already written; this older one is skipped",
            extra={"key": ref.key, "read_last_modified": read_at, "newer": newer},
        )
        return dataclasses.replace(outputs, shards=(), removed_shard_keys=(), designs_written=0)
    _apply(outputs, settings=settings, ref=ref, read=read, existing=existing)
    # The object may have been replaced or deleted while it was transformed: then what was just written is
    # stale, and the retry brings the shards in line with the newer state.
    current = _current_etag(ref)
    if current != (read.source.etag if read is not None else None):
        raise SourceChanged(f"s3://{ref.bucket}/{ref.key} changed while it was transformed; retrying")
    duration_ms = (time.perf_counter() - started) * 1000.0
    tally.designs_written += outputs.designs_written
    tally.bytes_in += read.length if read is not None and read.data is not None else 0
    tally.bytes_out += outputs.bytes_out
    tally.durations_ms.append(duration_ms)
    tally.add_rejections(outputs.rejections)
    logger.info(
        "Render batch gone: its shards are removed" if read is None else "Render batch processed",
        extra={
            "bucket": ref.bucket,
            "key": ref.key,
            "etag": read.source.etag if read is not None else None,
            "shard_keys": list(outputs.shard_keys),
            "removed_shard_keys": [key for key in outputs.removed_shard_keys if key in existing],
            "designs_written": outputs.designs_written,
            "rejections": [
                f"{rejection.design_id or '-'}:{rejection.reason}" for rejection in outputs.rejections
            ],
            "bytes_in": read.length if read is not None else 0,
            "bytes_out": outputs.bytes_out,
            "duration_ms": round(duration_ms, 1),
        },
    )
    return outputs


def _reject_message(record: SQSRecord, problem: str, settings: Settings, tally: Tally) -> None:
    if not settings.output_bucket:
        # Nowhere to write the record: fail it, so SQS retries and the DLQ keeps it (never dropped).
        raise MalformedMessage(f"{problem} (and OUTPUT_BUCKET is not set, so the message goes to the DLQ)")
    output = layout.message_rejection(
        record.message_id, record.body, problem, reject_prefix=settings.reject_prefix
    )
    s3_client().put_object(
        Bucket=settings.output_bucket, Key=output.key, Body=output.body, ContentType=output.content_type
    )
    tally.add_rejections((transform.Rejection(reason=transform.Reason.MALFORMED_MESSAGE, message=problem),))
    logger.error(
        "Malformed message rejected",
        extra={"message_id": record.message_id, "problem": problem, "rejection_key": output.key},
    )


def record_handler(record: SQSRecord, tally: Tally, context: LambdaContext) -> None:
    """One SQS record: raise to have it retried, return to acknowledge it."""
    settings = Settings.from_environment(os.environ)
    out_of_time = remaining_time_check(context, settings.record_time_reserve_ms)
    if out_of_time():
        raise OutOfTime("too little invocation time left to start this record; it is retried")
    try:
        refs = parse_message(record.body)
    except MalformedMessage as error:
        _reject_message(record, str(error), settings, tally)
        return
    for ref in refs:
        process_object(ref, settings, tally, out_of_time)


def remaining_time_check(context: LambdaContext, reserve_ms: int) -> Callable[[], bool]:
    """True once the invocation has less than ``reserve_ms`` left (Lambda's own clock, via the context)."""
    return lambda: context.get_remaining_time_in_millis() < reserve_ms


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    tally = Tally(messages=len(event.get("Records", [])))
    # A processor per invocation keeps the handler re-entrant (the load test runs it from many threads).
    # When every record fails, answer with every record as a batch item failure instead of raising: the
    # outcome for SQS is the same (all are redelivered), and Errors stays a signal of crashes and timeouts.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event,
        record_handler=functools.partial(record_handler, tally=tally, context=context),
        processor=processor,
        context=context,
    )
    publish(tally, failed_messages=len(response.get("batchItemFailures", [])))
    return dict(response)
