"""Synthesized autostop apps shared by the infra tests (one in-process synth per configuration).

Why cache: a synth with cdk-nag costs about a second; many tests read the same template. The cache key is
the context override, so every variation is synthesized once per test session, through app.py's own
``build_app`` (cdk-nag included), exactly as ``cdk synth`` runs it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions

from tests.support import cdk as cdk_support

APP_FILE = cdk_support.REPOSITORY_ROOT / "app.py"


def load_app_module() -> ModuleType:
    """Import the repository's app.py (not a package module) under a private name."""
    name = "autostop_cdk_app"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, APP_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclasses.dataclass(frozen=True)
class Synthesized:
    stack: cdk.Stack
    template: assertions.Template
    template_json: dict[str, Any]
    outdir: Path

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template_json["Resources"].items()
            if resource["Type"] == resource_type
        }

    def only(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found.items()))


_CACHE: dict[str, Synthesized] = {}


def synthesize(outdir_root: Path, context: dict[str, Any] | None = None) -> Synthesized:
    """Synthesize app.py's app with ``cdk.json`` context + ``context`` overrides (cached per overrides)
    into a fresh folder under ``outdir_root``."""
    key = json.dumps(context or {}, sort_keys=True)
    if key not in _CACHE:
        app = cdk_support.new_app(context, outdir=outdir_root / f"synth-{len(_CACHE)}")
        stack = load_app_module().build_app(app)
        assembly = app.synth()
        template_json = assembly.get_stack_by_name(stack.stack_name).template
        _CACHE[key] = Synthesized(
            stack=stack,
            template=assertions.Template.from_json(template_json),
            template_json=template_json,
            outdir=Path(assembly.directory),
        )
    return _CACHE[key]


@pytest.fixture(scope="session")
def synth_outdir_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cdk-out")


@pytest.fixture(scope="session")
def synth(synth_outdir_root: Path) -> Callable[..., Synthesized]:
    """``synth(context_overrides)`` -> the synthesized app (cached per overrides)."""
    return functools.partial(synthesize, synth_outdir_root)


@pytest.fixture(scope="session")
def default_app(synth_outdir_root: Path) -> Synthesized:
    """The app as `cdk synth` builds it from cdk.json's defaults."""
    return synthesize(synth_outdir_root)
