"""The synthesized autostop stack, resource by resource: what the auto-stop core promises, exactly.

Templates come from app.py's real in-process synth (cdk.json context + overrides, cdk-nag on, the stop
Lambda bundled by infra/bundling.py), so these assertions read what ``cdk deploy`` would deploy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from infra import event_patterns, stacks
from infra.config import AUDIT_TAG_KEYS, AutostopSettings
from lambdas.stop_training_job import vocabulary
from tests.infra.conftest import Synthesized
from tests.support import cdk as cdk_support
from training.sweep import scope

Synth = Callable[..., Synthesized]


def pseudo_arn(service: str, resource: str) -> dict[str, Any]:
    """The Fn::Join CDK renders for ``arn:<partition>:<service>:<region>:<account>:<resource>``."""
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                f":{service}:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":{resource}",
            ],
        ]
    }


def logical_id(synthesized: Synthesized, resource_type: str, path_part: str) -> str:
    """Find a resource by a part of its construct path (robust to CDK's hash suffixes)."""
    found = [
        resource_id
        for resource_id, resource in synthesized.resources(resource_type).items()
        if path_part in resource["Metadata"]["aws:cdk:path"]
    ]
    assert len(found) == 1, f"{resource_type} with path containing {path_part!r}: {found}"
    return found[0]


def stop_function_part(synthesized: Synthesized, resource_type: str) -> tuple[str, dict[str, Any]]:
    """The stop Lambda's resource of this type (the stack also holds the alarm janitor's)."""
    found = [
        (resource_id, resource)
        for resource_id, resource in synthesized.resources(resource_type).items()
        if "/AutoStop/StopFunction" in resource["Metadata"]["aws:cdk:path"]
    ]
    assert len(found) == 1, f"expected one stop-function {resource_type}, found {[item[0] for item in found]}"
    return found[0]


def role_statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    """Every statement of every identity policy of the stop function's role (inline + attached)."""
    role_id = logical_id(synthesized, "AWS::IAM::Role", "StopFunctionRole")
    role = synthesized.template_json["Resources"][role_id]
    statements = [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def statement_with_sid(synthesized: Synthesized, sid: str) -> dict[str, Any]:
    found = [statement for statement in role_statements(synthesized) if statement.get("Sid") == sid]
    assert len(found) == 1, f"statement {sid}: {found}"
    return found[0]


# --------------------------------------------------------------------------------------------- function


def test_stop_function_runtime_handler_and_sizing(default_app: Synthesized) -> None:
    # GIVEN the default app  WHEN synthesized  THEN the stop Lambda matches the contract
    _, function = stop_function_part(default_app, "AWS::Lambda::Function")
    properties = function["Properties"]
    assert properties["Runtime"] == "python3.14"
    assert properties["Architectures"] == ["arm64"]
    assert properties["Handler"] == "stop_training_job.app.handler"
    assert properties["MemorySize"] == 256
    assert properties["Timeout"] == 30
    assert properties["ReservedConcurrentExecutions"] == 5
    assert "TracingConfig" not in properties


def test_stop_function_environment_is_exactly_the_contract(default_app: Synthesized) -> None:
    _, function = stop_function_part(default_app, "AWS::Lambda::Function")
    topic_id, _ = default_app.only("AWS::SNS::Topic")
    table_id, _ = default_app.only("AWS::DynamoDB::Table")
    assert function["Properties"]["Environment"]["Variables"] == {
        "AUTOSTOP_TAG_KEY": "autostop",
        "AUTOSTOP_TAG_VALUE": "enabled",
        "AUTOSTOP_JOB_PREFIX": "",
        "AUTOSTOP_STOPPING_RULES": "*",
        "AUTOSTOP_DRY_RUN": "false",
        "AUTOSTOP_TOPIC_ARN": {"Ref": topic_id},
        "AUTOSTOP_ALARM_PREFIX": "autostop-",
        "AUTOSTOP_SWEEP_TABLE": {"Ref": table_id},
        "POWERTOOLS_SERVICE_NAME": "stop-training-job",
        "POWERTOOLS_METRICS_NAMESPACE": "Autostop",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def test_context_reaches_environment_concurrency_and_retention(synth: Synth) -> None:
    # GIVEN every knob changed from its default
    synthesized = synth(
        {
            "autostop:tagKey": "team:autostop",
            "autostop:tagValue": "yes",
            "autostop:jobPrefix": "sweep-",
            "autostop:stoppingRules": ["LossNotDecreasing", "VanishingGradient"],
            "autostop:dryRun": "true",
            "autostop:alarmPrefix": "stopper-",
            "autostop:stopFunctionReservedConcurrency": "7",
            "autostop:logRetentionDays": 90,
        }
    )
    # THEN the function and its log group carry them
    _, function = stop_function_part(synthesized, "AWS::Lambda::Function")
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["AUTOSTOP_TAG_KEY"] == "team:autostop"
    assert variables["AUTOSTOP_TAG_VALUE"] == "yes"
    assert variables["AUTOSTOP_JOB_PREFIX"] == "sweep-"
    assert variables["AUTOSTOP_STOPPING_RULES"] == "LossNotDecreasing,VanishingGradient"
    assert variables["AUTOSTOP_DRY_RUN"] == "true"
    assert variables["AUTOSTOP_ALARM_PREFIX"] == "stopper-"
    assert function["Properties"]["ReservedConcurrentExecutions"] == 7
    _, log_group = stop_function_part(synthesized, "AWS::Logs::LogGroup")
    assert log_group["Properties"]["RetentionInDays"] == 90


def test_stop_function_logs_to_its_own_retained_log_group(default_app: Synthesized) -> None:
    log_group_id, log_group = stop_function_part(default_app, "AWS::Logs::LogGroup")
    _, function = stop_function_part(default_app, "AWS::Lambda::Function")
    assert log_group["Properties"]["RetentionInDays"] == 30
    assert log_group["DeletionPolicy"] == "Retain"
    assert function["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": log_group_id}}


def test_failed_invocations_are_retried_then_kept_in_the_dead_letter_queue(default_app: Synthesized) -> None:
    queue_id, _ = default_app.only("AWS::SQS::Queue")
    function_id, function = stop_function_part(default_app, "AWS::Lambda::Function")
    _, invoke_config = stop_function_part(default_app, "AWS::Lambda::EventInvokeConfig")
    assert function["Properties"]["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    assert invoke_config["Properties"] == {
        "FunctionName": {"Ref": function_id},
        "MaximumEventAgeInSeconds": 3600,
        "MaximumRetryAttempts": 2,
        "Qualifier": "$LATEST",
    }


def test_function_waits_for_every_policy_of_its_role(default_app: Synthesized) -> None:
    # Lambda checks sqs:SendMessage on the DLQ at creation: the policy granting it must exist first.
    _, function = stop_function_part(default_app, "AWS::Lambda::Function")
    policy_ids = {
        policy_id
        for policy_id, policy in default_app.resources("AWS::IAM::Policy").items()
        if "/AutoStop/StopFunction" in policy["Metadata"]["aws:cdk:path"]
    }
    assert policy_ids
    assert policy_ids <= set(function["DependsOn"])


# --------------------------------------------------------------------------------------------- IAM


def test_role_has_no_managed_policy_and_one_inline_log_policy(default_app: Synthesized) -> None:
    role_id = logical_id(default_app, "AWS::IAM::Role", "StopFunctionRole")
    role = default_app.template_json["Resources"][role_id]["Properties"]
    log_group_id, _ = stop_function_part(default_app, "AWS::Logs::LogGroup")
    assert "ManagedPolicyArns" not in role
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    ]
    assert role["Policies"] == [
        {
            "PolicyName": "WriteOwnLogGroup",
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Effect": "Allow",
                        "Resource": {"Fn::GetAtt": [log_group_id, "Arn"]},
                    }
                ],
            },
        }
    ]


def test_describe_list_and_stop_only_opted_in_jobs_of_this_account_and_region(
    default_app: Synthesized,
) -> None:
    statement = statement_with_sid(default_app, "DescribeAndStopOptedInTrainingJobs")
    assert statement == {
        "Sid": "DescribeAndStopOptedInTrainingJobs",
        "Effect": "Allow",
        "Action": ["sagemaker:DescribeTrainingJob", "sagemaker:ListTags", "sagemaker:StopTrainingJob"],
        "Resource": pseudo_arn("sagemaker", "training-job/*"),
        "Condition": {"StringEquals": {"aws:ResourceTag/autostop": "enabled"}},
    }


def test_add_tags_only_writes_the_audit_tag_keys_on_opted_in_jobs(default_app: Synthesized) -> None:
    statement = statement_with_sid(default_app, "TagStoppedTrainingJobsWithAuditTagsOnly")
    assert statement == {
        "Sid": "TagStoppedTrainingJobsWithAuditTagsOnly",
        "Effect": "Allow",
        "Action": "sagemaker:AddTags",
        "Resource": pseudo_arn("sagemaker", "training-job/*"),
        "Condition": {
            "StringEquals": {"aws:ResourceTag/autostop": "enabled"},
            "ForAllValues:StringEquals": {"aws:TagKeys": list(AUDIT_TAG_KEYS)},
        },
    }
    # AND they are exactly the keys the stop Lambda writes: the stop tags and the audit trail's markers
    assert set(AUDIT_TAG_KEYS) == {
        vocabulary.TAG_STOPPED_BY_RULE,
        vocabulary.TAG_STOPPED_AT,
        vocabulary.TAG_STOP_SOURCE,
        vocabulary.TAG_STOP_REQUESTED_AT,
        vocabulary.TAG_AUDIT,
    }


def test_alarm_permissions_are_limited_to_the_per_job_alarm_prefix(default_app: Synthesized) -> None:
    assert statement_with_sid(default_app, "DescribeAndDeletePerJobAlarms") == {
        "Sid": "DescribeAndDeletePerJobAlarms",
        "Effect": "Allow",
        "Action": ["cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"],
        "Resource": pseudo_arn("cloudwatch", "alarm:autostop-*"),
    }


def test_publish_only_to_its_topic_and_use_only_its_key(default_app: Synthesized) -> None:
    topic_id, _ = default_app.only("AWS::SNS::Topic")
    key_id, _ = default_app.only("AWS::KMS::Key")
    queue_id, _ = default_app.only("AWS::SQS::Queue")
    unnamed = [statement for statement in role_statements(default_app) if "Sid" not in statement]
    assert sorted(unnamed, key=str) == sorted(
        [
            {"Action": "sns:Publish", "Effect": "Allow", "Resource": {"Ref": topic_id}},
            {
                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": [key_id, "Arn"]},
            },
            # Lambda's own DeadLetterConfig delivery.
            {"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": {"Fn::GetAtt": [queue_id, "Arn"]}},
            {
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Effect": "Allow",
                "Resource": {
                    "Fn::GetAtt": [stop_function_part(default_app, "AWS::Logs::LogGroup")[0], "Arn"]
                },
            },
        ],
        key=str,
    )


def test_role_never_uses_resource_star_and_has_nothing_else(default_app: Synthesized) -> None:
    statements = role_statements(default_app)
    assert len(statements) == 8
    for statement in statements:
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        assert "*" not in resources, statement
        assert statement["Effect"] == "Allow"


def test_job_prefix_and_tag_narrow_every_arn_and_condition(synth: Synth) -> None:
    # GIVEN a job prefix, another opt-in tag and another alarm prefix
    synthesized = synth(
        {"autostop:jobPrefix": "sweep-", "autostop:tagKey": "ml-team", "autostop:alarmPrefix": "stopper-"}
    )
    # THEN every job ARN carries the prefix, every condition the tag, the alarm ARN both prefixes
    for sid in ("DescribeAndStopOptedInTrainingJobs", "TagStoppedTrainingJobsWithAuditTagsOnly"):
        statement = statement_with_sid(synthesized, sid)
        assert statement["Resource"] == pseudo_arn("sagemaker", "training-job/sweep-*")
        assert statement["Condition"]["StringEquals"] == {"aws:ResourceTag/ml-team": "enabled"}
    assert statement_with_sid(synthesized, "DescribeAndDeletePerJobAlarms")["Resource"] == pseudo_arn(
        "cloudwatch", "alarm:stopper-sweep-*"
    )


# --------------------------------------------------------------------------------------------- rules


RULES = {
    "TrainingJobStateChangeRule": event_patterns.training_job_state_change,
    "InContainerRuleEvaluationRule": event_patterns.in_container_rule_evaluation,
    "RuleAlarmStateChangeRule": event_patterns.rule_alarm_state_change,
    "CrossJobRungReportRule": event_patterns.cross_job_rung_report,
}


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"autostop:jobPrefix": "sweep-", "autostop:stoppingRules": "LossNotDecreasing,LowGPUUtilization"},
    ],
    ids=["defaults", "prefix-and-rules"],
)
@pytest.mark.parametrize("rule_name", sorted(RULES))
def test_rules_on_default_bus_with_pattern_retry_policy_and_dlq(
    synth: Synth, context: dict[str, Any], rule_name: str
) -> None:
    synthesized = synth(context)
    settings = stacks_settings(context)
    rule = synthesized.template_json["Resources"][
        logical_id(synthesized, "AWS::Events::Rule", f"/{rule_name}/")
    ]
    function_id, _ = stop_function_part(synthesized, "AWS::Lambda::Function")
    queue_id, _ = synthesized.only("AWS::SQS::Queue")
    properties = rule["Properties"]
    assert "EventBusName" not in properties  # the default bus
    assert properties["State"] == "ENABLED"
    assert properties["EventPattern"] == RULES[rule_name](settings)
    assert properties["Targets"] == [
        {
            "Id": "Target0",
            "Arn": {"Fn::GetAtt": [function_id, "Arn"]},
            "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}},
            "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 8},
        }
    ]


def stacks_settings(context: dict[str, Any]) -> AutostopSettings:
    from infra import config

    merged = {**cdk_support.cdk_json_context(), **context}
    return config.settings_from_context(merged.get)


def test_each_rule_may_invoke_the_function(default_app: Synthesized) -> None:
    function_id, _ = stop_function_part(default_app, "AWS::Lambda::Function")
    permissions = [
        permission
        for permission in default_app.resources("AWS::Lambda::Permission").values()
        if permission["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    rule_ids = {
        rule_id
        for rule_id, rule in default_app.resources("AWS::Events::Rule").items()
        if "AlarmJanitor" not in rule["Metadata"]["aws:cdk:path"]
    }
    assert len(rule_ids) == len(RULES)
    assert {permission["Properties"]["SourceArn"]["Fn::GetAtt"][0] for permission in permissions} == rule_ids
    for permission in permissions:
        assert permission["Properties"]["Action"] == "lambda:InvokeFunction"
        assert permission["Properties"]["Principal"] == "events.amazonaws.com"
        assert permission["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}


# --------------------------------------------------------------------------------------------- queue


def test_dead_letter_queue_is_encrypted_tls_only_and_only_the_rules_may_send(
    default_app: Synthesized,
) -> None:
    queue_id, queue = default_app.only("AWS::SQS::Queue")
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    _, policy = default_app.only("AWS::SQS::QueuePolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    queue_arn = {"Fn::GetAtt": [queue_id, "Arn"]}
    assert statements[0] == {
        "Action": "sqs:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": queue_arn,
    }
    allows = statements[1:]
    rule_ids = set(default_app.resources("AWS::Events::Rule"))
    assert {allow["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0] for allow in allows} == rule_ids
    for allow in allows:
        assert allow["Effect"] == "Allow"
        assert allow["Action"] == "sqs:SendMessage"
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert allow["Resource"] == queue_arn


# --------------------------------------------------------------------------------------------- topic


def test_topic_is_kms_encrypted_with_a_rotating_key_and_tls_only(default_app: Synthesized) -> None:
    topic_id, topic = default_app.only("AWS::SNS::Topic")
    key_id, key = default_app.only("AWS::KMS::Key")
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    cloudwatch_key_statements = [
        statement
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if statement.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch_key_statements == [
        {
            "Sid": "AllowCloudWatchAlarmsToUseTheKey",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Resource": "*",
        }
    ]
    _, topic_policy = default_app.only("AWS::SNS::TopicPolicy")
    assert topic_policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    assert topic_policy["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Sid": "AllowPublishThroughSSLOnly",
            "Action": "sns:Publish",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": "*",
            "Resource": {"Ref": topic_id},
        },
        {
            "Sid": "AllowCloudWatchAlarmsToPublish",
            "Action": "sns:Publish",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                "ArnLike": {"aws:SourceArn": pseudo_arn("cloudwatch", "alarm:*")},
            },
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Resource": {"Ref": topic_id},
        },
    ]


def test_no_email_subscription_unless_configured(default_app: Synthesized, synth: Synth) -> None:
    # GIVEN no notification email  THEN no subscription
    assert default_app.resources("AWS::SNS::Subscription") == {}
    # GIVEN one  THEN exactly one email subscription to the topic
    synthesized = synth({"autostop:notificationEmail": "ml-team@example.com"})
    topic_id, _ = synthesized.only("AWS::SNS::Topic")
    _, subscription = synthesized.only("AWS::SNS::Subscription")
    assert subscription["Properties"] == {
        "Protocol": "email",
        "Endpoint": "ml-team@example.com",
        "TopicArn": {"Ref": topic_id},
    }


# --------------------------------------------------------------------------------------------- alarms


def alarm(synthesized: Synthesized, construct_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = synthesized.template_json["Resources"][
        logical_id(synthesized, "AWS::CloudWatch::Alarm", f"/{construct_id}/")
    ]["Properties"]
    return properties


def test_three_alarms_notify_the_topic_and_ignore_missing_data(default_app: Synthesized) -> None:
    topic_id, _ = default_app.only("AWS::SNS::Topic")
    alarms = default_app.resources("AWS::CloudWatch::Alarm")
    assert len(alarms) == 3
    for resource in alarms.values():
        properties = resource["Properties"]
        assert properties["AlarmActions"] == [{"Ref": topic_id}]
        assert properties["OKActions"] == [{"Ref": topic_id}]
        assert properties["TreatMissingData"] == "notBreaching"
        assert properties["EvaluationPeriods"] == 1
        assert "AlarmName" not in properties  # CloudFormation names them <stack>-<id>-<suffix>


def test_stop_function_errors_alarm(default_app: Synthesized) -> None:
    function_id, _ = stop_function_part(default_app, "AWS::Lambda::Function")
    properties = alarm(default_app, "StopFunctionErrorsAlarm")
    assert {
        key: properties[key] for key in ("Namespace", "MetricName", "Dimensions", "Statistic", "Period")
    } == {
        "Namespace": "AWS/Lambda",
        "MetricName": "Errors",
        "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": function_id}}],
        "Statistic": "Sum",
        "Period": 300,
    }
    assert properties["Threshold"] == 1
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_dead_letter_queue_depth_alarm(default_app: Synthesized) -> None:
    queue_id, _ = default_app.only("AWS::SQS::Queue")
    properties = alarm(default_app, "DeadLetterQueueAlarm")
    assert {
        key: properties[key] for key in ("Namespace", "MetricName", "Dimensions", "Statistic", "Period")
    } == {
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}],
        "Statistic": "Maximum",
        "Period": 60,
    }
    assert properties["Threshold"] == 0
    assert properties["ComparisonOperator"] == "GreaterThanThreshold"


def test_account_wide_rule_issues_alarm_uses_the_contract_metric(default_app: Synthesized) -> None:
    properties = alarm(default_app, "RuleIssuesFoundAlarm")
    assert {
        key: properties[key] for key in ("Namespace", "MetricName", "Dimensions", "Statistic", "Period")
    } == {
        "Namespace": "Autostop",
        "MetricName": "IssuesFound",
        "Dimensions": [{"Name": "service", "Value": "stop-training-job"}],
        "Statistic": "Sum",
        "Period": 300,
    }
    assert properties["Threshold"] == 1
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


# ----------------------------------------------------------------------------------- outputs, naming


def test_outputs_name_topic_function_and_queue(default_app: Synthesized) -> None:
    topic_id, _ = default_app.only("AWS::SNS::Topic")
    function_id, _ = stop_function_part(default_app, "AWS::Lambda::Function")
    queue_id, _ = default_app.only("AWS::SQS::Queue")
    outputs = default_app.template_json["Outputs"]
    assert outputs["NotificationTopicArn"]["Value"] == {"Ref": topic_id}
    assert outputs["StopFunctionName"]["Value"] == {"Ref": function_id}
    assert outputs["DeadLetterQueueUrl"]["Value"] == {"Ref": queue_id}


def test_the_scope_parameter_holds_the_deployed_settings_and_its_name_is_an_output(synth: Synth) -> None:
    # GIVEN a stack with a custom tag, job prefix, stopping rules and dry run
    context = {
        "autostop:tagKey": "team:stop",
        "autostop:tagValue": "yes",
        "autostop:jobPrefix": "Sweep-",
        "autostop:stoppingRules": "team:Loss,VanishingGradient",
        "autostop:dryRun": True,
    }
    synthesized = synth(context)
    # THEN one String parameter holds exactly the document the launcher parses (training/sweep/scope.py)
    parameter_id, parameter = synthesized.only("AWS::SSM::Parameter")
    assert parameter["Properties"]["Type"] == "String"
    document = parameter["Properties"]["Value"]
    assert document == stacks_settings(context).scope_document()
    assert json.loads(document) == {
        "version": 1,
        "tagKey": "team:stop",
        "tagValue": "yes",
        "jobPrefix": "Sweep-",
        "stoppingRules": ["team:Loss", "VanishingGradient"],
        "dryRun": True,
    }
    deployed = scope.DeployedScope.from_document(document, source="template")
    assert (deployed.tag_key, deployed.job_prefix, deployed.dry_run) == ("team:stop", "Sweep-", True)
    # AND its name is the ScopeParameterName output the launcher reads
    output = synthesized.template_json["Outputs"][scope.SCOPE_PARAMETER_OUTPUT]
    assert output["Value"] == {"Ref": parameter_id}


def test_an_upper_case_job_prefix_is_lowercased_in_iam_arns(synth: Synth) -> None:
    # GIVEN jobPrefix "Sweep-": SageMaker presents training-job ARNs with the name lowercased
    synthesized = synth({"autostop:jobPrefix": "Sweep-"})
    # THEN the IAM resources match what AWS evaluates (training-job/sweep-*), never the verbatim prefix
    for sid in ("DescribeAndStopOptedInTrainingJobs", "TagStoppedTrainingJobsWithAuditTagsOnly"):
        assert statement_with_sid(synthesized, sid)["Resource"] == pseudo_arn(
            "sagemaker", "training-job/sweep-*"
        )


def test_construct_exposes_what_it_made(default_app: Synthesized) -> None:
    assert isinstance(default_app.stack, stacks.AutostopStack)
    auto_stop = default_app.stack.auto_stop
    assert len(auto_stop.rules.all) == 4
    assert len(auto_stop.alarms.all) == 3
    assert auto_stop.email_subscription is None
    assert auto_stop.function.runtime.name == "python3.14"


@pytest.mark.parametrize("stack_name", ["autostop", "autostop-dev"])
def test_stack_name_that_would_make_its_alarms_look_per_job_is_refused(stack_name: str) -> None:
    # GIVEN the default alarm prefix "autostop-" and a stack whose alarms would be named "autostop-..."
    app = cdk_support.new_app()
    # WHEN the stack is built  THEN it refuses, naming both settings
    with pytest.raises(ValueError, match="clashes with autostop:alarmPrefix"):
        stacks.AutostopStack(app, stack_name, settings=AutostopSettings())
