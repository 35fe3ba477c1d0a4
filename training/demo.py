"""``make demo``: a local sweep whose bad jobs stop themselves, from synthetic renders to the report.

    python -m training.demo [--out runs/demo] [--no-baseline] [--no-search] [--no-live]

What it does, in the order it prints it (no AWS account, no Docker, 6 to 12 minutes on 2 cores):

1. renders a small dataset of procedural designs (``autostop render``: meshes in several families, 6 views
   of 32x32 pixels each), and transforms the render batches into TFRecord shards with the same code as the
   render-transformer Lambda (``autostop transform local``);
2. runs the sweep ``training/sweep/specs/demo.yaml`` locally: 8 training jobs (learning rate x model variant;
   three kinds of bad configuration on purpose), 2 at a time, each a subprocess with SageMaker's container
   contract and the in-container Debugger rules on. A rule that finds issues sends the stop signal, the
   stop Lambda's own decision code decides, and the job gets SIGTERM, checkpoints and exits;
3. re-runs the stopped jobs without stopping, to measure what stopping them cost in the best model found
   (the regret; ``--no-baseline`` skips it);
4. writes the report (markdown, JSON, plots) and says, in plain words, what happened;
5. uses the best job's encoder as a similarity index, as a user would (``autostop embed``, ``evaluate``,
   ``similar``, ``tsne``; ``--no-search`` skips it), and says where to look.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.sweep import report
    from training.sweep import spec as spec_module

DEMO_SPEC = Path(__file__).parent / "sweep" / "specs" / "demo.yaml"
DESIGNS = 96
DESIGNS_PER_BATCH = 16
VIEWS = 6
IMAGE_SIZE = 32
RENDER_SEED = 7


def say(text: str = "") -> None:
    print(text, flush=True)


def explain(*parts: str) -> None:
    """A paragraph for someone who never read the code, wrapped to 100 columns."""
    say(textwrap.fill(" ".join(parts), width=100))


def heading(number: int, text: str) -> None:
    say(f"\n=== {number}. {text} ===")


def run_autostop(arguments: Sequence[str]) -> None:
    """Run an ``autostop`` subcommand in this process, printing the command line first."""
    from training import cli

    say("$ autostop " + " ".join(arguments))
    code = cli.main(list(arguments))
    if code != 0:
        raise SystemExit(f"demo: `autostop {' '.join(arguments)}` failed with exit code {code}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path("runs/demo"), help="where everything goes (default runs/demo)"
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip re-running the stopped jobs (no regret)"
    )
    parser.add_argument(
        "--no-search", action="store_true", help="skip the similarity search with the best job's encoder"
    )
    parser.add_argument("--no-live", action="store_true", help="plain progress lines even on a terminal")
    return parser


def prepare_data(out: Path) -> Path:
    """Render the designs and transform them into shards; returns the training channel's folder."""
    renders, data = out / "data" / "renders", out / "data"
    heading(1, "A small dataset: synthetic designs, rendered and transformed")
    explain(
        f"No real design data ships with autostop, so it makes some: {DESIGNS} procedural designs",
        f"(brackets, tubes, plates, lattices, ...), each rendered from {VIEWS} fixed viewpoints at",
        f"{IMAGE_SIZE}x{IMAGE_SIZE} pixels, packed into render batch archives.",
    )
    run_autostop(
        [
            "render",
            str(renders),
            "--designs",
            str(DESIGNS),
            "--designs-per-batch",
            str(DESIGNS_PER_BATCH),
            "--views",
            str(VIEWS),
            "--size",
            str(IMAGE_SIZE),
            "--seed",
            str(RENDER_SEED),
            "--workers",
            "2",
            "--contact-sheet",
            str(data / "contact-sheet.png"),
        ]
    )
    say()
    explain(
        "The archives become TFRecord shards, the training format, with the same code the",
        "render-transformer Lambda runs in AWS:",
    )
    run_autostop(
        [
            "transform",
            "local",
            str(renders),
            str(data),
            "--image-size",
            str(IMAGE_SIZE),
            "--num-views",
            str(VIEWS),
        ]
    )
    return data / "shards"


def explain_sweep(spec: spec_module.SweepSpec) -> None:
    heading(2, f"A sweep of {len(spec.jobs())} training jobs, {spec.max_parallel_jobs} at a time")
    explain(
        f"Each job trains the convolutional autoencoder for {spec.steps_per_job} steps, as a separate",
        "process laid out exactly like a SageMaker training container. The grid mixes good and bad",
        "settings on purpose:",
    )
    say("  - learning rate 0: nothing ever changes, the loss stays flat (a typo in a real sweep);")
    say("  - learning rate 1,000,000: far too large, the weights turn to NaN within a few steps;")
    say(
        "  - the deep_saturating variant: 16 narrow layers in the bottleneck, whose units die (ReLU stuck at "
        "0), so no gradient reaches the encoder;"
    )
    say("  - learning rates 0.002 and 0.004 with the standard model: the ones worth paying for.")
    explain(
        "While a job trains, it records its tensors (Debugger format) and evaluates these rules on them:",
        ", ".join(rule.name for rule in spec.rules) + ".",
        "When a rule finds issues, the job emits a stop signal; the same decision code as the stop",
        "Lambda in AWS checks it (opt-in tag, job still running, a rule that stops) and the runner stops",
        "the job with SIGTERM: it writes a checkpoint and exits, as on SageMaker.",
    )
    settings = spec.cross_job_settings()
    if settings is not None:
        rungs = ", ".join(str(rung) for rung in settings.rungs())
        explain(
            "The jobs are also compared with each other, which no per-job rule can do: at steps",
            f"{rungs} ({settings.policy.value}, reduction factor {settings.reduction_factor:g}), a job whose",
            f"{spec.objective.metric} is not among the best 1/{settings.reduction_factor:g} of the jobs that",
            "reached the same step is stopped through the same decision path (rule CrossJob), however",
            "healthy it is.",
        )
    for job in spec.jobs():
        say(f"  {job.name}: {job.label()}")
    say("")


def explain_results(record: report.SweepRecord, spec: spec_module.SweepSpec) -> None:
    """Step 4 in words (where to look comes last, after the search: ``explain_where_to_look``)."""
    from training.sweep import local, report

    totals = report.totals(record)
    heading(4, "What happened")
    for job in record.jobs:
        if job.stopped_by_a_rule:
            to_stop = (
                f", and exited {job.seconds_to_stop:.1f} s after the signal" if job.seconds_to_stop else ""
            )
            at = f"at step {job.rule_step}" if job.rule_step is not None else ""
            found = (
                f"worse than the jobs compared with it {at} (rule {job.stopped_by_rule})"
                if job.stopped_by_rule == local.CROSS_JOB_RULE
                else f"rule {job.stopped_by_rule} found issues {at}"
            )
            say(
                f"  {job.name} ({_params(job.params)}): {found}; "
                f"stopped after {job.steps} of {job.budget_steps} steps{to_stop}."
            )
        elif job.state == report.COMPLETED:
            value = job.objective(record.objective_metric)
            shown = f"{value:.3f}" if value is not None else "-"
            say(
                f"  {job.name} ({_params(job.params)}): ran its full budget; "
                f"{record.objective_metric} {shown}."
            )
        else:
            say(f"  {job.name} ({_params(job.params)}): {job.state} {job.failure_reason or ''}".rstrip())
    say()
    estimate = (
        f"{totals.compute_full_budget_seconds:.0f} s at full budget, "
        f"{totals.compute_saved_percent:.0f}% saved (the stopped jobs' remaining steps at the sweep's "
        "steady-state speed, start-up left out)"
    )
    if totals.compute_full_budget_measured_seconds is not None:
        explain(
            f"Compute: the jobs used {totals.compute_used_seconds:.0f} process-seconds. Measured (the",
            f"stopped jobs re-run to their full {spec.steps_per_job} steps without stopping), every job at",
            f"its full budget used {totals.compute_full_budget_measured_seconds:.0f} s:",
            f"{totals.compute_saved_measured_percent:.0f}% saved.",
        )
        explain(f"Estimated without that re-run, as a SageMaker sweep would report it: {estimate}.")
    else:
        explain(
            f"Compute: the jobs used {totals.compute_used_seconds:.0f} process-seconds. Not measured (no",
            f"re-run of the stopped jobs); estimated: {estimate}.",
        )
    explain(
        "Every job, stopped or not, pays its start-up (starting Python and TensorFlow, building the model)",
        f"in full; of the training steps themselves, {totals.steps_saved_percent:.0f}% were never run. On",
        "SageMaker, where jobs train for hours, the compute saved approaches that share.",
    )
    if record.interrupted:
        explain("The sweep was interrupted: interrupted and unstarted jobs count no saving.")
    if totals.winner is not None and totals.winner_value is not None:
        explain(
            f"Best job: {totals.winner}, {record.objective_metric} {totals.winner_value:.3f}",
            "(higher is better).",
        )
    if totals.regret is not None:
        explain(
            f"Regret: {totals.regret:.4f}. Run to the end without stopping, the best configuration would",
            f"have been {totals.best_possible};",
            "the stops cost nothing in the model you would pick."
            if totals.regret == 0
            else "stopping early picked a worse model, by the regret above.",
        )


def explain_where_to_look(
    files: report.ReportFiles, seconds: float, out: Path, *, search: Path | None = None
) -> None:
    say(f"\nThe demo took {seconds / 60:.1f} minutes.")
    say(f"Report:       {files.markdown}")
    say(f"Plots:        {', '.join(str(plot) for plot in files.plots)}")
    say(f"Job folders:  {out / 'jobs'}/<job>/ (job.log, rule-events.jsonl, tags.json, opt_ml/)")
    say(f"Status table: autostop sweep status {out}")
    if search is not None:
        say(f"Search:       {search}/ (embeddings/: the index; tsne/: picture, TensorBoard projector)")
    explain(
        "To run sweeps like this on SageMaker, deploy the stacks (README, Deploy) and run",
        "`autostop sweep run <spec> --backend sagemaker` (try --dry-run first: it needs no credentials).",
    )


def search_by_shape(record: report.SweepRecord, shards: Path, out: Path) -> Path | None:
    """Step 5: the best job's encoder as a similarity index, with the commands a user would run.

    Returns the folder it wrote, or None when there is no best job with a saved model (an interrupted or
    failed sweep): the demo then says so and ends without the search.
    """
    from training.analysis import embeddings as embeddings_module
    from training.sweep import report

    heading(5, "Search by shape with the best job's encoder")
    winner = report.totals(record).winner
    model = out / "jobs" / winner / "opt_ml" / "model" if winner else None
    if model is None or not model.is_dir():
        explain("No job finished with a saved model, so there is no encoder to search with.")
        return None
    search = out / "search"
    embeddings = search / "embeddings"
    explain(
        "The autoencoder is trained for its bottleneck: its encoder turns a design's views into one vector,",
        f"and designs that look alike get vectors close together. {winner}'s encoder indexes every design:",
    )
    run_autostop(["embed", str(model), str(shards), "-o", str(embeddings)])
    say()
    explain(
        "How well does it group designs? Each design queries all the others; precision@5 is the share of",
        "its 5 nearest designs that are of its own family. (These designs include the ones the model",
        "trained on: the demo's dataset is small. `python -m bench model_quality` measures designs and",
        "families no model saw.)",
    )
    run_autostop(["evaluate", str(embeddings), "-k", "5"])
    say()
    query = embeddings_module.EmbeddingSet.load(embeddings).design_ids[0]
    explain(f"The designs most like {query}, as `autostop similar` finds them:")
    run_autostop(["similar", str(embeddings), query, "-k", "5"])
    say()
    explain("A picture of the whole index (t-SNE, coloured by family):")
    run_autostop(["tsne", str(embeddings), "-o", str(search / "tsne"), "--title", f"encoder of {winner}"])
    return search


def _params(params: dict[str, object]) -> str:
    return ", ".join(
        f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}" for key, value in params.items()
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    started = time.monotonic()
    out: Path = arguments.out
    say("autostop demo: a parameter sweep whose bad training jobs stop themselves (local, no AWS account).")
    say(f"Everything it writes goes under {out}/.")
    shards = prepare_data(out)

    from training.sweep import local, report
    from training.sweep import progress as progress_module
    from training.sweep import spec as spec_module

    spec = spec_module.load_spec(DEMO_SPEC)
    dataset = next(iter(spec.datasets))
    spec = spec.with_overrides(datasets={dataset: spec_module.Dataset(dataset, {"train": str(shards)})})
    explain_sweep(spec)
    heading(3, "Running the sweep")
    progress = progress_module.make_progress(
        f"sweep {spec.name}", spec.objective.metric, live=False if arguments.no_live else None
    )
    record = local.LocalSweep(spec, out, progress=progress).run()
    if record.interrupted:
        say("The sweep was interrupted; the report shows what ran.")
    elif not arguments.no_baseline and any(job.stopped_by_a_rule for job in record.jobs):
        stopped = [job.name for job in record.jobs if job.stopped_by_a_rule]
        say()
        explain(
            f"Measuring the regret: {len(stopped)} stopped job(s) run again to their full budget with",
            "stopping off (rules still evaluated, nothing stopped), to see whether any would have beaten",
            "the best job.",
        )
        local.measure_baseline(spec, record, out / "baseline", progress=progress_module.PlainProgress())
        record.save(out)
    files = report.write_report(record, out)
    explain_results(record, spec)
    search = None if arguments.no_search or record.interrupted else search_by_shape(record, shards, out)
    explain_where_to_look(files, time.monotonic() - started, out, search=search)
    return 130 if record.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
