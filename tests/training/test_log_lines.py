"""Every printer of a training process writes its lines whole and alone, whatever the threads do."""

from __future__ import annotations

import contextlib
import io
import re
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from training import callbacks, job, log_lines
from training.debugger import evaluator, signals, wiring, writer

LINES_PER_THREAD = 2000
METRIC_LINE = re.compile(r"step=(\d+) loss=0\.985227 ssim=0\.5 l2=0\.01 learning_rate=0\.003")
MARKER_LINE = re.compile(r"rule:(Rule\d+)=1")
DEBUGGER_LINE = re.compile(r"debugger: (\w+) line (\d+) of (\d+)")


@contextlib.contextmanager
def stdout_to(path: Path) -> Iterator[None]:
    """A real file behind sys.stdout and sys.stderr, unbuffered as ``PYTHONUNBUFFERED=1`` makes them (the
    local runner sets it; so do many training images): every ``write`` is a system call, which releases the
    GIL, as in a job's log. (Set in the test body: pytest's output capture replaces both streams again
    between a fixture and the test.)"""
    saved = sys.stdout, sys.stderr
    with io.TextIOWrapper(io.FileIO(path, "w"), encoding="utf-8", write_through=True) as stream:
        sys.stdout = sys.stderr = stream
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads as often as CPython allows: an unlocked printer then splits lines within a few dozen."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _run_together(writers: list[Callable[[], None]]) -> None:
    start = threading.Barrier(len(writers))

    def run(write: Callable[[], None]) -> None:
        start.wait()
        write()

    threads = [threading.Thread(target=run, args=(write,)) for write in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.usefixtures("frequent_thread_switches")
def test_metric_lines_markers_and_debugger_lines_from_many_threads_stay_whole(tmp_path: Path) -> None:
    """GIVEN the training loop's metric lines, the evaluator's rule markers and the writer's, wiring's,
    job's and signals' log lines, all printed through their modules' default printers at the same time
    WHEN eight threads print hundreds of lines each
    THEN every line of the log is one of the lines printed, whole, and none is missing."""
    metric_printer = callbacks.MetricLogLines(1)  # its default ``write``: the printer training uses
    marker_sink = signals.MetricLogLineSink()

    def metric_lines() -> None:
        for step in range(LINES_PER_THREAD):
            metric_printer.write(f"step={step} loss=0.985227 ssim=0.5 l2=0.01 learning_rate=0.003")

    def markers(rule_index: int) -> Callable[[], None]:
        def emit() -> None:
            for _ in range(LINES_PER_THREAD):
                marker_sink.emit(signals.RuleSignal(f"Rule{rule_index}", signals.RuleStatus.ISSUES_FOUND))

        return emit

    def debugger_lines(name: str, printer: Callable[[str], None]) -> Callable[[], None]:
        def emit() -> None:
            for index in range(LINES_PER_THREAD):
                printer(f"debugger: {name} line {index} of {LINES_PER_THREAD}")

        return emit

    log = tmp_path / "job.log"
    with stdout_to(log):
        _run_together(
            [
                metric_lines,
                markers(1),
                markers(2),
                debugger_lines("writer", writer._print_line),
                debugger_lines("evaluator", evaluator._print_line),
                debugger_lines("wiring", wiring._print_line),
                debugger_lines("job", job._print_line),
                debugger_lines("errors", log_lines.write_error_line),
            ]
        )

    lines = log.read_text(encoding="utf-8").splitlines()
    broken = [
        line
        for line in lines
        if not (METRIC_LINE.fullmatch(line) or MARKER_LINE.fullmatch(line) or DEBUGGER_LINE.fullmatch(line))
    ]
    assert broken == []
    assert len(lines) == 8 * LINES_PER_THREAD
    assert sum(1 for line in lines if MARKER_LINE.fullmatch(line)) == 2 * LINES_PER_THREAD


def test_a_line_is_one_write_with_its_newline() -> None:
    """GIVEN a stream that records each write call
    WHEN a line is written
    THEN the text and its newline arrive in one write, then the stream is flushed (one block, not two)."""

    class Recording(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str] = []

        def write(self, text: str) -> int:
            self.calls.append(text)
            return super().write(text)

        def flush(self) -> None:
            self.calls.append("<flush>")

    stream = Recording()
    log_lines.write_line("rule:LossNotDecreasing=1", stream=stream)
    log_lines.write_line("already ended\n", stream=stream)

    assert stream.calls == ["rule:LossNotDecreasing=1\n", "<flush>", "already ended\n", "<flush>"]
