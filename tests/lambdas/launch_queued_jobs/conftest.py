"""Fixtures for the sweep controller: the sweep-state table on moto, SageMaker on the local fake.

Everything AWS is reached by real botocore over HTTP. DynamoDB and CloudWatch are moto, served one request
at a time (``tests/support/serialized_moto_server.py`` says why: DynamoDB applies each request atomically,
moto's threaded server does not). SageMaker is ``tests/support/sagemaker_fake.py``: moto has a
``CreateTrainingJob``, but its jobs are ``Completed`` the moment they exist and a second create of a name is
not refused with ``ResourceInUse`` as SageMaker refuses it (SageMaker API reference, CreateTrainingJob,
Errors), and both are what these tests are about.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

import boto3
import pytest

from tests.lambdas.launch_queued_jobs import sweeps
from tests.support import moto_server
from tests.support.sagemaker_fake import FakeSageMaker
from tests.support.serialized_moto_server import running_serialized_moto_server
from tests.support.sweep_table import create_sweep_table


@pytest.fixture(scope="session")
def serialized_moto_url() -> Iterator[str]:
    with running_serialized_moto_server() as url:
        yield url


@pytest.fixture
def aws(serialized_moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every botocore client points at the serialized moto server, with fresh state per test."""
    moto_server.reset_moto(serialized_moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", serialized_moto_url)
    return serialized_moto_url


@pytest.fixture
def table(aws: str) -> str:
    """The sweep-state table, keyed as infra/sweep_state.py creates it (tests/infra keep the names equal)."""
    create_sweep_table(boto3.client("dynamodb"), sweeps.TABLE)
    return sweeps.TABLE


@pytest.fixture
def sagemaker(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSageMaker]:
    """The SageMaker fake (AWS_ENDPOINT_URL_SAGEMAKER beats AWS_ENDPOINT_URL)."""
    with FakeSageMaker() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", fake.url)
        yield fake


@pytest.fixture
def handler(table: str, sagemaker: FakeSageMaker, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The handler module with its settings as infra/sweep_launcher.py sets them, and fresh clients."""
    app = importlib.import_module("lambdas.launch_queued_jobs.app")
    monkeypatch.setenv(app.TABLE_ENV, table)
    monkeypatch.setenv(app.JOB_PREFIX_ENV, sweeps.JOB_PREFIX)
    monkeypatch.setenv(app.ALARM_PREFIX_ENV, sweeps.ALARM_PREFIX)
    app.reset_clients()
    yield app
    app.reset_clients()
