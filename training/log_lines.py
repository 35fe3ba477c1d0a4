"""One writer for every log line a training process prints: each line written whole and alone.

A training job prints from several threads at once: the training loop (``step=... loss=...`` metric lines),
the rule evaluator (``rule:<Name>=1`` markers, findings), the tensor writer and the signal sinks. SageMaker
metric definitions and the per-job alarms are regular expressions over these lines, so a marker glued to
the end of a metric line (``... learning_rate=0.003rule:VanishingGradient=1``) is a missed stop or a wrong
metric. ``print`` writes the text and the newline as two writes: another thread can write between them.

Here every line is one ``write`` of the text with its newline, followed by a flush, under one lock shared by
every printer of the process (stdout and stderr alike: SageMaker and the local runner merge the two into
one log). A flushed line shorter than the pipe buffer (4 KiB) is one ``write(2)`` the kernel never splits.
The lock is re-entrant so that a signal handler running on a thread that holds it can never deadlock (no
handler of this project prints; ``training.train.StopRequest`` explains why).
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

_LOCK = threading.RLock()


def write_line(line: str, *, stream: TextIO | None = None) -> None:
    """Write ``line`` and its newline to ``stream`` (default: the current ``sys.stdout``) as one block."""
    target = sys.stdout if stream is None else stream
    text = line if line.endswith("\n") else line + "\n"
    with _LOCK:
        target.write(text)
        target.flush()


def write_error_line(line: str) -> None:
    """``write_line`` to the current ``sys.stderr`` (the same lock: both streams end in one log)."""
    write_line(line, stream=sys.stderr)
