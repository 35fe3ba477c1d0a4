"""Output keys and rejection records: deterministic, collision-free, and complete."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lambdas.transform_renders import layout
from lambdas.transform_renders.transform import BatchResult, Reason, Rejection
from tests.lambdas.transform_renders import archives

SOURCE = layout.SourceObject(bucket="renders-bucket", key="renders/2026/batch 01.tar.gz", etag="0123abcd")
KEY_PATTERN = re.compile(r"shards/2026/batch 01-[0-9a-f]{16}\.tfrecord")


def test_shard_key_strips_the_prefix_and_suffix_and_adds_a_content_hash() -> None:
    assert KEY_PATTERN.fullmatch(layout.shard_key(SOURCE, shard_prefix="shards/"))


def test_shard_key_is_deterministic_and_changes_with_the_etag() -> None:
    # GIVEN the same source twice, then the same key with other content
    again = layout.SourceObject(bucket="other-bucket", key=SOURCE.key, etag="0123abcd", version_id="v9")
    changed = layout.SourceObject(bucket=SOURCE.bucket, key=SOURCE.key, etag="ffff0000")
    # THEN a redelivery maps to the same key (bucket and version id do not matter when the ETag is known),
    # and new content to a new key
    assert layout.shard_key(again, shard_prefix="shards/") == layout.shard_key(SOURCE, shard_prefix="shards/")
    assert layout.shard_key(changed, shard_prefix="shards/") != layout.shard_key(
        SOURCE, shard_prefix="shards/"
    )


def test_version_id_identifies_the_content_when_there_is_no_etag() -> None:
    first = layout.SourceObject(key="renders/a.zip", etag="", version_id="v1")
    second = layout.SourceObject(key="renders/a.zip", etag="", version_id="v2")
    assert layout.batch_token(first) != layout.batch_token(second)


def test_keys_outside_renders_keep_their_path_and_long_keys_stay_under_the_s3_limit() -> None:
    outside = layout.SourceObject(key="backfill/x.tar", etag="e")
    assert layout.shard_key(outside, shard_prefix="shards/").startswith("shards/backfill/x-")
    long_key = "renders/" + "ü" * 600 + ".zip"
    key = layout.shard_key(layout.SourceObject(key=long_key, etag="e"), shard_prefix="shards/")
    assert len(key.encode()) <= 1024
    assert key.endswith(".tfrecord")


def test_etags_are_normalized() -> None:
    assert layout.normalize_etag('"abc"') == "abc"
    assert layout.normalize_etag(None) == ""


@pytest.mark.parametrize(
    ("rejection", "expected_name"),
    [
        (Rejection(Reason.CORRUPT_ARCHIVE, "m"), "_batch.json"),
        (Rejection(Reason.WRONG_VIEW_COUNT, "m", design_id="gear-1"), "gear-1.json"),
        (Rejection(Reason.INVALID_DESIGN_ID, "m", design_id="../x"), None),
        (Rejection(Reason.STRAY_MEMBER, "m", member="README"), None),
    ],
)
def test_rejection_keys(rejection: Rejection, expected_name: str | None) -> None:
    key = layout.rejection_key(SOURCE, rejection, reject_prefix="rejected/")
    folder = f"rejected/{layout.batch_token(SOURCE)}/"
    assert key.startswith(folder)
    name = key[len(folder) :]
    if expected_name:
        assert name == expected_name
    else:
        # Invalid ids and stray members are hashed: no path tricks, and "_" never starts a valid design id.
        assert re.fullmatch(r"_(design|member)-[0-9a-f]{16}\.json", name)


def test_message_rejection_keys_are_sanitized() -> None:
    assert (
        layout.message_rejection_key("ab/../c d", reject_prefix="rejected/")
        == "rejected/_messages/ab_.._c_d.json"
    )


def test_plan_outputs_writes_a_shard_and_one_record_per_rejection() -> None:
    # GIVEN a batch with one good design, one bad design and a stray file
    files = {
        **archives.design_files("good"),
        **archives.design_files("bad", views=3),
        "stray.txt": b"x",
    }
    result = archives.transform_files(files)
    # WHEN its outputs are planned
    outputs = layout.plan_outputs(SOURCE, result, shard_prefix="shards/", reject_prefix="rejected/")
    # THEN there is one shard and two rejection records pointing at it
    keys = [output.key for output in outputs.objects]
    assert keys[0] == outputs.shard_key
    assert KEY_PATTERN.fullmatch(keys[0])
    assert outputs.designs_written == 1
    documents = [json.loads(output.body) for output in outputs.objects[1:]]
    assert sorted((document["reason"], document["design_id"]) for document in documents) == [
        ("stray_member", None),
        ("wrong_view_count", "bad"),
    ]
    bad = next(document for document in documents if document["design_id"] == "bad")
    assert bad == {
        "schema": layout.REJECTION_SCHEMA,
        "reason": "wrong_view_count",
        "message": "design has 3 views, expected 12",
        "design_id": "bad",
        "member": None,
        "source": {"bucket": "renders-bucket", "key": SOURCE.key, "etag": "0123abcd", "version_id": None},
        "shard_key": outputs.shard_key,
    }
    assert outputs.bytes_out == sum(len(output.body) for output in outputs.objects)


def test_a_batch_without_good_designs_writes_no_shard() -> None:
    result = BatchResult(designs=(), rejections=(Rejection(Reason.NO_DESIGNS, "empty"),))
    outputs = layout.plan_outputs(SOURCE, result, shard_prefix="shards/", reject_prefix="rejected/")
    assert outputs.shard_key is None
    assert [output.key.rsplit("/", 1)[-1] for output in outputs.objects] == ["_batch.json"]


def test_malformed_message_record_keeps_the_body() -> None:
    output = layout.message_rejection("m-1", "x" * 20_000, "body is not JSON", reject_prefix="rejected/")
    document = json.loads(output.body)
    assert output.key == "rejected/_messages/m-1.json"
    assert document["reason"] == "malformed_message"
    assert document["body"] == "x" * layout.MAX_BODY_EXCERPT
    assert document["body_truncated"] is True


def test_every_reason_code_is_documented() -> None:
    # GIVEN docs/data-format.md, the reference for people reading rejection records
    document = (Path(__file__).resolve().parents[3] / "docs" / "data-format.md").read_text()
    # THEN every reason code has its row in a reason table
    missing = [reason.value for reason in Reason if f"| `{reason.value}` |" not in document]
    assert missing == []
