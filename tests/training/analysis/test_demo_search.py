"""``make demo``'s last step: the best job's encoder as a similarity index (``training/demo.py``).

It lives beside the analysis tests for their tiny trained model (``conftest.py``): the step runs the real
``autostop embed`` / ``evaluate`` / ``similar`` / ``tsne`` on it, as a user would after a sweep.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.training.analysis.conftest import TrainedModel
from tests.training.sweep.test_report import fixed_sweep
from training import demo
from training.sweep import report

pytestmark = pytest.mark.slow


def test_the_best_jobs_encoder_indexes_evaluates_finds_and_draws_every_design(
    trained_model: TrainedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a finished sweep whose best job (fixed-002) saved its model where a local job saves it
    record = fixed_sweep()
    shutil.copytree(trained_model.model_dir, tmp_path / "jobs" / "fixed-002" / "opt_ml" / "model")

    # WHEN the demo searches with it over the sweep's shards
    search = demo.search_by_shape(record, trained_model.shards.path, tmp_path)

    # THEN every design is indexed, evaluated by family, a design's neighbours are listed and the map drawn
    assert search == tmp_path / "search"
    index = json.loads((search / "embeddings" / "embeddings.json").read_text(encoding="utf-8"))
    assert sorted(index["design_ids"]) == sorted(trained_model.shards.design_ids)
    assert (search / "tsne" / "tsne.png").stat().st_size > 0
    text = capsys.readouterr().out
    assert "=== 5. Search by shape with the best job's encoder ===" in text
    assert "$ autostop evaluate" in text
    assert "precision@5" in text
    assert f"most similar to design {index['design_ids'][0]}" in text
    # AND the closing lines point to it
    files = report.write_report(record, tmp_path / "report")
    demo.explain_where_to_look(files, 60.0, tmp_path, search=search)
    assert f"Search:       {search}/" in capsys.readouterr().out


def test_without_a_saved_model_the_demo_says_so_and_searches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a sweep whose best job left no model (its folder was removed)
    # WHEN the demo would search with it
    # THEN it says why there is no search, and writes nothing
    assert demo.search_by_shape(fixed_sweep(), tmp_path / "shards", tmp_path) is None
    assert "no encoder to search with" in capsys.readouterr().out
    assert not (tmp_path / "search").exists()
