"""The stop signal: what the evaluator says when a rule's status changes, and the sinks that carry it.

A ``RuleSignal`` is one rule's new status (InProgress at the start, IssuesFound once when its condition holds,
NoIssuesFound or Error at the end). Sinks, each optional, each unable to fail training:

- ``EventBridgeSink``: ``events:PutEvents`` of the in-container event (docs/events.md section 2), for
  IssuesFound only. The entry is built exactly as documented (``put_events_entry``), so the stop stack's
  EventBridge rule matches it and the stop Lambda's decision core stops the job. Retries (connection errors,
  throttling, 5xx, entries EventBridge failed) with exponential backoff, then gives up with one log line,
  all on its own delivery thread: nothing else waits for it.
- ``MetricLogLineSink``: prints ``rule:<Name>=0`` when evaluation starts and ``rule:<Name>=1`` when the
  rule finds issues. A training job's metric definition (``metric_definitions``) turns the line into the
  metric ``rule:<Name>`` (namespace ``/aws/sagemaker/TrainingJobs``, dimension ``Host=<job>/algo-1``) that
  the per-job alarm watches: the stop path that works without network access (network isolation).
- ``JsonLinesSink``: appends every signal as a complete EventBridge-shaped event (``event_envelope``), one
  JSON object per line, to a local file: the local sweep runner reads it and hands each event to the same
  decision core (``decision.interpret_event``) the Lambda uses.
- ``CallbackSink``: any Python callable (tests, embedding in other programs).
- ``SelfTermination``: off unless configured. After IssuesFound, if the job is still running after a grace
  period (no stop arrived: no permission, dry run, network trouble), it stops itself through the same path as
  SIGTERM (a final checkpoint, models saved, exit 0) with a clear message.

``SignalDispatcher`` fans a signal out to the sinks and contains their failures.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import os
import queue
import random
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from training import log_lines
from training.debugger import contract, provenance

SOURCE = contract.SOURCE  # "autostop.training"
DETAIL_TYPE = contract.DETAIL_TYPE  # "Debugger Rule Evaluation Status Change"
METRIC_NAMESPACE = "/aws/sagemaker/TrainingJobs"
# EventBridge's limit for one PutEvents entry.
MAX_ENTRY_BYTES = 256 * 1024
STATUS_DETAILS_MAX_LENGTH = contract.STATUS_DETAILS_MAX_LENGTH
# SageMaker sets these in every training container.
JOB_NAME_ENV = "TRAINING_JOB_NAME"
JOB_ARN_ENV = "TRAINING_JOB_ARN"

# Error codes worth another PutEvents attempt (service-side or rate limits); anything else (AccessDenied,
# ValidationException, a bad endpoint configuration) fails the same way again.
RETRYABLE_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalFailure",
        "InternalException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)


def _print_line(line: str) -> None:
    log_lines.write_line(line)  # whole and alone, whichever thread prints


class RuleStatus(enum.StrEnum):
    """SageMaker's ``RuleEvaluationStatus`` values the evaluator uses."""

    IN_PROGRESS = "InProgress"
    NO_ISSUES_FOUND = "NoIssuesFound"
    ISSUES_FOUND = "IssuesFound"
    ERROR = "Error"


@dataclasses.dataclass(frozen=True)
class JobIdentity:
    """The training job a signal is about. Locally both may be ``None`` (the local runner knows its job).

    ``signing_key``: the job's own key (``provenance``); with it, every event says it came from this job.
    The name inside the ARN is compared without case: SageMaker may hand the job a lowercased ARN.
    """

    name: str | None = None
    arn: str | None = None
    signing_key: str | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.name is not None and not contract.JOB_NAME_PATTERN.fullmatch(self.name):
            raise ValueError(f"not a SageMaker training job name: {self.name[:80]!r}")
        if self.arn is not None:
            match = contract.JOB_ARN_PATTERN.fullmatch(self.arn)
            if match is None:
                raise ValueError(f"not a SageMaker training job ARN: {self.arn[:120]!r}")
            if self.name is not None and match.group("name").lower() != self.name.lower():
                raise ValueError(f"job ARN {self.arn!r} does not name job {self.name!r}")
        if self.signing_key is not None:
            provenance.checked_key(self.signing_key, "signing key")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> JobIdentity:
        """``TRAINING_JOB_NAME`` / ``TRAINING_JOB_ARN``: set by SageMaker (the local runner sets the name);
        the signing key from ``AUTOSTOP_SIGNING_KEY`` or the job's hyperparameters file."""
        name = environ.get(JOB_NAME_ENV) or None
        arn = environ.get(JOB_ARN_ENV) or None
        if arn is not None and name is None:
            match = contract.JOB_ARN_PATTERN.fullmatch(arn)
            name = match.group("name") if match else None
        return cls(name=name, arn=arn, signing_key=provenance.signing_key_from(environ))

    @property
    def region(self) -> str | None:
        return self.arn.split(":")[3] if self.arn else None

    @property
    def account(self) -> str | None:
        return self.arn.split(":")[4] if self.arn else None

    @property
    def named(self) -> bool:
        return self.name is not None or self.arn is not None


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def format_time(moment: datetime.datetime) -> str:
    """UTC ISO-8601 to the second, e.g. ``2026-11-20T10:15:31Z`` (the documented ``LastModifiedTime``)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition_met_details(rule_name: str, step: int) -> str:
    """SageMaker's ``StatusDetails`` wording for IssuesFound (the stop Lambda parses the step from it)."""
    return (
        f"RuleEvaluationConditionMet: Evaluation of the rule {rule_name} at step {step} resulted in the "
        "condition being met"
    )


@dataclasses.dataclass(frozen=True)
class RuleSignal:
    """One rule's status as the evaluator reports it. ``finding`` is the rule's explanation (logs only)."""

    rule_name: str
    status: RuleStatus
    step: int | None = None
    status_details: str = ""
    time: datetime.datetime = dataclasses.field(default_factory=_utc_now)
    finding: str = ""

    def __post_init__(self) -> None:
        if not contract.RULE_NAME_PATTERN.fullmatch(self.rule_name):
            raise ValueError(f"invalid rule configuration name {self.rule_name[:80]!r}")
        if self.step is not None and not 0 <= self.step <= contract.MAX_STEP:
            raise ValueError(f"step must be a non-negative integer, got {self.step}")
        if self.time.tzinfo is None:
            raise ValueError("signal time must be timezone-aware")


def event_detail(job: JobIdentity, rule_signal: RuleSignal) -> dict[str, Any]:
    """The event's ``detail``, fields in the documented order (docs/events.md section 2)."""
    detail: dict[str, Any] = {}
    if job.name is not None:
        detail["TrainingJobName"] = job.name
    if job.arn is not None:
        detail["TrainingJobArn"] = job.arn
    if rule_signal.step is not None:
        detail["Step"] = rule_signal.step
    status: dict[str, Any] = {
        "RuleConfigurationName": rule_signal.rule_name,
        "RuleEvaluationStatus": rule_signal.status.value,
    }
    if rule_signal.status_details:
        status["StatusDetails"] = rule_signal.status_details[:STATUS_DETAILS_MAX_LENGTH]
    status["LastModifiedTime"] = format_time(rule_signal.time)
    detail["DebugRuleEvaluationStatuses"] = [status]
    if job.signing_key is not None and job.name is not None:
        signed_at = format_time(rule_signal.time)
        message = provenance.signed_message(
            job_name=job.name,
            rule_name=rule_signal.rule_name,
            status=rule_signal.status.value,
            step=rule_signal.step,
            signed_at=signed_at,
        )
        detail["Provenance"] = {
            "Algorithm": contract.SIGNATURE_ALGORITHM,
            "SignedAt": signed_at,
            "Signature": provenance.sign(job.signing_key, message),
        }
    return detail


def put_events_entry(job: JobIdentity, rule_signal: RuleSignal) -> dict[str, Any]:
    """The ``PutEvents`` entry, byte for byte as docs/events.md shows it (``json.dumps`` defaults)."""
    entry = {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Resources": [job.arn] if job.arn else [],
        "Detail": json.dumps(event_detail(job, rule_signal)),
    }
    if len(json.dumps(entry).encode("utf-8")) > MAX_ENTRY_BYTES:
        raise ValueError("the PutEvents entry exceeds EventBridge's 256 KB limit")
    return entry


def event_envelope(
    job: JobIdentity, rule_signal: RuleSignal, *, event_id: str | None = None
) -> dict[str, Any]:
    """The event as EventBridge would deliver the entry (what the local sweep runner reads)."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": job.account or "",
        "time": format_time(rule_signal.time),
        "region": job.region or "",
        "resources": [job.arn] if job.arn else [],
        "detail": event_detail(job, rule_signal),
    }


def metric_definitions(rule_names: Iterable[str]) -> list[dict[str, str]]:
    """SageMaker ``MetricDefinitions``: the log line ``rule:<Name>=1`` becomes the metric ``rule:<Name>``."""
    return [{"Name": f"rule:{name}", "Regex": f"rule:{re.escape(name)}=([0-9]+)"} for name in rule_names]


class Sink(Protocol):
    def emit(self, rule_signal: RuleSignal) -> None: ...


class MetricLogLineSink:
    """``rule:<Name>=0`` when a rule starts, ``rule:<Name>=1`` when it finds issues (one line each)."""

    def __init__(self, write: Callable[[str], None] = _print_line) -> None:
        self.write = write

    def emit(self, rule_signal: RuleSignal) -> None:
        if rule_signal.status is RuleStatus.IN_PROGRESS:
            self.write(f"rule:{rule_signal.rule_name}=0")
        elif rule_signal.status is RuleStatus.ISSUES_FOUND:
            self.write(f"rule:{rule_signal.rule_name}=1")


class JsonLinesSink:
    """Append each signal as one EventBridge-shaped event per line (fsynced: a reader polls the file)."""

    def __init__(self, path: Path, job: JobIdentity) -> None:
        self.path = path
        self.job = job
        self._lock = threading.Lock()

    def emit(self, rule_signal: RuleSignal) -> None:
        line = json.dumps(event_envelope(self.job, rule_signal), separators=(",", ":")) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as stream:
                stream.write(line)
                stream.flush()
                os.fsync(stream.fileno())


class CallbackSink:
    def __init__(self, callback: Callable[[RuleSignal], None]) -> None:
        self.callback = callback

    def emit(self, rule_signal: RuleSignal) -> None:
        self.callback(rule_signal)


def _default_events_client(region: str | None) -> Any:
    import boto3
    from botocore.config import Config as BotocoreConfig

    # botocore's own retries off: this sink retries itself, also for entries EventBridge failed (HTTP 200).
    return boto3.client(
        "events",
        region_name=region,
        config=BotocoreConfig(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5),
    )


@dataclasses.dataclass(frozen=True)
class Delivery:
    """What happened to one PutEvents signal: sent (with the event id) or given up (with the last error)."""

    rule_name: str
    sent: bool
    attempts: int
    event_id: str | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class _Outgoing:
    """One entry waiting for the delivery thread, with what the log lines call it."""

    entry: dict[str, Any]
    rule_name: str
    what: str
    fallback: str | None


class EventBridgeSink:
    """``PutEvents`` of IssuesFound signals (and, through ``send``, of the job's other entries: its cross-job
    rung reports), retried with exponential backoff, never raising.

    Delivery runs on its own thread (``autostop-put-events``): ``emit`` builds the entry and returns at
    once, so the evaluator goes on judging steps and the other sinks (the metric line, self-termination,
    whose grace period starts when the rule fires) never wait for retries against an unreachable or
    refusing endpoint. ``flush`` waits for what was emitted; ``close`` (the end of training) waits at most
    ``drain_timeout_s`` for it, so a signal of the last steps still goes out.
    """

    def __init__(
        self,
        job: JobIdentity,
        *,
        client_factory: Callable[[str | None], Any] = _default_events_client,
        attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        event_bus_name: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        drain_timeout_s: float = 30.0,
        log: Callable[[str], None] = _print_line,
    ) -> None:
        if attempts <= 0:
            raise ValueError(f"attempts must be > 0, got {attempts}")
        if drain_timeout_s < 0:
            raise ValueError(f"drain_timeout_s must be >= 0, got {drain_timeout_s}")
        if not job.named:
            raise ValueError("PutEvents needs the training job's name or ARN (TRAINING_JOB_NAME/ARN)")
        self.job = job
        self.client_factory = client_factory
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.event_bus_name = event_bus_name
        self.sleep = sleep
        self.drain_timeout_s = drain_timeout_s
        self.log = log
        self.deliveries: list[Delivery] = []
        self._client: Any = None
        self._pending: queue.Queue[_Outgoing | None] = queue.Queue()
        self._outstanding = 0
        self._done = threading.Condition()
        self._thread: threading.Thread | None = None

    def _events_client(self) -> Any:
        if self._client is None:
            self._client = self.client_factory(self.job.region or os.environ.get("AWS_REGION"))
        return self._client

    def emit(self, rule_signal: RuleSignal) -> None:
        """Queue the signal's event for the delivery thread (an entry that cannot be built raises here)."""
        if rule_signal.status is not RuleStatus.ISSUES_FOUND:
            return
        name = rule_signal.rule_name
        self.send(
            put_events_entry(self.job, rule_signal),
            rule_name=name,
            what="stop event",
            fallback=f"the metric line rule:{name}=1 remains",
        )

    def send(self, entry: dict[str, Any], *, rule_name: str, what: str, fallback: str | None = None) -> None:
        """Queue any PutEvents entry of this job (a rung report) for the same delivery thread and retries.
        ``what`` names it in the log lines; ``fallback`` says what still carries the news if it is never
        sent."""
        with self._done:
            self._outstanding += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._delivery_loop, name="autostop-put-events", daemon=True
                )
                self._thread.start()
        self._pending.put(_Outgoing(entry, rule_name, what, fallback))

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every emitted event was sent or given up; ``False`` if ``timeout_s`` passed first."""
        with self._done:
            return self._done.wait_for(lambda: self._outstanding == 0, timeout_s)

    def close(self) -> None:
        """Training ended: give pending deliveries ``drain_timeout_s``, then let the thread go."""
        if not self.flush(self.drain_timeout_s):
            self.log(
                f"debugger: stop events still being sent after {self.drain_timeout_s:g} s at the end of "
                "training; the metric lines remain"
            )
        if self._thread is not None:
            self._pending.put(None)

    def _delivery_loop(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            try:
                self._report(self._deliver(item.entry, item.rule_name), item)
            except Exception as error:  # the thread must outlive any surprise; nothing reaches training
                self.log(f"rule {item.rule_name}: sending the {item.what} failed: {error!r}")
            finally:
                with self._done:
                    self._outstanding -= 1
                    self._done.notify_all()

    def _report(self, delivery: Delivery, outgoing: _Outgoing) -> None:
        self.deliveries.append(delivery)
        if delivery.sent:
            self.log(f"rule {delivery.rule_name}: {outgoing.what} sent (event id {delivery.event_id})")
        else:
            remains = f"; {outgoing.fallback}" if outgoing.fallback else ""
            self.log(
                f"rule {delivery.rule_name}: could not send the {outgoing.what} after {delivery.attempts} "
                f"attempts ({delivery.error}){remains}"
            )

    def _deliver(self, entry: dict[str, Any], rule_name: str) -> Delivery:
        from botocore.exceptions import BotoCoreError, ClientError

        if self.event_bus_name:
            entry = {**entry, "EventBusName": self.event_bus_name}
        error = "not attempted"
        for attempt in range(1, self.attempts + 1):
            retryable = True
            try:
                response = self._events_client().put_events(Entries=[entry])
                results = response.get("Entries") or [{}]
                if not response.get("FailedEntryCount") and results[0].get("EventId"):
                    return Delivery(rule_name, True, attempt, event_id=results[0]["EventId"])
                code = results[0].get("ErrorCode") or "NoEventId"
                error = f"entry failed: {code}: {results[0].get('ErrorMessage', '')}".strip()
                retryable = code in RETRYABLE_ERROR_CODES or code == "NoEventId"
            except ClientError as client_error:
                code = client_error.response.get("Error", {}).get("Code", "")
                status = int(client_error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
                error = f"{code or 'ClientError'} (HTTP {status})"
                retryable = status >= 500 or code in RETRYABLE_ERROR_CODES
            except BotoCoreError as botocore_error:  # connection refused, timeouts, no credentials...
                error = f"{type(botocore_error).__name__}: {botocore_error}"
                retryable = "credential" not in type(botocore_error).__name__.lower()
            except Exception as unexpected:
                error = f"{type(unexpected).__name__}: {unexpected}"
                retryable = False
            if not retryable or attempt == self.attempts:
                return Delivery(rule_name, False, attempt, error=error)
            delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
            # Jitter (not security-relevant): parallel jobs must not retry in lockstep.
            self.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311
        return Delivery(rule_name, False, self.attempts, error=error)


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


class SelfTermination:
    """Stop this job itself when a rule found issues and no stop arrived within ``grace_s`` seconds.

    ``terminate`` defaults to sending SIGTERM to this process: the training entry point's handler then
    finishes the step, writes the final checkpoint and saves the models, exactly as for StopTrainingJob.
    ``rules``: the rule configuration names that may trigger it (``None``: all).
    """

    def __init__(
        self,
        grace_s: float,
        *,
        rules: Iterable[str] | None = None,
        terminate: Callable[[], None] = _terminate_self,
        log: Callable[[str], None] = _print_line,
    ) -> None:
        if grace_s < 0:
            raise ValueError(f"grace_s must be >= 0, got {grace_s}")
        self.grace_s = grace_s
        self.rules = None if rules is None else frozenset(rules)
        self.terminate = terminate
        self.log = log
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.fired_for: str | None = None

    def emit(self, rule_signal: RuleSignal) -> None:
        if rule_signal.status is not RuleStatus.ISSUES_FOUND:
            return
        if self.rules is not None and rule_signal.rule_name not in self.rules:
            return
        with self._lock:
            if self._timer is not None or self._closed:
                return
            self.log(
                f"rule {rule_signal.rule_name} found issues at step {rule_signal.step}: this job stops "
                f"itself in {self.grace_s:g} s unless it is stopped before"
            )
            self._timer = threading.Timer(self.grace_s, self._expire, args=(rule_signal,))
            self._timer.daemon = True
            self._timer.start()

    def _expire(self, rule_signal: RuleSignal) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.fired_for = rule_signal.rule_name
        self.log(
            f"autostop: rule {rule_signal.rule_name} found issues at step {rule_signal.step} and no stop "
            f"arrived within {self.grace_s:g} s; stopping this training job itself (final checkpoint, "
            "models saved)"
        )
        self.terminate()

    def close(self) -> None:
        """Training ended (stopped or finished): nothing left to terminate."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()


class SignalDispatcher:
    """Hand every signal to every sink; a failing sink is logged and never stops the others or training."""

    def __init__(self, sinks: Sequence[Sink], *, log: Callable[[str], None] = _print_line) -> None:
        self.sinks = list(sinks)
        self.log = log
        self.emitted: list[RuleSignal] = []

    def emit(self, rule_signal: RuleSignal) -> None:
        self.emitted.append(rule_signal)
        for sink in self.sinks:
            try:
                sink.emit(rule_signal)
            except Exception as error:
                self.log(f"debugger: signal sink {type(sink).__name__} failed: {error!r}")

    def close(self) -> None:
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as error:
                    self.log(f"debugger: closing signal sink {type(sink).__name__} failed: {error!r}")
