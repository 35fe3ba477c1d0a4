"""TrainingResources: image asset (synth without Docker), secure buckets, least-privilege SageMaker role.

A test stack holds the construct and an access-log bucket, with cdk-nag's AwsSolutionsChecks registered as
app.py registers it. This machine has no Docker: the synth below succeeding is the proof that
DockerImageAsset only stages the build context at synth time (the build happens at deploy).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import cdk_nag
import pytest
from aws_cdk import assertions
from cfnlint import api as cfnlint_api

from infra import defaults
from infra import training_resources as training_module
from tests.infra.test_nag_and_lint import violations
from tests.support import cdk as cdk_support

STACK = "TrainingTest"
CONSTRUCT = f"{STACK}/Training"
POLICY = f"{CONSTRUCT}/ExecutionPolicy/Resource"


def synthesize(outdir: Path) -> tuple[cdk.Stack, dict[str, Any], Path]:
    app = cdk_support.new_app(outdir=outdir)
    stack = cdk.Stack(app, STACK)
    access_logs = defaults.server_access_logs_bucket(stack, "AccessLogs")
    training_module.TrainingResources(stack, "Training", access_logs_bucket=access_logs)
    cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
    assembly = app.synth()
    return stack, assembly.get_stack_by_name(STACK).template, Path(assembly.directory)


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[cdk.Stack, dict[str, Any], Path]:
    return synthesize(tmp_path_factory.mktemp("training-cdk-out"))


def _resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] == resource_type}


def _statements(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (policy,) = _resources(template, "AWS::IAM::Policy").values()
    return {statement["Sid"]: statement for statement in policy["Properties"]["PolicyDocument"]["Statement"]}


def _logical_id(template: dict[str, Any], path_fragment: str, resource_type: str) -> str:
    (found,) = [
        key
        for key, value in _resources(template, resource_type).items()
        if path_fragment in value.get("Metadata", {}).get("aws:cdk:path", "")
    ]
    return found


def test_synth_has_no_unacknowledged_nag_findings_and_lints_clean(
    synthesized: tuple[cdk.Stack, dict[str, Any], Path],
) -> None:
    _, template, outdir = synthesized
    assert violations(outdir) == {}
    assert [str(match) for match in cfnlint_api.lint(json.dumps(template))] == []


def test_every_acknowledgement_covers_a_real_finding(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # GIVEN the construct's own acknowledgements switched off (the shared defaults keep theirs)
    original = defaults.acknowledge
    skipped: list[str] = []

    def acknowledge(scope: Any, *, rule_id: str, reason: str) -> None:
        if scope.node.path.startswith(CONSTRUCT + "/ExecutionPolicy"):
            skipped.append(rule_id)
            return
        original(scope, rule_id=rule_id, reason=reason)

    monkeypatch.setattr(defaults, "acknowledge", acknowledge)

    # WHEN synthesized  THEN it fails with exactly those findings, all on the execution policy
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        synthesize(tmp_path)
    found = violations(tmp_path)
    assert sorted(found) == sorted(skipped)
    assert all(paths == [POLICY] for paths in found.values())
    assert len(skipped) == 7  # 4 bucket object wildcards, 2 log wildcards, 1 Resource "*"


def test_the_execution_role_is_assumable_by_sagemaker_of_this_account_only(
    synthesized: tuple[cdk.Stack, dict[str, Any], Path],
) -> None:
    _, template, _ = synthesized
    (role,) = _resources(template, "AWS::IAM::Role").values()
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
        }
    ]
    assert "ManagedPolicyArns" not in role["Properties"]
    assert "Policies" not in role["Properties"]


def test_the_role_reaches_its_own_buckets_only_with_explicit_actions(
    synthesized: tuple[cdk.Stack, dict[str, Any], Path],
) -> None:
    _, template, _ = synthesized
    statements = _statements(template)
    buckets = {
        name: _logical_id(template, f"Training/{name}/", "AWS::S3::Bucket")
        for name in ("DataBucket", "ModelBucket", "CheckpointBucket", "DebugOutputBucket")
    }

    def objects(bucket: str) -> dict[str, Any]:
        return {"Fn::Join": ["", [{"Fn::GetAtt": [buckets[bucket], "Arn"]}, "/*"]]}

    assert statements["ListOwnBuckets"]["Action"] == "s3:ListBucket"
    listed = sorted(resource["Fn::GetAtt"][0] for resource in statements["ListOwnBuckets"]["Resource"])
    assert listed == sorted(buckets[name] for name in ("DataBucket", "CheckpointBucket", "DebugOutputBucket"))
    assert statements["ReadTrainingData"] == {
        "Action": "s3:GetObject",
        "Effect": "Allow",
        "Resource": objects("DataBucket"),
        "Sid": "ReadTrainingData",
    }
    # (CDK sorts the actions of a statement)
    assert statements["WriteModelArtifacts"]["Action"] == ["s3:AbortMultipartUpload", "s3:PutObject"]
    assert statements["WriteModelArtifacts"]["Resource"] == objects("ModelBucket")
    assert statements["SyncCheckpoints"]["Action"] == [
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
        "s3:GetObject",
        "s3:PutObject",
    ]
    assert statements["SyncCheckpoints"]["Resource"] == objects("CheckpointBucket")
    assert statements["WriteAndReadDebugOutput"]["Action"] == [
        "s3:AbortMultipartUpload",
        "s3:GetObject",
        "s3:PutObject",
    ]
    assert statements["WriteAndReadDebugOutput"]["Resource"] == objects("DebugOutputBucket")
    s3_actions = [
        action
        for statement in statements.values()
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        if action.startswith("s3:")
    ]
    assert not [action for action in s3_actions if "*" in action]
    # The access-log bucket is not the job's: no statement names it.
    access_logs = _logical_id(template, "AccessLogs", "AWS::S3::Bucket")
    assert access_logs not in json.dumps(statements)


def test_image_pull_logs_metrics_and_events_are_scoped(
    synthesized: tuple[cdk.Stack, dict[str, Any], Path],
) -> None:
    _, template, _ = synthesized
    statements = _statements(template)
    pull = statements["PullTrainingImage"]
    assert pull["Action"] == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert "container-assets" in json.dumps(pull["Resource"])
    assert "repository/" in json.dumps(pull["Resource"])
    assert statements["AuthenticateToEcr"]["Action"] == "ecr:GetAuthorizationToken"
    assert statements["PublishTrainingMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
    }
    assert "/aws/sagemaker/TrainingJobs:log-stream:*" in json.dumps(
        statements["TrainingJobLogStreams"]["Resource"]
    )
    events = statements["PutStopEvents"]
    assert events["Action"] == "events:PutEvents"
    assert events["Condition"] == {"StringEquals": {"events:source": "autostop.training"}}
    assert events["Resource"] == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":events:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":event-bus/default",
            ],
        ]
    }
    # Resource "*" only where the service has no resource type, and never for anything else.
    star = sorted(sid for sid, statement in statements.items() if statement["Resource"] == "*")
    assert star == ["AuthenticateToEcr", "PublishTrainingMetrics"]
    assert not [
        sid for sid, statement in statements.items() if "sagemaker:" in json.dumps(statement["Action"])
    ]


def test_buckets_use_the_secure_defaults(synthesized: tuple[cdk.Stack, dict[str, Any], Path]) -> None:
    stack, template, _ = synthesized
    assertions_template = assertions.Template.from_json(template)
    access_logs = _logical_id(template, "AccessLogs", "AWS::S3::Bucket")
    for name in ("DataBucket", "ModelBucket", "CheckpointBucket", "DebugOutputBucket"):
        logical_id = _logical_id(template, f"Training/{name}/", "AWS::S3::Bucket")
        properties = template["Resources"][logical_id]["Properties"]
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ] == {"SSEAlgorithm": "AES256"}
        assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
        assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
        assert properties["LoggingConfiguration"] == {
            "DestinationBucketName": {"Ref": access_logs},
            "LogFilePrefix": f"{name}/",
        }
        assert template["Resources"][logical_id]["DeletionPolicy"] == "Retain"
        # TLS only, TLS 1.2 or newer (the bucket policy's deny statements)
        assertions_template.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": {"Ref": logical_id},
                "PolicyDocument": {
                    "Statement": assertions.Match.array_with(
                        [
                            assertions.Match.object_like(
                                {"Condition": {"Bool": {"aws:SecureTransport": "false"}}, "Effect": "Deny"}
                            ),
                            assertions.Match.object_like(
                                {"Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}}, "Effect": "Deny"}
                            ),
                        ]
                    )
                },
            },
        )
    rules = {
        name: {
            rule["Id"]: rule
            for rule in template["Resources"][_logical_id(template, f"Training/{name}/", "AWS::S3::Bucket")][
                "Properties"
            ]["LifecycleConfiguration"]["Rules"]
        }
        for name in ("CheckpointBucket", "DebugOutputBucket")
    }
    assert rules["CheckpointBucket"]["expire-checkpoints"]["ExpirationInDays"] == 30
    assert rules["DebugOutputBucket"]["expire-debug-output"]["ExpirationInDays"] == 90
    assert stack.stack_name == STACK


def test_the_image_assets_stage_the_training_code_and_the_lock_without_docker(
    synthesized: tuple[cdk.Stack, dict[str, Any], Path],
) -> None:
    # GIVEN the cloud assembly's asset manifest
    _, _, outdir = synthesized
    manifest = json.loads((outdir / f"{STACK}.assets.json").read_text())
    assets = {asset["source"]["dockerFile"]: asset for asset in manifest["dockerImages"].values()}

    # THEN two images are described, not built: CPU and GPU, for the x86_64 training hosts
    assert set(assets) == {"training/Dockerfile", "training/Dockerfile.gpu"}
    repositories = set()
    for dockerfile, asset in assets.items():
        assert asset["source"]["platform"] == "linux/amd64"
        # AND each stages the root context narrowed by .dockerignore: the training code and the lock only
        staged = outdir / asset["source"]["directory"]
        for required in (dockerfile, "constraints.txt", "training/requirements.txt", "training/bin/train"):
            assert (staged / required).is_file(), required
        staged_names = sorted(path.name for path in staged.iterdir())
        assert staged_names == [".dockerignore", "constraints.txt", "training"]
        assert not list(staged.rglob("__pycache__"))
        (destination,) = asset["destinations"].values()
        assert destination["repositoryName"].startswith("cdk-hnb659fds-container-assets-")
        repositories.add(destination["repositoryName"])
    # AND both go to the one bootstrap repository the role may pull from
    assert len(repositories) == 1
