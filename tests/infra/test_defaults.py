"""The secure defaults other constructs build on: each factory's output, and that a stack made only of
them passes cdk-nag AwsSolutions with no acknowledgement beyond the ones the factories document."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import cdk_nag
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from infra import defaults
from tests.support import cdk as cdk_support


@dataclasses.dataclass(frozen=True)
class DefaultsStack:
    stack: cdk.Stack
    template: dict[str, Any]
    made: dict[str, Any]

    def resource(self, construct: Any) -> dict[str, Any]:
        logical_id = self.stack.resolve(construct.node.default_child.logical_id)
        resource: dict[str, Any] = self.template["Resources"][logical_id]
        return resource

    def logical_id(self, construct: Any) -> str:
        logical_id: str = self.stack.resolve(construct.node.default_child.logical_id)
        return logical_id


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> DefaultsStack:
    """One stack using every factory, synthesized with cdk-nag (the synth fails on any finding)."""
    app = cdk_support.new_app(outdir=tmp_path_factory.mktemp("defaults"))
    stack = cdk.Stack(app, "Defaults")
    topic = defaults.encrypted_topic(stack, "Topic", display_name="defaults test")
    work = defaults.queue_with_dead_letter_queue(stack, "Work", visibility_timeout=cdk.Duration.minutes(3))
    function_dead_letters = defaults.dead_letter_queue(stack, "FunctionDeadLetters")
    logs_bucket = defaults.server_access_logs_bucket(stack, "AccessLogs")
    data_bucket = defaults.secure_bucket(stack, "Data", server_access_logs_bucket=logs_bucket)
    unlogged_bucket = defaults.secure_bucket(
        stack,
        "Scratch",
        no_access_logs_reason="Scratch space for a test; nothing in it is ever read by anyone but the test.",
    )
    function = defaults.python_function(
        stack,
        "Function",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
        handler="index.handler",
        description="defaults test",
        environment={"SETTING": "value"},
        reserved_concurrent_executions=2,
        log_retention=logs.RetentionDays.ONE_WEEK,
        dead_letter_queue=function_dead_letters,
    )
    defaults.grant_publish(topic, function.role)
    depth_alarm = defaults.queue_depth_alarm(
        stack, "DepthAlarm", queue=work.dead_letter_queue, topic=topic.topic, description="dead letters"
    )
    errors_alarm = defaults.function_errors_alarm(
        stack, "ErrorsAlarm", function=function.function, topic=topic.topic, description="errors"
    )
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    template = app.synth().get_stack_by_name("Defaults").template
    return DefaultsStack(
        stack=stack,
        template=template,
        made={
            "topic": topic,
            "work": work,
            "function_dead_letters": function_dead_letters,
            "logs_bucket": logs_bucket,
            "data_bucket": data_bucket,
            "unlogged_bucket": unlogged_bucket,
            "function": function,
            "depth_alarm": depth_alarm,
            "errors_alarm": errors_alarm,
        },
    )


def test_queues_are_encrypted_tls_only_and_redriven(built: DefaultsStack) -> None:
    work = built.made["work"]
    queue = built.resource(work.queue)["Properties"]
    dead_letters = built.resource(work.dead_letter_queue)["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert dead_letters["SqsManagedSseEnabled"] is True
    assert queue["VisibilityTimeout"] == 180
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [built.logical_id(work.dead_letter_queue), "Arn"]},
        "maxReceiveCount": 3,
    }
    assert dead_letters["MessageRetentionPeriod"] == 14 * 24 * 3600
    tls_denials = [
        statement["Condition"]
        for policy in built.template["Resources"].values()
        if policy["Type"] == "AWS::SQS::QueuePolicy"
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
    ]
    assert tls_denials == [{"Bool": {"aws:SecureTransport": "false"}}] * 3


def test_queue_factories_refuse_nonsense() -> None:
    stack = cdk.Stack(cdk_support.new_app(), "Refusals")
    with pytest.raises(ValueError, match="max_receive_count"):
        defaults.secure_queue(
            stack,
            "Queue",
            dead_letter_queue=defaults.dead_letter_queue(stack, "Dlq"),
            visibility_timeout=cdk.Duration.seconds(30),
            max_receive_count=0,
        )


def test_topic_has_its_own_rotating_key_and_tls_only_policy(built: DefaultsStack) -> None:
    topic = built.made["topic"]
    assert built.resource(topic.topic)["Properties"]["KmsMasterKeyId"] == {
        "Fn::GetAtt": [built.logical_id(topic.key), "Arn"]
    }
    assert built.resource(topic.key)["Properties"]["EnableKeyRotation"] is True


def test_buckets_are_private_encrypted_versioned_tls_only_and_logged(built: DefaultsStack) -> None:
    logs_bucket = built.made["logs_bucket"]
    data = built.resource(built.made["data_bucket"])["Properties"]
    assert data["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert data["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert data["VersioningConfiguration"] == {"Status": "Enabled"}
    assert data["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert data["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": built.logical_id(logs_bucket)},
        "LogFilePrefix": "Data/",
    }
    rules = {rule["Id"]: rule for rule in data["LifecycleConfiguration"]["Rules"]}
    assert rules["abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 7
    }
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    data_id = built.logical_id(built.made["data_bucket"])
    data_policy = next(
        resource["Properties"]["PolicyDocument"]["Statement"]
        for resource in built.template["Resources"].values()
        if resource["Type"] == "AWS::S3::BucketPolicy"
        and resource["Properties"]["Bucket"] == {"Ref": data_id}
    )
    conditions = [statement["Condition"] for statement in data_policy if statement["Effect"] == "Deny"]
    assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
    assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions


def test_bucket_needs_access_logs_or_a_reason() -> None:
    stack = cdk.Stack(cdk_support.new_app(), "Refusals")
    with pytest.raises(ValueError, match="exactly one of"):
        defaults.secure_bucket(stack, "Neither")


def test_function_role_writes_only_its_own_log_group(built: DefaultsStack) -> None:
    made = built.made["function"]
    role = built.resource(made.role)["Properties"]
    assert "ManagedPolicyArns" not in role
    assert role["Policies"][0]["PolicyDocument"]["Statement"] == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [built.logical_id(made.log_group), "Arn"]},
        }
    ]
    function = built.resource(made.function)["Properties"]
    assert function["Runtime"] == "python3.14"
    assert function["Architectures"] == ["arm64"]
    assert function["ReservedConcurrentExecutions"] == 2
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": built.logical_id(made.log_group)}}
    assert built.resource(made.log_group)["Properties"]["RetentionInDays"] == 7


def test_alarms_notify_and_ignore_missing_data(built: DefaultsStack) -> None:
    topic_id = built.logical_id(built.made["topic"].topic)
    for name in ("depth_alarm", "errors_alarm"):
        alarm = built.resource(built.made[name])["Properties"]
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["OKActions"] == [{"Ref": topic_id}]
        assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"reserved_concurrent_executions": 0}, "reserved_concurrent_executions"),
        ({"retry_attempts": 3}, "retry"),
    ],
)
def test_function_factory_refuses_nonsense(arguments: dict[str, Any], message: str) -> None:
    stack = cdk.Stack(cdk_support.new_app(), "Refusals")
    values: dict[str, Any] = {
        "code": lambda_.Code.from_inline("x = 1"),
        "handler": "index.handler",
        "description": "refused",
        "environment": {},
        "reserved_concurrent_executions": 1,
        "log_retention": logs.RetentionDays.ONE_DAY,
        **arguments,
    }
    with pytest.raises(ValueError, match=message):
        defaults.python_function(stack, "Function", **values)


def test_tracing_is_opt_in_and_its_star_is_acknowledged_on_its_policy_only(tmp_path: Path) -> None:
    # GIVEN a function with tracing on, in an app with cdk-nag
    app = cdk_support.new_app(outdir=tmp_path)
    stack = cdk.Stack(app, "Tracing")
    made = defaults.python_function(
        stack,
        "Traced",
        code=lambda_.Code.from_inline("x = 1"),
        handler="index.handler",
        description="traced",
        environment={},
        reserved_concurrent_executions=1,
        log_retention=logs.RetentionDays.ONE_DAY,
        tracing=True,
    )
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    # WHEN synthesized  THEN it passes nag (the X-Ray "*" is acknowledged) and tracing is active
    template = app.synth().get_stack_by_name("Tracing").template
    function_id = stack.get_logical_id(made.function.node.default_child)  # type: ignore[arg-type]
    assert template["Resources"][function_id]["Properties"]["TracingConfig"] == {"Mode": "Active"}
