"""The sweep launcher in the training stack: its rule, retries, dead-letter queue, alarms and exact grants.

Templates come from app.py's real in-process synth (cdk.json context + overrides, cdk-nag on, the Lambda
bundled by infra/bundling.py). The launcher lives in the training stack, beside the execution role it may
pass, and reads the stop stack's sweep-state table through a cross-stack import.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import cdk_nag
import pytest
from aws_cdk import aws_iam as iam
from cfnlint import api as cfnlint_api

from infra import defaults, stacks, sweep_launcher, sweep_state
from infra.config import AutostopSettings
from lambdas.launch_queued_jobs import app as launcher_app
from lambdas.launch_queued_jobs import items
from tests.infra.conftest import Synthesized
from tests.infra.test_auto_stop_stack import pseudo_arn
from tests.infra.test_nag_and_lint import violations
from tests.support import cdk as cdk_support
from tests.support.event_pattern_matcher import matches

Synth = Callable[..., Synthesized]
EVENTS = cdk_support.REPOSITORY_ROOT / "tests" / "events"
TRAINING_TEMPLATE = "AutostopTraining.template.json"


def training_template(synthesized: Synthesized) -> dict[str, Any]:
    template: dict[str, Any] = json.loads((synthesized.outdir / TRAINING_TEMPLATE).read_text())
    return template


def launcher_part(
    template: dict[str, Any], resource_type: str, path_part: str = "/SweepLauncher/"
) -> tuple[str, dict[str, Any]]:
    found = [
        (resource_id, resource)
        for resource_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type and path_part in resource["Metadata"]["aws:cdk:path"]
    ]
    assert len(found) == 1, f"{resource_type} under {path_part}: {[item[0] for item in found]}"
    return found[0]


def role_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of the launcher's role: its inline log policy and every policy attached to it."""
    role_id, role = launcher_part(template, "AWS::IAM::Role")
    statements = [
        statement
        for policy in role["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
            statements.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return statements


def imports_table(value: object, attribute: str) -> bool:
    return (
        isinstance(value, dict)
        and "Fn::ImportValue" in value
        and "SweepStateTable" in value["Fn::ImportValue"]
        and attribute in value["Fn::ImportValue"]
    )


def test_the_launcher_runs_on_ended_jobs_with_retries_and_its_own_dead_letter_queue(
    default_app: Synthesized,
) -> None:
    template = training_template(default_app)
    function_id, function = launcher_part(template, "AWS::Lambda::Function")
    queue_id, _ = launcher_part(template, "AWS::SQS::Queue")
    properties = function["Properties"]
    # THEN the handler and its whole configuration: the stop stack's table (imported), prefix, alarm prefix
    assert properties["Handler"] == sweep_launcher.LAUNCHER_HANDLER == "launch_queued_jobs.app.handler"
    variables = properties["Environment"]["Variables"]
    assert set(variables) == {
        launcher_app.TABLE_ENV,
        launcher_app.JOB_PREFIX_ENV,
        launcher_app.ALARM_PREFIX_ENV,
    }
    assert launcher_app.TABLE_ENV == sweep_state.TABLE_NAME_ENV
    assert imports_table(variables[launcher_app.TABLE_ENV], "Ref")
    assert (variables["AUTOSTOP_JOB_PREFIX"], variables["AUTOSTOP_ALARM_PREFIX"]) == ("", "autostop-")
    assert properties["ReservedConcurrentExecutions"] == sweep_launcher.RESERVED_CONCURRENCY == 2
    assert properties["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    # AND the rule: SageMaker's terminal state changes, retried for hours, then kept in the same queue
    _, rule = launcher_part(template, "AWS::Events::Rule")
    assert rule["Properties"]["EventPattern"] == sweep_launcher.training_job_ended(AutostopSettings())
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 6 * 3600, "MaximumRetryAttempts": 8}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    (invoke_config,) = [
        resource
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventInvokeConfig"
        and resource["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert invoke_config["Properties"]["MaximumEventAgeInSeconds"] == 6 * 3600
    # AND two alarms (errors, dead letters) notify the stop stack's topic
    alarm_actions = [
        resource["Properties"]["AlarmActions"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and "/SweepLauncher/" in resource["Metadata"]["aws:cdk:path"]
    ]
    assert len(alarm_actions) == 2
    for actions in alarm_actions:
        (topic,) = actions
        assert "Notifications" in topic["Fn::ImportValue"]


def test_the_launchers_role_may_do_exactly_the_controllers_steps(synth: Synth) -> None:
    # GIVEN a deployment for jobs named Vision-* that opt in with team=vision
    synthesized = synth(
        {"autostop:jobPrefix": "Vision-", "autostop:tagKey": "team", "autostop:tagValue": "vision"}
    )
    template = training_template(synthesized)
    every_statement = role_statements(template)
    statements = {statement["Sid"]: statement for statement in every_statement if "Sid" in statement}
    training_jobs = pseudo_arn("sagemaker", "training-job/vision-*")  # lowercased, as SageMaker spells ARNs
    role_id, _ = launcher_part(template, "AWS::IAM::Role", "/Training/ExecutionRole/")
    # THEN each permission names its resource, none is "*"
    table = statements["ReadAndAdvanceDetachedSweeps"]
    assert table["Action"] == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert imports_table(table["Resource"], "Arn")
    create = statements["CreateOptedInTrainingJobs"]
    assert sorted(create["Action"]) == ["sagemaker:AddTags", "sagemaker:CreateTrainingJob"]
    assert create["Resource"] == training_jobs
    assert create["Condition"] == {"StringEquals": {"aws:RequestTag/team": "vision"}}
    describe = statements["DescribeTrainingJobsFoundToExist"]
    assert (describe["Action"], describe["Resource"]) == ("sagemaker:DescribeTrainingJob", training_jobs)
    pass_role = statements["PassTheTrainingRoleToSageMaker"]
    assert pass_role["Action"] == "iam:PassRole"
    assert pass_role["Resource"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    alarms = statements["PutPerJobAlarms"]
    assert alarms["Action"] == ["cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"]
    assert alarms["Resource"] == pseudo_arn("cloudwatch", "alarm:autostop-Vision-*")
    assert set(statements) == {
        "ReadAndAdvanceDetachedSweeps",
        "CreateOptedInTrainingJobs",
        "DescribeTrainingJobsFoundToExist",
        "PassTheTrainingRoleToSageMaker",
        "PutPerJobAlarms",
    }
    # AND the rest is what every function of the project has: its own log group, its dead-letter queue
    others = {json.dumps(statement["Action"]) for statement in every_statement if "Sid" not in statement}
    assert others == {'["logs:CreateLogStream", "logs:PutLogEvents"]', '"sqs:SendMessage"'}
    everything = json.dumps(every_statement)
    assert '"Resource": "*"' not in everything
    assert "dynamodb:PutItem" not in everything  # items are written by the command only


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return event


@pytest.mark.parametrize(
    ("name", "status", "expected"),
    [
        ("sagemaker_state_change_completed.json", "Completed", True),
        ("sagemaker_state_change_stopped.json", "Stopped", True),
        ("sagemaker_state_change_completed.json", "Failed", True),
        ("sagemaker_state_change_in_progress.json", "InProgress", False),
        ("sagemaker_state_change_issues_found.json", "InProgress", False),
        ("sagemaker_state_change_completed.json", "Stopping", False),
    ],
)
def test_the_rule_lets_through_terminal_state_changes_of_jobs_under_the_prefix(
    name: str, status: str, expected: bool
) -> None:
    event = load_event(name)
    event["detail"]["TrainingJobStatus"] = status
    prefixed = sweep_launcher.training_job_ended(AutostopSettings(job_prefix="sweep-"))
    other_prefix = sweep_launcher.training_job_ended(AutostopSettings(job_prefix="team-"))
    assert matches(sweep_launcher.training_job_ended(AutostopSettings()), event) is expected
    assert matches(prefixed, event) is expected
    assert not matches(other_prefix, event)


@pytest.mark.parametrize("name", ["autostop_rule_issues_found.json", "cloudwatch_alarm_rule_alarm.json"])
def test_the_rule_lets_through_nothing_but_sagemakers_own_events(name: str) -> None:
    assert not matches(sweep_launcher.training_job_ended(AutostopSettings()), load_event(name))


def test_the_table_is_keyed_as_the_controller_reads_it() -> None:
    assert (sweep_state.PARTITION_KEY, sweep_state.SORT_KEY) == (items.PARTITION_KEY, items.SORT_KEY)


# --------------------------------------------------------------------------------------------- standalone


def synthesize_standalone(outdir: Path) -> cdk.App:
    """The construct alone in a stack, with a table, a role and a topic made by the project's defaults."""
    app = cdk_support.new_app(outdir=outdir)
    stack = cdk.Stack(app, "SweepLauncherTest")
    table = sweep_state.SweepState(stack, "SweepState").table
    role = iam.Role(stack, "TrainingRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    topic = defaults.encrypted_topic(stack, "Topic", display_name="test").topic
    sweep_launcher.SweepLauncher(
        stack,
        "SweepLauncher",
        table=table,
        settings=AutostopSettings(job_prefix="sweep-"),
        training_role=role,
        alarm_topic=topic,
    )
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    return app


def test_every_acknowledgement_is_needed_and_covers_exactly_its_finding(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN the construct synthesized as is  THEN cdk-nag finds nothing unacknowledged, cfn-lint nothing
    assembly = synthesize_standalone(tmp_path / "acknowledged").synth()
    assert violations(Path(assembly.directory)) == {}
    template = assembly.get_stack_by_name("SweepLauncherTest").template
    assert [str(match) for match in cfnlint_api.lint(json.dumps(template))] == []
    # WHEN its acknowledgements are switched off
    made: list[str] = []
    monkeypatch.setattr(defaults, "acknowledge", lambda scope, *, rule_id, reason: made.append(rule_id))
    app = synthesize_standalone(tmp_path / "unacknowledged")
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    # THEN the synth fails with exactly the two wildcard findings they cover, on the launcher's role policy
    found = violations(Path(app.outdir))
    policy = "SweepLauncherTest/SweepLauncher/FunctionRole/DefaultPolicy/Resource"
    expected = {
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
        "training-job/sweep-*]",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:"
        "alarm:autostop-sweep-*]",
    }
    assert {rule: paths for rule, paths in found.items() if rule in expected} == {
        rule: [policy] for rule in expected
    }
    assert set(made) >= expected


def test_the_training_stack_cfn_lints_clean_with_the_launcher(default_app: Synthesized) -> None:
    matches_found = cfnlint_api.lint(json.dumps(training_template(default_app)))
    assert [str(match) for match in matches_found] == []


def test_a_training_stack_given_a_table_needs_the_settings_and_topic_too(tmp_path: Path) -> None:
    app = cdk_support.new_app(outdir=tmp_path)
    table_stack = cdk.Stack(app, "Tables")
    table = sweep_state.SweepState(table_stack, "SweepState").table
    with pytest.raises(ValueError, match="settings and alarm topic"):
        stacks.TrainingStack(app, "Training", sweep_table=table)
