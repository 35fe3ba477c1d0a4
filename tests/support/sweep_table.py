"""The sweep-state table as ``infra/sweep_state.py`` creates it, on moto, for tests and benchmarks.

One definition: the stop Lambda's rung store and the launcher Lambda's items share the table and its keys
(``tests/infra`` keeps the construct's key names equal to theirs).
"""

from __future__ import annotations

from typing import Any

from lambdas.stop_training_job import rung_store


def create_sweep_table(client: Any, table_name: str) -> str:
    """Create the table with ``client`` (boto3's DynamoDB client) and return its name."""
    client.create_table(
        TableName=table_name,
        KeySchema=[
            {"AttributeName": rung_store.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": rung_store.SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": rung_store.PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": rung_store.SORT_KEY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return table_name
