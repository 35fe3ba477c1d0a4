"""The adapter keeps one shard per source key and split, in line with the key's newest object, and gives
records back before the invocation runs out of time. Against moto's S3 and SQS over HTTP, as test_app.py.

The only stand-ins: a Lambda context whose remaining time is an injected clock (no Lambda runtime exists
here), and, to reproduce a race at a chosen point, a wrapper around the handler's S3 client ``get_object``
that runs the other worker's step right after the first read -- the calls themselves go to moto.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from lambdas.transform_renders import app, layout, transform
from tests.lambdas.transform_renders import archives, example_proto
from tests.lambdas.transform_renders.conftest import (
    BUCKET,
    ClockedLambdaContext,
    FakeLambdaContext,
    RendersBucket,
    lambda_event,
    receive_all,
)


def upload(renders: RendersBucket, key: str, data: bytes) -> None:
    renders.s3.put_object(Bucket=renders.bucket, Key=key, Body=data)


def batch(*design_ids: str) -> bytes:
    files: dict[str, bytes] = {}
    for index, design_id in enumerate(design_ids):
        files.update(archives.design_files(design_id, seed=index))
    return archives.tar_bytes(files)


def list_keys(s3: Any, prefix: str) -> list[str]:
    response = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for item in response.get("Contents", []))


def designs_under(s3: Any, prefix: str) -> dict[str, list[str]]:
    """Shard key -> the design ids it holds, for every shard under ``prefix``."""
    return {
        key: [
            design["design_id"]
            for design in example_proto.designs_in_shard(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        ]
        for key in list_keys(s3, prefix)
    }


def handle_queue(renders: RendersBucket, context: FakeLambdaContext) -> dict[str, Any]:
    return app.handler(lambda_event(receive_all(renders.sqs, renders.queue_url), renders.queue_arn), context)


def ids_in(split: str, count: int, fraction: float) -> list[str]:
    """The first ``count`` design ids ``d-N`` that the split function puts in ``split``."""
    found = [f"d-{n}" for n in range(1000) if layout.design_split(f"d-{n}", fraction) == split]
    return found[:count]


# ------------------------------------------------------------------------------------------ re-uploads


def test_a_re_upload_replaces_the_shard_instead_of_adding_one(
    renders: RendersBucket, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a batch processed once
    key = "renders/day-1/batch.tar"
    upload(renders, key, batch("a-1", "a-2"))
    handle_queue(renders, lambda_context)
    # WHEN different bytes are uploaded to the same key and processed
    upload(renders, key, batch("a-2", "a-3"))
    response = handle_queue(renders, lambda_context)
    # THEN there is still one shard for the key, holding exactly the new upload's designs
    assert response == {"batchItemFailures": []}
    assert designs_under(renders.s3, "shards/") == {
        layout.shard_key(key, layout.TRAIN, shard_prefix="shards/"): ["a-2", "a-3"]
    }


def test_a_split_the_new_upload_no_longer_has_is_removed(
    renders: RendersBucket, lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN half of the designs held out, and a first upload with designs on both sides
    monkeypatch.setenv("VALIDATION_FRACTION", "0.5")
    train_ids, validation_ids = ids_in(layout.TRAIN, 2, 0.5), ids_in(layout.VALIDATION, 1, 0.5)
    key = "renders/split.tar"
    upload(renders, key, batch(*train_ids, *validation_ids))
    handle_queue(renders, lambda_context)
    first = designs_under(renders.s3, "shards/")
    assert first == {
        layout.shard_key(key, layout.TRAIN, shard_prefix="shards/"): train_ids,
        layout.shard_key(key, layout.VALIDATION, shard_prefix="shards/"): validation_ids,
    }
    # WHEN the re-upload holds training designs only
    upload(renders, key, batch(*train_ids[:1]))
    handle_queue(renders, lambda_context)
    # THEN the validation shard of the key is gone and the training shard holds the new designs
    assert designs_under(renders.s3, "shards/") == {
        layout.shard_key(key, layout.TRAIN, shard_prefix="shards/"): train_ids[:1]
    }


def test_a_late_message_about_an_older_upload_keeps_the_newest_shard(
    renders: RendersBucket, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN two uploads of one key, each notified, the second processed first (out-of-order delivery)
    key = "renders/late.tar"
    upload(renders, key, batch("old-1"))
    old_messages = receive_all(renders.sqs, renders.queue_url)
    upload(renders, key, batch("new-1"))
    handle_queue(renders, lambda_context)
    # WHEN the first upload's notification arrives afterwards
    response = app.handler(lambda_event(old_messages, renders.queue_arn), lambda_context)
    # THEN it is acknowledged and the shard still holds the newest upload's designs
    assert response == {"batchItemFailures": []}
    assert list(designs_under(renders.s3, "shards/").values()) == [["new-1"]]


def test_a_shard_written_from_a_newer_upload_is_never_overwritten(
    renders: RendersBucket, lambda_context: FakeLambdaContext
) -> None:
    # GIVEN a shard that says it was made from an upload newer than the object this worker will read
    key = "renders/guarded.tar"
    upload(renders, key, batch("current-1"))
    shard = layout.shard_key(key, layout.TRAIN, shard_prefix="shards/")
    renders.s3.put_object(
        Bucket=BUCKET, Key=shard, Body=b"newer", Metadata={app.SOURCE_LAST_MODIFIED: "2999-01-01T00:00:00Z"}
    )
    # WHEN the notification is handled
    response = handle_queue(renders, lambda_context)
    # THEN it is acknowledged and the newer shard is left as it was
    assert response == {"batchItemFailures": []}
    assert renders.s3.get_object(Bucket=BUCKET, Key=shard)["Body"].read() == b"newer"


def test_an_upload_during_processing_makes_the_stale_worker_retry_and_converge(
    renders: RendersBucket, lambda_context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN worker A reads version 1; right after its read, version 2 is uploaded and worker B processes it
    key = "renders/race.tar"
    upload(renders, key, batch("v1-design"))
    first_messages = receive_all(renders.sqs, renders.queue_url)
    client = app.s3_client()
    real_get_object = client.get_object
    raced: list[bool] = []

    def get_object_then_race(**kwargs: Any) -> Any:
        response = real_get_object(**kwargs)
        if not raced:
            raced.append(True)
            upload(renders, key, batch("v2-design"))
            assert handle_queue(renders, lambda_context) == {"batchItemFailures": []}  # worker B
        return response

    monkeypatch.setattr(client, "get_object", get_object_then_race)
    # WHEN worker A finishes with the version it read
    notification = next(message for message in first_messages if "Records" in message["Body"])
    response = app.handler(lambda_event([notification], renders.queue_arn), lambda_context)
    # THEN A's record fails (it saw the source change), so SQS redelivers it
    assert response == {"batchItemFailures": [{"itemIdentifier": notification["MessageId"]}]}
    # AND the redelivery leaves the newest version's shard, whatever A wrote in between
    assert app.handler(lambda_event([notification], renders.queue_arn), lambda_context) == {
        "batchItemFailures": []
    }
    assert list(designs_under(renders.s3, "shards/").values()) == [["v2-design"]]


# ----------------------------------------------------------------------------------------- time left


def test_records_are_given_back_before_the_invocation_runs_out_of_time(
    renders: RendersBucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a batch of three records; reading the second archive takes most of the time that is left
    monkeypatch.setenv("RECORD_TIME_RESERVE_MS", "30000")
    context = ClockedLambdaContext(remaining_ms=[100_000])
    keys = ["renders/1-fast.tar", "renders/2-slow.tar", "renders/3-fast.tar"]
    for index, key in enumerate(keys):
        upload(renders, key, batch(f"design-{index}"))
    messages = {
        urllib.parse.unquote_plus(json.loads(message["Body"])["Records"][0]["s3"]["object"]["key"]): message
        for message in receive_all(renders.sqs, renders.queue_url)
        if "Records" in message["Body"]
    }
    ordered = [messages[key] for key in keys]
    client = app.s3_client()
    real_get_object = client.get_object
    read: list[str] = []

    def get_object_on_the_clock(**kwargs: Any) -> Any:
        read.append(kwargs["Key"])
        if kwargs["Key"] == keys[1]:
            context.advance(80_000)
        return real_get_object(**kwargs)

    monkeypatch.setattr(client, "get_object", get_object_on_the_clock)
    # WHEN the handler gets the batch
    response = app.handler(lambda_event(ordered, renders.queue_arn), context)
    # THEN the first record is done; the slow one stops before its first design and the third is never
    # started: both are batch item failures, returned while time was left
    assert response == {
        "batchItemFailures": [{"itemIdentifier": message["MessageId"]} for message in ordered[1:]]
    }
    assert read == keys[:2]
    assert context.get_remaining_time_in_millis() > 0
    assert list(designs_under(renders.s3, "shards/").values()) == [["design-0"]]
    # AND retried in a fresh invocation, both succeed
    retried = app.handler(lambda_event(ordered[1:], renders.queue_arn), ClockedLambdaContext())
    assert retried == {"batchItemFailures": []}
    assert sorted(ids for ids in designs_under(renders.s3, "shards/").values()) == [
        ["design-0"],
        ["design-1"],
        ["design-2"],
    ]


# --------------------------------------------------------------------------------------------- limits


def test_limits_follow_the_memory_setting_and_single_limits_can_be_overridden() -> None:
    # GIVEN the memory size the construct sets, once alone and once with one limit overridden
    doubled = app.Settings.from_environment({"MEMORY_MB": "2048"}).config.limits
    overridden = app.Settings.from_environment({"MEMORY_MB": "2048", "MAX_MEMBERS": "7"}).config.limits
    # THEN every limit is the memory-derived one, except the overridden limit
    assert doubled == transform.Limits.for_memory(2048)
    assert doubled.max_archive_bytes == 2 * transform.Limits().max_archive_bytes
    assert overridden == transform.Limits(**{**vars(doubled), "max_members": 7})
    assert app.Settings.from_environment({}).config.limits == transform.Limits.for_memory(1024)


@pytest.mark.parametrize(
    "environment",
    [
        {"MEMORY_MB": "64"},
        {"VALIDATION_FRACTION": "1"},
        {"VALIDATION_FRACTION": "x"},
        {"RECORD_TIME_RESERVE_MS": "-1"},
    ],
)
def test_invalid_settings_are_refused(environment: dict[str, str]) -> None:
    with pytest.raises(
        ValueError, match=next(iter(environment)) if "MEMORY" not in str(environment) else "memory"
    ):
        app.Settings.from_environment(environment)
