"""Verifying that an in-container event came from the job it names (``autostop.training`` events only: the
rule events and the cross-job rung reports).

Why: any principal allowed to ``PutEvents`` on the bus can send an event of source ``autostop.training``
about any job; the stop path must act only on evidence the job itself produced. The launcher gives every
job a random key (hyperparameter ``autostop_signing_key``); the job's evaluator signs each event with it
(``training/debugger/provenance.py``, the same encoding, kept equal by a test); this module checks the
signature against the key that ``DescribeTrainingJob`` returns for the job the event names, with a
constant-time comparison, and refuses events signed too long ago, in the future, or before the job started.

Replays: a captured signed event can be delivered again within the window. It can only ask to stop the job
that signed it, for the rule that job found with issues, which is what the genuine delivery asked already
(EventBridge itself delivers at least once); once the job is Stopping the event is a no-op. Another job's
key does not verify (the job name is in the signed message and every job has its own key), and an event
older than ``SIGNATURE_MAX_AGE_S`` is refused. Managed Debugger (``aws.sagemaker``) and alarm
(``aws.cloudwatch``) events need none of this: only AWS can send events of those sources.

Pure: ``hmac``/``hashlib`` only; the caller passes the clock.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import hmac
import json
from collections.abc import Mapping

from .vocabulary import (
    MAX_CLOCK_SKEW_S,
    RUNG_REPORT_MESSAGE_VERSION,
    SIGNATURE_MAX_AGE_S,
    SIGNED_MESSAGE_VERSION,
    SIGNING_KEY_HYPERPARAMETER,
    SIGNING_KEY_PATTERN,
)


@dataclasses.dataclass(frozen=True)
class Signature:
    """The ``detail.Provenance`` of an in-container event: when it was signed and the HMAC, as sent."""

    signed_at: str
    value: str


def signed_message(*, job_name: str, rule_name: str, status: str, step: int | None, signed_at: str) -> bytes:
    """The canonical bytes that are signed: a compact JSON array, so no field can run into another.

    The job name is lowercased: SageMaker may spell it lowercased in ARNs, and the key is the job's own.
    """
    fields = [SIGNED_MESSAGE_VERSION, job_name.lower(), rule_name, status, step, signed_at]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def rung_report_message(
    *, job_name: str, rung: int, step: int, metric: str, objective: str, signed_at: str
) -> bytes:
    """The canonical bytes of a cross-job rung report: the rule event's encoding with its own version (a
    rule event's signature never verifies as a rung report, nor the reverse), over the rung, the step, the
    objective's metric and its value as the event carries it (text: signed byte for byte)."""
    fields = [RUNG_REPORT_MESSAGE_VERSION, job_name.lower(), rung, step, metric, objective, signed_at]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def signature(key: str, message: bytes) -> str:
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signing_key(description: Mapping[str, object]) -> str | None:
    """The job's key from its ``DescribeTrainingJob`` response, or ``None`` when it was launched without."""
    hyperparameters = description.get("HyperParameters")
    if not isinstance(hyperparameters, Mapping):
        return None
    key = hyperparameters.get(SIGNING_KEY_HYPERPARAMETER)
    if not isinstance(key, str):
        return None
    key = key.strip('"')  # the SageMaker Python SDK JSON-quotes hyperparameter values
    return key if SIGNING_KEY_PATTERN.fullmatch(key) else None


def parse_time(value: str) -> datetime.datetime | None:
    """``2026-11-20T10:15:31Z`` (the documented form, UTC, to the second), else ``None``."""
    try:
        moment = datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return moment.replace(tzinfo=datetime.UTC)


def _job_start(description: Mapping[str, object]) -> datetime.datetime | None:
    """When the job was created: boto3 gives a datetime; the local runner and JSON give epoch seconds."""
    created = description.get("CreationTime")
    if isinstance(created, datetime.datetime):
        return created if created.tzinfo else created.replace(tzinfo=datetime.UTC)
    if isinstance(created, int | float) and not isinstance(created, bool):
        return datetime.datetime.fromtimestamp(created, datetime.UTC)
    return None


def problem(
    *,
    job_name: str,
    rule_name: str,
    status: str,
    step: int | None,
    provenance: Signature | None,
    description: Mapping[str, object],
    now: datetime.datetime,
) -> str | None:
    """Why the event cannot be trusted to come from ``job_name``; ``None`` when it verifies."""
    if provenance is None:
        return "the in-container event is not signed"
    message = signed_message(
        job_name=job_name, rule_name=rule_name, status=status, step=step, signed_at=provenance.signed_at
    )
    return message_problem(message, provenance=provenance, description=description, now=now)


def rung_report_problem(
    *,
    job_name: str,
    rung: int,
    step: int,
    metric: str,
    objective: str,
    provenance: Signature | None,
    description: Mapping[str, object],
    now: datetime.datetime,
) -> str | None:
    """Why a rung report cannot be trusted to come from ``job_name``; ``None`` when it verifies."""
    if provenance is None:
        return "the rung report is not signed"
    message = rung_report_message(
        job_name=job_name,
        rung=rung,
        step=step,
        metric=metric,
        objective=objective,
        signed_at=provenance.signed_at,
    )
    return message_problem(message, provenance=provenance, description=description, now=now)


def message_problem(
    message: bytes, *, provenance: Signature, description: Mapping[str, object], now: datetime.datetime
) -> str | None:
    """The checks every signed event passes: the job's key verifies ``message``, signed inside the window."""
    key = signing_key(description)
    if key is None:
        return f"the job has no {SIGNING_KEY_HYPERPARAMETER} hyperparameter to verify the event with"
    if not hmac.compare_digest(signature(key, message), provenance.value):
        return "the event's signature does not verify with the job's key"
    signed_at = parse_time(provenance.signed_at)
    if signed_at is None:
        return "the event's signing time is not a UTC ISO-8601 time"
    skew = datetime.timedelta(seconds=MAX_CLOCK_SKEW_S)
    if signed_at > now + skew:
        return "the event is signed in the future"
    if now - signed_at > datetime.timedelta(seconds=SIGNATURE_MAX_AGE_S):
        return f"the event is stale (signed more than {SIGNATURE_MAX_AGE_S} s ago)"
    started = _job_start(description)
    if started is not None and signed_at < started - skew:
        return "the event is signed before the job was created"
    return None
