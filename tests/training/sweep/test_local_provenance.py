"""The local runner trusts no file path for who wrote an event: each local job has its own key, and an
event in a job's events file stops a job only with that job's valid signature, as the stop Lambda decides."""

from __future__ import annotations

import datetime
from pathlib import Path

from training.debugger import signals
from training.sweep import local
from training.sweep import spec as spec_module

DEMO_SPEC = Path(__file__).resolve().parents[3] / "training" / "sweep" / "specs" / "demo.yaml"


def running_sweep(tmp_path: Path) -> tuple[local.LocalSweep, local.LocalJob, local.LocalJob]:
    sweep = local.LocalSweep(spec_module.load_spec(DEMO_SPEC), tmp_path)
    first, second = (sweep._prepare(config) for config in sweep.configs[:2])
    for job in (first, second):
        sweep.jobs[job.name] = job
        job.status = "InProgress"
    return sweep, first, second


def issues_event(job: local.LocalJob, *, key: str | None, name: str | None = None) -> dict[str, object]:
    named = name or job.name
    identity = signals.JobIdentity(name=named, arn=local.local_job_arn(named), signing_key=key)
    rule_signal = signals.RuleSignal(
        "ExplodingTensor", signals.RuleStatus.ISSUES_FOUND, step=7, time=datetime.datetime.now(datetime.UTC)
    )
    return signals.event_envelope(identity, rule_signal)


def test_each_local_job_gets_its_own_key(tmp_path: Path) -> None:
    _, first, second = running_sweep(tmp_path)
    assert first.signing_key != second.signing_key
    assert first.description()["HyperParameters"] == {"autostop_signing_key": first.signing_key}


def test_only_the_jobs_own_signature_stops_it(tmp_path: Path) -> None:
    sweep, first, second = running_sweep(tmp_path)
    # GIVEN events naming the first job: unsigned, signed by the second job, then its own
    forged = [
        issues_event(first, key=None),
        issues_event(first, key=second.signing_key),
    ]
    for event in forged:
        # WHEN they appear in the second job's events file (any job can write there)
        sweep._handle_event(event, origin=second)
    # THEN neither is a stop: the decision core refuses them as unverified
    assert [entry["reason"] for entry in sweep.decisions] == ["unverified_event", "unverified_event"]
    # AND the first job's own signed event is a stop decision for it
    sweep._handle_event(issues_event(first, key=first.signing_key), origin=first)
    assert (sweep.decisions[-1]["action"], sweep.decisions[-1]["job"]) == ("stop", first.name)
