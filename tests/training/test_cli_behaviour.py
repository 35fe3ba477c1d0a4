"""The ``autostop`` command as a user meets it: help, version, one error line, pipes, a quiet start.

AWS errors are produced by real botocore: no region and no credentials from an empty configuration, an API
error from the local SageMaker fake, an unreachable endpoint from a closed port.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import moto_server
from tests.support.sagemaker_fake import FakeSageMaker
from tests.training.sweep.test_report import fixed_sweep
from training import cli
from training.sweep import report

ROOT = Path(__file__).resolve().parents[2]
NO_DEFAULT = (None, False, [], argparse.SUPPRESS)


def options(parser: argparse.ArgumentParser, path: str = "autostop") -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from options(subparser, f"{path} {name}")
        elif action.dest not in ("help", "version"):
            yield path, action


def test_every_argument_has_help_and_every_default_is_told() -> None:
    missing_help, missing_default = [], []
    for path, action in options(cli.build_parser()):
        name = "/".join(action.option_strings) or action.dest
        if not action.help:
            missing_help.append(f"{path} {name}")
        elif action.option_strings and action.default not in NO_DEFAULT and "default" not in action.help:
            missing_default.append(f"{path} {name}")
    assert missing_help == []
    assert missing_default == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"autostop {importlib.metadata.version('autostop')}\n"


def one_error_line(capsys: pytest.CaptureFixture[str], prefix: str) -> str:
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    assert error.startswith(prefix), error
    assert "Traceback" not in error
    return error


def test_no_region_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["sweep", "status", "vision-lr"]) == 1
    one_error_line(capsys, "autostop sweep status: error: no AWS region")


def test_no_credentials_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["sweep", "status", "vision-lr", "--region", "us-east-1"]) == 1
    one_error_line(capsys, "autostop sweep status: error: no AWS credentials")


def test_an_api_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a SageMaker that answers ListTrainingJobs with an error (the fake does not implement it)
    with FakeSageMaker() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", fake.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", fake.url)
        code = cli.main(["sweep", "status", "vision-lr", "--region", "us-east-1"])
    assert code == 1
    one_error_line(capsys, "autostop sweep status: error: ")


def test_an_unreachable_endpoint_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{moto_server.free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert cli.main(["sweep", "status", "vision-lr", "--region", "us-east-1"]) == 1
    error = one_error_line(capsys, "autostop sweep status: error: cannot reach http://127.0.0.1:")
    assert "check the region and the network" in error


def test_a_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sweep", "report", str(tmp_path / "nowhere")]) == 2
    one_error_line(capsys, "autostop sweep report: error: cannot read the sweep records")


def test_json_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    # GIVEN a local sweep with enough jobs that its JSON status outgrows a pipe's buffer
    sweep = fixed_sweep()
    sweep.jobs = [
        report.JobRecord(name=f"big-{index:04d}", params={"learning_rate": 0.1}, budget_steps=100)
        for index in range(3000)
    ]
    sweep.save(tmp_path)
    # WHEN its status is read by a reader that stops after one line (as `| head -1` does)
    process = subprocess.Popen(
        [sys.executable, "-m", "training.cli", "sweep", "status", str(tmp_path), "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    assert process.stdout.readline() == b"[\n"
    process.stdout.close()
    error = process.stderr.read().decode()
    code = process.wait(timeout=120)
    # THEN no BrokenPipeError, nothing on stderr, and the shell's exit status for a closed pipe
    assert error == ""
    assert code == 141


@pytest.mark.slow
def test_tensorflow_starts_quietly_on_a_cpu_only_machine() -> None:
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from training import quiet_tensorflow\n"
            "tf = quiet_tensorflow.import_tensorflow()\n"
            "print(int(tf.reduce_sum(tf.constant([1, 2]))))",
        ],
        cwd=ROOT,
        env={**environment, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert result.stdout == "3\n"
    assert result.stderr == ""
