"""Stacks: compose the constructs and own every grant between them, in one readable place.

Why grants here and not inside the construct: a reviewer auditing "what may the stop Lambda do" reads one
method, and each permission carries the reason it is scoped the way it is.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import defaults
from infra.auto_stop import AutoStop
from infra.config import AUDIT_TAG_KEYS, AutostopSettings, TransformerSettings
from infra.render_transformer import RenderTransformer
from infra.sweep_launcher import SweepLauncher
from infra.sweep_state import SweepState
from infra.training_resources import TrainingResources

# Service Authorization Reference, "Actions, resources, and condition keys for Amazon SageMaker":
# StopTrainingJob, DescribeTrainingJob, ListTags and AddTags all take the `training-job` resource type,
# and that resource type lists the condition key aws:ResourceTag/${TagKey}. So all four are conditioned on
# the opt-in tag. (ListTags lists training-job as an optional resource type; conditioning it costs nothing
# because the handler calls DescribeTrainingJob, equally conditioned, first: an untagged job is already an
# AccessDenied "out of scope" skip there.) AddTags additionally lists aws:TagKeys / aws:RequestTag, so it is
# limited to writing the audit tag keys and can never add or overwrite the opt-in tag itself.
SAGEMAKER_READ_AND_STOP_ACTIONS = (
    "sagemaker:DescribeTrainingJob",
    "sagemaker:ListTags",
    "sagemaker:StopTrainingJob",
)
SAGEMAKER_TAG_ACTIONS = ("sagemaker:AddTags",)
# CloudWatch: DescribeAlarms and DeleteAlarms take the `alarm` resource type (required), so both are limited
# to the per-job alarm name prefix.
CLOUDWATCH_ALARM_ACTIONS = ("cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms")
# DynamoDB: what the rung store (lambdas/stop_training_job/rung_store.py) calls on the sweep-state table and
# nothing more: PutItem (a job's first report at a rung, conditional) and Query (everything at that rung).
# Both take the `table` resource type; no index is queried, so the table's ARN alone is the resource.
SWEEP_STATE_ACTIONS = ("dynamodb:PutItem", "dynamodb:Query")


def training_job_arn_pattern(stack: cdk.Stack, settings: AutostopSettings) -> str:
    """``arn:<partition>:sagemaker:<region>:<account>:training-job/<job prefix>*``: this account and region,
    prefix-scoped when a job prefix is configured. The prefix is lowercased: SageMaker's training-job ARNs
    spell the name in lower case, and IAM matches resource ARNs as SageMaker presents them."""
    return (
        f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:training-job/"
        f"{settings.job_prefix.lower()}*"
    )


def per_job_alarm_arn_pattern(stack: cdk.Stack, settings: AutostopSettings) -> str:
    """``arn:...:cloudwatch:<region>:<account>:alarm:<alarm prefix><job prefix>*``."""
    return (
        f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:"
        f"{settings.per_job_alarm_name_prefix}*"
    )


class AutostopStack(cdk.Stack):
    """The auto-termination core: rules, stop Lambda, DLQ, topic, alarms, the sweep-state table, and the
    Lambda's grants.

    Attributes: ``auto_stop`` (the construct), ``sweep_state`` and ``sweep_table`` (the DynamoDB table where a
    sweep's state lives: the stop Lambda's rung objectives, and items other sweep functions keep under sort
    keys starting with a letter; grant them here, beside the stop Lambda's).
    Outputs: the notification topic ARN, the stop function name, the dead-letter queue URL and the
    sweep-state table name.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: AutostopSettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._refuse_alarm_name_collision(settings)
        self.sweep_state = SweepState(self, "SweepState")
        self.sweep_table: dynamodb.Table = self.sweep_state.table
        self.auto_stop = AutoStop(self, "AutoStop", settings=settings, sweep_state=self.sweep_state)
        self._grant_stop_function(settings)

        cdk.CfnOutput(
            self,
            "NotificationTopicArn",
            value=self.auto_stop.topic.topic_arn,
            description="SNS topic with stop notifications and alarms (subscribe to it)",
        )
        cdk.CfnOutput(
            self,
            "StopFunctionName",
            value=self.auto_stop.function.function_name,
            description="The Lambda function that stops training jobs",
        )
        cdk.CfnOutput(
            self,
            "DeadLetterQueueUrl",
            value=self.auto_stop.dead_letter_queue.queue_url,
            description="Events the stop Lambda could not handle (inspect, then redrive or purge)",
        )
        cdk.CfnOutput(
            self,
            "SweepTableName",
            value=self.sweep_table.table_name,
            description="DynamoDB table with each sweep's state (rung objectives for cross-job stopping)",
        )

    def _refuse_alarm_name_collision(self, settings: AutostopSettings) -> None:
        """CloudFormation names this stack's alarms ``<stack name>-<id>-<suffix>``. If that could start with
        the per-job alarm prefix, the stop Lambda could delete them and rule (c) would route them to it."""
        generated = f"{self.stack_name}-"
        if generated.startswith(settings.alarm_prefix) or settings.alarm_prefix.startswith(generated):
            raise ValueError(
                f"stack name {self.stack_name!r} clashes with autostop:alarmPrefix "
                f"{settings.alarm_prefix!r}: the stack's own alarm names would start with the per-job "
                "alarm prefix; rename one of them"
            )

    def _grant_stop_function(self, settings: AutostopSettings) -> None:
        role = self.auto_stop.role
        training_jobs = training_job_arn_pattern(self, settings)
        alarms = per_job_alarm_arn_pattern(self, settings)
        opted_in = {f"aws:ResourceTag/{settings.tag_key}": settings.tag_value}

        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeAndStopOptedInTrainingJobs",
                actions=list(SAGEMAKER_READ_AND_STOP_ACTIONS),
                resources=[training_jobs],
                conditions={"StringEquals": opted_in},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="TagStoppedTrainingJobsWithAuditTagsOnly",
                actions=list(SAGEMAKER_TAG_ACTIONS),
                resources=[training_jobs],
                conditions={
                    "StringEquals": opted_in,
                    "ForAllValues:StringEquals": {"aws:TagKeys": list(AUDIT_TAG_KEYS)},
                },
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeAndDeletePerJobAlarms",
                actions=list(CLOUDWATCH_ALARM_ACTIONS),
                resources=[alarms],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="RecordAndReadRungObjectives",
                actions=list(SWEEP_STATE_ACTIONS),
                resources=[self.sweep_table.table_arn],
            )
        )
        defaults.grant_publish(self.auto_stop.encrypted_topic, role)

        # The only wildcards in the role: name prefixes, because the jobs and alarms are created after
        # deployment with names nobody knows yet. Each is scoped to this account and region.
        defaults.acknowledge(
            role,
            rule_id=defaults.nag_resource_finding(self, training_jobs),
            reason="Training jobs are created after deployment under unknown names: the ARN is limited "
            "to this account, region and the configured job prefix, and every action is conditioned on "
            "the opt-in tag (aws:ResourceTag), AddTags also on the audit tag keys (aws:TagKeys).",
        )
        defaults.acknowledge(
            role,
            rule_id=defaults.nag_resource_finding(self, alarms),
            reason="Per-job alarms are created by training launchers as '<alarm prefix><job>/<rule>', "
            "names not known at deploy time: the ARN is limited to this account, region and that name "
            "prefix, so the function can describe and delete only per-job alarms, never this stack's own.",
        )


class RenderTransformerStack(cdk.Stack):
    """The S3 -> SQS -> concurrent Lambda dataset transformer; its alarms go to the auto-stop
    stack's topic, so one subscription hears about stopped jobs and stuck render batches alike.

    Outputs: the render bucket (drop batches under ``renders/``) and the queue ``autostop transform submit``
    enqueues backfills on.

    ``shard_bucket``: where the shards go, under ``shards/train/`` and ``shards/validation/`` -- the training
    stack's data bucket, which the SageMaker execution role reads, so a sweep's channels point straight at
    them (no copy step). The function's grants on it are made by the construct, scoped to ``shards/*``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: TransformerSettings,
        alarm_topic: sns.ITopic,
        shard_bucket: s3.IBucket | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        access_logs = defaults.server_access_logs_bucket(self, "AccessLogs")
        self.transformer = RenderTransformer(
            self,
            "RenderTransformer",
            alarm_topic=alarm_topic,
            access_logs_bucket=access_logs,
            shard_bucket=shard_bucket,
            memory_size_mb=settings.memory_mb,
            timeout=cdk.Duration.seconds(settings.timeout_seconds),
            architecture=(
                lambda_.Architecture.ARM_64
                if settings.architecture == "arm64"
                else lambda_.Architecture.X86_64
            ),
            maximum_concurrency=settings.maximum_concurrency,
            batch_size=settings.batch_size,
            max_batching_window=cdk.Duration.seconds(settings.max_batching_window_seconds),
            image_size=settings.image_size,
            num_views=settings.num_views,
        )
        cdk.CfnOutput(
            self,
            "RenderBucketName",
            value=self.transformer.bucket.bucket_name,
            description="Drop render batches under renders/; rejections land under rejected/ (shards: under "
            "shards/train/ and shards/validation/ of the shard bucket, the training stack's DataBucketName)",
        )
        cdk.CfnOutput(
            self,
            "RenderQueueUrl",
            value=self.transformer.queue.queue_url,
            description="Backfill queue: autostop transform submit s3://<bucket>/renders/ --queue-url <this>",
        )


class TrainingStack(cdk.Stack):
    """The training image, buckets and SageMaker execution role. A stack of its own because deploying it
    builds the container images, which needs Docker; the render transformer writes its shards into this
    stack's data bucket, so it deploys after it; the auto-stop stack deploys without it.

    Given the stop stack's ``sweep_table``, its ``settings`` and its ``alarm_topic``, it also holds the sweep
    launcher (``sweep_launcher``, infra/sweep_launcher.py): detached sweeps' jobs run under this stack's
    execution role, the one role the launcher may pass."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        sweep_table: dynamodb.ITable | None = None,
        settings: AutostopSettings | None = None,
        alarm_topic: sns.ITopic | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        access_logs = defaults.server_access_logs_bucket(self, "AccessLogs")
        self.training = TrainingResources(self, "Training", access_logs_bucket=access_logs)
        self.sweep_launcher: SweepLauncher | None = None
        if sweep_table is not None:
            if settings is None or alarm_topic is None:
                raise ValueError("the sweep launcher needs the stop stack's settings and alarm topic too")
            self.sweep_launcher = SweepLauncher(
                self,
                "SweepLauncher",
                table=sweep_table,
                settings=settings,
                training_role=self.training.role,
                alarm_topic=alarm_topic,
            )
            cdk.CfnOutput(
                self,
                "SweepLauncherDeadLetterQueueUrl",
                value=self.sweep_launcher.dead_letter_queue.queue_url,
                description="Job-end events the sweep launcher could not handle (a detached sweep waits)",
            )
        outputs = {
            "CpuImageUri": (self.training.image_uri, "The training image for CPU instances"),
            "GpuImageUri": (self.training.gpu_image_uri, "The training image for GPU instances (ml.g*/p*)"),
            "ExecutionRoleArn": (self.training.role.role_arn, "SageMaker execution role for training jobs"),
            "DataBucketName": (self.training.data_bucket.bucket_name, "Training data (shards)"),
            "ModelBucketName": (self.training.model_bucket.bucket_name, "Model artifacts"),
            "CheckpointBucketName": (self.training.checkpoint_bucket.bucket_name, "Spot checkpoints"),
            "DebugOutputBucketName": (self.training.debug_output_bucket.bucket_name, "Debugger tensors"),
        }
        for output_id, (value, description) in outputs.items():
            cdk.CfnOutput(self, output_id, value=value, description=description)
