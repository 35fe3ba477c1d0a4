"""The debugger in a training job: hyperparameters, SageMaker's files and the environment -> callbacks.

``training/train.py`` calls ``resolve`` right after the hyperparameters are parsed (before TensorFlow is
imported: a bad rule list or hook document is one ``error:`` line and exit 2, like any bad hyperparameter),
then ``build_callbacks`` and hands the callbacks to ``job.run``.

What turns what on (docs/debugger.md has the full table):

- ``debugger_rules`` (a ``DebugRuleConfigurations`` JSON list, or rule names): the in-container evaluator.
- Tensors are recorded when rules are configured, or SageMaker wrote ``debughookconfig.json`` (a job with a
  ``DebugHookConfig``), or ``debugger_hook_config`` / ``debugger_out_dir`` is given. They go to the hook
  document's ``LocalPath`` (SageMaker uploads it to ``S3OutputPath``), else ``<opt_ml>/output/tensors``;
  ``debugger_out_dir`` (a folder or ``s3://``) overrides both.
- Stop signals: the ``rule:<Name>=1`` line always; ``events:PutEvents`` when ``debugger_put_events`` is true
  (SageMaker jobs with network access; needs ``TRAINING_JOB_NAME``/``TRAINING_JOB_ARN``, which SageMaker
  sets); the JSON-lines file named by ``AUTOSTOP_RULE_EVENTS_FILE`` (the local sweep runner sets it);
  self-termination after ``debugger_self_terminate_after`` seconds (0: off).
- At the end the final statuses are also written to ``<output data dir>/debugger-rules.json``.
- Cross-job rung reports (``rung_reports``) when the job has the ``autostop_cross_job`` hyperparameter (a
  sweep launched with a ``cross_job`` section): each validation that passes a rung sends the signed
  objective there with ``events:PutEvents``. It needs the job's name and signing key (a clear error
  otherwise), neither rules nor recorded tensors.

Only ``build_callbacks`` imports TensorFlow (through the writer).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from training import log_lines
from training.debugger import config, rung_reports, signals

EVENTS_FILE_ENV = "AUTOSTOP_RULE_EVENTS_FILE"
STATUSES_FILE_NAME = "debugger-rules.json"
# Collections that need the probe batch (the bottleneck and layer outputs of fixed designs).
PROBE_COLLECTIONS = (config.EMBEDDINGS, config.OUTPUTS)


def _print_line(line: str) -> None:
    log_lines.write_line(line)  # whole and alone, whichever thread prints


@dataclasses.dataclass(frozen=True)
class DebuggerSettings:
    """What this job records and evaluates, and where its signals go. ``hook`` None: nothing recorded."""

    hook: config.HookConfig | None
    rules: tuple[config.RuleConfiguration, ...] = ()
    job: signals.JobIdentity = dataclasses.field(default_factory=signals.JobIdentity)
    put_events: bool = False
    events_file: Path | None = None
    probe_size: int = 32
    self_terminate_after_s: float | None = None
    cross_job: rung_reports.CrossJobReporting | None = None


def resolve(
    hyperparameters: Any,
    *,
    config_dir: Path,
    default_out_dir: Path,
    environ: Mapping[str, str],
    opt_ml_root: Path = Path(config.SAGEMAKER_OPT_ML),
) -> DebuggerSettings:
    """Read the debugger's settings; raises ``DebuggerConfigError``/``RuleConfigurationError`` (ValueErrors)
    with a message naming the setting. ``hyperparameters`` is a ``training.hparams.HyperParameters``.

    ``default_out_dir`` and ``opt_ml_root`` carry the container's root override (``AUTOSTOP_OPT_ML``,
    ``AUTOSTOP_TENSORS_DIR``): a hook document without ``LocalPath``, or with one under ``/opt/ml``, writes
    there, never to the literal ``/opt/ml``."""
    rules = config.parse_rule_configurations(hyperparameters.debugger_rules)
    document_text = hyperparameters.debugger_hook_config or None
    out_dir = hyperparameters.debugger_out_dir or None
    if out_dir is not None and out_dir.startswith("s3://") and len(out_dir) <= len("s3://"):
        raise config.DebuggerConfigError("debugger_out_dir must name a bucket: s3://<bucket>/<prefix>")
    records = bool(rules) or document_text is not None or out_dir is not None
    records = records or (config_dir / config.DEBUG_HOOK_CONFIG_FILE_NAME).is_file()
    hook = (
        config.load_hook_config(
            config_dir=config_dir,
            default_out_dir=str(default_out_dir),
            document_text=document_text,
            out_dir=out_dir,
            opt_ml_root=str(opt_ml_root),
        )
        if records
        else None
    )
    try:
        job = signals.JobIdentity.from_environment(environ)
    except ValueError as error:
        raise config.DebuggerConfigError(f"{signals.JOB_NAME_ENV}/{signals.JOB_ARN_ENV}: {error}") from None
    if hyperparameters.debugger_put_events and not job.named:
        raise config.DebuggerConfigError(
            f"debugger_put_events needs the job's name or ARN ({signals.JOB_NAME_ENV} / "
            f"{signals.JOB_ARN_ENV}, set by SageMaker)"
        )
    try:
        cross_job = rung_reports.reporting_from(environ)
    except rung_reports.CrossJobConfigError as error:
        raise config.DebuggerConfigError(str(error)) from None
    if cross_job is not None and (job.name is None or job.signing_key is None):
        raise config.DebuggerConfigError(
            "autostop_cross_job needs the job's name (TRAINING_JOB_NAME, set by SageMaker) and its signing "
            "key (autostop_signing_key, set by the launcher): the stop Lambda refuses unsigned rung reports"
        )
    events_file = environ.get(EVENTS_FILE_ENV) or None
    terminate_after = hyperparameters.debugger_self_terminate_after
    return DebuggerSettings(
        hook=hook,
        rules=rules,
        job=job,
        put_events=bool(hyperparameters.debugger_put_events) and bool(rules),
        events_file=Path(events_file) if events_file and rules else None,
        probe_size=hyperparameters.debugger_probe_size,
        self_terminate_after_s=terminate_after if terminate_after and rules else None,
        cross_job=cross_job,
    )


class RuleStatusFile:
    """Writes the evaluator's final statuses (SageMaker's ``DebugRuleEvaluationStatuses`` shape) to a file."""

    def __init__(self, evaluator: Any, path: Path, log: Callable[[str], None]) -> None:
        self.evaluator = evaluator
        self.path = path
        self.log = log

    def emit(self, rule_signal: signals.RuleSignal) -> None:
        """Statuses are written once, when the evaluator has finished (``close``)."""

    def close(self) -> None:
        statuses = [state.to_json_dict() for state in self.evaluator.snapshot()]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(f".{self.path.name}.tmp")
            temporary.write_text(json.dumps(statuses, indent=2) + "\n", encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as error:
            self.log(f"debugger: could not write {self.path}: {error}")


def build_callbacks(
    settings: DebuggerSettings,
    *,
    hyperparameters: Any,
    train_channel: Path,
    output_data_dir: Path | None,
    log: Callable[[str], None] = _print_line,
) -> Sequence[Any]:
    """The writer callback (with the evaluator listening) when tensors are recorded, and the rung reports'
    callback when the job is compared with its sweep; nothing when neither is on."""
    callbacks: list[Any] = []
    if settings.hook is not None:
        callbacks.append(
            _tensor_writer(settings, settings.hook, hyperparameters, train_channel, output_data_dir, log)
        )
    if settings.cross_job is not None:
        from training.debugger import rung_callback

        sender = signals.EventBridgeSink(settings.job, log=log)
        reporter = rung_reports.RungReporter(settings.cross_job, job=settings.job, sender=sender, log=log)
        callbacks.append(rung_callback.RungReportCallback(reporter))
        rungs = ", ".join(str(rung) for rung in settings.cross_job.rungs) or "none (the budget ends first)"
        rejudged = settings.cross_job.rejudge and settings.cross_job.rungs
        again = ", then again at every validation" if rejudged else ""
        log(f"cross-job: reporting {settings.cross_job.metric} at rungs {rungs}{again}")
    return callbacks


def _tensor_writer(
    settings: DebuggerSettings,
    hook_config: config.HookConfig,
    hyperparameters: Any,
    train_channel: Path,
    output_data_dir: Path | None,
    log: Callable[[str], None],
) -> Any:
    """The Debugger writer, with the in-container evaluator listening when rules are configured."""
    from training import data
    from training.debugger import evaluator as evaluator_module
    from training.debugger import writer

    hook = hook_config.with_required(evaluator_module.required_collections(settings.rules))
    probe = None
    if any(hook.collection(name) is not None for name in PROBE_COLLECTIONS):
        # The first designs of the training channel, balanced across families: the same on every run.
        examples = data.load_examples(
            train_channel, image_size=hyperparameters.image_size, num_views=hyperparameters.num_views
        )
        probe = writer.probe_from_dataset(examples, size=settings.probe_size)
    listeners = []
    if settings.rules:
        sinks = evaluator_module.build_sinks(
            job=settings.job,
            put_events=settings.put_events,
            events_file=settings.events_file,
            self_terminate_after_s=settings.self_terminate_after_s,
            log=log,
        )
        dispatcher = signals.SignalDispatcher(sinks, log=log)
        rule_evaluator = evaluator_module.RuleEvaluator(settings.rules, dispatcher=dispatcher, log=log)
        if output_data_dir is not None:
            dispatcher.sinks.append(RuleStatusFile(rule_evaluator, output_data_dir / STATUSES_FILE_NAME, log))
        listeners.append(rule_evaluator)
        names = ", ".join(rule.name for rule in settings.rules)
        log(f"debugger: evaluating rules {names} in the container")
    return writer.DebuggerTensorWriter(hook, probe=probe, listeners=listeners, log=log)
