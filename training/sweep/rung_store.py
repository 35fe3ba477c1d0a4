"""The local sweep's record of objectives at each rung: SQLite, so ``make demo`` needs no server.

Same contract as the Lambda's DynamoDB store (``lambdas/stop_training_job/rung_store.py``): a job's first
report at a rung wins (``INSERT OR IGNORE`` on the primary key), and a report returns everything recorded
at that rung. The file can be shared by several processes; SQLite serialises the writes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS rung_objectives (
    sweep TEXT NOT NULL,
    rung INTEGER NOT NULL,
    job TEXT NOT NULL,
    objective REAL,
    PRIMARY KEY (sweep, rung, job)
)
"""


class SqliteRungStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        with self._connection() as connection:
            connection.execute(SCHEMA)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self._path, timeout=30)
        try:
            with connection:
                yield connection
        finally:
            connection.close()

    def report(self, *, sweep: str, rung: int, job: str, value: float) -> dict[str, float]:
        with self._connection() as connection:
            # SQLite stores NaN as NULL; NULL reads back as NaN, which ranks last, as it should.
            connection.execute(
                "INSERT OR IGNORE INTO rung_objectives (sweep, rung, job, objective) VALUES (?, ?, ?, ?)",
                (sweep, rung, job, value),
            )
        return self.at_rung(sweep=sweep, rung=rung)

    def at_rung(self, *, sweep: str, rung: int) -> dict[str, float]:
        with self._connection() as connection:
            rows = connection.execute(
                "SELECT job, objective FROM rung_objectives WHERE sweep = ? AND rung = ?", (sweep, rung)
            ).fetchall()
        return {job: float("nan") if objective is None else float(objective) for job, objective in rows}
