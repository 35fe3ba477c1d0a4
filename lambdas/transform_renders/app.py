"""SQS -> render batch transformer: the Lambda adapter around the pure core.

One SQS record names one or more archives (an S3 event notification, URL-encoded keys, possibly several
``Records``; or a direct ``{"bucket": ..., "key": ...}`` message from ``autostop transform submit``). For each
archive: read it, transform it, write the shard and one JSON record per rejection. Outcomes:

* success, including a rejected batch -> the record is acknowledged (a rejection record says why);
* a malformed message -> a rejection record under ``<REJECT_PREFIX>_messages/<message id>.json`` and ack;
* anything else (throttling, 5xx, timeouts, network, access denied, an unexpected bug) -> the record is
  reported as a batch item failure, SQS redelivers it and the DLQ keeps what keeps failing. Every output key
  is deterministic, so a retry of a half-written batch rewrites the same objects.

Environment (set by infra/render_transformer.py): OUTPUT_BUCKET (default: the source bucket), SHARD_PREFIX
(``shards/``), REJECT_PREFIX (``rejected/``), IMAGE_SIZE (64), NUM_VIEWS (12), MAX_ARCHIVE_BYTES,
MAX_EXPANDED_BYTES, MAX_MEMBERS, MAX_MEMBER_BYTES, MAX_IMAGE_PIXELS (defaults: transform.Limits).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping
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
    shard_prefix: str
    reject_prefix: str
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

        defaults = transform.Limits()
        limits = transform.Limits(
            **{
                field: integer(variable, getattr(defaults, field))
                for field, variable in _LIMIT_VARIABLES.items()
            }
        )
        return cls(
            output_bucket=environment.get("OUTPUT_BUCKET") or None,
            shard_prefix=environment.get("SHARD_PREFIX", "shards/"),
            reject_prefix=environment.get("REJECT_PREFIX", "rejected/"),
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
        if not event_name.startswith("ObjectCreated:"):
            logger.warning(
                "Ignoring S3 notification that is not ObjectCreated", extra={"event_name": event_name}
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
    """The archives a record body names; empty for ``s3:TestEvent`` and non-ObjectCreated notifications."""
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


def _read_object(
    ref: ObjectRef, settings: Settings
) -> tuple[layout.SourceObject, bytes | layout.BatchOutputs]:
    """The archive's bytes, or the outputs of a batch rejected without transforming anything."""
    source = layout.SourceObject(
        bucket=ref.bucket, key=ref.key, etag=layout.normalize_etag(ref.etag), version_id=ref.version_id
    )
    limit = settings.config.limits.max_archive_bytes
    if transform.archive_kind(ref.key) is None:
        message = f"{ref.key!r} does not end with .tar, .tar.gz, .tgz or .zip"
        return source, layout.rejected_batch(
            source, transform.Reason.UNSUPPORTED_ARCHIVE, message, reject_prefix=settings.reject_prefix
        )
    if ref.size is not None and ref.size > limit:
        message = f"archive is {ref.size} bytes (limit {limit})"
        return source, layout.rejected_batch(
            source, transform.Reason.ARCHIVE_TOO_LARGE, message, reject_prefix=settings.reject_prefix
        )
    request: dict[str, str] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        request["VersionId"] = ref.version_id
    try:
        response = s3_client().get_object(**request)
    except botocore.exceptions.ClientError as error:
        if _error_code(error) not in _GONE_CODES:
            raise
        message = f"s3://{ref.bucket}/{ref.key} is gone ({_error_code(error)})"
        return source, layout.rejected_batch(
            source, transform.Reason.OBJECT_NOT_FOUND, message, reject_prefix=settings.reject_prefix
        )
    body = response["Body"]
    # Name outputs after the bytes actually read: a notification for an older overwrite names the same key.
    source = dataclasses.replace(
        source,
        etag=layout.normalize_etag(response.get("ETag")) or source.etag,
        version_id=response.get("VersionId") or source.version_id,
    )
    length = int(response.get("ContentLength", 0))
    if length > limit:
        body.close()
        message = f"archive is {length} bytes (limit {limit})"
        return source, layout.rejected_batch(
            source, transform.Reason.ARCHIVE_TOO_LARGE, message, reject_prefix=settings.reject_prefix
        )
    with body:
        data: bytes = body.read(limit + 1)
    return source, data


def _write(bucket: str, outputs: layout.BatchOutputs, source: layout.SourceObject) -> None:
    client = s3_client()
    metadata = {
        "source-key": urllib.parse.quote(source.key, safe="/"),
        "source-etag": source.etag,
    }
    for output in outputs.objects:
        client.put_object(
            Bucket=bucket,
            Key=output.key,
            Body=output.body,
            ContentType=output.content_type,
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


def process_object(ref: ObjectRef, settings: Settings, tally: Tally) -> layout.BatchOutputs:
    started = time.perf_counter()
    source, read = _read_object(ref, settings)
    bytes_in = 0
    if isinstance(read, layout.BatchOutputs):
        outputs = read
    else:
        bytes_in = len(read)
        result = transform.transform_archive(read, archive_name=ref.key, config=settings.config)
        outputs = layout.plan_outputs(
            source, result, shard_prefix=settings.shard_prefix, reject_prefix=settings.reject_prefix
        )
    _write(settings.output_bucket or ref.bucket, outputs, source)
    duration_ms = (time.perf_counter() - started) * 1000.0
    tally.designs_written += outputs.designs_written
    tally.bytes_in += bytes_in
    tally.bytes_out += outputs.bytes_out
    tally.durations_ms.append(duration_ms)
    tally.add_rejections(outputs.rejections)
    logger.info(
        "Render batch processed",
        extra={
            "bucket": ref.bucket,
            "key": ref.key,
            "etag": source.etag,
            "shard_key": outputs.shard_key,
            "designs_written": outputs.designs_written,
            "rejections": [
                f"{rejection.design_id or '-'}:{rejection.reason}" for rejection in outputs.rejections
            ],
            "bytes_in": bytes_in,
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


def record_handler(record: SQSRecord, tally: Tally) -> None:
    """One SQS record: raise to have it retried, return to acknowledge it."""
    settings = Settings.from_environment(os.environ)
    try:
        refs = parse_message(record.body)
    except MalformedMessage as error:
        _reject_message(record, str(error), settings, tally)
        return
    for ref in refs:
        process_object(ref, settings, tally)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    tally = Tally(messages=len(event.get("Records", [])))
    # A processor per invocation keeps the handler re-entrant (the load test runs it from many threads).
    # When every record fails, answer with every record as a batch item failure instead of raising: the
    # outcome for SQS is the same (all are redelivered), and Errors stays a signal of crashes and timeouts.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event,
        record_handler=functools.partial(record_handler, tally=tally),
        processor=processor,
        context=context,
    )
    publish(tally, failed_messages=len(response.get("batchItemFailures", [])))
    return dict(response)
