"""What an answer of ``CreateTrainingJob`` means for a claimed job, and which stored requests are refused.

Why it matters: a job is claimed (``launching``, holding a slot) before ``CreateTrainingJob`` is sent, and
the controller can crash, time out or be retried at any point after the claim. Job names are fixed
(``<sweep>-NNN``) and unique in an account and region, so sending the request again is always safe:

- success: the job exists now -> ``launched``;
- ``ResourceInUse`` (SageMaker API reference, CreateTrainingJob, Errors: the name is taken): an earlier try
  already created it -> ``launched`` too (or ``ended``, when it has ended meanwhile);
- ``ValidationException`` or ``ResourceNotFound``: the request itself is refused; sending it again cannot
  help -> ``launch_failed``, its slot freed for the next job;
- anything else (throttling or 5xx after botocore's retries, ``ResourceLimitExceeded``, access denied, a
  dropped connection): raised, the job stays ``launching`` and keeps its slot; the retried event, the next
  job's end or ``autostop sweep resume --table`` sends it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

CREATED: Final = "created"
ALREADY_EXISTS: Final = "already_exists"
REFUSED: Final = "refused"
RETRY: Final = "retry"

JOB_EXISTS_CODES: Final = frozenset({"ResourceInUse"})
REQUEST_REFUSED_CODES: Final = frozenset({"ValidationException", "ResourceNotFound"})


def create_outcome(error_code: str) -> str:
    """``ALREADY_EXISTS``, ``REFUSED`` or ``RETRY`` for the error code ``CreateTrainingJob`` answered."""
    if error_code in JOB_EXISTS_CODES:
        return ALREADY_EXISTS
    if error_code in REQUEST_REFUSED_CODES:
        return REFUSED
    return RETRY


def request_problem(request: Mapping[str, Any], *, job_name: str, job_prefix: str) -> str | None:
    """Why a stored request must not be sent for ``job_name`` (``None``: send it).

    IAM already limits what the controller may create; this keeps a stored request from naming another job
    than the item it sits in, or a job outside the deployed job prefix (compared without case, as the stop
    Lambda compares it).
    """
    name = request.get("TrainingJobName")
    if name != job_name:
        return f"the stored request names the job {name!r}, not {job_name!r}"
    if not job_name.lower().startswith(job_prefix.lower()):
        return f"{job_name} is outside the deployed job prefix {job_prefix!r}"
    return None


def alarm_in_scope(alarm: Mapping[str, Any], *, alarm_prefix: str, job_name: str) -> bool:
    """A stored alarm request is put only under the job's own per-job alarm names (``<prefix><job>/``)."""
    name = alarm.get("AlarmName")
    return isinstance(name, str) and name.startswith(f"{alarm_prefix}{job_name}/")


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(error, "response", None)
    if isinstance(response, Mapping):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def describe(error: BaseException) -> str:
    """One line: the error code (or class) and its message, as AWS answered them."""
    response = getattr(error, "response", None)
    details = response.get("Error", {}) if isinstance(response, Mapping) else {}
    code = str(details.get("Code") or type(error).__name__)
    message = " ".join(str(details.get("Message") or error).split())
    return f"{code}: {message}" if message and message != code else code
