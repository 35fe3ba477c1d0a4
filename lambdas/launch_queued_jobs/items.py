"""The layout of a detached sweep in the sweep-state table: its keys, states, attributes and item size.

Why one module: the ``autostop`` command writes these items and the Lambda reads and changes them; both
must agree on every name. The table is shared with the stop Lambda's rung store (partition key ``sweep``,
the sweep's name; sort key ``rung_job``), whose sort keys start with digits, so the controller's sort keys
start with letters and never meet them:

- ``sweep#``: the sweep item -- its state (``preparing`` while the command writes the jobs, ``detached``,
  ``finished``; any other value, e.g. ``cancelled`` set by hand, launches nothing more), the parallel
  limit, the number of jobs, the next job to claim (``next_index``, 1-based: jobs are claimed in order),
  the slots held (``running``: jobs launching or launched, not yet ended), the counts of ended and refused
  jobs, and the set of jobs claimed whose launch is not confirmed yet (``launching``);
- ``job#<job name>``: one item per job -- its state (``queued`` -> ``launching`` -> ``launched`` ->
  ``ended``, or ``launching`` -> ``launch_failed``), its number, its ``CreateTrainingJob`` request and its
  per-job alarm requests as JSON text, and when each step happened.

Items are in DynamoDB's attribute-value form (``{"S": ...}``, ``{"N": ...}``), as the low-level client
takes them. An item may hold at most 400 KB, counting the UTF-8 length of attribute names and values
(Amazon DynamoDB Developer Guide, "Service, account, and table quotas": item size), so a job whose request
does not fit is refused before anything is written (``item_size_bytes``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

PARTITION_KEY: Final = "sweep"
SORT_KEY: Final = "rung_job"
SWEEP_SORT_KEY: Final = "sweep#"
JOB_SORT_KEY_PREFIX: Final = "job#"
FORMAT_VERSION: Final = 1
MAX_ITEM_BYTES: Final = 400 * 1024

# The sweep item's states.
PREPARING: Final = "preparing"
DETACHED: Final = "detached"
FINISHED: Final = "finished"

# A job item's states.
QUEUED: Final = "queued"
LAUNCHING: Final = "launching"
LAUNCHED: Final = "launched"
ENDED: Final = "ended"
LAUNCH_FAILED: Final = "launch_failed"
JOB_STATES: Final = (QUEUED, LAUNCHING, LAUNCHED, ENDED, LAUNCH_FAILED)

# Attributes of the sweep item.
SWEEP_STATE: Final = "sweep_state"
PARALLEL: Final = "parallel"
TOTAL: Final = "total"
NEXT_INDEX: Final = "next_index"
RUNNING: Final = "running"
ENDED_COUNT: Final = "ended"
FAILED_COUNT: Final = "launch_failed"
LAUNCHING_SET: Final = "launching"
CREATED_AT: Final = "created_at"
FINISHED_AT: Final = "finished_at"
FORMAT: Final = "format_version"

# Attributes of a job item.
JOB_STATE: Final = "job_state"
JOB_INDEX: Final = "job_index"
JOB_NAME: Final = "job_name"
REQUEST: Final = "request"
ALARMS: Final = "alarms"
CLAIMED_AT: Final = "claimed_at"
LAUNCHED_AT: Final = "launched_at"
ENDED_AT: Final = "ended_at"
END_STATUS: Final = "end_status"
FAILURE: Final = "failure"
MAX_FAILURE_LENGTH: Final = 1000

# Job names are <sweep name>-NNN (training/sweep/spec.py job_name); the sweep is found from the name alone.
JOB_NUMBER_WIDTH: Final = 3
JOB_NAME_PATTERN: Final = re.compile(r"(?P<sweep>[a-zA-Z0-9](-*[a-zA-Z0-9])*)-(?P<number>[0-9]{3})")
# A number's size: about one byte per two significant digits plus one (the developer guide's estimate);
# counted as at most 21 bytes (38 digits), never less than it could be.
MAX_NUMBER_BYTES: Final = 21


def job_name(sweep: str, index: int) -> str:
    """The name of the sweep's ``index``-th job (1-based), as the launcher names it."""
    return f"{sweep}-{index:0{JOB_NUMBER_WIDTH}d}"


def sweep_of_job(name: str) -> str | None:
    """The sweep a job name belongs to (``vision-lr-007`` -> ``vision-lr``); ``None`` for other names."""
    match = JOB_NAME_PATTERN.fullmatch(name)
    return match.group("sweep") if match else None


def sweep_key(sweep: str) -> dict[str, dict[str, str]]:
    return {PARTITION_KEY: {"S": sweep}, SORT_KEY: {"S": SWEEP_SORT_KEY}}


def job_key(sweep: str, name: str) -> dict[str, dict[str, str]]:
    return {PARTITION_KEY: {"S": sweep}, SORT_KEY: {"S": JOB_SORT_KEY_PREFIX + name}}


def _number(item: Mapping[str, Any], name: str) -> int:
    return int(item[name]["N"])


def _text(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    return str(value["S"]) if value else ""


@dataclasses.dataclass(frozen=True)
class SweepState:
    """The sweep item, read back."""

    name: str
    state: str
    parallel: int
    total: int
    next_index: int
    running: int
    ended: int
    launch_failed: int
    launching: frozenset[str]
    created_at: str
    finished_at: str

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> SweepState:
        return cls(
            name=str(item[PARTITION_KEY]["S"]),
            state=str(item[SWEEP_STATE]["S"]),
            parallel=_number(item, PARALLEL),
            total=_number(item, TOTAL),
            next_index=_number(item, NEXT_INDEX),
            running=_number(item, RUNNING),
            ended=_number(item, ENDED_COUNT),
            launch_failed=_number(item, FAILED_COUNT),
            launching=frozenset(item.get(LAUNCHING_SET, {}).get("SS", ())),
            created_at=_text(item, CREATED_AT),
            finished_at=_text(item, FINISHED_AT),
        )

    @property
    def queued(self) -> int:
        """Jobs not claimed yet."""
        return max(0, self.total - self.next_index + 1)

    @property
    def can_claim(self) -> bool:
        """A job is waiting and a slot is free (what the conditional claim checks again, atomically)."""
        return self.state == DETACHED and self.queued > 0 and self.running < self.parallel

    @property
    def done(self) -> bool:
        """Every job was claimed and none holds a slot: nothing will ever be launched again."""
        return self.queued == 0 and self.running == 0


@dataclasses.dataclass(frozen=True)
class JobItem:
    """A job item, read back. ``request`` and ``alarms`` are what the command stored."""

    sweep: str
    name: str
    index: int
    state: str
    request: Mapping[str, Any]
    alarms: tuple[Mapping[str, Any], ...]
    end_status: str
    failure: str

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> JobItem:
        alarms = json.loads(_text(item, ALARMS) or "[]")
        return cls(
            sweep=str(item[PARTITION_KEY]["S"]),
            name=str(item[JOB_NAME]["S"]),
            index=_number(item, JOB_INDEX),
            state=str(item[JOB_STATE]["S"]),
            request=json.loads(_text(item, REQUEST)),
            alarms=tuple(alarms),
            end_status=_text(item, END_STATUS),
            failure=_text(item, FAILURE),
        )


def sweep_item(*, sweep: str, parallel: int, total: int, created_at: str) -> dict[str, Any]:
    """A new sweep item, ``preparing``: no claim succeeds until the command has written every job."""
    if parallel < 1:
        raise ValueError(f"parallel must be at least 1, got {parallel}")
    if not 1 <= total < 10**JOB_NUMBER_WIDTH:
        raise ValueError(f"a sweep has 1-{10**JOB_NUMBER_WIDTH - 1} jobs, got {total}")
    return {
        **sweep_key(sweep),
        FORMAT: {"N": str(FORMAT_VERSION)},
        SWEEP_STATE: {"S": PREPARING},
        PARALLEL: {"N": str(parallel)},
        TOTAL: {"N": str(total)},
        NEXT_INDEX: {"N": "1"},
        RUNNING: {"N": "0"},
        ENDED_COUNT: {"N": "0"},
        FAILED_COUNT: {"N": "0"},
        CREATED_AT: {"S": created_at},
    }


def encode(document: object) -> str:
    """JSON text as stored: compact, keys sorted (the same request gives the same bytes)."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def queued_job_item(
    *,
    sweep: str,
    index: int,
    request: Mapping[str, Any],
    alarms: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """A job item, ``queued``, holding the request exactly as ``CreateTrainingJob`` will get it."""
    name = job_name(sweep, index)
    if request.get("TrainingJobName") != name:
        raise ValueError(
            f"job {index} of {sweep} must be named {name}, its request names it "
            f"{request.get('TrainingJobName')!r}"
        )
    return {
        **job_key(sweep, name),
        JOB_NAME: {"S": name},
        JOB_INDEX: {"N": str(index)},
        JOB_STATE: {"S": QUEUED},
        REQUEST: {"S": encode(request)},
        ALARMS: {"S": encode(list(alarms))},
    }


def item_size_bytes(item: Mapping[str, Any]) -> int:
    """An upper bound of the item's size as DynamoDB counts it against the 400 KB limit."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, content),) = value.items()
    if kind == "S":
        return len(str(content).encode())
    if kind == "N":
        return MAX_NUMBER_BYTES
    if kind == "SS":
        return sum(len(str(member).encode()) for member in content)
    if kind == "BOOL" or kind == "NULL":
        return 1
    raise ValueError(f"no size rule for attribute type {kind}")
