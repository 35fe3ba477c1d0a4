"""``autostop sweep``: spec errors as one clear message, a local dry run, status and report from records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdas.stop_training_job import decision
from tests.training.sweep.test_report import fixed_sweep
from training import cli
from training.sweep import cli as sweep_cli
from training.sweep import report

DEMO_SPEC = Path(sweep_cli.__file__).parent / "specs" / "demo.yaml"


def run(*arguments: str) -> int:
    """``autostop sweep ...`` as the installed command runs it (its error handling included)."""
    return cli.main(["sweep", *arguments])


def test_a_bad_spec_is_one_error_listing_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a spec with two mistakes
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "name: x\nsteps_per_job: -1\nsearch: {parameters: {lr: [1]}}\n"
        "datasets: {d: {train: x}}\nrules: [Nope]\n"
    )
    # WHEN running it
    code = run("run", str(spec))
    # THEN exit 2 and an error naming each key, no traceback
    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith("autostop sweep run: error: invalid sweep spec")
    assert error.count("\n") == 1  # one line
    for expected in (
        "steps_per_job: must be >= 1",
        "search.parameters.lr: unknown parameter",
        "rules[0].RuleConfigurationName",
    ):
        assert expected in error
    assert "Traceback" not in error


def test_a_local_dry_run_lists_the_jobs_and_their_hyperparameters(capsys: pytest.CaptureFixture[str]) -> None:
    code = run("run", str(DEMO_SPEC), "--dry-run", "--name", "try")
    output = capsys.readouterr().out
    assert code == 0
    assert "sweep try: 8 jobs, 1000 steps each, at most 2 at once" in output
    line = next(line for line in output.splitlines() if line.startswith("  hyperparameters.json"))
    assert json.loads(line.split(" ", 3)[3])["steps"] == "1000"
    assert "try-008: learning_rate=1e+06 variant=deep_saturating" in output


def test_an_unknown_dataset_override_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = run("run", str(DEMO_SPEC), "--dry-run", "--dataset", "nope=train=x")
    assert code == 2
    assert "--dataset" in capsys.readouterr().err


def test_status_and_report_read_a_local_sweeps_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a local sweep's folder: its records and a stopped job's tags
    fixed_sweep().save(tmp_path)
    tags = {
        "autostop": "enabled",
        decision.TAG_STOPPED_BY_RULE: "LossNotDecreasing",
        decision.TAG_STOPPED_AT: "2026-11-20T10:15:31Z",
        decision.TAG_STOP_SOURCE: "autostop.training",
    }
    (tmp_path / "jobs" / "fixed-003").mkdir(parents=True)
    (tmp_path / "jobs" / "fixed-003" / "tags.json").write_text(json.dumps(tags), encoding="utf-8")
    # WHEN asking for its status
    assert run("status", str(tmp_path)) == 0
    table = capsys.readouterr().out
    # THEN each job with who stopped it, when and how
    row = next(line for line in table.splitlines() if line.startswith("fixed-003"))
    assert "LossNotDecreasing" in row
    assert "2026-11-20T10:15:31Z" in row
    assert "autostop.training" in row
    assert "5 job(s); 2 stopped by a rule" in table
    # AND the report is rebuilt from the records
    assert run("report", str(tmp_path)) == 0
    assert (tmp_path / report.REPORT_MARKDOWN).is_file()
    assert run("status", str(tmp_path), "--json") == 0
    capsys.readouterr()


def test_report_of_a_folder_without_records_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("report", str(tmp_path)) == 2
    assert "cannot read the sweep records" in capsys.readouterr().err
