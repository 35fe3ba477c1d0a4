"""One contract, two stores: the Lambda's DynamoDB table (real botocore over HTTP to moto's DynamoDB) and the
local sweep's SQLite file. First report wins, duplicates never count twice, NaN survives the round trip,
and concurrent reports at one rung all land.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdas.stop_training_job import rung_store
from tests.support.sweep_table import create_sweep_table
from training.sweep.rung_store import SqliteRungStore

TABLE = "autostop-sweeps"


def dynamodb_store(tmp_path: Path) -> Any:
    client = boto3.client("dynamodb")
    create_sweep_table(client, TABLE)
    return rung_store.DynamoDbRungStore(client, TABLE)


def sqlite_store(tmp_path: Path) -> Any:
    return SqliteRungStore(tmp_path / "rungs.sqlite")


@pytest.fixture(params=[dynamodb_store, sqlite_store], ids=["dynamodb", "sqlite"])
def store(request: pytest.FixtureRequest, moto_endpoint: str, tmp_path: Path) -> Any:
    factory: Callable[[Path], Any] = request.param
    return factory(tmp_path)


def test_the_first_report_wins_and_a_duplicate_is_not_counted_twice(store: Any) -> None:
    # GIVEN a job that reported 0.4 at rung 100
    store.report(sweep="s", rung=100, job="a", value=0.4)
    # WHEN the same report arrives again with another value (a retried event), and a sibling reports
    store.report(sweep="s", rung=100, job="a", value=0.9)
    values = store.report(sweep="s", rung=100, job="b", value=0.5)
    # THEN the rung holds each job once, with its first value
    assert values == {"a": 0.4, "b": 0.5}


def test_rungs_and_sweeps_are_kept_apart(store: Any) -> None:
    store.report(sweep="s", rung=100, job="a", value=0.1)
    store.report(sweep="s", rung=1000, job="a", value=0.2)
    store.report(sweep="other", rung=100, job="a", value=0.3)
    assert store.at_rung(sweep="s", rung=100) == {"a": 0.1}
    assert store.at_rung(sweep="s", rung=1000) == {"a": 0.2}


def test_a_diverged_job_keeps_its_nan(store: Any) -> None:
    values = store.report(sweep="s", rung=100, job="nan", value=math.nan)
    assert math.isnan(values["nan"])


def test_concurrent_reports_at_one_rung_all_land(store: Any) -> None:
    # GIVEN 8 jobs reaching rung 300 at the same moment
    barrier = threading.Barrier(8)

    def report(index: int) -> None:
        barrier.wait()
        store.report(sweep="s", rung=300, job=f"job-{index}", value=index / 10)

    threads = [threading.Thread(target=report, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN all 8 are recorded, none lost
    assert store.at_rung(sweep="s", rung=300) == {f"job-{index}": index / 10 for index in range(8)}
