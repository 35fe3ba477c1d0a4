"""Training resources: the training image, its buckets, and the SageMaker execution role that uses them.

- ``image`` (CPU, training/Dockerfile) and ``gpu_image`` (CUDA, training/Dockerfile.gpu): two
  ``DockerImageAsset``s with the repository root as build context, so both install from the root's
  ``constraints.txt`` lock; the root ``.dockerignore`` narrows the context to ``training/`` and the lock.
  Synth never runs Docker: it stages the build context into the cloud assembly and records it in the asset
  manifest; the images are built and pushed by ``cdk deploy`` (cdk-assets) on a machine with Docker, into
  the bootstrap repository. The sweep spec picks one by instance type (ml.g*/ml.p*: GPU).
- ``data_bucket`` (training shards, read), ``model_bucket`` (model.tar.gz, written),
  ``checkpoint_bucket`` (spot checkpoints, synced both ways) and ``debug_output_bucket`` (Debugger tensors
  and TensorBoard events, written and read back by the in-container rule evaluator): all from
  ``defaults.secure_bucket`` (private, TLS-only, encrypted, versioned, access-logged).
- ``role``: what a training job needs and nothing else -- these buckets only, pulling this image's
  repository, writing its logs to ``/aws/sagemaker/TrainingJobs``, SageMaker's metrics in its own
  namespace, and ``events:PutEvents`` of ``autostop.training`` events to the default bus (the in-container
  stop signal). Each statement says why it is scoped the way it is.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import defaults

REPOSITORY_DIRECTORY = Path(__file__).resolve().parent.parent
TRAINING_DIRECTORY = REPOSITORY_DIRECTORY / "training"
CPU_DOCKERFILE = "training/Dockerfile"
GPU_DOCKERFILE = "training/Dockerfile.gpu"
# Namespace SageMaker publishes training metrics (metric definitions, instance metrics) into.
SAGEMAKER_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
# EventBridge `source` of the in-container rule evaluator's events (docs/events.md).
TRAINING_EVENT_SOURCE = "autostop.training"
DEFAULT_CHECKPOINT_EXPIRATION = cdk.Duration.days(30)
DEFAULT_DEBUG_OUTPUT_EXPIRATION = cdk.Duration.days(90)

# Explicit action lists (no wildcards): what SageMaker does with each bucket.
DATA_ACTIONS = ("s3:GetObject",)
MODEL_ACTIONS = ("s3:PutObject", "s3:AbortMultipartUpload")
# Checkpoints: downloaded when a (spot) job restarts, uploaded while it runs, and deleted when the
# training code prunes old ones (SageMaker deletes in S3 what is deleted in /opt/ml/checkpoints).
CHECKPOINT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
# Debugger output: written by the hook, read back by the in-container evaluator (smdebug trials on s3://).
DEBUG_OUTPUT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload")
IMAGE_PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
LOG_STREAM_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
LOG_GROUP_ACTIONS = ("logs:CreateLogGroup", "logs:DescribeLogStreams")


class TrainingResources(Construct):
    """The training image, data/model/checkpoint/debug-output buckets and the SageMaker execution role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        access_logs_bucket: s3.IBucket,
        image_directory: Path = REPOSITORY_DIRECTORY,
        checkpoint_expiration: cdk.Duration = DEFAULT_CHECKPOINT_EXPIRATION,
        debug_output_expiration: cdk.Duration = DEFAULT_DEBUG_OUTPUT_EXPIRATION,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        # SageMaker training instances run x86_64 (ml.m5/ml.g5/ml.p4 ...); the images must match.
        self.image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(image_directory),
            file=CPU_DOCKERFILE,
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        self.gpu_image = ecr_assets.DockerImageAsset(
            self,
            "GpuImage",
            directory=str(image_directory),
            file=GPU_DOCKERFILE,
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        self.data_bucket = defaults.secure_bucket(
            self, "DataBucket", server_access_logs_bucket=access_logs_bucket, removal_policy=removal_policy
        )
        self.model_bucket = defaults.secure_bucket(
            self, "ModelBucket", server_access_logs_bucket=access_logs_bucket, removal_policy=removal_policy
        )
        self.checkpoint_bucket = defaults.secure_bucket(
            self,
            "CheckpointBucket",
            server_access_logs_bucket=access_logs_bucket,
            removal_policy=removal_policy,
            # Checkpoints only matter while a job (or its spot restart) may still resume from them.
            lifecycle_rules=[s3.LifecycleRule(id="expire-checkpoints", expiration=checkpoint_expiration)],
        )
        self.debug_output_bucket = defaults.secure_bucket(
            self,
            "DebugOutputBucket",
            server_access_logs_bucket=access_logs_bucket,
            removal_policy=removal_policy,
            # Debugger tensors are large (~10 MB per saved step of a 1.3M-parameter model) and only
            # analysed in the weeks after a sweep.
            lifecycle_rules=[s3.LifecycleRule(id="expire-debug-output", expiration=debug_output_expiration)],
        )
        stack = cdk.Stack.of(self)
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com").with_conditions(
                # Confused-deputy protection: only SageMaker acting for this account may assume it.
                {"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="SageMaker execution role of autostop training jobs: their buckets, image, logs, "
            "metrics and stop events only",
        )
        self.policy = iam.Policy(self, "ExecutionPolicy", roles=[self.role])
        self._grant_buckets()
        self._grant_image_pull()
        self._grant_logs_metrics_and_events(stack)
        self._acknowledge_wildcards(stack)

    @property
    def image_uri(self) -> str:
        return self.image.image_uri

    @property
    def gpu_image_uri(self) -> str:
        return self.gpu_image.image_uri

    @property
    def buckets(self) -> tuple[s3.Bucket, ...]:
        return (self.data_bucket, self.model_bucket, self.checkpoint_bucket, self.debug_output_bucket)

    def _grant_buckets(self) -> None:
        # ListBucket: channel and checkpoint downloads, and smdebug's trial reader, list keys under a prefix.
        self.policy.add_statements(
            iam.PolicyStatement(
                sid="ListOwnBuckets",
                actions=["s3:ListBucket"],
                resources=[
                    self.data_bucket.bucket_arn,
                    self.checkpoint_bucket.bucket_arn,
                    self.debug_output_bucket.bucket_arn,
                ],
            )
        )
        for sid, bucket, actions in (
            ("ReadTrainingData", self.data_bucket, DATA_ACTIONS),
            ("WriteModelArtifacts", self.model_bucket, MODEL_ACTIONS),
            ("SyncCheckpoints", self.checkpoint_bucket, CHECKPOINT_ACTIONS),
            ("WriteAndReadDebugOutput", self.debug_output_bucket, DEBUG_OUTPUT_ACTIONS),
        ):
            self.policy.add_statements(
                iam.PolicyStatement(sid=sid, actions=list(actions), resources=[bucket.arn_for_objects("*")])
            )

    def _grant_image_pull(self) -> None:
        self.policy.add_statements(
            iam.PolicyStatement(
                sid="PullTrainingImage",
                actions=list(IMAGE_PULL_ACTIONS),
                # Both images are pushed to the bootstrap's one asset repository.
                resources=[self.image.repository.repository_arn],
            ),
            # Service Authorization Reference: ecr:GetAuthorizationToken has no resource type.
            iam.PolicyStatement(
                sid="AuthenticateToEcr", actions=["ecr:GetAuthorizationToken"], resources=["*"]
            ),
        )

    def _grant_logs_metrics_and_events(self, stack: cdk.Stack) -> None:
        log_group_arn = (
            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{TRAINING_LOG_GROUP}"
        )
        self.policy.add_statements(
            iam.PolicyStatement(
                sid="TrainingJobLogGroup", actions=list(LOG_GROUP_ACTIONS), resources=[f"{log_group_arn}:*"]
            ),
            iam.PolicyStatement(
                sid="TrainingJobLogStreams",
                actions=list(LOG_STREAM_ACTIONS),
                resources=[f"{log_group_arn}:log-stream:*"],
            ),
            # cloudwatch:PutMetricData has no resource type; the namespace condition key limits it to the
            # namespace SageMaker publishes training metrics into.
            iam.PolicyStatement(
                sid="PublishTrainingMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": SAGEMAKER_METRICS_NAMESPACE}},
            ),
            # The in-container rule evaluator's stop signal: the default bus of this account and region only,
            # and only events whose source is autostop.training (events:source is PutEvents' condition key).
            iam.PolicyStatement(
                sid="PutStopEvents",
                actions=["events:PutEvents"],
                resources=[f"arn:{stack.partition}:events:{stack.region}:{stack.account}:event-bus/default"],
                conditions={"StringEquals": {"events:source": TRAINING_EVENT_SOURCE}},
            ),
        )

    def _acknowledge_wildcards(self, stack: cdk.Stack) -> None:
        bucket_reason = (
            "A training job reads and writes objects whose keys it chooses at run time (channel files, "
            "model.tar.gz under the job name, checkpoint and tensor files); the wildcard is limited to "
            "objects of this one bucket and the actions are listed explicitly."
        )
        for bucket in self.buckets:
            defaults.acknowledge(
                self.policy,
                rule_id=f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(_cfn(bucket))}.Arn>/*]",
                reason=bucket_reason,
            )
        pseudo = "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:" + TRAINING_LOG_GROUP
        defaults.acknowledge(
            self.policy,
            rule_id=f"AwsSolutions-IAM5[Resource::{pseudo}:*]",
            reason="SageMaker writes every training job's logs into the log group "
            "/aws/sagemaker/TrainingJobs (one stream per job and host, named at run time); the wildcard "
            "covers that group's streams only.",
        )
        defaults.acknowledge(
            self.policy,
            rule_id=f"AwsSolutions-IAM5[Resource::{pseudo}:log-stream:*]",
            reason="Log stream names (<job name>/algo-<n>-<timestamp>) are chosen by SageMaker at run time; "
            "the wildcard is limited to the /aws/sagemaker/TrainingJobs group.",
        )
        defaults.acknowledge(
            self.policy,
            rule_id="AwsSolutions-IAM5[Resource::*]",
            reason="ecr:GetAuthorizationToken and cloudwatch:PutMetricData support no resource-level "
            "permissions; PutMetricData is conditioned on the SageMaker training namespace, and image pulls "
            "are limited to the image repository by a separate statement.",
        )


def _cfn(bucket: s3.Bucket) -> cdk.CfnElement:
    child = bucket.node.default_child
    if not isinstance(child, cdk.CfnElement):
        raise TypeError(f"{bucket.node.path} has no CloudFormation resource")
    return child
