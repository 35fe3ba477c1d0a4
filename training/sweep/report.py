"""The sweep report: what every job did, what the stops saved, and what they cost in the chosen model.

Pure arithmetic on job records (``JobRecord``), which both backends produce: the local runner from its
subprocesses' metric lines, the SageMaker launcher from ``DescribeTrainingJob`` and CloudWatch. Nothing here
runs a job, reads a clock or talks to AWS, so the arithmetic is tested on fixed inputs.

Definitions (docs/sweeps.md repeats them for readers of the report):

- **compute used**: the sum of the jobs' compute seconds: the wall time of each job's process locally, the
  billable seconds (``billable_seconds``, DescribeTrainingJob's ``BillableTimeInSeconds``) on SageMaker.
- **compute at full budget, measured**: where the stopped jobs were re-run to their full budget without
  stopping (``make demo``, ``bench/sweep_savings.py``: ``baseline_compute``), what they used then; the other
  jobs count what they used. Whenever it exists, this is the figure the report leads with.
- **compute at full budget, estimated** (the only figure a SageMaker sweep has: there is no re-run): a job
  stopped by a rule after ``s`` of its ``B`` steps counts ``compute + (B - s) x rate``, where ``rate`` is a
  *steady-state* time per step: the median of the intervals between consecutive metric lines after the
  first (``step_elapsed``), so start-up, the first step's tracing and one-off pauses (a validation's first
  trace, a checkpoint) are not multiplied by the steps that were never run. The job's own steady rate when
  it has at least ``MIN_STEADY_INTERVALS`` such intervals, else the sweep's (the median of the jobs' steady
  rates; a record without ``step_elapsed`` -- SageMaker's -- contributes its ``seconds_per_step``). With no
  rate at all, no saving is claimed for the job. Completed, failed and interrupted jobs count what they used.
- **compute saved**: ``full - used``, and as a share of ``full``; measured first, estimated beside it.
- **winner**: the best final value of the objective (default: validation SSIM, higher is better) among the
  jobs that completed their budget. Jobs stopped by a rule are not candidates: their models are unfinished.
- **regret**: how much worse the winner is than the best configuration of the sweep, both measured at the full
  budget in a run without any stopping (the *baseline*: ``baseline[job]`` is that job's final objective when
  it ran its whole budget): ``regret = best(baseline) - baseline[winner]`` for a maximized objective (``
  baseline[winner] - best(baseline)`` when minimized). 0 means the stops cost nothing: no stopped job would
  have beaten the winner. Without a baseline the regret is not known and is reported as such, never guessed.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

COMPLETED = "Completed"
STOPPED = "Stopped"  # stopped by a rule (the local runner) or by anyone (SageMaker: see stopped_by_rule)
FAILED = "Failed"
INTERRUPTED = "Interrupted"  # the sweep was interrupted (Ctrl-C) while the job ran
NOT_STARTED = "NotStarted"  # the sweep ended (interrupted) before the job started
RUNNING = "Running"
STATES = (COMPLETED, STOPPED, FAILED, INTERRUPTED, NOT_STARTED, RUNNING)

# A job's own steady-state rate needs this many metric-line intervals after its first line; fewer (a job
# stopped within its first few log intervals) and it borrows the sweep's steady-state rate.
MIN_STEADY_INTERVALS = 3

RECORDS_FILE = "records.json"
REPORT_JSON = "report.json"
REPORT_MARKDOWN = "report.md"
LOSS_PLOT = "loss_curves.png"
COMPUTE_PLOT = "compute_per_job.png"
FORMAT_VERSION = 1


@dataclasses.dataclass
class JobRecord:
    """One job as it ran (or did not). Times in seconds; curves as (step, value) pairs."""

    name: str
    params: dict[str, Any]
    budget_steps: int
    state: str = NOT_STARTED
    steps: int = 0
    compute_seconds: float = 0.0
    cpu_seconds: float | None = None  # user + system CPU time of the job's process, where measured
    seconds_per_step: float | None = None
    stopped_by_rule: str | None = None
    rule_step: int | None = None  # the step at which the rule's condition held
    stop_source: str | None = None  # autostop.training | aws.sagemaker | aws.cloudwatch | a pruner's name
    rule_statuses: dict[str, str] = dataclasses.field(default_factory=dict)
    train_curve: list[tuple[int, float]] = dataclasses.field(default_factory=list)
    # (step, seconds since the job started) at each training metric line: when each step was reached
    step_elapsed: list[tuple[int, float]] = dataclasses.field(default_factory=list)
    validation_curve: list[tuple[int, dict[str, float]]] = dataclasses.field(default_factory=list)
    final_validation: dict[str, float] = dataclasses.field(default_factory=dict)
    failure_reason: str | None = None
    seconds_to_stop: float | None = None  # from the stop signal to the job's exit (local runner)
    log_path: str | None = None
    # SageMaker: DescribeTrainingJob's BillableTimeInSeconds (what the job is charged for); when set, it is
    # the job's compute instead of ``compute_seconds``
    billable_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"job {self.name}: unknown state {self.state!r} (known: {', '.join(STATES)})")
        if self.budget_steps <= 0:
            raise ValueError(f"job {self.name}: budget_steps must be > 0, got {self.budget_steps}")
        if self.steps < 0 or self.compute_seconds < 0:
            raise ValueError(f"job {self.name}: steps and compute_seconds must be >= 0")

    @property
    def stopped_by_a_rule(self) -> bool:
        return self.state == STOPPED and self.stopped_by_rule is not None

    @property
    def compute(self) -> float:
        """The job's compute seconds: billable seconds where SageMaker reported them, else wall time."""
        return self.billable_seconds if self.billable_seconds is not None else self.compute_seconds

    @property
    def rate(self) -> float | None:
        """Seconds per training step as this job measured it (``None``: stopped before it could be)."""
        if self.seconds_per_step is not None and self.seconds_per_step > 0:
            return self.seconds_per_step
        return None

    def steady_intervals(self) -> list[float]:
        """Seconds per step between consecutive metric lines, after the first line (which carries the
        start-up and the first step's tracing)."""
        points = sorted(self.step_elapsed)
        return [
            (seconds - previous_seconds) / (step - previous_step)
            for (previous_step, previous_seconds), (step, seconds) in itertools.pairwise(points)
            if step > previous_step and seconds >= previous_seconds
        ]

    @property
    def steady_rate(self) -> float | None:
        """This job's steady-state seconds per step (the median interval), if it logged enough lines."""
        intervals = self.steady_intervals()
        if len(intervals) < MIN_STEADY_INTERVALS:
            return None
        rate = statistics.median(intervals)
        return rate if rate > 0 else None

    def full_budget_seconds(self, sweep_rate: float | None = None) -> float:
        """Estimated compute of this job at its full budget (see the module docstring).

        A stopped job's remaining steps are counted at its own steady rate, else at ``sweep_rate`` (the
        sweep's steady-state rate); without either, no saving is claimed for it.
        """
        if not self.stopped_by_a_rule or self.steps >= self.budget_steps:
            return self.compute
        rate = self.steady_rate if self.steady_rate is not None else sweep_rate
        if rate is None:
            return self.compute
        return self.compute + (self.budget_steps - self.steps) * rate

    def objective(self, metric: str) -> float | None:
        value = self.final_validation.get(metric)
        return value if value is not None and math.isfinite(value) else None

    def to_json_dict(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["train_curve"] = [[step, _json_number(value)] for step, value in self.train_curve]
        document["validation_curve"] = [
            [step, {name: _json_number(value) for name, value in values.items()}]
            for step, values in self.validation_curve
        ]
        document["final_validation"] = {
            name: _json_number(value) for name, value in self.final_validation.items()
        }
        return document

    @classmethod
    def from_json_dict(cls, document: Mapping[str, Any]) -> JobRecord:
        values = dict(document)
        values["train_curve"] = [(int(step), _number(value)) for step, value in values.get("train_curve", [])]
        values["step_elapsed"] = [
            (int(step), float(seconds)) for step, seconds in values.get("step_elapsed", [])
        ]
        values["validation_curve"] = [
            (int(step), {name: _number(value) for name, value in metrics.items()})
            for step, metrics in values.get("validation_curve", [])
        ]
        values["final_validation"] = {
            name: _number(value) for name, value in values.get("final_validation", {}).items()
        }
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def _json_number(value: float) -> float | str:
    """JSON has no NaN/inf: they are written as strings ("nan", "inf") so a diverged run stays visible."""
    return value if math.isfinite(value) else str(value)


def _number(value: object) -> float:
    return float(value)  # type: ignore[arg-type]  # floats, or "nan"/"inf" strings written by _json_number


@dataclasses.dataclass
class SweepRecord:
    """A sweep as it ran: its jobs and how long it took; the input of every report."""

    name: str
    backend: str
    objective_metric: str
    objective_goal: str
    jobs: list[JobRecord]
    wall_seconds: float = 0.0
    started_at: str = ""
    interrupted: bool = False
    baseline: dict[str, float] | None = None  # job name -> final objective with no stopping (full budget)
    # job name -> compute seconds of the same job run to its full budget with no stopping (measured)
    baseline_compute: dict[str, float] | None = None
    baseline_note: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.objective_goal not in ("maximize", "minimize"):
            raise ValueError(f"objective goal must be maximize or minimize, got {self.objective_goal!r}")

    def to_json_dict(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["format_version"] = FORMAT_VERSION
        document["jobs"] = [job.to_json_dict() for job in self.jobs]
        return document

    @classmethod
    def from_json_dict(cls, document: Mapping[str, Any]) -> SweepRecord:
        values = dict(document)
        values.pop("format_version", None)
        values["jobs"] = [JobRecord.from_json_dict(job) for job in values.get("jobs", [])]
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    def save(self, directory: Path) -> Path:
        """Write ``records.json`` atomically (the runner rewrites it as jobs finish)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / RECORDS_FILE
        _write_atomically(path, json.dumps(self.to_json_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: Path) -> SweepRecord:
        path = directory / RECORDS_FILE if directory.is_dir() else directory
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read the sweep records {path}: {error}") from None
        try:
            return cls.from_json_dict(document)
        except (TypeError, ValueError, KeyError) as error:
            raise ValueError(f"{path} is not a sweep record: {error}") from None


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


@dataclasses.dataclass(frozen=True)
class Totals:
    """The sweep's numbers (see the module docstring for each definition)."""

    jobs: int
    states: dict[str, int]
    stopped_by_rules: int
    compute_used_seconds: float
    compute_full_budget_seconds: float  # estimated (steady-state rate), never measured
    compute_saved_seconds: float  # estimated
    compute_saved_percent: float  # estimated
    steps_budget: int
    steps_saved: int
    steps_saved_percent: float
    cpu_seconds: float | None
    compute_full_budget_measured_seconds: float | None
    compute_saved_measured_percent: float | None
    steady_seconds_per_step: float | None  # the sweep's steady-state rate the estimate borrows
    saved_percent: float  # the figure the report leads with: measured when it exists, else the estimate
    saved_basis: str  # "measured" or "estimated"
    wall_seconds: float
    winner: str | None
    winner_value: float | None
    best_possible: str | None
    best_possible_value: float | None
    regret: float | None
    regret_note: str

    def to_json_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def best_job(
    values: Mapping[str, float | None], goal: str, order: Sequence[str]
) -> tuple[str | None, float | None]:
    """The best finite value (ties: the earliest job in ``order``)."""
    best_name: str | None = None
    best_value: float | None = None
    for name in order:
        value = values.get(name)
        if value is None or not math.isfinite(value):
            continue
        if best_value is None or (value > best_value if goal == "maximize" else value < best_value):
            best_name, best_value = name, value
    return best_name, best_value


def sweep_steady_rate(sweep: SweepRecord) -> float | None:
    """The sweep's steady-state seconds per step: the median of its jobs' steady rates; when no job has
    one, the median of all jobs' intervals after their first metric line; for records without metric-line
    times (SageMaker's), the median of their measured ``seconds_per_step``. ``None``: nothing measured."""
    steady = [rate for job in sweep.jobs if (rate := job.steady_rate) is not None]
    if steady:
        return statistics.median(steady)
    # No job logged enough lines for a rate of its own: every job's intervals after its first line, pooled.
    pooled = [interval for job in sweep.jobs for interval in job.steady_intervals()]
    if pooled:
        return statistics.median(pooled)
    rates = [rate for job in sweep.jobs if (rate := job.rate) is not None]
    return statistics.median(rates) if rates else None


def fallback_rate(sweep: SweepRecord) -> float | None:
    """The rate a stopped job without its own steady rate borrows (``sweep_steady_rate``)."""
    return sweep_steady_rate(sweep)


def totals(sweep: SweepRecord) -> Totals:
    states = dict.fromkeys(STATES, 0)
    for job in sweep.jobs:
        states[job.state] += 1
    steady_rate = sweep_steady_rate(sweep)
    used = sum(job.compute for job in sweep.jobs)
    full = sum(job.full_budget_seconds(steady_rate) for job in sweep.jobs)
    saved = full - used
    order = [job.name for job in sweep.jobs]
    completed = {
        job.name: job.objective(sweep.objective_metric)
        for job in sweep.jobs
        if job.state == COMPLETED and job.steps >= job.budget_steps
    }
    winner, winner_value = best_job(completed, sweep.objective_goal, order)

    best_possible: str | None = None
    best_possible_value: float | None = None
    regret: float | None = None
    if sweep.baseline is None:
        note = "not measured: needs a run without stopping (the demo and bench/sweep_savings.py measure it)"
    else:
        best_possible, best_possible_value = best_job(sweep.baseline, sweep.objective_goal, order)
        if winner is None:
            note = "no job completed its budget: there is no winner"
        elif best_possible_value is None:
            note = "the baseline has no finite objective value"
        else:
            winner_full = sweep.baseline.get(winner, winner_value)
            if winner_full is None or not math.isfinite(winner_full):
                note = f"the baseline has no value for the winner {winner}"
            else:
                difference = best_possible_value - winner_full
                regret = difference if sweep.objective_goal == "maximize" else -difference
                note = (
                    "0: the winner is the best configuration of the sweep"
                    if winner == best_possible or regret == 0
                    else f"{best_possible} would have been better at its full budget"
                )
        if sweep.baseline_note:
            note = f"{note} ({sweep.baseline_note})"
    measured_full: float | None = None
    if sweep.baseline_compute is not None:
        stopped_jobs = [job for job in sweep.jobs if job.stopped_by_a_rule]
        if all(job.name in sweep.baseline_compute for job in stopped_jobs):
            measured_full = sum(
                sweep.baseline_compute[job.name] if job.stopped_by_a_rule else job.compute
                for job in sweep.jobs
            )
    budget = sum(job.budget_steps for job in sweep.jobs)
    steps_saved = sum(max(0, job.budget_steps - job.steps) for job in sweep.jobs if job.stopped_by_a_rule)
    cpu = [job.cpu_seconds for job in sweep.jobs if job.cpu_seconds is not None]
    estimated_percent = 100.0 * saved / full if full > 0 else 0.0
    measured_percent = 100.0 * (measured_full - used) / measured_full if measured_full else None
    return Totals(
        jobs=len(sweep.jobs),
        states={state: count for state, count in states.items() if count},
        stopped_by_rules=sum(1 for job in sweep.jobs if job.stopped_by_a_rule),
        compute_used_seconds=used,
        compute_full_budget_seconds=full,
        compute_saved_seconds=saved,
        compute_saved_percent=estimated_percent,
        steps_budget=budget,
        steps_saved=steps_saved,
        steps_saved_percent=100.0 * steps_saved / budget if budget else 0.0,
        cpu_seconds=sum(cpu) if cpu and len(cpu) == len(sweep.jobs) else None,
        compute_full_budget_measured_seconds=measured_full,
        compute_saved_measured_percent=measured_percent,
        steady_seconds_per_step=steady_rate,
        saved_percent=measured_percent if measured_percent is not None else estimated_percent,
        saved_basis="measured" if measured_percent is not None else "estimated",
        wall_seconds=sweep.wall_seconds,
        winner=winner,
        winner_value=winner_value,
        best_possible=best_possible,
        best_possible_value=best_possible_value,
        regret=regret,
        regret_note=note,
    )


# --- Rendering ---


def _format_seconds(seconds: float) -> str:
    return f"{seconds:,.1f}"


def _format_metric(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if math.isfinite(value) else str(value)


def params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}" for key, value in params.items()
    )


def _stop_text(job: JobRecord) -> str:
    if job.stopped_by_rule:
        step = f" (condition at step {job.rule_step})" if job.rule_step is not None else ""
        return f"{job.stopped_by_rule}{step}"
    if job.state == FAILED:
        return "crashed: " + (job.failure_reason or "see its log")[:80].replace("|", "/")
    return "-"


def markdown(sweep: SweepRecord, summary: Totals | None = None, *, plots: Sequence[str] = ()) -> str:
    """The report as markdown: a plain-language summary, the jobs table, the totals, the definitions."""
    summary = summary or totals(sweep)
    metric = sweep.objective_metric
    lines = [f"# Sweep `{sweep.name}` ({sweep.backend})", ""]
    stopped = summary.stopped_by_rules
    lines.append(
        f"{summary.jobs} jobs ran with a budget of {_budget_text(sweep)} steps each. "
        f"{stopped} {'was' if stopped == 1 else 'were'} stopped by a rule; "
        f"{summary.states.get(COMPLETED, 0)} completed"
        + (f"; {summary.states.get(FAILED, 0)} failed" if summary.states.get(FAILED) else "")
        + (
            f"; {summary.states.get(INTERRUPTED, 0) + summary.states.get(NOT_STARTED, 0)} interrupted "
            "or never started (the sweep was interrupted)"
            if sweep.interrupted
            else ""
        )
        + "."
    )
    lines.extend(_compute_sentences(summary))
    if summary.winner is not None:
        lines.append(
            f"Best job: **{summary.winner}** ({metric} {_format_metric(summary.winner_value)}). "
            f"Regret: **{_format_metric(summary.regret)}** ({summary.regret_note})."
        )
    else:
        lines.append(f"No job completed its budget, so there is no best job ({summary.regret_note}).")
    lines += ["", "## Jobs", ""]
    lines.append(
        f"| job | parameters | state | stopped by | steps | compute s | at full budget s, measured "
        f"| at full budget s, estimated | {metric} |"
    )
    lines.append("|---|---|---|---|---:|---:|---:|---:|---:|")
    steady_rate = sweep_steady_rate(sweep)
    borrowed = False
    for job in sweep.jobs:
        marker = " **(best)**" if job.name == summary.winner else ""
        measured = _measured_full_budget(sweep, job)
        estimated = _format_seconds(job.full_budget_seconds(steady_rate))
        if job.stopped_by_a_rule and job.steady_rate is None and job.steps < job.budget_steps:
            estimated += "*" if steady_rate is not None else " (no rate: no saving claimed)"
            borrowed = borrowed or steady_rate is not None
        lines.append(
            f"| {job.name}{marker} | {params_text(job.params)} | {job.state} | {_stop_text(job)} | "
            f"{job.steps}/{job.budget_steps} | {_format_seconds(job.compute)} | "
            f"{'-' if measured is None else _format_seconds(measured)} | {estimated} | "
            f"{_format_metric(job.objective(metric))} |"
        )
    if borrowed and steady_rate is not None:
        lines += [
            "",
            f"\\* stopped before it logged {MIN_STEADY_INTERVALS} metric-line intervals after its first: its "
            f"remaining steps are estimated at the sweep's steady-state rate, {steady_rate:.4f} s/step.",
        ]
    lines += ["", "## Totals", "", "| measure | value |", "|---|---:|"]
    rows = [
        ("jobs", str(summary.jobs)),
        ("states", ", ".join(f"{state} {count}" for state, count in summary.states.items())),
        ("stopped by rules", str(summary.stopped_by_rules)),
        ("compute used (s)", _format_seconds(summary.compute_used_seconds)),
        (
            "compute at full budget, measured: the stopped jobs re-run without stopping (s)",
            _format_seconds(summary.compute_full_budget_measured_seconds)
            if summary.compute_full_budget_measured_seconds is not None
            else "-",
        ),
        (
            "compute saved, measured (%)",
            f"{summary.compute_saved_measured_percent:.1f}"
            if summary.compute_saved_measured_percent is not None
            else "-",
        ),
        (
            "compute at full budget, estimated (s)",
            _format_seconds(summary.compute_full_budget_seconds),
        ),
        ("compute saved, estimated (s)", _format_seconds(summary.compute_saved_seconds)),
        ("compute saved, estimated (%)", f"{summary.compute_saved_percent:.1f}"),
        (
            "steady-state rate the estimate uses (s/step)",
            f"{summary.steady_seconds_per_step:.4f}" if summary.steady_seconds_per_step is not None else "-",
        ),
        (
            "training steps not run thanks to the stops (% of all budgets)",
            f"{summary.steps_saved} ({summary.steps_saved_percent:.1f}%)",
        ),
        ("CPU seconds of the jobs", _format_seconds(summary.cpu_seconds) if summary.cpu_seconds else "-"),
        ("sweep wall time (s)", _format_seconds(summary.wall_seconds)),
        ("best job", summary.winner or "-"),
        (f"best job's {metric}", _format_metric(summary.winner_value)),
        ("best configuration at full budget (baseline)", summary.best_possible or "-"),
        ("regret", _format_metric(summary.regret)),
    ]
    lines += [f"| {name} | {value} |" for name, value in rows]
    rule_rows = [job for job in sweep.jobs if job.rule_statuses]
    if rule_rows:
        lines += ["", "## Rule statuses", "", "| job | " + " | ".join(_rule_names(sweep)) + " |"]
        lines.append("|---|" + "---|" * len(_rule_names(sweep)))
        for job in rule_rows:
            cells = [job.rule_statuses.get(rule, "-") for rule in _rule_names(sweep)]
            lines.append(f"| {job.name} | " + " | ".join(cells) + " |")
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{Path(plot).stem}]({plot})" for plot in plots]
    if sweep.notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {note}" for note in sweep.notes]
    lines += [
        "",
        "## How these numbers are computed",
        "",
        "- *compute used*: each job's compute seconds (process wall time locally; billable seconds on "
        "SageMaker), summed.",
        "- *at full budget, measured*: the stopped jobs re-run to their full budget without stopping "
        "(their compute then), the other jobs as they used; the figure this report leads with when it "
        "exists.",
        "- *at full budget, estimated* (the only figure without a re-run, e.g. on SageMaker): a job stopped "
        "by a rule after s of its B steps counts `compute + (B - s) x rate`, where rate is a steady-state "
        "time per step: the median interval between its metric lines after the first (so start-up and "
        "tracing are not multiplied), its own when it logged "
        f"{MIN_STEADY_INTERVALS} such intervals, else the sweep's. Completed, failed and interrupted jobs "
        "count what they used (no saving is claimed for them). Each job's start-up (imports, model build) "
        "is paid in full by stopped jobs too; *training steps not run* leaves it out (on SageMaker, with "
        "hour-long jobs, the two converge).",
        f"- *best job*: the best final {metric} ({sweep.objective_goal}) among jobs that completed their "
        "budget.",
        "- *regret*: the best configuration's final value minus the best job's, both from a run of every "
        "configuration at its full budget without stopping (0: stopping cost nothing).",
        "",
    ]
    return "\n".join(lines)


def _measured_full_budget(sweep: SweepRecord, job: JobRecord) -> float | None:
    """A job's measured compute at full budget: its re-run if it was stopped, else what it used."""
    if sweep.baseline_compute is None:
        return None
    if job.stopped_by_a_rule:
        return sweep.baseline_compute.get(job.name)
    return job.compute


def _compute_sentences(summary: Totals) -> list[str]:
    """Measured first whenever it exists; the estimate says it is one, and how it was made."""
    used = f"The jobs used **{_format_seconds(summary.compute_used_seconds)} s** of compute."
    rate = (
        f"{summary.steady_seconds_per_step:.4f} s/step"
        if summary.steady_seconds_per_step is not None
        else "no measured rate"
    )
    estimate = (
        f"{_format_seconds(summary.compute_full_budget_seconds)} s at full budget, "
        f"{summary.compute_saved_percent:.1f}% saved (the stopped jobs' remaining steps at the steady-state "
        f"rate after warm-up; the sweep's: {rate})"
    )
    if summary.compute_full_budget_measured_seconds is not None:
        return [
            f"{used} Measured, with the stopped jobs re-run to their full budget without stopping, every "
            f"job at its full budget used {_format_seconds(summary.compute_full_budget_measured_seconds)} s:"
            f" **{summary.compute_saved_measured_percent:.1f}% saved (measured)**.",
            f"Estimated without the re-run, as a SageMaker sweep reports it: {estimate}.",
        ]
    return [
        f"{used} Estimated (nothing was re-run to measure it): {estimate}: "
        f"**{summary.compute_saved_percent:.1f}% saved (estimate)**."
    ]


def _budget_text(sweep: SweepRecord) -> str:
    budgets = sorted({job.budget_steps for job in sweep.jobs})
    return "/".join(str(budget) for budget in budgets) or "0"


def _rule_names(sweep: SweepRecord) -> list[str]:
    names: dict[str, None] = {}
    for job in sweep.jobs:
        names.update(dict.fromkeys(job.rule_statuses))
    return list(names)


def plot_loss_curves(sweep: SweepRecord, path: Path) -> Path:
    """Training loss per job against the step (log scale: stops come early); an X where a rule stopped a
    job, at its last finite loss, and the rule and step in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(11, 5.5), dpi=110)
    finite_values = [value for job in sweep.jobs for _, value in job.train_curve if math.isfinite(value)]
    ceiling = max(finite_values) if finite_values else 1.0
    for index, job in enumerate(sweep.jobs):
        color = pyplot.get_cmap("tab10")(index % 10)
        points = [(step, value) for step, value in job.train_curve if math.isfinite(value) and step > 0]
        label = f"{job.name}: {params_text(job.params)}"
        if job.stopped_by_a_rule:
            label += f"\n  stopped by {job.stopped_by_rule} at step {job.steps}"
        elif job.state != COMPLETED:
            label += f"\n  {job.state}"
        if not points:
            label += " (no finite loss)"
        axes.plot(
            *(zip(*points, strict=True) if points else ([], [])), color=color, linewidth=1.4, label=label
        )
        if job.stopped_by_a_rule:
            stop_step, stop_value = points[-1] if points else (max(job.steps, 1), ceiling)
            axes.scatter(
                [max(stop_step, job.steps, 1)], [stop_value], marker="X", s=90, color=color, zorder=5
            )
    axes.set_xscale("log")
    axes.set_xlabel("training step (log scale)")
    axes.set_ylabel("training loss (mean over the log interval)")
    axes.set_title(f"Sweep {sweep.name}: training loss; X = stopped by a rule")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return path


def plot_compute(sweep: SweepRecord, path: Path) -> Path:
    """Compute per job: used (solid) and, for stopped jobs, what their full budget would add: measured
    (solid outline) where they were re-run, estimated (hatched, labelled so) where not. The title carries the
    report's leading figure and says whether it was measured or estimated."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(9, 0.45 * len(sweep.jobs) + 1.6), dpi=110)
    names = [job.name for job in sweep.jobs]
    used = [job.compute for job in sweep.jobs]
    steady_rate = sweep_steady_rate(sweep)
    measured = [_measured_full_budget(sweep, job) for job in sweep.jobs]
    measured_rest = [
        max(0.0, full - job.compute) if full is not None and job.stopped_by_a_rule else 0.0
        for job, full in zip(sweep.jobs, measured, strict=True)
    ]
    estimated_rest = [
        job.full_budget_seconds(steady_rate) - job.compute
        if full is None or not job.stopped_by_a_rule
        else 0.0
        for job, full in zip(sweep.jobs, measured, strict=True)
    ]
    positions = list(range(len(names)))
    axes.barh(positions, used, color="#3b78b0", label="compute used")
    if any(measured_rest):
        axes.barh(
            positions,
            measured_rest,
            left=used,
            color="#e8b9a8",
            edgecolor="#b05a3b",
            label="saved by stopping, measured (re-run to full budget)",
        )
    if any(estimated_rest):
        axes.barh(
            positions,
            estimated_rest,
            left=used,
            color="none",
            edgecolor="#b05a3b",
            hatch="//",
            label="saved by stopping, estimated (steady-state rate)",
        )
    for position, job, rest_measured, rest_estimated in zip(
        positions, sweep.jobs, measured_rest, estimated_rest, strict=True
    ):
        axes.text(
            job.compute + rest_measured + rest_estimated,
            position,
            f" {job.state}",
            va="center",
            fontsize=7,
            color="#333333",
        )
    axes.set_yticks(positions, names, fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel("compute seconds")
    summary = totals(sweep)
    axes.set_title(
        f"Sweep {sweep.name}: compute per job ({summary.saved_percent:.1f}% saved, {summary.saved_basis})"
    )
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return path


@dataclasses.dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    json: Path
    plots: tuple[Path, ...]


def write_report(sweep: SweepRecord, directory: Path) -> ReportFiles:
    """Write ``report.md``, ``report.json`` and the PNG plots into ``directory`` (``runs/<sweep>/``)."""
    directory.mkdir(parents=True, exist_ok=True)
    summary = totals(sweep)
    plots = (plot_loss_curves(sweep, directory / LOSS_PLOT), plot_compute(sweep, directory / COMPUTE_PLOT))
    markdown_path = directory / REPORT_MARKDOWN
    _write_atomically(markdown_path, markdown(sweep, summary, plots=[plot.name for plot in plots]))
    json_path = directory / REPORT_JSON
    document = {"totals": summary.to_json_dict(), "sweep": sweep.to_json_dict()}
    _write_atomically(json_path, json.dumps(document, indent=2) + "\n")
    return ReportFiles(markdown=markdown_path, json=json_path, plots=plots)
