"""Time to stop: seconds from the first step at which a rule's condition holds to the stop signal (target: at
most one save interval + 1 s; managed Debugger takes about two minutes).

Run: ``.venv/bin/python -m bench.time_to_stop``

The reference model (``optimized`` preset) trains on one batch of 32 rendered designs with the default save
intervals (losses every 10 steps) and the production setup (writer + evaluator thread). The clock starts when
the step at which the condition first holds has finished (``on_train_batch_end``) and stops when the signal
reaches the sinks (the moment ``events:PutEvents`` would be called and ``rule:<Name>=1`` printed). Scenarios:

- ``ExplodingTensor``, NaN injected into a kernel after step 23: the condition holds from step 23, is
  visible at the next loss save (step 30), so the time includes the wait for that save (up to one interval);
- ``LossNotDecreasing``, learning rate 0: the loss stops decreasing from the start; the documented
  comparison (10 steps apart) first holds at step 20, a save step, so this is the pipeline's own latency
  (write the step, read it, evaluate, signal);
- the first scenario with the evaluator as a separate process (``python -m training.debugger.evaluator``,
  polling every second), the alternative to the thread.

Each scenario runs ``REPEATS`` times on a freshly built trainer; the table shows the median and the maximum.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SMDEBUG_LOG_LEVEL", "error")

import keras
import numpy as np
import tensorflow as tf

from bench import hook_overhead
from training import trainer
from training.debugger import config, evaluator, signals, writer

COMMAND = ".venv/bin/python -m bench.time_to_stop"
REPEATS = 2
NAN_AFTER_STEP = 23
LOSS_SAVE_INTERVAL = 10  # the default losses schedule (config.default_hook_config)
MANAGED_DEBUGGER_SECONDS = (
    120  # reported by AWS users for managed rules (shared/reference/rules-and-peers.md)
)


class StepClock(keras.callbacks.Callback):
    """Records when each step ended; optionally poisons a kernel with NaN after a given step."""

    def __init__(self, nan_after_step: int | None = None) -> None:
        super().__init__()
        self.ended: dict[int, float] = {}
        self.nan_after_step = nan_after_step

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if batch == self.nan_after_step:
            kernel = self.model.autoencoder.get_layer("encoder_conv_1").kernel
            kernel.assign(tf.fill(kernel.shape, np.nan))
        self.ended[batch] = time.perf_counter()


class StopAfterSignal(keras.callbacks.Callback):
    """Ends the run a few steps after the signal (as a stop would): no repeat runs longer than needed."""

    def __init__(self, signalled: threading.Event, extra_steps: int = 3) -> None:
        super().__init__()
        self.signalled = signalled
        self.extra_steps = extra_steps
        self.should_stop = False

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.signalled.is_set():
            self.extra_steps -= 1
            self.should_stop = self.extra_steps <= 0


def run_thread(
    views: tf.Tensor, probe: writer.Probe, root: Path, *, rule: str, learning_rate: float
) -> dict[str, float]:
    built = hook_overhead.build_trainer(learning_rate=learning_rate, records=True)
    signal_time: dict[str, float] = {}
    signalled = threading.Event()

    def record(rule_signal: signals.RuleSignal) -> None:
        if rule_signal.status is signals.RuleStatus.ISSUES_FOUND:
            signal_time.setdefault(rule_signal.rule_name, time.perf_counter())
            signalled.set()

    rule_evaluator = evaluator.RuleEvaluator(
        config.parse_rule_configurations(rule),
        dispatcher=signals.SignalDispatcher([signals.CallbackSink(record)]),
        log=hook_overhead.quiet,
    )
    clock = StepClock(NAN_AFTER_STEP if rule == "ExplodingTensor" else None)
    stopper = StopAfterSignal(signalled)
    hook = config.default_hook_config(str(root / f"{rule}-{time.monotonic_ns()}"))
    trainer.fit(
        built,
        tf.data.Dataset.from_tensors(views).repeat(),
        total_steps=200,
        callbacks=[
            clock,
            writer.DebuggerTensorWriter(
                hook, probe=probe, listeners=[rule_evaluator], log=hook_overhead.quiet
            ),
            stopper,
        ],
        should_stop=lambda: stopper.should_stop,
    )
    state = rule_evaluator.snapshot()[0]
    if state.step is None or rule not in signal_time:
        raise RuntimeError(f"{rule} did not fire: {state}")
    first = NAN_AFTER_STEP if rule == "ExplodingTensor" else state.step
    return {
        "condition_step": float(first),
        "signal_step": float(state.step),
        "seconds": signal_time[rule] - clock.ended[first],
        "step_seconds": statistics.median(
            clock.ended[step] - clock.ended[step - 1]
            for step in range(2, first + 1)
            if step - 1 in clock.ended
        ),
    }


def run_process(views: tf.Tensor, probe: writer.Probe, root: Path) -> dict[str, float]:
    """ExplodingTensor with the evaluator in its own process; the signal is its line in the events file."""
    built = hook_overhead.build_trainer(records=True)
    out_dir = root / f"process-{time.monotonic_ns()}"
    events_file = root / f"events-{time.monotonic_ns()}.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "training.debugger.evaluator",
            "--trial",
            str(out_dir),
            "--rules",
            "ExplodingTensor",
            "--events-file",
            str(events_file),
            "--job-name",
            "bench-process",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "SMDEBUG_LOG_LEVEL": "error"},
    )
    signalled = threading.Event()
    signal_time: list[float] = []
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if events_file.exists() and "IssuesFound" in events_file.read_text(encoding="utf-8"):
                signal_time.append(time.perf_counter())
                signalled.set()
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    clock = StepClock(NAN_AFTER_STEP)
    stopper = StopAfterSignal(signalled)
    try:
        trainer.fit(
            built,
            tf.data.Dataset.from_tensors(views).repeat(),
            total_steps=200,
            callbacks=[
                clock,
                writer.DebuggerTensorWriter(
                    config.default_hook_config(str(out_dir)), probe=probe, log=hook_overhead.quiet
                ),
                stopper,
            ],
            should_stop=lambda: stopper.should_stop,
        )
        process.wait(timeout=300)
    finally:
        finished.set()
        if process.poll() is None:
            process.kill()
    if not signal_time:
        raise RuntimeError("the evaluator process did not signal")
    issue = next(
        json.loads(line)
        for line in events_file.read_text(encoding="utf-8").splitlines()
        if "IssuesFound" in line
    )
    return {
        "condition_step": float(NAN_AFTER_STEP),
        "signal_step": float(issue["detail"]["Step"]),
        "seconds": signal_time[0] - clock.ended[NAN_AFTER_STEP],
        "step_seconds": statistics.median(
            clock.ended[step] - clock.ended[step - 1] for step in range(2, NAN_AFTER_STEP + 1)
        ),
    }


def measure() -> dict[str, list[dict[str, float]]]:
    views, probe = hook_overhead.rendered_designs()
    root = Path(tempfile.mkdtemp(prefix="time-to-stop-"))
    results: dict[str, list[dict[str, float]]] = {"exploding": [], "loss": [], "process": []}
    try:
        for _ in range(REPEATS):
            results["exploding"].append(
                run_thread(views, probe, root, rule="ExplodingTensor", learning_rate=1e-3)
            )
            results["loss"].append(
                run_thread(views, probe, root, rule="LossNotDecreasing", learning_rate=0.0)
            )
            results["process"].append(run_process(views, probe, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results


def main() -> str:
    results = measure()
    lines = [
        "## Time to stop (issue 5)",
        "",
        f"Command: `{COMMAND}` -- `optimized` preset, batch of {hook_overhead.BATCH_SIZE} rendered designs "
        f"({hook_overhead.NUM_VIEWS} views of {hook_overhead.IMAGE_SIZE}x{hook_overhead.IMAGE_SIZE}), "
        "default "
        f"save intervals (losses every {LOSS_SAVE_INTERVAL} steps), TF {tf.__version__} on CPU "
        f"({os.cpu_count()} cores); "
        f"{REPEATS} runs per scenario. Target: at most one save interval ({LOSS_SAVE_INTERVAL} steps at the "
        "measured step time) + 1 s.",
        "",
        "| scenario | condition holds from step | signalled at step | seconds to signal (median / max) "
        "| s/step | target (s) | managed Debugger |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "exploding": "ExplodingTensor (NaN after step 23), evaluator thread",
        "loss": "LossNotDecreasing (learning rate 0), evaluator thread",
        "process": "ExplodingTensor (NaN after step 23), evaluator process (polls every 1 s)",
    }
    for key, label in labels.items():
        runs = results[key]
        seconds = [run["seconds"] for run in runs]
        step_seconds = statistics.median(run["step_seconds"] for run in runs)
        target = LOSS_SAVE_INTERVAL * step_seconds + 1
        lines.append(
            f"| {label} | {runs[0]['condition_step']:.0f} | {runs[0]['signal_step']:.0f} | "
            f"{statistics.median(seconds):.2f} / {max(seconds):.2f} | {step_seconds:.3f} | {target:.2f} | "
            f"~{MANAGED_DEBUGGER_SECONDS} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(main())
