"""Where the sweep's objectives at each rung live between Lambda invocations: a DynamoDB table.

Why DynamoDB: every job of a SageMaker sweep reports to a Lambda that keeps no state, possibly several at
once; the table is the sweep's memory. One item per (sweep, rung, job): the partition key is the sweep, the
sort key ``<rung, zero-padded>#<job>``, so one strongly consistent ``Query`` returns everything recorded at a
rung. The write is conditional (``attribute_not_exists``): a job's first report at a rung is the one that
counts, and a retried or duplicated event can neither overwrite it nor be counted twice.

DynamoDB numbers cannot hold NaN or infinities, and a diverged job's objective is exactly that, so objectives
are stored as their ``repr`` text and read back with ``float``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any, Final

PARTITION_KEY: Final = "sweep"
SORT_KEY: Final = "rung_job"
OBJECTIVE: Final = "objective"
RUNG_DIGITS: Final = 12


def sort_key(rung: int, job: str) -> str:
    return f"{rung_prefix(rung)}{job}"


def rung_prefix(rung: int) -> str:
    if not 0 <= rung < 10**RUNG_DIGITS:
        raise ValueError(f"rung {rung} is outside 0..{10**RUNG_DIGITS - 1}")
    return f"{rung:0{RUNG_DIGITS}d}#"


def objective_text(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else str(float(value))


class DynamoDbRungStore:
    """Records objectives with a client for DynamoDB (boto3's, created by the adapter)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table_name = table_name

    def report(self, *, sweep: str, rung: int, job: str, value: float) -> Mapping[str, float]:
        """Record ``job``'s objective at ``rung`` (first report wins) and return every objective there."""
        # A failed condition means already recorded (a retry or a duplicate event): the first report stands.
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.put_item(
                TableName=self._table_name,
                Item={
                    PARTITION_KEY: {"S": sweep},
                    SORT_KEY: {"S": sort_key(rung, job)},
                    OBJECTIVE: {"S": objective_text(value)},
                },
                ConditionExpression="attribute_not_exists(#key)",
                ExpressionAttributeNames={"#key": SORT_KEY},
            )
        return self.at_rung(sweep=sweep, rung=rung)

    def at_rung(self, *, sweep: str, rung: int) -> dict[str, float]:
        prefix = rung_prefix(rung)
        values: dict[str, float] = {}
        arguments: dict[str, Any] = {
            "TableName": self._table_name,
            "KeyConditionExpression": "#sweep = :sweep AND begins_with(#key, :prefix)",
            "ExpressionAttributeNames": {"#sweep": PARTITION_KEY, "#key": SORT_KEY},
            "ExpressionAttributeValues": {":sweep": {"S": sweep}, ":prefix": {"S": prefix}},
            "ConsistentRead": True,
        }
        while True:
            page = self._client.query(**arguments)
            for item in page.get("Items", []):
                values[item[SORT_KEY]["S"][len(prefix) :]] = float(item[OBJECTIVE]["S"])
            if "LastEvaluatedKey" not in page:
                return values
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
