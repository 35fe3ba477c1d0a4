"""The sweep-savings benchmark's own bookkeeping: which recordings it reuses, and its options.

Recording a sweep trains every job (tens of minutes), so the benchmark keeps its recordings and replays them;
what is under test is that a recording is reused only for the recipe it was made with.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import _replay, sweep_savings
from training.sweep import report
from training.sweep import spec as spec_module

SPEC = {
    "name": "realistic",
    "steps_per_job": 600,
    "hyperparameters": {"validation_interval": 50},
    "rules": ["LossNotDecreasing"],
    "stopping": {"rules": "*"},
}


def test_a_run_without_stopping_does_not_depend_on_the_stopping_sections() -> None:
    # GIVEN the recipe of a sweep run without stopping
    full = sweep_savings.recording_recipe(SPEC, stop_jobs=False)
    # WHEN only the stopping sections change (a cross_job section is added, the rules stop nothing)
    changed = {**SPEC, "cross_job": {"policy": "asha"}, "stopping": {"rules": []}}
    # THEN the recording stays valid; a run with stopping is another recording
    assert sweep_savings.recording_recipe(changed, stop_jobs=False) == full
    assert sweep_savings.recording_recipe(changed, stop_jobs=True) != sweep_savings.recording_recipe(
        SPEC, stop_jobs=True
    )
    # AND what training depends on (the budget, the rules evaluated on the trial) changes it
    assert sweep_savings.recording_recipe({**SPEC, "steps_per_job": 300}, stop_jobs=False) != full
    assert sweep_savings.recording_recipe({**SPEC, "rules": []}, stop_jobs=False) != full


def test_a_recording_is_reused_only_when_finished_with_the_same_recipe(tmp_path: Path) -> None:
    wanted = sweep_savings.recording_recipe(SPEC, stop_jobs=False)
    # GIVEN no recipe file: an unfinished (or never started) recording
    assert not sweep_savings.cached(tmp_path, wanted, reuse=True)
    # WHEN the recipe is written last, as a finished recording does
    (tmp_path / sweep_savings.RECIPE_FILE).write_text(wanted, encoding="utf-8")
    # THEN it is reused, unless asked to record afresh or the recipe differs
    assert sweep_savings.cached(tmp_path, wanted, reuse=True)
    assert not sweep_savings.cached(tmp_path, wanted, reuse=False)
    assert not sweep_savings.cached(
        tmp_path, sweep_savings.recording_recipe(SPEC, stop_jobs=True), reuse=True
    )


def test_options_default_to_the_documented_orders_and_refuse_nonsense(
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = sweep_savings.parse_options([])
    assert (options.orders, options.seed, options.check_orders, options.record) == (7, 2026, 140, False)
    assert sweep_savings.parse_options(["--seed", "1", "--check-orders", "0"]).check_orders == 0
    for bad in (["--orders", "0"], ["--check-orders", "-1"]):
        with pytest.raises(SystemExit):
            sweep_savings.parse_options(bad)
    assert "must be" in capsys.readouterr().err


def _sweep() -> report.SweepRecord:
    job = report.JobRecord(
        name="realistic-001",
        params={"learning_rate": 0.001},
        budget_steps=600,
        state="Completed",
        steps=600,
        compute_seconds=73.0,
        step_elapsed=[(10, 15.0), (600, 73.0)],
        validation_curve=[(50, {"ssim": 0.2}), (100, {"ssim": float("nan")})],
        final_validation={"validation:ssim": 0.41},
        log_path="/somewhere/on/the/recording/machine/job.log",
    )
    return report.SweepRecord(
        name="realistic",
        backend="local",
        objective_metric="validation:ssim",
        objective_goal="maximize",
        jobs=[job],
    )


def test_a_committed_recording_keeps_what_the_replays_need_and_no_machine_paths(tmp_path: Path) -> None:
    # GIVEN a recorded sweep whose job a rule would have stopped at step 250
    recorded = sweep_savings.Recording("recipe", _sweep(), {"realistic-001": (250, "LossNotDecreasing")})
    # WHEN it is written and read back
    path = tmp_path / "realistic.json"
    recorded.save(path)
    loaded = sweep_savings.Recording.load(path)
    # THEN the replay sees the same job, NaN validations included; the recording machine's paths are gone
    assert "/somewhere" not in path.read_text(encoding="utf-8")
    spec = spec_module.load_spec(sweep_savings.REALISTIC)
    (job,) = sweep_savings.recorded_jobs(spec, loaded)
    assert (job.rule_step, job.rule_name, job.final_objective, job.duration) == (
        250,
        "LossNotDecreasing",
        0.41,
        73.0,
    )
    assert job.objective_curve[0] == (50, 0.2)
    assert math.isnan(job.objective_curve[1][1])


def test_a_committed_recording_of_the_same_recipe_is_replayed_without_rendering_or_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a committed recording of the realistic spec as it is
    wanted = sweep_savings.spec_recipe(sweep_savings.REALISTIC, stop_jobs=False)
    kept = tmp_path / "realistic.json"
    sweep_savings.Recording(wanted, _sweep(), {}).save(kept)
    monkeypatch.setattr(sweep_savings, "REPOSITORY", tmp_path)

    def no_rendering(*arguments: object, **keywords: object) -> None:
        raise AssertionError("a committed recording of the same recipe needs no renders")

    monkeypatch.setattr(sweep_savings, "with_rendered_datasets", no_rendering)
    # WHEN the benchmark asks for the recording
    found = sweep_savings.recording(
        sweep_savings.REALISTIC, tmp_path, "run", kept, stop_jobs=False, record=False
    )
    # THEN it is the committed one; asked to record afresh, it renders (and would train)
    assert found.sweep.jobs[0].compute_seconds == 73.0
    with pytest.raises(AssertionError, match="needs no renders"):
        sweep_savings.recording(sweep_savings.REALISTIC, tmp_path, "run", kept, stop_jobs=False, record=True)


COMMITTED = [
    *(
        (sweep_savings.REALISTIC, sweep_savings.realistic_places(seed)[1], False, seed)
        for seed in sweep_savings.REALISTIC_SEEDS
    ),
    (sweep_savings.PATHOLOGICAL, sweep_savings.RECORDINGS / "pathological-full.json", False, None),
    (sweep_savings.PATHOLOGICAL, sweep_savings.RECORDINGS / "pathological-autostop.json", True, None),
]


@pytest.mark.parametrize(("spec_path", "kept", "stop_jobs", "seed"), COMMITTED)
def test_the_committed_recordings_are_of_the_specs_as_they_are(
    spec_path: Path, kept: Path, stop_jobs: bool, seed: int | None
) -> None:
    # GIVEN the recordings docs/benchmarks.md's sweep tables come from
    recorded = sweep_savings.Recording.load(kept)
    # THEN each is of its spec as committed (the realistic one once per training seed): a change to what the
    # jobs train on needs `--record` (and the tables re-written), or the benchmark would record afresh for
    # tens of minutes instead of replaying
    wanted = sweep_savings.spec_recipe(spec_path, stop_jobs=stop_jobs, seed=seed)
    assert recorded.recipe == wanted, (
        f"{kept.name} is of another recipe: python -m bench sweep_savings --record"
    )
    assert len(recorded.sweep.jobs) == len(spec_module.load_spec(spec_path).jobs())


def test_the_standing_names_the_peers_beaten_on_every_count_and_describes_the_others() -> None:
    # GIVEN autostop's replays and three peers': one it beats on savings and regret, one that saves more,
    # and one that saves less but keeps the best configuration more often
    ours = _replay.Summary(sweep_savings.AUTOSTOP, (0.5, 0.5), (0.0, 0.01), (3, 3))
    beaten = _replay.Summary("Optuna MedianPruner", (0.4, 0.4), (0.0, 0.02), (2, 2))
    saves_more = _replay.Summary("Optuna SuccessiveHalvingPruner", (0.6, 0.6), (0.03, 0.05), (4, 4))
    keeps_more = _replay.Summary("Syne Tune ASHA", (0.45, 0.45), (0.0, 0.0), (2, 2))
    unrelated = _replay.Summary("no termination", (0.0, 0.0), (0.0, 0.0), (0, 0))
    # WHEN the standing is written
    text = sweep_savings.standing([ours, beaten, saves_more, keeps_more, unrelated])
    # THEN the beaten peer is named once as beaten; the two others are described with their figures
    head, others = text.split("Not so against: ")
    assert "no more mean regret than: Optuna MedianPruner." in head
    assert "mean regret 0.0050" in head
    assert "Optuna SuccessiveHalvingPruner: 60.0% saved (median), regret 0 in 0/2 replays" in others
    assert "Syne Tune ASHA: 45.0% saved (median), regret 0 in 2/2 replays, mean regret 0.0000" in others
    assert "no termination" not in text
    # AND with every peer beaten, it says so
    assert sweep_savings.standing([ours, beaten]).endswith("That is every peer.")


def summary(label: str, saved: float, regrets: tuple[float, ...]) -> _replay.Summary:
    return _replay.Summary(label, (saved,) * len(regrets), regrets, (1,) * len(regrets))


def test_one_policy_beats_another_only_when_no_worse_on_every_count_and_better_on_one() -> None:
    # GIVEN a policy saving 50% with the best configuration lost once of four, mean regret 0.01
    other = summary("other", 0.5, (0.0, 0.0, 0.0, 0.04))
    # THEN a copy does not beat it, and neither does one saving more but losing the best more often
    assert not sweep_savings.beats(summary("same", 0.5, (0.0, 0.0, 0.0, 0.04)), other)
    assert not sweep_savings.beats(summary("greedy", 0.6, (0.0, 0.0, 0.01, 0.01)), other)
    # AND one saving more with the same losses, or the same with a smaller loss, does
    assert sweep_savings.beats(summary("more", 0.6, (0.0, 0.0, 0.0, 0.04)), other)
    assert sweep_savings.beats(summary("closer", 0.5, (0.0, 0.0, 0.0, 0.02)), other)


def linear_job(name: str, final: float, slope_until: int = 0) -> _replay.RecordedJob:
    """A job of 1000 steps validated every 50; one with ``slope_until`` starts flat and overtakes later."""
    steps = range(50, 1001, 50)
    return _replay.RecordedJob(
        name=name,
        budget_steps=1000,
        duration=110.0,
        step_elapsed=tuple((step, 10 + 0.1 * step) for step in steps),
        objective_curve=tuple((step, final * (0.1 if step < slope_until else step / 1000)) for step in steps),
        final_objective=final,
        rule_step=None,
        rule_name=None,
    )


def test_the_trade_off_shows_every_peer_and_only_the_settings_nothing_beats() -> None:
    # GIVEN a sweep of six jobs whose best configuration starts slowly
    spec = spec_module.parse_spec(
        {
            "name": "trade-off",
            "steps_per_job": 1000,
            "hyperparameters": {"validation_interval": 50},
            "search": {"parameters": {"learning_rate": [0.001, 0.002]}},
            "datasets": {"shapes": {"train": "data/shards"}},
            "rules": ["LossNotDecreasing"],
        }
    )
    jobs = [linear_job(f"j{index}", 0.3 + 0.05 * index) for index in range(5)]
    jobs.append(linear_job("slow-best", 0.9, slope_until=300))
    # AND the peers of the benchmark that `make test` installs (Syne Tune is a benchmark extra)
    peers = {
        label: entry for label, entry in sweep_savings.policies(spec).items() if label.startswith("Optuna")
    }
    # WHEN the trade-off is replayed in a few launch orders, beside the peers replayed on the same orders
    replayed = sweep_savings.pooled_replays(spec, [jobs], peers, 1.0, orders=3, seed=1)
    lines = sweep_savings.trade_off(spec, [jobs], stop_latency=1.0, orders=3, seed=1, replayed=replayed)
    rows = [line.split(" | ") for line in lines if line.startswith("| ") and "---" not in line][1:]
    shown = {row[0].removeprefix("| "): row[4].removesuffix(" |") for row in rows}
    # THEN every peer is shown, beaten or not, and every autostop setting shown is beaten by nothing
    assert {label for label in shown if label.startswith(sweep_savings.PEERS)} == set(peers)
    assert all(by == "-" for label, by in shown.items() if label.startswith("autostop"))
    assert len([label for label in shown if label.startswith("autostop")]) <= len(
        sweep_savings.TRADE_OFF_GRID
    )
    # AND the closing sentence puts each peer on exactly one side
    closing = lines[-1]
    beaten, unbeaten = closing.split(". Not beaten: ")
    for label in shown:
        if label.startswith(sweep_savings.PEERS):
            assert (label in beaten) != (label in unbeaten)
            if shown[label] == "-":
                assert label in unbeaten
