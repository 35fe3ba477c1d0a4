"""The local backend with real training jobs: bad jobs stopped by a rule, good ones complete, crashes and
Ctrl-C handled.

Every job is the real training container entry point (``python -m training.train``) with the in-container
evaluator on, on shards made by the render generator and the transformer core (the ``rendered_shards``
fixture); every stop goes through the stop Lambda's decision core. The models are tiny and the budgets short
so the whole module stays well under two minutes.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from lambdas.stop_training_job import decision
from tests.training.conftest import RenderedShards
from training.sweep import local, report
from training.sweep import progress as progress_module
from training.sweep import spec as spec_module

pytestmark = pytest.mark.slow
DEADLINE_S = 240.0


def tiny_spec(
    shards: RenderedShards, *, name: str, steps: int, learning_rates: list[float], **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "seed": 3,
        "max_parallel_jobs": 2,
        "steps_per_job": steps,
        "search": {"parameters": {"learning_rate": learning_rates}},
        "hyperparameters": {
            "image_size": shards.image_size,
            "num_views": shards.num_views,
            "base_filters": 4,
            "bottleneck_width": 32,
            "embedding_size": 8,
            "batch_size": 8,
            "validation_fraction": 0.25,
            "validation_interval": 10,
            "checkpoint_interval": 1000,
            "deterministic": "true",  # the good jobs' numbers do not change from run to run on one machine
        },
        "datasets": {"shapes": {"train": str(shards.path)}},
        "rules": [
            "ExplodingTensor",
            "LossNotDecreasing",
            {
                "RuleConfigurationName": "VanishingGradient",
                "RuleParameters": {"threshold": "1e-12", "start_step": "10"},
            },
        ],
        "debugger": {"collections": {"losses": {"save_interval": "5"}, "gradients": {"save_interval": "5"}}},
        **extra,
    }


def corrupt_dataset(directory: Path) -> Path:
    """A channel whose only shard is not a TFRecord file: the job starts, then crashes reading it."""
    shard = directory / "shards" / "broken.tfrecord"
    shard.parent.mkdir(parents=True)
    shard.write_bytes(os.urandom(4096))
    return directory


def test_a_bad_job_is_stopped_by_its_rule_a_good_one_completes_and_a_crash_is_recorded(
    rendered_shards: RenderedShards, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a sweep of a job whose data is corrupt (crashes), one with learning rate 0 (bad by construction:
    # no weight moves, so its validation loss is the same at every validation, on any CPU) and a good one
    document = tiny_spec(rendered_shards, name="tiny", steps=60, learning_rates=[0.0, 0.003])
    document["max_parallel_jobs"] = 3
    document["datasets"]["broken"] = {"train": str(corrupt_dataset(tmp_path / "broken"))}
    document["search"] = {
        "include": [
            {"dataset": "broken", "learning_rate": 0.003},
            {"dataset": "shapes", "learning_rate": 0.0},
            {"dataset": "shapes", "learning_rate": 0.003},
        ]
    }
    spec = spec_module.parse_spec(document)
    lines: list[str] = []
    progress = progress_module.PlainProgress()
    progress.event = lines.append  # type: ignore[method-assign]  # keep the runner's lines for the asserts
    # WHEN running it locally into a folder given relative to the working directory, as `make demo` does
    # (each job runs with its own folder as its working directory)
    monkeypatch.chdir(tmp_path)
    sweep = local.LocalSweep(spec, Path("runs") / "tiny", progress=progress)
    record = sweep.run()
    crashed, stuck, good = record.jobs
    # THEN the crash is Failed with its reason and the sweep went on
    assert crashed.state == report.FAILED
    assert crashed.failure_reason
    assert "DataLoss" in crashed.failure_reason or "record" in crashed.failure_reason
    # AND the stuck job was stopped by LossNotDecreasing (validation every 10 steps, 3 comparisons in a row
    # without a decrease: step 40), through the decision core, before its budget
    assert stuck.state == report.STOPPED
    assert stuck.stopped_by_rule == "LossNotDecreasing"
    assert stuck.stop_source == decision.TRAINING_SOURCE
    assert stuck.steps < 60
    assert stuck.rule_step is not None
    stops = [item for item in sweep.decisions if item.get("action") == "stop"]
    assert [(item["job"], item["rule"], item["reason"]) for item in stops] == [
        ("tiny-002", "LossNotDecreasing", "issues_found")
    ]
    # AND it left the three tags the stop Lambda adds, and a checkpoint written on SIGTERM
    tags = json.loads(
        (tmp_path / "runs" / "tiny" / "jobs" / "tiny-002" / "tags.json").read_text(encoding="utf-8")
    )
    assert tags["autostop"] == "enabled"
    assert tags[decision.TAG_STOPPED_BY_RULE] == "LossNotDecreasing"
    assert tags[decision.TAG_STOP_SOURCE] == "autostop.training"
    assert list((tmp_path / "runs" / "tiny" / "jobs" / "tiny-002" / "opt_ml" / "checkpoints").glob("step-*"))
    # AND the good job ran its whole budget, with its rules ending NoIssuesFound and validation metrics
    assert good.state == report.COMPLETED
    assert good.steps == 60
    assert good.rule_statuses == {
        "ExplodingTensor": "NoIssuesFound",
        "LossNotDecreasing": "NoIssuesFound",
        "VanishingGradient": "NoIssuesFound",
    }
    assert 0 < good.final_validation["validation:ssim"] <= 1
    assert good.seconds_per_step is not None
    # AND the records are on disk for the report, which is written from them
    files = report.write_report(
        report.SweepRecord.load(tmp_path / "runs" / "tiny"), tmp_path / "runs" / "tiny"
    )
    assert "tiny-003 **(best)**" in files.markdown.read_text(encoding="utf-8")
    stopped_line = "tiny-002: rule LossNotDecreasing found issues"
    assert any(stopped_line in line and "SIGTERM" in line for line in lines)


def _read_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _wait_for(lines: queue.Queue[str | None], seen: list[str], predicate: Any) -> str:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if predicate(line):
            return line
    raise AssertionError("the runner never printed the expected line:\n" + "\n".join(seen[-40:]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_stops_every_job_cleanly_and_still_writes_the_report(
    rendered_shards: RenderedShards, tmp_path: Path
) -> None:
    # GIVEN a runner process (the CLI) on 3 jobs, 2 at a time: a stuck one (learning rate 0), a long good one,
    # one waiting; stop signals taken from the rule:<Name>=1 lines as per-job alarm events
    document = tiny_spec(rendered_shards, name="ctrlc", steps=3000, learning_rates=[0.0, 0.003, 0.001])
    spec_path = tmp_path / "ctrlc.yaml"
    spec_path.write_text(yaml.safe_dump(document), encoding="utf-8")
    out = tmp_path / "runs" / "ctrlc"
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "training.sweep.cli",
            "run",
            str(spec_path),
            "--out",
            str(out),
            "--no-live",
            "--signal-source",
            "alarm",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(runner.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        # WHEN the stuck job is being stopped by its alarm event and the good job is training
        _wait_for(lines, seen, lambda line: line.startswith("ctrlc-001: rule LossNotDecreasing found issues"))
        if not any(line.startswith("ctrlc-002: training") for line in seen):
            _wait_for(lines, seen, lambda line: line.startswith("ctrlc-002: training"))
        pids = {
            line.split(":")[0]: int(line.split("(pid ")[1].split(")")[0])
            for line in seen
            if "started (pid" in line
        }
        # ... and Ctrl-C reaches the runner
        runner.send_signal(signal.SIGINT)
        code = runner.wait(timeout=DEADLINE_S)
        _wait_for(lines, seen, lambda line: line.startswith("report:"))
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    # THEN the runner exits 130 after stopping its jobs: none is left running
    assert code == 130, "\n".join(seen[-30:])
    assert pids
    assert not [job for job, pid in pids.items() if _alive(pid)]
    # AND the report is written: the alarm-stopped job, the interrupted jobs (checkpointed on SIGTERM)
    record = report.SweepRecord.load(out)
    states = {job.name: job.state for job in record.jobs}
    assert states["ctrlc-001"] == report.STOPPED
    assert record.jobs[0].stop_source == decision.CLOUDWATCH_SOURCE
    assert record.interrupted
    assert states["ctrlc-002"] == report.INTERRUPTED
    assert states["ctrlc-003"] in (report.INTERRUPTED, report.NOT_STARTED)
    trained = record.jobs[1]
    assert 0 < trained.steps < 3000
    assert list((out / "jobs" / "ctrlc-002" / "opt_ml" / "checkpoints").glob("step-*"))
    assert (out / report.REPORT_MARKDOWN).is_file()
