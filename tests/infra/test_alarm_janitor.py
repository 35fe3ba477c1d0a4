"""The alarm janitor in the stop stack: an hourly schedule, retries and the shared DLQ, its own log group,
and a role that may describe only opted-in jobs under the prefix and describe/delete only per-job alarms."""

from __future__ import annotations

from typing import Any

from infra import alarm_janitor
from tests.infra.conftest import Synthesized
from tests.infra.test_auto_stop_stack import Synth, pseudo_arn


def janitor_part(synthesized: Synthesized, resource_type: str) -> tuple[str, dict[str, Any]]:
    found = [
        (resource_id, resource)
        for resource_id, resource in synthesized.resources(resource_type).items()
        if "/AlarmJanitor/" in resource["Metadata"]["aws:cdk:path"]
    ]
    assert len(found) == 1, f"janitor {resource_type}: {[item[0] for item in found]}"
    return found[0]


def janitor_statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    role_id, role = janitor_part(synthesized, "AWS::IAM::Role")
    statements = [
        statement
        for policy in role["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def test_the_janitor_runs_hourly_with_retries_and_the_stop_stacks_dead_letter_queue(
    default_app: Synthesized,
) -> None:
    function_id, function = janitor_part(default_app, "AWS::Lambda::Function")
    properties = function["Properties"]
    queue_id, _ = default_app.only("AWS::SQS::Queue")
    assert properties["Handler"] == alarm_janitor.JANITOR_HANDLER == "alarm_janitor.app.handler"
    assert properties["Environment"]["Variables"] == {
        "AUTOSTOP_ALARM_PREFIX": "autostop-",
        "AUTOSTOP_JOB_PREFIX": "",
    }
    assert properties["ReservedConcurrentExecutions"] == 1
    assert properties["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    _, rule = janitor_part(default_app, "AWS::Events::Rule")
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 2}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    log_group_id, log_group = janitor_part(default_app, "AWS::Logs::LogGroup")
    assert log_group["Properties"]["RetentionInDays"] == 30
    assert properties["LoggingConfig"] == {"LogGroup": {"Ref": log_group_id}}


def test_the_janitors_role_names_every_resource_by_prefix(synth: Synth) -> None:
    # GIVEN a job prefix in upper case and another tag
    synthesized = synth({"autostop:jobPrefix": "Sweep-", "autostop:tagKey": "ml-team"})
    statements = {statement.get("Sid"): statement for statement in janitor_statements(synthesized)}
    # THEN it describes only opted-in jobs under the (lowercased) prefix, and alarms under both prefixes
    assert statements["DescribeOptedInTrainingJobs"] == {
        "Sid": "DescribeOptedInTrainingJobs",
        "Effect": "Allow",
        "Action": "sagemaker:DescribeTrainingJob",
        "Resource": pseudo_arn("sagemaker", "training-job/sweep-*"),
        "Condition": {"StringEquals": {"aws:ResourceTag/ml-team": "enabled"}},
    }
    assert statements["DescribeAndDeletePerJobAlarms"] == {
        "Sid": "DescribeAndDeletePerJobAlarms",
        "Effect": "Allow",
        "Action": ["cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"],
        "Resource": pseudo_arn("cloudwatch", "alarm:autostop-Sweep-*"),
    }
    # AND nothing else names a resource with a wildcard alone
    assert all(statement["Resource"] != "*" for statement in statements.values())
