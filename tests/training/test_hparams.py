"""Hyperparameters: SageMaker's all-string values, CLI overrides, and one clear error per bad value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training import hparams


def test_sagemaker_string_values_are_parsed_to_their_types() -> None:
    # GIVEN hyperparameters as SageMaker writes them: every value a string, plus the SDK's own keys
    values = {
        "learning_rate": "0.005",
        "batch_size": "16",
        "steps": "200",
        "loss": "ssim_l1",
        "preset": "baseline",
        "decay": "exponential",
        "decay_rate": "0.5",
        "validation_fraction": "0.2",
        "sagemaker_program": "train.py",
        "sagemaker_region": '"us-east-1"',
    }

    # WHEN they are parsed
    parsed = hparams.from_mapping(values)

    # THEN each has its type and the SDK keys are ignored
    assert parsed.learning_rate == 0.005
    assert parsed.batch_size == 16
    assert parsed.steps == 200
    assert parsed.loss == "ssim_l1"
    assert parsed.preset == "baseline"
    assert parsed.decay == "exponential"
    assert parsed.validation_fraction == pytest.approx(0.2)
    assert parsed.epochs is None


def test_json_encoded_strings_from_the_python_sdk_are_unquoted() -> None:
    # The SageMaker Python SDK's framework estimators json.dumps every value: "ssim" arrives as '"ssim"'.
    parsed = hparams.from_mapping({"loss": '"l2"', "learning_rate": "0.1", "preset": '"optimized"'})
    assert (parsed.loss, parsed.preset) == ("l2", "optimized")


def test_learning_rate_zero_is_allowed() -> None:
    # A zero learning rate is a legitimate (bad) run: the LossNotDecreasing rule must be able to catch it.
    assert hparams.from_mapping({"learning_rate": "0"}).learning_rate == 0.0


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"learning_rate": "-0.1"}, "learning_rate must be >= 0"),
        ({"learning_rate": "fast"}, "learning_rate must be a number, got 'fast'"),
        ({"learning_rate": "nan"}, "learning_rate must be a finite number"),
        ({"loss": "mse"}, "unknown loss 'mse': expected one of ssim, l2, ssim_l1"),
        ({"preset": "huge"}, "unknown preset 'huge': expected one of baseline, optimized"),
        ({"decay": "cosine"}, "unknown decay 'cosine'"),
        ({"decay": "exponential", "decay_rate": "1.5"}, "decay_rate must be <= 1 for exponential decay"),
        ({"batch_size": "0"}, "batch_size must be > 0"),
        ({"batch_size": "3.5"}, "batch_size must be an integer, got '3.5'"),
        ({"steps": "10", "epochs": "2"}, "set steps or epochs, not both"),
        ({"steps": "-5"}, "steps must be > 0"),
        ({"image_size": "40"}, "image_size must be a multiple of 16"),
        ({"image_size": "0"}, "image_size must be a multiple of 16"),
        ({"num_views": "0"}, "num_views must be > 0"),
        ({"validation_fraction": "1"}, "validation_fraction must be in [0, 1)"),
        ({"checkpoint_interval": "0"}, "checkpoint_interval must be > 0"),
        ({"embedding_size": "0"}, "embedding_size must be > 0"),
        ({"lerning_rate": "0.1"}, "unknown hyperparameter 'lerning_rate'"),
        ({"view_pooling": "sum"}, "unknown view_pooling 'sum': expected one of none, mean, max"),
        ({"normalize_embedding": "yes"}, "normalize_embedding must be true or false, got 'yes'"),
        ({"contrastive_weight": "-0.5"}, "contrastive_weight must be >= 0 (0: no contrastive term)"),
        ({"contrastive_weight": "strong"}, "contrastive_weight must be a number, got 'strong'"),
        ({"contrastive_weight": "inf"}, "contrastive_weight must be a finite number"),
        ({"contrastive_temperature": "0"}, "contrastive_temperature must be > 0, got 0.0"),
        (
            {"contrastive_weight": "0.1", "batch_size": "1"},
            "contrastive_weight > 0 needs batch_size >= 2 (the other designs of a batch are the negatives)",
        ),
    ],
)
def test_bad_values_raise_an_error_naming_the_problem(values: dict[str, str], expected: str) -> None:
    with pytest.raises(hparams.HyperparameterError) as raised:
        hparams.from_mapping(values)
    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)


def test_cli_flags_override_the_hyperparameters_file(tmp_path: Path) -> None:
    # GIVEN a SageMaker hyperparameters file
    config = tmp_path / "hyperparameters.json"
    config.write_text(json.dumps({"learning_rate": "0.1", "batch_size": "8", "loss": "l2"}))

    # WHEN flags (either spelling) override some values
    parsed = hparams.load(["--learning_rate", "0.02", "--batch-size", "4"], config)

    # THEN flags win and the rest comes from the file
    assert (parsed.learning_rate, parsed.batch_size, parsed.loss) == (0.02, 4, "l2")


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    assert hparams.load([], tmp_path / "absent.json") == hparams.HyperParameters()


@pytest.mark.parametrize(
    ("argv", "content", "expected"),
    [
        (["--no_such_flag", "1"], None, "unrecognized arguments: --no_such_flag"),
        (["--learning_rate"], None, "expected one argument"),
        ([], "{not json", "cannot read hyperparameters file"),
        ([], "[1, 2]", "must hold a JSON object"),
    ],
)
def test_bad_flags_and_files_raise(
    tmp_path: Path, argv: list[str], content: str | None, expected: str
) -> None:
    config = tmp_path / "hyperparameters.json"
    if content is not None:
        config.write_text(content)
    with pytest.raises(hparams.HyperparameterError, match=expected):
        hparams.load(argv, config)


def test_total_steps_from_steps_or_epochs() -> None:
    assert hparams.HyperParameters().total_steps(1000) == hparams.DEFAULT_STEPS
    assert hparams.HyperParameters(steps=7).total_steps(1000) == 7
    # 3 epochs of 50 designs in batches of 16: ceil(50 / 16) = 4 steps each.
    assert hparams.HyperParameters(epochs=3, batch_size=16).total_steps(50) == 12


def test_the_constructor_validates_too() -> None:
    with pytest.raises(hparams.HyperparameterError, match="learning_rate must be >= 0"):
        hparams.HyperParameters(learning_rate=-1.0)
    assert hparams.HyperParameters(learning_rate=1).learning_rate == 1.0


def test_presets_differ_as_published() -> None:
    # The optimized model: about a third fewer layers and a bottleneck at least 3x smaller.
    baseline = hparams.HyperParameters(preset="baseline").architecture()
    optimized = hparams.HyperParameters(preset="optimized").architecture()
    assert baseline.embedding_size >= 3 * optimized.embedding_size
    assert 0.6 <= optimized.weighted_layer_count / baseline.weighted_layer_count <= 0.72
    assert len(baseline.bottleneck_units) >= 2  # several fully connected bottleneck layers
    assert len(optimized.encoder_filters) < len(baseline.encoder_filters)


def test_architecture_overrides_apply_to_the_preset() -> None:
    architecture = hparams.HyperParameters(
        preset="baseline", base_filters=4, bottleneck_layers=3, bottleneck_width=16, embedding_size=8
    ).architecture()
    assert architecture.encoder_filters == (4, 4, 8, 8, 12, 12, 16, 16)
    assert architecture.bottleneck_units == (16, 16, 16)
    assert architecture.embedding_size == 8


def test_model_options_are_off_by_default_and_reach_the_architecture() -> None:
    # GIVEN the defaults and SageMaker-style strings for the model options
    default = hparams.HyperParameters().architecture()
    chosen = hparams.from_mapping({"view_pooling": "max", "normalize_embedding": "true"}).architecture()

    # THEN the reference model is the default, and the options land in the architecture
    assert (default.view_pooling, default.normalize_embedding) == ("none", False)
    assert (chosen.view_pooling, chosen.normalize_embedding) == ("max", True)


def test_the_contrastive_term_is_off_by_default_and_parsed_from_strings() -> None:
    assert hparams.HyperParameters().contrastive_weight == 0.0
    parsed = hparams.from_mapping({"contrastive_weight": "0.5", "contrastive_temperature": '"0.2"'})
    assert (parsed.contrastive_weight, parsed.contrastive_temperature) == (0.5, 0.2)


def test_the_job_signing_key_is_accepted_and_not_kept_as_a_training_setting() -> None:
    # GIVEN the hyperparameters the SageMaker launcher writes: training settings plus the signing key
    values = {"learning_rate": "0.003", "autostop_signing_key": "k" * 43}
    # WHEN the container parses them
    parsed = hparams.from_mapping(values)
    # THEN the job starts with its settings, and the key is nowhere in them (it is read by the signer)
    assert parsed.learning_rate == 0.003
    assert "k" * 43 not in repr(parsed)


def test_the_sweeps_cross_job_comparison_is_accepted_and_not_kept_as_a_training_setting() -> None:
    # GIVEN the hyperparameters of a job of a sweep launched with a cross_job section
    comparison = '{"sweep":"vision-lr","metric":"validation:loss","rungs":[100,300]}'
    values = {"learning_rate": "0.003", "autostop_cross_job": comparison}
    # WHEN the container parses them
    parsed = hparams.from_mapping(values)
    # THEN the job starts with its settings; the comparison is the rung reporter's, not a training setting
    assert parsed.learning_rate == 0.003
    assert "vision-lr" not in repr(parsed)
    assert "autostop_cross_job" not in parsed.to_json_dict()
