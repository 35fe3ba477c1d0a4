"""``LatentClusterRule`` as a SageMaker custom rule: its source, uploaded once per sweep, and its arguments.

The source is the standalone ``training/analysis/clustering.py``, uploaded under
``<output_path>/autostop-rules/<sha>/`` (a content hash, so a changed rule never overwrites one a running job
reads). It runs on AWS's custom rule evaluator image, only when ``managed_rules`` is on and
``sagemaker.custom_rule_image_uri`` names that image.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from training.sweep import spec as spec_module
from training.sweep.sagemaker.settings import CUSTOM_RULES, LaunchSettings

CUSTOM_RULE_FOLDER = "autostop-rules"


def custom_rule_source() -> tuple[str, bytes]:
    """The custom rule's file name and contents (the standalone clustering module)."""
    from training.analysis import clustering

    with open(clustering.CUSTOM_RULE_SOURCE, "rb") as source:
        return "latent_cluster_rule.py", source.read()


def custom_rule_source_uri(launch: LaunchSettings) -> str:
    """Where the sweep keeps the custom rule's source: ``<output_path>/autostop-rules/<sha[:16]>/<file>``."""
    name, body = custom_rule_source()
    digest = hashlib.sha256(body).hexdigest()[:16]
    return f"{(launch.settings.output_path or '').rstrip('/')}/{CUSTOM_RULE_FOLDER}/{digest}/{name}"


def uses_custom_rules(spec: spec_module.SweepSpec, launch: LaunchSettings) -> bool:
    return bool(
        launch.settings.managed_rules
        and launch.settings.custom_rule_image_uri
        and any(rule.rule_to_invoke in CUSTOM_RULES for rule in spec.rules)
    )


def custom_rule_arguments(name: str, parameters: Mapping[str, str], launch: LaunchSettings) -> dict[str, Any]:
    """``Rule.custom`` keyword arguments of a LatentClusterRule (its parameters checked before any launch)."""
    from training.analysis import clustering

    return clustering.custom_rule_arguments(
        name=name,
        image_uri=str(launch.settings.custom_rule_image_uri),
        source=custom_rule_source_uri(launch),
        rule_parameters=dict(parameters),
    )


def upload_custom_rule_source(session: Any, launch: LaunchSettings) -> str:
    """Put the custom rule's source where the jobs' rule configurations point (once per sweep)."""
    uri = custom_rule_source_uri(launch)
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    _, body = custom_rule_source()
    session.upload_string_as_file_body(body.decode("utf-8"), bucket, key)
    return uri
