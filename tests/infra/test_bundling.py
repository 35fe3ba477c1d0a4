"""Local pip bundling of Lambda assets (no Docker): layout, cache, and clear failures.

pip runs for real (first use of a requirements file per platform needs PyPI; the result is cached under
.cache/bundles, so later runs are offline and instant).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_lambda as lambda_

from infra import bundling
from tests.infra.conftest import Synthesized

STOP_FUNCTION_SOURCE = bundling.REPOSITORY_ROOT / "lambdas" / "stop_training_job"


def make_package(root: Path, requirements: str, name: str = "example_handler") -> Path:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text("def handler(event, context):\n    return None\n")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"stale")
    (package / "requirements.txt").write_text(requirements)
    return package


def bundler(package: Path, cache_root: Path) -> bundling.LocalPipBundling:
    return bundling.LocalPipBundling(
        source_directory=package,
        python_version="3.14",
        pip_platform="manylinux2014_aarch64",
        cache_root=cache_root,
    )


def test_runtime_and_architecture_map_to_pip_arguments() -> None:
    assert bundling.python_version(lambda_.Runtime.PYTHON_3_14) == "3.14"
    assert bundling.pip_platform(lambda_.Architecture.ARM_64) == "manylinux2014_aarch64"
    assert bundling.pip_platform(lambda_.Architecture.X86_64) == "manylinux2014_x86_64"
    with pytest.raises(ValueError, match="not a Python"):
        bundling.python_version(lambda_.Runtime.NODEJS_22_X)


def test_cache_key_depends_on_requirements_platform_and_version() -> None:
    key = bundling.cache_key(requirements=b"a==1\n", platform="manylinux2014_aarch64", version="3.14")
    assert key == bundling.cache_key(requirements=b"a==1\n", platform="manylinux2014_aarch64", version="3.14")
    assert key != bundling.cache_key(requirements=b"a==2\n", platform="manylinux2014_aarch64", version="3.14")
    assert key != bundling.cache_key(requirements=b"a==1\n", platform="manylinux2014_x86_64", version="3.14")
    assert key != bundling.cache_key(requirements=b"a==1\n", platform="manylinux2014_aarch64", version="3.13")


def test_bundle_has_dependencies_and_the_handler_package_then_reuses_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a handler package with the stop Lambda's requirements (the shared cache usually has them)
    package = make_package(tmp_path, (STOP_FUNCTION_SOURCE / "requirements.txt").read_text())
    local = bundler(package, bundling.DEFAULT_CACHE_ROOT)
    # WHEN bundled
    first = tmp_path / "first"
    first.mkdir()
    assert local.try_bundle(str(first)) is True
    # THEN dependencies sit at the root and the handler is a package without bytecode or requirements
    assert (first / "aws_lambda_powertools" / "__init__.py").is_file()
    assert (first / "example_handler" / "app.py").is_file()
    assert not (first / "example_handler" / "__pycache__").exists()
    assert not (first / "example_handler" / "requirements.txt").exists()
    assert not list(first.rglob("*.pyc"))  # --no-compile
    assert not (first / "bin").exists()  # console scripts are dropped
    # AND a second bundle never runs pip again
    monkeypatch.setattr(bundling.LocalPipBundling, "_pip_install", _pip_must_not_run)
    second = tmp_path / "second"
    second.mkdir()
    assert local.try_bundle(str(second)) is True
    assert sorted(path.relative_to(second) for path in second.rglob("*")) == sorted(
        path.relative_to(first) for path in first.rglob("*")
    )


def _pip_must_not_run(*arguments: Any) -> None:
    raise AssertionError("pip ran although the cache holds this requirements file")


def test_requirements_without_packages_skip_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundling.LocalPipBundling, "_pip_install", _pip_must_not_run)
    package = make_package(tmp_path, "# boto3 comes from the Lambda runtime\n\n")
    output = tmp_path / "out"
    output.mkdir()
    assert bundler(package, tmp_path / "cache").try_bundle(str(output)) is True
    assert sorted(path.name for path in output.iterdir()) == ["example_handler"]


def test_pip_failure_raises_with_pips_message_and_caches_nothing(tmp_path: Path) -> None:
    # GIVEN a requirements file pip cannot parse (fails locally, no index needed)
    package = make_package(tmp_path, "this is not a requirement ===\n")
    cache_root = tmp_path / "cache"
    output = tmp_path / "out"
    output.mkdir()
    # WHEN bundled  THEN BundlingError carries pip's explanation, and no half-made cache entry remains
    with pytest.raises(bundling.BundlingError, match="pip could not bundle") as raised:
        bundler(package, cache_root).try_bundle(str(output))
    assert "manylinux2014_aarch64" in str(raised.value)
    assert list(cache_root.iterdir()) == []


def test_source_folder_must_exist_and_be_a_package_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        bundler(tmp_path / "missing", tmp_path)
    (tmp_path / "not-a-package").mkdir()
    with pytest.raises(ValueError, match="package name"):
        bundler(tmp_path / "not-a-package", tmp_path)


def test_synthesized_stop_function_asset_is_the_bundle(default_app: Synthesized) -> None:
    # GIVEN the app synthesized as `cdk synth` does (the stop Lambda, not the alarm janitor)
    (function,) = [
        resource
        for resource in default_app.resources("AWS::Lambda::Function").values()
        if "/AutoStop/StopFunction/" in resource["Metadata"]["aws:cdk:path"]
    ]
    assert function["Metadata"]["aws:asset:is-bundled"] is True
    asset = default_app.outdir / function["Metadata"]["aws:asset:path"]
    # THEN the asset root holds Powertools and the handler package the handler string names
    assert (asset / "aws_lambda_powertools").is_dir()
    assert (asset / "stop_training_job").is_dir()
    assert not (asset / "stop_training_job" / "requirements.txt").exists()
    assert not list(asset.rglob("__pycache__"))
    assert function["Properties"]["Handler"].split(".")[0] == "stop_training_job"
