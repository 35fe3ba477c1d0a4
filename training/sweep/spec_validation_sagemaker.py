"""Validating what the SageMaker backend is given: the ``sagemaker`` section and the jobs' ``tags``.

Why a module of its own: these values go to SageMaker's API unchanged (CreateTrainingJob's image, role,
instance type, S3 paths, spot settings, tags), so each is checked against the form and the limits SageMaker
takes, here rather than as one refused job after another. The formats (``IMAGE_URI_PATTERN``, ...) are also
what the SageMaker backend checks the CLI's overrides with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lambdas.stop_training_job import decision
from training.sweep.spec_parsing import Problems, describe, join_path
from training.sweep.spec_schema import (
    HARDWARE_KINDS,
    MAX_USER_TAGS,
    RESERVED_TAG_PREFIXES,
    SageMakerSettings,
    SpotSettings,
    instance_hardware,
)

S3_URI_PATTERN = re.compile(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?")
IMAGE_URI_PATTERN = re.compile(
    r"[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+(:[\w.-]+|@sha256:[0-9a-f]{64})"
)
ROLE_ARN_PATTERN = re.compile(r"arn:aws[a-z\-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}")
INSTANCE_TYPE_PATTERN = re.compile(r"ml\.[a-z0-9]+\.[a-z0-9]+")
REGION_PATTERN = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
SSM_PARAMETER_NAME_PATTERN = re.compile(r"[a-zA-Z0-9_.\-/]{1,2048}")
SAGEMAKER_KEYS = (
    "image_uri",
    "image_hardware",
    "cpu_image_uri",
    "gpu_image_uri",
    "role_arn",
    "region",
    "instance_type",
    "volume_size_gb",
    "max_run_seconds",
    "output_path",
    "debugger_output_path",
    "managed_rules",
    "in_container_rules",
    "put_events",
    "alarm_prefix",
    "poll_seconds",
    "spot",
    "network_isolation",
    "custom_rule_image_uri",
    "scope_parameter",
)


def parse_tags(value: object, problems: Problems) -> dict[str, str]:
    mapping = problems.mapping(value, "tags")
    if mapping is None:
        return {}
    if len(mapping) > MAX_USER_TAGS:
        problems.add("tags", f"at most {MAX_USER_TAGS} tags (SageMaker allows 50; autostop adds its own)")
    tags: dict[str, str] = {}
    for key, item in mapping.items():
        path = join_path("tags", key)
        if not decision.TAG_KEY_PATTERN.fullmatch(key):
            problems.add(path, "tag keys are 1-128 letters, digits, spaces and _.:/=+-@")
        elif key.lower().startswith(RESERVED_TAG_PREFIXES):
            problems.add(path, "keys starting with 'aws:' or 'autostop' are reserved (autostop sets them)")
        elif not isinstance(item, str | int | float) or isinstance(item, bool):
            problems.add(path, f"expected a string, got {describe(item)}")
        elif not decision.TAG_VALUE_PATTERN.fullmatch(str(item)):
            problems.add(path, "tag values are 0-256 letters, digits, spaces and _.:/=+-@")
        else:
            tags[key] = str(item)
    return tags


def _check_image_hardware(settings: Mapping[str, Any], problems: Problems) -> None:
    """Refuse an image built for other hardware than the instance type's: a CPU image on a GPU instance
    trains on the CPU at GPU prices; the GPU image on a CPU instance pulls CUDA libraries it cannot use."""
    instance_type = str(settings.get("instance_type", SageMakerSettings.instance_type))
    needed = instance_hardware(instance_type)
    if settings.get("image_uri"):
        given = str(settings.get("image_hardware", SageMakerSettings.image_hardware))
        if given != needed:
            problems.add(
                "sagemaker.image_uri",
                f"is a {given.upper()} image (image_hardware: {given}) but {instance_type} is a "
                f"{needed.upper()} instance: use the {needed.upper()} image (image_hardware: {needed})",
            )
        return
    if not settings.get("cpu_image_uri") and not settings.get("gpu_image_uri"):
        return  # no image in the spec: --image-uri must give one (checked when launching)
    if not settings.get(f"{needed}_image_uri"):
        other = "gpu" if needed == "cpu" else "cpu"
        problems.add(
            f"sagemaker.{needed}_image_uri",
            f"missing: {instance_type} is a {needed.upper()} instance and only the {other.upper()} image "
            f"({other}_image_uri) is given",
        )


def parse_sagemaker(value: object, problems: Problems) -> SageMakerSettings:
    mapping = problems.mapping(value, "sagemaker")
    if mapping is None:
        return SageMakerSettings()
    problems.known_keys(mapping, "sagemaker", SAGEMAKER_KEYS)
    settings: dict[str, Any] = {}
    patterns = {
        "image_uri": (
            IMAGE_URI_PATTERN,
            "an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>)",
        ),
        "cpu_image_uri": (IMAGE_URI_PATTERN, "an ECR image URI (the training stack's CpuImageUri)"),
        "gpu_image_uri": (IMAGE_URI_PATTERN, "an ECR image URI (the training stack's GpuImageUri)"),
        "custom_rule_image_uri": (
            IMAGE_URI_PATTERN,
            "an ECR image URI (AWS's <account>.dkr.ecr.<region>.amazonaws.com/"
            "sagemaker-debugger-rule-evaluator:latest)",
        ),
        "role_arn": (ROLE_ARN_PATTERN, "an IAM role ARN"),
        "scope_parameter": (SSM_PARAMETER_NAME_PATTERN, "an SSM parameter name (ScopeParameterName)"),
        "region": (REGION_PATTERN, "an AWS region"),
        "instance_type": (INSTANCE_TYPE_PATTERN, "a SageMaker instance type (ml.<family>.<size>)"),
        "output_path": (S3_URI_PATTERN, "an s3:// URI"),
        "debugger_output_path": (S3_URI_PATTERN, "an s3:// URI"),
        "alarm_prefix": (decision.ALARM_PREFIX_PATTERN, "an alarm name prefix (letters, digits, _.:=+@/-)"),
    }
    for key, (pattern, what) in patterns.items():
        if key in mapping:
            text = problems.text(mapping[key], join_path("sagemaker", key), pattern=pattern, what=what)
            if text is not None:
                settings[key] = text
    for key, minimum, maximum in (("volume_size_gb", 1, 16384), ("max_run_seconds", 60, 28 * 24 * 3600)):
        if key in mapping:
            number = problems.integer(
                mapping[key], join_path("sagemaker", key), minimum=minimum, maximum=maximum
            )
            if number is not None:
                settings[key] = number
    for key in ("managed_rules", "in_container_rules", "put_events", "network_isolation"):
        if key in mapping:
            flag = problems.boolean(mapping[key], join_path("sagemaker", key))
            if flag is not None:
                settings[key] = flag
    if "poll_seconds" in mapping:
        poll = problems.number(mapping["poll_seconds"], "sagemaker.poll_seconds")
        if poll is not None and poll <= 0:
            problems.add("sagemaker.poll_seconds", "must be > 0")
        elif poll is not None:
            settings["poll_seconds"] = poll
    if "spot" in mapping and mapping["spot"] is not None:
        spot = _parse_spot(mapping["spot"], settings, problems)
        if spot is not None:
            settings["spot"] = spot
    if "image_hardware" in mapping:
        hardware = mapping["image_hardware"]
        if hardware in HARDWARE_KINDS:
            settings["image_hardware"] = hardware
        else:
            problems.add("sagemaker.image_hardware", f"must be one of {', '.join(HARDWARE_KINDS)}")
    _check_image_hardware(settings, problems)
    if settings.get("in_container_rules") is False and not settings.get("managed_rules"):
        problems.add(
            "sagemaker", "in_container_rules and managed_rules are both off: nothing would find issues"
        )
    return SageMakerSettings(**settings)


def _parse_spot(value: object, settings: Mapping[str, Any], problems: Problems) -> SpotSettings | None:
    """Managed spot training: SageMaker requires MaxWaitTimeInSeconds >= MaxRuntimeInSeconds."""
    spot = problems.mapping(value, "sagemaker.spot")
    if spot is None:
        return None
    problems.known_keys(spot, "sagemaker.spot", ("max_wait_seconds", "checkpoint_s3_uri"))
    wait = problems.integer(spot.get("max_wait_seconds"), "sagemaker.spot.max_wait_seconds", minimum=1)
    uri = problems.text(
        spot.get("checkpoint_s3_uri"),
        "sagemaker.spot.checkpoint_s3_uri",
        pattern=S3_URI_PATTERN,
        what="an s3:// URI",
    )
    max_run = settings.get("max_run_seconds", SageMakerSettings.max_run_seconds)
    if wait is not None and wait < max_run:
        problems.add("sagemaker.spot.max_wait_seconds", f"must be >= max_run_seconds ({max_run}), got {wait}")
        return None
    if wait is not None and uri is not None:
        return SpotSettings(wait, uri)
    return None
