"""Progress: a live table on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from training.sweep import progress


def test_plain_progress_prints_when_a_job_starts_training_and_each_quarter_of_its_budget() -> None:
    # GIVEN plain progress (not a terminal)
    stream = io.StringIO()
    plain = progress.make_progress("sweep demo", "validation:ssim", stream=stream)
    assert isinstance(plain, progress.PlainProgress)
    view = progress.JobView("demo-001", "learning_rate=0.002", budget=100, state="running")
    # WHEN the job reports steps 10, 20, ..., 100
    for step in range(10, 101, 10):
        view.step, view.loss = step, 1.0 / step
        view.rules = {"LossNotDecreasing": "InProgress", "ExplodingTensor": "NoIssuesFound"}
        plain.update(view)
    # THEN one line when it starts training and one per quarter reached before the end, not one per step
    lines = stream.getvalue().splitlines()
    assert lines[0] == "demo-001: training (step 10/100, loss 0.1000)"
    assert [line.split(",")[0] for line in lines[1:]] == [
        "demo-001: step 30/100",
        "demo-001: step 50/100",
        "demo-001: step 80/100",
    ]
    assert lines[-1].endswith("rules LND:… ET:ok")


def test_the_live_table_shows_each_jobs_step_loss_rules_and_state() -> None:
    # GIVEN a live table drawn into a terminal-like buffer
    from rich.console import Console

    buffer = io.StringIO()
    table = progress.LiveTable(
        "sweep demo", "validation:ssim", Console(file=buffer, force_terminal=True, width=160)
    )
    table.start()
    # WHEN two jobs report
    table.update(
        progress.JobView(
            "demo-001",
            "learning_rate=0",
            100,
            step=40,
            loss=0.98,
            state="stopping",
            rules={"LossNotDecreasing": "IssuesFound"},
        )
    )
    table.update(
        progress.JobView(
            "demo-002",
            "learning_rate=0.002",
            100,
            step=100,
            loss=0.5,
            validation=0.61,
            state="Completed",
            rules={"LossNotDecreasing": "NoIssuesFound"},
        )
    )
    table.event("demo-001: stopped by LossNotDecreasing")
    table.stop()
    # THEN the final table holds both rows
    text = buffer.getvalue()
    for expected in (
        "demo-001",
        "40/100",
        "LND:FIRED",
        "demo-002",
        "0.6100",
        "Completed",
        "stopped by LossNotDecreasing",
    ):
        assert expected in text


def test_rule_names_are_abbreviated_by_their_capitals() -> None:
    assert progress.rule_abbreviation("LossNotDecreasing") == "LND"
    assert progress.rule_abbreviation("LatentClusterRule") == "LCR"
    assert progress.rule_abbreviation("custom") == "custom"
