"""A real moto server on loopback, reached by real botocore over HTTP.

Why a server and not ``mock_aws``: the handlers must be exercised through botocore's HTTP stack (endpoint
resolution, retries, error parsing), exactly as in Lambda. The server runs in its own process, so its
state is reset between tests through moto's management API instead of restarting it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
# moto's default account id.
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _moto_server_executable() -> str:
    candidate = Path(sys.executable).with_name("moto_server")
    if not candidate.exists():
        raise RuntimeError(f"moto_server not found beside {sys.executable}: run `make venv`")
    return str(candidate)


def wait_until_serving(url: str, *, timeout_s: float = 30.0) -> None:
    """Poll until the server answers (readiness check with a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answered, even if with an error status
        except OSError as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"server at {url} did not start within {timeout_s}s") from error
            time.sleep(0.05)


@contextlib.contextmanager
def running_moto_server() -> Iterator[str]:
    """Start ``moto_server`` on a free loopback port; yield its base URL."""
    port = free_port()
    environment = {**os.environ, **FAKE_CREDENTIALS}
    process = subprocess.Popen(
        [_moto_server_executable(), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{url}/moto-api/")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def reset_moto(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10):
        pass
