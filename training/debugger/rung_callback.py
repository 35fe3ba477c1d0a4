"""The Keras side of cross-job rung reports: each validation's means go to the ``RungReporter``.

Why a module of its own: it imports Keras (TensorFlow), which ``rung_reports`` must not, so the launcher and
the tests of the report's shape stay light; ``wiring.build_callbacks`` imports it once training starts.
"""

from __future__ import annotations

from typing import Any

import keras

from training.debugger import rung_reports


class RungReportCallback(keras.callbacks.Callback):
    """``on_test_end`` (the validation means: ``loss``, ``ssim``, ``l2``) at the optimizer's step ->
    ``RungReporter.validated``; ``on_train_end`` lets the last report drain."""

    def __init__(self, reporter: rung_reports.RungReporter) -> None:
        super().__init__()
        self.reporter = reporter

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if logs:
            step = int(self.model.optimizer.iterations)
            self.reporter.validated(step, {name: float(value) for name, value in logs.items()})

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.reporter.close()
