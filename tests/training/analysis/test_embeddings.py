"""Signatures from a real (tiny, briefly trained) encoder over rendered shards; t-SNE and projector files."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from PIL import Image
from tensorboard.plugins import projector

from tests.training import support
from tests.training.analysis.conftest import TrainedModel, design_folder
from training.analysis import embeddings

# Real training (or many TensorFlow processes): a slow module, handed out first (tests/conftest.py).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedded(trained_model: TrainedModel) -> embeddings.EmbeddingSet:
    encoder = embeddings.load_encoder(trained_model.model_dir)
    return embeddings.embed_shards(encoder, trained_model.shards.path, batch_size=5)


def test_every_design_gets_one_signature_with_its_family(
    embedded: embeddings.EmbeddingSet, trained_model: TrainedModel
) -> None:
    shards = trained_model.shards
    assert sorted(embedded.design_ids) == sorted(shards.design_ids)
    assert embedded.vectors.shape == (len(shards.design_ids), trained_model.embedding_size)
    assert embedded.vectors.dtype == np.float32
    assert np.all(np.isfinite(embedded.vectors))
    assert dict(zip(embedded.design_ids, embedded.families, strict=True)) == (shards.families)
    assert embedded.thumbnails is not None
    assert embedded.thumbnails.shape == (len(shards.design_ids), 64, 64)
    assert embedded.source["num_views"] == shards.num_views


def test_signatures_match_the_encoder_on_the_same_pixels(
    embedded: embeddings.EmbeddingSet, trained_model: TrainedModel
) -> None:
    # GIVEN the autoencoder file instead of the encoder file (its encoder half is taken)
    encoder = embeddings.load_encoder(trained_model.model_dir / "autoencoder.keras")
    design_id = embedded.design_ids[3]

    # WHEN the shards are embedded in other batches; THEN every row equals the encoder file's
    vectors = embeddings.embed_shards(encoder, trained_model.shards.path, batch_size=64)
    np.testing.assert_allclose(vectors.vectors[3], embedded.vectors[3], rtol=1e-5, atol=1e-6)
    assert vectors.design_ids[3] == design_id


def test_save_and_load_round_trip(embedded: embeddings.EmbeddingSet, tmp_path: Path) -> None:
    embedded.save(tmp_path / "e")
    loaded = embeddings.EmbeddingSet.load(tmp_path / "e")
    np.testing.assert_array_equal(loaded.vectors, embedded.vectors)
    assert (loaded.design_ids, loaded.families) == (embedded.design_ids, embedded.families)
    assert loaded.thumbnails is not None
    assert np.array_equal(loaded.thumbnails, embedded.thumbnails)


def test_model_archive_as_sagemaker_uploads_it(trained_model: TrainedModel, tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for file in trained_model.model_dir.iterdir():
            tar.add(file, arcname=file.name)
    encoder = embeddings.load_encoder(archive)
    assert embeddings.input_shape(encoder) == (
        trained_model.shards.image_size,
        trained_model.shards.num_views,
    )


def test_tsne_png_and_projector_export(embedded: embeddings.EmbeddingSet, tmp_path: Path) -> None:
    # GIVEN embeddings of 24 designs; WHEN the t-SNE report is made
    result = embeddings.tsne_report(embedded, tmp_path / "tsne", seed=1)

    # THEN a PNG scatter exists, and the projector files are consistent with each other
    with Image.open(result.png) as image:
        assert image.format == "PNG"
        assert image.size[0] >= 600
    projector_dir = tmp_path / "tsne" / embeddings.PROJECTOR_DIR
    config = text_format.Parse(
        (projector_dir / "projector_config.pbtxt").read_text(encoding="utf-8"), projector.ProjectorConfig()
    )
    (embedding,) = config.embeddings
    vectors = np.loadtxt(projector_dir / embedding.tensor_path, delimiter="\t")
    np.testing.assert_allclose(vectors, embedded.vectors, rtol=1e-5, atol=1e-6)
    metadata = (projector_dir / embedding.metadata_path).read_text(encoding="utf-8").splitlines()
    assert metadata[0] == "design_id\tfamily"
    assert metadata[1:] == [f"{d}\t{f}" for d, f in zip(embedded.design_ids, embedded.families, strict=True)]
    with Image.open(projector_dir / embedding.sprite.image_path) as sprite:
        assert sprite.size == (5 * 64, 5 * 64)  # ceil(sqrt(24)) = 5 thumbnails a side
    assert list(embedding.sprite.single_image_dim) == [64, 64]
    assert result.family_ratio is not None
    assert 0 < result.family_ratio < 2


def test_sprite_shrinks_thumbnails_to_fit_tensorboards_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a sprite side limit of 256 pixels (TensorBoard's is 8192) and 100 thumbnails of 64x64
    monkeypatch.setattr(embeddings, "MAX_SPRITE_SIDE", 256)
    thumbnails = np.arange(100, dtype=np.uint8)[:, None, None] * np.ones((1, 64, 64), np.uint8)

    sprite, size = embeddings.sprite_image(thumbnails)

    # THEN 10 x 10 thumbnails of 25 pixels fit, in row-major order
    assert size == 25
    assert sprite.shape == (250, 250)
    assert sprite[0, 0] == 0
    assert sprite[0, 25] == 1
    assert sprite[25, 0] == 10


def test_wrong_view_count_is_a_clear_error(trained_model: TrainedModel, tmp_path: Path) -> None:
    # GIVEN shards of 4 views while the model takes 6
    size = trained_model.shards.image_size
    support.write_shard(
        tmp_path / "four" / "a.tfrecord",
        [("d1", "tube", support.blob_views(1, num_views=4, image_size=size))],
    )
    encoder = embeddings.load_encoder(trained_model.model_dir)

    # WHEN they are embedded; THEN the error names both shapes
    with pytest.raises(
        embeddings.EmbeddingError, match=r"has 4 views of 32x32 pixels, but the model expects num_views=6"
    ):
        embeddings.embed_shards(encoder, tmp_path / "four")

    # AND a folder of views with a view missing says which views it found
    folder = design_folder(trained_model.shards, trained_model.shards.design_ids[0], tmp_path / "folders")
    (folder / "view_05.png").unlink()
    with pytest.raises(
        embeddings.EmbeddingError, match=r"has 5 views \(view_00.png, .*view_04.png\); the model expects 6"
    ):
        embeddings.read_views_folder(folder, image_size=size, num_views=6)


@pytest.mark.parametrize("content", [None, b""], ids=["no shards", "empty shard"])
def test_empty_shards_are_a_clear_error(
    trained_model: TrainedModel, tmp_path: Path, content: bytes | None
) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    if content is not None:
        (folder / "empty.tfrecord").write_bytes(content)
    encoder = embeddings.load_encoder(trained_model.model_dir)
    with pytest.raises(embeddings.EmbeddingError, match="the dataset is empty"):
        embeddings.embed_shards(encoder, folder)


def test_bad_models_are_clear_errors(trained_model: TrainedModel, tmp_path: Path) -> None:
    with pytest.raises(embeddings.EmbeddingError, match="does not exist"):
        embeddings.load_encoder(tmp_path / "missing")
    (tmp_path / "empty-model").mkdir()
    with pytest.raises(
        embeddings.EmbeddingError, match=r"holds neither encoder\.keras nor autoencoder\.keras"
    ):
        embeddings.load_encoder(tmp_path / "empty-model")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    with pytest.raises(embeddings.EmbeddingError, match="cannot load model"):
        embeddings.load_encoder(broken)
    shutil.copy(trained_model.model_dir / "training.json", tmp_path / "training.json")
    with pytest.raises(embeddings.EmbeddingError, match="is not a model"):
        embeddings.load_encoder(tmp_path / "training.json")
