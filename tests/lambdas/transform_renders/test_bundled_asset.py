"""The Lambda asset works on its own: bundled as the construct bundles it, run alone under Python 3.13.

How: ``infra.bundling.LocalPipBundling`` (what ``RenderTransformer`` uses) builds the asset folder: the
pinned wheels of lambdas/transform_renders/requirements.txt for the Lambda platform + the handler package.
The handler named by the construct (``transform_renders.app.handler``) is then imported from that folder
and invoked on an SQS event by CPython 3.13 (the function's runtime, from pyenv) in isolated mode (``-I``:
no site-packages, no user site, no PYTHON* variables, no current directory on sys.path), with only the
asset and a folder holding boto3==1.44.5 (the Lambda runtime provides boto3; the asset does not ship it)
on ``sys.path``. The event is a real S3 notification from the moto server, which the handler reads and
writes over HTTP.

Why x86_64 wheels although the function runs on arm64 by default: this machine is x86_64 and must execute
the native wheels (numpy, Pillow). The arm64 asset is the same pins, same versions, other machine code.
Both pip results are cached under .cache/ (first run downloads them from PyPI; later runs take seconds).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra import bundling, render_transformer
from tests.lambdas.transform_renders import archives, example_proto
from tests.lambdas.transform_renders.conftest import create_renders_bucket, lambda_event, receive_all
from tests.support import moto_server

pytestmark = pytest.mark.slow

PYTHON_313 = Path("/root/.pyenv/versions/3.13.0/bin/python")
REPOSITORY = Path(__file__).resolve().parents[3]
CACHE = REPOSITORY / ".cache"
RUNTIME_BOTO3 = "boto3==1.44.5"
LOCAL_PLATFORM = "manylinux2014_x86_64"

# Runs inside the isolated interpreter: put the asset and the runtime stand-in on sys.path, import the
# handler by the construct's handler string, invoke it, and report where every module came from.
RUNNER = """
import importlib, json, sys
asset, runtime, handler_string, event_path = sys.argv[1:5]
sys.path[:0] = [asset, runtime]
module_name, function_name = handler_string.rsplit(".", 1)
handler = getattr(importlib.import_module(module_name), function_name)

class Context:
    function_name = "transform-renders"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:transform-renders"
    aws_request_id = "11111111-2222-4333-8444-555555555555"
    def get_remaining_time_in_millis(self):
        return 60000

with open(event_path) as stream:
    response = handler(json.load(stream), Context())
roots = {"numpy", "PIL", "aws_lambda_powertools", "google_crc32c", "boto3", "botocore", "transform_renders"}
modules = {
    name: getattr(module, "__file__", None)
    for name, module in sys.modules.items()
    if name.split(".")[0] in roots and "." not in name
}
version = list(sys.version_info[:2])
crc = sys.modules["google_crc32c"].implementation
print("RESULT " + json.dumps({"response": response, "modules": modules, "version": version, "crc": crc}))
"""


def _cached_pip_target(name: str, arguments: list[str]) -> Path:
    """``pip install --target`` into .cache/<name>/ once (atomic rename), then reuse it."""
    target = CACHE / name
    if target.is_dir():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=CACHE))
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-compile",
                "--target",
                str(staging),
                *arguments,
            ],
            check=True,
            capture_output=True,
        )
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@pytest.fixture(scope="module")
def asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The asset folder exactly as RenderTransformer's bundling builds it, for the local platform."""
    bundler = bundling.LocalPipBundling(
        source_directory=render_transformer.LAMBDA_DIRECTORY,
        python_version=bundling.python_version(render_transformer.RUNTIME),
        pip_platform=LOCAL_PLATFORM,
    )
    output = tmp_path_factory.mktemp("asset")
    assert bundler.try_bundle(str(output))
    return output


@pytest.fixture(scope="module")
def runtime_boto3() -> Path:
    version = bundling.python_version(render_transformer.RUNTIME)
    return _cached_pip_target(
        f"lambda-runtime-{RUNTIME_BOTO3.replace('==', '-')}-py{version}",
        [
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            version,
            "--platform",
            LOCAL_PLATFORM,
            RUNTIME_BOTO3,
        ],
    )


@pytest.mark.skipif(not PYTHON_313.exists(), reason=f"needs CPython 3.13 at {PYTHON_313} (pyenv)")
def test_handler_runs_from_the_bundled_asset_alone(
    asset: Path, runtime_boto3: Path, moto_endpoint: str, tmp_path: Path
) -> None:
    # GIVEN the construct's runtime is the interpreter used here, and the asset holds the package + its pins
    assert render_transformer.RUNTIME.name == "python3.13"
    assert (asset / "transform_renders" / "app.py").is_file()
    assert not (asset / "transform_renders" / "requirements.txt").exists()
    assert not (asset / "boto3").exists()  # the runtime provides it
    # AND a render batch uploaded to moto's bucket, whose notification is waiting in the queue
    renders = create_renders_bucket(boto3.client("s3"), boto3.client("sqs"))
    renders.s3.put_object(
        Bucket=renders.bucket,
        Key="renders/bundle test/batch.tar.gz",
        Body=archives.tar_bytes(archives.design_files("asset-1"), compressed=True),
    )
    event_path = tmp_path / "event.json"
    event_path.write_text(
        json.dumps(lambda_event(receive_all(renders.sqs, renders.queue_url), renders.queue_arn))
    )
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **moto_server.FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "OUTPUT_BUCKET": renders.bucket,
        "POWERTOOLS_SERVICE_NAME": "transform-renders",
        "POWERTOOLS_METRICS_NAMESPACE": "Autostop",
    }

    # WHEN the construct's handler string is invoked from the asset by an isolated CPython 3.13
    completed = subprocess.run(
        [
            str(PYTHON_313),
            "-I",
            "-c",
            RUNNER,
            str(asset),
            str(runtime_boto3),
            render_transformer.HANDLER,
            str(event_path),
        ],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )

    # THEN it succeeds under 3.13 with every module loaded from the asset (or boto3 from the stand-in)
    assert completed.returncode == 0, completed.stderr[-4000:]
    [line] = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    assert result["version"] == [3, 13]
    assert result["response"] == {"batchItemFailures": []}
    modules = result["modules"]
    for name in ("numpy", "PIL", "aws_lambda_powertools", "google_crc32c", "transform_renders"):
        assert modules[name].startswith(str(asset)), (name, modules[name])
    assert result["crc"] == "c"  # google-crc32c's C extension, not its slow pure-Python fallback
    for name in ("boto3", "botocore"):
        assert modules[name].startswith(str(runtime_boto3)), (name, modules[name])
    # AND the shard it wrote through moto holds the design
    [shard] = renders.s3.list_objects_v2(Bucket=renders.bucket, Prefix="shards/")["Contents"]
    assert shard["Key"].startswith("shards/train/bundle test/batch-")
    body = renders.s3.get_object(Bucket=renders.bucket, Key=shard["Key"])["Body"].read()
    assert [design["design_id"] for design in example_proto.designs_in_shard(body)] == ["asset-1"]
