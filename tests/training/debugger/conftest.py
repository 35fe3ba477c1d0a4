"""Debugger test settings shared by every module here."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_smdebug_end_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """smdebug re-reads an ended trial once more after 1 s (for writers in other processes); the trials in
    these tests are complete when read, so the delay would only slow the tests down."""
    monkeypatch.setenv("SMDEBUG_TRAINING_END_DELAY_REFRESH", "0")
    monkeypatch.setenv("SMDEBUG_LOG_LEVEL", "warning")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """smdebug 1.0.34 calls APIs that protobuf and NumPy deprecate (``tostring``, unlinked descriptors):
    hundreds of warnings per test that say nothing about this code."""
    for item in items:
        if "tests/training/debugger/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning:smdebug.*"))
