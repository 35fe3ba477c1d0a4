"""Live progress of a local sweep: a rich table on a terminal, plain log lines anywhere else.

Why two forms: on a terminal a person wants one table that updates in place (job, parameters, step, loss,
rule statuses, state); in CI, a log file or a pipe, redrawing a table would bury the log in control codes, so
the same events become one line each (a job started, a rule fired, a stop was decided, a job ended, and a
step line every quarter of the budget). ``make_progress`` picks by ``isatty``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from collections.abc import Mapping
from typing import Any, Protocol, TextIO

STATUS_SYMBOLS = {
    "InProgress": "…",
    "NoIssuesFound": "ok",
    "IssuesFound": "FIRED",
    "Error": "error",
}


@dataclasses.dataclass
class JobView:
    """What the table shows about one job (the runner updates it as lines and events arrive)."""

    name: str
    params: str
    budget: int
    step: int = 0
    loss: float | None = None
    validation: float | None = None
    rules: dict[str, str] = dataclasses.field(default_factory=dict)
    state: str = "queued"


def rule_abbreviation(name: str) -> str:
    """``LossNotDecreasing`` -> ``LND`` (capitals), so several rules fit one cell."""
    capitals = "".join(re.findall(r"[A-Z0-9]", name))
    return capitals if len(capitals) >= 2 else name[:6]


def rules_text(rules: Mapping[str, str]) -> str:
    return " ".join(
        f"{rule_abbreviation(name)}:{STATUS_SYMBOLS.get(status, status)}" for name, status in rules.items()
    )


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if math.isfinite(value) else str(value)


class Progress(Protocol):
    def start(self) -> None: ...
    def update(self, view: JobView) -> None: ...
    def event(self, line: str) -> None: ...
    def stop(self) -> None: ...


class PlainProgress:
    """One line per notable event; step lines every quarter of a job's budget."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._reported_quarter: dict[str, int] = {}

    def start(self) -> None:
        return None

    def update(self, view: JobView) -> None:
        if view.state != "running" or view.budget <= 0:
            return
        if view.step > 0 and view.name not in self._reported_quarter:
            self._reported_quarter[view.name] = 0
            self.event(f"{view.name}: training (step {view.step}/{view.budget}, loss {_number(view.loss)})")
        quarter = min(4, view.step * 4 // view.budget)
        if quarter > self._reported_quarter.get(view.name, 0) and quarter < 4:
            self._reported_quarter[view.name] = quarter
            self.event(
                f"{view.name}: step {view.step}/{view.budget}, loss {_number(view.loss)}, "
                f"rules {rules_text(view.rules) or '-'}"
            )

    def event(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def stop(self) -> None:
        return None


class LiveTable:
    """A rich ``Live`` table redrawn a few times a second; events print above it."""

    def __init__(self, title: str, objective_label: str, console: Any = None) -> None:
        from rich.console import Console

        self.title = title
        self.objective_label = objective_label
        self.console = console or Console()
        self.views: dict[str, JobView] = {}
        self._live: Any = None

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=self.title, expand=False)
        for column, justify in (
            ("job", "left"),
            ("parameters", "left"),
            ("step", "right"),
            ("loss", "right"),
            (self.objective_label, "right"),
            ("rules", "left"),
            ("state", "left"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        styles = {"running": "cyan", "Completed": "green", "Stopped": "yellow", "Failed": "red"}
        for view in self.views.values():
            table.add_row(
                view.name,
                view.params,
                f"{view.step}/{view.budget}",
                _number(view.loss),
                _number(view.validation),
                rules_text(view.rules) or "-",
                f"[{styles.get(view.state, 'white')}]{view.state}[/]",
            )
        return table

    def start(self) -> None:
        from rich.live import Live

        self._live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
        self._live.start()

    def update(self, view: JobView) -> None:
        self.views[view.name] = view
        if self._live is not None:
            self._live.update(self._table())

    def event(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False)

    def stop(self) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.stop()
            self._live = None


def make_progress(
    title: str, objective_label: str, *, live: bool | None = None, stream: TextIO | None = None
) -> Progress:
    """A live table when ``stream`` (stdout) is a terminal (or ``live`` says so), else plain lines."""
    output = stream or sys.stdout
    use_live = output.isatty() if live is None else live
    if use_live:
        from rich.console import Console

        return LiveTable(title, objective_label, Console(file=output))
    return PlainProgress(output)
