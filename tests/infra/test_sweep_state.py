"""The sweep-state table in the synthesized autostop stack: encrypted, recoverable, on demand, retained, keyed
as the rung store reads it, and open to the stop Lambda for exactly the two calls the rung store makes."""

from __future__ import annotations

from typing import Any

from infra import stacks, sweep_state
from lambdas.stop_training_job import rung_store, vocabulary
from tests.infra.conftest import Synthesized
from tests.infra.test_auto_stop_stack import role_statements, statement_with_sid, stop_function_part


def table(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    return synthesized.only("AWS::DynamoDB::Table")


def actions_of(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return list(actions) if isinstance(actions, list) else [actions]


def test_the_table_is_keyed_as_the_rung_store_reads_and_writes_it(default_app: Synthesized) -> None:
    # GIVEN the default app  WHEN synthesized  THEN one table: partition key sweep, sort key rung_job, strings
    _, resource = table(default_app)
    properties = resource["Properties"]
    assert properties["KeySchema"] == [
        {"AttributeName": rung_store.PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": rung_store.SORT_KEY, "KeyType": "RANGE"},
    ]
    assert properties["AttributeDefinitions"] == [
        {"AttributeName": "sweep", "AttributeType": "S"},
        {"AttributeName": "rung_job", "AttributeType": "S"},
    ]
    assert sweep_state.PARTITION_KEY == rung_store.PARTITION_KEY
    assert sweep_state.SORT_KEY == rung_store.SORT_KEY
    # AND no index: the stop Lambda's Query permission names the table alone
    assert "GlobalSecondaryIndexes" not in properties
    assert "LocalSecondaryIndexes" not in properties


def test_the_table_is_encrypted_recoverable_on_demand_and_retained(default_app: Synthesized) -> None:
    _, resource = table(default_app)
    properties = resource["Properties"]
    # SSEEnabled without a key: KMS with the AWS-managed key aws/dynamodb (CloudFormation's
    # AWS::DynamoDB::Table SSESpecification reference: "SSEEnabled: true ... AWS managed key").
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in properties
    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"


def test_the_stop_lambda_may_put_and_query_that_table_and_nothing_else_of_dynamodb(
    default_app: Synthesized,
) -> None:
    table_id, _ = table(default_app)
    # THEN one statement: PutItem and Query, on the table's ARN (no index ARN, no wildcard)
    assert statement_with_sid(default_app, "RecordAndReadRungObjectives") == {
        "Sid": "RecordAndReadRungObjectives",
        "Effect": "Allow",
        "Action": ["dynamodb:PutItem", "dynamodb:Query"],
        "Resource": {"Fn::GetAtt": [table_id, "Arn"]},
    }
    assert stacks.SWEEP_STATE_ACTIONS == ("dynamodb:PutItem", "dynamodb:Query")
    dynamodb_actions = [
        action
        for statement in role_statements(default_app)
        for action in actions_of(statement)
        if action.startswith("dynamodb:")
    ]
    assert sorted(dynamodb_actions) == ["dynamodb:PutItem", "dynamodb:Query"]
    # AND no KMS grant is needed for it: the AWS-managed key's policy lets this account use it via DynamoDB
    kms_resources = [
        statement["Resource"]
        for statement in role_statements(default_app)
        if any(action.startswith("kms:") for action in actions_of(statement))
    ]
    key_id, _ = default_app.only("AWS::KMS::Key")
    assert kms_resources == [{"Fn::GetAtt": [key_id, "Arn"]}]  # the notification topic's key only


def test_the_stop_lambda_learns_the_table_name_from_its_environment(default_app: Synthesized) -> None:
    table_id, _ = table(default_app)
    _, function = stop_function_part(default_app, "AWS::Lambda::Function")
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables[vocabulary.ENV_SWEEP_TABLE] == {"Ref": table_id}
    assert sweep_state.TABLE_NAME_ENV == vocabulary.ENV_SWEEP_TABLE


def test_the_stack_exposes_the_table_and_outputs_its_name(default_app: Synthesized) -> None:
    # GIVEN the stack object (other sweep functions are wired to the same table through this attribute)
    stack = default_app.stack
    assert isinstance(stack, stacks.AutostopStack)
    assert stack.sweep_table is stack.sweep_state.table
    table_id, _ = table(default_app)
    assert default_app.template_json["Outputs"]["SweepTableName"]["Value"] == {"Ref": table_id}
