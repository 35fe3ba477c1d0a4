"""The auto-stop unit: EventBridge rules -> stop Lambda -> (StopTrainingJob, AddTags, SNS), with its DLQ,
topic and alarms. The Lambda's runtime code lives in ``lambdas/stop_training_job/``.

The construct makes resources and exposes them as attributes; the stack (infra/stacks.py) grants the
function what it may do, so every permission is visible in one place. What this module and the Lambda
share (environment variables, metric names, handler string) is spelled out once, in the constants and
``stop_function_environment`` below; the Lambda reads nothing else.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra import bundling, defaults, event_patterns
from infra.alarm_janitor import AlarmJanitor
from infra.config import AutostopSettings
from infra.sweep_state import SweepState

STOP_FUNCTION_SOURCE = bundling.REPOSITORY_ROOT / "lambdas" / "stop_training_job"
STOP_FUNCTION_HANDLER = "stop_training_job.app.handler"

SERVICE_NAME = "stop-training-job"
METRICS_NAMESPACE = "Autostop"
ISSUES_FOUND_METRIC = "IssuesFound"

# EventBridge -> Lambda delivery retries. Deliveries fail only when Lambda refuses the asynchronous invoke
# (throttled API, missing permission); after that Lambda owns retries (see defaults.python_function). A
# stop request older than an hour is stale: the job has run on for an hour or has ended.
TARGET_MAX_EVENT_AGE = cdk.Duration.hours(1)
TARGET_RETRY_ATTEMPTS = 8

# The stack output naming the SSM parameter with the deployed scope (the launcher reads it before a sweep).
SCOPE_PARAMETER_OUTPUT = "ScopeParameterName"


@dataclasses.dataclass(frozen=True)
class AutoStopRules:
    training_job_state_change: events.Rule
    in_container_rule_evaluation: events.Rule
    rule_alarm_state_change: events.Rule
    cross_job_rung_report: events.Rule

    @property
    def all(self) -> tuple[events.Rule, ...]:
        return (
            self.training_job_state_change,
            self.in_container_rule_evaluation,
            self.rule_alarm_state_change,
            self.cross_job_rung_report,
        )


@dataclasses.dataclass(frozen=True)
class AutoStopAlarms:
    stop_function_errors: cloudwatch.Alarm
    dead_letter_queue_messages: cloudwatch.Alarm
    rule_issues_found: cloudwatch.Alarm

    @property
    def all(self) -> tuple[cloudwatch.Alarm, ...]:
        return (self.stop_function_errors, self.dead_letter_queue_messages, self.rule_issues_found)


def stop_function_environment(
    settings: AutostopSettings, *, topic_arn: str, sweep_state_environment: dict[str, str]
) -> dict[str, str]:
    """The stop Lambda's whole configuration: the handler reads only these (and Powertools' own).
    ``sweep_state_environment`` names the sweep-state table (``SweepState.environment``)."""
    return {
        "AUTOSTOP_TAG_KEY": settings.tag_key,
        "AUTOSTOP_TAG_VALUE": settings.tag_value,
        "AUTOSTOP_JOB_PREFIX": settings.job_prefix,
        "AUTOSTOP_STOPPING_RULES": settings.stopping_rules_setting,
        "AUTOSTOP_DRY_RUN": "true" if settings.dry_run else "false",
        "AUTOSTOP_TOPIC_ARN": topic_arn,
        "AUTOSTOP_ALARM_PREFIX": settings.alarm_prefix,
        **sweep_state_environment,
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


class AutoStop(Construct):
    """Stops opted-in SageMaker training jobs whose Debugger/Profiler rules found issues.

    Attributes: ``function``, ``role``, ``log_group`` (the stop Lambda), ``dead_letter_queue`` (events that
    could not be delivered or processed), ``topic`` and ``topic_key`` (notifications, KMS-encrypted),
    ``email_subscription`` (or None), ``rules``, ``alarms``, ``scope_parameter`` (the deployed scope:
    tag, job prefix, stopping rules, dry run, as JSON; its name is the ``ScopeParameterName`` output) and
    ``janitor`` (the hourly Lambda deleting per-job alarms of ended jobs whose terminal event was lost).

    ``sweep_state``: the table where the stop Lambda records each job's objective at each rung (cross-job
    stopping); the function learns its name from the environment, the stack grants it the two actions.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: AutostopSettings,
        sweep_state: SweepState,
        source_directory: Path = STOP_FUNCTION_SOURCE,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.sweep_state = sweep_state

        notifications = defaults.encrypted_topic(self, "Notifications", display_name="autostop notifications")
        self.encrypted_topic = notifications
        self.topic: sns.Topic = notifications.topic
        self.topic_key = notifications.key
        self.email_subscription: sns.Subscription | None = (
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.notification_email))
            if settings.notification_email
            else None
        )

        # One dead-letter queue for both failure points, so nothing is lost and one alarm covers both:
        # EventBridge deliveries that fail (target DLQ) and invocations that still fail after Lambda's
        # retries (the function's DeadLetterConfig). Both keep the original event as the message body.
        self.dead_letter_queue = defaults.dead_letter_queue(self, "DeadLetterQueue")

        stop_function = defaults.python_function(
            self,
            "StopFunction",
            code=bundling.python_lambda_code(source_directory),
            handler=STOP_FUNCTION_HANDLER,
            description="Stops opted-in SageMaker training jobs whose rules found issues or that rank below "
            "their sweep's other jobs",
            environment=stop_function_environment(
                settings, topic_arn=self.topic.topic_arn, sweep_state_environment=sweep_state.environment
            ),
            reserved_concurrent_executions=settings.stop_function_reserved_concurrency,
            log_retention=defaults.log_retention(settings.log_retention_days),
            timeout=cdk.Duration.seconds(30),
            memory_size=256,
            dead_letter_queue=self.dead_letter_queue,
        )
        self.function: lambda_.Function = stop_function.function
        self.role = stop_function.role
        self.log_group = stop_function.log_group

        # The terminal event that makes the stop Lambda delete a job's alarms can be lost; the janitor
        # sweeps what it leaves. Its failed runs land in the same dead-letter queue (one alarm covers all).
        self.janitor = AlarmJanitor(
            self, "AlarmJanitor", settings=settings, dead_letter_queue=self.dead_letter_queue
        )

        # One scope: the launcher reads what this stack acts on instead of assuming it, and refuses a sweep
        # whose jobs it would not act on (training/sweep/scope.py). Not secret: a plain String parameter.
        self.scope_parameter = ssm.StringParameter(
            self,
            "ScopeParameter",
            description="autostop: the scope the stop Lambda acts on (read by the sweep launcher)",
            string_value=settings.scope_document(),
        )
        cdk.CfnOutput(
            self,
            SCOPE_PARAMETER_OUTPUT,
            value=self.scope_parameter.parameter_name,
            description="SSM parameter with the deployed scope (tag, job prefix, stopping rules, dry run)",
        ).override_logical_id(SCOPE_PARAMETER_OUTPUT)

        self.rules = AutoStopRules(
            training_job_state_change=self._rule(
                "TrainingJobStateChangeRule",
                description="SageMaker training job ended, or one of its rules found issues",
                pattern=event_patterns.training_job_state_change(settings),
            ),
            in_container_rule_evaluation=self._rule(
                "InContainerRuleEvaluationRule",
                description="The training container's rule evaluator found issues",
                pattern=event_patterns.in_container_rule_evaluation(settings),
            ),
            rule_alarm_state_change=self._rule(
                "RuleAlarmStateChangeRule",
                description="A per-job rule alarm went to ALARM",
                pattern=event_patterns.rule_alarm_state_change(settings),
            ),
            cross_job_rung_report=self._rule(
                "CrossJobRungReportRule",
                description="A training container reported its objective at a rung (cross-job stopping)",
                pattern=event_patterns.cross_job_rung_report(settings),
            ),
        )

        self.alarms = AutoStopAlarms(
            stop_function_errors=defaults.function_errors_alarm(
                self,
                "StopFunctionErrorsAlarm",
                function=self.function,
                topic=self.topic,
                description="The autostop stop Lambda failed (retried; what still fails ends in the DLQ)",
            ),
            dead_letter_queue_messages=defaults.queue_depth_alarm(
                self,
                "DeadLetterQueueAlarm",
                queue=self.dead_letter_queue,
                topic=self.topic,
                description="Events the autostop stop Lambda could not handle are waiting in its dead-letter "
                "queue (inspect, then redrive or purge)",
            ),
            rule_issues_found=defaults.notify(
                cloudwatch.Alarm(
                    self,
                    "RuleIssuesFoundAlarm",
                    alarm_description="A training rule found issues in at least one job of this account "
                    "(IssuesFound published by the stop Lambda)",
                    metric=cloudwatch.Metric(
                        namespace=METRICS_NAMESPACE,
                        metric_name=ISSUES_FOUND_METRIC,
                        dimensions_map={"service": SERVICE_NAME},
                        statistic=cloudwatch.Stats.SUM,
                        period=cdk.Duration.minutes(5),
                    ),
                    threshold=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    evaluation_periods=1,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                ),
                self.topic,
            ),
        )

    def _rule(self, construct_id: str, *, description: str, pattern: event_patterns.Pattern) -> events.Rule:
        """A rule on the default bus targeting the stop Lambda, with a retry policy and the shared DLQ
        (CDK adds a queue policy letting exactly this rule send to it)."""
        detail_type = pattern["detail-type"]
        return events.Rule(
            self,
            construct_id,
            description=f"autostop: {description}",
            event_pattern=events.EventPattern(
                source=pattern["source"], detail_type=detail_type, detail=pattern["detail"]
            ),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=self.dead_letter_queue,
                    max_event_age=TARGET_MAX_EVENT_AGE,
                    retry_attempts=TARGET_RETRY_ATTEMPTS,
                )
            ],
        )
