"""Sweep compute saved and regret: autostop against no termination and Optuna's pruners, on two sweeps.

Run: ``.venv/bin/python -m bench.sweep_savings`` (``python -m bench sweep_savings`` rewrites its section of
``docs/benchmarks.md``); ``--help`` for the launch orders' options and ``--record``.

1. **Realistic** (``training/sweep/specs/realistic.yaml``): 16 jobs, learning rate x decay x batch size x
   dataset variant, nothing bad on purpose, every rule at its defaults. Every job is run once to its full
   budget (no termination; the per-job rules are evaluated afterwards over each job's recorded trial, so the
   step at which each would have fired is known). Then every policy is replayed on those same recordings
   (``bench/_replay.py``) in several random launch orders with 4 jobs at a time, as a SageMaker sweep would
   run them: no termination; autostop's per-job rules; autostop's cross-job rule (ASHA, and the median
   rule) together with the per-job rules, at the defaults a ``cross_job: {policy: ...}`` section gets (and
   ASHA with one default changed at a time -- first rung, min_reports, reduction factor -- to show what
   each is worth); Optuna's MedianPruner (its defaults, then
   2 and 1 start-up trials), HyperbandPruner and SuccessiveHalvingPruner (Optuna's implementation of
   asynchronous successive halving), and Syne Tune's ``ASHA`` scheduler (AWS's tuning library; ``make
   bench`` installs it from ``requirements-bench.txt``).
2. **Pathological** (``training/sweep/specs/demo.yaml``, the ``make demo`` sweep: 6 of 8 jobs bad on
   purpose): autostop as the spec configures it measured for real (the sweep run with stops, against the
   same sweep run without), then the same replays.

The peers are at their documented defaults, with the resource counted the way their defaults count it: one
unit is one report (Syne Tune's ``grace_period=1``, Optuna's ``HyperbandPruner(min_resource=1)``, its
``SuccessiveHalvingPruner``'s ``min_resource="auto"``, a hundredth of a finished trial's reports, at least
one). The replay reports training steps, so the first report is given in steps (the validation interval),
with the budget (``max_t`` / ``max_resource``); given so, the SuccessiveHalvingPruner prunes from the
start, where ``"auto"`` would wait for a first finished trial. Optuna's ``MedianPruner`` waits for 5
finished trials by default; the replays also run it with 2 and with 1, which a 16-job sweep would rather use.

Compute is job-seconds (each job's process time, start-up included); regret is the best configuration's
final validation SSIM minus the winner's (the best among jobs that ran their whole budget): 0 means
stopping lost nothing. Every policy is replayed on the same recording, so the comparison between policies
does not depend on how loaded the machine was while it recorded; the absolute seconds (and so each
policy's share saved) do. Recording trains every job (tens of minutes on 2 cores), replaying takes seconds,
so the recordings the documented figures come from are committed (``bench/recordings/sweep_savings/``: each
sweep's record and the step at which each per-job rule would have fired, evaluated when it was recorded) and
replayed while their spec is unchanged: a fresh clone reproduces ``docs/benchmarks.md``'s tables exactly,
without training. The trials themselves are kept in ``runs/bench/sweep_savings/`` (git-ignored) by the
machine that recorded them. ``--record`` records afresh (after a change to the training or rule code, say)
and rewrites the committed copies.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# smdebug logs every trial it opens to stdout, which is this benchmark's markdown section.
os.environ.setdefault("SMDEBUG_LOG_LEVEL", "error")

from bench import _replay
from lambdas.stop_training_job import cross_job
from training.sweep import local, report, spec_schema
from training.sweep import progress as progress_module
from training.sweep import spec as spec_module

COMMAND = ".venv/bin/python -m bench.sweep_savings"
REPOSITORY = Path(__file__).resolve().parents[1]
SPECS = Path(spec_module.__file__).parent / "specs"
# The recorded sweeps (renders, each job's output, records.json) are kept here between runs (``runs/`` is
# git-ignored): recording takes tens of minutes of training, replaying seconds. ``--record`` records afresh.
CURVES = REPOSITORY / "runs" / "bench" / "sweep_savings"
# The recordings the documented figures come from, committed (module docstring): a fresh clone replays them.
RECORDINGS = REPOSITORY / "bench" / "recordings" / "sweep_savings"
RECIPE_FILE = "recipe.json"
# Spec sections a run without stopping does not depend on (the per-job rules are kept: they are evaluated
# afterwards on each job's recorded trial, which holds what the debugger section and the rules had saved).
NOT_IN_A_FULL_RUN = ("stopping", "cross_job", "description", "tags")
REALISTIC = SPECS / "realistic.yaml"
# The realistic sweep is recorded once per training seed (the first is the spec's own). One recording is one
# draw of every job's learning curve: which configuration starts slowly and which overtakes whom changes
# from draw to draw (the jobs do not ask for TensorFlow's deterministic kernels, so even a re-run of one seed
# is another draw), and a policy that keeps the best job on one draw can lose it on another. Every policy is
# replayed on every recording, in the same launch orders.
REALISTIC_SEEDS = (11, 12, 13)
PATHOLOGICAL = SPECS / "demo.yaml"
VIEWS = 6
IMAGE_SIZE = 32
DESIGNS_PER_BATCH = 16
# dataset name -> (designs, render seed)
DATASETS = {"small": (96, 7), "large": (192, 11), "shapes": (96, 7)}
ORDERS = 7
REPLAY_PARALLEL = 4
ORDER_SEED = 2026
# A second, larger set of launch orders (another seed): a policy's defaults are judged on orders they were not
# chosen on, and a regret that 7 orders happen to miss shows up.
CHECK_ORDERS = 140
AUTOSTOP = "autostop cross-job ASHA + rules"  # the default the targets are about
PEERS = ("Optuna", "Syne Tune")


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


def recipe(document: object) -> str:
    """What a recording depends on, as canonical text: a cached recording is reused only for the same."""
    return json.dumps(
        {"bench": [VIEWS, IMAGE_SIZE, DESIGNS_PER_BATCH], "recording": document}, sort_keys=True, default=str
    )


def cached(directory: Path, wanted: str, *, reuse: bool) -> bool:
    """A finished recording of the same recipe is in ``directory`` (its recipe is written last)."""
    path = directory / RECIPE_FILE
    return reuse and path.is_file() and path.read_text(encoding="utf-8") == wanted


def start_recording(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)


def with_rendered_datasets(
    spec: spec_module.SweepSpec, root: Path, *, reuse: bool = True
) -> spec_module.SweepSpec:
    datasets = {}
    for name in spec.datasets:
        designs, seed = DATASETS[name]
        directory = root / "data" / name
        wanted = recipe({"designs": designs, "seed": seed})
        if cached(directory, wanted, reuse=reuse):
            log(f"dataset {name}: reusing the renders in {directory}")
        else:
            log(f"rendering dataset {name}: {designs} designs, seed {seed}")
            start_recording(directory)
            prepare_dataset(directory, designs, seed)
            (directory / RECIPE_FILE).write_text(wanted, encoding="utf-8")
        datasets[name] = spec_module.Dataset(name, {"train": str(directory / "shards")})
    return spec.with_overrides(datasets=datasets)


def recording_recipe(document: Mapping[str, object], *, stop_jobs: bool) -> str:
    """The recipe of a sweep's recording: without stopping, the stopping sections do not matter."""
    if not stop_jobs:
        document = {key: value for key, value in document.items() if key not in NOT_IN_A_FULL_RUN}
    return recipe({"spec": document, "stop_jobs": stop_jobs})


def spec_recipe(spec_path: Path, *, stop_jobs: bool, seed: int | None = None) -> str:
    """The recipe of ``spec_path``'s recording as the file reads, ``seed`` (if given) replacing its seed."""
    import yaml

    document = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    if seed is not None:
        document = {**document, "seed": seed}
    return recording_recipe(document, stop_jobs=stop_jobs)


def recorded_sweep(
    spec: spec_module.SweepSpec, wanted: str, directory: Path, *, stop_jobs: bool, reuse: bool = True
) -> report.SweepRecord:
    """Run the sweep into ``directory``, or load the finished run of the recipe ``wanted`` already there.

    A run without stopping depends on the spec's training, not on its stopping settings, so changing the
    ``stopping`` or ``cross_job`` section keeps it (``recording_recipe``); a run with stopping depends on the
    whole spec.
    """
    if cached(directory, wanted, reuse=reuse):
        log(f"{spec.name}: reusing the recorded sweep in {directory}")
        return report.SweepRecord.load(directory)
    start_recording(directory)
    started = time.monotonic()
    sweep = local.LocalSweep(
        spec, directory, progress=progress_module.PlainProgress(sys.stderr), stop_jobs=stop_jobs
    ).run()
    if sweep.interrupted:
        raise SystemExit(f"{spec.name}: the recording was interrupted; nothing kept")
    (directory / RECIPE_FILE).write_text(wanted, encoding="utf-8")
    log(f"{spec.name}: recorded in {time.monotonic() - started:.0f} s ({directory})")
    return sweep


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


@dataclasses.dataclass(frozen=True)
class Recording:
    """A recorded sweep as the replays use it, in a file that can be committed.

    ``rule_stops``: per job, the first step at which a per-job rule found issues in its trial and the rule
    (``first_rule_stop``, evaluated when recorded); a job no rule would have stopped is absent. Log paths
    are dropped: they name the recording machine's folders.
    """

    recipe: str
    sweep: report.SweepRecord
    rule_stops: Mapping[str, tuple[int, str]]

    def save(self, path: Path) -> None:
        sweep = self.sweep.to_json_dict()
        for job in sweep["jobs"]:
            job["log_path"] = None
        document = {
            "recipe": self.recipe,
            "rule_stops": {job: [step, rule] for job, (step, rule) in sorted(self.rule_stops.items())},
            "sweep": sweep,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        # Keys in the record's own order (a job's parameters read in the order the spec lists them).
        path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Recording:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                recipe=str(document["recipe"]),
                sweep=report.SweepRecord.from_json_dict(document["sweep"]),
                rule_stops={
                    job: (int(step), str(rule)) for job, (step, rule) in document["rule_stops"].items()
                },
            )
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise SystemExit(
                f"{path}: not a sweep-savings recording ({error}); --record records afresh"
            ) from None


def recording(
    spec_path: Path,
    root: Path,
    run: str,
    kept: Path,
    *,
    stop_jobs: bool,
    record: bool,
    seed: int | None = None,
) -> Recording:
    """The sweep of ``spec_path`` as recorded: the committed copy ``kept`` if it has the same recipe, else
    the finished run ``root / run`` of the same recipe, else a new recording in ``root / run`` (renders in
    ``root / "data"``); either of the last two is written to ``kept``. ``record``: always a new recording.
    ``seed`` replaces the spec's seed (every job's training seed).
    """
    wanted = spec_recipe(spec_path, stop_jobs=stop_jobs, seed=seed)
    if not record and kept.is_file():
        committed = Recording.load(kept)
        if committed.recipe == wanted:
            log(f"{committed.sweep.name}: replaying the committed recording {kept.relative_to(REPOSITORY)}")
            return committed
        log(f"{kept.relative_to(REPOSITORY)} is of another recipe (the spec changed): recording afresh")
    spec = spec_module.load_spec(spec_path)
    if seed is not None:
        spec = spec.with_overrides(seed=seed)
    spec = with_rendered_datasets(spec, root, reuse=not record)
    sweep = recorded_sweep(spec, wanted, root / run, stop_jobs=stop_jobs, reuse=not record)
    stops: dict[str, tuple[int, str]] = {}
    if not stop_jobs:
        for job in sweep.jobs:
            found = first_rule_stop(spec, root / run / "jobs" / job.name / "opt_ml" / "output" / "tensors")
            if found is not None:
                stops[job.name] = found
    fresh = Recording(wanted, sweep, stops)
    fresh.save(kept)
    log(f"{sweep.name}: recording written to {kept.relative_to(REPOSITORY)}")
    return fresh


def recorded_jobs(spec: spec_module.SweepSpec, recorded: Recording) -> list[_replay.RecordedJob]:
    metric = spec.objective.metric
    curve_name = metric.split(":", 1)[1]
    jobs = []
    for job in recorded.sweep.jobs:
        rule = recorded.rule_stops.get(job.name)
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


def validation_interval(spec: spec_module.SweepSpec) -> int:
    """Steps between two validations: the spec's hyperparameter, else the training container's default."""
    return spec_schema.validation_interval(spec.hyperparameters)


# One default of autostop's ASHA changed at a time: the label's end, and the change. The reduction factor
# goes above the default 2, to 3 (Syne Tune's default) and 4 (Optuna's SuccessiveHalvingPruner's): what a
# more aggressive halving saves, and what it loses. "judged once per rung" is the stopping form
# as Syne Tune and Ray Tune run it (a job judged on arrival only).
ASHA_CHANGES: tuple[tuple[str, dict[str, int | bool]], ...] = (
    ("judged once per rung (no rejudge)", {"rejudge": False}),
    ("first rung at 100 steps", {"grace_period": 100}),
    ("min_reports 2", {"min_reports": 2}),
    ("reduction factor 3", {"reduction_factor": 3}),
    ("reduction factor 4", {"reduction_factor": 4}),
)


def cross_job_policy(
    spec: spec_module.SweepSpec, policy: cross_job.Policy, **changes: int | bool
) -> Callable[[], _replay.Policy]:
    """What ``cross_job: {policy: ...}`` (and the changes) gives this spec, through the spec's own section."""
    compared = spec.with_overrides(cross_job=spec_module.CrossJobSpec(policy=policy, **changes))
    settings = compared.cross_job_settings()
    if settings is None:
        raise ValueError("a spec with a cross_job section has cross-job settings")
    return lambda: _replay.CrossJob(settings)


# The settings of autostop's ASHA a user would turn to trade savings for safety: every combination, replayed
# beside the peers to draw the trade-off (which policies no other policy beats on both counts).
TRADE_OFF_GRID: tuple[dict[str, int | bool], ...] = tuple(
    {
        "reduction_factor": factor,
        "min_reports": reports,
        "rejudge": rejudge,
        **({"grace_period": 100} if late else {}),
    }
    for factor in (2, 3, 4)
    for reports in (2, 3)
    for rejudge in (True, False)
    for late in (False, True)
)


TRADE_OFF_TEXT = " ".join(
    (
        f"autostop's ASHA in {len(TRADE_OFF_GRID)} settings (`reduction_factor` 2, 3, 4 x",
        "`min_reports` 2, 3 x `rejudge` true, false x the first rung at the first validation or at step",
        "100) beside the peers; a policy is beaten when another saves at least as much (median), keeps the",
        "best configuration at least as often and has no more mean regret, and is better on one of them.",
        "Shown: every peer, and every setting nothing beats (the frontier of savings against regret). Which",
        "setting suits a sweep depends on how much its learning curves cross: this says what each setting",
        "buys, not which is best.",
    )
)


def setting_label(changes: Mapping[str, int | bool]) -> str:
    """An ASHA setting as a reader would write it in a ``cross_job`` section."""
    return "autostop ASHA " + ", ".join(f"{name} {str(value).lower()}" for name, value in changes.items())


def policies(spec: spec_module.SweepSpec) -> dict[str, tuple[Callable[[], _replay.Policy], bool]]:
    """Every policy replayed at its defaults (module docstring); autostop's as a spec's section gets them.

    The peers' resource is the training step the replay reports them (``trial.report(value, step)``, Syne
    Tune's ``time_attr``); their documented defaults count it in reports (grace_period / min_resource = 1: the
    first report), so they are given the first report in steps, ``validation_interval``, and the budget.
    """
    import optuna

    goal = spec.objective.goal
    budget = spec.steps_per_job
    first_report = validation_interval(spec)

    def pruner(make: Callable[[], object]) -> Callable[[], _replay.Policy]:
        return lambda: _replay.OptunaPruner(make, goal)

    return {
        "no termination": (_replay.NoStopping, False),
        "autostop per-job rules": (_replay.NoStopping, True),
        "autostop cross-job ASHA + rules": (cross_job_policy(spec, cross_job.Policy.ASHA), True),
        "autostop cross-job median + rules": (cross_job_policy(spec, cross_job.Policy.MEDIAN), True),
        # autostop's defaults changed one at a time, to show what each is worth on the same curves.
        **{
            f"autostop cross-job ASHA + rules, {label}": (
                cross_job_policy(spec, cross_job.Policy.ASHA, **change),
                True,
            )
            for label, change in ASHA_CHANGES
        },
        "Optuna MedianPruner (defaults: 5 start-up trials)": (
            pruner(lambda: optuna.pruners.MedianPruner()),
            False,
        ),
        "Optuna MedianPruner (2 start-up trials)": (
            pruner(lambda: optuna.pruners.MedianPruner(n_startup_trials=2)),
            False,
        ),
        "Optuna MedianPruner (1 start-up trial)": (
            pruner(lambda: optuna.pruners.MedianPruner(n_startup_trials=1)),
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


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """How the replays are drawn and where the recordings live (``python -m bench.sweep_savings --help``)."""

    orders: int = ORDERS
    seed: int = ORDER_SEED
    check_orders: int = CHECK_ORDERS
    curves: Path = CURVES
    record: bool = False


def pooled_replays(
    spec: spec_module.SweepSpec,
    recordings: Sequence[Sequence[_replay.RecordedJob]],
    replayed: Mapping[str, tuple[Callable[[], _replay.Policy], bool]],
    stop_latency: float,
    *,
    orders: int,
    seed: int,
) -> list[_replay.Summary]:
    """Each policy replayed on every recording in the same ``orders`` launch orders, pooled per policy."""
    per_recording = [
        _replay.compare(
            jobs,
            replayed,
            goal=spec.objective.goal,
            orders=orders,
            parallel=REPLAY_PARALLEL,
            stop_latency=stop_latency,
            seed=seed,
        )
        for jobs in recordings
    ]
    return [_replay.pooled(replays) for replays in zip(*per_recording, strict=True)]


def replay_table(summaries: Sequence[_replay.Summary]) -> list[str]:
    """The pooled replays of every policy as a table, and where autostop stands."""
    return [
        *_replay.HEADER,
        *("| " + " | ".join(summary.row()) + " |" for summary in summaries),
        "",
        standing(summaries),
    ]


def standing(summaries: Sequence[_replay.Summary], *, label: str = AUTOSTOP) -> str:
    """Where autostop's cross-job rule stands against each peer on these launch orders, in one sentence: the
    peers it matches or beats on both counts (saves at least as much, keeps the best configuration at least
    as often, no more regret on average), and how it compares with each of the others."""
    ours = next(summary for summary in summaries if summary.label == label)
    peers = [summary for summary in summaries if summary.label.startswith(PEERS)]

    def described(summary: _replay.Summary) -> str:
        return (
            f"{100 * statistics.median(summary.saved):.1f}% saved (median), regret 0 in "
            f"{summary.regret_zero}/{len(summary.regret)} replays, mean regret {summary.mean_regret:.4f}"
        )

    beaten = [peer for peer in peers if no_worse(ours, peer)]
    others = [peer for peer in peers if peer not in beaten]
    text = f"{label}: {described(ours)}. "
    if beaten:
        text += "At least as much saved, as often regret 0 and no more mean regret than: " + ", ".join(
            peer.label for peer in beaten
        )
        text += ". "
    if not others:
        return text + "That is every peer."
    return text + "Not so against: " + "; ".join(f"{peer.label}: {described(peer)}" for peer in others) + "."


def no_worse(one: _replay.Summary, other: _replay.Summary) -> bool:
    """``one`` saves at least as much (median), keeps the best configuration at least as often and has no
    more mean regret than ``other``."""
    return (
        statistics.median(one.saved) >= statistics.median(other.saved)
        and one.regret_zero >= other.regret_zero
        and one.mean_regret <= other.mean_regret
    )


def beats(one: _replay.Summary, other: _replay.Summary) -> bool:
    """``one`` is no worse than ``other`` on the three counts and better on one of them."""
    return no_worse(one, other) and not no_worse(other, one)


def trade_off(
    spec: spec_module.SweepSpec,
    recordings: Sequence[Sequence[_replay.RecordedJob]],
    stop_latency: float,
    *,
    orders: int,
    seed: int,
    replayed: Sequence[_replay.Summary],
) -> list[str]:
    """Every setting of ``TRADE_OFF_GRID`` beside the peers of ``replayed`` (already replayed on the same
    ``orders`` and ``seed``): the policies no other beats (the frontier of savings against regret), and for
    each peer whether a setting of autostop beats it."""
    peers = [summary for summary in replayed if summary.label.startswith(PEERS)]
    grid = {
        setting_label(changes): (cross_job_policy(spec, cross_job.Policy.ASHA, **changes), True)
        for changes in TRADE_OFF_GRID
    }
    ours = pooled_replays(spec, recordings, grid, stop_latency, orders=orders, seed=seed)
    summaries = [*ours, *peers]
    beaten_by = {
        summary.label: [other for other in summaries if other is not summary and beats(other, summary)]
        for summary in summaries
    }
    shown = [summary for summary in summaries if summary in peers or not beaten_by[summary.label]]
    shown.sort(key=lambda summary: -statistics.median(summary.saved))
    lines = [
        "| policy | compute saved (median) | regret (mean) | replays with regret 0 | beaten by |",
        "|---|---:|---:|---:|---|",
    ]
    for summary in shown:
        by = sorted(
            beaten_by[summary.label], key=lambda other: (other.mean_regret, -statistics.median(other.saved))
        )
        beaten_text = (by[0].label + (f" (and {len(by) - 1} more)" if len(by) > 1 else "")) if by else "-"
        lines.append(
            f"| {summary.label} | {100 * statistics.median(summary.saved):.1f}% | "
            f"{summary.mean_regret:.4f} | {summary.regret_zero}/{len(summary.regret)} | {beaten_text} |"
        )
    beaten = [peer.label for peer in peers if any(other in ours for other in beaten_by[peer.label])]
    unbeaten = [peer.label for peer in peers if peer.label not in beaten]
    return [
        *lines,
        "",
        "Peers beaten by a setting of autostop (it saves at least as much, keeps the best configuration at "
        "least as often and has no more mean regret, better on one of them): "
        + (", ".join(beaten) if beaten else "none")
        + ". Not beaten: "
        + (", ".join(unbeaten) if unbeaten else "none")
        + ".",
    ]


def widest_orders(options: Options) -> tuple[int, int]:
    """The launch orders (count, seed) of the largest replay: the check's, else the section's own."""
    if options.check_orders:
        return options.check_orders, options.seed + 1
    return options.orders, options.seed


def replay_tables(
    spec: spec_module.SweepSpec,
    recordings: Sequence[Sequence[_replay.RecordedJob]],
    stop_latency: float,
    options: Options,
) -> tuple[list[str], list[_replay.Summary]]:
    """The launch orders of the section (``--orders``, ``--seed``), then the larger check on other orders;
    with several recordings, each order is replayed on each (a row pools them all). Also returns the
    replays on ``widest_orders``, for the trade-off to reuse."""
    each = f" on each of the {len(recordings)} recordings" if len(recordings) > 1 else ""
    replayed = policies(spec)
    summaries = pooled_replays(
        spec, recordings, replayed, stop_latency, orders=options.orders, seed=options.seed
    )
    lines = [
        f"{options.orders} launch orders (seed {options.seed}){each}, {REPLAY_PARALLEL} jobs at a time:",
        "",
        *replay_table(summaries),
        "",
    ]
    if options.check_orders:
        check_orders, check_seed = widest_orders(options)
        summaries = pooled_replays(
            spec, recordings, replayed, stop_latency, orders=check_orders, seed=check_seed
        )
        lines += [
            f"Check on {check_orders} other launch orders (seed {check_seed}){each}:",
            "",
            *replay_table(summaries),
            "",
        ]
    return lines, summaries


def start_up_text(jobs: Sequence[_replay.RecordedJob]) -> str:
    """How long the jobs took to their first logged step: the start-up every job pays, and the load."""
    firsts = [job.step_elapsed[0][1] for job in jobs if job.step_elapsed]
    return f"{min(firsts):.0f}-{max(firsts):.0f} s" if firsts else "-"


def job_table(recordings: Sequence[tuple[report.SweepRecord, Sequence[_replay.RecordedJob]]]) -> list[str]:
    """One row per configuration; with several recordings, each recording's figure in turn (``a / b / c``)."""
    several = len(recordings) > 1
    per = " (per recording)" if several else ""
    lines = [
        f"| job | parameters | seconds{per} | final val SSIM{per} | per-job rule{per} |",
        "|---|---|---:|---:|---|",
    ]
    sweep = recordings[0][0]
    for index, job in enumerate(sweep.jobs):
        runs = [jobs[index] for _, jobs in recordings]
        rules = [
            f"{run.rule_name} at step {run.rule_step}" if run.rule_step is not None else "-" for run in runs
        ]
        lines.append(
            f"| {job.name} | {report.params_text(job.params)} | "
            + " / ".join(f"{run.duration:.0f}" for run in runs)
            + " | "
            + " / ".join(f"{run.final_objective:.4f}" for run in runs)
            + " | "
            + (" / ".join(rules) if any(rule != "-" for rule in rules) else "-")
            + " |"
        )
    return lines


def realistic_places(seed: int) -> tuple[str, Path]:
    """Where the realistic sweep of training seed ``seed`` is recorded (under the curves folder) and kept
    (committed); the spec's own seed keeps the plain names."""
    if seed == spec_module.load_spec(REALISTIC).seed:
        return "run", RECORDINGS / "realistic.json"
    return f"run-seed{seed}", RECORDINGS / f"realistic-seed{seed}.json"


def realistic_recording(
    root: Path, seed: int, *, record: bool = False
) -> tuple[report.SweepRecord, list[_replay.RecordedJob]]:
    """The realistic sweep recorded with every job's training seed ``seed``."""
    spec = spec_module.load_spec(REALISTIC)
    log(f"realistic, seed {seed}: {len(spec.jobs())} jobs to their budget of {spec.steps_per_job} steps")
    run, kept = realistic_places(seed)
    recorded = recording(REALISTIC, root, run, kept, stop_jobs=False, record=record, seed=seed)
    return recorded.sweep, recorded_jobs(spec, recorded)


def realistic(root: Path, stop_latency: float, options: Options) -> list[str]:
    spec = spec_module.load_spec(REALISTIC)
    recordings = [realistic_recording(root, seed, record=options.record) for seed in REALISTIC_SEEDS]
    described = []
    for seed, (sweep, jobs) in zip(REALISTIC_SEEDS, recordings, strict=True):
        best = _replay.best_job(jobs, spec.objective.goal)
        described.append(
            f"seed {seed}: recorded {sweep.started_at[:10]} in {sweep.wall_seconds:.0f} s, each job "
            f"{start_up_text(jobs)} to its first logged step, every job to its budget "
            f"{sum(job.duration for job in jobs):.0f} job-seconds, best configuration "
            f"{best.name if best else '-'}"
        )
    replayed_recordings = [jobs for _, jobs in recordings]
    tables, widest = replay_tables(spec, replayed_recordings, stop_latency, options)
    trade_orders, trade_seed = widest_orders(options)
    return [
        "### Realistic sweep (nothing bad on purpose)",
        "",
        f"{len(spec.jobs())} jobs of {spec.steps_per_job} steps (`{REALISTIC.relative_to(REPOSITORY)}`), "
        f"validated every {validation_interval(spec)} steps, recorded {spec.max_parallel_jobs} at a time "
        f"once per training seed ({len(REALISTIC_SEEDS)} recordings: a recording is one draw of the "
        f"learning curves, and the best configuration and how fast it starts change between draws): "
        + "; ".join(described)
        + f". The time to the first logged step is start-up and the load of the machine. Stopped jobs are "
        f"charged {stop_latency:.1f} s of stop latency.",
        "",
        *tables,
        f"Trade-off on the {trade_orders} launch orders (seed {trade_seed}) on each recording: "
        + TRADE_OFF_TEXT,
        "",
        *trade_off(
            spec, replayed_recordings, stop_latency, orders=trade_orders, seed=trade_seed, replayed=widest
        ),
        "",
        *job_table(recordings),
        "",
    ]


def pathological(root: Path, options: Options) -> tuple[list[str], float]:
    spec = spec_module.load_spec(PATHOLOGICAL)
    log("pathological: autostop as the spec configures it, for real")
    stopped = recording(
        PATHOLOGICAL,
        root,
        "autostop",
        RECORDINGS / "pathological-autostop.json",
        stop_jobs=True,
        record=options.record,
    ).sweep
    log("pathological: no termination")
    full_recording = recording(
        PATHOLOGICAL,
        root,
        "full",
        RECORDINGS / "pathological-full.json",
        stop_jobs=False,
        record=options.record,
    )
    full = full_recording.sweep
    latencies = [job.seconds_to_stop for job in stopped.jobs if job.seconds_to_stop is not None]
    stop_latency = statistics.median(latencies) if latencies else 0.0
    used = sum(job.compute_seconds for job in stopped.jobs)
    baseline = sum(job.compute_seconds for job in full.jobs)
    used_cpu = sum(job.cpu_seconds or 0.0 for job in stopped.jobs)
    baseline_cpu = sum(job.cpu_seconds or 0.0 for job in full.jobs)
    truth = {job.name: job.objective(spec.objective.metric) for job in full.jobs}
    finite = {name: value for name, value in truth.items() if value is not None}
    best = max(finite.values()) if finite else math.nan
    completed = [
        job.name for job in stopped.jobs if not job.stopped_by_a_rule and truth.get(job.name) is not None
    ]
    winner = max(completed, key=lambda name: finite[name]) if completed else None
    regret = best - finite[winner] if winner else math.inf
    jobs = recorded_jobs(spec, full_recording)
    best_job = _replay.best_job(jobs, spec.objective.goal)
    # The most any policy that keeps the best configuration could save on this recording: the best job runs
    # its whole budget, every other job at least to its first logged step.
    floor = (best_job.duration if best_job else 0.0) + sum(
        job.step_elapsed[0][1] if job.step_elapsed else job.duration for job in jobs if job is not best_job
    )
    configured = "per-job rules" + (
        f" and cross-job {spec.cross_job.policy.value}" if spec.cross_job is not None else ""
    )
    lines = [
        "### Pathological sweep (the demo's: 6 of 8 jobs bad on purpose)",
        "",
        f"Measured: the sweep run with autostop as `{PATHOLOGICAL.relative_to(REPOSITORY)}` configures it "
        f"({configured}) used {used:.0f} job-seconds, the same sweep run without stopping {baseline:.0f}: "
        f"**{100 * (1 - used / baseline):.1f}% saved**, "
        f"{sum(1 for job in stopped.jobs if job.stopped_by_a_rule)}/{len(stopped.jobs)} jobs stopped "
        f"({stop_text(stopped)}), winner {winner or '-'}, regret {regret:.4f}; median stop latency "
        f"{stop_latency:.1f} s. In CPU-seconds (less sensitive to the load, which differed between the two "
        f"runs on this shared machine): {used_cpu:.0f} against {baseline_cpu:.0f}, "
        f"{100 * (1 - used_cpu / baseline_cpu):.1f}% saved. Every job pays its start-up (Python, TensorFlow, "
        "the first traced step) whether stopped or not.",
        "",
        f"Replayed on the run without stopping (recorded {full.started_at[:10]}, {full.wall_seconds:.0f} s; "
        f"each job took {start_up_text(jobs)} to its first logged step). No policy that keeps the best "
        f"configuration ({best_job.name if best_job else '-'}) can save more than "
        f"{100 * (1 - floor / sum(job.duration for job in jobs)):.1f}% of this recording: the best job runs "
        "its budget and every other job at least to its first logged step." + own_section(spec),
        "",
        *replay_tables(spec, [jobs], stop_latency, options)[0],
    ]
    return lines, stop_latency


def own_section(spec: spec_module.SweepSpec) -> str:
    """Which replayed row is the spec's own ``cross_job`` section (the one the measured run used)."""
    if spec.cross_job is None:
        return ""
    section = spec.cross_job
    return (
        f" The spec's own `cross_job` section ({section.policy.value}, reduction factor "
        f"{section.reduction_factor:g}, min_reports {section.min_reports}, rejudge "
        f"{str(section.rejudge).lower()}) is the measured run's; the replays run the defaults and one change "
        "at a time."
    )


def stop_text(sweep: report.SweepRecord) -> str:
    """Which rule stopped which job at which step, in launch order."""
    stops = [
        f"{job.name} by {job.stopped_by_rule} at step {job.steps}"
        for job in sweep.jobs
        if job.stopped_by_a_rule
    ]
    return "; ".join(stops) if stops else "none"


def parse_options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_savings", description=__doc__)
    parser.add_argument(
        "--orders", type=int, default=ORDERS, help=f"launch orders replayed (default {ORDERS})"
    )
    parser.add_argument(
        "--seed", type=int, default=ORDER_SEED, help=f"seed of the launch orders (default {ORDER_SEED})"
    )
    parser.add_argument(
        "--curves",
        type=Path,
        default=CURVES,
        help="where the recorded sweeps are kept (default runs/bench/...)",
    )
    parser.add_argument(
        "--check-orders",
        type=int,
        default=CHECK_ORDERS,
        help=f"launch orders of the check, seeded --seed + 1 (default {CHECK_ORDERS}; 0: no check)",
    )
    parser.add_argument("--record", action="store_true", help="record every sweep afresh, cached or not")
    arguments = parser.parse_args(argv)
    if arguments.orders < 1:
        parser.error("--orders must be >= 1")
    if arguments.check_orders < 0:
        parser.error("--check-orders must be >= 0")
    return Options(
        orders=arguments.orders,
        seed=arguments.seed,
        check_orders=arguments.check_orders,
        curves=arguments.curves,
        record=arguments.record,
    )


def main(argv: Sequence[str] | None = None) -> str:
    options = parse_options(argv)
    started = time.monotonic()
    options.curves.mkdir(parents=True, exist_ok=True)
    command = COMMAND + "".join(
        f" --{name} {value}"
        for name, value, default in (
            ("orders", options.orders, ORDERS),
            ("seed", options.seed, ORDER_SEED),
            ("check-orders", options.check_orders, CHECK_ORDERS),
        )
        if value != default
    )
    lines = [
        "## Sweep compute saved: autostop against no termination and Optuna's pruners",
        "",
        f"Command: `{command}`",
        "",
        " ".join(
            (
                "Two sweeps, each run locally to every job's budget once, then every policy replayed on the",
                "recorded curves in random launch orders (`bench/_replay.py`): compute saved is against",
                "running every job to its budget; regret is the best configuration's final validation SSIM",
                "minus the winner's (0: stopping lost nothing; inf: no job ran to its budget, so there is no",
                "winner); ranges are over the launch orders. The",
                "recordings are committed (`bench/recordings/sweep_savings/`) and replayed while the specs",
                "are unchanged (`--record` records afresh), so the command reproduces every number below",
                "from a fresh clone, without training.",
            )
        ),
        "",
    ]
    pathological_lines, stop_latency = pathological(options.curves / "pathological", options)
    lines += realistic(options.curves / "realistic", stop_latency, options)
    lines += pathological_lines
    lines += [f"Wall time of the benchmark: {time.monotonic() - started:.0f} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
