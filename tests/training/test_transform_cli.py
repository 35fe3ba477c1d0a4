"""``autostop transform local`` (same core, same layout as the Lambda) and ``submit`` (backfill to SQS).

``submit`` runs against a moto server over HTTP. Two tests wrap the real SQS client to make SQS report
failed entries (moto never fails a valid entry): that wrapper is the only double, and it says so.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdas.transform_renders import app, layout
from tests.lambdas.transform_renders import archives, example_proto
from tests.lambdas.transform_renders.conftest import FakeLambdaContext, lambda_event, receive_all
from training import cli, transform_cli

BUCKET = "autostop-backfill-test"


def files_under(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


@pytest.fixture
def render_folder(tmp_path: Path) -> Path:
    """renders/ with a good tar.gz, a zip holding one good and one bad design, a corrupt .tgz, and noise."""
    root = tmp_path / "in"
    (root / "renders" / "day 1").mkdir(parents=True)
    (root / "renders" / "day 1" / "a.tar.gz").write_bytes(
        archives.tar_bytes(archives.design_files("a1", seed=1), compressed=True)
    )
    mixed = {**archives.design_files("b1", seed=2), **archives.design_files("b2", views=3)}
    (root / "renders" / "b.zip").write_bytes(archives.zip_bytes(mixed))
    (root / "renders" / "c.tgz").write_bytes(b"not gzip")
    (root / "renders" / "notes.txt").write_text("not an archive")
    return root


def test_local_writes_shards_and_rejections_in_the_lambda_layout(
    render_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a folder of render batches
    output = tmp_path / "out"
    # WHEN transformed locally, every design held out
    exit_code = cli.main(
        ["transform", "local", str(render_folder), str(output), "--validation-fraction", "0"]
    )
    # THEN it succeeds and writes one training shard per batch with a good design, one record per rejection
    assert exit_code == 0

    def source(relative: str) -> layout.SourceObject:
        data = (render_folder / relative).read_bytes()
        return layout.SourceObject(key=relative, etag=hashlib.md5(data, usedforsecurity=False).hexdigest())

    a, b, c = source("renders/day 1/a.tar.gz"), source("renders/b.zip"), source("renders/c.tgz")
    assert files_under(output) == sorted(
        [
            layout.shard_key(a.key, layout.TRAIN, shard_prefix="shards/"),
            layout.shard_key(b.key, layout.TRAIN, shard_prefix="shards/"),
            f"rejected/{layout.batch_token(b)}/b2.json",
            f"rejected/{layout.batch_token(c)}/_batch.json",
        ]
    )
    # AND the keys are the ones the Lambda would write for the same files uploaded under the same keys
    assert layout.shard_key(a.key, layout.TRAIN, shard_prefix="shards/").startswith("shards/train/day 1/a-")
    shard = (output / layout.shard_key(b.key, layout.TRAIN, shard_prefix="shards/")).read_bytes()
    assert [design["design_id"] for design in example_proto.designs_in_shard(shard)] == ["b1"]
    record = json.loads((output / f"rejected/{layout.batch_token(c)}/_batch.json").read_text())
    assert record["reason"] == "corrupt_archive"
    # AND a summary is printed
    summary = capsys.readouterr().out
    assert "3 archive(s)" in summary
    assert "1 other file(s) skipped" in summary
    assert "2 design(s) in 2 shard(s)" in summary
    assert "rejected corrupt_archive: 1" in summary


def test_local_splits_designs_into_train_and_validation_as_the_lambda_does(tmp_path: Path) -> None:
    # GIVEN one batch of 40 designs
    files: dict[str, bytes] = {}
    for number in range(40):
        files.update(archives.design_files(f"d{number}", views=2, seed=number))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "many.tar").write_bytes(archives.tar_bytes(files))
    # WHEN transformed with a quarter held out
    arguments = ["--num-views", "2", "--validation-fraction", "0.25"]
    assert cli.main(["transform", "local", str(tmp_path / "in"), str(tmp_path / "out"), *arguments]) == 0
    # THEN each design is in the split layout.design_split names, once
    found = {
        split: [
            design["design_id"]
            for shard in sorted((tmp_path / "out" / "shards" / split).glob("*.tfrecord"))
            for design in example_proto.designs_in_shard(shard.read_bytes())
        ]
        for split in layout.SPLITS
    }
    expected = {
        split: sorted(f"d{n}" for n in range(40) if layout.design_split(f"d{n}", 0.25) == split)
        for split in layout.SPLITS
    }
    assert {split: sorted(ids) for split, ids in found.items()} == expected
    assert expected["validation"]
    assert expected["train"]


def test_local_is_idempotent(render_folder: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    assert cli.main(["transform", "local", str(render_folder), str(output)]) == 0
    first = {name: (output / name).read_bytes() for name in files_under(output)}
    assert cli.main(["transform", "local", str(render_folder), str(output)]) == 0
    assert {name: (output / name).read_bytes() for name in files_under(output)} == first


def test_local_replaces_the_shards_of_a_changed_archive(tmp_path: Path) -> None:
    # GIVEN a batch transformed once, then replaced by a batch with other designs under the same name
    (tmp_path / "in").mkdir()
    archive = tmp_path / "in" / "x.tar"
    archive.write_bytes(archives.tar_bytes(archives.design_files("first", views=2)))
    arguments = [
        str(tmp_path / "in"),
        str(tmp_path / "out"),
        "--num-views",
        "2",
        "--validation-fraction",
        "0",
    ]
    assert cli.main(["transform", "local", *arguments]) == 0
    archive.write_bytes(archives.tar_bytes(archives.design_files("second", views=2)))
    # WHEN transformed again
    assert cli.main(["transform", "local", *arguments]) == 0
    # THEN the one shard holds the new designs only
    [shard] = (tmp_path / "out" / "shards").rglob("*.tfrecord")
    assert [design["design_id"] for design in example_proto.designs_in_shard(shard.read_bytes())] == [
        "second"
    ]


@pytest.mark.parametrize("content", ["nothing", "rejected only"])
def test_local_writing_no_design_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    # GIVEN a folder without archives, or whose only archive is rejected
    (tmp_path / "in").mkdir()
    if content == "rejected only":
        (tmp_path / "in" / "bad.tar").write_bytes(b"not a tar")
    # WHEN transformed
    exit_code = cli.main(["transform", "local", str(tmp_path / "in"), str(tmp_path / "out")])
    # THEN the exit status is 1 and stderr holds one error line saying why
    assert exit_code == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("error: no design written: ")
    assert ("no archive" in line) == (content == "nothing")


def test_local_honours_size_and_view_count(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.tar").write_bytes(archives.tar_bytes(archives.design_files("x", views=4)))
    assert (
        cli.main(
            [
                "transform",
                "local",
                str(tmp_path / "in"),
                str(tmp_path / "out"),
                "--image-size",
                "32",
                "--num-views",
                "4",
            ]
        )
        == 0
    )
    [shard] = (tmp_path / "out" / "shards").rglob("*.tfrecord")
    [design] = example_proto.designs_in_shard(shard.read_bytes())
    assert design["views"].shape == (4, 32, 32)


def test_write_shards_writes_one_shard_per_batch_and_refuses_any_rejection(tmp_path: Path) -> None:
    # GIVEN two good batches and one holding a design with too few views
    (tmp_path / "in").mkdir()
    good = [tmp_path / "in" / "x.tar", tmp_path / "in" / "y.tar.gz"]
    good[0].write_bytes(archives.tar_bytes(archives.design_files("x", views=4)))
    good[1].write_bytes(archives.tar_bytes(archives.design_files("y", views=4), compressed=True))
    bad = tmp_path / "in" / "z.tar"
    bad.write_bytes(archives.tar_bytes(archives.design_files("z", views=3)))
    # WHEN the good ones are written as shards
    designs = transform_cli.write_shards(good, tmp_path / "shards", image_size=32, num_views=4)
    # THEN one shard per batch, named after it, holding its design; the designs come back in order
    assert [design.design_id for design in designs] == ["x", "y"]
    assert sorted(path.name for path in (tmp_path / "shards").iterdir()) == ["x.tfrecord", "y.tfrecord"]
    [design] = example_proto.designs_in_shard((tmp_path / "shards" / "y.tfrecord").read_bytes())
    assert design["views"].shape == (4, 32, 32)
    # AND a batch with a rejected design is an error naming the batch and the reason, not a silent drop
    with pytest.raises(ValueError, match=r"z\.tar: the transformer rejected designs:.*wrong_view_count"):
        transform_cli.write_shards([bad], tmp_path / "more", image_size=32, num_views=4)


def test_local_refuses_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["transform", "local", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_parse_s3_uri() -> None:
    assert transform_cli.parse_s3_uri("s3://bucket/renders/2026/") == ("bucket", "renders/2026/")
    assert transform_cli.parse_s3_uri("s3://bucket") == ("bucket", "")
    for bad in ["bucket/renders", "https://bucket/x", "s3:///x"]:
        with pytest.raises(ValueError, match="s3://"):
            transform_cli.parse_s3_uri(bad)


# ------------------------------------------------------------------------------------------- submit


@pytest.fixture
def backfill(moto_endpoint: str) -> dict[str, Any]:
    """23 archives under renders/old/, 2 other objects there, 1 archive elsewhere; an empty queue."""
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    s3.create_bucket(Bucket=BUCKET)
    keys = [f"renders/old/batch {index:02d}.{['tar', 'zip', 'tgz'][index % 3]}" for index in range(23)]
    for index, key in enumerate(keys):
        kind = key.rsplit(".", 1)[-1]
        s3.put_object(
            Bucket=BUCKET,
            Key=key,
            Body=archives.archive_bytes(archives.design_files(f"d{index}", views=2), kind),
        )
    s3.put_object(Bucket=BUCKET, Key="renders/old/readme.md", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="renders/old/preview.png", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="elsewhere/batch.tar", Body=b"x")
    queue_url = sqs.create_queue(QueueName="render-batches")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return {"s3": s3, "sqs": sqs, "keys": keys, "queue_url": queue_url, "queue_arn": queue_arn}


def test_submit_enqueues_every_archive_once(
    backfill: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 23 archives under renders/old/
    # WHEN submitted
    exit_code = cli.main(
        [
            "transform",
            "submit",
            f"s3://{BUCKET}/renders/old/",
            "--queue-url",
            backfill["queue_url"],
            "--no-progress",
        ]
    )
    # THEN each archive is in the queue exactly once as a direct job message, in 3 calls of <= 10
    assert exit_code == 0
    bodies = [json.loads(message["Body"]) for message in receive_all(backfill["sqs"], backfill["queue_url"])]
    assert sorted(body["key"] for body in bodies) == sorted(backfill["keys"])
    assert {body["bucket"] for body in bodies} == {BUCKET}
    summary = capsys.readouterr().out
    assert "23 archive(s) found, 2 other object(s) skipped" in summary
    assert "23 enqueued in 3 SendMessageBatch call(s)" in summary
    assert "0 failed" in summary


def test_submitted_messages_are_processed_by_the_lambda(
    backfill: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the backfill enqueued, and the Lambda configured for 2 views per design
    assert (
        cli.main(
            [
                "transform",
                "submit",
                f"s3://{BUCKET}/renders/",
                "--queue-url",
                backfill["queue_url"],
                "--no-progress",
            ]
        )
        == 0
    )
    monkeypatch.setenv("NUM_VIEWS", "2")
    app.s3_client.cache_clear()
    # WHEN the handler consumes the queue
    messages = receive_all(backfill["sqs"], backfill["queue_url"])
    failures = []
    for start in range(0, len(messages), 10):
        event = lambda_event(messages[start : start + 10], backfill["queue_arn"])
        failures += app.handler(event, FakeLambdaContext())["batchItemFailures"]
    # THEN every archive became a shard
    assert failures == []
    shards = backfill["s3"].list_objects_v2(Bucket=BUCKET, Prefix="shards/").get("KeyCount")
    assert shards == 23
    app.s3_client.cache_clear()


class FlakySqs:
    """Wraps the real SQS client: its first ``flaky_calls`` SendMessageBatch calls report every odd entry as
    failed (SenderFault false, as SQS does when it is overloaded) without sending it; ``always_fail`` keys
    fail every time."""

    def __init__(self, sqs: Any, *, flaky_calls: int, always_fail: frozenset[str] = frozenset()) -> None:
        self.sqs = sqs
        self.flaky_calls = flaky_calls
        self.always_fail = always_fail
        self.calls: list[int] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls.append(len(Entries))
        failing = [
            entry
            for position, entry in enumerate(Entries)
            if json.loads(entry["MessageBody"])["key"] in self.always_fail
            or (len(self.calls) <= self.flaky_calls and position % 2 == 1)
        ]
        sent = [entry for entry in Entries if entry not in failing]
        response: dict[str, Any] = {"Successful": [], "Failed": []}
        if sent:
            response = self.sqs.send_message_batch(QueueUrl=QueueUrl, Entries=sent)
            response.setdefault("Failed", [])
        response["Failed"] += [
            {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
            for entry in failing
        ]
        return response


def test_failed_entries_are_retried_until_sent(backfill: dict[str, Any]) -> None:
    # GIVEN SQS failing half of the entries of its first call
    flaky = FlakySqs(backfill["sqs"], flaky_calls=1)
    sleeps: list[float] = []
    progress: list[int] = []
    # WHEN 23 keys are enqueued
    result = transform_cli.enqueue(
        flaky,
        backfill["queue_url"],
        BUCKET,
        backfill["keys"],
        sleep=sleeps.append,
        on_progress=progress.append,
    )
    # THEN all are sent exactly once, no call carried more than 10 entries, retries backed off
    assert (result.enqueued, result.failed) == (23, [])
    assert max(flaky.calls) <= 10
    assert flaky.calls == [10, 5, 10, 3]  # chunk 1, its 5 failed entries again, chunks 2 and 3
    assert result.retried_entries == 5
    assert sleeps == [0.2]
    assert progress == [10, 20, 23]
    bodies = [
        json.loads(message["Body"])["key"] for message in receive_all(backfill["sqs"], backfill["queue_url"])
    ]
    assert sorted(bodies) == sorted(backfill["keys"])


def test_entries_that_keep_failing_are_reported_after_the_bound(
    backfill: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN one key SQS always refuses, and the CLI's clients wrapped accordingly
    doomed = backfill["keys"][4]
    real_client = boto3.client

    def client(service: str, **kwargs: Any) -> Any:
        made = real_client(service, **kwargs)
        return FlakySqs(made, flaky_calls=0, always_fail=frozenset({doomed})) if service == "sqs" else made

    monkeypatch.setattr(boto3, "client", client)
    monkeypatch.setattr(transform_cli.time, "sleep", lambda seconds: None)
    # WHEN submitted with 3 attempts
    exit_code = cli.main(
        [
            "transform",
            "submit",
            f"s3://{BUCKET}/renders/old/",
            "--queue-url",
            backfill["queue_url"],
            "--max-attempts",
            "3",
            "--no-progress",
        ]
    )
    # THEN the others are enqueued, the doomed key is listed as failed, and the exit status says so
    assert exit_code == 1
    output = capsys.readouterr().out
    assert "22 enqueued" in output
    assert "1 failed" in output
    assert f"FAILED {doomed}: InternalError: try again" in output


def test_submit_rejects_a_bad_uri(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli.main(["transform", "submit", "bucket/prefix", "--queue-url", "https://q", "--no-progress"]) == 2
    )
    assert "expected s3://bucket/prefix" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "no AWS region"),
        ({"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}, "no AWS credentials"),
    ],
)
def test_submit_without_region_or_credentials_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    environment: dict[str, str],
    expected: str,
) -> None:
    # GIVEN no AWS configuration at all (no files, no variables), or a region but no credentials
    for name in [
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
    ]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # an earlier test's session caches its credentials
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    # WHEN a backfill is submitted
    exit_code = cli.main(
        ["transform", "submit", "s3://bucket/renders/", "--queue-url", "https://q", "--no-progress"]
    )
    # THEN it exits 1 with one error line and no traceback
    assert exit_code == 1
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("autostop transform submit: error: ")
    assert expected in line
    assert "Traceback" not in captured.out + captured.err


def test_the_cli_lists_the_transform_command() -> None:
    help_text = cli.build_parser().format_help()
    assert "transform" in help_text
