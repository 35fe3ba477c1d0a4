"""``autostop sweep configure``: the deployed stacks' outputs become a spec's sagemaker section.

The outputs file is what ``cdk deploy --outputs-file`` writes: ``{"<stack>": {"<output key>": "<value>"}}``
(AWS CDK CLI reference, ``--outputs-file``). The output keys are checked against the training stack as it
synthesizes, so a renamed output breaks this test rather than a user's first sweep.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import app as cdk_app
from infra import auto_stop, stacks
from tests.support import cdk as cdk_support
from training import cli
from training.sweep import configure
from training.sweep import spec as spec_module

EXAMPLE_SPEC = Path(spec_module.__file__).parent / "specs" / "sagemaker-example.yaml"
ACCOUNT = "210987654321"
REGION = "eu-west-1"
REPOSITORY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/cdk-hnb659fds-container-assets-{ACCOUNT}-{REGION}"
OUTPUTS: dict[str, Any] = {
    "Autostop": {
        "NotificationTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:topic",
        "ScopeParameterName": "CFN-AutoStopScopeParameter-AbC123",
    },
    "AutostopTraining": {
        "CpuImageUri": f"{REPOSITORY}:{'a' * 64}",
        "GpuImageUri": f"{REPOSITORY}:{'b' * 64}",
        "ExecutionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/AutostopTraining-ExecutionRole1234",
        "DataBucketName": "autostoptraining-databucket1234",
        "ModelBucketName": "autostoptraining-modelbucket1234",
        "CheckpointBucketName": "autostoptraining-checkpointbucket1234",
        "DebugOutputBucketName": "autostoptraining-debugoutputbucket1234",
    },
}


def test_the_outputs_fill_the_sagemaker_section_and_the_data_buckets() -> None:
    # GIVEN the example spec and a deployment's outputs
    document = spec_module.read_document(EXAMPLE_SPEC)
    # WHEN configuring
    configured = configure.configure(document, OUTPUTS)
    spec = spec_module.parse_spec(configured)
    # THEN images, role, region and buckets are the deployment's
    settings = spec.sagemaker
    assert (settings.cpu_image_uri, settings.gpu_image_uri) == (
        OUTPUTS["AutostopTraining"]["CpuImageUri"],
        OUTPUTS["AutostopTraining"]["GpuImageUri"],
    )
    assert settings.role_arn == OUTPUTS["AutostopTraining"]["ExecutionRoleArn"]
    assert settings.region == REGION
    assert settings.scope_parameter == "CFN-AutoStopScopeParameter-AbC123"
    assert settings.output_path == "s3://autostoptraining-modelbucket1234/sweeps/"
    assert settings.debugger_output_path == "s3://autostoptraining-debugoutputbucket1234/sweeps/"
    assert settings.spot is not None
    assert settings.spot.checkpoint_s3_uri == "s3://autostoptraining-checkpointbucket1234/sweeps/"
    # AND the ml.g5 instance gets the GPU image
    assert spec_module.image_for_instance(settings) == OUTPUTS["AutostopTraining"]["GpuImageUri"]
    # AND each channel keeps its key, in the data bucket
    assert dict(spec.datasets["renders"].channels) == {
        channel: f"s3://autostoptraining-databucket1234/{location.split('/', 3)[3]}"
        for channel, location in document["datasets"]["renders"].items()  # type: ignore[index]
    }
    # AND the input document is left as it was
    assert spec_module.read_document(EXAMPLE_SPEC) == document


def test_the_command_writes_a_valid_spec_and_refuses_incomplete_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = tmp_path / "cdk-outputs.json"
    outputs.write_text(json.dumps(OUTPUTS), encoding="utf-8")
    out = tmp_path / "sweep.yaml"
    assert cli.main(["sweep", "configure", str(EXAMPLE_SPEC), "--outputs", str(outputs), "-o", str(out)]) == 0
    assert spec_module.load_spec(out).sagemaker.region == REGION
    assert yaml.safe_load(out.read_text(encoding="utf-8"))["name"] == "vision-lr"
    # GIVEN outputs without the training stack (it was not deployed)
    outputs.write_text(json.dumps({"Autostop": OUTPUTS["Autostop"]}), encoding="utf-8")
    capsys.readouterr()
    # THEN one error line naming what is missing
    assert cli.main(["sweep", "configure", str(EXAMPLE_SPEC), "--outputs", str(outputs)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("autostop sweep configure: error: the outputs file has no CpuImageUri")
    assert error.count("\n") == 1
    # AND a missing outputs file is one line too
    assert cli.main(["sweep", "configure", str(EXAMPLE_SPEC), "--outputs", str(tmp_path / "nope.json")]) == 1
    assert capsys.readouterr().err.startswith("autostop sweep configure: error: No such file or directory")


@pytest.mark.slow
def test_the_training_stack_outputs_every_key_configure_reads(tmp_path: Path) -> None:
    # GIVEN the training stack as the app builds it
    app = cdk_support.new_app(outdir=tmp_path)
    stack = stacks.TrainingStack(app, cdk_app.TRAINING_STACK_NAME)
    template = app.synth().get_stack_by_name(stack.stack_name).template
    # THEN every output configure needs is there (the scope parameter is the stop stack's output)
    assert set(configure.OUTPUT_KEYS) - {auto_stop.SCOPE_PARAMETER_OUTPUT} <= set(template["Outputs"])
    assert auto_stop.SCOPE_PARAMETER_OUTPUT in configure.OUTPUT_KEYS
