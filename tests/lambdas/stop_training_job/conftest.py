"""Fixtures for the stop Lambda: the SageMaker fake, a real SNS topic read back through SQS, the handler.

Everything AWS is reached by real botocore over HTTP: SNS, SQS and CloudWatch on the shared moto server,
SageMaker on ``tests/support/sagemaker_fake.py`` (moto has no StopTrainingJob). The handler module reads its
settings per invocation and its clients are reset per test, so the tests do not depend on import order.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import logging
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest

from tests.lambdas.stop_training_job import event_fixtures
from tests.support.sagemaker_fake import FakeSageMaker

OPT_IN_TAGS = {"autostop": "enabled", "project": "autostop-tests"}
# What the launcher puts in every job's CreateTrainingJob request: the signing key of its events.
SIGNED_JOB_REQUEST = {"HyperParameters": {"autostop_signing_key": event_fixtures.SAMPLE_SIGNING_KEY}}
# Fewer attempts than production (3) keep the throttling tests fast; the retry path is the same.
TEST_MAX_ATTEMPTS = 2


@dataclasses.dataclass(frozen=True)
class FakeLambdaContext:
    """The Lambda runtime's context object (Powertools reads these fields): no real one exists outside
    Lambda, so this stand-in is the one test double here."""

    function_name: str = "stop-training-job"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:stop-training-job"
    aws_request_id: str = "6f1e9d7c-0000-4000-8000-000000000001"


class Notifications:
    """The stop Lambda's SNS topic (on moto), subscribed by an SQS queue so tests can read what was sent."""

    def __init__(self) -> None:
        self.sns = boto3.client("sns")
        self.sqs = boto3.client("sqs")
        self.topic_arn = self.sns.create_topic(Name="autostop-notifications")["TopicArn"]
        self.queue_url = self.sqs.create_queue(QueueName="autostop-notifications-reader")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def received(self) -> list[dict[str, Any]]:
        """Every notification delivered so far (SNS envelopes: Subject, Message, MessageAttributes)."""
        messages: list[dict[str, Any]] = []
        while True:
            answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            batch = answer.get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


class StopLambda:
    """Invokes the real handler and collects what it wrote: JSON log lines and EMF metric documents."""

    def __init__(self, app: ModuleType, log_stream: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
        self.app = app
        self._log_stream = log_stream
        self._capsys = capsys
        self._emf: list[dict[str, Any]] = []

    def invoke(self, event: object) -> dict[str, Any]:
        result: dict[str, Any] = self.app.handler(event, FakeLambdaContext())
        json.dumps(result)  # the outcome must be JSON-able
        return result

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._log_stream.getvalue().splitlines() if line.strip()]

    def emf_documents(self) -> list[dict[str, Any]]:
        for line in self._capsys.readouterr().out.splitlines():
            if line.startswith("{") and '"_aws"' in line:
                self._emf.append(json.loads(line))
        return list(self._emf)

    def metric_values(self, name: str, dimensions: dict[str, str]) -> list[float]:
        """Values of metric ``name`` in documents whose dimension set is exactly ``dimensions``."""
        values: list[float] = []
        for document in self.emf_documents():
            for directive in document["_aws"]["CloudWatchMetrics"]:
                if directive["Namespace"] != "Autostop":
                    continue
                for dimension_set in directive["Dimensions"]:
                    if set(dimension_set) != set(dimensions):
                        continue
                    if any(document.get(key) != value for key, value in dimensions.items()):
                        continue
                    if any(metric["Name"] == name for metric in directive["Metrics"]) and name in document:
                        value = document[name]
                        values.extend(value if isinstance(value, list) else [value])
        return values


@pytest.fixture
def sagemaker(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSageMaker]:
    """The SageMaker fake, with botocore pointed at it (AWS_ENDPOINT_URL_SAGEMAKER beats AWS_ENDPOINT_URL)."""
    with FakeSageMaker() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", fake.url)
        yield fake


@pytest.fixture
def notifications(moto_endpoint: str) -> Notifications:
    return Notifications()


@pytest.fixture
def stop_environment(monkeypatch: pytest.MonkeyPatch, notifications: Notifications) -> dict[str, str]:
    """The environment the CDK construct sets, with the documented defaults."""
    environment = {
        "AUTOSTOP_TAG_KEY": "autostop",
        "AUTOSTOP_TAG_VALUE": "enabled",
        "AUTOSTOP_JOB_PREFIX": "",
        "AUTOSTOP_STOPPING_RULES": "*",
        "AUTOSTOP_DRY_RUN": "false",
        "AUTOSTOP_TOPIC_ARN": notifications.topic_arn,
        "AUTOSTOP_ALARM_PREFIX": "autostop-",
        "POWERTOOLS_SERVICE_NAME": "stop-training-job",
        "POWERTOOLS_METRICS_NAMESPACE": "Autostop",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


@pytest.fixture
def stop_lambda(
    stop_environment: dict[str, str],
    sagemaker: FakeSageMaker,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[StopLambda]:
    app = importlib.import_module("lambdas.stop_training_job.app")
    monkeypatch.setattr(app, "MAX_ATTEMPTS", TEST_MAX_ATTEMPTS)
    app.reset_clients()
    handler = app.logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    log_stream = io.StringIO()
    handler.setStream(log_stream)
    try:
        yield StopLambda(app, log_stream, capsys)
    finally:
        # Back to the process's real stdout (as in Lambda), never to a per-test capture that pytest closes.
        handler.setStream(sys.__stdout__)
        app.reset_clients()


@pytest.fixture
def tagged_job(sagemaker: FakeSageMaker) -> str:
    """The fixtures' job, InProgress, opted in, launched with the sample signing key."""
    sagemaker.add_job(event_fixtures.JOB_NAME, tags=dict(OPT_IN_TAGS), request=SIGNED_JOB_REQUEST)
    return event_fixtures.JOB_NAME
