"""A tiny trained model, as a job writes it, over the session's rendered shards.

The shards come from ``tests/training/conftest.py`` (render generator -> transformer core: 24 designs of
8 families, 6 views of 32x32). The model is trained for a few steps by ``training.job.run`` -- the code a
SageMaker job runs -- so its model directory holds exactly ``autoencoder.keras``, ``encoder.keras`` and
``training.json``. A few steps do not make a good model; the tests here check plumbing and arithmetic, and
``bench/model_quality.py`` measures quality.
"""

from __future__ import annotations

import dataclasses
import io
import tarfile
from pathlib import Path

import pytest

from tests.training.conftest import RenderedShards

TINY_HPARAMS = {
    "preset": "optimized",
    "base_filters": 4,
    "bottleneck_width": 16,
    "embedding_size": 8,
    "steps": 6,
    "batch_size": 8,
    "log_interval": 3,
    "checkpoint_interval": 100,
    "validation_fraction": 0.0,
    "seed": 3,
}


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    model_dir: Path
    shards: RenderedShards
    embedding_size: int


@pytest.fixture(scope="session")
def trained_model(rendered_shards: RenderedShards, tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    from training import hparams, job

    root = tmp_path_factory.mktemp("tiny-job")
    parameters = hparams.HyperParameters(
        image_size=rendered_shards.image_size, num_views=rendered_shards.num_views, **TINY_HPARAMS
    )
    locations = job.JobLocations(
        train_channel=rendered_shards.path, model_dir=root / "model", checkpoint_dir=root / "checkpoints"
    )
    job.run(parameters, locations, log=lambda line: None)
    return TrainedModel(
        model_dir=root / "model", shards=rendered_shards, embedding_size=int(TINY_HPARAMS["embedding_size"])
    )


def design_folder(shards: RenderedShards, design_id: str, destination: Path) -> Path:
    """Unpack one design's folder (view_NN.png, meta.json) from the render batches behind the shards."""
    batches = shards.path.parent / "batches"
    for archive_path in sorted(batches.glob("*.tar.gz")):
        with tarfile.open(archive_path, "r:gz") as archive:
            members = [member for member in archive.getmembers() if member.name.startswith(f"{design_id}/")]
            if not members:
                continue
            folder = destination / design_id
            folder.mkdir(parents=True)
            for member in members:
                content = archive.extractfile(member)
                if content is not None:
                    (folder / Path(member.name).name).write_bytes(io.BytesIO(content.read()).getvalue())
            return folder
    raise LookupError(f"design {design_id} is in no batch under {batches}")
