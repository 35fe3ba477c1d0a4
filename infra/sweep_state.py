"""The sweep's state between serverless invocations: one DynamoDB table.

Why a table: on SageMaker every job of a sweep reports to Lambda functions that keep nothing between
invocations, several of them at once. The cross-job comparison (``lambdas/stop_training_job/cross_job.py``)
needs every job's objective at each rung, so the stop Lambda records them here
(``lambdas/stop_training_job/rung_store.py``: partition key ``sweep``, sort key ``rung_job`` =
``<rung, 12 digits>#<job>``, first report wins). Other parts of a sweep may keep their own items in the same
table under sort keys that start with a letter (``job#...``, ``sweep#...``): a rung item's sort key always
starts with a digit, so a ``begins_with(<rung>#)`` query never sees them.

Secure defaults, decided here once: on-demand billing (a sweep's reports come in bursts, and an idle
table costs nothing), encryption at rest with the AWS-managed key ``aws/dynamodb`` (readers and writers
need no KMS grant: the key policy lets principals of this account use it through DynamoDB), point-in-time
recovery on, and the table retained when the stack is deleted (a sweep's record is evidence of why its jobs
were stopped). Grants are the stack's job (``infra/stacks.py``); this construct only names the table and
the environment variable through which a function learns its name (``environment``).
"""

from __future__ import annotations

from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

# The key schema ``lambdas/stop_training_job/rung_store.py`` reads and writes (kept equal by a test).
PARTITION_KEY: Final = "sweep"
SORT_KEY: Final = "rung_job"
# How a function learns the table's name: the stop Lambda reads this variable (its ``vocabulary``).
TABLE_NAME_ENV: Final = "AUTOSTOP_SWEEP_TABLE"


class SweepState(Construct):
    """The sweep-state table. Attributes: ``table``; ``environment`` (the variable naming it)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=removal_policy,
        )

    @property
    def environment(self) -> dict[str, str]:
        """The environment variable a function reads the table's name from."""
        return {TABLE_NAME_ENV: self.table.table_name}
