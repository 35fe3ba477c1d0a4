"""A small local HTTP fake of SageMaker's JSON API, reached by real botocore over HTTP.

Why it exists: moto, the project's AWS emulator, has no ``StopTrainingJob`` (its server answers HTTP 500),
and its training jobs are ``Completed`` the moment they are created, so no job can be stopped there. The
stop Lambda's tests still have to go through botocore's whole HTTP stack (endpoint resolution from
``AWS_ENDPOINT_URL_SAGEMAKER``, request serialization, the standard retry mode, error parsing), so this
fake speaks SageMaker's real wire protocol, AWS JSON 1.1: ``POST /`` with ``X-Amz-Target:
SageMaker.<Operation>``, JSON bodies, and errors as HTTP 4xx/5xx with ``{"__type": ..., "message": ...}``.

It implements what the Lambda calls: ``DescribeTrainingJob``, ``ListTags`` (paginated), ``AddTags`` and
``StopTrainingJob``, and what the sweep launcher calls besides: ``CreateTrainingJob`` (a job ``InProgress``
until a test changes it; a second job of the same name is 400 ``ResourceInUse``, as the API reference lists)
and ``Search`` of training jobs by tag (``Tags.<key>`` ``Equals``, paginated). SageMaker's documented or
observed answers:

- a job that does not exist: 400 ``ValidationException`` "Requested resource not found." (what SageMaker
  really returns, although its API model declares ``ResourceNotFound``: aws/aws-sdk#165);
- stopping a job that is not ``InProgress``: 400 ``ValidationException`` "The request was rejected because
  the training job is in status <status>."; stopping an ``InProgress`` job makes it ``Stopping``;
- IAM's tag condition (``aws:ResourceTag/<key>``), when ``require_tag`` is given: 400
  ``AccessDeniedException`` on every operation for a job without that tag.

Faults are injected per operation (``inject_fault``): throttling (400 ``ThrottlingException``, which botocore
retries), 500 ``InternalFailure``, 503 ``ServiceUnavailable``, 400 ``AccessDeniedException`` or
``ValidationException``, ``ExpiredTokenException``, ``ResourceLimitExceeded``; and actions run while a
request is being answered (``inject_action``, e.g. a Ctrl-C arriving mid-request). A job can be
set to finish in the instant before a stop arrives (``finishes_on_stop``), the race that makes SageMaker
reject the stop. Every request is logged (``calls``), so a test can prove that no ``StopTrainingJob`` was
ever sent. The server runs with ``http.server`` in a thread on a free loopback port.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"
TARGET_PREFIX = "SageMaker."
MAX_TAGS_PER_RESOURCE = 50


class Fault(enum.Enum):
    """Errors the fake can answer with instead of doing the operation: (HTTP status, error code, message)."""

    THROTTLING = (400, "ThrottlingException", "Rate exceeded")
    INTERNAL_ERROR = (500, "InternalFailure", "We encountered an internal error. Please try again.")
    SERVICE_UNAVAILABLE = (503, "ServiceUnavailable", "The service is unavailable. Please try again.")
    ACCESS_DENIED = (400, "AccessDeniedException", "User is not authorized to perform this operation.")
    VALIDATION = (400, "ValidationException", "1 validation error detected.")
    EXPIRED_TOKEN = (400, "ExpiredTokenException", "The security token included in the request is expired")
    RESOURCE_LIMIT = (
        400,
        "ResourceLimitExceeded",
        "The account-level service limit 'ml.g5.xlarge for training job usage' is 4 Instances.",
    )


@dataclasses.dataclass
class FakeTrainingJob:
    """One training job as the fake knows it. Change its fields between calls to script a test."""

    name: str
    status: str = "InProgress"
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    secondary_status: str = "Training"
    debug_rule_statuses: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    profiler_rule_statuses: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # The job reaches this status just before a StopTrainingJob arrives (which SageMaker then rejects).
    finishes_on_stop: str | None = None
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    billable_seconds: int | None = None
    # The CreateTrainingJob request that made the job (None: added by a test).
    request: dict[str, Any] | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{self.account_id}:training-job/{self.name}"


@dataclasses.dataclass(frozen=True)
class Call:
    """One request the fake received: the operation, its JSON parameters, and the HTTP status answered."""

    operation: str
    params: dict[str, Any]
    status: int


class _ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _not_found() -> _ServiceError:
    return _ServiceError(400, "ValidationException", "Requested resource not found.")


class FakeSageMaker:
    """The fake service. Use as a context manager; ``url`` goes into ``AWS_ENDPOINT_URL_SAGEMAKER``.

    ``job_factory`` makes a job on the fly for a name the fake does not know (``None``: the job does not
    exist), so property tests can name any job. ``list_tags_page_size`` forces ``ListTags`` pagination.
    """

    def __init__(
        self,
        *,
        require_tag: tuple[str, str] | None = None,
        job_factory: Callable[[str], FakeTrainingJob | None] | None = None,
        list_tags_page_size: int = MAX_TAGS_PER_RESOURCE,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> None:
        if list_tags_page_size < 1:
            raise ValueError("list_tags_page_size must be at least 1")
        self.require_tag = require_tag
        self.job_factory = job_factory
        self.list_tags_page_size = list_tags_page_size
        self.region = region
        self.account_id = account_id
        # The status a job created by CreateTrainingJob starts in (a test may make jobs end at once).
        self.status_on_create = "InProgress"
        self._jobs: dict[str, FakeTrainingJob] = {}
        self._faults: dict[str, collections.deque[Fault]] = collections.defaultdict(collections.deque)
        self._actions: dict[str, collections.deque[Callable[[dict[str, Any]], None]]] = (
            collections.defaultdict(collections.deque)
        )
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- scripting ---

    def add_job(self, name: str, **fields: Any) -> FakeTrainingJob:
        job = FakeTrainingJob(name, region=self.region, account_id=self.account_id, **fields)
        with self._lock:
            self._jobs[name] = job
        return job

    def job(self, name: str) -> FakeTrainingJob:
        with self._lock:
            return self._jobs[name]

    def inject_fault(self, operation: str, fault: Fault, *, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``operation`` with ``fault`` instead of doing it."""
        with self._lock:
            self._faults[operation].extend([fault] * times)

    def inject_action(
        self, operation: str, action: Callable[[dict[str, Any]], None], *, times: int = 1
    ) -> None:
        """Run ``action(params)`` while answering the next ``times`` calls of ``operation`` (before the
        operation is done): e.g. send the client process a SIGINT while its request is in flight."""
        with self._lock:
            self._actions[operation].extend([action] * times)

    @property
    def jobs(self) -> dict[str, FakeTrainingJob]:
        with self._lock:
            return dict(self._jobs)

    def forget_jobs(self) -> None:
        """Drop every job (the call log stays: it is the record of everything ever asked)."""
        with self._lock:
            self._jobs.clear()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, operation: str) -> list[Call]:
        return [call for call in self.calls if call.operation == operation]

    # --- server ---

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not running: use it as a context manager or call start()")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        fake = self

        class RequestHandler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                target = self.headers.get("X-Amz-Target", "")
                status, payload = fake._answer(target, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # the base class's signature
                """Silence the per-request stderr lines; ``calls`` is the log."""

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSageMaker:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # --- the API ---

    def _answer(self, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        operation = target.removeprefix(TARGET_PREFIX)
        try:
            params = json.loads(body or b"{}")
            if not isinstance(params, dict):
                raise ValueError("not an object")
        except ValueError:
            params = {}
            status, payload = 400, {"__type": "SerializationException", "message": "Malformed JSON body."}
        else:
            status, payload = self._dispatch(operation, params)
        with self._lock:
            self._calls.append(Call(operation, params, status))
        return status, payload

    def _dispatch(self, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "DescribeTrainingJob": self._describe_training_job,
            "ListTags": self._list_tags,
            "AddTags": self._add_tags,
            "StopTrainingJob": self._stop_training_job,
            "CreateTrainingJob": self._create_training_job,
            "Search": self._search,
        }
        try:
            with self._lock:
                queued = self._faults.get(operation)
                fault = queued.popleft() if queued else None
                actions = self._actions.get(operation)
                action = actions.popleft() if actions else None
            if action is not None:
                action(params)
            if fault is not None:
                status, code, message = fault.value
                raise _ServiceError(status, code, message)
            operation_handler = handlers.get(operation)
            if operation_handler is None:
                raise _ServiceError(
                    400, "UnknownOperationException", f"Operation {operation!r} is not faked."
                )
            with self._lock:
                return 200, operation_handler(params)
        except _ServiceError as error:
            return error.status, {"__type": error.code, "message": error.message}

    def _job_named(self, name: object, operation: str) -> FakeTrainingJob:
        if not isinstance(name, str):
            raise _ServiceError(400, "ValidationException", "1 validation error detected: TrainingJobName")
        job = self._jobs.get(name)
        if job is None and self.job_factory is not None:
            job = self.job_factory(name)
            if job is not None:
                self._jobs[name] = job
        if job is None:
            raise _not_found()
        self._authorize(job, operation)
        return job

    def _job_with_arn(self, arn: object, operation: str) -> FakeTrainingJob:
        prefix = f"arn:aws:sagemaker:{self.region}:{self.account_id}:training-job/"
        if not isinstance(arn, str) or not arn.startswith(prefix):
            raise _not_found()
        return self._job_named(arn.removeprefix(prefix), operation)

    def _authorize(self, job: FakeTrainingJob, operation: str) -> None:
        if self.require_tag is None:
            return
        key, value = self.require_tag
        if job.tags.get(key) != value:
            raise _ServiceError(
                400,
                "AccessDeniedException",
                f"User: arn:aws:sts::{self.account_id}:assumed-role/stop-training-job/fn is not authorized "
                f"to perform: sagemaker:{operation} on resource: {job.arn} because no identity-based "
                f"policy allows the sagemaker:{operation} action",
            )

    def _describe_training_job(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job_named(params.get("TrainingJobName"), "DescribeTrainingJob")
        now = time.time()
        description: dict[str, Any] = {
            "TrainingJobName": job.name,
            "TrainingJobArn": job.arn,
            "TrainingJobStatus": job.status,
            "SecondaryStatus": job.secondary_status,
            "AlgorithmSpecification": {
                "TrainingImage": "autostop-training:latest",
                "TrainingInputMode": "File",
            },
            "RoleArn": f"arn:aws:iam::{self.account_id}:role/autostop-training-role",
            "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
            "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
            "CreationTime": now - 600,
            "LastModifiedTime": now,
        }
        if job.billable_seconds is not None:
            description["BillableTimeInSeconds"] = job.billable_seconds
        if job.request is not None:
            description["HyperParameters"] = job.request.get("HyperParameters", {})
        if job.debug_rule_statuses:
            description["DebugRuleEvaluationStatuses"] = job.debug_rule_statuses
        if job.profiler_rule_statuses:
            description["ProfilerRuleEvaluationStatuses"] = job.profiler_rule_statuses
        return description

    def _list_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job_with_arn(params.get("ResourceArn"), "ListTags")
        items = [{"Key": key, "Value": value} for key, value in job.tags.items()]
        start = int(params.get("NextToken") or 0)
        page_size = min(int(params.get("MaxResults") or MAX_TAGS_PER_RESOURCE), self.list_tags_page_size)
        page: dict[str, Any] = {"Tags": items[start : start + page_size]}
        if start + page_size < len(items):
            page["NextToken"] = str(start + page_size)
        return page

    def _add_tags(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job_with_arn(params.get("ResourceArn"), "AddTags")
        new_tags = params.get("Tags")
        if not isinstance(new_tags, list) or not new_tags:
            raise _ServiceError(400, "ValidationException", "Tags must be a non-empty list.")
        merged = dict(job.tags)
        for tag in new_tags:
            merged[str(tag["Key"])] = str(tag.get("Value", ""))
        if len(merged) > MAX_TAGS_PER_RESOURCE:
            raise _ServiceError(400, "ResourceLimitExceeded", "A resource can have at most 50 tags.")
        job.tags = merged
        return {"Tags": new_tags}

    def _stop_training_job(self, params: dict[str, Any]) -> dict[str, Any]:
        job = self._job_named(params.get("TrainingJobName"), "StopTrainingJob")
        if job.status == "InProgress" and job.finishes_on_stop is not None:
            job.status, job.secondary_status = job.finishes_on_stop, job.finishes_on_stop
        if job.status != "InProgress":
            raise _ServiceError(
                400,
                "ValidationException",
                f"The request was rejected because the training job is in status {job.status}.",
            )
        job.status, job.secondary_status = "Stopping", "Stopping"
        return {}

    def _create_training_job(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("TrainingJobName")
        if not isinstance(name, str) or not name:
            raise _ServiceError(400, "ValidationException", "1 validation error detected: TrainingJobName")
        if name in self._jobs:
            raise _ServiceError(
                400,
                "ResourceInUse",
                "Training job names must be unique within an AWS account and region, and a training job "
                f"with this name already exists ({self._jobs[name].arn})",
            )
        tags = {str(tag["Key"]): str(tag.get("Value", "")) for tag in params.get("Tags", []) or []}
        job = FakeTrainingJob(
            name,
            status=self.status_on_create,
            secondary_status=self.status_on_create,
            tags=tags,
            region=self.region,
            account_id=self.account_id,
            request=dict(params),
        )
        self._jobs[name] = job
        return {"TrainingJobArn": job.arn}

    def _search(self, params: dict[str, Any]) -> dict[str, Any]:
        """``Search`` of training jobs: every filter ``Tags.<key>`` ``Equals`` <value> must hold."""
        if params.get("Resource") != "TrainingJob":
            raise _ServiceError(400, "ValidationException", "The fake searches training jobs only.")
        filters = (params.get("SearchExpression") or {}).get("Filters", [])
        wanted: dict[str, str] = {}
        for item in filters:
            name = str(item.get("Name", ""))
            if not name.startswith("Tags.") or item.get("Operator", "Equals") != "Equals":
                raise _ServiceError(400, "ValidationException", f"The fake cannot filter on {name!r}.")
            wanted[name.removeprefix("Tags.")] = str(item.get("Value", ""))
        matches = sorted(
            (job for job in self._jobs.values() if all(job.tags.get(k) == v for k, v in wanted.items())),
            key=lambda job: job.name,
        )
        start = int(params.get("NextToken") or 0)
        page_size = int(params.get("MaxResults") or 10)
        results = [
            {
                "TrainingJob": {
                    "TrainingJobName": job.name,
                    "TrainingJobArn": job.arn,
                    "TrainingJobStatus": job.status,
                    "Tags": [{"Key": key, "Value": value} for key, value in job.tags.items()],
                }
            }
            for job in matches[start : start + page_size]
        ]
        page: dict[str, Any] = {"Results": results}
        if start + page_size < len(matches):
            page["NextToken"] = str(start + page_size)
        return page
