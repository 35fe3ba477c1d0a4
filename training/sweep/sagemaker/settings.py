"""What a SageMaker launch needs: the spec's ``sagemaker`` section with the CLI's overrides, checked.

Why a resolve step apart from spec validation: the image, role and region may come from the command line or
the environment, so only here is it known whether everything a ``CreateTrainingJob`` needs is present.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from training.sweep import spec as spec_module

TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Stopped"})
SWEEP_TAG_KEY = "autostop:sweep"
# Rules that run as SageMaker custom rules (Rule.custom) when managed rules are on; the rest of a spec's
# rules that are not managed built-ins run in the container only.
CUSTOM_RULES = frozenset({"LatentClusterRule"})


class LaunchError(ValueError):
    """The sweep cannot be launched on SageMaker as configured; the message says what is missing."""


@dataclasses.dataclass(frozen=True)
class LaunchSettings:
    """The spec's ``sagemaker`` section with the CLI's overrides applied and the required values checked."""

    image_uri: str
    role_arn: str
    region: str
    settings: spec_module.SageMakerSettings

    @classmethod
    def resolve(
        cls,
        spec: spec_module.SweepSpec,
        *,
        image_uri: str | None = None,
        role_arn: str | None = None,
        region: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> LaunchSettings:
        environment = os.environ if environ is None else environ
        settings = spec.sagemaker
        image = image_uri or spec_module.image_for_instance(settings)
        role = role_arn or settings.role_arn
        chosen_region = (
            region
            or settings.region
            or environment.get("AWS_REGION")
            or environment.get("AWS_DEFAULT_REGION")
        )
        problems = []
        if not image or not spec_module.IMAGE_URI_PATTERN.fullmatch(image):
            problems.append(
                "the training image URI (sagemaker.cpu_image_uri / gpu_image_uri, sagemaker.image_uri or "
                "--image-uri) is missing or not an ECR URI"
            )
        if not role or not spec_module.ROLE_ARN_PATTERN.fullmatch(role):
            problems.append(
                "the execution role (sagemaker.role_arn or --role-arn) is missing or not a role ARN"
            )
        if not chosen_region or not spec_module.REGION_PATTERN.fullmatch(chosen_region):
            problems.append("the region (sagemaker.region, --region or AWS_REGION) is missing")
        if not settings.output_path:
            problems.append("sagemaker.output_path (s3:// where model artifacts go) is missing")
        custom = sorted({rule.name for rule in spec.rules if rule.rule_to_invoke in CUSTOM_RULES})
        if custom and not settings.in_container_rules and not settings.custom_rule_image_uri:
            problems.append(
                f"rule(s) {', '.join(custom)} would run nowhere: in_container_rules is off and "
                "sagemaker.custom_rule_image_uri (AWS's custom rule evaluator image) is not set"
            )
        if spec.cross_job is not None and (not settings.put_events or settings.network_isolation):
            # Each job reports its objective at a rung with events:PutEvents (the stop Lambda compares them):
            # without it the comparison would silently stop nothing.
            problems.append(
                "cross_job needs every job to send its rung reports with events:PutEvents: set "
                "sagemaker.put_events on and network_isolation off (or remove the cross_job section)"
            )
        for job in spec.jobs():
            local = [
                channel
                for channel, location in job.dataset.channels.items()
                if not location.startswith("s3://")
            ]
            if local:
                problems.append(
                    f"dataset {job.dataset.name!r}: channel(s) {', '.join(local)} are local folders; "
                    "SageMaker reads s3:// prefixes"
                )
                break
        if problems:
            raise LaunchError("cannot launch on SageMaker: " + "; ".join(problems))
        return cls(image_uri=str(image), role_arn=str(role), region=str(chosen_region), settings=settings)
