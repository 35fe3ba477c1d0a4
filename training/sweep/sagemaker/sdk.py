"""The SageMaker SDK and the AWS clients: requests built offline, telemetry off, interrupts never lost.

Why the launcher does not let the SDK send ``CreateTrainingJob``: SDK 2.x wraps ``Estimator.fit`` in a
telemetry decorator whose ``finally: return response`` swallows a ``KeyboardInterrupt`` raised inside the
call (sagemaker/telemetry/telemetry_logging.py). A Ctrl-C during the request would then look like a created
job that may not exist, or vanish while a job was created. So the SDK only *builds* the request, against a
client that records it (``RecordingSageMakerClient``, as the dry run does), with Ctrl-C deferred until it
returns; the launcher sends the recorded request with its own boto3 client, also with Ctrl-C deferred, so a
job either exists and is recorded, or was never created (``deferred_interrupts``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from training.sweep import spec as spec_module
from training.sweep.sagemaker import requests
from training.sweep.sagemaker.settings import LaunchError, LaunchSettings

DRY_RUN_ACCOUNT = "123456789012"
DRY_RUN_BUCKET = "autostop-dry-run-bucket"
# botocore's own attempts per call (standard mode: throttling and 5xx), below the launcher's faults.Retrier.
CLIENT_MAX_ATTEMPTS = 3


class RecordingSageMakerClient:
    """The boto3 SageMaker client of a dry run: records ``create_training_job`` requests, sends nothing."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.requests: list[dict[str, Any]] = []

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        name = request["TrainingJobName"]
        return {"TrainingJobArn": f"arn:aws:sagemaker:{self.region}:{DRY_RUN_ACCOUNT}:training-job/{name}"}

    def __getattr__(self, operation: str) -> Callable[..., Any]:
        def refuse(**_: Any) -> Any:
            raise RuntimeError(f"dry run: the SageMaker SDK tried to call {operation}; nothing is sent")

        return refuse


def _quiet_sdk_logs() -> None:
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    for name in ("sagemaker", "sagemaker.config", "sagemaker.telemetry.telemetry_logging", "botocore"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def no_sdk_telemetry() -> Iterator[None]:
    """Send no SageMaker SDK telemetry (an HTTPS request to an AWS bucket, after an STS call) while inside.

    Why not the SDK's documented opt-out (``TelemetryOptOut`` in its defaults config): in 2.257.7 any
    non-empty SDK config is re-validated against its JSON schema on every lookup, ~0.5 s each, ~5 s per job;
    and a dry run must reach no network at all. The SDK version is pinned, so the function replaced here
    is known; the replacement is undone on exit.
    """
    from sagemaker.telemetry import telemetry_logging

    original = telemetry_logging._send_telemetry_request
    telemetry_logging._send_telemetry_request = _no_telemetry
    try:
        yield
    finally:
        telemetry_logging._send_telemetry_request = original


def _no_telemetry(*_: Any, **__: Any) -> None:
    return None


def offline_session(region: str) -> tuple[Any, RecordingSageMakerClient]:
    """A ``sagemaker.Session`` that needs no credentials and reaches no network (dry runs)."""
    _quiet_sdk_logs()
    import boto3
    import sagemaker

    boto_session = boto3.Session(
        # Placeholders, not secrets: nothing is signed for a real endpoint in a dry run.
        aws_access_key_id="dry-run",
        aws_secret_access_key="dry-run",  # noqa: S106
        aws_session_token="dry-run",  # noqa: S106
        region_name=region,
    )
    client = RecordingSageMakerClient(region)
    session = sagemaker.Session(
        boto_session=boto_session,
        sagemaker_client=client,
        default_bucket=DRY_RUN_BUCKET,
    )
    return session, client


@dataclasses.dataclass
class AwsClients:
    sagemaker: Any
    cloudwatch: Any
    session: Any  # sagemaker.Session


def aws_clients(region: str, *, max_attempts: int = CLIENT_MAX_ATTEMPTS) -> AwsClients:
    """Real clients (endpoints from the usual AWS settings, e.g. ``AWS_ENDPOINT_URL`` in tests)."""
    _quiet_sdk_logs()
    import boto3
    import sagemaker
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts}, connect_timeout=5, read_timeout=30
    )
    boto_session = boto3.Session(region_name=region)
    sagemaker_client = boto_session.client("sagemaker", config=config)
    session = sagemaker.Session(boto_session=boto_session, sagemaker_client=sagemaker_client)
    return AwsClients(sagemaker_client, boto_session.client("cloudwatch", config=config), session)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) until the block is done, then raise ``KeyboardInterrupt``.

    Used around calls whose outcome must be known: building a request inside the SDK (which would swallow
    the interrupt) and sending ``CreateTrainingJob`` (after which the job exists and must be recorded). Only
    the main thread receives signals; elsewhere the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def remember(number: int, frame: FrameType | None) -> None:
        received.append(number)

    previous = signal.signal(signal.SIGINT, remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


class RequestBuilder:
    """Builds each job's ``CreateTrainingJob`` request with the SDK, offline (nothing is sent)."""

    def __init__(self, spec: spec_module.SweepSpec, launch: LaunchSettings) -> None:
        self.spec = spec
        self.launch = launch
        self.session, self.client = offline_session(launch.region)

    def create_training_job(self, job: spec_module.JobConfig) -> dict[str, Any]:
        estimator = requests.build_estimator(self.spec, job, self.launch, self.session)
        before = len(self.client.requests)
        with deferred_interrupts(), no_sdk_telemetry():
            estimator.fit(inputs=requests.training_inputs(job), wait=False, logs=False, job_name=job.name)
        if len(self.client.requests) != before + 1:
            raise LaunchError(f"{job.name}: the SageMaker SDK built no CreateTrainingJob request")
        request = self.client.requests[-1]
        if DRY_RUN_BUCKET in json.dumps(request, default=str):
            raise LaunchError(
                f"{job.name}: the request needs the SDK's default bucket; set sagemaker.output_path and "
                "sagemaker.debugger_output_path"
            )
        return request
