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
KEY_PATTERN = re.compile(r"shards/(train|validation)/2026/batch 01-[0-9a-f]{16}\.tfrecord")


def test_shard_key_strips_the_prefix_and_suffix_and_names_the_split() -> None:
    assert KEY_PATTERN.fullmatch(layout.shard_key(SOURCE.key, layout.TRAIN, shard_prefix="shards/"))
    assert layout.shard_keys(SOURCE.key, shard_prefix="shards/") == tuple(
        layout.shard_key(SOURCE.key, split, shard_prefix="shards/") for split in ("train", "validation")
    )
    with pytest.raises(ValueError, match="split"):
        layout.shard_key(SOURCE.key, "test", shard_prefix="shards/")


def test_shard_key_depends_on_the_source_key_alone() -> None:
    # GIVEN the same key, uploaded again with other bytes; and two keys differing only by archive kind
    shard = layout.shard_key(SOURCE.key, layout.TRAIN, shard_prefix="shards/")
    # THEN every upload of a key maps to the same shard (replaced, never added), other keys to others
    assert layout.shard_token(SOURCE.key) == layout.shard_token("renders/2026/batch 01.tar.gz")
    assert layout.shard_key("renders/a.tar", "train", shard_prefix="s/") != layout.shard_key(
        "renders/a.zip", "train", shard_prefix="s/"
    )
    assert shard.startswith("shards/train/2026/batch 01-")


def test_rejection_records_are_named_per_uploaded_version() -> None:
    changed = layout.SourceObject(bucket=SOURCE.bucket, key=SOURCE.key, etag="ffff0000")
    assert layout.batch_token(changed) != layout.batch_token(SOURCE)


def test_version_id_identifies_the_content_when_there_is_no_etag() -> None:
    first = layout.SourceObject(key="renders/a.zip", etag="", version_id="v1")
    second = layout.SourceObject(key="renders/a.zip", etag="", version_id="v2")
    assert layout.batch_token(first) != layout.batch_token(second)


def test_keys_outside_renders_keep_their_path_and_long_keys_stay_under_the_s3_limit() -> None:
    assert layout.shard_key("backfill/x.tar", "train", shard_prefix="shards/").startswith(
        "shards/train/backfill/x-"
    )
    long_key = "renders/" + "ü" * 600 + ".zip"
    key = layout.shard_key(long_key, layout.VALIDATION, shard_prefix="shards/")
    assert len(key.encode()) <= 1024
    assert key.endswith(".tfrecord")


def test_design_split_is_a_stable_function_of_the_id_with_the_asked_share() -> None:
    # GIVEN 10,000 design ids
    ids = [f"design-{number}" for number in range(10_000)]
    # THEN about 10% go to validation at 0.1 (a binomial count: 1,000 +- 4.5 standard deviations),
    # none at 0, and each id's side never changes between calls
    held_out = [design_id for design_id in ids if layout.design_split(design_id, 0.1) == layout.VALIDATION]
    assert 865 <= len(held_out) <= 1135
    assert all(layout.design_split(design_id, 0.0) == layout.TRAIN for design_id in ids)
    assert held_out == [design_id for design_id in ids if layout.design_split(design_id, 0.1) == "validation"]
    # AND a larger fraction only moves designs from train to validation, never back
    assert set(held_out) <= {
        design_id for design_id in ids if layout.design_split(design_id, 0.3) == "validation"
    }
    with pytest.raises(ValueError, match="validation_fraction"):
        layout.design_split("x", 1.0)


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


def test_plan_outputs_writes_a_shard_per_split_and_one_record_per_rejection() -> None:
    # GIVEN a batch with a good design on each side of the split, one bad design and a stray file
    train_id = next(f"t{n}" for n in range(100) if layout.design_split(f"t{n}", 0.5) == layout.TRAIN)
    validation_id = next(
        f"v{n}" for n in range(100) if layout.design_split(f"v{n}", 0.5) == layout.VALIDATION
    )
    files = {
        **archives.design_files(train_id),
        **archives.design_files(validation_id),
        **archives.design_files("bad", views=3),
        "stray.txt": b"x",
    }
    result = archives.transform_files(files)
    # WHEN its outputs are planned
    outputs = layout.plan_outputs(
        SOURCE, result, shard_prefix="shards/", reject_prefix="rejected/", validation_fraction=0.5
    )
    # THEN there is one shard per split, nothing to remove, and two rejection records naming both shards
    assert outputs.shard_keys == layout.shard_keys(SOURCE.key, shard_prefix="shards/")
    assert outputs.removed_shard_keys == ()
    assert outputs.designs_written == 2
    documents = [json.loads(output.body) for output in outputs.records]
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
        "shard_keys": list(outputs.shard_keys),
    }
    assert outputs.objects == (*outputs.shards, *outputs.records)
    assert outputs.bytes_out == sum(len(output.body) for output in outputs.objects)


def test_a_split_without_designs_is_removed() -> None:
    result = archives.transform_files(archives.design_files("only"))
    outputs = layout.plan_outputs(
        SOURCE, result, shard_prefix="shards/", reject_prefix="rejected/", validation_fraction=0.0
    )
    assert outputs.shard_keys == (layout.shard_key(SOURCE.key, layout.TRAIN, shard_prefix="shards/"),)
    assert outputs.removed_shard_keys == (
        layout.shard_key(SOURCE.key, layout.VALIDATION, shard_prefix="shards/"),
    )


def test_a_batch_without_good_designs_writes_no_shard_and_removes_both() -> None:
    result = BatchResult(designs=(), rejections=(Rejection(Reason.NO_DESIGNS, "empty"),))
    outputs = layout.plan_outputs(SOURCE, result, shard_prefix="shards/", reject_prefix="rejected/")
    assert outputs.shards == ()
    assert outputs.removed_shard_keys == layout.shard_keys(SOURCE.key, shard_prefix="shards/")
    assert [output.key.rsplit("/", 1)[-1] for output in outputs.objects] == ["_batch.json"]
    gone = layout.removed_batch(SOURCE.key, shard_prefix="shards/")
    assert (gone.objects, gone.removed_shard_keys) == (
        (),
        layout.shard_keys(SOURCE.key, shard_prefix="shards/"),
    )


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
