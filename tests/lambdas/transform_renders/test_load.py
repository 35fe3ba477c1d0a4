"""Load: 1,000 render batches, 8 concurrent handler workers, 10% transient S3 faults, with redelivery, and
re-uploads and deletions of some batches while the workers run.

What runs for real: moto's S3 (over HTTP) notifies moto's SQS queue for every upload; 8 worker threads
each loop like Lambda's SQS event source mapping: ReceiveMessage (up to 10), call the real handler, delete
the messages it acknowledged, and make the ones it reported as batch item failures visible again at once
(ChangeMessageVisibility 0, i.e. the visibility timeout expiring). A DLQ with a high maxReceiveCount sits
behind the queue; it must stay empty.

About 10% of the batches are uploaded a second time with other designs (some good, some bad), and about 3%
are deleted, each some 50 uploads after the first upload: by then the first version may be processed,
queued, or being processed by another worker. Only the last version of a key may be in the shards.

The one injected part (a documented test double): the handler's S3 client gets wrappers around
``get_object``, ``put_object``, ``head_object`` and ``delete_object`` that, on a seeded 10% of calls,
raise what botocore raises once its own
retries are exhausted: ``EndpointConnectionError`` (network) or a ``ClientError`` with HTTP 503
``SlowDown`` (throttling). Whether attempt N for a key faults is decided by hashing (seed, operation, key,
N), so the faults are the same whatever the thread interleaving. A fault on ``put_object`` lands after a
shard was possibly written: the retry must rewrite the same keys, never add new ones.

Then it counts, without sampling: every good design of every key's last version is in exactly one shard
(read back and parsed) of the split its id names, no design of an earlier version or a deleted batch is in
any shard, every bad design and bad batch of a last version has its rejection record, no shard is
unexpected, both queues are empty.
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

BATCHES = 1_000
WORKERS = 8
UPLOADERS = 2
FAULT_RATE = 0.10
SEED = 20_261_122
DEADLINE_S = 600.0  # a hang guard, not a performance bound: the machine may be shared and slow
KINDS = ("tar", "tar.gz", "zip")


REUPLOAD_RATE = 0.10
DELETE_RATE = 0.03
SECOND_EVENT_DELAY = 50  # uploads between a key's first upload and its re-upload or deletion


@dataclasses.dataclass
class Plan:
    """Every upload and deletion, in order, and what must come out of the last version of each key."""

    events: list[tuple[str, bytes | None]] = dataclasses.field(default_factory=list)  # None: delete
    good_designs: set[str] = dataclasses.field(default_factory=set)  # of each key's last version
    good_by_key: dict[str, set[str]] = dataclasses.field(default_factory=dict)  # the same, per key
    bad_designs: set[str] = dataclasses.field(default_factory=set)  # of each key's last version
    rejected_batches: set[str] = dataclasses.field(default_factory=set)  # last versions with a batch record
    earlier_designs: set[str] = dataclasses.field(default_factory=set)  # replaced or deleted: in no shard
    earlier_bad_designs: set[str] = dataclasses.field(default_factory=set)  # may have been recorded

    @property
    def keys(self) -> list[str]:
        return list(dict.fromkeys(key for key, _ in self.events))


@dataclasses.dataclass
class Version:
    data: bytes
    good: set[str]
    bad: set[str]
    batch_rejected: bool


def build_version(rng: random.Random, pool: list[bytes], batch: int, kind: str, tag: str) -> Version:
    """2-3 designs of 12 views; ~15% with a bad design, ~4% all bad, ~3% a corrupt archive."""
    roll = rng.random()
    if roll < 0.03:
        return Version(data=b"corrupt " * rng.randint(1, 50), good=set(), bad=set(), batch_rejected=True)
    files: dict[str, bytes] = {}
    good: set[str] = set()
    bad_ids: set[str] = set()
    count = rng.randint(2, 3)
    all_bad = roll < 0.07
    bad_index = rng.randrange(count) if (all_bad or roll < 0.22) else -1
    for index in range(count):
        design_id = f"b{batch:05d}-{tag}{index}"
        bad = all_bad or index == bad_index
        for number in range(11 if bad else 12):
            files[f"{design_id}/view_{number:02d}.png"] = pool[rng.randrange(len(pool))]
        files[f"{design_id}/meta.json"] = json.dumps({"family": "load"}).encode()
        (bad_ids if bad else good).add(design_id)
    return Version(data=archives.archive_bytes(files, kind), good=good, bad=bad_ids, batch_rejected=all_bad)


def build_plan() -> Plan:
    """1,000 keys; ~10% re-uploaded with other designs, ~3% deleted, each ~50 uploads after the first.

    View PNGs come from a small pre-encoded pool (encoding is not what is under test); design ids are unique.
    """
    rng = random.Random(SEED)
    pool = [archives.image_bytes(rng.randint(8, 16), rng.randint(8, 16), seed=index) for index in range(48)]
    plan = Plan()
    later: dict[int, list[tuple[str, bytes | None]]] = collections.defaultdict(list)
    for batch in range(BATCHES):
        plan.events.extend(later.pop(batch, []))
        kind = KINDS[batch % len(KINDS)]
        key = f"renders/load/batch-{batch:05d}.{kind}"
        first = build_version(rng, pool, batch, kind, "d")
        plan.events.append((key, first.data))
        roll = rng.random()
        last: Version | None = first
        if roll < REUPLOAD_RATE:
            last = build_version(rng, pool, batch, kind, "r")
            later[batch + SECOND_EVENT_DELAY].append((key, last.data))
        elif roll < REUPLOAD_RATE + DELETE_RATE:
            last = None
            later[batch + SECOND_EVENT_DELAY].append((key, None))
        if last is not first:
            plan.earlier_designs |= first.good | first.bad
            plan.earlier_bad_designs |= first.bad
        if last is not None:
            plan.good_designs |= last.good
            plan.good_by_key[key] = last.good
            plan.bad_designs |= last.bad
            if last.batch_rejected:
                plan.rejected_batches.add(key)
    for events in later.values():
        plan.events.extend(events)
    return plan


class FaultInjector:
    """Seeded, interleaving-independent transient faults on the handler's S3 client (see module docstring)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._get_object = client.get_object
        self._put_object = client.put_object
        self._head_object = client.head_object
        self._delete_object = client.delete_object
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

    def head_object(self, **kwargs: Any) -> Any:
        if self._should_fail("HeadObject", kwargs["Key"]):
            raise self._fault("HeadObject", kwargs["Key"])
        return self._head_object(**kwargs)

    def delete_object(self, **kwargs: Any) -> Any:
        if self._should_fail("DeleteObject", kwargs["Key"]):
            raise self._fault("DeleteObject", kwargs["Key"])
        return self._delete_object(**kwargs)


@pytest.fixture
def quiet_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """1,000+ INFO lines and EMF documents are not what this test checks (test_app.py does)."""
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
        self.sent = 0  # uploads and deletions made, each one notification
        self.settled: set[str] = set()
        self.stats = collections.Counter[str]()
        self.condition = threading.Condition()
        self.queue_mutation = threading.Lock()
        self.deadline = time.monotonic() + DEADLINE_S
        self.expected_messages = len(plan.events) + 1  # + the s3:TestEvent

    def upload(self, share: int) -> None:
        """This uploader's keys (every event of a key goes through one uploader, so in the planned order)."""
        mine = set(self.plan.keys[share::UPLOADERS])
        for key, data in self.plan.events:
            if key not in mine:
                continue
            with self.condition:
                self.condition.wait_for(
                    lambda: self.sent - len(self.settled) < self.MAX_QUEUED,
                    timeout=max(0.0, self.deadline - time.monotonic()),
                )
            with self.queue_mutation:
                if data is None:
                    self.s3.delete_object(Bucket=BUCKET, Key=key)
                else:
                    self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)
            with self.condition:
                self.sent += 1

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


def test_a_thousand_batches_with_faults_and_re_uploads_lose_nothing_and_duplicate_nothing(
    moto_endpoint: str, quiet_handler: None
) -> None:
    # GIVEN the bucket -> queue notification (queue + DLQ with maxReceiveCount 50) and 1,000 planned batches,
    # some re-uploaded or deleted later
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    dlq_url = sqs.create_queue(QueueName="render-batches-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    renders = create_renders_bucket(s3, sqs, visibility_timeout=60, dead_letter_arn=dlq_arn)
    plan = build_plan()
    assert len(plan.keys) == BATCHES
    assert len(plan.events) > BATCHES * (1 + REUPLOAD_RATE)
    # AND the handler's S3 client faulting on 10% of calls
    injector = FaultInjector(app.s3_client())
    for operation in ("get_object", "put_object", "head_object", "delete_object"):
        setattr(app.s3_client(), operation, getattr(injector, operation))

    # WHEN the batches are uploaded (and some re-uploaded or deleted) while 8 workers drain the queue
    pipeline = Pipeline(s3, sqs, renders, plan)
    stats = pipeline.run()

    # THEN every message was acknowledged, some only after redelivery, and both queues are empty
    assert pipeline.sent == len(plan.events)
    assert stats["settled"] == len(plan.events) + 1, stats
    assert injector.faults >= 0.05 * injector.calls, (injector.faults, injector.calls)
    assert stats["failed_records"] >= injector.faults // 2 > 0
    assert stats["redelivered"] > 0
    for url in (renders.queue_url, dlq_url):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0", url
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0", url

    # AND, counting every record of every shard, each good design of a last version appears exactly once,
    # in the split its id names, and no bad design, replaced design or deleted batch's design does
    def designs_in(key: str) -> tuple[str, list[str]]:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return key, [design["design_id"] for design in example_proto.designs_in_shard(body)]

    shard_keys = list_keys(s3, "shards/")
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        shards = dict(pool.map(designs_in, shard_keys))
    counts = collections.Counter(design for designs in shards.values() for design in designs)
    fraction = layout.DEFAULT_VALIDATION_FRACTION
    assert set(counts) == plan.good_designs
    assert set(counts.values()) == {1}
    assert not set(counts) & plan.earlier_designs
    for key, designs in shards.items():
        split = key.split("/")[1]
        assert {layout.design_split(design, fraction) for design in designs} == {split}
    assert {key.split("/")[1] for key in shard_keys} == set(layout.SPLITS)

    # AND the shards are exactly those of the last versions: one per key and split that has designs
    expected_shards = {
        layout.shard_key(key, layout.design_split(design, fraction), shard_prefix="shards/")
        for key, designs in plan.good_by_key.items()
        for design in designs
    }
    assert set(shard_keys) == expected_shards

    # AND every bad design and rejected batch of a last version has its record; records of earlier
    # versions may exist (a history of what each upload was refused for), nothing else does
    rejection_names = [key.rsplit("/", 1)[-1] for key in list_keys(s3, "rejected/")]
    rejected_designs = {name.removesuffix(".json") for name in rejection_names if name != "_batch.json"}
    assert plan.bad_designs <= rejected_designs <= plan.bad_designs | plan.earlier_bad_designs
    batch_records = {
        key.removeprefix("rejected/").removesuffix("/_batch.json")
        for key in list_keys(s3, "rejected/")
        if key.endswith("/_batch.json")
    }
    assert {
        layout.batch_token(layout.SourceObject(key=key, etag=etag))
        for key, etag in final_etags(s3, plan.rejected_batches).items()
    } <= batch_records


def final_etags(s3: Any, keys: set[str]) -> dict[str, str]:
    return {key: layout.normalize_etag(s3.head_object(Bucket=BUCKET, Key=key)["ETag"]) for key in keys}
