"""Signing the in-container event, so the stop Lambda acts only on events the job itself sent.

The launcher gives every job a random key (hyperparameter ``autostop_signing_key``; the local sweep runner
passes it as ``AUTOSTOP_SIGNING_KEY``). Each event's detail carries ``Provenance``: the HMAC-SHA256, with
that key, of a canonical encoding of the job name, rule, status, step and signing time. The stop Lambda
reads the key from ``DescribeTrainingJob`` and verifies (``lambdas/stop_training_job/provenance.py``, the
same encoding: tests/training/debugger/test_contract.py keeps them equal). Why here and not imported from
the Lambda package: the training image is built from ``training/`` alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from pathlib import Path

from training.debugger import contract

SIGNING_KEY_ENV = "AUTOSTOP_SIGNING_KEY"
OPT_ML_ENV = "AUTOSTOP_OPT_ML"
SAGEMAKER_OPT_ML = "/opt/ml"


class SigningKeyError(ValueError):
    """The job's signing key is present but unusable; the message names where it came from."""


def new_signing_key() -> str:
    """A fresh random key for one job (256 bits, URL-safe: a valid hyperparameter and tag-free value)."""
    return secrets.token_urlsafe(32)


def signed_message(*, job_name: str, rule_name: str, status: str, step: int | None, signed_at: str) -> bytes:
    """The canonical bytes that are signed: a compact JSON array, so no field can run into another.

    The job name is lowercased: SageMaker may spell it lowercased in ARNs, and the key is the job's own.
    """
    fields = [contract.SIGNED_MESSAGE_VERSION, job_name.lower(), rule_name, status, step, signed_at]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def rung_report_message(
    *, job_name: str, rung: int, step: int, metric: str, objective: str, signed_at: str
) -> bytes:
    """The canonical bytes of a cross-job rung report: the same encoding under its own version, over the
    rung, the step, the objective's metric and its value as the event carries it (text)."""
    fields = [
        contract.RUNG_REPORT_MESSAGE_VERSION,
        job_name.lower(),
        rung,
        step,
        metric,
        objective,
        signed_at,
    ]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def sign(key: str, message: bytes) -> str:
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def checked_key(key: str, origin: str) -> str:
    key = key.strip('"')  # the SageMaker Python SDK JSON-quotes hyperparameter values
    if not contract.SIGNING_KEY_PATTERN.fullmatch(key):
        raise SigningKeyError(f"{origin}: the signing key must be 32-256 of A-Z a-z 0-9 _ -")
    return key


def hyperparameters_file(environ: Mapping[str, str]) -> Path:
    """SageMaker's ``<opt_ml>/input/config/hyperparameters.json`` (``AUTOSTOP_OPT_ML`` moves the root)."""
    return Path(environ.get(OPT_ML_ENV) or SAGEMAKER_OPT_ML) / "input" / "config" / "hyperparameters.json"


def signing_key_from(environ: Mapping[str, str]) -> str | None:
    """The job's key: ``AUTOSTOP_SIGNING_KEY``, else the ``autostop_signing_key`` hyperparameter in
    ``<opt_ml>/input/config/hyperparameters.json`` (SageMaker's file); ``None`` when the job has none."""
    if environ.get(SIGNING_KEY_ENV):
        return checked_key(environ[SIGNING_KEY_ENV], SIGNING_KEY_ENV)
    path = hyperparameters_file(environ)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # no file (local runs) or one the hyperparameter parser reports itself
    key = values.get(contract.SIGNING_KEY_HYPERPARAMETER) if isinstance(values, dict) else None
    if key is None:
        return None
    if not isinstance(key, str):
        raise SigningKeyError(f"{path}: {contract.SIGNING_KEY_HYPERPARAMETER} must be a string")
    return checked_key(key, f"{path}: {contract.SIGNING_KEY_HYPERPARAMETER}")


__all__ = [
    "SigningKeyError",
    "checked_key",
    "hyperparameters_file",
    "new_signing_key",
    "rung_report_message",
    "sign",
    "signed_message",
    "signing_key_from",
]
