"""``autostop sweep configure``: a spec's ``sagemaker`` section (and data buckets) from the deployed stacks.

Why: the image URIs, the execution role and the bucket names are made by ``cdk deploy`` (asset hashes,
generated bucket names), so no example spec can know them. ``cdk deploy --outputs-file cdk-outputs.json``
writes every stack's outputs as ``{"<stack>": {"<output>": "<value>"}}``; this module reads the training
stack's outputs from it and fills them into a spec document. Pure: no AWS call, no file access.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

OUTPUT_KEYS = (
    "CpuImageUri",
    "GpuImageUri",
    "ExecutionRoleArn",
    "DataBucketName",
    "ModelBucketName",
    "CheckpointBucketName",
    "DebugOutputBucketName",
    "ScopeParameterName",  # of the stop stack: the scope a launch is checked against
)
SWEEPS_PREFIX = "sweeps/"
ECR_REGION_PATTERN = re.compile(r"[0-9]{12}\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com")
S3_LOCATION_PATTERN = re.compile(r"s3://[^/]+(?P<key>/.*)?")


class ConfigureError(ValueError):
    """The outputs file lacks what the spec needs; the message names the missing outputs."""


def training_outputs(outputs: object) -> dict[str, str]:
    """The training stack's outputs, found by name in any stack of a ``--outputs-file`` document."""
    if not isinstance(outputs, Mapping):
        raise ConfigureError("the outputs file is not a JSON object of stacks (cdk deploy --outputs-file)")
    found: dict[str, str] = {}
    for stack_outputs in outputs.values():
        if isinstance(stack_outputs, Mapping):
            for key in OUTPUT_KEYS:
                if isinstance(stack_outputs.get(key), str):
                    found[key] = str(stack_outputs[key])
    missing = [key for key in OUTPUT_KEYS if key not in found]
    if missing:
        raise ConfigureError(
            f"the outputs file has no {', '.join(missing)}: deploy the training stack with "
            "`npx cdk deploy --all --outputs-file cdk-outputs.json` first"
        )
    return found


def configure(document: object, outputs: object) -> dict[str, Any]:
    """A copy of the spec document with the deployed images, role, region and buckets filled in.

    ``sagemaker``: ``cpu_image_uri``, ``gpu_image_uri`` (a single ``image_uri`` is dropped: it would win),
    ``role_arn``, ``region`` (the images' region), ``scope_parameter`` (the stop stack's published scope),
    ``output_path``, ``debugger_output_path`` and, when spot training is on, ``spot.checkpoint_s3_uri``,
    each under ``sweeps/`` of its bucket. ``datasets``: every
    ``s3://`` channel moves to the data bucket, keeping its key (``s3://<data bucket>/shards/train/``).
    """
    if not isinstance(document, Mapping):
        raise ConfigureError("the spec is not a mapping")
    values = training_outputs(outputs)
    match = ECR_REGION_PATTERN.match(values["CpuImageUri"])
    if match is None:
        raise ConfigureError(f"CpuImageUri {values['CpuImageUri']!r} is not an ECR image URI")
    result: dict[str, Any] = copy.deepcopy(dict(document))
    section = dict(result.get("sagemaker") or {})
    section.pop("image_uri", None)
    section.pop("image_hardware", None)
    section.update(
        {
            "cpu_image_uri": values["CpuImageUri"],
            "gpu_image_uri": values["GpuImageUri"],
            "role_arn": values["ExecutionRoleArn"],
            "region": match["region"],
            "output_path": f"s3://{values['ModelBucketName']}/{SWEEPS_PREFIX}",
            "debugger_output_path": f"s3://{values['DebugOutputBucketName']}/{SWEEPS_PREFIX}",
            "scope_parameter": values["ScopeParameterName"],
        }
    )
    if isinstance(section.get("spot"), Mapping):
        section["spot"] = {
            **section["spot"],
            "checkpoint_s3_uri": f"s3://{values['CheckpointBucketName']}/{SWEEPS_PREFIX}",
        }
    result["sagemaker"] = section
    datasets = result.get("datasets")
    if isinstance(datasets, Mapping):
        result["datasets"] = {
            name: (
                {
                    channel: _in_bucket(location, values["DataBucketName"])
                    for channel, location in channels.items()
                }
                if isinstance(channels, Mapping)
                else channels
            )
            for name, channels in datasets.items()
        }
    return result


def _in_bucket(location: object, bucket: str) -> object:
    if not isinstance(location, str):
        return location
    match = S3_LOCATION_PATTERN.fullmatch(location)
    if match is None:
        return location  # a local folder stays (the launcher refuses it with its own message)
    return f"s3://{bucket}{match['key'] or '/'}"
