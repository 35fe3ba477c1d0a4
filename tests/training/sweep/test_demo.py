"""``make demo``'s words: what it prints about a finished sweep, for someone who never read the code.

(The whole demo takes minutes; it is run by ``make demo``, not here. These tests check what it says about a
fixed sweep record and that its spec is the sweep it describes.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.sweep.test_report import fixed_sweep
from training import demo
from training.sweep import report
from training.sweep import spec as spec_module


def test_the_summary_says_what_was_stopped_why_and_what_it_saved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a finished sweep with a measured baseline, and its report files
    record = fixed_sweep()
    record.baseline = {"fixed-001": 0.60, "fixed-002": 0.70, "fixed-003": 0.05, "fixed-004": 0.0}
    record.baseline_compute = {"fixed-003": 40.0, "fixed-004": 60.0}
    files = report.write_report(record, tmp_path)
    spec = spec_module.load_spec(demo.DEMO_SPEC)
    # WHEN the demo explains it
    demo.explain_results(record, spec)
    demo.explain_where_to_look(files, 300.0, tmp_path)
    text = " ".join(capsys.readouterr().out.split())
    # THEN each job's fate, the compute (estimated and measured), the best job, the regret and the paths
    assert (
        "fixed-003 (learning_rate 0): rule LossNotDecreasing found issues at step 20; stopped after 20 of 100"
        in text
    )
    assert "fixed-005 (learning_rate 0.01): Failed training failed: boom" in text
    # ... measured first (50 + 48 + 40 + 60 + 6 = 204 s at full budget), then the estimate, saying so
    measured = text.index("every job at its full budget used 204 s: 38% saved")
    estimated = text.index("Estimated without that re-run, as a SageMaker sweep would report it: 194 s")
    assert measured < estimated
    assert "35% saved" in text  # estimated: (194 - 126) / 194
    assert "Best job: fixed-002" in text
    assert "Regret: 0.0000" in text
    assert "the stops cost nothing" in text
    assert str(files.markdown) in text
    assert "autostop sweep status" in text


def test_the_demo_spec_is_the_sweep_the_demo_describes() -> None:
    spec = spec_module.load_spec(demo.DEMO_SPEC)
    jobs = spec.jobs()
    assert len(jobs) >= 8
    rates = {job.params["learning_rate"] for job in jobs}
    assert {0.0, 1e6} <= rates
    assert {job.params["variant"] for job in jobs} == {"standard", "deep_saturating"}
    assert {rule.name for rule in spec.rules} == {"LossNotDecreasing", "VanishingGradient", "ExplodingTensor"}
    # ... and the jobs are compared with each other too, with rungs past the early steps where the broken
    # deep_saturating jobs lead (the spec's comment says why)
    settings = spec.cross_job_settings()
    assert settings is not None
    assert settings.rungs() == (50, 200, 800)


def test_a_job_stopped_by_the_cross_job_comparison_is_said_to_be_worse_than_its_siblings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a sweep in which a healthy job was stopped for trailing the others at step 200
    record = fixed_sweep()
    stopped = record.jobs[2]
    stopped.stopped_by_rule, stopped.rule_step = "CrossJob", 200
    spec = spec_module.load_spec(demo.DEMO_SPEC)
    # WHEN the demo explains the sweep and its results
    demo.explain_sweep(spec)
    demo.explain_results(record, spec)
    text = " ".join(capsys.readouterr().out.split())
    # THEN it says where the jobs are compared, and that this job was stopped for being worse, not broken
    assert "compared with each other" in text
    assert "at steps 50, 200, 800 (asha, reduction factor 4)" in text
    assert (
        f"{stopped.name} (learning_rate 0): worse than the jobs compared with it at step 200 (rule CrossJob)"
        in text
    )
