"""Shared fixtures: fake credentials for every test, and a moto server reached over HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support import moto_server

# jsii prints a large end-of-life banner on Node 20 at import; the pinned CDK works with it.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may ever reach a real AWS account: fake credentials, a fixed region, no profile."""
    for name, value in moto_server.FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(autouse=True)
def no_smdebug_end_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """smdebug re-reads an ended trial after 1 s (for writers in other processes) whenever a read misses a
    step; the trials tests read are complete, so the delay would only slow them down (a test reading a
    step that was never saved waited a second per tensor)."""
    monkeypatch.setenv("SMDEBUG_TRAINING_END_DELAY_REFRESH", "0")


@pytest.fixture(scope="session")
def moto_server_url() -> Iterator[str]:
    with moto_server.running_moto_server() as url:
        yield url


@pytest.fixture
def moto_endpoint(moto_server_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point every botocore client at the moto server (AWS_ENDPOINT_URL) with fresh state per test."""
    moto_server.reset_moto(moto_server_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server_url)
    return moto_server_url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with slow tests first, each module's tests in their own order.

    ``make test`` runs one pytest worker per core, a module at a time per worker (pytest-xdist's loadscope):
    handing out the longest modules first lets the workers finish together instead of one waiting on a
    slow module drawn last.
    """
    slow_modules = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_modules)
