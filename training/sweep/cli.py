"""``autostop sweep``: run a sweep (locally or on SageMaker), show its status, rebuild its report.

    autostop sweep run SPEC [--backend local|sagemaker] [--dry-run] [--out DIR] [--baseline] ...
    autostop sweep status SWEEP|DIR [--alarm-prefix autostop-] [--json]
    autostop sweep report DIR

Heavy imports (TensorFlow in the jobs, the SageMaker SDK, boto3, matplotlib) wait until a command runs, so
``autostop --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_RUNS_DIRECTORY = Path("runs")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run a parameter sweep whose bad jobs stop themselves; show its status; write its report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="sweep_action", metavar="ACTION", required=True)

    run = actions.add_parser("run", help="validate a sweep spec and run every job (local or SageMaker)")
    run.add_argument("spec", type=Path, help="the sweep spec (.yaml, .yml or .toml; docs/sweeps.md)")
    run.add_argument(
        "--backend", choices=("local", "sagemaker"), default="local", help="where jobs run (default local)"
    )
    run.add_argument(
        "--dry-run", action="store_true", help="print what would run (SageMaker: every request); run nothing"
    )
    run.add_argument("--out", type=Path, help="report folder (default runs/<sweep name>)")
    run.add_argument("--name", help="override the sweep name (job names are <name>-NNN)")
    run.add_argument("--max-parallel-jobs", type=int, help="override max_parallel_jobs")
    run.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="NAME=CHANNEL=LOCATION",
        help="override a dataset channel's location, e.g. shapes=train=data/shards (repeatable)",
    )
    run.add_argument(
        "--baseline",
        action="store_true",
        help="local: afterwards re-run the stopped jobs without stopping, to measure the regret",
    )
    run.add_argument(
        "--signal-source",
        action="append",
        choices=("events", "alarm"),
        help="local: which stop signals go to the decision core: the evaluator's events (default) and/or "
        "the rule:<Name>=1 metric lines as per-job alarm events (repeatable)",
    )
    run.add_argument("--threads-per-job", type=int, help="local: TensorFlow threads per job")
    run.add_argument("--no-live", action="store_true", help="plain progress lines even on a terminal")
    run.add_argument("--image-uri", help="SageMaker: the training image (overrides sagemaker.image_uri)")
    run.add_argument("--role-arn", help="SageMaker: the execution role (overrides sagemaker.role_arn)")
    run.add_argument("--region", help="SageMaker: the region (overrides sagemaker.region / AWS_REGION)")
    run.set_defaults(handler=run_command)

    status = actions.add_parser("status", help="a sweep's jobs, rule statuses and who stopped what")
    status.add_argument("sweep", help="a SageMaker sweep's name, or a local sweep's folder (runs/<sweep>)")
    status.add_argument(
        "--alarm-prefix", default="autostop-", help="per-job alarm name prefix (default autostop-)"
    )
    status.add_argument("--region", help="AWS region (default: from the AWS configuration)")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(handler=status_command)

    report = actions.add_parser("report", help="rewrite a sweep's report from its records.json")
    report.add_argument("directory", type=Path, help="the sweep's folder (runs/<sweep>)")
    report.set_defaults(handler=report_command)


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code


def _apply_overrides(spec: Any, arguments: argparse.Namespace) -> Any:
    from training.sweep import spec as spec_module

    changes: dict[str, Any] = {}
    if arguments.name:
        if (
            not spec_module.SWEEP_NAME_PATTERN.fullmatch(arguments.name)
            or len(arguments.name) > spec_module.MAX_SWEEP_NAME_LENGTH
        ):
            raise spec_module.SpecError("--name", [f"{arguments.name!r} is not a sweep name"])
        changes["name"] = arguments.name
    if arguments.max_parallel_jobs is not None:
        if not 1 <= arguments.max_parallel_jobs <= spec_module.MAX_PARALLEL_JOBS:
            raise spec_module.SpecError("--max-parallel-jobs", [f"must be 1-{spec_module.MAX_PARALLEL_JOBS}"])
        changes["max_parallel_jobs"] = arguments.max_parallel_jobs
    if arguments.dataset:
        datasets = dict(spec.datasets)
        for item in arguments.dataset:
            name, _, rest = item.partition("=")
            channel, _, location = rest.partition("=")
            if name not in datasets or channel not in spec_module.CHANNELS or not location:
                raise spec_module.SpecError(
                    "--dataset", [f"{item!r}: expected NAME=CHANNEL=LOCATION with a dataset of the spec"]
                )
            channels = {**datasets[name].channels, channel: location}
            datasets[name] = spec_module.Dataset(name, channels)
        changes["datasets"] = datasets
    return spec.with_overrides(**changes) if changes else spec


def run_command(arguments: argparse.Namespace) -> int:
    from training.sweep import spec as spec_module

    try:
        spec = _apply_overrides(spec_module.load_spec(arguments.spec), arguments)
    except spec_module.SpecError as error:
        return _fail(str(error))
    directory = arguments.out or DEFAULT_RUNS_DIRECTORY / spec.name
    if arguments.backend == "sagemaker":
        return _run_sagemaker(spec, arguments, directory)
    return _run_local(spec, arguments, directory)


def _run_local(spec: Any, arguments: argparse.Namespace, directory: Path) -> int:
    from training.sweep import local, report
    from training.sweep import progress as progress_module
    from training.sweep import spec as spec_module

    jobs = spec.jobs()
    print(
        f"sweep {spec.name}: {len(jobs)} jobs, {spec.steps_per_job} steps each, at most "
        f"{spec.max_parallel_jobs} at once; rules {', '.join(rule.name for rule in spec.rules)}",
        flush=True,
    )
    if arguments.dry_run:
        for job in jobs:
            print(
                f"{job.name}: {job.label()}\n  hyperparameters.json {json.dumps(dict(job.hyperparameters))}"
            )
        return 0
    progress = progress_module.make_progress(
        f"sweep {spec.name}", spec.objective.metric, live=False if arguments.no_live else None
    )
    options: dict[str, Any] = {}
    if arguments.signal_source:
        options["signal_sources"] = tuple(dict.fromkeys(arguments.signal_source))
    if arguments.threads_per_job:
        options["threads_per_job"] = arguments.threads_per_job
    try:
        sweep = local.LocalSweep(spec, directory, progress=progress, **options)
        record = sweep.run()
    except spec_module.SpecError as error:
        return _fail(str(error))
    if arguments.baseline and not record.interrupted:
        print("measuring the regret: re-running the stopped jobs without stopping", flush=True)
        local.measure_baseline(
            spec, record, directory / "baseline", progress=progress_module.PlainProgress(), **options
        )
        record.save(directory)
    files = report.write_report(record, directory)
    summary = report.totals(record)
    print(
        f"\n{summary.stopped_by_rules} of {summary.jobs} jobs stopped by rules; compute used "
        f"{summary.compute_used_seconds:.0f} s of {summary.compute_full_budget_seconds:.0f} s "
        f"({summary.compute_saved_percent:.1f}% saved); best job {summary.winner or '-'}\n"
        f"report: {files.markdown}\nplots: {', '.join(str(plot) for plot in files.plots)}",
        flush=True,
    )
    return 130 if record.interrupted else 0


def _run_sagemaker(spec: Any, arguments: argparse.Namespace, directory: Path) -> int:
    from training.sweep import report
    from training.sweep import sagemaker as sagemaker_backend

    try:
        launch = sagemaker_backend.LaunchSettings.resolve(
            spec, image_uri=arguments.image_uri, role_arn=arguments.role_arn, region=arguments.region
        )
    except sagemaker_backend.LaunchError as error:
        return _fail(str(error))
    if arguments.dry_run:
        planned = sagemaker_backend.plan(spec, launch)
        sagemaker_backend.print_plan(planned, spec, lambda line: print(line, flush=True))
        return 0
    clients = sagemaker_backend.aws_clients(launch.region)
    record = sagemaker_backend.SageMakerSweep(spec, launch, clients).run()
    record.save(directory)
    files = report.write_report(record, directory)
    print(f"report: {files.markdown}", flush=True)
    return 130 if record.interrupted else 0


def status_command(arguments: argparse.Namespace) -> int:
    from training.sweep import status

    target = Path(arguments.sweep)
    if target.is_dir():
        try:
            statuses = status.local_status(target)
        except ValueError as error:
            return _fail(str(error))
    else:
        import boto3

        session = boto3.Session(region_name=arguments.region)
        statuses = status.sagemaker_status(
            arguments.sweep,
            sagemaker_client=session.client("sagemaker"),
            cloudwatch_client=session.client("cloudwatch"),
            alarm_prefix=arguments.alarm_prefix,
        )
        if not statuses:
            return _fail(f"no training jobs named {arguments.sweep}-NNN", 1)
    if arguments.json:
        print(json.dumps([item.to_json_dict() for item in statuses], indent=2))
    else:
        print(status.render(statuses))
    return 0


def report_command(arguments: argparse.Namespace) -> int:
    from training.sweep import report

    try:
        record = report.SweepRecord.load(arguments.directory)
    except ValueError as error:
        return _fail(str(error))
    files = report.write_report(record, arguments.directory)
    print(f"report: {files.markdown}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m training.sweep.cli ACTION ...``: the same as ``autostop sweep ACTION ...``."""
    parser = argparse.ArgumentParser(prog="autostop")
    register(parser.add_subparsers(dest="command", required=True))
    arguments = parser.parse_args(["sweep", *(sys.argv[1:] if argv is None else argv)])
    return int(arguments.handler(arguments))


if __name__ == "__main__":
    sys.exit(main())
