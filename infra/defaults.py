"""Secure defaults for every construct in this project, in one place.

Why one module: a reviewer (and cdk-nag) should find encryption, TLS-only policies, dead-letter queues,
access logging, log retention and least-privilege execution roles decided once, here, instead of re-decided
(and sometimes forgotten) in each construct. Constructs call these factories; they never build an
``sqs.Queue``, ``sns.Topic``, ``s3.Bucket`` or ``lambda_.Function`` directly.

Every cdk-nag acknowledgement made here goes through :func:`acknowledge`, which refuses an empty or
placeholder reason, and is scoped to the single construct it concerns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# The newest Python runtime aws-cdk-lib 2.275.0 offers (cdk-nag AwsSolutions-L1 checks "latest").
DEFAULT_PYTHON_RUNTIME = lambda_.Runtime.PYTHON_3_14
# Graviton: cheaper per GB-second than x86_64 for the same work; every dependency we ship has aarch64 wheels.
DEFAULT_ARCHITECTURE = lambda_.Architecture.ARM_64

# Four days is SQS's own default; a dead-letter queue keeps messages for the SQS maximum (14 days) so
# someone has two weeks to notice the alarm and redrive or inspect them.
DEFAULT_QUEUE_RETENTION = cdk.Duration.days(4)
DEAD_LETTER_QUEUE_RETENTION = cdk.Duration.days(14)
DEFAULT_MAX_RECEIVE_COUNT = 3

DEFAULT_FUNCTION_TIMEOUT = cdk.Duration.seconds(30)
# How long Lambda keeps retrying an asynchronous invocation (an EventBridge delivery) before giving up and
# sending it to the function's dead-letter queue. An hour covers throttling bursts; older stop requests are
# stale (the job has run on, or ended).
DEFAULT_MAX_EVENT_AGE = cdk.Duration.hours(1)

# Incomplete multipart uploads cost money and are never useful after a week; old object versions are kept a
# month so an accidental overwrite or delete can be undone.
ABORT_INCOMPLETE_MULTIPART_UPLOAD_AFTER = cdk.Duration.days(7)
NONCURRENT_VERSION_EXPIRATION = cdk.Duration.days(30)
SERVER_ACCESS_LOGS_EXPIRATION = cdk.Duration.days(90)

_MINIMUM_REASON_LENGTH = 20

# CloudWatch Logs retention in days -> CDK enum (jsii enums carry names, not the day counts).
LOG_RETENTION_BY_DAYS: Mapping[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def log_retention(days: int) -> logs.RetentionDays:
    """The ``RetentionDays`` member for a day count CloudWatch Logs accepts (ValueError otherwise)."""
    try:
        return LOG_RETENTION_BY_DAYS[days]
    except KeyError:
        raise ValueError(
            f"CloudWatch Logs has no {days}-day retention; use one of {sorted(LOG_RETENTION_BY_DAYS)}"
        ) from None


def acknowledge(scope: Construct, *, rule_id: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on ``scope`` (and its children) with a reason a reviewer can check.

    cdk-nag 3.x reads CDK's native ``Validations.of(scope).acknowledge(...)``. A finding with a detail
    (``AwsSolutions-IAM5[Resource::...]``) must be acknowledged with that exact id: keep ids that specific.
    """
    if not rule_id or rule_id != rule_id.strip():
        raise ValueError(
            f"acknowledge(): rule_id must be a non-empty id without surrounding spaces, got {rule_id!r}"
        )
    if len(reason.strip()) < _MINIMUM_REASON_LENGTH:
        raise ValueError(
            f"acknowledge({rule_id}): the reason must explain why the finding is acceptable "
            f"(at least {_MINIMUM_REASON_LENGTH} characters), got {reason!r}"
        )
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason.strip()))


# --------------------------------------------------------------------------------------------- queues


def dead_letter_queue(
    scope: Construct, construct_id: str, *, retention_period: cdk.Duration = DEAD_LETTER_QUEUE_RETENTION
) -> sqs.Queue:
    """An encrypted (SSE-SQS), TLS-only queue meant to be a dead-letter queue.

    SSE-SQS rather than a KMS key: S3 notifications and EventBridge can deliver to it without key-policy
    grants, and it costs nothing. cdk-nag AwsSolutions-SQS3 ("queue has no DLQ") is satisfied automatically
    when another queue's redrive policy or a Lambda function's DeadLetterConfig points at this queue; if it
    is only an EventBridge target's DLQ, acknowledge SQS3 on it with :func:`acknowledge`.
    """
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=retention_period,
    )


def secure_queue(
    scope: Construct,
    construct_id: str,
    *,
    dead_letter_queue: sqs.IQueue,
    visibility_timeout: cdk.Duration,
    max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
    retention_period: cdk.Duration = DEFAULT_QUEUE_RETENTION,
) -> sqs.Queue:
    """An encrypted (SSE-SQS), TLS-only work queue that moves a message to ``dead_letter_queue`` after
    ``max_receive_count`` failed receives, so a poison message is kept, never retried forever.

    ``visibility_timeout`` is required: for a Lambda consumer it must be at least 6x the function timeout
    (AWS's guidance), which only the caller knows.
    """
    if max_receive_count < 1:
        raise ValueError(
            f"secure_queue({construct_id}): max_receive_count must be >= 1, got {max_receive_count}"
        )
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=visibility_timeout,
        retention_period=retention_period,
        dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letter_queue, max_receive_count=max_receive_count),
    )


@dataclasses.dataclass(frozen=True)
class QueueWithDeadLetterQueue:
    queue: sqs.Queue
    dead_letter_queue: sqs.Queue


def queue_with_dead_letter_queue(
    scope: Construct,
    construct_id: str,
    *,
    visibility_timeout: cdk.Duration,
    max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
) -> QueueWithDeadLetterQueue:
    """A work queue and its own dead-letter queue, as children ``<id>`` and ``<id>DeadLetterQueue``."""
    dead_letters = dead_letter_queue(scope, f"{construct_id}DeadLetterQueue")
    queue = secure_queue(
        scope,
        construct_id,
        dead_letter_queue=dead_letters,
        visibility_timeout=visibility_timeout,
        max_receive_count=max_receive_count,
    )
    return QueueWithDeadLetterQueue(queue=queue, dead_letter_queue=dead_letters)


# --------------------------------------------------------------------------------------------- topic


@dataclasses.dataclass(frozen=True)
class EncryptedTopic:
    topic: sns.Topic
    key: kms.Key


def encrypted_topic(scope: Construct, construct_id: str, *, display_name: str) -> EncryptedTopic:
    """An SNS topic encrypted with its own customer-managed KMS key (rotation on), TLS-only, that CloudWatch
    alarms of this account and region may publish to.

    Why a customer-managed key and not ``alias/aws/sns``: CloudWatch alarms cannot publish to a topic
    encrypted with the AWS-managed key (its key policy cannot grant ``cloudwatch.amazonaws.com``). The key
    policy grants CloudWatch ``kms:Decrypt``/``kms:GenerateDataKey*`` exactly as AWS documents it (AWS
    knowledge center "cloudwatch-configure-alarm-sns"), without conditions: whether CloudWatch's KMS calls
    carry ``aws:SourceArn`` is not documented, and a wrong guess would silently drop every alarm
    notification. The confused-deputy restriction sits on the topic policy instead, where AWS documents it:
    only alarms of this account and region (``aws:SourceAccount``, ``aws:SourceArn``) may publish.
    Principals of this account that publish (a Lambda) get :func:`grant_publish`.
    """
    stack = cdk.Stack.of(scope)
    key = kms.Key(
        scope,
        f"{construct_id}Key",
        description=f"Encrypts the SNS topic '{display_name}' at rest",
        enable_key_rotation=True,
    )
    alarm_source_conditions = {
        "StringEquals": {"aws:SourceAccount": stack.account},
        "ArnLike": {
            "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
        },
    }
    # In a key policy, Resource "*" means "this key" (a key policy cannot name any other resource).
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchAlarmsToUseTheKey",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
        )
    )
    topic = sns.Topic(scope, construct_id, display_name=display_name, master_key=key, enforce_ssl=True)
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowCloudWatchAlarmsToPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions=alarm_source_conditions,
        )
    )
    return EncryptedTopic(topic=topic, key=key)


def grant_publish(topic: EncryptedTopic, grantee: iam.IGrantable) -> None:
    """Let ``grantee`` publish to ``topic``: ``sns:Publish`` on the topic, and ``kms:GenerateDataKey`` +
    ``kms:Decrypt`` on its key only (what SNS needs from a publisher to an encrypted topic).

    Use this instead of ``topic.topic.grant_publish``, whose ``kms:GenerateDataKey*`` wildcard action is a
    cdk-nag AwsSolutions-IAM5 finding for no benefit.
    """
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic.topic_arn])
    )
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[topic.key.key_arn])
    )


# --------------------------------------------------------------------------------------------- alarms


def notify(alarm: cloudwatch.Alarm, topic: sns.ITopic, *, on_ok: bool = True) -> cloudwatch.Alarm:
    """Send ``alarm``'s ALARM (and, by default, OK) transitions to ``topic``."""
    action = cloudwatch_actions.SnsAction(topic)
    alarm.add_alarm_action(action)
    if on_ok:
        alarm.add_ok_action(action)
    return alarm


def queue_depth_alarm(
    scope: Construct, construct_id: str, *, queue: sqs.IQueue, topic: sns.ITopic, description: str
) -> cloudwatch.Alarm:
    """ALARM as soon as one message is visible in ``queue``.

    Meant for dead-letter queues: any message there is a failure someone must look at. Missing data (an
    idle queue) is not breaching.
    """
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_description=description,
        metric=queue.metric_approximate_number_of_messages_visible(
            period=cdk.Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM
        ),
        threshold=0,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    return notify(alarm, topic)


def function_errors_alarm(
    scope: Construct, construct_id: str, *, function: lambda_.IFunction, topic: sns.ITopic, description: str
) -> cloudwatch.Alarm:
    """ALARM when ``function`` reports at least one error (Sum of ``Errors`` over 5 minutes >= 1)."""
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_description=description,
        metric=function.metric_errors(period=cdk.Duration.minutes(5), statistic=cloudwatch.Stats.SUM),
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    return notify(alarm, topic)


# --------------------------------------------------------------------------------------------- buckets


def _default_lifecycle_rules() -> list[s3.LifecycleRule]:
    return [
        s3.LifecycleRule(
            id="abort-incomplete-multipart-uploads",
            abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_MULTIPART_UPLOAD_AFTER,
        ),
        s3.LifecycleRule(
            id="expire-noncurrent-versions", noncurrent_version_expiration=NONCURRENT_VERSION_EXPIRATION
        ),
    ]


def server_access_logs_bucket(
    scope: Construct,
    construct_id: str,
    *,
    expiration: cdk.Duration = SERVER_ACCESS_LOGS_EXPIRATION,
    removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
) -> s3.Bucket:
    """The destination bucket for S3 server access logs of the project's other buckets.

    SSE-S3 (not KMS) because S3 log delivery only writes to SSE-S3 buckets. Log delivery is granted by a
    bucket policy (feature flag ``@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy``) when a source bucket
    names this one. It cannot usefully log into itself, hence the single acknowledgement of AwsSolutions-S1.
    """
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        versioned=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=removal_policy,
        lifecycle_rules=[
            *_default_lifecycle_rules(),
            s3.LifecycleRule(id="expire-access-logs", expiration=expiration),
        ],
    )
    acknowledge(
        bucket,
        rule_id="AwsSolutions-S1",
        reason="This bucket is the server access log destination; logging it into itself would log every "
        "log delivery (a feedback loop), and another log bucket would only move the same finding there.",
    )
    return bucket


def secure_bucket(
    scope: Construct,
    construct_id: str,
    *,
    server_access_logs_bucket: s3.IBucket | None = None,
    server_access_logs_prefix: str | None = None,
    no_access_logs_reason: str | None = None,
    encryption_key: kms.IKey | None = None,
    lifecycle_rules: Sequence[s3.LifecycleRule] = (),
    removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
    event_bridge_enabled: bool = False,
) -> s3.Bucket:
    """A private bucket: all public access blocked, ACLs disabled, TLS 1.2+ only, encrypted (SSE-S3, or
    SSE-KMS with ``encryption_key``), versioned, with lifecycle rules that abort incomplete multipart
    uploads and expire old versions (``lifecycle_rules`` are added to those).

    Access logging is not optional by accident: pass ``server_access_logs_bucket`` (see
    :func:`server_access_logs_bucket`) or, exceptionally, ``no_access_logs_reason``, which becomes the
    cdk-nag AwsSolutions-S1 acknowledgement on this bucket only.
    """
    if (server_access_logs_bucket is None) == (no_access_logs_reason is None):
        raise ValueError(
            f"secure_bucket({construct_id}): pass exactly one of server_access_logs_bucket (the default) or "
            "no_access_logs_reason (why this bucket needs no server access logs)"
        )
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.KMS if encryption_key is not None else s3.BucketEncryption.S3_MANAGED,
        encryption_key=encryption_key,
        bucket_key_enabled=True if encryption_key is not None else None,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        versioned=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=server_access_logs_bucket,
        server_access_logs_prefix=(
            server_access_logs_prefix
            if server_access_logs_prefix is not None or server_access_logs_bucket is None
            else f"{construct_id}/"
        ),
        removal_policy=removal_policy,
        event_bridge_enabled=event_bridge_enabled or None,
        lifecycle_rules=[*_default_lifecycle_rules(), *lifecycle_rules],
    )
    if no_access_logs_reason is not None:
        acknowledge(bucket, rule_id="AwsSolutions-S1", reason=no_access_logs_reason)
    return bucket


# --------------------------------------------------------------------------------------------- functions


@dataclasses.dataclass(frozen=True)
class SecureFunction:
    """A Lambda function with the role and log group made for it alone (grant on ``role``)."""

    function: lambda_.Function
    role: iam.Role
    log_group: logs.LogGroup


def python_function(
    scope: Construct,
    construct_id: str,
    *,
    code: lambda_.Code,
    handler: str,
    description: str,
    environment: Mapping[str, str],
    reserved_concurrent_executions: int,
    log_retention: logs.RetentionDays,
    timeout: cdk.Duration = DEFAULT_FUNCTION_TIMEOUT,
    memory_size: int = 256,
    runtime: lambda_.Runtime = DEFAULT_PYTHON_RUNTIME,
    architecture: lambda_.Architecture = DEFAULT_ARCHITECTURE,
    dead_letter_queue: sqs.IQueue | None = None,
    retry_attempts: int = 2,
    max_event_age: cdk.Duration = DEFAULT_MAX_EVENT_AGE,
    tracing: bool = False,
    log_removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
) -> SecureFunction:
    """A Python Lambda function with least-privilege defaults.

    - Its own execution role, with no managed policy (no AWSLambdaBasicExecutionRole, whose log
      permissions cover every log group): one inline policy allows ``logs:CreateLogStream`` and
      ``logs:PutLogEvents`` on this function's own log group only. Grant everything else on ``role``.
    - Its own log group with ``log_retention`` (retained on stack deletion by default: logs are evidence).
    - Newest Python runtime, arm64, ``reserved_concurrent_executions`` required (a runaway event source
      must not starve the account's other functions), asynchronous invocations retried ``retry_attempts``
      times within ``max_event_age``, then sent to ``dead_letter_queue`` when given (the role is granted
      ``sqs:SendMessage`` on that queue only).
    - ``tracing`` (X-Ray active tracing) is off by default: X-Ray's ``PutTraceSegments`` and
      ``PutTelemetryRecords`` accept no resource but ``*``, and this project keeps ``Resource: "*"`` out of
      execution roles. Turning it on adds that statement and acknowledges AwsSolutions-IAM5[Resource::*]
      on the one policy that holds the X-Ray statement.
    """
    if reserved_concurrent_executions < 1:
        raise ValueError(
            f"python_function({construct_id}): reserved_concurrent_executions must be >= 1 "
            f"(0 would disable the function), got {reserved_concurrent_executions}"
        )
    if not 0 <= retry_attempts <= 2:
        raise ValueError(
            f"python_function({construct_id}): retry_attempts must be 0..2, got {retry_attempts}"
        )
    log_group = logs.LogGroup(
        scope, f"{construct_id}LogGroup", retention=log_retention, removal_policy=log_removal_policy
    )
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"Execution role of the Lambda function {construct_id}: {description}"[:1000],
        inline_policies={
            "WriteOwnLogGroup": iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                        resources=[log_group.log_group_arn],
                    )
                ]
            )
        },
    )
    function = lambda_.Function(
        scope,
        construct_id,
        code=code,
        handler=handler,
        runtime=runtime,
        architecture=architecture,
        description=description,
        environment=dict(environment),
        role=role,
        log_group=log_group,
        timeout=timeout,
        memory_size=memory_size,
        reserved_concurrent_executions=reserved_concurrent_executions,
        dead_letter_queue=dead_letter_queue,
        retry_attempts=retry_attempts,
        max_event_age=max_event_age,
        tracing=lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED,
    )
    # With @aws-cdk/aws-lambda:createNewPoliciesWithAddToRolePolicy, statements the Function adds itself
    # (sqs:SendMessage on its dead-letter queue) land in separate AWS::IAM::Policy resources the function
    # does not depend on; Lambda checks that permission when the function is created, so wait for them.
    for child in _policies_added_by(function):
        function.node.add_dependency(child)
    cfn_function = function.node.default_child
    if isinstance(cfn_function, cdk.CfnResource):
        # cfn-lint W3005 ("dependency already enforced by a GetAtt") on exactly this resource: CDK always
        # lists the execution role in DependsOn although Role: GetAtt already orders it. Redundant, harmless,
        # and not removable without overriding CDK's own dependency bookkeeping.
        cfn_function.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
    if tracing:
        _acknowledge_tracing_policy(function)
    return SecureFunction(function=function, role=role, log_group=log_group)


def _policies_added_by(function: lambda_.Function) -> list[iam.Policy]:
    return [child for child in function.node.children if isinstance(child, iam.Policy)]


def _acknowledge_tracing_policy(function: lambda_.Function) -> None:
    """Acknowledge the X-Ray ``Resource: "*"`` on the one policy holding the X-Ray statement only."""
    stack = cdk.Stack.of(function)
    for policy in _policies_added_by(function):
        statements = stack.resolve(policy.document.to_json()).get("Statement", [])
        actions = {action for statement in statements for action in _as_list(statement.get("Action"))}
        if "xray:PutTraceSegments" in actions:
            acknowledge(
                policy,
                rule_id="AwsSolutions-IAM5[Resource::*]",
                reason="X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions "
                "(Service Authorization Reference: no resource types), so active tracing needs Resource '*'.",
            )
            return
    raise RuntimeError(f"{function.node.path}: tracing is on but no policy holds the X-Ray statement")


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def nag_resource_finding(stack: cdk.Stack, arn: str) -> str:
    """The id cdk-nag gives an IAM5 wildcard-resource finding on ``arn``: pseudo-parameter tokens are
    rendered as ``<AWS::Partition>``, ``<AWS::Region>``, ``<AWS::AccountId>`` (concrete values stay)."""
    rendered = arn
    for value, name in (
        (stack.partition, "<AWS::Partition>"),
        (stack.region, "<AWS::Region>"),
        (stack.account, "<AWS::AccountId>"),
    ):
        if cdk.Token.is_unresolved(value):
            rendered = rendered.replace(value, name)
    return f"AwsSolutions-IAM5[Resource::{rendered}]"
