"""The alarm janitor: a scheduled Lambda that deletes per-job rule alarms of training jobs that ended.

Why: the stop Lambda deletes a job's alarms when SageMaker's terminal state-change event arrives; a lost
event (dead-lettered, a rule disabled for a while, the stack deployed after the job ended) would leave them
forever. Runtime code: ``lambdas/alarm_janitor/`` (handler ``alarm_janitor.app.handler``). Least privilege:
it may describe and delete only alarms named ``<alarm prefix><job prefix>*`` and describe only opted-in
training jobs under the job prefix; invocations are retried, then kept in the given dead-letter queue,
like the stop Lambda's.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import bundling, defaults
from infra.config import AutostopSettings

JANITOR_SOURCE = bundling.REPOSITORY_ROOT / "lambdas" / "alarm_janitor"
JANITOR_HANDLER = "alarm_janitor.app.handler"
# Hourly: an alarm of an ended job costs little for an hour, and one run is a handful of API calls.
JANITOR_SCHEDULE = events.Schedule.rate(cdk.Duration.hours(1))
# A scheduled run that cannot be delivered within the hour is superseded by the next one.
TARGET_MAX_EVENT_AGE = cdk.Duration.hours(1)
TARGET_RETRY_ATTEMPTS = 2


def janitor_environment(settings: AutostopSettings) -> dict[str, str]:
    """The janitor's whole configuration: the handler reads only these."""
    return {"AUTOSTOP_ALARM_PREFIX": settings.alarm_prefix, "AUTOSTOP_JOB_PREFIX": settings.job_prefix}


class AlarmJanitor(Construct):
    """Attributes: ``function``, ``role``, ``log_group`` and ``schedule`` (the hourly EventBridge rule)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: AutostopSettings,
        dead_letter_queue: sqs.IQueue,
        source_directory: Path = JANITOR_SOURCE,
    ) -> None:
        super().__init__(scope, construct_id)
        janitor = defaults.python_function(
            self,
            "Function",
            code=bundling.python_lambda_code(source_directory),
            handler=JANITOR_HANDLER,
            description="Deletes per-job rule alarms of SageMaker training jobs that have ended",
            environment=janitor_environment(settings),
            reserved_concurrent_executions=1,
            log_retention=defaults.log_retention(settings.log_retention_days),
            timeout=cdk.Duration.minutes(2),
            memory_size=256,
            dead_letter_queue=dead_letter_queue,
        )
        self.function: lambda_.Function = janitor.function
        self.role = janitor.role
        self.log_group = janitor.log_group
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="autostop: delete the per-job alarms of ended training jobs",
            schedule=JANITOR_SCHEDULE,
            targets=[
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=dead_letter_queue,
                    max_event_age=TARGET_MAX_EVENT_AGE,
                    retry_attempts=TARGET_RETRY_ATTEMPTS,
                )
            ],
        )
        self._grant(settings)

    def _grant(self, settings: AutostopSettings) -> None:
        stack = cdk.Stack.of(self)
        account = f"{stack.region}:{stack.account}"
        # Lowercased: SageMaker presents training-job ARNs with the name in lower case.
        training_jobs = (
            f"arn:{stack.partition}:sagemaker:{account}:training-job/{settings.job_prefix.lower()}*"
        )
        alarms = f"arn:{stack.partition}:cloudwatch:{account}:alarm:{settings.per_job_alarm_name_prefix}*"
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeOptedInTrainingJobs",
                actions=["sagemaker:DescribeTrainingJob"],
                resources=[training_jobs],
                conditions={"StringEquals": {f"aws:ResourceTag/{settings.tag_key}": settings.tag_value}},
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeAndDeletePerJobAlarms",
                actions=["cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"],
                resources=[alarms],
            )
        )
        defaults.acknowledge(
            self.role,
            rule_id=defaults.nag_resource_finding(stack, training_jobs),
            reason="Training jobs are created after deployment under unknown names: the ARN is limited "
            "to this account, region and the configured job prefix, and DescribeTrainingJob (the only "
            "action) is conditioned on the opt-in tag (aws:ResourceTag).",
        )
        defaults.acknowledge(
            self.role,
            rule_id=defaults.nag_resource_finding(stack, alarms),
            reason="Per-job alarms are created by training launchers as '<alarm prefix><job>/<rule>', "
            "names not known at deploy time: the ARN is limited to this account, region and that name "
            "prefix, so the janitor can describe and delete only per-job alarms, never this stack's own.",
        )
