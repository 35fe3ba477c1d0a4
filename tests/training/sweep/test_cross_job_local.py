"""The local runner's cross-job comparison: the spec's ``cross_job`` section, the rung store, the stop.

The jobs here are stand-in processes (a sleeping interpreter) fed the training container's validation lines:
what is under test is the runner's bookkeeping (which rung a validation reaches, what is recorded, who is
judged, what a stop does), which must not depend on how fast or how well a real model trains. Real training
jobs run through the same runner in ``test_local.py``; the comparison itself is
``tests/lambdas/stop_training_job/test_cross_job.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdas.stop_training_job import cross_job, decision
from training.hparams import HyperParameters
from training.sweep import local, report
from training.sweep import progress as progress_module
from training.sweep import spec as spec_module


def document(**cross_job: Any) -> dict[str, Any]:
    return {
        "name": "compare",
        "steps_per_job": 300,
        "search": {"parameters": {"learning_rate": [0.001, 0.002, 0.003]}},
        "datasets": {"shapes": {"train": "data/shards"}},
        "rules": ["ExplodingTensor"],
        "cross_job": {
            "policy": "asha",
            "grace_period": 50,
            "reduction_factor": 3,
            "min_reports": 2,
            **cross_job,
        },
    }


@pytest.fixture
def sweep(tmp_path: Path) -> Iterator[local.LocalSweep]:
    runner = local.LocalSweep(
        spec_module.parse_spec(document()),
        tmp_path / "sweep",
        progress=progress_module.PlainProgress(sys.stderr),
    )
    runner.directory.mkdir(parents=True)
    runner._open_rung_store()
    yield runner
    for job in runner.jobs.values():
        if job.process is not None and job.process.poll() is None:
            job.process.kill()
            job.process.wait()


def start(runner: local.LocalSweep, index: int) -> local.LocalJob:
    config = runner.configs[index]
    job = runner._prepare(config)
    job.directory.mkdir(parents=True)
    job.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    job.status = "InProgress"
    runner.jobs[config.name] = job
    return job


def validate(runner: local.LocalSweep, job: local.LocalJob, step: int, ssim: float) -> None:
    runner._parse_line(job, 0.0, f"step={step} val_loss={1 - ssim} val_ssim={ssim} val_l2=0.1")


def test_the_section_is_checked_with_the_spec_and_follows_the_budget() -> None:
    # GIVEN a spec with a cross_job section, then the same spec with a longer budget
    spec = spec_module.parse_spec(document())
    settings = spec.cross_job_settings()
    assert settings is not None
    assert settings.rungs() == (50, 150)
    assert settings.goal == "maximize"
    assert spec.with_overrides(steps_per_job=1000).cross_job_settings().rungs() == (50, 150, 450)  # type: ignore[union-attr]
    # AND a spec without one compares nothing
    plain = document()
    del plain["cross_job"]
    assert spec_module.parse_spec(plain).cross_job_settings() is None


def test_without_a_grace_period_the_first_rung_is_the_jobs_first_validation() -> None:
    # GIVEN a section that names only its policy, in a spec whose jobs validate every 40 steps
    section = document()
    section["cross_job"] = {"policy": "asha"}
    section["steps_per_job"] = 1000
    section["hyperparameters"] = {"validation_interval": 40}
    settings = spec_module.parse_spec(section).cross_job_settings()
    # THEN the rungs start at the first validation and double each time, with the core's other defaults
    assert settings is not None
    assert settings.rungs() == (40, 80, 160, 320, 640)
    assert (settings.reduction_factor, settings.min_reports, settings.keep_best) == (2.0, 3, 1)
    assert settings.rejudge is True
    # AND without a validation interval, at the training container's own default (it validates every 100)
    del section["hyperparameters"]
    unset = spec_module.parse_spec(section).cross_job_settings()
    assert unset is not None
    assert unset.first_rung == HyperParameters().validation_interval == cross_job.DEFAULT_VALIDATION_INTERVAL
    # AND jobs that validate only at their end (interval 0) report at no rung before it: the default stands
    section["hyperparameters"] = {"validation_interval": 0}
    assert spec_module.parse_spec(section).cross_job_settings().first_rung == 100  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"policy": "hyperband"}, "cross_job.policy"),
        ({"reduction_factor": 1}, "reduction_factor must be >= 2"),
        ({"min_reports": "3"}, "cross_job.min_reports"),
        ({"rejudge": "no"}, "cross_job.rejudge"),
        ({"patience": 3}, "cross_job.patience: unknown key"),
    ],
)
def test_a_bad_section_is_one_of_the_spec_problems(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(spec_module.SpecError, match=fragment):
        spec_module.parse_spec(document(**changes))


def test_a_job_worse_than_its_sibling_at_a_rung_is_stopped_and_tagged(sweep: local.LocalSweep) -> None:
    # GIVEN two running jobs; the first reaches rung 50 with SSIM 0.40 (alone there: not judged)
    better, worse = start(sweep, 0), start(sweep, 1)
    validate(sweep, better, 40, 0.30)
    validate(sweep, better, 60, 0.40)
    assert better.stop_signalled_at is None
    # WHEN the second reaches it with 0.20
    validate(sweep, worse, 60, 0.20)
    # THEN it is stopped (SIGTERM), recorded and tagged as a cross-job stop at the step it was judged
    worse.process.wait(timeout=10)  # type: ignore[union-attr]
    assert worse.process.returncode == -15  # type: ignore[union-attr]
    assert (worse.record.stopped_by_rule, worse.record.rule_step) == (local.CROSS_JOB_RULE, 60)
    tags = json.loads((worse.directory / local.TAGS_FILE_NAME).read_text())
    assert tags[decision.TAG_STOPPED_BY_RULE] == local.CROSS_JOB_RULE
    assert tags[decision.TAG_STOP_SOURCE] == local.CROSS_JOB_SOURCE
    # AND the rung store holds each job's objective at the rung, once
    assert sweep.rung_store is not None
    assert sweep.rung_store.at_rung(sweep="compare", rung=50) == {better.name: 0.40, worse.name: 0.20}
    assert better.process.poll() is None  # type: ignore[union-attr]


def test_a_job_that_passed_a_rung_early_is_judged_again_as_the_rung_fills_up(
    sweep: local.LocalSweep,
) -> None:
    # GIVEN a job first at rung 50 (alone there: 1 of the 2 reports needed, not judged)
    worse, better = start(sweep, 0), start(sweep, 1)
    validate(sweep, worse, 50, 0.20)
    # WHEN a better job reaches the rung, then the first job validates again before the next rung
    validate(sweep, better, 50, 0.40)
    assert worse.stop_signalled_at is None
    validate(sweep, worse, 100, 0.45)
    # THEN it is judged again at rung 50 on the value it recorded there (0.20, not 0.45) and stopped
    worse.process.wait(timeout=10)  # type: ignore[union-attr]
    assert (worse.record.stopped_by_rule, worse.record.rule_step) == (local.CROSS_JOB_RULE, 100)
    assert sweep.rung_store is not None
    assert sweep.rung_store.at_rung(sweep="compare", rung=50) == {worse.name: 0.20, better.name: 0.40}
    verdicts = [entry["action"] for entry in sweep.decisions if entry.get("rule") == local.CROSS_JOB_RULE]
    assert verdicts == ["continue", "continue", "stop"]


def test_without_rejudge_a_job_is_judged_once_per_rung(tmp_path: Path) -> None:
    # GIVEN the same sweep judging each rung once
    runner = local.LocalSweep(spec_module.parse_spec(document(rejudge=False)), tmp_path / "sweep")
    runner.directory.mkdir(parents=True)
    runner._open_rung_store()
    try:
        worse, better = start(runner, 0), start(runner, 1)
        validate(runner, worse, 50, 0.20)
        validate(runner, better, 50, 0.40)
        validate(runner, worse, 100, 0.45)  # no rung between 50 and 100: nothing recorded, nothing judged
        # THEN the early arrival goes on: judged on arrival only, when the rung held its report alone
        assert worse.stop_signalled_at is None
        judged = [entry for entry in runner.decisions if entry.get("rule") == local.CROSS_JOB_RULE]
        assert [entry["action"] for entry in judged] == ["continue", "continue"]
    finally:
        for job in runner.jobs.values():
            job.process.kill()  # type: ignore[union-attr]
            job.process.wait()  # type: ignore[union-attr]


def test_a_dry_run_judges_but_stops_nothing(tmp_path: Path) -> None:
    runner = local.LocalSweep(spec_module.parse_spec(document(dry_run=True)), tmp_path / "sweep")
    runner.directory.mkdir(parents=True)
    runner._open_rung_store()
    try:
        better, worse = start(runner, 0), start(runner, 1)
        validate(runner, better, 50, 0.40)
        validate(runner, worse, 50, 0.20)
        validate(runner, worse, 100, 0.25)  # judged again at rung 50: still a stop, not said twice
        assert worse.stop_signalled_at is None
        assert [entry["action"] for entry in runner.decisions] == ["continue", "stop", "stop"]
    finally:
        for job in runner.jobs.values():
            job.process.kill()  # type: ignore[union-attr]
            job.process.wait()  # type: ignore[union-attr]


def test_a_cross_job_stop_ends_as_a_stopped_job_in_the_report(sweep: local.LocalSweep) -> None:
    better, worse = start(sweep, 0), start(sweep, 1)
    validate(sweep, better, 50, 0.40)
    validate(sweep, worse, 50, 0.20)
    worse.process.wait(timeout=10)  # type: ignore[union-attr]
    sweep._finish(worse)
    assert worse.record.state == report.STOPPED
    assert worse.record.stopped_by_a_rule
