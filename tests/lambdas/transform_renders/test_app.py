"""The Lambda adapter end to end against a moto server over HTTP: S3 -> SQS notification -> handler -> S3.

Real parts only: objects are uploaded to moto's S3, whose bucket notification puts the real S3 event JSON
(URL-encoded keys) on moto's SQS queue; the test receives those messages and hands them to the handler in
the shape Lambda's SQS event source uses. The handler's botocore client talks HTTP to the same server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdas.transform_renders import app, layout
from tests.lambdas.transform_renders import archives, example_proto
from tests.lambdas.transform_renders.conftest import (
    BUCKET,
    FakeLambdaContext,
    RendersBucket,
    lambda_event,
    receive_all,
)
from tests.support import moto_server

EVENTS = Path(__file__).resolve().parents[2] / "events"


def upload(renders: RendersBucket, key: str, data: bytes) -> str:
    """Put an object; return its ETag (unquoted)."""
    return layout.normalize_etag(renders.s3.put_object(Bucket=renders.bucket, Key=key, Body=data)["ETag"])


def run_queue(
    renders: RendersBucket, context: FakeLambdaContext
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Hand every queued message to the handler in one invocation; return its response and the messages."""
    messages = receive_all(renders.sqs, renders.queue_url)
    response = app.handler(lambda_event(messages, renders.queue_arn), context)
    return response, messages


def list_keys(s3: Any, bucket: str, prefix: str = "") -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def read_json(s3: Any, key: str, bucket: str = BUCKET) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return document


def train_shard(key: str) -> str:
    return layout.shard_key(key, layout.TRAIN, shard_prefix="shards/")


def good_batch(seed: int = 0) -> bytes:
    return archives.tar_bytes(
        {
            **archives.design_files(f"a-{seed}", seed=seed),
            **archives.design_files(f"b-{seed}", seed=seed + 1),
        },
        compressed=True,
    )


def test_a_good_batch_becomes_one_shard(renders: RendersBucket, lambda_context: FakeLambdaContext) -> None:
    # GIVEN a render batch uploaded under renders/ (moto also queued the bucket's s3:TestEvent)
    etag = upload(renders, "renders/2026/batch-1.tar.gz", good_batch())
    # WHEN the handler gets the queued messages
    response, messages = run_queue(renders, lambda_context)
    # THEN every record succeeded and exactly one shard holds both designs
    assert len(messages) == 2  # the test event + the notification
    assert response == {"batchItemFailures": []}
    expected_key = train_shard("renders/2026/batch-1.tar.gz")
    assert list_keys(renders.s3, BUCKET, "shards/") == [expected_key]
    assert list_keys(renders.s3, BUCKET, "rejected/") == []
    shard = renders.s3.get_object(Bucket=BUCKET, Key=expected_key)
    designs = example_proto.designs_in_shard(shard["Body"].read())
    assert [(design["design_id"], design["views"].shape) for design in designs] == [
        ("a-0", (12, 64, 64)),
        ("b-0", (12, 64, 64)),
    ]
    assert shard["Metadata"]["source-etag"] == etag


@pytest.mark.parametrize(
    "key",
    [
        "renders/with space/batch 1.zip",
        "renders/plus+sign/a+b.tgz",
        "renders/ünïcödé/設計 🚀.tar",
        "renders/%41 literal.tar",
    ],
)
def test_url_encoded_keys_are_decoded(
    renders: RendersBucket, lambda_context: FakeLambdaContext, key: str
) -> None:
    # GIVEN an archive whose key needs URL encoding in the notification
    kind = "zip" if key.endswith(".zip") else "tgz" if key.endswith(".tgz") else "tar"
    upload(renders, key, archives.archive_bytes(archives.design_files("d1"), kind))
    # WHEN handled
    response, _ = run_queue(renders, lambda_context)
    # THEN the object was found under its real key and the shard is named after it
    assert response == {"batchItemFailures": []}
    assert list_keys(renders.s3, BUCKET, "shards/") == [train_shard(key)]
    assert list_keys(renders.s3, BUCKET, "rejected/") == []


def test_duplicate_delivery_overwrites_and_never_duplicates(
    renders: RendersBucket, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN one notification, delivered twice (SQS is at-least-once), the second time in the same batch too
    upload(renders, "renders/dup.tar.gz", good_batch())
    messages = receive_all(renders.sqs, renders.queue_url)
    event = lambda_event(messages, renders.queue_arn)
    # WHEN the handler sees the first delivery, then a batch holding the message twice
    app.handler(event, lambda_context)
    first_keys = list_keys(renders.s3, BUCKET)
    first_shard = renders.s3.get_object(Bucket=BUCKET, Key=list_keys(renders.s3, BUCKET, "shards/")[0])[
        "Body"
    ].read()
    doubled = lambda_event(messages + messages, renders.queue_arn)
    response = app.handler(doubled, lambda_context)
    # THEN the same single shard exists, byte-identical, and no other object appeared
    assert response == {"batchItemFailures": []}
    assert list_keys(renders.s3, BUCKET) == first_keys
    shard_keys = list_keys(renders.s3, BUCKET, "shards/")
    assert len(shard_keys) == 1
    assert renders.s3.get_object(Bucket=BUCKET, Key=shard_keys[0])["Body"].read() == first_shard


def test_an_object_deleted_before_processing_leaves_no_shard_and_no_record(
    renders: RendersBucket, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a created and a removed notification for an object deleted before the function ran
    upload(renders, "renders/gone.zip", archives.zip_bytes(archives.design_files("d1")))
    renders.s3.delete_object(Bucket=BUCKET, Key="renders/gone.zip")
    # WHEN handled
    response, messages = run_queue(renders, lambda_context)
    # THEN both are acknowledged and nothing is written: the batch no longer exists
    assert len(messages) == 3  # the test event, ObjectCreated, ObjectRemoved
    assert response == {"batchItemFailures": []}
    assert list_keys(renders.s3, BUCKET, "shards/") == []
    assert list_keys(renders.s3, BUCKET, "rejected/") == []


def test_deleting_a_render_batch_removes_its_shards(
    renders: RendersBucket, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a processed batch and another one
    upload(renders, "renders/keep.tar.gz", good_batch(1))
    upload(renders, "renders/drop.tar.gz", good_batch(2))
    run_queue(renders, lambda_context)
    assert list_keys(renders.s3, BUCKET, "shards/") == sorted(
        map(train_shard, ["renders/keep.tar.gz", "renders/drop.tar.gz"])
    )
    # WHEN one is deleted and its ObjectRemoved notification is handled
    renders.s3.delete_object(Bucket=BUCKET, Key="renders/drop.tar.gz")
    response, messages = run_queue(renders, lambda_context)
    # THEN only its shard is gone
    assert [json.loads(m["Body"])["Records"][0]["eventName"] for m in messages] == ["ObjectRemoved:Delete"]
    assert response == {"batchItemFailures": []}
    assert list_keys(renders.s3, BUCKET, "shards/") == [train_shard("renders/keep.tar.gz")]


def test_s3_test_event_is_acknowledged_and_ignored(
    renders: RendersBucket, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN only the s3:TestEvent S3 sends when the notification is configured
    messages = receive_all(renders.sqs, renders.queue_url)
    assert [json.loads(message["Body"]).get("Event") for message in messages] == ["s3:TestEvent"]
    # WHEN handled
    response = app.handler(lambda_event(messages, renders.queue_arn), lambda_context)
    # THEN it succeeds and writes nothing
    assert response == {"batchItemFailures": []}
    assert list_keys(renders.s3, BUCKET) == []


def test_direct_messages_are_processed(renders: RendersBucket, lambda_context: FakeLambdaContext) -> None:
    # GIVEN an object outside the notification's filter and a direct job message for it (a backfill)
    upload(renders, "backfill/old batch.tar", archives.tar_bytes(archives.design_files("old-1")))
    receive_all(renders.sqs, renders.queue_url)  # drop the s3:TestEvent
    renders.sqs.send_message(
        QueueUrl=renders.queue_url,
        MessageBody=json.dumps({"bucket": BUCKET, "key": "backfill/old batch.tar"}),
    )
    # WHEN handled
    response, _ = run_queue(renders, lambda_context)
    # THEN the key is used as is (not URL-decoded) and the shard is written
    assert response == {"batchItemFailures": []}
    assert list_keys(renders.s3, BUCKET, "shards/") == [train_shard("backfill/old batch.tar")]


def test_one_notification_with_several_records(
    renders: RendersBucket, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN two archives and one notification message naming both
    for index in range(2):
        upload(renders, f"renders/multi-{index}.tar.gz", good_batch(index))
    messages = receive_all(renders.sqs, renders.queue_url)
    records = [
        json.loads(message["Body"])["Records"][0] for message in messages if "Records" in message["Body"]
    ]
    renders.sqs.send_message(QueueUrl=renders.queue_url, MessageBody=json.dumps({"Records": records}))
    # WHEN only that combined message is handled
    response, handled = run_queue(renders, lambda_context)
    # THEN both shards exist
    assert len(handled) == 1
    assert response == {"batchItemFailures": []}
    expected = sorted(train_shard(f"renders/multi-{index}.tar.gz") for index in range(2))
    assert list_keys(renders.s3, BUCKET, "shards/") == expected


def test_bad_designs_and_bad_batches_are_recorded(
    renders: RendersBucket, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a batch with one bad design, a corrupt archive and an empty object
    mixed = archives.tar_bytes({**archives.design_files("fine"), **archives.design_files("short", views=5)})
    mixed_etag = upload(renders, "renders/mixed.tar", mixed)
    corrupt_etag = upload(renders, "renders/corrupt.zip", b"definitely not a zip")
    empty_etag = upload(renders, "renders/empty.tgz", b"")
    # WHEN handled
    response, _ = run_queue(renders, lambda_context)
    # THEN all are acknowledged; the good design is in a shard; each problem has its record
    assert response == {"batchItemFailures": []}

    def token(key: str, etag: str) -> str:
        return layout.batch_token(layout.SourceObject(key=key, etag=etag))

    assert list_keys(renders.s3, BUCKET, "rejected/") == sorted(
        [
            f"rejected/{token('renders/mixed.tar', mixed_etag)}/short.json",
            f"rejected/{token('renders/corrupt.zip', corrupt_etag)}/_batch.json",
            f"rejected/{token('renders/empty.tgz', empty_etag)}/_batch.json",
        ]
    )
    short = read_json(renders.s3, f"rejected/{token('renders/mixed.tar', mixed_etag)}/short.json")
    assert (short["design_id"], short["reason"]) == ("short", "wrong_view_count")
    assert short["shard_keys"] == list_keys(renders.s3, BUCKET, "shards/")
    assert read_json(renders.s3, f"rejected/{token('renders/corrupt.zip', corrupt_etag)}/_batch.json")[
        "reason"
    ] == ("corrupt_archive")
    assert read_json(renders.s3, f"rejected/{token('renders/empty.tgz', empty_etag)}/_batch.json")[
        "reason"
    ] == ("empty_object")


def test_non_archive_keys_in_direct_messages_are_rejected_without_reading(
    renders: RendersBucket, lambda_context: FakeLambdaContext
) -> None:
    receive_all(renders.sqs, renders.queue_url)
    renders.sqs.send_message(
        QueueUrl=renders.queue_url, MessageBody=json.dumps({"bucket": BUCKET, "key": "renders/x.rar"})
    )
    response, _ = run_queue(renders, lambda_context)
    assert response == {"batchItemFailures": []}
    [key] = list_keys(renders.s3, BUCKET, "rejected/")
    assert read_json(renders.s3, key)["reason"] == "unsupported_archive"


def test_archives_over_the_size_bound_are_rejected(
    renders: RendersBucket, lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN MAX_ARCHIVE_BYTES below the archive's size (notification carries the size; a direct message not)
    monkeypatch.setenv("MAX_ARCHIVE_BYTES", "1000")
    upload(renders, "renders/big.tar.gz", good_batch())
    receive = receive_all(renders.sqs, renders.queue_url)
    renders.sqs.send_message(
        QueueUrl=renders.queue_url, MessageBody=json.dumps({"bucket": BUCKET, "key": "renders/big.tar.gz"})
    )
    receive += receive_all(renders.sqs, renders.queue_url)
    # WHEN both messages are handled
    response = app.handler(lambda_event(receive, renders.queue_arn), lambda_context)
    # THEN both are rejected as too large (same record key: same object, same ETag)
    assert response == {"batchItemFailures": []}
    [key] = list_keys(renders.s3, BUCKET, "rejected/")
    assert read_json(renders.s3, key)["reason"] == "archive_too_large"


def test_malformed_message_is_recorded_with_its_body_and_acknowledged(
    renders: RendersBucket, lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN OUTPUT_BUCKET set (as the construct does) and messages that are not jobs
    monkeypatch.setenv("OUTPUT_BUCKET", BUCKET)
    receive_all(renders.sqs, renders.queue_url)
    bodies = [
        "not json {",
        json.dumps([1, 2]),
        json.dumps({"hello": "world"}),
        json.dumps({"Records": [{"s3": 1}]}),
    ]
    for body in bodies:
        renders.sqs.send_message(QueueUrl=renders.queue_url, MessageBody=body)
    # WHEN handled
    response, messages = run_queue(renders, lambda_context)
    # THEN each is acknowledged and kept, whole, as a malformed_message record named by its message id
    assert response == {"batchItemFailures": []}
    for message in messages:
        record = read_json(renders.s3, f"rejected/_messages/{message['MessageId']}.json")
        assert record["reason"] == "malformed_message"
        assert record["body"] == message["Body"]
        assert record["message"]


def test_malformed_message_without_output_bucket_goes_to_the_dlq_path(
    renders: RendersBucket, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN no OUTPUT_BUCKET (nowhere to write a record for a message that names no bucket)
    receive_all(renders.sqs, renders.queue_url)
    renders.sqs.send_message(QueueUrl=renders.queue_url, MessageBody="garbage")
    # WHEN handled
    response, messages = run_queue(renders, lambda_context)
    # THEN it is a batch item failure (retried, then kept by the DLQ), never silently dropped
    assert response == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}


def test_shard_bucket_and_output_bucket_settings_are_honoured(
    renders: RendersBucket, lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN shards meant for another bucket (the training data bucket) and records for a third
    renders.s3.create_bucket(Bucket="autostop-data-test")
    renders.s3.create_bucket(Bucket="autostop-records-test")
    monkeypatch.setenv("SHARD_BUCKET", "autostop-data-test")
    monkeypatch.setenv("OUTPUT_BUCKET", "autostop-records-test")
    monkeypatch.setenv("SHARD_PREFIX", "data/")
    upload(renders, "renders/elsewhere.tgz", good_batch())
    upload(renders, "renders/bad.tgz", b"not gzip")
    # WHEN handled
    response, _ = run_queue(renders, lambda_context)
    # THEN the shard is in the shard bucket, the record in the output bucket, nothing in the source bucket
    assert response == {"batchItemFailures": []}
    [key] = list_keys(renders.s3, "autostop-data-test")
    assert key.startswith("data/train/elsewhere-")
    [record] = list_keys(renders.s3, "autostop-records-test")
    assert record.startswith("rejected/bad-")
    assert list_keys(renders.s3, BUCKET) == ["renders/bad.tgz", "renders/elsewhere.tgz"]


def test_transient_fault_is_a_batch_item_failure(
    renders: RendersBucket, lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a queued notification, and S3 unreachable: its endpoint points at a closed port, one attempt
    upload(renders, "renders/later.tar.gz", good_batch())
    ok_messages = receive_all(renders.sqs, renders.queue_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{moto_server.free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    app.s3_client.cache_clear()
    # WHEN handled
    response = app.handler(lambda_event(ok_messages, renders.queue_arn), lambda_context)
    # THEN the notification is reported as failed (SQS will redeliver it) and the test event is not
    notification_id = next(message["MessageId"] for message in ok_messages if "Records" in message["Body"])
    assert response == {"batchItemFailures": [{"itemIdentifier": notification_id}]}
    # AND once S3 is back, the redelivered message succeeds
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    app.s3_client.cache_clear()
    assert app.handler(lambda_event(ok_messages, renders.queue_arn), lambda_context) == {
        "batchItemFailures": []
    }
    assert len(list_keys(renders.s3, BUCKET, "shards/")) == 1


def test_unknown_client_errors_fail_the_record_instead_of_rejecting(
    renders: RendersBucket, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a direct message naming a bucket that does not exist (NoSuchBucket: a configuration problem,
    # not bad data, so it must go to the DLQ and raise an alarm rather than be "rejected")
    receive_all(renders.sqs, renders.queue_url)
    renders.sqs.send_message(
        QueueUrl=renders.queue_url,
        MessageBody=json.dumps({"bucket": "no-such-bucket-here", "key": "renders/a.tar"}),
    )
    response, messages = run_queue(renders, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}


def test_invalid_environment_fails_loudly(
    renders: RendersBucket, lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload(renders, "renders/a.tgz", good_batch())
    monkeypatch.setenv("IMAGE_SIZE", "sixty-four")
    response, messages = run_queue(renders, lambda_context)
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    assert failed == {message["MessageId"] for message in messages}


def test_metrics_are_emitted_as_emf(
    renders: RendersBucket, lambda_context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a batch with one good and one bad design
    upload(
        renders,
        "renders/m.tar",
        archives.tar_bytes({**archives.design_files("g"), **archives.design_files("b", views=1)}),
    )
    capsys.readouterr()
    # WHEN handled
    run_queue(renders, lambda_context)
    # THEN EMF documents in namespace Autostop carry the counts, and one carries the reason dimension
    documents = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')
    ]
    assert documents, "no EMF output"
    namespaces = {d["_aws"]["CloudWatchMetrics"][0]["Namespace"] for d in documents}
    assert namespaces == {"Autostop"}

    def total(value: float | list[float]) -> float:  # EMF values are a number or a list of numbers
        return sum(value) if isinstance(value, list) else value

    main = next(d for d in documents if "DesignsWritten" in d)
    assert main["service"] == "transform-renders"
    assert total(main["DesignsWritten"]) == 1.0
    assert total(main["DesignsRejected"]) == 1.0
    assert total(main["MessagesReceived"]) == 2.0  # the s3:TestEvent and the notification
    assert total(main["BytesIn"]) > 0
    assert total(main["BytesOut"]) > 0
    assert total(main["DurationMs"]) > 0
    by_reason = [d for d in documents if d.get("reason") == "wrong_view_count"]
    assert by_reason
    assert total(by_reason[0]["DesignsRejected"]) == 1.0
    assert by_reason[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "reason"]]


def test_the_documented_sqs_event_fixture(renders: RendersBucket, lambda_context: FakeLambdaContext) -> None:
    # GIVEN tests/events/sqs_render_batches.json (an s3:TestEvent, a notification with a URL-encoded key,
    # a direct backfill message) and the two objects it names
    event = json.loads((EVENTS / "sqs_render_batches.json").read_text())
    bodies = [app.parse_message(record["body"]) for record in event["Records"]]
    assert [[ref.key for ref in refs] for refs in bodies] == [
        [],
        ["renders/2026-11/bracket batch+1 ü.tar.gz"],
        ["renders/backfill/old batch.zip"],
    ]
    upload(renders, "renders/2026-11/bracket batch+1 ü.tar.gz", good_batch())
    upload(renders, "renders/backfill/old batch.zip", archives.zip_bytes(archives.design_files("z1")))
    # WHEN the handler gets the event as it is
    response = app.handler(event, lambda_context)
    # THEN all three records succeed and both archives became shards
    assert response == {"batchItemFailures": []}
    assert [key.rsplit("-", 1)[0] for key in list_keys(renders.s3, BUCKET, "shards/")] == [
        "shards/train/2026-11/bracket batch+1 ü",
        "shards/train/backfill/old batch",
    ]


def test_parse_message_shapes() -> None:
    notification = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": "b"},
                    "object": {"key": "renders/a+b%2B.tar", "size": 5, "eTag": "e", "versionId": "v"},
                },
            },
            {
                "eventName": "ObjectRemoved:Delete",
                "s3": {"bucket": {"name": "b"}, "object": {"key": "renders/x.tar"}},
            },
            {
                "eventName": "ObjectRestore:Completed",
                "s3": {"bucket": {"name": "b"}, "object": {"key": "renders/y.tar"}},
            },
        ]
    }
    assert app.parse_message(json.dumps(notification)) == [
        app.ObjectRef(bucket="b", key="renders/a b+.tar", version_id="v", etag="e", size=5),
        app.ObjectRef(bucket="b", key="renders/x.tar"),
    ]
    assert app.parse_message(json.dumps({"bucket": "b", "key": "k+1 .zip", "version_id": "v2"})) == [
        app.ObjectRef(bucket="b", key="k+1 .zip", version_id="v2")
    ]
    for bad in [
        '{"bucket": "b"}',
        '{"bucket": "", "key": "k"}',
        '{"Records": {}}',
        '{"Records": []}',
        '{"bucket": "b", "key": "k", "version_id": 3}',
    ]:
        with pytest.raises(app.MalformedMessage):
            app.parse_message(bad)


def test_settings_read_every_bound() -> None:
    settings = app.Settings.from_environment(
        {
            "OUTPUT_BUCKET": "out",
            "SHARD_PREFIX": "s/",
            "REJECT_PREFIX": "r/",
            "IMAGE_SIZE": "32",
            "NUM_VIEWS": "6",
            "MAX_ARCHIVE_BYTES": "1",
            "MAX_EXPANDED_BYTES": "2",
            "MAX_MEMBERS": "3",
            "MAX_MEMBER_BYTES": "4",
            "MAX_IMAGE_PIXELS": "5",
        }
    )
    assert (settings.output_bucket, settings.shard_prefix, settings.reject_prefix) == ("out", "s/", "r/")
    assert (settings.config.image_size, settings.config.num_views) == (32, 6)
    limits = settings.config.limits
    assert (limits.max_archive_bytes, limits.max_expanded_bytes, limits.max_members) == (1, 2, 3)
    assert (limits.max_member_bytes, limits.max_image_pixels) == (4, 5)
    assert app.Settings.from_environment({}).output_bucket is None


def test_handler_uses_boto3_default_session_not_a_hard_coded_endpoint(renders: RendersBucket) -> None:
    # The client follows AWS_ENDPOINT_URL like any botocore client would (so Lambda gets real S3).
    assert app.s3_client().meta.endpoint_url == boto3.client("s3").meta.endpoint_url
