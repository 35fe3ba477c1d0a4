"""Render transformer: renders bucket -> S3 notifications -> SQS (+ DLQ) -> concurrent Lambda -> shards.

What it makes (each exposed as an attribute):

- ``bucket``: from ``defaults.secure_bucket`` (private, TLS-only, SSE-S3, versioned, access-logged,
  incomplete uploads aborted, old versions expired) plus a lifecycle rule expiring ``rejected/`` records.
  Users drop archives under ``renders/``; the function writes ``rejected/`` here and the shards under
  ``shards/train/`` and ``shards/validation/`` of ``shard_bucket`` (the training data bucket, which the
  SageMaker execution role reads; by default this bucket).
- ``queue`` / ``dead_letter_queue``: SSE-SQS, TLS-only; the bucket notifies the queue of ObjectCreated and
  ObjectRemoved under ``renders/`` once per accepted archive suffix spelling (.tar, .tar.gz, .tgz, .zip,
  each in lower and in upper case: S3 matches filters case-sensitively, and the function accepts exactly
  these spellings). Removal is notified so a deleted render batch's shards are deleted too. A message that
  fails ``max_receive_count`` times moves to the DLQ; the visibility timeout is 6x the function timeout
  plus the batching window (AWS's guidance for Lambda consumers), so a batch still running is never
  redelivered.
- ``function`` (+ ``role``, ``log_group``): lambdas/transform_renders bundled locally (infra/bundling.py,
  no Docker), fed by an SQS event source with batch size, batching window, MaximumConcurrency and
  ReportBatchItemFailures. Reserved concurrency equals the maximum concurrency, so the queue can neither
  starve other functions nor be throttled below what it was promised. Its environment carries the memory
  size (the archive limits follow it: ``transform.Limits.for_memory``) and the time a record needs to be
  started (a quarter of the timeout; the rest of a batch is failed early and retried).
- Alarms to ``alarm_topic``: a message in the DLQ, any function error, and the oldest queued message
  older than ``oldest_message_alarm_age`` (the transformer is falling behind or stuck).

Least privilege: the role reads ``renders/*`` (GetObject; HeadObject is authorized by it), writes
``rejected/*`` (PutObject), reads, writes and deletes ``shards/*`` of the shard bucket (HeadObject to find a
shard written from a newer upload; delete for a split a re-upload no longer has and for deleted batches),
and may list both buckets (s3:ListBucket, no object access): without it S3 answers 403 instead of 404 for
a missing key, and the function could not tell "gone" from "not allowed" (retried, then DLQ).
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3_notifications
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import bundling, defaults

LAMBDA_DIRECTORY = Path(__file__).resolve().parent.parent / "lambdas" / "transform_renders"
HANDLER = "transform_renders.app.handler"
# Python 3.13, not the newest runtime (3.14): the bundled asset is proven by a test that runs the handler
# from the bundle alone under a local CPython of the runtime's version, and pyenv here has 3.12 and 3.13.
# Move to 3.14 together with that test once a local 3.14 interpreter can run it.
RUNTIME = lambda_.Runtime.PYTHON_3_13
SOURCE_PREFIX = "renders/"
SHARD_PREFIX = "shards/"
REJECT_PREFIX = "rejected/"
# The archive suffixes the function accepts (lambdas/transform_renders/transform.py ACCEPTED_SUFFIXES, a
# test keeps both equal), each notified by its own filter.
ARCHIVE_SUFFIXES = (".tar.gz", ".TAR.GZ", ".tgz", ".TGZ", ".tar", ".TAR", ".zip", ".ZIP")
NOTIFIED_EVENTS = (s3.EventType.OBJECT_CREATED, s3.EventType.OBJECT_REMOVED)
DEFAULT_VALIDATION_FRACTION = 0.1
SERVICE_NAME = "transform-renders"
METRICS_NAMESPACE = "Autostop"
# What the function does with the bucket; explicit action lists, no wildcards.
READ_ACTIONS = ("s3:GetObject",)
WRITE_ACTIONS = ("s3:PutObject",)
SHARD_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
# A record is started only while at least this share of the function's timeout is left.
RECORD_TIME_RESERVE_SHARE = 0.25
# AWS recommends at least 5 receives before a Lambda-consumed message goes to the DLQ: a burst of
# throttling must not dead-letter good batches.
DEFAULT_MAX_RECEIVE_COUNT = 5
# The function's CPU scales with memory (1 vCPU at 1769 MB); 1024 MB fits the default archive bounds of
# lambdas/transform_renders/transform.py (128 MB archive, 256 MB expanded).
DEFAULT_MEMORY_MB = 1024
DEFAULT_TIMEOUT = cdk.Duration.minutes(2)
DEFAULT_MAXIMUM_CONCURRENCY = 10
DEFAULT_BATCH_SIZE = 10
DEFAULT_MAX_BATCHING_WINDOW = cdk.Duration.seconds(5)
DEFAULT_REJECTED_EXPIRATION = cdk.Duration.days(90)
DEFAULT_OLDEST_MESSAGE_ALARM_AGE = cdk.Duration.minutes(30)
# Construct id prefix of the per-stack singleton CDK adds for bucket notifications.
_NOTIFICATIONS_HANDLER_PREFIX = "BucketNotificationsHandler"


class RenderTransformer(Construct):
    """The renders bucket, its notification queue (+ DLQ), the transformer function and its alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarm_topic: sns.ITopic,
        access_logs_bucket: s3.IBucket,
        shard_bucket: s3.IBucket | None = None,
        validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
        memory_size_mb: int = DEFAULT_MEMORY_MB,
        timeout: cdk.Duration = DEFAULT_TIMEOUT,
        architecture: lambda_.Architecture = defaults.DEFAULT_ARCHITECTURE,
        maximum_concurrency: int = DEFAULT_MAXIMUM_CONCURRENCY,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batching_window: cdk.Duration = DEFAULT_MAX_BATCHING_WINDOW,
        image_size: int = 64,
        num_views: int = 12,
        max_archive_bytes: int | None = None,
        max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
        rejected_expiration: cdk.Duration = DEFAULT_REJECTED_EXPIRATION,
        oldest_message_alarm_age: cdk.Duration = DEFAULT_OLDEST_MESSAGE_ALARM_AGE,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        _validate(
            memory_size_mb=memory_size_mb,
            timeout=timeout,
            maximum_concurrency=maximum_concurrency,
            batch_size=batch_size,
            max_batching_window=max_batching_window,
            image_size=image_size,
            num_views=num_views,
            max_archive_bytes=max_archive_bytes,
            validation_fraction=validation_fraction,
        )

        self.bucket = defaults.secure_bucket(
            self,
            "Bucket",
            server_access_logs_bucket=access_logs_bucket,
            removal_policy=removal_policy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-rejection-records", prefix=REJECT_PREFIX, expiration=rejected_expiration
                )
            ],
        )

        visibility_timeout = cdk.Duration.seconds(6 * timeout.to_seconds() + max_batching_window.to_seconds())
        queues = defaults.queue_with_dead_letter_queue(
            self, "Batches", visibility_timeout=visibility_timeout, max_receive_count=max_receive_count
        )
        self.queue = queues.queue
        self.dead_letter_queue = queues.dead_letter_queue
        self.shard_bucket: s3.IBucket = shard_bucket or self.bucket
        self._shard_bucket_arn, self._shard_bucket_nag_arn = _shard_bucket_arn(
            cdk.Stack.of(self), self.shard_bucket
        )
        for event in NOTIFIED_EVENTS:
            for suffix in ARCHIVE_SUFFIXES:
                self.bucket.add_event_notification(
                    event,
                    s3_notifications.SqsDestination(self.queue),
                    s3.NotificationKeyFilter(prefix=SOURCE_PREFIX, suffix=suffix),
                )
        _acknowledge_notifications_handler(self, self.bucket)

        environment = {
            "OUTPUT_BUCKET": self.bucket.bucket_name,
            "SHARD_BUCKET": self.shard_bucket.bucket_name,
            "SHARD_PREFIX": SHARD_PREFIX,
            "REJECT_PREFIX": REJECT_PREFIX,
            "VALIDATION_FRACTION": str(validation_fraction),
            "IMAGE_SIZE": str(image_size),
            "NUM_VIEWS": str(num_views),
            "MEMORY_MB": str(memory_size_mb),
            "RECORD_TIME_RESERVE_MS": str(round(timeout.to_seconds() * 1000 * RECORD_TIME_RESERVE_SHARE)),
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        if max_archive_bytes is not None:
            environment["MAX_ARCHIVE_BYTES"] = str(max_archive_bytes)
        made = defaults.python_function(
            self,
            "Function",
            code=bundling.python_lambda_code(LAMBDA_DIRECTORY, runtime=RUNTIME, architecture=architecture),
            handler=HANDLER,
            description="Turns render batch archives under renders/ into TFRecord shards under shards/train "
            "and shards/validation",
            environment=environment,
            reserved_concurrent_executions=maximum_concurrency,
            log_retention=log_retention,
            timeout=timeout,
            memory_size=memory_size_mb,
            runtime=RUNTIME,
            architecture=architecture,
        )
        self.function = made.function
        self.role = made.role
        self.log_group = made.log_group
        defaults.acknowledge(
            self.function,
            rule_id="AwsSolutions-L1",
            reason="Python 3.13 on purpose: a test runs the handler from the bundled asset alone under a "
            "local CPython 3.13 to prove it works; no local 3.14 interpreter exists to prove a 3.14 one.",
        )
        self._grant_bucket_access()

        self.event_source = event_sources.SqsEventSource(
            self.queue,
            batch_size=batch_size,
            max_batching_window=max_batching_window,
            max_concurrency=maximum_concurrency,
            report_batch_item_failures=True,
        )
        self.function.add_event_source(self.event_source)

        self.dead_letter_queue_alarm = defaults.queue_depth_alarm(
            self,
            "DeadLetterQueueAlarm",
            queue=self.dead_letter_queue,
            topic=alarm_topic,
            description=f"A render batch message failed {max_receive_count} times and is in the dead-letter "
            "queue (transient failures that persisted, or a bug): inspect it, fix, then redrive.",
        )
        self.errors_alarm = defaults.function_errors_alarm(
            self,
            "ErrorsAlarm",
            function=self.function,
            topic=alarm_topic,
            description="The render transformer crashed or timed out (item failures are not errors).",
        )
        self.oldest_message_alarm = defaults.notify(
            cloudwatch.Alarm(
                self,
                "OldestMessageAlarm",
                alarm_description="The oldest render batch message has waited more than "
                f"{int(oldest_message_alarm_age.to_minutes())} minutes: the transformer is stuck or slow.",
                metric=self.queue.metric_approximate_age_of_oldest_message(
                    period=cdk.Duration.minutes(5), statistic=cloudwatch.Stats.MAXIMUM
                ),
                threshold=oldest_message_alarm_age.to_seconds(),
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            alarm_topic,
        )

    def _grant_bucket_access(self) -> None:
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadRenderBatches",
                actions=list(READ_ACTIONS),
                resources=[self.bucket.arn_for_objects(f"{SOURCE_PREFIX}*")],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteRejections",
                actions=list(WRITE_ACTIONS),
                resources=[self.bucket.arn_for_objects(f"{REJECT_PREFIX}*")],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReplaceShards",
                actions=list(SHARD_ACTIONS),
                resources=[f"{self._shard_bucket_arn}/{SHARD_PREFIX}*"],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="TellMissingFromForbidden",
                actions=["s3:ListBucket"],
                resources=list(dict.fromkeys([self.bucket.bucket_arn, self._shard_bucket_arn])),
            )
        )
        policy = self.role.node.try_find_child("DefaultPolicy")
        if not isinstance(policy, Construct):  # pragma: no cover - add_to_principal_policy always creates it
            raise RuntimeError(f"{self.role.node.path}: no DefaultPolicy after adding statements")
        stack = cdk.Stack.of(self)
        bucket_arn = f"<{stack.get_logical_id(_cfn(self.bucket))}.Arn>"
        shard_bucket_arn = self._shard_bucket_nag_arn
        for arn, prefix, why in (
            (
                bucket_arn,
                SOURCE_PREFIX,
                "reads any render batch archive users drop under renders/; keys are not known at deploy time",
            ),
            (
                shard_bucket_arn,
                SHARD_PREFIX,
                "writes, checks and replaces the shards of each archive under shards/train/ and "
                "shards/validation/, named after the archive at run time",
            ),
            (
                bucket_arn,
                REJECT_PREFIX,
                "writes one rejection record per rejected batch or design under rejected/, named at run time",
            ),
        ):
            defaults.acknowledge(
                policy,
                rule_id=f"AwsSolutions-IAM5[Resource::{arn}/{prefix}*]",
                reason=f"Object-prefix scope on one bucket of autostop's own: the transformer {why}.",
            )


def _shard_bucket_arn(stack: cdk.Stack, bucket: s3.IBucket) -> tuple[str, str]:
    """The shard bucket's ARN as this stack may use it, and how cdk-nag names it in a finding.

    A bucket of this stack: its GetAtt, ``<LogicalId.Arn>``. A bucket of another stack (the training data
    bucket): an explicit export of that stack with a fixed name, imported here -- the name CDK would give an
    implicit export is only known at synth time, and the cdk-nag acknowledgement needs it now.
    """
    if isinstance(bucket, Construct) and cdk.Stack.of(bucket) is not stack:
        producer = cdk.Stack.of(bucket)
        export_name = f"{producer.stack_name}-ShardBucketArn"
        return producer.export_value(bucket.bucket_arn, name=export_name), export_name
    if isinstance(bucket, Construct):
        return bucket.bucket_arn, f"<{stack.get_logical_id(_cfn(bucket))}.Arn>"
    raise TypeError(f"shard_bucket must be a bucket defined in this CDK app, got {bucket!r}")


def _acknowledge_notifications_handler(scope: Construct, bucket: s3.IBucket) -> None:
    """Acknowledge IAM4 on CDK's stack-wide singleton that writes bucket notification configurations (and
    let cfn-lint skip W3005 on it and on this construct's notification resource).

    ``add_event_notification`` makes CDK add one Lambda-backed custom resource per stack (a bucket's
    notification configuration cannot be set in CloudFormation without a dependency cycle through the queue
    policy). Its role carries AWSLambdaBasicExecutionRole and CDK offers no way to give it another role.
    """
    stack = cdk.Stack.of(scope)
    handler = next(
        (child for child in stack.node.children if child.node.id.startswith(_NOTIFICATIONS_HANDLER_PREFIX)),
        None,
    )
    role = handler.node.try_find_child("Role") if handler is not None else None
    if not isinstance(role, Construct):  # pragma: no cover - add_event_notification always creates it
        raise RuntimeError(f"{stack.node.path}: CDK's bucket notifications handler was not found")
    cfn_resources = [
        construct.node.default_child
        for construct in (handler, bucket.node.try_find_child("Notifications"))
        if construct is not None
    ]
    for cfn_resource in cfn_resources:
        if isinstance(cfn_resource, cdk.CfnResource):
            # cfn-lint W3005 ("dependency already enforced by a GetAtt") on exactly these CDK-made resources:
            # CDK lists the queue (and the handler's role) in DependsOn besides referencing them. Redundant,
            # harmless, and not removable without overriding CDK's own dependency bookkeeping.
            cfn_resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
    defaults.acknowledge(
        role,
        rule_id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
        "AWSLambdaBasicExecutionRole]",
        reason="CDK's own deploy-time custom resource that sets bucket notification configurations; the "
        "managed policy only lets it write its own CloudWatch logs; CDK gives no hook to replace its role.",
    )


def _cfn(construct: Construct) -> cdk.CfnElement:
    child = construct.node.default_child
    if not isinstance(child, cdk.CfnElement):  # pragma: no cover - L2 buckets always have a CfnBucket
        raise TypeError(f"{construct.node.path} has no CloudFormation resource")
    return child


def _validate(
    *,
    memory_size_mb: int,
    timeout: cdk.Duration,
    maximum_concurrency: int,
    batch_size: int,
    max_batching_window: cdk.Duration,
    image_size: int,
    num_views: int,
    max_archive_bytes: int | None,
    validation_fraction: float,
) -> None:
    """Refuse settings Lambda, SQS or the transform core would refuse later (at deploy or at run time)."""
    if not 128 <= memory_size_mb <= 10_240:
        raise ValueError(f"memory_size_mb must be 128..10240 (Lambda's range), got {memory_size_mb}")
    if not 1 <= timeout.to_seconds() <= 900:
        raise ValueError(f"timeout must be 1 s..15 min (Lambda's range), got {timeout.to_seconds()} s")
    if not 2 <= maximum_concurrency <= 1000:
        raise ValueError(
            f"maximum_concurrency must be 2..1000 (SQS event source range), got {maximum_concurrency}"
        )
    if not 1 <= batch_size <= 10_000:
        raise ValueError(f"batch_size must be 1..10000, got {batch_size}")
    if batch_size > 10 and max_batching_window.to_seconds() < 1:
        raise ValueError("batch_size above 10 needs a max_batching_window of at least 1 second (SQS rule)")
    if max_batching_window.to_seconds() > 300:
        raise ValueError(
            f"max_batching_window must be at most 300 s, got {max_batching_window.to_seconds()} s"
        )
    if not 1 <= image_size <= 4096:
        raise ValueError(f"image_size must be 1..4096, got {image_size}")
    if not 1 <= num_views <= 100:
        raise ValueError(f"num_views must be 1..100 (views are numbered 00..99), got {num_views}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    if max_archive_bytes is not None and max_archive_bytes <= 0:
        raise ValueError(f"max_archive_bytes must be positive, got {max_archive_bytes}")
    if 6 * timeout.to_seconds() + max_batching_window.to_seconds() > 43_200:
        raise ValueError("6 x timeout + batching window exceeds SQS's 12-hour visibility timeout limit")
