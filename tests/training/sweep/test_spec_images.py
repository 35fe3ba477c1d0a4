"""The spec's training image must be built for the instance type's hardware (CPU or GPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from training.sweep import spec as spec_module

EXAMPLE_SPEC = Path(spec_module.__file__).parent / "specs" / "sagemaker-example.yaml"
CPU_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/training:cpu"
GPU_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/training:gpu"


def example_with(**sagemaker: Any) -> dict[str, Any]:
    document = spec_module.read_document(EXAMPLE_SPEC)
    assert isinstance(document, dict)
    section = {
        key: value
        for key, value in document["sagemaker"].items()
        if key not in ("image_uri", "cpu_image_uri", "gpu_image_uri")
    }
    document["sagemaker"] = {**section, **sagemaker}
    return document


@pytest.mark.parametrize(
    ("instance_type", "hardware"),
    [
        ("ml.g5.xlarge", "gpu"),
        ("ml.g4dn.xlarge", "gpu"),
        ("ml.p4d.24xlarge", "gpu"),
        ("ml.p3.2xlarge", "gpu"),
        ("ml.m5.xlarge", "cpu"),
        ("ml.c5.2xlarge", "cpu"),
        ("ml.trn1.2xlarge", "cpu"),
    ],
)
def test_instance_hardware(instance_type: str, hardware: str) -> None:
    assert spec_module.instance_hardware(instance_type) == hardware


@pytest.mark.parametrize(
    ("instance_type", "expected"), [("ml.g5.xlarge", GPU_IMAGE), ("ml.m5.xlarge", CPU_IMAGE)]
)
def test_the_instance_type_picks_the_stacks_image(instance_type: str, expected: str) -> None:
    # GIVEN both images of the training stack; WHEN the spec names an instance type
    spec = spec_module.parse_spec(
        example_with(instance_type=instance_type, cpu_image_uri=CPU_IMAGE, gpu_image_uri=GPU_IMAGE)
    )
    # THEN the image built for its hardware is the one launched
    assert spec_module.image_for_instance(spec.sagemaker) == expected


def test_a_gpu_instance_with_only_the_cpu_image_is_refused() -> None:
    # GIVEN a GPU instance type and only the CPU image
    document = example_with(instance_type="ml.g5.xlarge", cpu_image_uri=CPU_IMAGE)
    # WHEN validating; THEN one error naming the missing GPU image
    with pytest.raises(spec_module.SpecError, match=r"sagemaker\.gpu_image_uri: missing: ml\.g5\.xlarge"):
        spec_module.parse_spec(document)


def test_a_cpu_instance_with_only_the_gpu_image_is_refused() -> None:
    document = example_with(instance_type="ml.m5.xlarge", gpu_image_uri=GPU_IMAGE)
    with pytest.raises(spec_module.SpecError, match=r"sagemaker\.cpu_image_uri: missing"):
        spec_module.parse_spec(document)


def test_one_image_must_declare_the_hardware_it_was_built_for() -> None:
    # GIVEN one image on a GPU instance, without image_hardware (it defaults to cpu)
    with pytest.raises(spec_module.SpecError, match="is a CPU image"):
        spec_module.parse_spec(example_with(instance_type="ml.g5.xlarge", image_uri=CPU_IMAGE))
    # AND the GPU image declared on a CPU instance is refused the same way
    with pytest.raises(spec_module.SpecError, match="is a GPU image"):
        spec_module.parse_spec(
            example_with(instance_type="ml.m5.xlarge", image_uri=GPU_IMAGE, image_hardware="gpu")
        )
    # AND a declared GPU image on a GPU instance is accepted
    spec = spec_module.parse_spec(
        example_with(instance_type="ml.g5.xlarge", image_uri=GPU_IMAGE, image_hardware="gpu")
    )
    assert spec_module.image_for_instance(spec.sagemaker) == GPU_IMAGE


def test_an_unknown_image_hardware_is_refused() -> None:
    with pytest.raises(spec_module.SpecError, match="image_hardware: must be one of cpu, gpu"):
        spec_module.parse_spec(example_with(image_uri=GPU_IMAGE, image_hardware="tpu"))
