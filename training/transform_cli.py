"""``autostop transform``: backfill render batches into the transformer's queue, or transform them locally.

* ``autostop transform submit s3://bucket/prefix --queue-url URL`` lists every archive under the prefix and
  enqueues one direct job message per archive (``{"bucket": ..., "key": ...}``, the shape the Lambda
  accepts besides S3 notifications), 10 per SendMessageBatch call. Entries SQS reports as failed are retried
  with backoff up to ``--max-attempts``; what still fails is listed and the exit status is 1.
* ``autostop transform local IN_DIR OUT_DIR`` runs the very same core as the Lambda over local archive files
  and writes shards and rejection records in the same layout (``OUT_DIR/shards/train/...``,
  ``OUT_DIR/shards/validation/...``, ``OUT_DIR/rejected/...``). A file's key is its path relative to IN_DIR
  and its ETag is the MD5 of its bytes, which is S3's ETag for a single-part upload: the same file gets the
  same output keys both ways. Run again, it replaces each archive's shards as the Lambda does. Writing no
  design at all is an error (exit status 1): there would be nothing to train on.

Heavy imports (boto3, numpy, Pillow) happen inside the commands so ``autostop --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

SQS_BATCH_LIMIT = 10  # entries per SendMessageBatch call (the SQS maximum)
DEFAULT_MAX_ATTEMPTS = 5
# Exponential backoff between retries of failed entries: 0.2 s, 0.4 s, 0.8 s, ... capped.
_BACKOFF_BASE_S = 0.2
_BACKOFF_CAP_S = 5.0
# The deployed transformer's default (infra/render_transformer.py); kept here so `--help` needs no numpy.
DEFAULT_VALIDATION_FRACTION = 0.1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "transform",
        help="turn render batches into TFRecord shards (enqueue an S3 backfill, or run locally)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="transform_action", metavar="ACTION", required=True)

    submit = actions.add_parser("submit", help="enqueue every render batch archive under an S3 prefix")
    submit.add_argument("source", help="s3://bucket/prefix holding the archives (.tar, .tar.gz, .tgz, .zip)")
    submit.add_argument("--queue-url", required=True, help="URL of the transformer's SQS queue")
    submit.add_argument("--region", default=None, help="AWS region (default: from the AWS configuration)")
    submit.add_argument(
        "--max-attempts",
        type=_positive_int,
        default=DEFAULT_MAX_ATTEMPTS,
        help=f"attempts per message before giving up (default {DEFAULT_MAX_ATTEMPTS})",
    )
    submit.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
    submit.set_defaults(handler=run_submit)

    local = actions.add_parser(
        "local", help="transform local archives into OUT_DIR/shards and OUT_DIR/rejected"
    )
    local.add_argument("input_dir", type=Path, help="folder searched recursively for archives")
    local.add_argument("output_dir", type=Path, help="folder receiving shards/ and rejected/")
    local.add_argument("--image-size", type=_positive_int, default=64, help="views are S x S (default 64)")
    local.add_argument("--num-views", type=_positive_int, default=12, help="views per design (default 12)")
    local.add_argument(
        "--validation-fraction",
        type=_fraction,
        default=DEFAULT_VALIDATION_FRACTION,
        help="share of designs written under shards/validation/, by a hash of their ids "
        f"(default {DEFAULT_VALIDATION_FRACTION}, as the deployed transformer)",
    )
    local.set_defaults(handler=run_local)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {value}")
    return value


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``; the prefix may be empty."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"expected s3://bucket/prefix, got {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


# ------------------------------------------------------------------------------------------- submit


@dataclasses.dataclass
class SubmitResult:
    enqueued: int = 0
    calls: int = 0
    retried_entries: int = 0
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (key, last error)


def list_archive_keys(s3: Any, bucket: str, prefix: str) -> tuple[list[str], int]:
    """Archive keys under the prefix (sorted, as S3 lists them) and how many other objects were skipped."""
    from lambdas.transform_renders import transform

    keys: list[str] = []
    skipped = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if transform.archive_kind(item["Key"]) is not None:
                keys.append(item["Key"])
            else:
                skipped += 1
    return keys, skipped


def enqueue(
    sqs: Any,
    queue_url: str,
    bucket: str,
    keys: Sequence[str],
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    on_progress: Callable[[int], None] = lambda done: None,
    sleep: Callable[[float], None] = time.sleep,
) -> SubmitResult:
    """Send one direct job message per key, 10 per call; retry failed entries (not sender faults).

    A whole call that raises (throttled after botocore's own retries, network down) counts as every entry of
    it failing once. ``on_progress`` gets the number of keys settled (sent or given up) after each chunk.
    """
    result = SubmitResult()
    for start in range(0, len(keys), SQS_BATCH_LIMIT):
        pending = {str(index): key for index, key in enumerate(keys[start : start + SQS_BATCH_LIMIT])}
        last_errors: dict[str, str] = {}
        for attempt in range(1, max_attempts + 1):
            if attempt > 1:
                result.retried_entries += len(pending)
                sleep(min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2 ** (attempt - 2)))
            entries = [
                {"Id": entry_id, "MessageBody": json.dumps({"bucket": bucket, "key": key})}
                for entry_id, key in pending.items()
            ]
            result.calls += 1
            try:
                response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            except Exception as error:  # any failed call is retried, then reported per key
                last_errors = dict.fromkeys(pending, f"{type(error).__name__}: {error}")
                continue
            for success in response.get("Successful", []):
                pending.pop(success["Id"], None)
                result.enqueued += 1
            permanent = {}
            for failure in response.get("Failed", []):
                message = f"{failure.get('Code', '?')}: {failure.get('Message', '')}".strip()
                last_errors[failure["Id"]] = message
                if failure.get("SenderFault"):
                    permanent[failure["Id"]] = message
            for entry_id, message in permanent.items():
                result.failed.append((pending.pop(entry_id), message))
            if not pending:
                break
        result.failed.extend(
            (key, last_errors.get(entry_id, "unknown error")) for entry_id, key in pending.items()
        )
        on_progress(min(len(keys), start + SQS_BATCH_LIMIT))
    return result


def run_submit(arguments: argparse.Namespace) -> int:
    import boto3
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    try:
        bucket, prefix = parse_s3_uri(arguments.source)
    except ValueError as error:
        console.print(f"[red]error:[/red] {error}")
        return 2
    s3 = boto3.client("s3", region_name=arguments.region)
    sqs = boto3.client("sqs", region_name=arguments.region)
    keys, skipped = list_archive_keys(s3, bucket, prefix)
    if not prefix.startswith("renders/"):
        console.print(
            "[yellow]note:[/yellow] the deployed function may read only renders/*; "
            f"archives under {prefix or '(bucket root)'!r} can fail with AccessDenied and land in the DLQ"
        )
    with Progress(
        TextColumn("enqueue"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=arguments.no_progress,
    ) as progress:
        task = progress.add_task("enqueue", total=len(keys))
        result = enqueue(
            sqs,
            arguments.queue_url,
            bucket,
            keys,
            max_attempts=arguments.max_attempts,
            on_progress=lambda done: progress.update(task, completed=done),
        )
    print(
        f"s3://{bucket}/{prefix}: {len(keys)} archive(s) found, {skipped} other object(s) skipped; "
        f"{result.enqueued} enqueued in {result.calls} SendMessageBatch call(s), "
        f"{result.retried_entries} entry retry(ies), {len(result.failed)} failed"
    )
    for key, problem in result.failed:
        print(f"  FAILED {key}: {problem}")
    return 1 if result.failed else 0


# -------------------------------------------------------------------------------------------- local


def _write_atomically(root: Path, key: str, body: bytes) -> None:
    target = (root / key).resolve()
    if not target.is_relative_to(root):
        raise ValueError(f"output key {key!r} would leave {root}")
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(body)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def find_archives(input_dir: Path) -> tuple[list[Path], int]:
    """Regular archive files under ``input_dir`` (sorted; symbolic links skipped) and a skip count."""
    from lambdas.transform_renders import transform

    archives: list[Path] = []
    skipped = 0
    for directory, _, files in os.walk(input_dir):
        for name in files:
            path = Path(directory) / name
            if path.is_symlink() or not path.is_file() or transform.archive_kind(name) is None:
                skipped += 1
                continue
            archives.append(path)
    return sorted(archives), skipped


def write_shards(archives: Sequence[Path], shards_dir: Path, *, image_size: int, num_views: int) -> list[Any]:
    """Transform each render batch file into one shard in ``shards_dir``; any rejection is an error.

    For data made here (benchmarks, test fixtures, the model comparison), where every rendered design must
    reach training: a rejection means the renderer and the transformer disagree, so it raises instead of
    writing a rejection record. Returns the designs written (``transform.Design``), in archive order.
    """
    from lambdas.transform_renders import layout, transform

    config = transform.TransformConfig(image_size=image_size, num_views=num_views)
    shards_dir.mkdir(parents=True, exist_ok=True)
    designs: list[Any] = []
    for archive in archives:
        result = transform.transform_archive(archive.read_bytes(), archive_name=archive.name, config=config)
        if result.rejections:
            reasons = "; ".join(
                f"{rejection.design_id or 'the batch'}: {rejection.reason}: {rejection.message}"
                for rejection in result.rejections
            )
            raise ValueError(f"{archive.name}: the transformer rejected designs: {reasons}")
        shard = shards_dir / (transform.strip_archive_suffix(archive.name) + ".tfrecord")
        shard.write_bytes(layout.encode_shard(result.designs))
        designs.extend(result.designs)
    return designs


def run_local(arguments: argparse.Namespace) -> int:
    from lambdas.transform_renders import layout, transform

    input_dir: Path = arguments.input_dir
    output_dir: Path = arguments.output_dir
    if not input_dir.is_dir():
        print(f"error: {input_dir} is not a folder", file=sys.stderr)
        return 2
    try:
        config = transform.TransformConfig(image_size=arguments.image_size, num_views=arguments.num_views)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    output_root = output_dir.resolve()
    output_root.mkdir(parents=True, exist_ok=True)
    archives, skipped = find_archives(input_dir)
    reasons: Counter[str] = Counter()
    designs_written = 0
    shards = 0
    bytes_in = 0
    prefixes = {"shard_prefix": "shards/", "reject_prefix": "rejected/"}
    for path in archives:
        key = path.relative_to(input_dir).as_posix()
        size = path.stat().st_size
        limit = config.limits.max_archive_bytes
        if size > limit:
            source = layout.SourceObject(key=key, etag=f"size-{size}")
            outputs = layout.rejected_batch(
                source,
                transform.Reason.ARCHIVE_TOO_LARGE,
                f"archive is {size} bytes (limit {limit})",
                **prefixes,
            )
        else:
            data = path.read_bytes()
            bytes_in += len(data)
            source = layout.SourceObject(key=key, etag=hashlib.md5(data, usedforsecurity=False).hexdigest())
            result = transform.transform_archive(data, archive_name=key, config=config)
            outputs = layout.plan_outputs(
                source, result, validation_fraction=arguments.validation_fraction, **prefixes
            )
        for output in outputs.objects:
            _write_atomically(output_root, output.key, output.body)
        for removed in outputs.removed_shard_keys:
            _remove(output_root, removed)
        designs_written += outputs.designs_written
        shards += len(outputs.shards)
        reasons.update(str(rejection.reason) for rejection in outputs.rejections)
        status = f"{outputs.designs_written} design(s)"
        if outputs.rejections:
            status += f", {len(outputs.rejections)} rejection(s)"
        print(f"{key}: {status}")
    print(
        f"{len(archives)} archive(s) ({bytes_in} bytes), {skipped} other file(s) skipped -> "
        f"{designs_written} design(s) in {shards} shard(s), {sum(reasons.values())} rejection record(s) "
        f"in {output_dir}"
    )
    for reason, count in sorted(reasons.items()):
        print(f"  rejected {reason}: {count}")
    if designs_written == 0:
        suffixes = ", ".join(transform.ACCEPTED_SUFFIXES)
        why = (
            f"no archive ({suffixes}) under {input_dir}"
            if not archives
            else f"every design was rejected (records under {output_dir / 'rejected'})"
        )
        print(f"error: no design written: {why}", file=sys.stderr)
        return 1
    return 0


def _remove(root: Path, key: str) -> None:
    target = (root / key).resolve()
    if not target.is_relative_to(root):
        raise ValueError(f"output key {key!r} would leave {root}")
    target.unlink(missing_ok=True)
