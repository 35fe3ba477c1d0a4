"""Synthesize CDK apps in-process for tests, exactly as ``cdk synth`` would configure them.

Why load ``cdk.json``: its context carries the feature flags (for example
``@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy``) that change what constructs synthesize; a test app
without them would test a different template than the one deployed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = REPOSITORY_ROOT / "cdk.json"


# What the CDK CLI adds to every `cdk synth` by default: construct paths and asset metadata in templates.
CLI_CONTEXT = {"aws:cdk:enable-path-metadata": True, "aws:cdk:enable-asset-metadata": True}


def cdk_json_context() -> dict[str, Any]:
    """The ``context`` of ``cdk.json`` (feature flags and ``autostop:*`` defaults)."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return context


def new_app(context: Mapping[str, Any] | None = None, *, outdir: Path | None = None) -> cdk.App:
    """A ``cdk.App`` with ``cdk.json``'s context, overridden by ``context``, writing into ``outdir``
    (pass pytest's ``tmp_path``; without one, CDK synthesizes into a temporary folder of its own, never
    into the repository's ``cdk.out``)."""
    merged = {**CLI_CONTEXT, **cdk_json_context(), **(context or {})}
    if outdir is None:
        return cdk.App(context=merged)
    return cdk.App(context=merged, outdir=str(outdir))
