"""The analysis commands' defaults: ``--split validation`` works without naming the training's fraction."""

from __future__ import annotations

import pytest

from tests.training.analysis.conftest import TrainedModel
from training import cli


def test_evaluate_split_validation_works_by_default(
    trained_model: TrainedModel, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a trained model and its shards; WHEN evaluating the validation split with no fraction given
    code = cli.main(
        ["evaluate", str(trained_model.model_dir), str(trained_model.shards.path), "--split", "validation"]
    )
    # THEN the split training makes by default (10% of designs) is evaluated, fewer than all designs
    output = capsys.readouterr().out
    assert code == 0, output
    queries = int(output.split(" designs as leave-one-out queries")[0])
    assert 0 < queries < len(trained_model.shards.design_ids)
