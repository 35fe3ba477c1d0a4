"""Fixtures for the transformer's adapter tests: a moto S3 bucket notifying a moto SQS queue, over HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from lambdas.transform_renders import app, transform
from tests.support import moto_server

BUCKET = "autostop-renders-test"
QUEUE = "render-batches"
# As deployed (infra/render_transformer.py): a filter per accepted spelling, for created and removed objects.
SUFFIXES = transform.ACCEPTED_SUFFIXES
EVENTS = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")


@dataclasses.dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes Powertools' Logger reads from a Lambda context object (no runtime exists here).

    ``get_remaining_time_in_millis`` says there is always time left; ``ClockedLambdaContext`` runs out.
    """

    function_name: str = "transform-renders"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = (
        f"arn:aws:lambda:us-east-1:{moto_server.ACCOUNT_ID}:function:transform-renders"
    )
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@dataclasses.dataclass(frozen=True)
class ClockedLambdaContext(FakeLambdaContext):
    """A context whose remaining time is an injected clock the test moves forward (no sleeping)."""

    remaining_ms: list[int] = dataclasses.field(default_factory=lambda: [300_000])

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms[0]

    def advance(self, milliseconds: int) -> None:
        self.remaining_ms[0] -= milliseconds


@dataclasses.dataclass(frozen=True)
class RendersBucket:
    s3: Any
    sqs: Any
    bucket: str
    queue_url: str
    queue_arn: str


@pytest.fixture(autouse=True)
def fresh_s3_client() -> Iterator[None]:
    """The adapter caches its S3 client per process; each test gets one built from its own environment."""
    app.s3_client.cache_clear()
    yield
    app.s3_client.cache_clear()


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def create_renders_bucket(
    s3: Any, sqs: Any, *, visibility_timeout: int = 30, dead_letter_arn: str | None = None
) -> RendersBucket:
    """Bucket + queue + one ObjectCreated and one ObjectRemoved notification per accepted archive suffix
    spelling under renders/, as deployed."""
    attributes = {"VisibilityTimeout": str(visibility_timeout)}
    if dead_letter_arn:
        attributes["RedrivePolicy"] = (
            f'{{"deadLetterTargetArn": "{dead_letter_arn}", "maxReceiveCount": "50"}}'
        )
    queue_url = sqs.create_queue(QueueName=QUEUE, Attributes=attributes)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": [event],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "prefix", "Value": "renders/"},
                                {"Name": "suffix", "Value": suffix},
                            ]
                        }
                    },
                }
                for event in EVENTS
                for suffix in SUFFIXES
            ]
        },
    )
    return RendersBucket(s3=s3, sqs=sqs, bucket=BUCKET, queue_url=queue_url, queue_arn=queue_arn)


@pytest.fixture
def renders(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> RendersBucket:
    monkeypatch.delenv("OUTPUT_BUCKET", raising=False)
    monkeypatch.delenv("SHARD_BUCKET", raising=False)
    # Every design to shards/train/ unless a test says otherwise: the split has tests of its own.
    monkeypatch.setenv("VALIDATION_FRACTION", "0")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    return create_renders_bucket(boto3.client("s3"), boto3.client("sqs"))


def lambda_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """SQS messages (ReceiveMessage output) in the shape Lambda's SQS event source passes to the handler."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": moto_server.REGION,
            }
            for message in messages
        ]
    }


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message now visible in the queue (polled until a receive comes back empty)."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
