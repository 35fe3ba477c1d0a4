"""The local backend: every job a subprocess with SageMaker's container contract; bad jobs stop themselves.

Why subprocesses with the container's contract rather than calling the training code in-process: the job
that runs here is the job that runs on SageMaker (``python -m training.train`` reading
``<opt_ml>/input/config/hyperparameters.json`` with string values, channels from ``SM_CHANNEL_*``, models to
``SM_MODEL_DIR``, ``TRAINING_JOB_NAME``/``TRAINING_JOB_ARN`` set), and it is stopped the way SageMaker stops
it (SIGTERM: the job checkpoints, saves its models and exits 0). A crash takes down one job, never the sweep.

Each job lives in ``runs/<sweep>/jobs/<job>/``: ``opt_ml/`` (the container's ``/opt/ml``), ``job.log`` (its
whole output), ``rule-events.jsonl`` (the in-container evaluator's local sink: one EventBridge-shaped event
per rule status change, docs/debugger.md) and, once stopped, ``tags.json`` (the tags the stop Lambda would
have added: ``autostop:stopped-by-rule``, ``autostop:stopped-at``, ``autostop:stop-source``).

The stop path is the stop Lambda's, with local adapters for its two AWS calls. Every event the job's
evaluator writes goes through ``decision.interpret_event`` -> ``decision.screen`` -> ``decision.decide`` (the
same functions the Lambda calls), with the job's local "DescribeTrainingJob" (its name, a local ARN, its
status: InProgress while it runs and has not been signalled, and its signing key: every local job gets a
fresh random key in ``AUTOSTOP_SIGNING_KEY``, its evaluator signs each event with it and the decision
verifies the signature exactly as the stop Lambda does, so a file path is never trusted for who wrote an
event) and "ListTags" (the opt-in tag
``autostop=enabled``, the sweep tag, the spec's tags). A ``STOP`` decision becomes SIGTERM to that job. The
same holds for the ``rule:<Name>=1`` metric line, turned into the CloudWatch alarm event the per-job alarm
would send (``signal_sources`` includes ``alarm``). Duplicate and late signals are no-ops exactly as in the
Lambda (``job_not_in_progress``).

At most ``max_parallel_jobs`` run at once; the rest wait in spec order. Ctrl-C (SIGINT, or SIGTERM to the
runner) stops every running job with SIGTERM (each checkpoints and exits), marks the rest not started, and
still writes the report. Children run in their own sessions, so a terminal's Ctrl-C reaches only the runner,
which then stops them in order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from lambdas.stop_training_job import cross_job, decision
from training.debugger import provenance
from training.sweep import progress as progress_module
from training.sweep import report as report_module
from training.sweep import spec as spec_module
from training.sweep.rung_store import SqliteRungStore

LOCAL_REGION = "local"
LOCAL_ACCOUNT = "000000000000"
HOST_SUFFIX = "/algo-1"
ALARM_METRIC_NAMESPACE = "/aws/sagemaker/TrainingJobs"
EVENTS_FILE_NAME = "rule-events.jsonl"
STATUSES_FILE_NAME = (
    "debugger-rules.json"  # written by the container at the end (training/debugger/wiring.py)
)
LOG_FILE_NAME = "job.log"
TAGS_FILE_NAME = "tags.json"
SIGNAL_SOURCES = ("events", "alarm")
DEFAULT_STOP_TIMEOUT_S = 120.0  # SageMaker's SIGTERM -> SIGKILL window
DEFAULT_POLL_INTERVAL_S = 0.1
SWEEP_TAG_KEY = "autostop:sweep"
# A job stopped by the cross-job comparison is recorded and tagged like a rule stop, under this name.
CROSS_JOB_RULE = "CrossJob"
CROSS_JOB_SOURCE = "autostop.sweep"
RUNG_STORE_FILE_NAME = "rungs.sqlite"

# The training container's log lines (docs/training.md, docs/debugger.md).
TRAIN_LINE = re.compile(r"^step=(?P<step>[0-9]+) loss=(?P<loss>\S+) ssim=(?P<ssim>\S+) l2=(?P<l2>\S+)")
VALIDATION_LINE = re.compile(
    r"^step=(?P<step>[0-9]+) val_loss=(?P<loss>\S+) val_ssim=(?P<ssim>\S+) val_l2=(?P<l2>\S+)"
)
ENDED_LINE = re.compile(r"^training ended step=(?P<step>[0-9]+) stopped=(?P<stopped>true|false)")
RULE_METRIC_LINE = re.compile(r"^rule:(?P<rule>[A-Za-z0-9][A-Za-z0-9_.:=+@/-]{0,255})=(?P<value>[0-9]+)$")
ERROR_LINE = re.compile(r"^error: (?P<message>.+)$")


def local_job_arn(job_name: str) -> str:
    """A training-job ARN for a local job (region ``local``, account zeros): the decision checks ARNs."""
    return f"arn:aws:sagemaker:{LOCAL_REGION}:{LOCAL_ACCOUNT}:training-job/{job_name}"


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a running process (Linux ``/proc``); ``None`` where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of proc(5)
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def alarm_event(
    job_name: str, rule_name: str, *, alarm_prefix: str, moment: datetime.datetime
) -> dict[str, Any]:
    """The CloudWatch Alarm State Change the per-job alarm ``<prefix><job>/<rule>`` would send (ALARM)."""
    name = f"{alarm_prefix}{job_name}/{rule_name}"
    timestamp = moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": decision.CLOUDWATCH_DETAIL_TYPE,
        "source": decision.CLOUDWATCH_SOURCE,
        "account": LOCAL_ACCOUNT,
        "time": moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": LOCAL_REGION,
        "resources": [f"arn:aws:cloudwatch:{LOCAL_REGION}:{LOCAL_ACCOUNT}:alarm:{name}"],
        "detail": {
            "alarmName": name,
            "state": {
                "value": decision.ALARM_STATE,
                "reason": f"Threshold Crossed: the job printed rule:{rule_name}=1",
                "timestamp": timestamp,
            },
            "previousState": {"value": "OK", "timestamp": timestamp},
            "configuration": {
                "metrics": [
                    {
                        "id": "rule",
                        "metricStat": {
                            "metric": {
                                "namespace": ALARM_METRIC_NAMESPACE,
                                "name": f"rule:{rule_name}",
                                "dimensions": {"Host": job_name + HOST_SUFFIX},
                            },
                            "period": 60,
                            "stat": "Maximum",
                        },
                        "returnData": True,
                    }
                ]
            },
        },
    }


# --- The container's debugger settings for a local job ---

RULES_HYPERPARAMETER = "debugger_rules"
EVENTS_FILE_ENV = "AUTOSTOP_RULE_EVENTS_FILE"


def debugger_configuration(
    spec: spec_module.SweepSpec, job_directory: Path
) -> tuple[dict[str, str], dict[str, str]]:
    """Hyperparameters and environment that turn the in-container evaluator on with the local sink."""
    hyperparameters = {RULES_HYPERPARAMETER: json.dumps(spec.rule_configurations(), separators=(",", ":"))}
    environment = {EVENTS_FILE_ENV: str(job_directory / EVENTS_FILE_NAME)}
    return hyperparameters, environment


def write_debug_hook_config(spec: spec_module.SweepSpec, config_directory: Path) -> None:
    """``debughookconfig.json`` as SageMaker writes it for a job with a ``DebugHookConfig`` (collections)."""
    if not spec.debugger_collections:
        return
    document = {
        "LocalPath": str(config_directory.parent.parent / "output" / "tensors"),
        "CollectionConfigurations": [
            {"CollectionName": name, "CollectionParameters": dict(parameters)}
            for name, parameters in spec.debugger_collections.items()
        ],
    }
    (config_directory / "debughookconfig.json").write_text(json.dumps(document, indent=2), encoding="utf-8")


# --- One running job ---


@dataclasses.dataclass
class LocalJob:
    """A job of the sweep: its configuration, its process once started, what it reported so far."""

    config: spec_module.JobConfig
    directory: Path
    tags: dict[str, str]
    record: report_module.JobRecord
    view: progress_module.JobView
    process: subprocess.Popen[str] | None = None
    status: str = "Queued"  # the local DescribeTrainingJob status: InProgress, Stopping, Completed, ...
    started: float = 0.0
    lines: queue.Queue[tuple[float, str] | None] = dataclasses.field(default_factory=queue.Queue)
    reader: threading.Thread | None = None
    events_offset: int = 0
    stop_decision: decision.Decision | None = None
    stop_signalled_at: float | None = None
    killed: bool = False
    # The job's own key: its evaluator signs every event with it (AUTOSTOP_SIGNING_KEY) and the decision
    # verifies each event against it, as the stop Lambda does with the key DescribeTrainingJob returns.
    signing_key: str = dataclasses.field(default_factory=provenance.new_signing_key, repr=False)
    interrupted: bool = False
    first_train: tuple[float, int] | None = None
    last_train: tuple[float, int] | None = None
    ended_step: int | None = None
    error_line: str | None = None
    last_rung_step: int = 0  # the latest validation step the cross-job comparison has seen
    would_stop_at_rung: int | None = None  # a dry run's cross-job stop, said at this rung
    stopped_by_sweep: bool = False  # a rule's decision or the cross-job comparison stopped it

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def description(self) -> dict[str, Any]:
        """What ``DescribeTrainingJob`` would answer about this job now."""
        return {
            "TrainingJobName": self.name,
            "TrainingJobArn": local_job_arn(self.name),
            "TrainingJobStatus": self.status,
            "HyperParameters": {decision.SIGNING_KEY_HYPERPARAMETER: self.signing_key},
        }


def _read_output(
    process: subprocess.Popen[str], log_path: Path, lines: queue.Queue[tuple[float, str] | None]
) -> None:
    """Copy the job's output to its log file and hand each line (with its arrival time) to the runner."""
    if process.stdout is None:
        raise ValueError("the job's output must be a pipe")
    with log_path.open("a", encoding="utf-8") as log:
        for line in process.stdout:
            log.write(line)
            log.flush()
            lines.put((time.monotonic(), line.rstrip("\n")))
    lines.put(None)


class LocalSweep:
    """Run a sweep's jobs as local subprocesses (see the module docstring)."""

    def __init__(
        self,
        spec: spec_module.SweepSpec,
        directory: Path,
        *,
        jobs: Sequence[spec_module.JobConfig] | None = None,
        python: str = sys.executable,
        progress: progress_module.Progress | None = None,
        signal_sources: Sequence[str] = ("events",),
        stop_jobs: bool = True,
        stop_timeout_s: float = DEFAULT_STOP_TIMEOUT_S,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        threads_per_job: int | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        unknown = set(signal_sources) - set(SIGNAL_SOURCES)
        if unknown or not signal_sources:
            raise ValueError(
                f"signal_sources must be some of {', '.join(SIGNAL_SOURCES)}, got {list(signal_sources)}"
            )
        self.spec = spec
        self.directory = Path(directory).resolve()  # jobs run with their own folder as cwd
        self.configs = list(spec.jobs() if jobs is None else jobs)
        self.python = python
        self.progress = progress or progress_module.PlainProgress()
        self.signal_sources = tuple(signal_sources)
        # stop_jobs=False: the decision core still decides, as a dry run (the no-termination baseline).
        base = spec.decision_config()
        self.config = dataclasses.replace(base, dry_run=base.dry_run or not stop_jobs)
        self.stop_timeout_s = stop_timeout_s
        self.poll_interval_s = poll_interval_s
        self.threads_per_job = threads_per_job
        self.environment = dict(os.environ if environment is None else environment)
        # The container's entry point, as its ``train`` executable runs it (training/bin/train).
        self.command = [self.python, "-m", "training.train"]
        self.jobs: dict[str, LocalJob] = {}
        self.decisions: list[dict[str, Any]] = []
        # Jobs compared with each other at rungs (the spec's cross_job section), in the sweep's SQLite file.
        self.cross_job = spec.cross_job_settings()
        self.rung_store: SqliteRungStore | None = None
        self._interrupt = threading.Event()

    # --- set-up ---

    def _check_datasets(self) -> None:
        from training import channels

        for dataset in {config.dataset.name: config.dataset for config in self.configs}.values():
            for channel, location in dataset.channels.items():
                if location.startswith("s3://"):
                    raise spec_module.SpecError(
                        self.spec.source,
                        [
                            f"datasets.{dataset.name}.{channel}: the local backend reads local folders, "
                            f"not {location}"
                        ],
                    )
                try:
                    channels.list_shards(Path(location))
                except channels.DatasetError as error:
                    raise spec_module.SpecError(
                        self.spec.source, [f"datasets.{dataset.name}.{channel}: {error}"]
                    ) from None

    def _job_tags(self) -> dict[str, str]:
        return {
            decision.DEFAULT_TAG_KEY: decision.DEFAULT_TAG_VALUE,
            SWEEP_TAG_KEY: self.spec.name,
            **self.spec.tags,
        }

    def _prepare(self, config: spec_module.JobConfig) -> LocalJob:
        directory = self.directory / "jobs" / config.name
        if directory.exists():
            import shutil

            shutil.rmtree(directory)  # a re-run of the sweep starts every job afresh
        return LocalJob(
            config=config,
            directory=directory,
            tags=self._job_tags(),
            record=report_module.JobRecord(
                name=config.name,
                params=dict(config.params),
                budget_steps=config.steps,
                log_path=str(directory / LOG_FILE_NAME),
            ),
            view=progress_module.JobView(config.name, config.label(), config.steps),
        )

    def _environment(self, job: LocalJob, extra: Mapping[str, str]) -> dict[str, str]:
        environment = {
            name: value
            for name, value in self.environment.items()
            if not name.startswith(("SM_", "AUTOSTOP_", "TRAINING_JOB_")) and name != "TF_CONFIG"
        }
        opt_ml = job.directory / "opt_ml"
        environment.update(
            {
                "AUTOSTOP_OPT_ML": str(opt_ml),
                "SM_MODEL_DIR": str(opt_ml / "model"),
                "TRAINING_JOB_NAME": job.name,
                "TRAINING_JOB_ARN": local_job_arn(job.name),
                provenance.SIGNING_KEY_ENV: job.signing_key,
                "PYTHONUNBUFFERED": "1",
                "TF_CPP_MIN_LOG_LEVEL": "2",
            }
        )
        for channel, location in job.config.dataset.channels.items():
            environment[f"SM_CHANNEL_{channel.upper()}"] = str(Path(location).resolve())
        if self.threads_per_job is not None:
            threads = str(self.threads_per_job)
            environment.update(
                {
                    "TF_NUM_INTRAOP_THREADS": threads,
                    "TF_NUM_INTEROP_THREADS": threads,
                    "OMP_NUM_THREADS": threads,
                }
            )
        environment.update(extra)
        return environment

    def _start(self, job: LocalJob) -> None:
        config_directory = job.directory / "opt_ml" / "input" / "config"
        config_directory.mkdir(parents=True, exist_ok=True)
        debugger_hyperparameters, debugger_environment = debugger_configuration(self.spec, job.directory)
        hyperparameters = {**job.config.hyperparameters, **debugger_hyperparameters}
        (config_directory / "hyperparameters.json").write_text(
            json.dumps(hyperparameters, indent=2), encoding="utf-8"
        )
        write_debug_hook_config(self.spec, config_directory)
        log_path = job.directory / LOG_FILE_NAME
        log_path.write_text(f"$ {' '.join(self.command)}\n", encoding="utf-8")
        job.started = time.monotonic()
        job.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=self._environment(job, debugger_environment),
            cwd=str(job.directory),
            start_new_session=True,  # a terminal's Ctrl-C reaches the runner only; it stops the jobs itself
        )
        job.reader = threading.Thread(
            target=_read_output,
            args=(job.process, log_path, job.lines),
            name=f"output-{job.name}",
            daemon=True,
        )
        job.reader.start()
        job.status = decision.IN_PROGRESS
        job.record.state = report_module.RUNNING
        job.view.state = "running"
        self.progress.event(f"{job.name}: started (pid {job.process.pid}): {job.config.label()}")
        self.progress.update(job.view)

    # --- what a running job says ---

    def _drain_output(self, job: LocalJob) -> None:
        while True:
            try:
                item = job.lines.get_nowait()
            except queue.Empty:
                return
            if item is None:  # the job closed its output
                return
            moment, line = item
            self._parse_line(job, moment, line)

    def _parse_line(self, job: LocalJob, moment: float, line: str) -> None:
        match = TRAIN_LINE.match(line)
        if match:
            step, loss = int(match["step"]), _float(match["loss"])
            job.record.train_curve.append((step, loss))
            job.record.step_elapsed.append((step, round(moment - job.started, 3)))
            # The rate comes from lines printed while training ran freely: the line a stopped job prints
            # on its way out (after the stop signal, after its checkpoint) would count the stop as steps.
            if job.stop_signalled_at is None or moment < job.stop_signalled_at:
                if job.first_train is None:
                    job.first_train = (moment, step)
                job.last_train = (moment, step)
            job.record.steps = step
            job.view.step, job.view.loss = step, loss
            self.progress.update(job.view)
            return
        match = VALIDATION_LINE.match(line)
        if match:
            values = {"loss": _float(match["loss"]), "ssim": _float(match["ssim"]), "l2": _float(match["l2"])}
            job.record.validation_curve.append((int(match["step"]), values))
            job.record.final_validation = {f"validation:{name}": value for name, value in values.items()}
            job.view.validation = job.record.final_validation.get(self.spec.objective.metric)
            self.progress.update(job.view)
            self._judge_across_jobs(job, int(match["step"]), values)
            return
        match = ENDED_LINE.match(line)
        if match:
            job.ended_step = int(match["step"])
            return
        match = RULE_METRIC_LINE.match(line)
        if match:
            job.view.rules.setdefault(match["rule"], decision.IN_PROGRESS)
            if match["value"] != "0" and "alarm" in self.signal_sources:
                event = alarm_event(
                    job.name, match["rule"], alarm_prefix=self.config.alarm_prefix, moment=_utc_now()
                )
                self._handle_event(event, origin=job)
            return
        match = ERROR_LINE.match(line)
        if match:
            job.error_line = match["message"].strip()

    def _read_events(self, job: LocalJob) -> None:
        """New complete lines of the job's local sink file, each an EventBridge-shaped event."""
        if "events" not in self.signal_sources:
            return
        path = job.directory / EVENTS_FILE_NAME
        try:
            with path.open("rb") as stream:
                stream.seek(job.events_offset)
                data = stream.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            return
        job.events_offset += end + 1
        for raw in data[: end + 1].splitlines():
            if not raw.strip():
                continue
            try:
                event: object = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError):
                event = raw.decode("utf-8", "replace")  # the decision core says why it is malformed
            self._handle_event(event, origin=job)

    # --- the decision (the stop Lambda's core, with local facts) ---

    def _handle_event(self, event: object, *, origin: LocalJob) -> None:
        facts = decision.interpret_event(event, self.config)
        if isinstance(facts, decision.IgnoredEvent):
            self.progress.event(f"{origin.name}: event ignored ({facts.reason.value}: {facts.detail})")
            self.decisions.append({"job": origin.name, "action": "skip", "reason": facts.reason.value})
            return
        target = self.jobs.get(facts.job_name)
        if target is not None:
            for finding in facts.findings:
                if finding.origin is not decision.FindingOrigin.ALARM:
                    target.view.rules[finding.rule_name] = finding.status
                    target.record.rule_statuses[finding.rule_name] = finding.status
                elif finding.rule_name not in target.view.rules:
                    target.view.rules[finding.rule_name] = finding.status
            self.progress.update(target.view)
        early = decision.screen(facts, self.config)
        if early is not None:
            return  # no issue (a status change), or out of scope: nothing to look up
        description = target.description() if target is not None else None
        tags = target.tags if target is not None else {}
        result = decision.decide(facts, description, tags, self.config, now=_utc_now())
        self.decisions.append(result.to_dict())
        if result.action is decision.Action.STOP and target is not None:
            self._stop(target, result)
        elif result.action is decision.Action.DRY_RUN:
            step = result.finding.step if result.finding else None
            at = f" at step {step}" if step is not None else ""
            self.progress.event(
                f"{facts.job_name}: rule {result.rule_name} found issues{at}; would stop (not stopping)"
            )
        elif result.reason is not decision.Reason.JOB_NOT_IN_PROGRESS:
            self.progress.event(f"{facts.job_name}: not stopped ({result.reason.value}: {result.detail})")

    def _stop(self, job: LocalJob, result: decision.Decision) -> None:
        """Act on a STOP: SIGTERM (the job checkpoints and exits), then the three tags, as the Lambda does."""
        if job.process is None or not job.running:
            return
        job.stop_decision = result
        finding = result.finding
        self._signal_stop(
            job,
            rule_name=result.rule_name,
            step=finding.step if finding else None,
            source=result.source.value if result.source else None,
            tags=decision.stop_tags(result, _utc_now()),
        )
        at = f" at step {finding.step}" if finding and finding.step is not None else ""
        self.progress.event(
            f"{job.name}: rule {result.rule_name} found issues{at} ({job.record.stop_source}); "
            f"decision: stop -> SIGTERM (step {job.record.steps} of {job.config.steps})"
        )
        self.progress.update(job.view)

    def _signal_stop(
        self,
        job: LocalJob,
        *,
        rule_name: str | None,
        step: int | None,
        source: str | None,
        tags: dict[str, str],
    ) -> None:
        """SIGTERM (the job checkpoints and exits), the stop tags, and the record of who stopped it."""
        if job.process is None:
            return
        job.process.send_signal(signal.SIGTERM)
        job.status = "Stopping"
        job.stop_signalled_at = time.monotonic()
        job.stopped_by_sweep = True
        job.tags.update(tags)
        (job.directory / TAGS_FILE_NAME).write_text(json.dumps(job.tags, indent=2), encoding="utf-8")
        job.record.stopped_by_rule = rule_name
        job.record.rule_step = step
        job.record.stop_source = source
        job.view.state = "stopping"

    # --- the cross-job comparison (lambdas/stop_training_job/cross_job.py, the Lambda's core) ---

    def _open_rung_store(self) -> None:
        """A fresh comparison per run: a re-run of the sweep starts every job afresh (``_prepare``)."""
        if self.cross_job is None:
            return
        rungs = self.directory / RUNG_STORE_FILE_NAME
        rungs.unlink(missing_ok=True)
        self.rung_store = SqliteRungStore(rungs)

    def _judge_across_jobs(self, job: LocalJob, step: int, values: Mapping[str, float]) -> None:
        """At a validation at or after a rung: record the objective there (first report wins) and judge the
        job; once per rung, or at every later validation too (``rejudge``, ``cross_job.rung_to_judge``)."""
        settings = self.cross_job
        if (
            settings is None
            or self.rung_store is None
            or not job.running
            or job.stop_signalled_at is not None
        ):
            return
        rung = cross_job.rung_to_judge(settings, job.last_rung_step, step)
        job.last_rung_step = max(job.last_rung_step, step)
        if rung is None:
            return
        value = values.get(self.spec.objective.metric.split(":", 1)[1], math.nan)
        peers = self.rung_store.report(sweep=self.spec.name, rung=rung, job=job.name, value=value)
        judged = cross_job.judge(settings, rung=rung, job=job.name, peers=peers)
        self.decisions.append(
            {"job": job.name, "action": judged.verdict.value, "rule": CROSS_JOB_RULE, "reason": judged.reason}
        )
        if not judged.stops:
            return
        if settings.dry_run or self.config.dry_run:
            if job.would_stop_at_rung != rung:  # said once per rung, not at every validation judged there
                job.would_stop_at_rung = rung
                self.progress.event(f"{job.name}: {judged.reason} at rung {rung}; would stop (not stopping)")
            return
        self._signal_stop(
            job,
            rule_name=CROSS_JOB_RULE,
            step=step,
            source=CROSS_JOB_SOURCE,
            tags={
                decision.TAG_STOPPED_BY_RULE: CROSS_JOB_RULE,
                decision.TAG_STOPPED_AT: _utc_now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                decision.TAG_STOP_SOURCE: CROSS_JOB_SOURCE,
            },
        )
        self.progress.event(
            f"{job.name}: {settings.policy.value} at rung {rung}: {judged.reason}; "
            f"decision: stop -> SIGTERM (step {job.record.steps} of {job.config.steps})"
        )
        self.progress.update(job.view)

    # --- the end of a job ---

    def _finish(self, job: LocalJob) -> None:
        if job.process is None:
            raise ValueError(f"{job.name} was never started")
        if job.reader is not None:
            job.reader.join(timeout=10)
        self._drain_output(job)
        self._read_events(job)
        self._read_final_statuses(job)
        ended = time.monotonic()
        record = job.record
        record.compute_seconds = ended - job.started
        if job.first_train and job.last_train and job.last_train[1] > job.first_train[1]:
            record.seconds_per_step = (job.last_train[0] - job.first_train[0]) / (
                job.last_train[1] - job.first_train[1]
            )
        if job.ended_step is not None:
            record.steps = job.ended_step
        if job.stop_signalled_at is not None:
            record.seconds_to_stop = ended - job.stop_signalled_at
        code = job.process.returncode
        failure = self._failure_reason(job, code)
        if job.interrupted and not job.stopped_by_sweep:
            record.state = report_module.INTERRUPTED
            job.status = "Stopped"
        elif job.stopped_by_sweep:
            record.state = report_module.STOPPED
            job.status = "Stopped"
            if code != 0:
                record.failure_reason = f"exited with {code} after the stop signal" + (
                    f": {failure}" if failure else ""
                )
        elif code == 0 and record.steps >= job.config.steps:
            record.state = report_module.COMPLETED
            job.status = "Completed"
        elif code == 0:
            # Ended early without a stop from here: the container stopped itself (its optional
            # self-termination after a rule fired), or it ran out of data.
            fired = [rule for rule, status in record.rule_statuses.items() if status == decision.ISSUES_FOUND]
            if fired:
                record.state, record.stopped_by_rule, record.stop_source = (
                    report_module.STOPPED,
                    fired[0],
                    "self-termination",
                )
            else:
                record.state = report_module.FAILED
                record.failure_reason = f"ended at step {record.steps} of {job.config.steps} without a stop"
            job.status = "Stopped" if fired else "Failed"
        else:
            record.state = report_module.FAILED
            record.failure_reason = failure or f"exited with code {code}"
            job.status = "Failed"
        job.view.state = record.state
        self.progress.update(job.view)
        self.progress.event(self._summary_line(job))

    def _read_final_statuses(self, job: LocalJob) -> None:
        """The evaluator's final statuses (``<output data>/debugger-rules.json``, docs/debugger.md)."""
        path = job.directory / "opt_ml" / "output" / "data" / STATUSES_FILE_NAME
        try:
            statuses = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return
        if not isinstance(statuses, list):
            return
        for item in statuses:
            if isinstance(item, dict) and isinstance(item.get("RuleConfigurationName"), str):
                status = str(item.get("RuleEvaluationStatus", ""))
                job.record.rule_statuses[item["RuleConfigurationName"]] = status
                job.view.rules[item["RuleConfigurationName"]] = status

    def _failure_reason(self, job: LocalJob, code: int | None) -> str | None:
        if code == 0:
            return None
        failure_file = job.directory / "opt_ml" / "output" / "failure"
        with contextlib.suppress(OSError):
            text = failure_file.read_text(encoding="utf-8").strip()
            if text:
                return text[:500]
        if job.error_line:
            return job.error_line[:500]
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return None

    def _summary_line(self, job: LocalJob) -> str:
        record = job.record
        value = record.objective(self.spec.objective.metric)
        metric = f", {self.spec.objective.metric} {value:.4f}" if value is not None else ""
        if record.state == report_module.STOPPED:
            how = f"stopped by {record.stopped_by_rule}"
            if record.seconds_to_stop is not None:
                how += f" ({record.seconds_to_stop:.1f} s from the signal to the exit)"
        elif record.state == report_module.FAILED:
            how = f"failed: {record.failure_reason}"
        else:
            how = record.state.lower()
        steps = f"{record.steps}/{job.config.steps}"
        return f"{job.name}: {how} at step {steps} after {record.compute_seconds:.1f} s{metric}"

    # --- the loop ---

    @contextlib.contextmanager
    def _interrupt_handlers(self) -> Iterator[None]:
        """SIGINT/SIGTERM to the runner: stop the jobs cleanly (only possible in the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signal_number: int, frame: FrameType | None) -> None:
            self._interrupt.set()

        previous = {number: signal.signal(number, handle) for number in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def interrupt(self) -> None:
        """Stop the sweep as Ctrl-C does (for callers that run it in a thread)."""
        self._interrupt.set()

    def run(self) -> report_module.SweepRecord:
        self._check_datasets()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._open_rung_store()
        started_at = _utc_now().strftime("%Y-%m-%dT%H:%M:%SZ")
        started = time.monotonic()
        for config in self.configs:
            self.jobs[config.name] = self._prepare(config)
        pending = deque(self.jobs.values())
        running: list[LocalJob] = []
        interrupted = False
        self.progress.start()
        try:
            with self._interrupt_handlers():
                while pending or running:
                    if self._interrupt.is_set() and not interrupted:
                        interrupted = True
                        self.progress.event(
                            f"interrupted: stopping {len(running)} running job(s) (SIGTERM: checkpoint, "
                            f"exit); {len(pending)} not started"
                        )
                        pending.clear()
                        for job in running:
                            job.interrupted = True
                            if job.running and job.process is not None and job.stop_signalled_at is None:
                                job.process.send_signal(signal.SIGTERM)
                                job.status = "Stopping"
                                job.stop_signalled_at = time.monotonic()
                    while pending and len(running) < self.spec.max_parallel_jobs:
                        job = pending.popleft()
                        self._start(job)
                        running.append(job)
                        self._save(started_at, started, interrupted)
                    for job in list(running):
                        if job.process is not None:
                            cpu = process_cpu_seconds(job.process.pid)
                            job.record.cpu_seconds = cpu if cpu is not None else job.record.cpu_seconds
                        self._drain_output(job)
                        self._read_events(job)
                        self._enforce_stop_timeout(job)
                        if job.process is not None and job.process.poll() is not None:
                            self._finish(job)
                            running.remove(job)
                            self._save(started_at, started, interrupted)
                    if running:
                        time.sleep(self.poll_interval_s)
        finally:
            for job in running:  # only after an unexpected error in the loop itself
                if job.running and job.process is not None:
                    job.process.kill()
                    job.process.wait()
            self.progress.stop()
        return self._save(started_at, started, interrupted)

    def _enforce_stop_timeout(self, job: LocalJob) -> None:
        if (
            job.stop_signalled_at is not None
            and job.running
            and job.process is not None
            and not job.killed
            and time.monotonic() - job.stop_signalled_at > self.stop_timeout_s
        ):
            self.progress.event(f"{job.name}: did not exit {self.stop_timeout_s:g} s after SIGTERM; SIGKILL")
            job.process.kill()
            job.killed = True

    def _save(self, started_at: str, started: float, interrupted: bool) -> report_module.SweepRecord:
        record = report_module.SweepRecord(
            name=self.spec.name,
            backend="local",
            objective_metric=self.spec.objective.metric,
            objective_goal=self.spec.objective.goal,
            jobs=[job.record for job in self.jobs.values()],
            wall_seconds=time.monotonic() - started,
            started_at=started_at,
            interrupted=interrupted,
            notes=[
                "local backend: compute seconds are each job process's wall time (TensorFlow start-up "
                "included); seconds per step are measured between a job's first and last metric lines"
            ],
        )
        record.save(self.directory)
        return record


def run_local(
    spec: spec_module.SweepSpec,
    directory: Path,
    *,
    progress: progress_module.Progress | None = None,
    **options: Any,
) -> tuple[report_module.SweepRecord, report_module.ReportFiles]:
    """Run the sweep and write its report into ``directory`` (records.json, report.md/.json, plots)."""
    sweep = LocalSweep(spec, directory, progress=progress, **options)
    record = sweep.run()
    files = report_module.write_report(record, directory)
    return record, files


def measure_baseline(
    spec: spec_module.SweepSpec,
    record: report_module.SweepRecord,
    directory: Path,
    *,
    progress: progress_module.Progress | None = None,
    **options: Any,
) -> report_module.SweepRecord:
    """Run the jobs a rule stopped again, to their full budget, with nothing stopped; fill ``record``'s
    baseline (each job's final objective at its full budget) and ``baseline_compute`` (what that took).

    Completed jobs already ran their full budget: their values are taken as they are. The stopped jobs run
    from scratch with the decision core in dry-run mode (rules still evaluated, so each step costs what it
    cost before; nothing stopped) in ``directory``. Training is seeded, so a completed job would reach the
    same value again. Returns the re-run's own record.
    """
    stopped = {job.name for job in record.jobs if job.stopped_by_a_rule}
    worst = -math.inf if record.objective_goal == "maximize" else math.inf
    baseline = {
        job.name: value
        for job in record.jobs
        if job.state == report_module.COMPLETED
        and (value := job.objective(record.objective_metric)) is not None
    }
    configs = [config for config in spec.jobs() if config.name in stopped]
    rerun = LocalSweep(spec, directory, jobs=configs, progress=progress, stop_jobs=False, **options).run()
    for job in rerun.jobs:
        value = job.objective(record.objective_metric)
        baseline[job.name] = value if value is not None else worst
    record.baseline = baseline
    record.baseline_compute = {
        job.name: job.compute_seconds for job in rerun.jobs if job.state == report_module.COMPLETED
    }
    record.baseline_note = "stopped jobs re-run without stopping; completed jobs count as they ran"
    return rerun
