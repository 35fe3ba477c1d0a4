"""Helpers for the debugger tests: trials written with the production writer code, and recorded signals."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.debugger import layout, signals

EVENTS = Path(__file__).resolve().parents[2] / "events"
# The job of the documented sample event (tests/events/autostop_rule_issues_found.json).
JOB_NAME = "sweep-lr-0001"
JOB_ARN = "arn:aws:sagemaker:us-east-1:123456789012:training-job/sweep-lr-0001"
# The sample's signing key (docs/events.md): the launcher gives every job a random one.
SAMPLE_SIGNING_KEY = "sample-signing-key-of-sweep-lr-0001-not-secret"
JOB = signals.JobIdentity(name=JOB_NAME, arn=JOB_ARN, signing_key=SAMPLE_SIGNING_KEY)
SAMPLE_TIME = datetime.datetime(2026, 11, 20, 10, 15, 31, tzinfo=datetime.UTC)

ALL_SCHEDULES = {
    layout.TRAIN: {"save_interval": 1, "save_steps": [], "start_step": 0, "end_step": None},
    layout.EVAL: {"save_interval": 1, "save_steps": [], "start_step": 0, "end_step": None},
}


def sample_event(name: str = "autostop_rule_issues_found.json") -> dict[str, Any]:
    """A documented event fixture, keys in file order (json.load keeps it)."""
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return loaded


def fixed_clock() -> datetime.datetime:
    return SAMPLE_TIME


Record = tuple[str, int, Mapping[str, Any]]  # (mode, training step, {tensor name: value})


def write_trial(
    path: Path | str,
    records: Iterable[Record],
    collections: Mapping[str, Sequence[str]],
    *,
    ended: bool = True,
) -> str:
    """A trial made exactly as the writer makes one (``layout``), from literal tensors: rules tests need no
    TensorFlow. Returns the trial path as a string."""
    out_dir = str(path)
    layout.export_collections(
        out_dir,
        [
            layout.CollectionEntry(name=name, tensor_names=tuple(names), schedules=ALL_SCHEDULES)
            for name, names in collections.items()
        ],
    )
    for mode, step, tensors in records:
        arrays = {
            name: np.asarray(value, np.float32 if _is_float(value) else None)
            for name, value in tensors.items()
        }
        layout.write_record(out_dir, layout.StepRecord(mode, step, arrays))
    if ended:
        layout.write_end_marker(out_dir)
    return out_dir


def _is_float(value: Any) -> bool:
    return np.asarray(value).dtype.kind == "f"


def losses(values: Mapping[int, float], mode: str = layout.TRAIN) -> list[Record]:
    return [(mode, step, {layout.LOSS_TENSOR: value}) for step, value in values.items()]


class Recorder:
    """A sink that keeps every signal (wrapped in ``signals.CallbackSink``)."""

    def __init__(self) -> None:
        self.signals: list[signals.RuleSignal] = []
        self.sink = signals.CallbackSink(self.signals.append)

    def of(self, rule_name: str) -> list[signals.RuleSignal]:
        return [signal for signal in self.signals if signal.rule_name == rule_name]

    def statuses(self, rule_name: str) -> list[str]:
        return [signal.status.value for signal in self.of(rule_name)]
