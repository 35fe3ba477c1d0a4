"""Detach a SageMaker sweep: queue every job in the sweep-state table, launch the first ones, and exit.

Why: the launcher (``launcher.py``) keeps ``max_parallel_jobs`` in flight from the user's machine, which
must then stay awake for the whole sweep. A detached sweep is kept going by the sweep launcher Lambda
instead (``lambdas/launch_queued_jobs/``, deployed by ``infra/sweep_launcher.py``): each time one of its
jobs ends, the Lambda frees the job's slot and launches the next queued job. This module writes what the
Lambda needs and starts the sweep, with the same conditional writes the Lambda uses:

1. every job's ``CreateTrainingJob`` request is built as the launcher builds it (its own signing key, the
   deployed opt-in tag) with its per-job alarm requests, and each item's size is checked against
   DynamoDB's 400 KB item limit -- a sweep with a job that does not fit is refused before anything is
   written;
2. the sweep item is written only if no sweep of that name is in the table (``preparing``): a sweep
   detached before under that name is an error, and nothing of it is overwritten;
3. one ``queued`` item per job (each written only where none is), then the sweep is opened (``detached``);
4. the first ``max_parallel_jobs`` jobs are claimed and launched through ``controller.advance``, exactly
   as the Lambda claims and launches.

The stored requests carry each job's signing key (as its hyperparameters do in SageMaker): the table is
encrypted, and only the stacks' roles and the account's administrators can read it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lambdas.launch_queued_jobs import controller as controller_module
from lambdas.launch_queued_jobs import items, outcomes
from lambdas.launch_queued_jobs import queue as queue_module
from training.sweep import spec as spec_module
from training.sweep.sagemaker import alarms, custom_rules
from training.sweep.sagemaker.settings import LaunchError, LaunchSettings


@dataclasses.dataclass(frozen=True)
class QueuedSweep:
    """The items a sweep is detached with, checked: a job item per job, in the order they are claimed."""

    name: str
    parallel: int
    job_items: tuple[Mapping[str, Any], ...]


@dataclasses.dataclass(frozen=True)
class Detached:
    """How the detach went: what was launched, refused, or left for the controller (``waiting``)."""

    name: str
    table: str
    total: int
    parallel: int
    launched: tuple[str, ...]
    refused: tuple[tuple[str, str], ...]
    waiting: str | None


def queued_sweep(
    spec: spec_module.SweepSpec,
    *,
    request_for: Callable[[spec_module.JobConfig], Mapping[str, Any]],
    alarm_prefix: str,
) -> QueuedSweep:
    """Every job's item, with its request and alarms; ``LaunchError`` naming each job too large to store."""
    job_items = []
    too_large = []
    for job in spec.jobs():
        item = items.queued_job_item(
            sweep=spec.name,
            index=job.index,
            request=request_for(job),
            alarms=alarms.alarm_requests(spec, job, alarm_prefix),
        )
        size = items.item_size_bytes(item)
        if size > items.MAX_ITEM_BYTES:
            too_large.append(f"{job.name} ({size} bytes)")
        job_items.append(item)
    if too_large:
        raise LaunchError(
            f"cannot detach sweep {spec.name}: the request of {', '.join(too_large)} does not fit in one "
            f"DynamoDB item ({items.MAX_ITEM_BYTES} bytes at most, 400 KB); shorten its hyperparameters, "
            "tags or rules, or run the sweep without --detach"
        )
    return QueuedSweep(name=spec.name, parallel=spec.max_parallel_jobs, job_items=tuple(job_items))


def describe_existing(state: items.SweepState | None) -> str:
    if state is None:
        return "it is being replaced"
    return (
        f"{state.state} since {state.created_at}: {state.ended} of {state.total} jobs ended, {state.running} "
        f"running, {state.queued} queued"
    )


def detach(
    queued: QueuedSweep,
    *,
    queue: queue_module.SweepQueue,
    sweep_controller: controller_module.Controller,
    log: Callable[[str], None],
) -> Detached:
    """Write the sweep and its jobs (conditionally: nothing is overwritten), open it, launch the first jobs.

    ``LaunchError`` if a sweep of that name is in the table already. AWS errors while writing are raised (the
    sweep stays ``preparing``: nothing is launched from it). An error while launching is returned as
    ``waiting``: the jobs claimed stay ``launching`` and are sent again by the controller.
    """
    try:
        queue.create_sweep(name=queued.name, parallel=queued.parallel, total=len(queued.job_items))
    except queue_module.SweepExists as exists:
        raise LaunchError(
            f"sweep {queued.name} is already detached in table {queue.table_name} "
            f"({describe_existing(exists.state)}); nothing was changed: run this one under another --name, "
            f"and follow that one with `autostop sweep status {queued.name}`"
        ) from None
    for item in queued.job_items:
        try:
            queue.add_job(item)
        except queue_module.JobExists as exists:
            raise LaunchError(
                f"sweep {queued.name}: table {queue.table_name} already holds an item of job {exists}; "
                "nothing was overwritten: run the sweep under another --name"
            ) from None
    queue.open_sweep(queued.name)
    log(f"sweep {queued.name}: {len(queued.job_items)} jobs queued in {queue.table_name}")
    waiting = None
    launches: Sequence[controller_module.Launch] = ()
    try:
        progress = sweep_controller.advance(queued.name)
        launches = progress.launches
    except Exception as error:
        if not outcomes.error_code(error) and not type(error).__module__.startswith(("botocore", "urllib3")):
            raise
        waiting = outcomes.describe(error)
    launched = tuple(
        launch.job_name
        for launch in launches
        if launch.outcome in (outcomes.CREATED, outcomes.ALREADY_EXISTS, controller_module.ENDED_BEFORE_SEEN)
    )
    refused = tuple(
        (launch.job_name, launch.detail) for launch in launches if launch.outcome == outcomes.REFUSED
    )
    return Detached(
        name=queued.name,
        table=queue.table_name,
        total=len(queued.job_items),
        parallel=queued.parallel,
        launched=launched,
        refused=refused,
        waiting=waiting,
    )


def upload_custom_rules(spec: spec_module.SweepSpec, launch: LaunchSettings, session: Any) -> str | None:
    """Upload the custom rule source once, before anything is queued (the launcher does it before its
    first launch): ``None`` when the sweep has no custom rule."""
    if not custom_rules.uses_custom_rules(spec, launch):
        return None
    return custom_rules.upload_custom_rule_source(session, launch)


def follow_lines(detached: Detached, *, region: str) -> list[str]:
    """What the command prints: the sweep, what was launched, and how to follow it from any machine."""
    key = (
        f'{{"{items.PARTITION_KEY}":{{"S":"{detached.name}"}},'
        f'"{items.SORT_KEY}":{{"S":"{items.SWEEP_SORT_KEY}"}}}}'
    )
    lines = [
        f"sweep {detached.name} detached: {detached.total} jobs queued in table {detached.table}, at most "
        f"{detached.parallel} at a time",
        f"launched now: {', '.join(detached.launched) or 'none'}",
    ]
    for name, reason in detached.refused:
        lines.append(f"not launched: {name}: {reason}")
    if detached.waiting:
        lines.append(
            f"a launch must wait: {detached.waiting}; the job stays claimed and is sent again when a running "
            f"job ends, or by `autostop sweep resume {detached.name} --table {detached.table} --region "
            f"{region}`"
        )
    lines += [
        "the sweep launcher Lambda launches the rest as jobs end: this machine may sleep now",
        f"follow it:  autostop sweep status {detached.name} --region {region}",
        f"its queue:  aws dynamodb get-item --region {region} --table-name {detached.table} --key '{key}'",
    ]
    return lines
