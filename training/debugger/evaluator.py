"""The in-container rule evaluator: follows the growing trial, keeps per-rule statuses, signals a stop once.

Configuration is SageMaker's own ``DebugRuleConfigurations`` shape, so one sweep spec serves managed Debugger
(where an account has it) and the container::

    [{"RuleConfigurationName": "LossNotDecreasing",
      "RuleParameters": {"rule_to_invoke": "LossNotDecreasing", "num_steps": "20", "mode": "TRAIN"}},
     {"RuleConfigurationName": "NoClusters", "RuleParameters": {"rule_to_invoke": "LatentClusterRule"}}]

(other keys of an entry -- ``RuleEvaluatorImage``, ``InstanceType``... -- are for managed rules and ignored;
``rule_to_invoke`` defaults to the configuration name), or the shorthand ``"LossNotDecreasing,Overfit"``
(each rule with its documented defaults).

Statuses follow SageMaker: every rule starts ``InProgress``; ``IssuesFound`` when its condition holds (then
the rule is no longer evaluated, and the stop signal goes out exactly once); at the end of training every rule
still InProgress becomes ``NoIssuesFound``. ``Error`` when a rule cannot run (unknown rule, bad parameters) or
raises while evaluating: never a false IssuesFound, and never an exception into training. If the trial itself
cannot be read, rules end in Error rather than a NoIssuesFound nobody checked.

Why a thread beside training (``bench/hook_overhead.py`` and ``bench/time_to_stop.py`` measure it against a
separate process): the writer wakes the evaluator the moment a step is on disk, so a rule is evaluated
milliseconds after its step is written, with no polling delay and no second TensorFlow-sized process;
evaluating a step costs milliseconds (NumPy over the saved tensors, mostly outside the GIL). The same class
also follows a trial written by another process (``follow``, and ``python -m training.debugger.evaluator``),
then the end marker ends it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from training import log_lines
from training.debugger import config, layout, signals
from training.debugger import rules as rules_module

RuleStatus = signals.RuleStatus
DEFAULT_POLL_INTERVAL_S = 1.0
DEFAULT_FINISH_TIMEOUT_S = 120.0


def _print_line(line: str) -> None:
    log_lines.write_line(line)  # whole and alone, whichever thread prints


def required_collections(
    configurations: Iterable[config.RuleConfiguration],
    registry: Mapping[str, type[rules_module.AutostopRule]] = rules_module.RULES,
) -> list[str]:
    """The collections the configured rules read (the writer adds them when a hook config omits them)."""
    needed: list[str] = []
    for configuration in configurations:
        rule_class = registry.get(configuration.rule_to_invoke)
        if rule_class is not None:
            needed.extend(rule_class.REQUIRED_COLLECTIONS)
    return list(dict.fromkeys(needed))


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass
class RuleState:
    configuration: config.RuleConfiguration
    status: RuleStatus = RuleStatus.IN_PROGRESS
    status_details: str = ""
    step: int | None = None
    finding: str = ""
    last_modified: datetime.datetime = dataclasses.field(default_factory=_utc_now)
    rule: rules_module.AutostopRule | None = dataclasses.field(default=None, repr=False)
    start_step: int = 0
    end_step: int | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "RuleConfigurationName": self.configuration.name,
            "RuleEvaluationStatus": self.status.value,
            "StatusDetails": self.status_details,
            "LastModifiedTime": signals.format_time(self.last_modified),
            "Step": self.step,
            "Finding": self.finding,
        }


def _evaluation_range(configuration: config.RuleConfiguration) -> tuple[int, int | None]:
    """``start_step`` / ``end_step`` of a rule configuration: the training steps it is evaluated at."""
    start = configuration.parameters.get("start_step", "0")
    end = configuration.parameters.get("end_step")
    start_step = rules_module.parse_int(start)
    end_step = None if end is None or end.strip().lower() in ("", "none") else rules_module.parse_int(end)
    if start_step < 0 or (end_step is not None and end_step <= start_step):
        raise ValueError(f"start_step/end_step must satisfy 0 <= start_step < end_step, got {start}, {end}")
    return start_step, end_step


class RuleEvaluator:
    """Evaluate configured rules on a trial as it grows; a ``writer.WriterListener`` for in-process use.

    In process: give it to ``DebuggerTensorWriter(listeners=[evaluator])``; it starts its thread when the
    trial exists, evaluates each step the writer reports, and on ``writing_ended`` finishes (final statuses)
    before training returns. Elsewhere: ``follow(path)`` runs the same loop until the trial's end marker.
    """

    def __init__(
        self,
        configurations: Sequence[config.RuleConfiguration],
        *,
        dispatcher: signals.SignalDispatcher,
        registry: Mapping[str, type[rules_module.AutostopRule]] = rules_module.RULES,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        finish_timeout_s: float = DEFAULT_FINISH_TIMEOUT_S,
        clock: Callable[[], datetime.datetime] = _utc_now,
        log: Callable[[str], None] = _print_line,
    ) -> None:
        if poll_interval_s <= 0:
            raise ValueError(f"poll_interval_s must be > 0, got {poll_interval_s}")
        self.configurations = tuple(configurations)
        self.dispatcher = dispatcher
        self.registry = registry
        self.poll_interval_s = poll_interval_s
        self.finish_timeout_s = finish_timeout_s
        self.clock = clock
        self.log = log
        self.states = [
            RuleState(configuration, last_modified=clock()) for configuration in self.configurations
        ]
        self.trial: Any = None
        self.trial_path: str | None = None
        self.first_global_step = 0
        self.last_evaluated_step = -1
        self.evaluation_seconds = 0.0  # time spent in rules (benchmarks)
        self._in_process = False
        self._trial_error: str | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._ended = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None

    # --- writer listener API (in-process) ---

    def writing_started(self, out_dir: str, first_step: int) -> None:
        self._in_process = True
        self.trial_path = out_dir
        self.first_global_step = layout.global_step(layout.TRAIN, first_step)
        self._thread = threading.Thread(target=self._run, name="debugger-rules", daemon=True)
        self._thread.start()

    def step_written(self, global_step_number: int) -> None:
        self._wake.set()

    def writing_ended(self) -> None:
        self._ended.set()
        self._wake.set()
        if self._thread is None:  # the writer never started: nothing was evaluated
            self._finalize(timed_out=False)
        else:
            self._thread.join(self.finish_timeout_s)
            if self._thread.is_alive():
                self.log(f"debugger: rule evaluation did not finish within {self.finish_timeout_s:g} s")
                self._finalize(timed_out=True)

    # --- following a trial written elsewhere ---

    def follow(self, path: str, *, deadline_s: float | None = None) -> list[RuleState]:
        """Evaluate the trial at ``path`` until its end marker (or the deadline), then finish."""
        from smdebug.core.access_layer import has_training_ended

        self.trial_path = path
        started = time.monotonic()
        while True:
            ended = has_training_ended(path)
            self._evaluate_available()
            if ended or (deadline_s is not None and time.monotonic() - started > deadline_s):
                break
            time.sleep(self.poll_interval_s)
        self._finalize(timed_out=not ended)
        return self.snapshot()

    # --- evaluation ---

    def snapshot(self) -> list[RuleState]:
        with self._lock:
            return [dataclasses.replace(state) for state in self.states]

    def statuses(self) -> dict[str, str]:
        return {state.configuration.name: state.status.value for state in self.snapshot()}

    def _run(self) -> None:
        try:
            while not self._ended.is_set():
                self._wake.wait(self.poll_interval_s)
                self._wake.clear()
                if not self._ended.is_set():
                    self._evaluate_available()
            self._evaluate_available()
        except Exception as error:  # the loop itself must not die silently
            self._trial_error = f"{type(error).__name__}: {error}"
            self.log(f"debugger: rule evaluation stopped: {error!r}")
        finally:
            self._finalize(timed_out=False)

    def _open_trial(self) -> bool:
        if self.trial is not None:
            return True
        if self.trial_path is None:
            return False
        from smdebug.core.access_layer import has_training_ended
        from smdebug.core.access_layer.utils import file_exists
        from smdebug.core.utils import get_path_to_collections
        from smdebug.trials import create_trial

        collections_file = get_path_to_collections(self.trial_path) + layout.COLLECTIONS_FILE_NAME
        if not file_exists(collections_file) and not has_training_ended(self.trial_path):
            return False
        self.trial = create_trial(self.trial_path)
        if self._in_process:
            # The writer is in this process and has flushed everything before the end marker: the extra
            # read smdebug makes after the marker (1 s later, for writers elsewhere) is not needed.
            self.trial._training_end_delay_refresh = 0
        self._start_rules()
        return True

    def _start_rules(self) -> None:
        for state in self.states:
            configuration = state.configuration
            rule_class = self.registry.get(configuration.rule_to_invoke)
            try:
                if rule_class is None:
                    known = ", ".join(sorted(self.registry))
                    raise rules_module.RuleConfigurationError(
                        f"rule_to_invoke {configuration.rule_to_invoke!r} is not implemented in the "
                        f"container (available: {known})"
                    )
                state.start_step, state.end_step = _evaluation_range(configuration)
                state.rule = rule_class.from_rule_parameters(self.trial, configuration.parameters)
            except Exception as error:
                self._set_status(state, RuleStatus.ERROR, f"ConfigurationError: {error}")
                continue
            self._emit(state)

    def _evaluate_available(self) -> None:
        try:
            if not self._open_trial():
                return
            steps = [step for step in self.trial.steps() if step > self.last_evaluated_step]
        except Exception as error:
            self._trial_error = f"{type(error).__name__}: {error}"
            self.log(f"debugger: cannot read the trial at {self.trial_path}: {error!r}")
            return
        self._trial_error = None
        for step in steps:
            if step >= self.first_global_step:
                self._evaluate_step(step)
            self.last_evaluated_step = step

    def _evaluate_step(self, step: int) -> None:
        from smdebug.exceptions import (
            NoMoreData,
            RuleEvaluationConditionMet,
            StepUnavailable,
            TensorUnavailable,
            TensorUnavailableForStep,
        )

        training_step = layout.training_step_of(step)
        for state in self.states:
            if state.status is not RuleStatus.IN_PROGRESS or state.rule is None:
                continue
            if training_step < state.start_step or (
                state.end_step is not None and training_step >= state.end_step
            ):
                continue
            started = time.perf_counter()
            try:
                state.rule.invoke(step)
            except RuleEvaluationConditionMet:
                name = state.configuration.name
                state.finding = state.rule.last_finding
                self.log(f"rule {name}: IssuesFound at step {training_step}: {state.finding}")
                self._set_status(
                    state,
                    RuleStatus.ISSUES_FOUND,
                    signals.condition_met_details(name, training_step),
                    training_step,
                )
            except (StepUnavailable, TensorUnavailable, TensorUnavailableForStep, NoMoreData):
                pass  # nothing for this rule at this step
            except Exception as error:
                self.log(
                    f"rule {state.configuration.name}: Error at step {training_step}: {error!r}\n"
                    + "".join(traceback.format_exception(error)[-3:]).rstrip()
                )
                self._set_status(
                    state, RuleStatus.ERROR, f"InternalError: {type(error).__name__}: {error}", training_step
                )
            finally:
                # smdebug's ``no_refresh`` (inside ``Rule.invoke``) has no try/finally: a rule that raises
                # would leave the shared trial frozen, blind to every later step, for every rule.
                self.trial.dynamic_refresh = True
                self.evaluation_seconds += time.perf_counter() - started

    def _set_status(
        self, state: RuleState, status: RuleStatus, details: str, step: int | None = None
    ) -> None:
        with self._lock:
            if state.status is not RuleStatus.IN_PROGRESS:
                return  # a status is final once it leaves InProgress: one signal per rule
            state.status = status
            state.status_details = details[: signals.STATUS_DETAILS_MAX_LENGTH]
            state.step = step
            state.last_modified = self.clock()
        self._emit(state)

    def _emit(self, state: RuleState) -> None:
        self.dispatcher.emit(
            signals.RuleSignal(
                rule_name=state.configuration.name,
                status=state.status,
                step=state.step,
                status_details=state.status_details,
                time=state.last_modified,
                finding=state.finding,
            )
        )

    def _finalize(self, *, timed_out: bool) -> None:
        if self._finished.is_set():
            return
        self._finished.set()
        if self.trial is None and self._trial_error is None:
            self._trial_error = (
                f"no trial at {self.trial_path}" if self.trial_path else "no tensors were written"
            )
        for state in self.states:
            if state.status is not RuleStatus.IN_PROGRESS:
                continue
            if timed_out:
                self._set_status(state, RuleStatus.ERROR, "InternalError: evaluation did not finish in time")
            elif self._trial_error is not None:
                self._set_status(
                    state, RuleStatus.ERROR, f"InternalError: trial unreadable: {self._trial_error}"
                )
            else:
                self._set_status(state, RuleStatus.NO_ISSUES_FOUND, "")
        self.dispatcher.close()
        for state in self.snapshot():
            at_step = f" at step {state.step}" if state.step is not None else ""
            details = f": {state.status_details}" if state.status_details else ""
            self.log(f"rule {state.configuration.name}: {state.status.value}{at_step}{details}")


def build_sinks(
    *,
    job: signals.JobIdentity,
    put_events: bool,
    events_file: Path | None,
    self_terminate_after_s: float | None = None,
    log: Callable[[str], None] = _print_line,
) -> list[signals.Sink]:
    """The usual sinks: the metric line always; PutEvents on SageMaker; a local file for the local runner.

    Self-termination comes first, so its grace period starts the moment the rule fires; PutEvents delivers
    on its own thread, so its retries delay neither the other sinks nor the evaluation of later steps."""
    sinks: list[signals.Sink] = []
    if self_terminate_after_s is not None:
        sinks.append(signals.SelfTermination(self_terminate_after_s, log=log))
    sinks.append(signals.MetricLogLineSink(write=log))
    if events_file is not None:
        sinks.append(signals.JsonLinesSink(events_file, job))
    if put_events:
        sinks.append(signals.EventBridgeSink(job, log=log))
    return sinks


def main(argv: Sequence[str] | None = None) -> int:
    """Evaluate rules on a trial written by another process (or already finished), until its end marker."""
    parser = argparse.ArgumentParser(prog="python -m training.debugger.evaluator", description=main.__doc__)
    parser.add_argument("--trial", required=True, help="trial folder or s3:// URI")
    parser.add_argument("--rules", required=True, help="DebugRuleConfigurations JSON list, or rule names")
    parser.add_argument("--events-file", type=Path, help="append rule events (JSON lines) to this file")
    parser.add_argument("--put-events", action="store_true", help="send IssuesFound with events:PutEvents")
    parser.add_argument("--job-name", help="training job name (default: TRAINING_JOB_NAME)")
    parser.add_argument("--job-arn", help="training job ARN (default: TRAINING_JOB_ARN)")
    parser.add_argument("--poll-interval", type=float, default=DEFAULT_POLL_INTERVAL_S)
    parser.add_argument("--deadline", type=float, default=None, help="give up after this many seconds")
    arguments = parser.parse_args(argv)
    import os

    try:
        configurations = config.parse_rule_configurations(arguments.rules)
        environment_job = signals.JobIdentity.from_environment(os.environ)
        job = signals.JobIdentity(
            name=arguments.job_name or environment_job.name, arn=arguments.job_arn or environment_job.arn
        )
        sinks = build_sinks(job=job, put_events=arguments.put_events, events_file=arguments.events_file)
    except ValueError as error:
        log_lines.write_error_line(f"error: {error}")
        return 2
    evaluator = RuleEvaluator(
        configurations, dispatcher=signals.SignalDispatcher(sinks), poll_interval_s=arguments.poll_interval
    )
    states = evaluator.follow(arguments.trial, deadline_s=arguments.deadline)
    return 1 if any(state.status is RuleStatus.ISSUES_FOUND for state in states) else 0


if __name__ == "__main__":
    sys.exit(main())
