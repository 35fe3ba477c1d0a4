"""Sweep compute saved and regret: autostop against no termination and Optuna's pruners, on two sweeps.

Run: ``.venv/bin/python -m bench.sweep_savings``

1. **Realistic** (``training/sweep/specs/realistic.yaml``): 16 jobs, learning rate x decay x batch size x
   dataset variant, nothing bad on purpose, every rule at its defaults. Every job is run once to its full
   budget (no termination; the per-job rules are evaluated afterwards over each job's recorded trial, so the
   step at which each would have fired is known). Then every policy is replayed on those same recordings
   (``bench/_replay.py``) in several random launch orders with 4 jobs at a time, as a SageMaker sweep would
   run them: no termination; autostop's per-job rules; autostop's cross-job rule (ASHA, and the median
   rule) together with the per-job rules; Optuna's MedianPruner (1 and 2 start-up trials), HyperbandPruner
   and SuccessiveHalvingPruner (Optuna's implementation of asynchronous successive halving), and Syne Tune's
   ``ASHA`` scheduler (AWS's tuning library; ``make bench`` installs it from ``requirements-bench.txt``), each
   with its documented defaults except the values a replay must give: the first report (``min_resource`` /
   ``grace_period`` = the validation interval) and the budget (``max_resource`` / ``max_t``).
2. **Pathological** (``training/sweep/specs/demo.yaml``, the ``make demo`` sweep: 6 of 8 jobs bad on
   purpose): autostop's per-job rules measured for real (the sweep run with stops, against the same sweep
   run without), then the same replays.

Compute is job-seconds (each job's process time, start-up included); regret is the best configuration's
final validation SSIM minus the winner's (the best among jobs that ran their whole budget): 0 means
stopping lost nothing.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# smdebug logs every trial it opens to stdout, which is this benchmark's markdown section.
os.environ.setdefault("SMDEBUG_LOG_LEVEL", "error")

from bench import _replay
from lambdas.stop_training_job import cross_job
from training.sweep import local, report
from training.sweep import progress as progress_module
from training.sweep import spec as spec_module

COMMAND = ".venv/bin/python -m bench.sweep_savings"
SPECS = Path(spec_module.__file__).parent / "specs"
REALISTIC = SPECS / "realistic.yaml"
PATHOLOGICAL = SPECS / "demo.yaml"
VIEWS = 6
IMAGE_SIZE = 32
DESIGNS_PER_BATCH = 16
# dataset name -> (designs, render seed)
DATASETS = {"small": (96, 7), "large": (192, 11), "shapes": (96, 7)}
ORDERS = 7
REPLAY_PARALLEL = 4
ORDER_SEED = 2026


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def prepare_dataset(directory: Path, designs: int, seed: int) -> Path:
    """Render and transform one dataset variant (the transformer core, as the Lambda runs it)."""
    from training import transform_cli
    from training.render import batches

    manifest = batches.generate_dataset(
        directory / "renders",
        designs=designs,
        designs_per_batch=DESIGNS_PER_BATCH,
        views=VIEWS,
        size=IMAGE_SIZE,
        seed=seed,
        workers=2,
    )
    shards = directory / "shards"
    transform_cli.write_shards(
        [Path(batch.path) for batch in manifest.batches], shards, image_size=IMAGE_SIZE, num_views=VIEWS
    )
    return shards


def with_rendered_datasets(spec: spec_module.SweepSpec, root: Path) -> spec_module.SweepSpec:
    datasets = {}
    for name in spec.datasets:
        designs, seed = DATASETS[name]
        log(f"rendering dataset {name}: {designs} designs, seed {seed}")
        shards = prepare_dataset(root / "data" / name, designs, seed)
        datasets[name] = spec_module.Dataset(name, {"train": str(shards)})
    return spec.with_overrides(datasets=datasets)


def first_rule_stop(spec: spec_module.SweepSpec, trial: Path) -> tuple[int, str] | None:
    """The earliest step at which a stopping rule finds issues in a finished trial (current rule code)."""
    from training.debugger import config, evaluator, signals

    configurations = config.parse_rule_configurations(json.dumps(spec.rule_configurations()))
    quiet = evaluator.RuleEvaluator(
        configurations, dispatcher=signals.SignalDispatcher([], log=lambda _: None), log=lambda _: None
    )
    states = quiet.follow(str(trial), deadline_s=600)
    stops = spec.decision_config()
    found = [
        (state.step, state.configuration.name)
        for state in states
        if state.status is evaluator.RuleStatus.ISSUES_FOUND
        and state.step is not None
        and stops.stops_rule(state.configuration.name)
    ]
    return min(found) if found else None


def recorded_jobs(
    spec: spec_module.SweepSpec, sweep: report.SweepRecord, root: Path
) -> list[_replay.RecordedJob]:
    metric = spec.objective.metric
    curve_name = metric.split(":", 1)[1]
    jobs = []
    for job in sweep.jobs:
        rule = first_rule_stop(spec, root / "jobs" / job.name / "opt_ml" / "output" / "tensors")
        final = job.objective(metric)
        jobs.append(
            _replay.RecordedJob(
                name=job.name,
                budget_steps=job.budget_steps,
                duration=job.compute_seconds,
                step_elapsed=tuple(job.step_elapsed),
                objective_curve=tuple(
                    (step, values.get(curve_name, math.nan)) for step, values in job.validation_curve
                ),
                final_objective=final if final is not None else math.nan,
                rule_step=rule[0] if rule else None,
                rule_name=rule[1] if rule else None,
            )
        )
    return jobs


def policies(spec: spec_module.SweepSpec) -> dict[str, tuple[Callable[[], _replay.Policy], bool]]:
    import optuna

    goal = spec.objective.goal
    budget = spec.steps_per_job
    first_report = int(str(spec.hyperparameters.get("validation_interval", 50)))

    def cross(policy: cross_job.Policy) -> Callable[[], _replay.Policy]:
        settings = cross_job.CrossJobSettings(policy=policy, goal=goal, max_steps=budget)
        return lambda: _replay.CrossJob(settings)

    def pruner(make: Callable[[], object]) -> Callable[[], _replay.Policy]:
        return lambda: _replay.OptunaPruner(make, goal)

    return {
        "no termination": (_replay.NoStopping, False),
        "autostop per-job rules": (_replay.NoStopping, True),
        "autostop cross-job ASHA + rules": (cross(cross_job.Policy.ASHA), True),
        "autostop cross-job median + rules": (cross(cross_job.Policy.MEDIAN), True),
        "Optuna MedianPruner (1 start-up trial)": (
            pruner(lambda: optuna.pruners.MedianPruner(n_startup_trials=1)),
            False,
        ),
        "Optuna MedianPruner (2 start-up trials)": (
            pruner(lambda: optuna.pruners.MedianPruner(n_startup_trials=2)),
            False,
        ),
        "Optuna HyperbandPruner": (
            pruner(lambda: optuna.pruners.HyperbandPruner(min_resource=first_report, max_resource=budget)),
            False,
        ),
        "Optuna SuccessiveHalvingPruner (ASHA)": (
            pruner(lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=first_report)),
            False,
        ),
        "Syne Tune ASHA": (
            lambda: _replay.SyneTuneAsha(goal, max_steps=budget, grace_period=first_report),
            False,
        ),
    }


def replay_table(
    spec: spec_module.SweepSpec, jobs: Sequence[_replay.RecordedJob], stop_latency: float
) -> list[str]:
    summaries = _replay.compare(
        jobs,
        policies(spec),
        goal=spec.objective.goal,
        orders=ORDERS,
        parallel=REPLAY_PARALLEL,
        stop_latency=stop_latency,
        seed=ORDER_SEED,
    )
    return [*_replay.HEADER, *("| " + " | ".join(summary.row()) + " |" for summary in summaries)]


def job_table(jobs: Sequence[_replay.RecordedJob], sweep: report.SweepRecord) -> list[str]:
    lines = ["| job | parameters | seconds | final val SSIM | per-job rule |", "|---|---|---:|---:|---|"]
    for recorded, job in zip(jobs, sweep.jobs, strict=True):
        rule = f"{recorded.rule_name} at step {recorded.rule_step}" if recorded.rule_step is not None else "-"
        lines.append(
            f"| {job.name} | {report.params_text(job.params)} | {recorded.duration:.0f} | "
            f"{recorded.final_objective:.4f} | {rule} |"
        )
    return lines


def realistic(root: Path, stop_latency: float) -> list[str]:
    spec = with_rendered_datasets(spec_module.load_spec(REALISTIC), root)
    progress = progress_module.PlainProgress(sys.stderr)
    log(f"realistic: {len(spec.jobs())} jobs to their budget of {spec.steps_per_job} steps")
    sweep = local.LocalSweep(spec, root / "run", progress=progress, stop_jobs=False).run()
    jobs = recorded_jobs(spec, sweep, root / "run")
    best = _replay.best_job(jobs, spec.objective.goal)
    return [
        "### Realistic sweep (nothing bad on purpose)",
        "",
        f"{len(jobs)} jobs of {spec.steps_per_job} steps (`{REALISTIC.relative_to(REALISTIC.parents[3])}`), "
        f"recorded {spec.max_parallel_jobs} at a time; replayed in {ORDERS} random launch orders, "
        f"{REPLAY_PARALLEL} at a time, stopped jobs charged {stop_latency:.1f} s of stop latency. "
        f"Running every job to its budget: {sum(job.duration for job in jobs):.0f} job-seconds; best "
        f"configuration {best.name if best else '-'}.",
        "",
        *replay_table(spec, jobs, stop_latency),
        "",
        *job_table(jobs, sweep),
        "",
    ]


def pathological(root: Path) -> tuple[list[str], float]:
    spec = with_rendered_datasets(spec_module.load_spec(PATHOLOGICAL), root)
    progress = progress_module.PlainProgress(sys.stderr)
    log("pathological: autostop's per-job rules, for real")
    stopped = local.LocalSweep(spec, root / "autostop", progress=progress).run()
    log("pathological: no termination")
    full = local.LocalSweep(spec, root / "full", progress=progress, stop_jobs=False).run()
    latencies = [job.seconds_to_stop for job in stopped.jobs if job.seconds_to_stop is not None]
    stop_latency = statistics.median(latencies) if latencies else 0.0
    used = sum(job.compute_seconds for job in stopped.jobs)
    baseline = sum(job.compute_seconds for job in full.jobs)
    truth = {job.name: job.objective(spec.objective.metric) for job in full.jobs}
    finite = {name: value for name, value in truth.items() if value is not None}
    best = max(finite.values()) if finite else math.nan
    completed = [
        job.name for job in stopped.jobs if not job.stopped_by_a_rule and truth.get(job.name) is not None
    ]
    winner = max(completed, key=lambda name: finite[name]) if completed else None
    regret = best - finite[winner] if winner else math.inf
    jobs = recorded_jobs(spec, full, root / "full")
    lines = [
        "### Pathological sweep (the demo's: 6 of 8 jobs bad on purpose)",
        "",
        f"Measured: the sweep run with autostop's per-job rules used {used:.0f} job-seconds, the same sweep "
        f"run without stopping {baseline:.0f}: **{100 * (1 - used / baseline):.1f}% saved**, "
        f"{sum(1 for job in stopped.jobs if job.stopped_by_a_rule)}/{len(stopped.jobs)} jobs stopped, winner "
        f"{winner or '-'}, regret {regret:.4f}; median stop latency {stop_latency:.1f} s. Every job pays its "
        "start-up (Python, TensorFlow, the first traced step) whether stopped or not.",
        "",
        f"Replayed on the run without stopping, {ORDERS} launch orders, {REPLAY_PARALLEL} at a time:",
        "",
        *replay_table(spec, jobs, stop_latency),
        "",
    ]
    return lines, stop_latency


def main() -> str:
    started = time.monotonic()
    lines = [
        "## Sweep compute saved: autostop against no termination and Optuna's pruners",
        "",
        f"Command: `{COMMAND}`",
        "",
        " ".join(
            (
                "Two sweeps, each run locally to every job's budget once, then every policy replayed on the",
                "recorded curves in random launch orders (`bench/_replay.py`): compute saved is against",
                "running every job to its budget; regret is the best configuration's final validation SSIM",
                "minus the winner's (0: stopping lost nothing); ranges are over the launch orders.",
            )
        ),
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as temporary:
        root = Path(temporary)
        pathological_lines, stop_latency = pathological(root / "pathological")
        lines += realistic(root / "realistic", stop_latency)
        lines += pathological_lines
    lines += [f"Wall time of the benchmark: {time.monotonic() - started:.0f} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
