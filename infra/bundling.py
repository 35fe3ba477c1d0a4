"""Local pip bundling of Python Lambda assets: no Docker, cached, reproducible enough for tests.

Why not ``PythonFunction`` (aws-lambda-python-alpha) or Docker bundling: they need a Docker daemon, which
neither this development machine nor many CI runners have. pip can download the exact wheels the Lambda
runtime needs from any host (``--platform manylinux2014_<arch> --implementation cp --python-version 3.x
--only-binary=:all:``), so bundling is a plain subprocess.

Why a cache (``.cache/bundles/<key>/``): tests synthesize the app many times; the pip result depends only on
the requirements file's content, the platform and the Python version, so it is computed once and then
hard-linked (or copied) into each asset: a repeated synth costs well under a second.

Layout of a bundled asset (the Lambda code root)::

    <pip-installed dependencies>/...
    <package_name>/__init__.py, app.py, ...   (the handler folder itself, as a package)

so a handler string is ``<package_name>.app.handler`` and the package uses relative imports.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from infra import defaults

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE_ROOT = REPOSITORY_ROOT / ".cache" / "bundles"
REQUIREMENTS_FILE_NAME = "requirements.txt"
# Bump when the cache layout or the pip command changes, so stale caches are never reused.
_CACHE_FORMAT_VERSION = "2"
# Files of the handler folder that must not ship: bytecode is rebuilt by the runtime, and the requirements
# file is an input of bundling, not code.
_EXCLUDED_PATTERNS = ("__pycache__", "*.pyc", "*.pyo", REQUIREMENTS_FILE_NAME)

_PIP_PLATFORMS = {
    lambda_.Architecture.ARM_64.name: "manylinux2014_aarch64",
    lambda_.Architecture.X86_64.name: "manylinux2014_x86_64",
}


class BundlingError(RuntimeError):
    """pip could not produce the asset (no network and no cache, a pin without a wheel for the platform)."""


def pip_platform(architecture: lambda_.Architecture) -> str:
    """The pip ``--platform`` tag for a Lambda architecture."""
    try:
        return _PIP_PLATFORMS[architecture.name]
    except KeyError:
        raise ValueError(f"no pip platform known for Lambda architecture {architecture.name!r}") from None


def python_version(runtime: lambda_.Runtime) -> str:
    """``python3.14`` -> ``3.14`` (the pip ``--python-version``)."""
    prefix = "python"
    if not runtime.name.startswith(prefix):
        raise ValueError(f"not a Python Lambda runtime: {runtime.name!r}")
    return runtime.name[len(prefix) :]


def cache_key(*, requirements: bytes, platform: str, version: str) -> str:
    """Content hash naming the cache folder: same requirements + platform + Python version -> same wheels."""
    digest = hashlib.sha256()
    for part in (_CACHE_FORMAT_VERSION.encode(), platform.encode(), version.encode(), requirements):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:32]


def _link_or_copy(source: str, destination: str) -> str:
    """Hard-link a cached file into the asset (instant, no extra disk); copy across file systems."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)
    return destination


@jsii.implements(cdk.ILocalBundling)
class LocalPipBundling:
    """``ILocalBundling`` that pip-installs ``requirements.txt`` for the Lambda platform and adds the handler
    folder as a package. Never falls back to Docker: a failure raises :class:`BundlingError`."""

    def __init__(
        self,
        *,
        source_directory: Path,
        python_version: str,
        pip_platform: str,
        cache_root: Path = DEFAULT_CACHE_ROOT,
    ) -> None:
        if not source_directory.is_dir():
            raise ValueError(f"Lambda source folder does not exist: {source_directory}")
        self.source_directory = source_directory
        self.package_name = source_directory.name
        if not self.package_name.isidentifier():
            raise ValueError(
                f"Lambda source folder name must be a Python package name, got {self.package_name!r}"
            )
        self.python_version = python_version
        self.pip_platform = pip_platform
        self.cache_root = cache_root

    # jsii passes the BundlingOptions struct (as one positional argument); nothing in it is needed here.
    # The keyword catch-all only lets mypy see this as an ILocalBundling.
    def try_bundle(self, output_dir: str, options: object = None, **keyword_options: Any) -> bool:
        output = Path(output_dir)
        dependencies = self.dependencies_directory()
        if dependencies is not None:
            shutil.copytree(dependencies, output, dirs_exist_ok=True, copy_function=_link_or_copy)
        shutil.copytree(
            self.source_directory,
            output / self.package_name,
            ignore=shutil.ignore_patterns(*_EXCLUDED_PATTERNS),
            dirs_exist_ok=True,
        )
        return True

    def dependencies_directory(self) -> Path | None:
        """The cached pip result for this requirements file (built on first use), or None without one."""
        requirements_path = self.source_directory / REQUIREMENTS_FILE_NAME
        if not requirements_path.is_file():
            return None
        requirements = requirements_path.read_bytes()
        if not any(line.strip() and not line.strip().startswith(b"#") for line in requirements.splitlines()):
            return None
        key = cache_key(requirements=requirements, platform=self.pip_platform, version=self.python_version)
        cached = self.cache_root / key
        if cached.is_dir():
            return cached
        self.cache_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=self.cache_root))
        try:
            self._pip_install(requirements_path, staging)
            # Console scripts (jmespath's jp.py) point at the build machine's interpreter: useless in Lambda.
            shutil.rmtree(staging / "bin", ignore_errors=True)
            try:
                # Atomic publish: a concurrent synth either sees nothing or the complete folder.
                staging.rename(cached)
            except OSError:
                if not cached.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return cached

    def _pip_install(self, requirements_path: Path, target: Path) -> None:
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--platform",
            self.pip_platform,
            "--python-version",
            self.python_version,
            "--target",
            str(target),
            "--requirement",
            str(requirements_path),
        ]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise BundlingError(
                f"pip could not bundle {requirements_path} for {self.pip_platform} / Python "
                f"{self.python_version} (exit {completed.returncode}):\n{completed.stderr.strip()}"
            )


def python_lambda_code(
    source_directory: Path,
    *,
    runtime: lambda_.Runtime = defaults.DEFAULT_PYTHON_RUNTIME,
    architecture: lambda_.Architecture = defaults.DEFAULT_ARCHITECTURE,
    cache_root: Path = DEFAULT_CACHE_ROOT,
) -> lambda_.Code:
    """Lambda code for the handler package in ``source_directory`` plus its ``requirements.txt``.

    The asset hash is the hash of the source folder (requirements file included, bytecode excluded), so
    a changed pin or handler produces a new asset and an unchanged one is not bundled again.
    """
    bundler = LocalPipBundling(
        source_directory=source_directory,
        python_version=python_version(runtime),
        pip_platform=pip_platform(architecture),
        cache_root=cache_root,
    )
    return lambda_.Code.from_asset(
        str(source_directory),
        exclude=["__pycache__", "*.pyc", "*.pyo"],
        bundling=cdk.BundlingOptions(
            # Required by the API, never used: LocalPipBundling always bundles (or raises), so no Docker image
            # is ever pulled or run. The name is the image Docker bundling would use, for readers.
            image=cdk.DockerImage.from_registry(f"public.ecr.aws/sam/build-{runtime.name}"),
            local=bundler,
        ),
    )
