"""The model-quality benchmark's configurations and its smaller runs (what they train, not how well)."""

from __future__ import annotations

import pytest

from bench import model_quality


def test_every_configuration_trains_into_its_own_folder_and_the_contrastive_one_keeps_ssim() -> None:
    names = [configuration.name for configuration in model_quality.CONFIGURATIONS]
    assert len(names) == len(set(names))
    contrastive = [item for item in model_quality.CONFIGURATIONS if item.contrastive_weight > 0]
    assert [item.loss for item in contrastive] == ["ssim"]
    assert "contrastive" in contrastive[0].label
    parameters = model_quality.job_hyperparameters(model_quality.Settings(), contrastive[0], 1e-3)
    assert parameters.contrastive_weight == contrastive[0].contrastive_weight


def test_without_arguments_it_is_the_full_benchmark() -> None:
    assert model_quality.settings_from_arguments([]) == model_quality.Settings()


def test_a_contrastive_probe_trains_one_model_per_weight_on_smaller_data() -> None:
    argv = ["--train-per-family", "16", "--views", "6", "--steps", "300", "--contrastive-weights", "0,0.1,1"]

    settings = model_quality.settings_from_arguments(argv)

    assert [item.contrastive_weight for item in settings.configurations] == [0.0, 0.1, 1.0]
    assert {
        (item.preset, item.loss, item.view_pooling, item.normalize_embedding)
        for item in settings.configurations
    } == {("optimized", "ssim", "mean", True)}
    assert (settings.train_per_family, settings.num_views, settings.steps) == (16, 6, 300)
    assert settings.command == ".venv/bin/python -m bench.model_quality " + " ".join(argv)


def test_negative_weights_are_refused() -> None:
    with pytest.raises(SystemExit):
        model_quality.settings_from_arguments(["--contrastive-weights", "-1"])


def test_a_temperature_probe_trains_each_contrastive_weight_once_per_temperature() -> None:
    # GIVEN a probe of two weights (one of them no contrastive term) at two temperatures
    argv = ["--contrastive-weights", "0,1", "--contrastive-temperatures", "0.1,0.5"]
    # WHEN it is parsed
    configurations = model_quality.settings_from_arguments(argv).configurations
    # THEN the model without the term is trained once, the other once per temperature, in its own folder
    assert [(item.contrastive_weight, item.contrastive_temperature) for item in configurations] == [
        (0.0, 0.1),
        (1.0, 0.1),
        (1.0, 0.5),
    ]
    assert len({item.name for item in configurations}) == 3
    assert "temperature 0.5" in configurations[2].label
    assert "temperature" not in configurations[1].label  # the container's default, as the committed table
    assert (
        model_quality.job_hyperparameters(
            model_quality.Settings(), configurations[2], 1e-3
        ).contrastive_temperature
        == 0.5
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--contrastive-temperatures", "0.5"],
        ["--contrastive-weights", "1", "--contrastive-temperatures", "0"],
    ],
)
def test_a_temperature_without_a_weight_or_not_positive_is_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        model_quality.settings_from_arguments(argv)
