"""The sweep controller's handler: a training job ended -> its detached sweep launches the next queued job.

Settings (environment, set by ``infra/sweep_launcher.py``): ``AUTOSTOP_SWEEP_TABLE`` (the sweep-state
table), ``AUTOSTOP_JOB_PREFIX`` (requests for other names are refused) and ``AUTOSTOP_ALARM_PREFIX`` (the
per-job alarms put are ``<prefix><job>/...`` only). Events that are not a terminal state change of a job
named ``<sweep>-NNN`` are skipped with a reason, and a malformed one with a WARNING line naming the field:
they never raise, so they are never retried. Throttling and 5xx are retried by botocore, then raised: the
function's retries and dead-letter queue take over, and a retried event is safe (``controller``).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from typing import Any, Final

from . import controller, events
from .queue import SweepQueue

MAX_ATTEMPTS: Final = 3
# The settings, as infra/sweep_launcher.py names them (the table's variable is infra/sweep_state.py's).
TABLE_ENV: Final = "AUTOSTOP_SWEEP_TABLE"
JOB_PREFIX_ENV: Final = "AUTOSTOP_JOB_PREFIX"
ALARM_PREFIX_ENV: Final = "AUTOSTOP_ALARM_PREFIX"

logger = logging.getLogger("launch_queued_jobs")
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
                read_timeout=10,
            ),
        )
        _clients[service_name] = client
    return client


def reset_clients() -> None:
    """Forget cached clients (tests point botocore at a different local endpoint per test)."""
    _clients.clear()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _log(record: object) -> None:
    logger.info(json.dumps(record, default=str, sort_keys=True))


def handler(event: object, context: object) -> dict[str, object]:
    """One EventBridge event; the outcome is returned and logged as one JSON line."""
    ended = events.job_ended(event)
    if isinstance(ended, events.Ignored):
        outcome: dict[str, object] = {"action": "skip", "reason": ended.reason}
        if ended.reason == events.MALFORMED:
            logger.warning(json.dumps({"message": "malformed event skipped", "field": ended.field}))
        _log(outcome)
        return outcome
    table_name = os.environ[TABLE_ENV]
    if not table_name:
        raise ValueError(f"{TABLE_ENV} must name the sweep-state table")
    scope = controller.Scope(
        job_prefix=os.environ.get(JOB_PREFIX_ENV, ""), alarm_prefix=os.environ[ALARM_PREFIX_ENV]
    )
    queue = SweepQueue(_client("dynamodb"), table_name, now=_now, log=_log)
    sweep_controller = controller.Controller(
        queue=queue,
        sagemaker=_client("sagemaker"),
        cloudwatch=_client("cloudwatch"),
        scope=scope,
        log=_log,
    )
    outcome = sweep_controller.job_ended(ended)
    _log(outcome)
    return outcome
