"""The SageMaker fake answers real botocore the way SageMaker does for the four calls the Lambda makes.

These tests keep the fake honest: the handler tests are only as good as the answers they get.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.sagemaker_fake import FakeSageMaker, Fault


@pytest.fixture
def client(sagemaker: FakeSageMaker) -> Any:
    return boto3.client("sagemaker", config=Config(retries={"mode": "standard", "total_max_attempts": 2}))


def error_of(call: Callable[[], object]) -> dict[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return dict(raised.value.response["Error"])


def test_botocore_reaches_the_fake_through_the_service_endpoint_variable(
    sagemaker: FakeSageMaker, client: Any
) -> None:
    sagemaker.add_job("job-1")
    assert client.meta.endpoint_url == sagemaker.url
    described = client.describe_training_job(TrainingJobName="job-1")
    assert described["TrainingJobStatus"] == "InProgress"
    assert described["TrainingJobArn"] == "arn:aws:sagemaker:us-east-1:123456789012:training-job/job-1"


def test_a_missing_job_is_sagemakers_validation_exception(sagemaker: FakeSageMaker, client: Any) -> None:
    error = error_of(lambda: client.describe_training_job(TrainingJobName="nope"))
    assert error == {"Code": "ValidationException", "Message": "Requested resource not found."}


def test_stop_moves_to_stopping_and_a_second_stop_is_rejected(sagemaker: FakeSageMaker, client: Any) -> None:
    sagemaker.add_job("job-1")
    client.stop_training_job(TrainingJobName="job-1")
    assert sagemaker.job("job-1").status == "Stopping"
    error = error_of(lambda: client.stop_training_job(TrainingJobName="job-1"))
    assert error["Code"] == "ValidationException"
    assert error["Message"] == "The request was rejected because the training job is in status Stopping."


def test_the_tag_condition_denies_untagged_jobs() -> None:
    with FakeSageMaker(require_tag=("autostop", "enabled")) as fake:
        fake.add_job("job-1", tags={"autostop": "enabled"})
        fake.add_job("job-2")
        local = boto3.client("sagemaker", endpoint_url=fake.url)
        assert local.describe_training_job(TrainingJobName="job-1")["TrainingJobName"] == "job-1"
        assert error_of(lambda: local.describe_training_job(TrainingJobName="job-2"))["Code"] == (
            "AccessDeniedException"
        )


def test_list_tags_paginates_and_add_tags_merges(sagemaker: FakeSageMaker, client: Any) -> None:
    sagemaker.list_tags_page_size = 2
    job = sagemaker.add_job("job-1", tags={"a": "1", "b": "2", "c": "3"})
    client.add_tags(ResourceArn=job.arn, Tags=[{"Key": "d", "Value": "4"}])
    pages = list(client.get_paginator("list_tags").paginate(ResourceArn=job.arn))
    assert [len(page["Tags"]) for page in pages] == [2, 2]
    assert {tag["Key"]: tag["Value"] for page in pages for tag in page["Tags"]} == {
        "a": "1",
        "b": "2",
        "c": "3",
        "d": "4",
    }


def test_server_errors_are_retried_by_botocore_and_logged(sagemaker: FakeSageMaker, client: Any) -> None:
    sagemaker.add_job("job-1")
    sagemaker.inject_fault("DescribeTrainingJob", Fault.INTERNAL_ERROR)
    described = client.describe_training_job(TrainingJobName="job-1")
    assert described["ResponseMetadata"]["RetryAttempts"] == 1
    assert [(call.operation, call.status) for call in sagemaker.calls] == [
        ("DescribeTrainingJob", 500),
        ("DescribeTrainingJob", 200),
    ]
