"""Every change of a detached sweep's state, each one conditional write (``items`` has the layout).

Why conditional writes, and which: the controller runs in as many Lambda invocations as there are events,
at the same time, each of which may be a duplicate or a retry, plus the ``autostop`` command that detached
the sweep. DynamoDB applies a conditional write, and all writes of a transaction, atomically, or not at all
(Amazon DynamoDB Developer Guide, "Condition expressions" and "Amazon DynamoDB Transactions"), so:

- **claim** (``claim_next``): one transaction moves the job at the cursor from ``queued`` to ``launching``
  and, on the sweep item, adds one to ``running``, moves the cursor on and records the job in
  ``launching`` -- only if the cursor is still where it was read and ``running < parallel``. Two
  invocations reading the same free slot cannot both win it: the second finds the cursor moved (or no slot)
  and reads again. No job is claimed twice, and never more than ``parallel`` hold a slot.
- **end** (``mark_ended``): the job goes to ``ended`` only from ``launching`` or ``launched``, and in the
  same transaction its slot is freed; a second delivery of the same event fails the condition and frees
  nothing.
- **launched** / **launch failed**: only from ``launching``, so the outcome of a launch is recorded once
  (a refused launch frees its slot in the same transaction).

A transaction cancelled for a condition answers ``TransactionCanceledException`` with one reason per item
(``ConditionalCheckFailed``, ``TransactionConflict`` when another transaction held the item, ``None`` where
it passed); conflicts are tried again here at once, conditions are what the caller decides on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from . import items

CONDITION_FAILED: Final = "ConditionalCheckFailed"
TRANSACTION_CONFLICT: Final = "TransactionConflict"
TRANSACTION_CANCELED: Final = "TransactionCanceledException"
# A claim reads the sweep item and writes conditionally; each lost race means another claim or end
# succeeded, so this bounds only a pathological pile-up (the invocation fails and is retried).
MAX_CLAIM_ATTEMPTS: Final = 50
MAX_CONFLICT_ATTEMPTS: Final = 10
FIRST_CONFLICT_PAUSE_SECONDS: Final = 0.05
UNKNOWN_REASON: Final = "Unknown"


class SweepExists(Exception):
    """A sweep of that name is already in the table: nothing was written."""

    def __init__(self, state: items.SweepState | None) -> None:
        super().__init__("sweep exists")
        self.state = state


class JobExists(Exception):
    """A job item of that name is already in the table: nothing was written for it."""


class Contention(RuntimeError):
    """Conditional writes kept losing races for longer than any normal pile-up of events."""


def _names(**names: str) -> dict[str, str]:
    return {f"#{alias}": name for alias, name in names.items()}


class SweepQueue:
    """The detached sweeps of one table, through a low-level DynamoDB client (``boto3.client("dynamodb")``).

    ``now`` gives the timestamps written (ISO 8601 text); ``log`` receives one dict per notable event;
    ``pause`` waits before a transaction that conflicted with another is tried again (backoff).
    """

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        now: Callable[[], str],
        log: Callable[[Mapping[str, object]], None] = lambda _: None,
        pause: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.table_name = table_name
        self.now = now
        self.log = log
        self.pause = pause

    # --- reading ---

    def sweep(self, name: str) -> items.SweepState | None:
        answer = self.client.get_item(
            TableName=self.table_name, Key=items.sweep_key(name), ConsistentRead=True
        )
        item = answer.get("Item")
        return items.SweepState.from_item(item) if item else None

    def job(self, sweep: str, name: str) -> items.JobItem | None:
        answer = self.client.get_item(
            TableName=self.table_name, Key=items.job_key(sweep, name), ConsistentRead=True
        )
        item = answer.get("Item")
        return items.JobItem.from_item(item) if item else None

    # --- detaching (the command) ---

    def create_sweep(self, *, name: str, parallel: int, total: int) -> None:
        """Write the sweep item, ``preparing``; ``SweepExists`` if the name is taken (nothing overwritten)."""
        item = items.sweep_item(sweep=name, parallel=parallel, total=total, created_at=self.now())
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(#key)",
                ExpressionAttributeNames=_names(key=items.SORT_KEY),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise SweepExists(self.sweep(name)) from None

    def add_job(self, item: Mapping[str, Any]) -> None:
        """Write a queued job item; ``JobExists`` if one of that name is there (nothing overwritten)."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=dict(item),
                ConditionExpression="attribute_not_exists(#key)",
                ExpressionAttributeNames=_names(key=items.SORT_KEY),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise JobExists(item[items.JOB_NAME]["S"]) from None

    def open_sweep(self, name: str) -> None:
        """``preparing`` -> ``detached``: every job is written, claims may begin."""
        self.client.update_item(
            TableName=self.table_name,
            Key=items.sweep_key(name),
            UpdateExpression="SET #state = :detached",
            ConditionExpression="#state = :preparing",
            ExpressionAttributeNames=_names(state=items.SWEEP_STATE),
            ExpressionAttributeValues={
                ":detached": {"S": items.DETACHED},
                ":preparing": {"S": items.PREPARING},
            },
        )

    # --- the controller's steps ---

    def claim_next(self, sweep: str) -> str | None:
        """Claim the next queued job if a slot is free: its name (now ``launching``), or ``None``."""
        for _ in range(MAX_CLAIM_ATTEMPTS):
            state = self.sweep(sweep)
            if state is None or not state.can_claim:
                return None
            index = state.next_index
            name = items.job_name(sweep, index)
            reasons = self._transact(
                [
                    self._update_sweep(
                        sweep,
                        "SET #running = #running + :one, #next = #next + :one ADD #launching :job",
                        condition="#state = :detached AND #next = :index AND #running < #parallel",
                        names=_names(
                            running=items.RUNNING,
                            next=items.NEXT_INDEX,
                            launching=items.LAUNCHING_SET,
                            state=items.SWEEP_STATE,
                            parallel=items.PARALLEL,
                        ),
                        values={
                            ":one": {"N": "1"},
                            ":job": {"SS": [name]},
                            ":detached": {"S": items.DETACHED},
                            ":index": {"N": str(index)},
                        },
                    ),
                    self._update_job(
                        sweep,
                        name,
                        "SET #job_state = :launching, #claimed_at = :now",
                        condition="#job_state = :queued",
                        names=_names(job_state=items.JOB_STATE, claimed_at=items.CLAIMED_AT),
                        values={
                            ":launching": {"S": items.LAUNCHING},
                            ":queued": {"S": items.QUEUED},
                            ":now": {"S": self.now()},
                        },
                    ),
                ]
            )
            if reasons is None:
                return name
            sweep_reason, job_reason = reasons
            if sweep_reason is None and job_reason == CONDITION_FAILED:
                # The sweep's cursor points at a job item that is not queued: only a hand-edited table gets
                # here. Step over it so the rest of the sweep is not held up behind it.
                self._skip(sweep, index, name)
            # Otherwise another invocation claimed or freed a slot first: read the sweep again.
        raise Contention(f"{sweep}: no claim settled after {MAX_CLAIM_ATTEMPTS} attempts")

    def mark_launched(self, sweep: str, name: str) -> bool:
        """``launching`` -> ``launched`` (``False``: another invocation recorded its outcome first)."""
        reasons = self._transact(
            [
                self._update_job(
                    sweep,
                    name,
                    "SET #job_state = :launched, #launched_at = :now",
                    condition="#job_state = :launching",
                    names=_names(job_state=items.JOB_STATE, launched_at=items.LAUNCHED_AT),
                    values={
                        ":launched": {"S": items.LAUNCHED},
                        ":launching": {"S": items.LAUNCHING},
                        ":now": {"S": self.now()},
                    },
                ),
                self._update_sweep(
                    sweep,
                    "DELETE #launching :job",
                    names=_names(launching=items.LAUNCHING_SET),
                    values={":job": {"SS": [name]}},
                ),
            ]
        )
        return reasons is None

    def mark_launch_failed(self, sweep: str, name: str, failure: str) -> bool:
        """``launching`` -> ``launch_failed``, freeing its slot (``False``: its outcome was recorded)."""
        reasons = self._transact(
            [
                self._update_job(
                    sweep,
                    name,
                    "SET #job_state = :failed, #failure = :failure, #ended_at = :now",
                    condition="#job_state = :launching",
                    names=_names(job_state=items.JOB_STATE, failure=items.FAILURE, ended_at=items.ENDED_AT),
                    values={
                        ":failed": {"S": items.LAUNCH_FAILED},
                        ":launching": {"S": items.LAUNCHING},
                        ":failure": {"S": failure[: items.MAX_FAILURE_LENGTH] or "refused"},
                        ":now": {"S": self.now()},
                    },
                ),
                self._free_slot(sweep, name, counter=items.FAILED_COUNT),
            ]
        )
        return reasons is None

    def mark_ended(self, sweep: str, name: str, status: str) -> bool:
        """A job that held a slot ended: ``ended``, its slot freed. ``False``: it did not hold one (already
        ended -- a duplicate event -- or never claimed), and nothing changed."""
        reasons = self._transact(
            [
                self._update_job(
                    sweep,
                    name,
                    "SET #job_state = :ended, #end_status = :status, #ended_at = :now",
                    condition="#job_state IN (:launching, :launched)",
                    names=_names(
                        job_state=items.JOB_STATE, end_status=items.END_STATUS, ended_at=items.ENDED_AT
                    ),
                    values={
                        ":ended": {"S": items.ENDED},
                        ":status": {"S": status},
                        ":launching": {"S": items.LAUNCHING},
                        ":launched": {"S": items.LAUNCHED},
                        ":now": {"S": self.now()},
                    },
                ),
                self._free_slot(sweep, name, counter=items.ENDED_COUNT),
            ]
        )
        return reasons is None

    def finish_if_done(self, sweep: str) -> bool:
        """Mark the sweep ``finished`` once every job was claimed and none holds a slot (once)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=items.sweep_key(sweep),
                UpdateExpression="SET #state = :finished, #finished_at = :now",
                ConditionExpression="#state = :detached AND #running = :zero AND #next > #total",
                ExpressionAttributeNames=_names(
                    state=items.SWEEP_STATE,
                    finished_at=items.FINISHED_AT,
                    running=items.RUNNING,
                    next=items.NEXT_INDEX,
                    total=items.TOTAL,
                ),
                ExpressionAttributeValues={
                    ":finished": {"S": items.FINISHED},
                    ":detached": {"S": items.DETACHED},
                    ":zero": {"N": "0"},
                    ":now": {"S": self.now()},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # --- helpers ---

    def _free_slot(self, sweep: str, name: str, *, counter: str) -> dict[str, Any]:
        return self._update_sweep(
            sweep,
            "SET #running = #running - :one, #counter = #counter + :one DELETE #launching :job",
            names=_names(running=items.RUNNING, counter=counter, launching=items.LAUNCHING_SET),
            values={":one": {"N": "1"}, ":job": {"SS": [name]}},
        )

    def _skip(self, sweep: str, index: int, name: str) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=items.sweep_key(sweep),
                UpdateExpression="SET #next = #next + :one",
                ConditionExpression="#next = :index",
                ExpressionAttributeNames=_names(next=items.NEXT_INDEX),
                ExpressionAttributeValues={":one": {"N": "1"}, ":index": {"N": str(index)}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return  # someone else moved the cursor already
        self.log({"message": "job item not queued at the cursor: skipped", "sweep": sweep, "job": name})

    def _update_sweep(
        self,
        sweep: str,
        expression: str,
        *,
        names: Mapping[str, str],
        values: Mapping[str, Any],
        condition: str | None = None,
    ) -> dict[str, Any]:
        return self._update(items.sweep_key(sweep), expression, names, values, condition)

    def _update_job(
        self,
        sweep: str,
        name: str,
        expression: str,
        *,
        names: Mapping[str, str],
        values: Mapping[str, Any],
        condition: str,
    ) -> dict[str, Any]:
        return self._update(items.job_key(sweep, name), expression, names, values, condition)

    def _update(
        self,
        key: Mapping[str, Any],
        expression: str,
        names: Mapping[str, str],
        values: Mapping[str, Any],
        condition: str | None,
    ) -> dict[str, Any]:
        update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": dict(key),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": dict(names),
            "ExpressionAttributeValues": dict(values),
        }
        if condition is not None:
            update["ConditionExpression"] = condition
        return {"Update": update}

    def _transact(self, operations: Sequence[Mapping[str, Any]]) -> list[str | None] | None:
        """Run the transaction: ``None`` when it committed, else one reason per operation (``None``: that
        operation's condition held). Conflicts with other transactions are tried again."""
        for attempt in range(MAX_CONFLICT_ATTEMPTS):
            try:
                self.client.transact_write_items(TransactItems=list(operations))
            except Exception as error:
                reasons = _cancellation_reasons(error, len(operations))
                if reasons is None:
                    raise
                if TRANSACTION_CONFLICT in reasons:
                    self.pause(FIRST_CONFLICT_PAUSE_SECONDS * 2**attempt)
                    continue
                return reasons
            return None
        raise Contention(f"a transaction kept conflicting with others {MAX_CONFLICT_ATTEMPTS} times")


def _cancellation_reasons(error: BaseException, operations: int) -> list[str | None] | None:
    """The per-operation reasons of a cancelled transaction (``None`` for another error); an answer without
    them counts every operation as failed for an unknown reason."""
    response = getattr(error, "response", None)
    if not isinstance(response, Mapping):
        return None
    if response.get("Error", {}).get("Code") != TRANSACTION_CANCELED:
        return None
    reasons: list[str | None] = []
    for reason in response.get("CancellationReasons") or []:
        code = reason.get("Code") if isinstance(reason, Mapping) else None
        reasons.append(None if code in (None, "None") else str(code))
    if len(reasons) != operations:
        return [UNKNOWN_REASON] * operations
    return reasons
