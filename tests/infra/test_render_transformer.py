"""RenderTransformer: secure bucket, notifications -> encrypted queue + DLQ, Lambda fed by SQS, alarms.

A test stack holds the construct, an encrypted alarm topic and an access-log bucket, with cdk-nag's
AwsSolutionsChecks registered as app.py registers it: the synth succeeding with an empty validation
report is the "zero unacknowledged findings" proof, and a second synth without the construct's own
acknowledgements shows each of them covers a real finding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import cdk_nag
import pytest
from aws_cdk import assertions
from aws_cdk import aws_lambda as lambda_
from cfnlint import api as cfnlint_api

from infra import defaults
from infra import render_transformer as transformer_module
from lambdas.transform_renders import transform
from tests.infra.test_nag_and_lint import violations
from tests.support import cdk as cdk_support

STACK = "TransformerTest"
CONSTRUCT = f"{STACK}/Transformer"


def synthesize(outdir: Path, **props: Any) -> tuple[dict[str, Any], Path]:
    app = cdk_support.new_app(outdir=outdir)
    stack = cdk.Stack(app, STACK)
    topic = defaults.encrypted_topic(stack, "Alarms", display_name="autostop alarms")
    access_logs = defaults.server_access_logs_bucket(stack, "AccessLogs")
    transformer_module.RenderTransformer(
        stack, "Transformer", alarm_topic=topic.topic, access_logs_bucket=access_logs, **props
    )
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    assembly = app.synth()
    return assembly.get_stack_by_name(STACK).template, Path(assembly.directory)


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    return synthesize(tmp_path_factory.mktemp("transformer-cdk-out"))


@pytest.fixture(scope="module")
def template(synthesized: tuple[dict[str, Any], Path]) -> assertions.Template:
    return assertions.Template.from_json(synthesized[0])


def resources(template_json: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template_json["Resources"].items() if value["Type"] == resource_type}


def logical_id(template_json: dict[str, Any], path: str) -> str:
    (found,) = [
        key
        for key, value in template_json["Resources"].items()
        if value.get("Metadata", {}).get("aws:cdk:path", "") == path
    ]
    return found


def only(template_json: dict[str, Any], resource_type: str, path_fragment: str = CONSTRUCT) -> dict[str, Any]:
    (found,) = [
        value
        for value in resources(template_json, resource_type).values()
        if path_fragment in value.get("Metadata", {}).get("aws:cdk:path", "")
    ]
    return found["Properties"]  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------- cdk-nag


def test_zero_unacknowledged_nag_findings_and_cfn_lint_clean(
    synthesized: tuple[dict[str, Any], Path],
) -> None:
    template_json, outdir = synthesized
    assert violations(outdir) == {}
    assert [str(match) for match in cfnlint_api.lint(json.dumps(template_json))] == []


def test_every_acknowledgement_covers_a_real_finding(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # GIVEN the construct's own acknowledgements switched off (the shared defaults keep theirs)
    original = defaults.acknowledge
    skipped: list[str] = []

    def acknowledge(scope: Any, *, rule_id: str, reason: str) -> None:
        path = scope.node.path
        if path.startswith(CONSTRUCT + "/Function") or "BucketNotificationsHandler" in path:
            skipped.append(rule_id)
            return
        original(scope, rule_id=rule_id, reason=reason)

    monkeypatch.setattr(defaults, "acknowledge", acknowledge)
    # WHEN synthesized  THEN exactly those findings come back
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synthesize(tmp_path)
    assert sorted(violations(tmp_path)) == sorted(skipped)
    assert len(skipped) == 5  # runtime, 3 object-prefix wildcards, the notification handler's managed policy


# -------------------------------------------------------------------------------------------- bucket


def test_bucket_is_private_encrypted_versioned_logged_with_lifecycle(
    synthesized: tuple[dict[str, Any], Path],
) -> None:
    template_json, _ = synthesized
    bucket = only(template_json, "AWS::S3::Bucket", f"{CONSTRUCT}/Bucket/")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["LoggingConfiguration"]["LogFilePrefix"] == "Bucket/"
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-rejection-records"] == {
        "ExpirationInDays": 90,
        "Id": "expire-rejection-records",
        "Prefix": "rejected/",
        "Status": "Enabled",
    }
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert "abort-incomplete-multipart-uploads" in rules
    policy = only(template_json, "AWS::S3::BucketPolicy", f"{CONSTRUCT}/Bucket/")
    conditions = [statement.get("Condition", {}) for statement in policy["PolicyDocument"]["Statement"]]
    assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
    assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions


def test_notifications_send_every_archive_suffix_under_renders_to_the_queue(
    synthesized: tuple[dict[str, Any], Path],
) -> None:
    template_json, _ = synthesized
    notifications = only(template_json, "Custom::S3BucketNotifications")
    queue_id = logical_id(template_json, f"{CONSTRUCT}/Batches/Resource")
    configurations = notifications["NotificationConfiguration"]["QueueConfigurations"]
    assert sorted(
        (
            configuration["Events"],
            configuration["QueueArn"],
            sorted((rule["Name"], rule["Value"]) for rule in configuration["Filter"]["Key"]["FilterRules"]),
        )
        for configuration in configurations
    ) == sorted(
        (
            [event],
            {"Fn::GetAtt": [queue_id, "Arn"]},
            [("prefix", "renders/"), ("suffix", suffix)],
        )
        for event in ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
        for suffix in (".tar", ".TAR", ".tar.gz", ".TAR.GZ", ".tgz", ".TGZ", ".zip", ".ZIP")
    )
    # Every suffix the function accepts has its filter, and the function accepts nothing else: S3 matches
    # filters case-sensitively, so a spelling without a filter would be uploaded and never processed.
    filtered = {
        rule["Value"]
        for configuration in configurations
        for rule in configuration["Filter"]["Key"]["FilterRules"]
        if rule["Name"] == "suffix"
    }
    assert filtered == set(transform.ACCEPTED_SUFFIXES)
    for suffix in filtered:
        assert transform.archive_kind(f"renders/batch{suffix}") is not None
    for other_spelling in (".Tar", ".tar.GZ", ".Tgz", ".zIp"):
        assert transform.archive_kind(f"renders/batch{other_spelling}") is None
    # S3 may send to the queue, for this bucket only
    queue_policy = only(template_json, "AWS::SQS::QueuePolicy", f"{CONSTRUCT}/Batches/Policy")
    allow = [s for s in queue_policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    bucket_id = logical_id(template_json, f"{CONSTRUCT}/Bucket/Resource")
    assert allow[0]["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow[0]["Condition"]["ArnLike"]["aws:SourceArn"] == {"Fn::GetAtt": [bucket_id, "Arn"]}


# -------------------------------------------------------------------------------------------- queues


def test_queue_is_encrypted_tls_only_with_dlq_and_visibility_at_least_six_function_timeouts(
    synthesized: tuple[dict[str, Any], Path],
) -> None:
    template_json, _ = synthesized
    queue = only(template_json, "AWS::SQS::Queue", f"{CONSTRUCT}/Batches/Resource")
    dead_letters = only(template_json, "AWS::SQS::Queue", f"{CONSTRUCT}/BatchesDeadLetterQueue/Resource")
    function = only(template_json, "AWS::Lambda::Function", f"{CONSTRUCT}/Function/Resource")
    assert queue["SqsManagedSseEnabled"] is True
    assert dead_letters["SqsManagedSseEnabled"] is True
    dlq_id = logical_id(template_json, f"{CONSTRUCT}/BatchesDeadLetterQueue/Resource")
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": 5,
    }
    assert queue["VisibilityTimeout"] == 6 * 120 + 5
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert dead_letters["MessageRetentionPeriod"] == 14 * 24 * 3600
    for path in ("Batches/Policy", "BatchesDeadLetterQueue/Policy"):
        statements = only(template_json, "AWS::SQS::QueuePolicy", f"{CONSTRUCT}/{path}")["PolicyDocument"][
            "Statement"
        ]
        assert any(
            s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


# ------------------------------------------------------------------------------------------ function


def test_function_runtime_memory_timeout_architecture_and_environment(
    synthesized: tuple[dict[str, Any], Path],
) -> None:
    template_json, _ = synthesized
    function = only(template_json, "AWS::Lambda::Function", f"{CONSTRUCT}/Function/Resource")
    bucket_id = logical_id(template_json, f"{CONSTRUCT}/Bucket/Resource")
    assert function["Runtime"] == "python3.13"
    assert function["Handler"] == "transform_renders.app.handler"
    assert function["Architectures"] == ["arm64"]
    assert (function["MemorySize"], function["Timeout"]) == (1024, 120)
    assert function["ReservedConcurrentExecutions"] == 10
    assert function["Environment"]["Variables"] == {
        "OUTPUT_BUCKET": {"Ref": bucket_id},
        "SHARD_BUCKET": {"Ref": bucket_id},
        "SHARD_PREFIX": "shards/",
        "REJECT_PREFIX": "rejected/",
        "VALIDATION_FRACTION": "0.1",
        "IMAGE_SIZE": "64",
        "NUM_VIEWS": "12",
        "MEMORY_MB": "1024",
        "RECORD_TIME_RESERVE_MS": "30000",
        "POWERTOOLS_SERVICE_NAME": "transform-renders",
        "POWERTOOLS_METRICS_NAMESPACE": "Autostop",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_sqs_event_source_batches_with_bounded_concurrency_and_partial_failures(
    synthesized: tuple[dict[str, Any], Path],
) -> None:
    template_json, _ = synthesized
    mapping = only(template_json, "AWS::Lambda::EventSourceMapping")
    queue_id = logical_id(template_json, f"{CONSTRUCT}/Batches/Resource")
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert mapping["BatchSize"] == 10
    assert mapping["MaximumBatchingWindowInSeconds"] == 5
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 10}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_role_is_least_privilege(synthesized: tuple[dict[str, Any], Path]) -> None:
    template_json, _ = synthesized
    bucket_id = logical_id(template_json, f"{CONSTRUCT}/Bucket/Resource")
    queue_id = logical_id(template_json, f"{CONSTRUCT}/Batches/Resource")
    policy = only(template_json, "AWS::IAM::Policy", f"{CONSTRUCT}/FunctionRole/DefaultPolicy")
    statements = policy["PolicyDocument"]["Statement"]

    def objects(prefix: str) -> dict[str, Any]:
        return {"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, f"/{prefix}*"]]}

    by_sid = {statement.get("Sid"): statement for statement in statements}
    assert by_sid["ReadRenderBatches"]["Action"] == "s3:GetObject"
    assert by_sid["ReadRenderBatches"]["Resource"] == objects("renders/")
    assert by_sid["WriteRejections"]["Action"] == "s3:PutObject"
    assert by_sid["WriteRejections"]["Resource"] == objects("rejected/")
    assert by_sid["ReplaceShards"]["Action"] == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    assert by_sid["ReplaceShards"]["Resource"] == objects("shards/")
    assert by_sid["TellMissingFromForbidden"]["Action"] == "s3:ListBucket"
    assert by_sid["TellMissingFromForbidden"]["Resource"] == {"Fn::GetAtt": [bucket_id, "Arn"]}
    (consume,) = [statement for statement in statements if "Sid" not in statement]
    assert consume["Resource"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert all(action.startswith("sqs:") for action in consume["Action"])
    # Nothing else: no "*" resource, no wildcard action, no other bucket or prefix.
    assert len(statements) == 5
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert statement["Resource"] != "*"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any(action.endswith("*") for action in actions)
    role = only(template_json, "AWS::IAM::Role", f"{CONSTRUCT}/FunctionRole/")
    assert "ManagedPolicyArns" not in role


def test_shards_go_to_a_bucket_of_another_stack_with_grants_on_its_shard_prefix_only(tmp_path: Path) -> None:
    # GIVEN the training data bucket in a stack of its own, as the training stack holds it
    app = cdk_support.new_app(outdir=tmp_path)
    data_stack = cdk.Stack(app, "DataTest")
    data_bucket = defaults.secure_bucket(
        data_stack,
        "DataBucket",
        server_access_logs_bucket=defaults.server_access_logs_bucket(data_stack, "Logs"),
    )
    stack = cdk.Stack(app, STACK)
    topic = defaults.encrypted_topic(stack, "Alarms", display_name="autostop alarms")
    transformer_module.RenderTransformer(
        stack,
        "Transformer",
        alarm_topic=topic.topic,
        access_logs_bucket=defaults.server_access_logs_bucket(stack, "AccessLogs"),
        shard_bucket=data_bucket,
        validation_fraction=0.2,
        memory_size_mb=2048,
        timeout=cdk.Duration.minutes(4),
    )
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    # WHEN synthesized (cdk-nag clean: the shard prefix wildcard on the imported bucket is acknowledged)
    template_json = app.synth().get_stack_by_name(STACK).template
    # THEN the function writes shards to the data bucket, records to its own bucket
    variables = only(template_json, "AWS::Lambda::Function", f"{CONSTRUCT}/Function/Resource")["Environment"][
        "Variables"
    ]
    bucket_id = logical_id(template_json, f"{CONSTRUCT}/Bucket/Resource")
    assert "Fn::ImportValue" in variables["SHARD_BUCKET"]
    assert variables["OUTPUT_BUCKET"] == {"Ref": bucket_id}
    assert (variables["VALIDATION_FRACTION"], variables["MEMORY_MB"]) == ("0.2", "2048")
    assert variables["RECORD_TIME_RESERVE_MS"] == "60000"
    # AND its grants on the data bucket are the shard prefix's objects and listing, nothing more
    statements = only(template_json, "AWS::IAM::Policy", f"{CONSTRUCT}/FunctionRole/DefaultPolicy")[
        "PolicyDocument"
    ]["Statement"]
    by_sid = {statement.get("Sid"): statement for statement in statements}
    shard_resource = json.dumps(by_sid["ReplaceShards"]["Resource"])
    assert "Fn::ImportValue" in shard_resource
    assert shard_resource.endswith('"/shards/*"]]}')
    listed = by_sid["TellMissingFromForbidden"]["Resource"]
    assert listed[0] == {"Fn::GetAtt": [bucket_id, "Arn"]}
    assert "Fn::ImportValue" in json.dumps(listed[1])
    imports = [s for s in statements if "Fn::ImportValue" in json.dumps(s)]
    assert sorted(s["Sid"] for s in imports) == ["ReplaceShards", "TellMissingFromForbidden"]


def test_alarms_go_to_the_topic(
    template: assertions.Template, synthesized: tuple[dict[str, Any], Path]
) -> None:
    template_json, _ = synthesized
    topic = {"Ref": logical_id(template_json, f"{STACK}/Alarms/Resource")}
    dlq_id = logical_id(template_json, f"{CONSTRUCT}/BatchesDeadLetterQueue/Resource")
    queue_id = logical_id(template_json, f"{CONSTRUCT}/Batches/Resource")
    function_id = logical_id(template_json, f"{CONSTRUCT}/Function/Resource")
    alarms = {
        path: only(template_json, "AWS::CloudWatch::Alarm", f"{CONSTRUCT}/{path}/")
        for path in ("DeadLetterQueueAlarm", "ErrorsAlarm", "OldestMessageAlarm")
    }
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [topic]
        assert alarm["TreatMissingData"] == "notBreaching"
    dlq = alarms["DeadLetterQueueAlarm"]
    assert (dlq["MetricName"], dlq["ComparisonOperator"], dlq["Threshold"]) == (
        "ApproximateNumberOfMessagesVisible",
        "GreaterThanThreshold",
        0,
    )
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    errors = alarms["ErrorsAlarm"]
    assert (errors["MetricName"], errors["Statistic"], errors["Threshold"]) == ("Errors", "Sum", 1)
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    oldest = alarms["OldestMessageAlarm"]
    assert (oldest["MetricName"], oldest["Statistic"], oldest["Threshold"]) == (
        "ApproximateAgeOfOldestMessage",
        "Maximum",
        1800,
    )
    assert oldest["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    template.resource_count_is("AWS::CloudWatch::Alarm", 3)


# ---------------------------------------------------------------------------------------------- props


def test_every_setting_is_configurable(tmp_path: Path) -> None:
    # GIVEN non-default settings (x86_64 reuses the wheels the bundled-asset test caches)
    template_json, outdir = synthesize(
        tmp_path,
        memory_size_mb=2048,
        timeout=cdk.Duration.seconds(60),
        architecture=lambda_.Architecture.X86_64,
        maximum_concurrency=4,
        batch_size=5,
        max_batching_window=cdk.Duration.seconds(2),
        image_size=32,
        num_views=6,
        max_archive_bytes=50_000_000,
        max_receive_count=8,
        rejected_expiration=cdk.Duration.days(30),
        oldest_message_alarm_age=cdk.Duration.minutes(10),
    )
    # THEN each lands where it belongs, still nag-clean
    assert violations(outdir) == {}
    function = only(template_json, "AWS::Lambda::Function", f"{CONSTRUCT}/Function/Resource")
    assert (function["MemorySize"], function["Timeout"], function["Architectures"]) == (2048, 60, ["x86_64"])
    assert function["ReservedConcurrentExecutions"] == 4
    variables = function["Environment"]["Variables"]
    assert (variables["IMAGE_SIZE"], variables["NUM_VIEWS"], variables["MAX_ARCHIVE_BYTES"]) == (
        "32",
        "6",
        "50000000",
    )
    mapping = only(template_json, "AWS::Lambda::EventSourceMapping")
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == (5, 2)
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 4}
    queue = only(template_json, "AWS::SQS::Queue", f"{CONSTRUCT}/Batches/Resource")
    assert queue["VisibilityTimeout"] == 6 * 60 + 2
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 8
    bucket = only(template_json, "AWS::S3::Bucket", f"{CONSTRUCT}/Bucket/")
    rules = {rule["Id"]: rule for rule in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-rejection-records"]["ExpirationInDays"] == 30
    oldest = only(template_json, "AWS::CloudWatch::Alarm", f"{CONSTRUCT}/OldestMessageAlarm/")
    assert oldest["Threshold"] == 600


@pytest.mark.parametrize(
    "props",
    [
        {"memory_size_mb": 64},
        {"timeout": cdk.Duration.minutes(16)},
        {"maximum_concurrency": 1},
        {"batch_size": 0},
        {"batch_size": 50, "max_batching_window": cdk.Duration.seconds(0)},
        {"max_batching_window": cdk.Duration.minutes(6)},
        {"image_size": 0},
        {"num_views": 101},
        {"max_archive_bytes": 0},
    ],
)
def test_invalid_settings_are_refused_at_synth(props: dict[str, Any]) -> None:
    app = cdk_support.new_app()
    stack = cdk.Stack(app, STACK)
    topic = defaults.encrypted_topic(stack, "Alarms", display_name="alarms")
    access_logs = defaults.server_access_logs_bucket(stack, "AccessLogs")
    with pytest.raises(ValueError, match=next(iter(props))):
        transformer_module.RenderTransformer(
            stack, "Transformer", alarm_topic=topic.topic, access_logs_bucket=access_logs, **props
        )
