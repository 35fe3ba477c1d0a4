"""Debugger test settings shared by every module here."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def quiet_smdebug(monkeypatch: pytest.MonkeyPatch) -> None:
    """smdebug logs every trial it opens; the tests here open many."""
    monkeypatch.setenv("SMDEBUG_LOG_LEVEL", "warning")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """smdebug 1.0.34 calls APIs that protobuf and NumPy deprecate (``tostring``, unlinked descriptors):
    hundreds of warnings per test that say nothing about this code."""
    for item in items:
        if "tests/training/debugger/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning:smdebug.*"))
