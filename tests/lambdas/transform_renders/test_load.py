"""Load: 2,000 render batches, 8 concurrent handler workers, 10% transient S3 faults, with redelivery.

What runs for real: moto's S3 (over HTTP) notifies moto's SQS queue for every upload; 8 worker threads
each loop like Lambda's SQS event source mapping: ReceiveMessage (up to 10), call the real handler, delete
the messages it acknowledged, and make the ones it reported as batch item failures visible again at once
(ChangeMessageVisibility 0, i.e. the visibility timeout expiring). A DLQ with a high maxReceiveCount sits
behind the queue; it must stay empty.

The one injected part (a documented test double): the handler's S3 client gets wrappers around
``get_object`` and ``put_object`` that, on a seeded 10% of calls, raise what botocore raises once its own
retries are exhausted: ``EndpointConnectionError`` (network) or a ``ClientError`` with HTTP 503
``SlowDown`` (throttling). Whether attempt N for a key faults is decided by hashing (seed, operation, key,
N), so the faults are the same whatever the thread interleaving. A fault on ``put_object`` lands after a
shard was possibly written: the retry must rewrite the same keys, never add new ones.

Then it counts, without sampling: every good design is in exactly one shard (read back and parsed), every
bad design and bad batch has its rejection record, no shard is unexpected, both queues are empty.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest

from lambdas.transform_renders import app, layout
from tests.lambdas.transform_renders import archives, example_proto
from tests.lambdas.transform_renders.conftest import (
    BUCKET,
    FakeLambdaContext,
    RendersBucket,
    create_renders_bucket,
    lambda_event,
)

pytestmark = [
    pytest.mark.slow,
    # With POWERTOOLS_METRICS_DISABLED, Powertools still flushes (and then finds nothing) when one metric
    # reaches 100 values across invocations; the warning says nothing about the handler.
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

BATCHES = 2_000
WORKERS = 8
UPLOADERS = 2
FAULT_RATE = 0.10
SEED = 20_261_122
DEADLINE_S = 240.0
KINDS = ("tar", "tar.gz", "zip")


@dataclasses.dataclass
class Plan:
    """Every batch uploaded and what must come out of it."""

    archives: dict[str, bytes] = dataclasses.field(default_factory=dict)
    good_designs: set[str] = dataclasses.field(default_factory=set)
    bad_designs: set[str] = dataclasses.field(default_factory=set)
    rejected_batches: set[str] = dataclasses.field(default_factory=set)  # keys with a batch-level record


def build_plan() -> Plan:
    """2-3 designs of 12 views (8x8..16x16 PNGs) per batch; ~15% with a bad design, ~4% all bad, ~3% corrupt.

    View PNGs come from a small pre-encoded pool (encoding is not what is under test); design ids are unique.
    """
    rng = random.Random(SEED)
    pool = [archives.image_bytes(rng.randint(8, 16), rng.randint(8, 16), seed=index) for index in range(48)]
    plan = Plan()
    for batch in range(BATCHES):
        kind = KINDS[batch % len(KINDS)]
        key = f"renders/load/batch-{batch:05d}.{kind}"
        roll = rng.random()
        if roll < 0.03:
            plan.archives[key] = b"corrupt " * rng.randint(1, 50)
            plan.rejected_batches.add(key)
            continue
        files: dict[str, bytes] = {}
        count = rng.randint(2, 3)
        all_bad = roll < 0.07
        bad_index = rng.randrange(count) if (all_bad or roll < 0.22) else -1
        for index in range(count):
            design_id = f"b{batch:05d}-d{index}"
            bad = all_bad or index == bad_index
            views = 11 if bad else 12
            for number in range(views):
                files[f"{design_id}/view_{number:02d}.png"] = pool[rng.randrange(len(pool))]
            files[f"{design_id}/meta.json"] = json.dumps({"family": "load"}).encode()
            (plan.bad_designs if bad else plan.good_designs).add(design_id)
        if all_bad:
            plan.rejected_batches.add(key)  # no_valid_designs
        plan.archives[key] = archives.archive_bytes(files, kind)
    return plan


class FaultInjector:
    """Seeded, interleaving-independent transient faults on the handler's S3 client (see module docstring)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._get_object = client.get_object
        self._put_object = client.put_object
        self._attempts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()
        self.calls = 0
        self.faults = 0

    def _should_fail(self, operation: str, key: str) -> bool:
        with self._lock:
            self._attempts[(operation, key)] += 1
            attempt = self._attempts[(operation, key)]
            self.calls += 1
        digest = hashlib.sha256(f"{SEED}:{operation}:{key}:{attempt}".encode()).digest()
        fail = int.from_bytes(digest[:8], "big") / 2**64 < FAULT_RATE
        if fail:
            with self._lock:
                self.faults += 1
        return fail

    def _fault(self, operation: str, key: str) -> Exception:
        if len(key) % 2:
            return botocore.exceptions.EndpointConnectionError(
                endpoint_url="https://s3.us-east-1.amazonaws.com"
            )
        error = {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}
        return botocore.exceptions.ClientError(
            {**error, "ResponseMetadata": {"HTTPStatusCode": 503}}, operation
        )

    def get_object(self, **kwargs: Any) -> Any:
        if self._should_fail("GetObject", kwargs["Key"]):
            raise self._fault("GetObject", kwargs["Key"])
        return self._get_object(**kwargs)

    def put_object(self, **kwargs: Any) -> Any:
        if self._should_fail("PutObject", kwargs["Key"]):
            raise self._fault("PutObject", kwargs["Key"])
        return self._put_object(**kwargs)


@pytest.fixture
def quiet_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """2,000+ INFO lines and EMF documents are not what this test checks (test_app.py does)."""
    level = app.logger.level
    app.logger.setLevel(logging.WARNING)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    # 16x16 views: the pipeline, not pixel volume, is under test here (moto stores every shard in memory).
    monkeypatch.setenv("IMAGE_SIZE", "16")
    yield
    app.logger.setLevel(level)


class Pipeline:
    """Uploader threads feed the bucket while 8 event-source-mapping loops drain the queue concurrently.

    Uploads stay at most ``MAX_QUEUED`` messages ahead of what the workers have settled (waiting on a
    condition, not sleeping): batches arrive over time, as in production, and the queue stays short, because
    moto's SendMessage and ReceiveMessage cost grows with the queue's depth.

    moto's SQS replaces a queue's message list on every delete without a lock, so a delete racing a send
    (an upload's notification) or another delete can undo it -- an emulator race real SQS does not have.
    The calls that change the list (uploads, deletes, visibility changes) therefore take turns; receives
    and the handlers run concurrently.
    """

    MAX_QUEUED = 40

    def __init__(self, s3: Any, sqs: Any, renders: RendersBucket, plan: Plan) -> None:
        self.s3, self.sqs, self.renders, self.plan = s3, sqs, renders, plan
        self.etags: dict[str, str] = {}
        self.settled: set[str] = set()
        self.stats = collections.Counter[str]()
        self.condition = threading.Condition()
        self.queue_mutation = threading.Lock()
        self.deadline = time.monotonic() + DEADLINE_S
        self.expected_messages = len(plan.archives) + 1  # + the s3:TestEvent

    def upload(self, share: int) -> None:
        for key, data in list(self.plan.archives.items())[share::UPLOADERS]:
            with self.condition:
                self.condition.wait_for(
                    lambda: len(self.etags) - len(self.settled) < self.MAX_QUEUED,
                    timeout=max(0.0, self.deadline - time.monotonic()),
                )
            with self.queue_mutation:
                etag = self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)["ETag"]
            with self.condition:
                self.etags[key] = layout.normalize_etag(etag)

    def work(self) -> None:
        context = FakeLambdaContext()
        queue_url, queue_arn = self.renders.queue_url, self.renders.queue_arn
        while time.monotonic() < self.deadline:
            with self.condition:
                if len(self.settled) >= self.expected_messages:
                    return
            messages = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=1
            ).get("Messages", [])
            if not messages:
                continue
            response = app.handler(lambda_event(messages, queue_arn), context)
            failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
            done = [message for message in messages if message["MessageId"] not in failed]
            retry = [message for message in messages if message["MessageId"] in failed]
            with self.queue_mutation:
                if done:  # what Lambda's event source mapping deletes
                    deleted = self.sqs.delete_message_batch(
                        QueueUrl=queue_url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                        ],
                    )
                    assert not deleted.get("Failed"), deleted["Failed"]
                if retry:  # batch item failures come back once their visibility timeout ends: end it now
                    changed = self.sqs.change_message_visibility_batch(
                        QueueUrl=queue_url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                            for i, m in enumerate(retry)
                        ],
                    )
                    # SQS is at-least-once: a copy delivered to two workers may already have been deleted
                    # by the other one, whose success settled it.
                    codes = {failure["Code"] for failure in changed.get("Failed", [])}
                    assert codes <= {"ReceiptHandleIsInvalid"}, changed["Failed"]
            with self.condition:
                self.settled.update(message["MessageId"] for message in done)
                self.stats["invocations"] += 1
                self.stats["failed_records"] += len(retry)
                self.stats["redelivered"] += sum(
                    int(message["Attributes"]["ApproximateReceiveCount"]) > 1 for message in messages
                )
                self.condition.notify_all()

    def run(self) -> dict[str, int]:
        with concurrent.futures.ThreadPoolExecutor(UPLOADERS + WORKERS) as pool:
            futures = [pool.submit(self.upload, share) for share in range(UPLOADERS)]
            futures += [pool.submit(self.work) for _ in range(WORKERS)]
            for future in futures:
                future.result()
        return {**self.stats, "settled": len(self.settled)}


def list_keys(s3: Any, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def test_two_thousand_batches_with_faults_lose_nothing_and_duplicate_nothing(
    moto_endpoint: str, quiet_handler: None
) -> None:
    # GIVEN the bucket -> queue notification (queue + DLQ with maxReceiveCount 50) and 2,000 planned batches
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    dlq_url = sqs.create_queue(QueueName="render-batches-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    renders = create_renders_bucket(s3, sqs, visibility_timeout=60, dead_letter_arn=dlq_arn)
    plan = build_plan()
    # AND the handler's S3 client faulting on 10% of calls
    injector = FaultInjector(app.s3_client())
    app.s3_client().get_object = injector.get_object
    app.s3_client().put_object = injector.put_object

    # WHEN the batches are uploaded while 8 workers drain the queue
    pipeline = Pipeline(s3, sqs, renders, plan)
    stats = pipeline.run()
    etags = pipeline.etags

    # THEN every message was acknowledged, some only after redelivery, and both queues are empty
    assert len(etags) == BATCHES
    assert stats["settled"] == BATCHES + 1, stats
    assert injector.faults >= 0.05 * injector.calls, (injector.faults, injector.calls)
    assert stats["failed_records"] >= injector.faults // 2 > 0
    assert stats["redelivered"] > 0
    for url in (renders.queue_url, dlq_url):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0", url
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0", url

    # AND the shards are exactly one per batch with a good design, at the key derived from key + ETag
    shard_keys = list_keys(s3, "shards/")
    expected_shards = {
        layout.shard_key(layout.SourceObject(key=key, etag=etags[key]), shard_prefix="shards/")
        for key in plan.archives
        if key not in plan.rejected_batches
    }
    assert len(shard_keys) == len(set(shard_keys)) == len(expected_shards)
    assert set(shard_keys) == expected_shards

    # AND, counting every record of every shard, each good design appears exactly once and no bad one does
    def designs_in(key: str) -> list[str]:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return [design["design_id"] for design in example_proto.designs_in_shard(body)]

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        counts = collections.Counter(
            design for designs in pool.map(designs_in, shard_keys) for design in designs
        )
    assert set(counts) == plan.good_designs
    assert set(counts.values()) == {1}

    # AND every bad design and every rejected batch has its record (one each, nothing else under rejected/)
    rejection_names = [key.rsplit("/", 1)[-1] for key in list_keys(s3, "rejected/")]
    rejected_designs = {name.removesuffix(".json") for name in rejection_names if name != "_batch.json"}
    assert rejected_designs == plan.bad_designs
    assert rejection_names.count("_batch.json") == len(plan.rejected_batches)
    assert len(rejection_names) == len(plan.bad_designs) + len(plan.rejected_batches)
