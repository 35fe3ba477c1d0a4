"""Gradient statistics, update ratios and the vanishing diagnosis, checked against a trial with known tensors.

The trial is written with smdebug's own core writer (tests/training/analysis/trials.py) and read back with
``smdebug.trials.create_trial``: the numbers below are worked out by hand from the values written.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.training.analysis import trials
from training.analysis import gradients

# encoder_conv_1's gradients shrink below 1e-7 from step 10 on; decoder_conv_1's dip at step 10 only.
KERNEL = np.array([[-1.0, 2.0], [-3.0, 4.0]])  # min -3, max 4, mean 0.5, mean |g| 2.5
BIAS = np.array([0.5, -0.5])  # mean |g| 0.5
SCALES = {0: 1.0, 10: 1e-8, 20: 1e-9}
DECODER_SCALES = {0: 1e-2, 10: 1e-9, 20: 1e-2}
WEIGHTS = {0: np.array([3.0, 4.0]), 10: np.array([3.5, 4.0]), 20: np.array([3.5, 4.0])}


def known_steps() -> dict[int, dict[str, dict[str, np.ndarray]]]:
    steps = {}
    for step in (0, 10, 20):
        steps[step] = {
            "gradients": {
                "gradients/encoder_conv_1/kernel": KERNEL * SCALES[step],
                "gradients/encoder_conv_1/bias": BIAS * SCALES[step],
                "gradients/embedding/kernel": np.full((3, 2), 0.25),
                "gradients/decoder_conv_1/kernel": KERNEL * DECODER_SCALES[step],
            },
            "weights": {
                "weights/encoder_conv_1/kernel": WEIGHTS[step],
                "weights/embedding/kernel": np.ones((3, 2)),
            },
            "losses": {"loss": np.float32(1.0 / (step + 1))},
        }
    return steps


@pytest.fixture
def known_trial(tmp_path: Path) -> Path:
    return trials.write_trial(tmp_path / "trial", known_steps())


def test_tensor_statistics_on_known_values() -> None:
    statistics = gradients.tensor_statistics(np.array([-1.0, 2.0, -3.0, 4.0, math.nan, math.inf]))
    assert (statistics.minimum, statistics.maximum) == (-3.0, 4.0)
    assert statistics.mean == pytest.approx(0.5)
    assert statistics.mean_abs == pytest.approx(2.5)
    assert (statistics.count, statistics.nonfinite) == (4, 2)


@pytest.mark.parametrize(
    ("tensor_name", "layer"),
    [
        ("gradients/encoder_conv_1/kernel", "encoder_conv_1"),
        ("gradients/encoder_conv_1/kernel:0", "encoder_conv_1"),
        ("gradients/dense/biasGrad", "dense"),
        ("weights/bottleneck_dense_2/bias", "bottleneck_dense_2"),
        ("embedding", "embedding"),
    ],
)
def test_layer_names_from_tensor_names(tensor_name: str, layer: str) -> None:
    assert gradients.layer_name(tensor_name) == layer


def test_layers_sort_in_forward_order() -> None:
    names = [
        "reconstruction",
        "decoder_conv_2",
        "embedding",
        "encoder_conv_10",
        "encoder_conv_2",
        "dense_11",
        "dense_2",
        "bottleneck_dense_1",
        "decoder_projection",
        "decoder_dense_1",
    ]
    assert gradients.order_layers(names) == [
        "encoder_conv_2", "encoder_conv_10", "bottleneck_dense_1", "embedding", "decoder_dense_1",
        "decoder_projection", "decoder_conv_2", "reconstruction", "dense_2", "dense_11",
    ]  # fmt: skip


def test_statistics_per_layer_and_step_from_the_trial(known_trial: Path) -> None:
    # GIVEN a trial with known gradients; WHEN it is read and reduced
    report = gradients.build_report(gradients.collect(gradients.open_trial(str(known_trial))))

    # THEN every step is there, layers are in forward order and the layer statistics pool kernel and bias
    assert report.steps == (0, 10, 20)
    assert report.layers == ("encoder_conv_1", "embedding", "decoder_conv_1")
    encoder_at_0 = report.layer_statistics["encoder_conv_1"][0]
    assert (encoder_at_0.minimum, encoder_at_0.maximum) == (-3.0, 4.0)
    assert encoder_at_0.mean == pytest.approx((0.5 * 4 + 0.0 * 2) / 6)
    assert encoder_at_0.mean_abs == pytest.approx((2.5 * 4 + 0.5 * 2) / 6)
    assert report.layer_statistics["encoder_conv_1"][20].mean_abs == pytest.approx(11 / 6 * 1e-9)
    kernel_at_10 = report.tensor_statistics["gradients/encoder_conv_1/kernel"][10]
    assert kernel_at_10.mean_abs == pytest.approx(2.5e-8)
    assert report.losses == {
        "loss (train)": [(0, 1.0), (10, pytest.approx(1 / 11)), (20, pytest.approx(1 / 21))]
    }


def test_update_ratios_from_consecutive_saved_steps(known_trial: Path) -> None:
    report = gradients.build_report(gradients.collect(gradients.open_trial(str(known_trial))))

    # ||(0.5, 0)|| / ||(3, 4)|| = 0.1 over 10 steps; then no change; the embedding never changes
    encoder = report.update_ratios["encoder_conv_1"]
    assert [(ratio.previous_step, ratio.step) for ratio in encoder] == [(0, 10), (10, 20)]
    assert encoder[0].ratio == pytest.approx(0.1)
    assert encoder[0].per_step == pytest.approx(0.01)
    assert encoder[1].ratio == 0.0
    assert [ratio.ratio for ratio in report.update_ratios["embedding"]] == [0.0, 0.0]
    assert list(report.barely_updated) == ["embedding"]


def test_vanishing_diagnosis_names_layers_and_first_step(known_trial: Path) -> None:
    report = gradients.build_report(gradients.collect(gradients.open_trial(str(known_trial))))

    encoder = report.diagnoses["encoder_conv_1"]
    assert (encoder.status, encoder.vanished_from, encoder.below_steps) == ("vanishing", 10, (10, 20))
    assert report.diagnoses["decoder_conv_1"].status == "intermittent"
    assert report.diagnoses["embedding"].status == "ok"
    assert report.vanishing_layers == ["encoder_conv_1"]
    assert report.first_vanishing_step == 10


def test_thresholds_and_patience_are_parameters() -> None:
    magnitudes = {"a": {0: 1.0, 1: 1e-3, 2: 1e-3}, "b": {0: 1.0, 1: 1.0, 2: 1.0}}

    default = gradients.diagnose_vanishing(magnitudes, gradients.Thresholds())
    higher = gradients.diagnose_vanishing(magnitudes, gradients.Thresholds(threshold=1e-2))
    relative = gradients.diagnose_vanishing(magnitudes, gradients.Thresholds(relative_threshold=0.01))
    patient = gradients.diagnose_vanishing(magnitudes, gradients.Thresholds(threshold=1e-2, patience=3))

    assert default["a"].status == "ok"
    assert (higher["a"].status, higher["a"].vanished_from) == ("vanishing", 1)
    assert (relative["a"].status, relative["b"].status) == ("vanishing", "ok")
    assert patient["a"].status == "intermittent"


def test_nonfinite_gradients_are_reported_not_called_small() -> None:
    diagnoses = gradients.diagnose_vanishing({"a": {0: 1.0, 5: math.nan}}, gradients.Thresholds())
    assert (diagnoses["a"].status, diagnoses["a"].nonfinite_from) == ("non-finite", 5)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"threshold": -1.0}, "threshold"), ({"relative_threshold": 2.0}, "relative_threshold"),
     ({"patience": 0}, "patience"), ({"min_update_ratio": math.nan}, "min_update_ratio")],
)  # fmt: skip
def test_bad_thresholds_are_rejected(arguments: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gradients.Thresholds(**arguments)  # type: ignore[arg-type]


def test_analyze_writes_summary_tables_and_plots(known_trial: Path, tmp_path: Path) -> None:
    # GIVEN the known trial; WHEN it is analysed into a folder
    result = gradients.analyze(str(known_trial), tmp_path / "analysis")

    # THEN the summary leads with the diagnosis a person can act on, and links the plots it wrote
    summary = result.summary.read_text(encoding="utf-8")
    diagnosis = summary.split("## Diagnosis")[1].split("##")[0]
    assert "**Vanishing gradients** in 1 of 3 layers, from step 10: `encoder_conv_1`" in diagnosis
    assert "What to do" in diagnosis
    assert "**Barely updated layers** (1): `embedding` (median update ratio per step 0)." in diagnosis
    assert (
        "| `encoder_conv_1` | 1.83 | 1.83e-09 | 1.83e-09 | 1.83 | 0.005 | vanishing from step 10 |" in summary
    )
    for plot in (gradients.DISTRIBUTIONS_PLOT, gradients.MAGNITUDES_PLOT, gradients.UPDATE_RATIOS_PLOT):
        assert f"]({plot})" in summary
        with Image.open(tmp_path / "analysis" / plot) as image:
            assert image.format == "PNG"
            assert image.size[0] > 400
    # AND the distributions compare the first encoder layer with the last one (the embedding)
    assert set(result.report.histograms) == {"encoder_conv_1", "embedding"}
    assert int(result.report.histograms["encoder_conv_1"][0].sum()) == 6
    rows = (tmp_path / "analysis" / gradients.STATISTICS_FILE).read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("kind,name,layer,step,min,max,mean,mean_abs")
    assert len(rows) == 1 + 3 * 3 + 4 * 3  # header, 3 layers x 3 steps, 4 tensors x 3 steps


def test_exactly_zero_gradients_are_called_a_dead_network(tmp_path: Path) -> None:
    # GIVEN every layer's gradients exactly zero (dead ReLUs, an output pinned at a constant)
    steps = {
        step: {
            "gradients": {
                f"gradients/{layer}/kernel": np.zeros(4) for layer in ("encoder_conv_1", "embedding")
            }
        }
        for step in (5, 10)
    }
    trial = trials.write_trial(tmp_path / "trial", steps)

    # WHEN analysed; THEN the advice is about a dead network, not about depth
    summary = gradients.analyze(str(trial), tmp_path / "out").summary.read_text(encoding="utf-8")
    assert "**Vanishing gradients** in 2 of 2 layers, from step 5" in summary
    assert "Their gradients are exactly zero: the network is dead" in summary


def test_healthy_trial_says_so(tmp_path: Path) -> None:
    steps = {
        step: {
            "gradients": {"gradients/dense/kernel": KERNEL * 1e-3},
            "weights": {"weights/dense/kernel": WEIGHTS[0] + step * 0.01},
        }
        for step in (0, 1, 2)
    }
    trial = trials.write_trial(tmp_path / "trial", steps)

    summary = gradients.analyze(str(trial), tmp_path / "out").summary.read_text(encoding="utf-8")

    assert "- No vanishing or exploding gradients and no frozen layers" in summary


def test_missing_trial_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(gradients.TrialError, match=r"no Debugger trial at .*does not exist"):
        gradients.open_trial(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(gradients.TrialError, match=r"no Debugger trial at .*collections"):
        gradients.open_trial(str(tmp_path / "empty"))


def test_trial_without_gradients_is_a_clear_error(tmp_path: Path) -> None:
    trial = trials.write_trial(tmp_path / "trial", {0: {"losses": {"loss": np.float32(1.0)}}})
    with pytest.raises(
        gradients.TrialError, match=r"no tensors in collection 'gradients'.*collections: losses"
    ):
        gradients.collect(gradients.open_trial(str(trial)))


def test_s3_trial_is_read_over_http(moto_endpoint: str, known_trial: Path, tmp_path: Path) -> None:
    """A trial in S3 (moto server over HTTP), read by smdebug's S3 trial like a job's Debugger output."""
    import boto3

    # GIVEN the known trial uploaded under a job's debug-output prefix
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="debug-output")
    for file in known_trial.rglob("*"):
        if file.is_file():
            s3.upload_file(str(file), "debug-output", f"job-1/debug-output/{file.relative_to(known_trial)}")

    # WHEN it is analysed from s3://; THEN the numbers are those of the local copy
    report = gradients.analyze("s3://debug-output/job-1/debug-output", tmp_path / "analysis").report
    assert report.first_vanishing_step == 10
    assert report.layer_statistics["encoder_conv_1"][20].mean_abs == pytest.approx(11 / 6 * 1e-9)

    # AND a prefix without a trial fails at once with the reason, instead of waiting for collections
    with pytest.raises(gradients.TrialError, match="no Debugger trial at s3://debug-output/job-2"):
        gradients.open_trial("s3://debug-output/job-2/debug-output")
    with pytest.raises(gradients.TrialError, match="NoSuchBucket"):
        gradients.open_trial("s3://missing-bucket/job-1")
