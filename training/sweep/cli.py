"""``autostop sweep``: run a sweep (locally or on SageMaker), show its status, rebuild its report.

    autostop sweep run SPEC [--backend local|sagemaker] [--dry-run] [--out DIR] [--baseline] ...
    autostop sweep run SPEC --backend sagemaker --detach --table TABLE
    autostop sweep configure SPEC --outputs cdk-outputs.json [-o SPEC_OUT]
    autostop sweep resume DIR|SWEEP
    autostop sweep resume SWEEP --table TABLE [--region REGION]
    autostop sweep status SWEEP|DIR [--alarm-prefix autostop-] [--json]
    autostop sweep report DIR

Exit status: 0 when every job ran (stopped by a rule counts as ran), 1 when a SageMaker job failed, none
could be launched or the launcher had to detach (``resume`` picks it up), 2 for a bad spec or arguments,
130 after Ctrl-C. ``--detach`` (docs/sweeps.md "Detached sweeps"): 0 once the sweep is queued and its first
jobs launched, 1 when a launch was refused or must wait.

Heavy imports (TensorFlow in the jobs, the SageMaker SDK, boto3, matplotlib) wait until a command runs, so
``autostop --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from training import cli_errors

DEFAULT_RUNS_DIRECTORY = Path("runs")
EXIT_BAD_INPUT = 2


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
    run.add_argument("--name", help="override the sweep name (job names are <name>-NNN; default: the spec's)")
    run.add_argument("--max-parallel-jobs", type=int, help="override max_parallel_jobs (default: the spec's)")
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
    run.add_argument(
        "--threads-per-job",
        type=int,
        help="local: TensorFlow threads per job (default: TensorFlow's own choice, all cores)",
    )
    run.add_argument("--no-live", action="store_true", help="plain progress lines even on a terminal")
    run.add_argument(
        "--image-uri",
        help="SageMaker: a training image built for the instance type's hardware (default: the spec's "
        "cpu_image_uri / gpu_image_uri by instance type, or image_uri)",
    )
    run.add_argument(
        "--role-arn", help="SageMaker: the execution role (default: sagemaker.role_arn of the spec)"
    )
    run.add_argument(
        "--region", help="SageMaker: the region (default: sagemaker.region, else AWS_REGION / the profile's)"
    )
    run.add_argument(
        "--detach",
        action="store_true",
        help="SageMaker: queue every job in the sweep-state table, launch the first max_parallel_jobs and "
        "exit; the stack's sweep launcher Lambda launches the rest as jobs end (needs --table)",
    )
    run.add_argument(
        "--table",
        help="with --detach: the sweep-state DynamoDB table (the Autostop stack's SweepTableName output)",
    )
    run.set_defaults(handler=run_command)

    configure = actions.add_parser(
        "configure",
        help="fill a spec's sagemaker section and data buckets from `cdk deploy --outputs-file`",
        description="Write SPEC with the deployed training stack's images, execution role, region and "
        "buckets (sagemaker.*, and every s3:// dataset channel moved to the data bucket, keeping its key). "
        "The result is validated before it is written; YAML comments are not kept.",
    )
    configure.add_argument("spec", type=Path, help="the sweep spec to start from (.yaml, .yml or .toml)")
    configure.add_argument(
        "--outputs",
        type=Path,
        required=True,
        help="the file `npx cdk deploy --all --outputs-file cdk-outputs.json` wrote",
    )
    configure.add_argument(
        "-o", "--out", type=Path, help="where to write the configured spec (.yaml; default: print it)"
    )
    configure.set_defaults(handler=configure_command)

    resume = actions.add_parser(
        "resume",
        help="reattach to a SageMaker sweep's jobs (by tag) and launch the ones never created",
        description="After the launcher went away (machine closed, credentials expired, Ctrl-C'd "
        "detach): follow the sweep's running jobs to the end, record the ended ones, launch the rest, "
        "and rewrite the report. DIR is the sweep's folder (it holds launch.json); a name means runs/NAME.",
    )
    resume.add_argument("sweep", help="the sweep's folder, or its name (runs/<name>)")
    resume.add_argument(
        "--table",
        help="a detached sweep (run --detach): its sweep-state table; launch what its controller left "
        "unlaunched (claimed jobs not created, free slots), with the same conditional writes",
    )
    resume.add_argument("--region", help="with --table: the AWS region (default: from the AWS configuration)")
    resume.add_argument(
        "--alarm-prefix",
        default="autostop-",
        help="with --table: per-job alarm name prefix (default autostop-)",
    )
    resume.set_defaults(handler=resume_command)

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


def _fail(arguments: argparse.Namespace, message: str, code: int = EXIT_BAD_INPUT) -> int:
    return cli_errors.fail(getattr(arguments, "command_prog", "autostop sweep"), message, code)


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
        return _fail(arguments, str(error))
    directory = arguments.out or DEFAULT_RUNS_DIRECTORY / spec.name
    if arguments.detach and arguments.backend != "sagemaker":
        return _fail(arguments, "--detach runs a sweep on SageMaker only: add --backend sagemaker")
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
        return _fail(arguments, str(error))
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
    from training.sweep import sagemaker as sagemaker_backend
    from training.sweep import spec as spec_module
    from training.sweep.sagemaker import resume

    try:
        launch = sagemaker_backend.LaunchSettings.resolve(
            spec, image_uri=arguments.image_uri, role_arn=arguments.role_arn, region=arguments.region
        )
    except sagemaker_backend.LaunchError as error:
        return _fail(arguments, str(error))
    if arguments.dry_run:
        planned = sagemaker_backend.plan(spec, launch)
        sagemaker_backend.print_plan(planned, spec, lambda line: print(line, flush=True))
        return 0
    if arguments.detach:
        return _detach_sagemaker(spec, launch, arguments)
    resume.save_launch(
        directory,
        spec_document=spec_module.read_document(arguments.spec),
        spec_source=str(arguments.spec),
        overrides={
            "name": arguments.name,
            "max_parallel_jobs": arguments.max_parallel_jobs,
            "dataset": list(arguments.dataset),
        },
        image_uri=launch.image_uri,
        role_arn=launch.role_arn,
        region=launch.region,
    )
    return _launch_sagemaker(spec, launch, arguments, directory, existing=False)


def _launch_sagemaker(
    spec: Any, launch: Any, arguments: argparse.Namespace, directory: Path, *, existing: bool
) -> int:
    """Preflight, launch (or resume) and report; the exit status says how it went (module docstring)."""
    from training.sweep import report, scope
    from training.sweep import sagemaker as sagemaker_backend
    from training.sweep.sagemaker import faults, resume

    checked = _preflight(spec, launch, arguments)
    if isinstance(checked, int):
        return checked
    _, deployed = checked
    clients = sagemaker_backend.aws_clients(launch.region)
    found: dict[str, Any] = {}
    if existing:
        retrier = faults.Retrier(sleep=_sleep, log=lambda line: print(line, flush=True))
        found = resume.jobs_by_tag(clients.sagemaker, spec.name, retrier)
        print(
            f"sweep {spec.name}: {len(found)} job(s) found by tag {sagemaker_backend.SWEEP_TAG_KEY}",
            flush=True,
        )
    sweep = sagemaker_backend.SageMakerSweep(
        spec,
        launch,
        clients,
        directory=directory,
        existing_jobs=found,
        opt_in_tags=scope.opt_in_tags(deployed),
    )
    record = sweep.run()
    files = report.write_report(record, directory)
    print(f"report: {files.markdown}", flush=True)
    return _exit_status(record, sweep.detached)


def _preflight(spec: Any, launch: Any, arguments: argparse.Namespace) -> tuple[Any, Any] | int:
    """Credentials, then the deployed scope: ``(boto3 session, deployed scope)``, or the exit status."""
    import boto3

    from training.sweep import sagemaker as sagemaker_backend
    from training.sweep import scope
    from training.sweep.sagemaker import preflight

    session = boto3.Session(region_name=launch.region)
    try:
        preflight.check_credentials(session, launch)
    except sagemaker_backend.LaunchError as error:
        return _fail(arguments, str(error), cli_errors.EXIT_ERROR)
    if not launch.settings.scope_parameter:
        return _fail(
            arguments,
            "sagemaker.scope_parameter is missing: the stop stack's ScopeParameterName output, which "
            "`autostop sweep configure --outputs cdk-outputs.json` fills in; without it no launch can know "
            "whether the deployed stack watches these jobs",
        )
    try:
        deployed = scope.read_deployed_scope(session.client("ssm"), launch.settings.scope_parameter)
        scope.check_spec(spec, deployed)
    except scope.ScopeError as error:
        return _fail(arguments, str(error))
    return session, deployed


def _detach_sagemaker(spec: Any, launch: Any, arguments: argparse.Namespace) -> int:
    """Queue the sweep in the sweep-state table, launch its first jobs, say how to follow it, exit."""
    from training.sweep import sagemaker as sagemaker_backend
    from training.sweep import scope
    from training.sweep.sagemaker import detach

    if not arguments.table:
        return _fail(
            arguments,
            "--detach needs --table: the sweep-state table, the Autostop stack's SweepTableName output "
            "(cdk-outputs.json)",
        )
    checked = _preflight(spec, launch, arguments)
    if isinstance(checked, int):
        return checked
    session, deployed = checked
    clients = sagemaker_backend.aws_clients(launch.region)
    builder = sagemaker_backend.SageMakerSweep(
        spec, launch, clients, log=_print_line, opt_in_tags=scope.opt_in_tags(deployed)
    )
    try:
        queued = detach.queued_sweep(
            spec, request_for=builder.request, alarm_prefix=launch.settings.alarm_prefix
        )
        uploaded = detach.upload_custom_rules(spec, launch, clients.session)
        if uploaded:
            _print_line(f"custom rule source uploaded to {uploaded}")
        sweep_controller = _sweep_controller(
            session,
            arguments.table,
            clients=clients,
            job_prefix=deployed.job_prefix,
            alarm_prefix=launch.settings.alarm_prefix,
        )
        detached = detach.detach(
            queued, queue=sweep_controller.queue, sweep_controller=sweep_controller, log=_print_line
        )
    except sagemaker_backend.LaunchError as error:
        return _fail(arguments, str(error))
    for line in detach.follow_lines(detached, region=launch.region):
        _print_line(line)
    return cli_errors.EXIT_ERROR if detached.refused or detached.waiting else 0


def _sweep_controller(session: Any, table: str, *, clients: Any, job_prefix: str, alarm_prefix: str) -> Any:
    """The sweep launcher Lambda's controller, run from here with the caller's credentials."""
    import datetime

    from lambdas.launch_queued_jobs import controller, queue

    def now() -> str:
        return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def log(record: Any) -> None:
        _print_line(" ".join(f"{key}={value}" for key, value in record.items()))

    return controller.Controller(
        queue=queue.SweepQueue(session.client("dynamodb"), table, now=now, log=log),
        sagemaker=clients.sagemaker,
        cloudwatch=clients.cloudwatch,
        scope=controller.Scope(job_prefix=job_prefix, alarm_prefix=alarm_prefix),
        log=log,
    )


def _print_line(line: str) -> None:
    print(line, flush=True)


def _resume_detached(arguments: argparse.Namespace) -> int:
    """``resume SWEEP --table``: finish the launches in flight and fill the free slots of a detached sweep."""
    import boto3

    from lambdas.launch_queued_jobs import items
    from training.sweep import sagemaker as sagemaker_backend

    session = boto3.Session(region_name=arguments.region)
    clients = sagemaker_backend.AwsClients(
        session.client("sagemaker"), session.client("cloudwatch"), session=None
    )
    # The stored requests were checked against the deployed scope when the sweep was detached.
    sweep_controller = _sweep_controller(
        session, arguments.table, clients=clients, job_prefix="", alarm_prefix=arguments.alarm_prefix
    )
    state = sweep_controller.queue.sweep(arguments.sweep)
    if state is None:
        return _fail(arguments, f"no detached sweep {arguments.sweep} in table {arguments.table}", 1)
    if state.state == items.PREPARING:
        return _fail(
            arguments,
            f"sweep {arguments.sweep} was never opened: its --detach was interrupted while queueing jobs, "
            "and nothing of it was launched; detach it again under another --name",
            1,
        )
    progress = sweep_controller.advance(arguments.sweep)
    state = sweep_controller.queue.sweep(arguments.sweep) or state
    _print_line(
        f"sweep {arguments.sweep}: {state.state}; launched now: {', '.join(progress.launched) or 'none'}; "
        f"{state.running} running, {state.queued} queued, {state.ended} ended, {state.launch_failed} not "
        "launched"
    )
    return cli_errors.EXIT_ERROR if progress.refused else 0


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


def _exit_status(record: Any, detached: str | None) -> int:
    from training.sweep import report

    if record.interrupted:
        return cli_errors.EXIT_INTERRUPTED
    states = [job.state for job in record.jobs]
    if detached or report.FAILED in states or all(state == report.NOT_STARTED for state in states):
        return cli_errors.EXIT_ERROR
    return 0


def resume_command(arguments: argparse.Namespace) -> int:
    from training.sweep import sagemaker as sagemaker_backend
    from training.sweep import spec as spec_module
    from training.sweep.sagemaker import resume

    if arguments.table:
        return _resume_detached(arguments)
    try:
        directory = resume.sweep_folder(arguments.sweep, DEFAULT_RUNS_DIRECTORY)
        saved = resume.load_launch(directory)
        overrides = argparse.Namespace(**{"name": None, "max_parallel_jobs": None, "dataset": []})
        for key, value in (saved.get("overrides") or {}).items():
            setattr(overrides, key, value)
        spec = _apply_overrides(
            spec_module.parse_spec(saved["spec"], source=str(saved.get("spec_source", "launch.json"))),
            overrides,
        )
        launch = sagemaker_backend.LaunchSettings.resolve(
            spec, image_uri=saved["image_uri"], role_arn=saved["role_arn"], region=saved["region"]
        )
    except (sagemaker_backend.LaunchError, spec_module.SpecError) as error:
        return _fail(arguments, str(error))
    return _launch_sagemaker(spec, launch, arguments, directory, existing=True)


def configure_command(arguments: argparse.Namespace) -> int:
    import yaml

    from training.sweep import configure
    from training.sweep import spec as spec_module

    try:
        document = spec_module.read_document(arguments.spec)
        outputs = json.loads(arguments.outputs.read_text(encoding="utf-8"))
        configured = configure.configure(document, outputs)
        spec_module.parse_spec(configured, source=str(arguments.out or arguments.spec))
    except json.JSONDecodeError as error:
        return _fail(arguments, f"{arguments.outputs} is not JSON: {error}")
    except (configure.ConfigureError, spec_module.SpecError) as error:
        return _fail(arguments, str(error))
    text = yaml.safe_dump(configured, sort_keys=False, default_flow_style=False, width=110)
    if arguments.out is None:
        sys.stdout.write(text)
        return 0
    if arguments.out.suffix not in (".yaml", ".yml"):
        return _fail(arguments, f"{arguments.out}: the configured spec is written as YAML (.yaml or .yml)")
    arguments.out.write_text(text, encoding="utf-8")
    print(f"wrote {arguments.out}: images, role, region and buckets of the deployed stacks", file=sys.stderr)
    return 0


def status_command(arguments: argparse.Namespace) -> int:
    from training.sweep import status

    target = Path(arguments.sweep)
    if target.is_dir():
        try:
            statuses = status.local_status(target)
        except ValueError as error:
            return _fail(arguments, str(error))
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
            return _fail(arguments, f"no training jobs named {arguments.sweep}-NNN", 1)
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
        return _fail(arguments, str(error))
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
