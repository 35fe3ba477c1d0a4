"""The alarm janitor's scheduled handler: list per-job alarms, describe their jobs, delete the ended ones'.

Settings (environment, set by ``infra/alarm_janitor.py``): ``AUTOSTOP_ALARM_PREFIX`` and
``AUTOSTOP_JOB_PREFIX`` (the alarms listed are ``<alarm prefix><job prefix>*``, exactly what its IAM policy
allows). Idempotent: a second run finds nothing left to delete. A job whose ``DescribeTrainingJob`` is denied
(IAM allows it only on opted-in jobs) or fails keeps its alarms; throttling and 5xx are retried by botocore,
then raised (the function's retries and dead-letter queue take over).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Final

from . import plan

DELETE_ALARMS_BATCH: Final = 100  # DeleteAlarms accepts at most 100 names per call.
MAX_ATTEMPTS: Final = 3
NOT_FOUND_CODES: Final = frozenset({"ResourceNotFound", "ResourceNotFoundException"})

logger = logging.getLogger("alarm_janitor")
logger.setLevel(logging.INFO)

_clients: dict[str, Any] = {}


def _client(service_name: str) -> Any:
    client = _clients.get(service_name)
    if client is None:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            service_name,
            config=Config(
                retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
                connect_timeout=2,
                read_timeout=5,
            ),
        )
        _clients[service_name] = client
    return client


def reset_clients() -> None:
    """Forget cached clients (tests point botocore at a different local endpoint per test)."""
    _clients.clear()


def handler(event: object, context: object) -> dict[str, object]:
    """One sweep over the per-job alarms (the EventBridge schedule's event is not read)."""
    alarm_prefix = os.environ["AUTOSTOP_ALARM_PREFIX"]
    job_prefix = os.environ.get("AUTOSTOP_JOB_PREFIX", "")
    if not alarm_prefix:
        raise ValueError("AUTOSTOP_ALARM_PREFIX must not be empty: the janitor would list every alarm")
    names = _alarm_names(alarm_prefix + job_prefix)
    grouped = plan.alarms_by_job(names, alarm_prefix)
    statuses = {job_name: _job_status(job_name) for job_name in grouped}
    doomed = plan.alarms_to_delete(grouped, statuses)
    cloudwatch = _client("cloudwatch")
    for start in range(0, len(doomed), DELETE_ALARMS_BATCH):
        cloudwatch.delete_alarms(AlarmNames=doomed[start : start + DELETE_ALARMS_BATCH])
    outcome: dict[str, object] = {
        "jobs": len(grouped),
        "alarms_deleted": doomed,
        "jobs_kept_unknown": sorted(job for job, status in statuses.items() if status is None),
    }
    logger.info(json.dumps({"message": "alarm janitor run", **outcome}))
    return outcome


def _alarm_names(prefix: str) -> list[str]:
    names: list[str] = []
    paginator = _client("cloudwatch").get_paginator("describe_alarms")
    for page in paginator.paginate(AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"]):
        for alarm in page.get("MetricAlarms", []):
            name = alarm.get("AlarmName")
            # Re-checked: deletion must not depend on the server honouring the prefix filter.
            if isinstance(name, str) and name.startswith(prefix):
                names.append(name)
    return names


def _job_status(job_name: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        description = _client("sagemaker").describe_training_job(TrainingJobName=job_name)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        message = str(error.response.get("Error", {}).get("Message", "")).lower()
        # SageMaker answers a missing job with ValidationException "Requested resource not found."
        if code in NOT_FOUND_CODES or (code == "ValidationException" and "not found" in message):
            return plan.GONE
        logger.warning(
            json.dumps({"message": "job status unknown: its alarms are kept", "job": job_name, "code": code})
        )
        return None
    status = description.get("TrainingJobStatus")
    return status if isinstance(status, str) else None
