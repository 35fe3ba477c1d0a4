"""Time to stop: seconds from the bad step to the stop decision, the stop Lambda's decision core included.

Run: ``.venv/bin/python -m bench.time_to_stop`` (or ``python -m bench time_to_stop``, which rewrites only
this section of docs/benchmarks.md).

The reference model (``optimized`` preset) trains on one batch of 32 rendered designs with the default save
intervals (losses every 10 steps) and the production setup (writer + evaluator thread). The clock starts
when the bad step has ended (``on_train_batch_end``: the step whose loss is NaN, or the step at which the
rule's condition first holds) and stops when the stop Lambda's decision core
(``lambdas/stop_training_job/decision.py``: ``interpret_event`` -> ``screen`` -> ``decide``, for a tagged
job that is ``InProgress``) has decided STOP on the event the container emitted -- what the Lambda would
decide, minus EventBridge's own delivery. Scenarios:

- ``ExplodingTensor``: NaN written into a kernel after step 23, so the loss of step 24 is NaN. The loss is
  known at every step and the writer saves the step at which it turned non-finite off schedule, so the
  signal needs no wait for the next loss save (step 30): the target is the step itself;
- ``LossNotDecreasing`` at its defaults, learning rate 0, a validation (one batch) every 10 steps: the
  validation loss never moves; the condition holds at a validation step, so this is the pipeline's own
  latency (validate, write the step, read it, evaluate, signal, decide);
- the first scenario with the evaluator as a separate process (``python -m training.debugger.evaluator``,
  polling every second), the alternative to the thread.

Each scenario runs ``REPEATS`` times on a freshly built trainer; the table shows the median and the maximum,
and the training step during which the decision landed (0: before the step after the bad one ended).
"""

from __future__ import annotations

import datetime
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
from lambdas.stop_training_job import decision
from training import trainer
from training.debugger import config, evaluator, provenance, signals, writer

COMMAND = ".venv/bin/python -m bench.time_to_stop"
REPEATS = 5
NAN_AFTER_STEP = 23
BAD_LOSS_STEP = NAN_AFTER_STEP + 1  # the first step computed with the NaN kernel
LOSS_SAVE_INTERVAL = 10  # the default losses schedule (config.default_hook_config)
VALIDATION_INTERVAL = 10  # LossNotDecreasing judges validation losses (one batch, every 10 steps)
# Managed Debugger rules run in their own processing job that polls the uploaded trial; AWS users report
# minutes between a condition and the rule's IssuesFound. Not measured here (managed Debugger is closed to
# new customers), an order of magnitude only.
MANAGED_DEBUGGER_SECONDS = 120
JOB = signals.JobIdentity(
    name="bench-time-to-stop",
    arn="arn:aws:sagemaker:us-east-1:123456789012:training-job/bench-time-to-stop",
    signing_key=provenance.new_signing_key(),
)


class StepClock(keras.callbacks.Callback):
    """Records when each step ended; optionally poisons a kernel with NaN after a given step."""

    def __init__(self, nan_after_step: int | None = None) -> None:
        super().__init__()
        self.ended: dict[int, float] = {}
        self.latest = 0
        self.nan_after_step = nan_after_step

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.ended[batch] = time.perf_counter()
        self.latest = batch
        if batch == self.nan_after_step:
            kernel = self.model.autoencoder.get_layer("encoder_conv_1").kernel
            kernel.assign(tf.fill(kernel.shape, np.nan))


class StopAfterDecision(keras.callbacks.Callback):
    """Ends the run a few steps after the decision (as a stop would): no repeat runs longer than needed."""

    def __init__(self, decided: threading.Event, extra_steps: int = 3) -> None:
        super().__init__()
        self.decided = decided
        self.extra_steps = extra_steps
        self.should_stop = False

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.decided.is_set():
            self.extra_steps -= 1
            self.should_stop = self.extra_steps <= 0


class Decider:
    """The stop Lambda's decision core on each event, with the facts it would look up: the job exists, is
    ``InProgress`` and carries the opt-in tag. Records when (and during which step) it first decided STOP."""

    def __init__(self, clock: StepClock) -> None:
        self.clock = clock
        self.config = decision.Config()
        self.tags = {decision.DEFAULT_TAG_KEY: decision.DEFAULT_TAG_VALUE}
        self.description = {
            "TrainingJobName": JOB.name,
            "TrainingJobArn": JOB.arn,
            "TrainingJobStatus": "InProgress",
            "HyperParameters": {decision.SIGNING_KEY_HYPERPARAMETER: JOB.signing_key},
        }
        self.decided = threading.Event()
        self.seconds: float | None = None
        self.during_step: int | None = None
        self.rule_step: int | None = None

    def event(self, envelope: object) -> None:
        facts = decision.interpret_event(envelope, self.config)
        if isinstance(facts, decision.IgnoredEvent):
            return
        now = datetime.datetime.now(datetime.UTC)
        result = decision.decide(facts, self.description, self.tags, self.config, now=now)
        if result.action is decision.Action.STOP and not self.decided.is_set():
            self.seconds = time.perf_counter()
            self.during_step = self.clock.latest + 1
            self.rule_step = result.finding.step if result.finding else None
            self.decided.set()

    def signal(self, rule_signal: signals.RuleSignal) -> None:
        if rule_signal.status is signals.RuleStatus.ISSUES_FOUND:
            self.event(signals.event_envelope(JOB, rule_signal))


def _step_seconds(clock: StepClock, last: int) -> float:
    return statistics.median(
        clock.ended[step] - clock.ended[step - 1] for step in range(2, last + 1) if step - 1 in clock.ended
    )


def _result(clock: StepClock, decider: Decider, bad_step: int) -> dict[str, float]:
    if decider.seconds is None or decider.during_step is None or decider.rule_step is None:
        raise RuntimeError("no stop decision")
    return {
        "bad_step": float(bad_step),
        "rule_step": float(decider.rule_step),
        "seconds": decider.seconds - clock.ended[bad_step],
        "steps_late": float(decider.during_step - bad_step - 1),
        "step_seconds": _step_seconds(clock, bad_step),
    }


def run_thread(
    views: tf.Tensor, probe: writer.Probe, root: Path, *, rule: str, learning_rate: float
) -> dict[str, float]:
    built = hook_overhead.build_trainer(learning_rate=learning_rate, records=True)
    clock = StepClock(NAN_AFTER_STEP if rule == "ExplodingTensor" else None)
    decider = Decider(clock)
    rule_evaluator = evaluator.RuleEvaluator(
        config.parse_rule_configurations(rule),
        dispatcher=signals.SignalDispatcher([signals.CallbackSink(decider.signal)]),
        log=hook_overhead.quiet,
    )
    stopper = StopAfterDecision(decider.decided)
    hook = config.default_hook_config(str(root / f"{rule}-{time.monotonic_ns()}"))
    validates = rule == "LossNotDecreasing"  # judged on validation losses at its defaults
    trainer.fit(
        built,
        tf.data.Dataset.from_tensors(views).repeat(),
        total_steps=300,
        validation_batches=tf.data.Dataset.from_tensors(views) if validates else None,
        validation_interval=VALIDATION_INTERVAL if validates else 0,
        validation_steps=1,
        callbacks=[
            clock,
            writer.DebuggerTensorWriter(
                hook, probe=probe, listeners=[rule_evaluator], log=hook_overhead.quiet
            ),
            stopper,
        ],
        should_stop=lambda: stopper.should_stop,
    )
    if decider.rule_step is None:
        raise RuntimeError(f"{rule} did not lead to a stop decision: {rule_evaluator.snapshot()}")
    bad_step = BAD_LOSS_STEP if rule == "ExplodingTensor" else decider.rule_step
    return _result(clock, decider, bad_step)


def run_process(views: tf.Tensor, probe: writer.Probe, root: Path) -> dict[str, float]:
    """ExplodingTensor with the evaluator in its own process; its events file line goes to the decision."""
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
            JOB.name or "",
            "--job-arn",
            JOB.arn or "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "SMDEBUG_LOG_LEVEL": "error", provenance.SIGNING_KEY_ENV: JOB.signing_key or ""},
    )
    clock = StepClock(NAN_AFTER_STEP)
    decider = Decider(clock)
    finished = threading.Event()

    def watch() -> None:
        offset = 0
        while not finished.is_set() and not decider.decided.is_set():
            if events_file.exists():
                data = events_file.read_bytes()
                end = data.rfind(b"\n") + 1
                for line in data[offset:end].splitlines():
                    decider.event(json.loads(line))
                offset = end
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stopper = StopAfterDecision(decider.decided)
    try:
        trainer.fit(
            built,
            tf.data.Dataset.from_tensors(views).repeat(),
            total_steps=300,
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
    return _result(clock, decider, BAD_LOSS_STEP)


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


def _steps_text(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.0f}" if low == high else f"{low:.0f}-{high:.0f}"


def main() -> str:
    results = measure()
    lines = [
        "## Time to stop: from the bad step to the stop decision",
        "",
        f"Command: `{COMMAND}` -- `optimized` preset, batch of {hook_overhead.BATCH_SIZE} rendered designs "
        f"({hook_overhead.NUM_VIEWS} views of {hook_overhead.IMAGE_SIZE}x{hook_overhead.IMAGE_SIZE}), "
        f"default save intervals (losses every {LOSS_SAVE_INTERVAL} steps), TF {tf.__version__} on CPU "
        f"({os.cpu_count()} cores); {REPEATS} runs per scenario. The clock runs from the end of the bad "
        "step to the stop decision of the stop Lambda's decision core (EventBridge's own delivery not "
        "included). *Steps late*: training steps that ended after the one following the bad step before "
        "the decision (0: the decision landed within the step after the bad one). Managed Debugger: an "
        f"order of magnitude reported by its users (~{MANAGED_DEBUGGER_SECONDS} s), not measured here.",
        "",
        "| scenario | bad step | rule's step | seconds to decision (median / max) | steps late (min-max) "
        "| s/step (median) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "exploding": "ExplodingTensor (loss NaN from step 24), evaluator thread",
        "loss": "LossNotDecreasing (learning rate 0, validation every 10 steps), evaluator thread",
        "process": "ExplodingTensor (loss NaN from step 24), evaluator process (polls every 1 s)",
    }
    for key, label in labels.items():
        runs = results[key]
        seconds = [run["seconds"] for run in runs]
        lines.append(
            f"| {label} | {_steps_text([run['bad_step'] for run in runs])} | "
            f"{_steps_text([run['rule_step'] for run in runs])} | "
            f"{statistics.median(seconds):.3f} / {max(seconds):.3f} | "
            f"{_steps_text([run['steps_late'] for run in runs])} | "
            f"{statistics.median(run['step_seconds'] for run in runs):.3f} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(main())
