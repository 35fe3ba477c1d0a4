"""The sweep launcher: the Lambda that keeps a detached sweep going with no machine of the user's awake.

``autostop sweep run --backend sagemaker --detach`` stores every job's ``CreateTrainingJob`` request in the
sweep-state table and launches the first ``max_parallel_jobs`` itself; from then on, each time SageMaker
says a job ended (EventBridge: ``aws.sagemaker`` "SageMaker Training Job State Change" with a terminal
status, for jobs under the job prefix), this function frees the job's slot and launches the next queued
job, each step a conditional write (``lambdas/launch_queued_jobs/``, handler
``launch_queued_jobs.app.handler``; docs/sweeps.md "Detached sweeps").

Least privilege, each permission for one step of the controller:

- DynamoDB ``GetItem`` and ``UpdateItem`` on the table only (a transaction's writes are authorised as the
  item operations they contain: Amazon DynamoDB Developer Guide, "Using IAM with DynamoDB transactions");
  the items are written by the command, never created here;
- SageMaker ``CreateTrainingJob`` and ``AddTags`` (SageMaker authorises the tags of a create request as
  ``AddTags``: Developer Guide, "Provide permissions for tagging SageMaker AI resources") on training jobs
  under the job prefix, only with the opt-in tag in the request (``aws:RequestTag``): every job this
  function creates is one the stop Lambda watches; ``DescribeTrainingJob`` there (a job found to exist);
- ``iam:PassRole`` on the training stack's execution role only, and only to SageMaker
  (``iam:PassedToService``);
- CloudWatch ``PutMetricAlarm`` and ``TagResource`` (an alarm created with tags needs both: CloudWatch API
  reference, PutMetricAlarm) on per-job alarm names only.

Invocations are retried and then kept in the function's own dead-letter queue, whose depth and the
function's errors alarm on the notification topic: an event kept there is a sweep waiting for a launch
(redrive it, or ``autostop sweep resume NAME --table TABLE``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Final

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import bundling, defaults, event_patterns, sweep_state
from infra.config import AutostopSettings

LAUNCHER_SOURCE: Final = bundling.REPOSITORY_ROOT / "lambdas" / "launch_queued_jobs"
LAUNCHER_HANDLER: Final = "launch_queued_jobs.app.handler"
# Events of jobs ending come in bursts only as large as the sweeps' parallelism, and the conditional writes
# make concurrent invocations safe: a small reservation keeps a runaway from starving the account.
RESERVED_CONCURRENCY: Final = 2
# A launch that waits is still wanted (unlike a stop, which goes stale): keep trying for hours, the most
# Lambda's asynchronous invocation allows.
MAX_EVENT_AGE: Final = cdk.Duration.hours(6)
TARGET_RETRY_ATTEMPTS: Final = 8

TABLE_ACTIONS: Final = ("dynamodb:GetItem", "dynamodb:UpdateItem")
CREATE_ACTIONS: Final = ("sagemaker:CreateTrainingJob", "sagemaker:AddTags")
DESCRIBE_ACTIONS: Final = ("sagemaker:DescribeTrainingJob",)
ALARM_ACTIONS: Final = ("cloudwatch:PutMetricAlarm", "cloudwatch:TagResource")


def training_job_ended(settings: AutostopSettings) -> event_patterns.Pattern:
    """SageMaker's own event for a job under the job prefix reaching a status it never leaves."""
    name_filter = {"TrainingJobName": [{"prefix": settings.job_prefix}]} if settings.job_prefix else {}
    return {
        "source": [event_patterns.SAGEMAKER_SOURCE],
        "detail-type": [event_patterns.TRAINING_JOB_STATE_CHANGE],
        "detail": {
            **name_filter,
            "TrainingJobStatus": list(event_patterns.TERMINAL_TRAINING_JOB_STATUSES),
        },
    }


def launcher_environment(settings: AutostopSettings, *, table_name: str) -> dict[str, str]:
    """The function's whole configuration: the handler reads only these."""
    return {
        sweep_state.TABLE_NAME_ENV: table_name,
        "AUTOSTOP_JOB_PREFIX": settings.job_prefix,
        "AUTOSTOP_ALARM_PREFIX": settings.alarm_prefix,
    }


@dataclasses.dataclass(frozen=True)
class SweepLauncherAlarms:
    function_errors: cloudwatch.Alarm
    dead_letter_queue_messages: cloudwatch.Alarm


class SweepLauncher(Construct):
    """Attributes: ``function``, ``role``, ``log_group``, ``dead_letter_queue``, ``rule`` (the EventBridge
    rule on ended jobs) and ``alarms`` (on ``alarm_topic``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.ITable,
        settings: AutostopSettings,
        training_role: iam.IRole,
        alarm_topic: sns.ITopic,
        source_directory: Path = LAUNCHER_SOURCE,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = defaults.dead_letter_queue(self, "DeadLetterQueue")
        launcher = defaults.python_function(
            self,
            "Function",
            code=bundling.python_lambda_code(source_directory),
            handler=LAUNCHER_HANDLER,
            description="Launches the next queued job of a detached sweep when one of its jobs ends",
            environment=launcher_environment(settings, table_name=table.table_name),
            reserved_concurrent_executions=RESERVED_CONCURRENCY,
            log_retention=defaults.log_retention(settings.log_retention_days),
            timeout=cdk.Duration.seconds(60),
            memory_size=256,
            dead_letter_queue=self.dead_letter_queue,
            max_event_age=MAX_EVENT_AGE,
        )
        self.function: lambda_.Function = launcher.function
        self.role = launcher.role
        self.log_group = launcher.log_group
        pattern = training_job_ended(settings)
        self.rule = events.Rule(
            self,
            "TrainingJobEndedRule",
            description="autostop: a training job ended; its detached sweep may launch the next one",
            event_pattern=events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
            ),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=self.dead_letter_queue,
                    max_event_age=MAX_EVENT_AGE,
                    retry_attempts=TARGET_RETRY_ATTEMPTS,
                )
            ],
        )
        self.alarms = SweepLauncherAlarms(
            function_errors=defaults.function_errors_alarm(
                self,
                "FunctionErrorsAlarm",
                function=self.function,
                topic=alarm_topic,
                description="The autostop sweep launcher failed (retried; what still fails ends in its DLQ, "
                "and the sweep waits for that launch)",
            ),
            dead_letter_queue_messages=defaults.queue_depth_alarm(
                self,
                "DeadLetterQueueAlarm",
                queue=self.dead_letter_queue,
                topic=alarm_topic,
                description="Job-end events the autostop sweep launcher could not handle: a detached sweep "
                "waits for a launch (redrive them, or run autostop sweep resume NAME --table TABLE)",
            ),
        )
        self._grant(settings, table=table, training_role=training_role)

    def _grant(self, settings: AutostopSettings, *, table: dynamodb.ITable, training_role: iam.IRole) -> None:
        stack = cdk.Stack.of(self)
        account = f"{stack.region}:{stack.account}"
        # Lowercased: SageMaker presents training-job ARNs with the name in lower case.
        training_jobs = (
            f"arn:{stack.partition}:sagemaker:{account}:training-job/{settings.job_prefix.lower()}*"
        )
        alarms = f"arn:{stack.partition}:cloudwatch:{account}:alarm:{settings.per_job_alarm_name_prefix}*"
        opted_in: dict[str, Any] = {f"aws:RequestTag/{settings.tag_key}": settings.tag_value}
        statements = [
            iam.PolicyStatement(
                sid="ReadAndAdvanceDetachedSweeps", actions=list(TABLE_ACTIONS), resources=[table.table_arn]
            ),
            iam.PolicyStatement(
                sid="CreateOptedInTrainingJobs",
                actions=list(CREATE_ACTIONS),
                resources=[training_jobs],
                conditions={"StringEquals": opted_in},
            ),
            iam.PolicyStatement(
                sid="DescribeTrainingJobsFoundToExist",
                actions=list(DESCRIBE_ACTIONS),
                resources=[training_jobs],
            ),
            iam.PolicyStatement(
                sid="PassTheTrainingRoleToSageMaker",
                actions=["iam:PassRole"],
                resources=[training_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            iam.PolicyStatement(sid="PutPerJobAlarms", actions=list(ALARM_ACTIONS), resources=[alarms]),
        ]
        for statement in statements:
            self.role.add_to_principal_policy(statement)
        defaults.acknowledge(
            self.role,
            rule_id=defaults.nag_resource_finding(stack, training_jobs),
            reason="Detached sweeps' jobs are created after deployment under names nobody knows yet: the ARN "
            "is limited to this account, region and the configured job prefix, and creating (and tagging) "
            "needs the opt-in tag in the request (aws:RequestTag), so every job made is watched.",
        )
        defaults.acknowledge(
            self.role,
            rule_id=defaults.nag_resource_finding(stack, alarms),
            reason="Per-job alarms are named '<alarm prefix><job>/<rule>' after jobs created after "
            "deployment: the ARN is limited to this account, region and that name prefix, so the function "
            "can put only per-job alarms, never this stack's own.",
        )
