"""Design signatures from a trained encoder, and pictures of the latent space.

``autostop embed <model> <shards>`` runs the encoder (the bottleneck half of the autoencoder) over every
design in a folder of training shards and writes an *embeddings folder*:

- ``vectors.npy``: float32 ``(designs, embedding_size)``, one signature per design, in shard order;
- ``embeddings.json``: the design ids and families (same order), the model it came from, its input shape;
- ``thumbnails.npy``: uint8 ``(designs, 64, 64)``, the first four views of each design as a 2x2 tile, for
  the projector's sprite (so ``autostop tsne`` needs neither the model nor the shards again).

The same folder is the nearest-neighbour index of ``autostop similar`` (``training.analysis.search``).

``autostop tsne <embeddings>`` draws a t-SNE map (scikit-learn's ``TSNE``) coloured by family as a PNG, and
exports the TensorBoard projector files: ``vectors.tsv``, ``metadata.tsv`` (design id and family),
``sprite.png`` (the thumbnails in a grid) and ``projector_config.pbtxt`` (written with TensorBoard's own
``projector`` module), so ``tensorboard --logdir <out>/projector`` shows the embeddings in 3-D with the
views of every point.

A model is a ``.keras`` file (the encoder, or the autoencoder, whose encoder half is taken), a model
directory as a job writes it (``SM_MODEL_DIR``: ``encoder.keras``), or SageMaker's ``model.tar.gz`` of it.
Its input shape says how many views of which size it expects; shards or views that do not match are
rejected with both shapes in the message.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

VECTORS_FILE = "vectors.npy"
METADATA_FILE = "embeddings.json"
THUMBNAILS_FILE = "thumbnails.npy"
THUMBNAIL_SIZE = 64
TSNE_FILE = "tsne.png"
PROJECTOR_DIR = "projector"
PROJECTOR_VECTORS = "vectors.tsv"
PROJECTOR_METADATA = "metadata.tsv"
PROJECTOR_SPRITE = "sprite.png"
PROJECTOR_TENSOR_NAME = "design_embeddings"
# TensorBoard's projector refuses sprites larger than this on a side.
MAX_SPRITE_SIDE = 8192
ENCODER_FILE = "encoder.keras"  # training.job.ENCODER_FILE (not imported: that module imports TensorFlow)
AUTOENCODER_FILE = "autoencoder.keras"
EMBEDDING_LAYER = "embedding"  # training.model.EMBEDDING_LAYER_NAME
VIEW_FILE_PATTERN = re.compile(r"view_(\d{2})\.(?:png|jpg|jpeg)", re.IGNORECASE)
FORMAT_VERSION = 1


class EmbeddingError(ValueError):
    """A model, shards, views or embeddings folder cannot be used; the message says which and why."""


# --- models -------------------------------------------------------------------------------------------------


def _encoder_file(model: Path, scratch: Path) -> Path:
    if model.is_dir():
        for name in (ENCODER_FILE, AUTOENCODER_FILE):
            if (model / name).is_file():
                return model / name
        raise EmbeddingError(f"model directory {model} holds neither {ENCODER_FILE} nor {AUTOENCODER_FILE}")
    if model.name.endswith((".tar.gz", ".tgz")):
        try:
            with tarfile.open(model, "r:gz") as archive:
                for name in (ENCODER_FILE, AUTOENCODER_FILE):
                    member = next(
                        (
                            item
                            for item in archive.getmembers()
                            if item.isfile() and Path(item.name).name == name
                        ),
                        None,
                    )
                    extracted = archive.extractfile(member) if member is not None else None
                    if extracted is not None:
                        target = scratch / name
                        target.write_bytes(extracted.read())
                        return target
        except (tarfile.TarError, OSError, EOFError) as error:
            raise EmbeddingError(f"cannot read model archive {model}: {error}") from None
        raise EmbeddingError(f"model archive {model} holds neither {ENCODER_FILE} nor {AUTOENCODER_FILE}")
    if model.suffix == ".keras":
        return model
    raise EmbeddingError(
        f"{model} is not a model: expected a .keras file, a model directory or a model.tar.gz"
    )


def load_encoder(model: str | os.PathLike[str]) -> Any:
    """The encoder of a saved model (see the module docstring for what a model may be)."""
    path = Path(model)
    if not path.exists():
        raise EmbeddingError(f"model {path} does not exist")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from training import losses  # noqa: F401  (registers the autoencoder's losses for deserialization)

    with tempfile.TemporaryDirectory(prefix="autostop-model-") as scratch:
        file = _encoder_file(path, Path(scratch))
        try:
            loaded = keras.models.load_model(file, compile=False)
        except (ValueError, OSError, TypeError) as error:
            raise EmbeddingError(f"cannot load model {file}: {error}") from None
    if len(loaded.outputs) == 1 and len(loaded.outputs[0].shape) == 2:
        return loaded
    try:
        embedding = loaded.get_layer(EMBEDDING_LAYER)
    except ValueError:
        raise EmbeddingError(
            f"model {file} is not an encoder (its output has shape {loaded.outputs[0].shape}) and has no "
            f"{EMBEDDING_LAYER!r} layer to take the encoder from"
        ) from None
    return keras.Model(loaded.inputs, embedding.output, name="encoder")


def input_shape(encoder: Any) -> tuple[int, int]:
    """``(image_size, num_views)`` from the encoder's ``(None, H, W, V)`` input."""
    shape = tuple(encoder.inputs[0].shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[1] is None or shape[3] is None:
        raise EmbeddingError(
            f"expected an encoder over (height, width, views) square images, got input {shape}"
        )
    return int(shape[1]), int(shape[3])


# --- embedding sets -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EmbeddingSet:
    """Signatures of designs with their ids, families and thumbnails (rows in the same order)."""

    vectors: npt.NDArray[np.float32]
    design_ids: tuple[str, ...]
    families: tuple[str, ...]
    thumbnails: npt.NDArray[np.uint8] | None = None
    source: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2:
            raise EmbeddingError(f"vectors must be (designs, dimensions), got shape {self.vectors.shape}")
        if not len(self.design_ids) == len(self.families) == self.vectors.shape[0]:
            raise EmbeddingError("vectors, design ids and families must have the same length")
        if self.thumbnails is not None and self.thumbnails.shape[0] != self.vectors.shape[0]:
            raise EmbeddingError("thumbnails must have one row per design")

    def __len__(self) -> int:
        return len(self.design_ids)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / VECTORS_FILE, self.vectors.astype(np.float32))
        if self.thumbnails is not None:
            np.save(out / THUMBNAILS_FILE, self.thumbnails.astype(np.uint8))
        metadata = {
            "format": FORMAT_VERSION,
            "designs": len(self),
            "embedding_size": int(self.vectors.shape[1]),
            "design_ids": list(self.design_ids),
            "families": list(self.families),
            "source": self.source,
        }
        (out / METADATA_FILE).write_text(json.dumps(metadata, indent=1), encoding="utf-8")
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> EmbeddingSet:
        folder = Path(directory)
        if not (folder / METADATA_FILE).is_file() or not (folder / VECTORS_FILE).is_file():
            raise EmbeddingError(
                f"{folder} is not an embeddings folder: it needs {VECTORS_FILE} and {METADATA_FILE} "
                "(made by `autostop embed`)"
            )
        try:
            metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
            vectors = np.load(folder / VECTORS_FILE, allow_pickle=False)
            thumbnails = (
                np.load(folder / THUMBNAILS_FILE, allow_pickle=False)
                if (folder / THUMBNAILS_FILE).is_file()
                else None
            )
            return cls(
                vectors=vectors.astype(np.float32),
                design_ids=tuple(metadata["design_ids"]),
                families=tuple(metadata["families"]),
                thumbnails=thumbnails,
                source=dict(metadata.get("source", {})),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise EmbeddingError(f"cannot read embeddings folder {folder}: {error}") from None


def thumbnails_of(views: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """``(N, H, W, V)`` views in [0, 1] -> ``(N, 64, 64)`` uint8: the first four views tiled 2x2."""
    from PIL import Image

    batch = np.clip(np.asarray(views, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    count, height, width, num_views = batch.shape
    tiles = np.zeros((count, 2 * height, 2 * width), np.uint8)
    for view in range(min(4, num_views)):
        row, column = divmod(view, 2)
        tiles[:, row * height : (row + 1) * height, column * width : (column + 1) * width] = batch[..., view]
    if tiles.shape[1] == THUMBNAIL_SIZE:
        return tiles
    return np.stack(
        [
            np.asarray(
                Image.fromarray(tile).resize((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.BILINEAR)
            )
            for tile in tiles
        ]
    ).astype(np.uint8)


def embed_views(encoder: Any, views: npt.NDArray[Any], *, batch_size: int = 64) -> npt.NDArray[np.float32]:
    """Signatures of ``(N, H, W, V)`` views in [0, 1]."""
    image_size, num_views = input_shape(encoder)
    if views.ndim != 4 or views.shape[1:] != (image_size, image_size, num_views):
        raise EmbeddingError(
            f"views of shape {views.shape[1:]} do not fit the model, which expects {num_views} views of "
            f"{image_size}x{image_size} ({image_size}, {image_size}, {num_views})"
        )
    outputs = [
        np.asarray(encoder(views[start : start + batch_size], training=False), np.float32)
        for start in range(0, views.shape[0], batch_size)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, encoder.outputs[0].shape[-1]), np.float32)


def embed_shards(
    encoder: Any,
    shards: str | os.PathLike[str],
    *,
    batch_size: int = 64,
    split: str = "all",
    validation_fraction: float = 0.0,
    source: dict[str, Any] | None = None,
) -> EmbeddingSet:
    """Signatures of every design in a folder of shards (or one split of it, as training splits it).

    A design id seen twice (re-transformed batches) keeps its first occurrence.
    """
    if batch_size <= 0:
        raise EmbeddingError(f"batch size must be > 0, got {batch_size}")
    import tensorflow as tf

    from training import channels, data

    image_size, num_views = input_shape(encoder)
    path = Path(shards)
    try:
        _check_shards(path, image_size=image_size, num_views=num_views)
        dataset = data.load_dataset(
            path,
            image_size=image_size,
            num_views=num_views,
            batch_size=batch_size,
            split=split,
            validation_fraction=validation_fraction,
            with_metadata=True,
        )
    except channels.DatasetError as error:
        raise EmbeddingError(_for_the_model(str(error))) from None
    vectors: list[npt.NDArray[np.float32]] = []
    thumbnails: list[npt.NDArray[np.uint8]] = []
    design_ids: list[str] = []
    families: list[str] = []
    seen: set[str] = set()
    try:
        for batch in dataset:
            views = batch["views"].numpy()
            embedded = np.asarray(encoder(views, training=False), np.float32)
            keep = []
            for row, (raw_id, raw_family) in enumerate(
                zip(batch["design_id"].numpy(), batch["family"].numpy(), strict=True)
            ):
                design_id = raw_id.decode("utf-8", "replace")
                if design_id in seen:
                    continue
                seen.add(design_id)
                keep.append(row)
                design_ids.append(design_id)
                families.append(raw_family.decode("utf-8", "replace"))
            vectors.append(embedded[keep])
            thumbnails.append(thumbnails_of(views[keep]))
    except tf.errors.OpError as error:  # a shape assertion, or a corrupt record past the first
        raise EmbeddingError(
            _bad_record_message(error.message, path, image_size=image_size, num_views=num_views)
        ) from None
    details = {"shards": str(path), "split": split, "image_size": image_size, "num_views": num_views}
    return EmbeddingSet(
        vectors=np.concatenate(vectors),
        design_ids=tuple(design_ids),
        families=tuple(families),
        thumbnails=np.concatenate(thumbnails),
        source={**details, **(source or {})},
    )


def _for_the_model(message: str) -> str:
    """The input pipeline's shape errors speak of hyperparameters; here the model sets the shape."""
    return message.replace("the hyperparameters say", "the model expects")


def _check_shards(path: Path, *, image_size: int, num_views: int) -> None:
    """Every shard's first record against the model, before any design is embedded.

    The input pipeline checks the first shard's first record eagerly and every other record with an
    in-graph assertion, whose error is TensorFlow's (function names, node names). A shard set put together
    from two transforms (another view count or size) is caught here instead, with the shard and both
    shapes in the message; and a set whose files hold no record at all (empty, truncated, not TFRecord) is
    called that rather than "an empty split".
    """
    import tensorflow as tf

    from training import channels, data

    shard_files = channels.list_shards(path)
    readable = 0
    for shard in shard_files:
        data.check_first_record(shard, image_size=image_size, num_views=num_views)
        # The same record check_first_record read (an unreadable one raised there already).
        readable += any(True for _ in tf.data.TFRecordDataset(str(shard)).take(1))
    if not readable:
        raise channels.DatasetError(
            f"the dataset is empty: the {len(shard_files)} shard(s) under {path} hold no readable record "
            "(empty, truncated, or not TFRecord files)"
        )


# The in-graph shape assertion of training.data.parse_example, as TensorFlow reports it.
_ASSERTION = re.compile(
    r"view bytes =\] \[(?P<design_id>[^\]]*)\] \[(?P<views>\d+) (?P<height>\d+) (?P<width>\d+)\]"
)


def _bad_record_message(message: str, path: Path, *, image_size: int, num_views: int) -> str:
    """One readable line for a record that failed the pipeline's checks inside a shard."""
    expected = f"the model expects num_views={num_views} image_size={image_size}"
    found = _ASSERTION.search(message)
    if found:
        return (
            f"design {found['design_id']!r} in {path} has {found['views']} views of "
            f"{found['height']}x{found['width']} pixels, but {expected} (a shard mixes designs of "
            "different shapes)"
        )
    detail = " ".join(message.split("{{function_node")[0].split())
    return f"bad record in {path} ({expected}): {detail}"


def read_views_folder(
    folder: str | os.PathLike[str], *, image_size: int, num_views: int
) -> npt.NDArray[np.uint8]:
    """A design folder as in a render batch (``view_00.png`` ..., optional ``meta.json``) -> (V, H, W) uint8.

    Views are decoded, converted to grayscale and fitted into the model's image size by the transformer's
    own code (``lambdas.transform_renders.transform.render_view``), so a folder and the shard made from the
    same renders give the same pixels -- and the same signature.
    """
    from lambdas.transform_renders import transform

    path = Path(folder)
    if not path.is_dir():
        raise EmbeddingError(f"{path} is not a folder of views")
    views: dict[int, Path] = {}
    for file in sorted(path.iterdir()):
        match = VIEW_FILE_PATTERN.fullmatch(file.name)
        if match and file.is_file():
            views[int(match.group(1))] = file
    if len(views) != num_views or sorted(views) != list(range(num_views)):
        found = ", ".join(file.name for _, file in sorted(views.items())) or "none"
        raise EmbeddingError(
            f"{path} has {len(views)} views ({found}); the model expects {num_views}: "
            f"view_00 .. view_{num_views - 1:02d}"
        )
    config = transform.TransformConfig(image_size=image_size, num_views=num_views)
    stack = np.full((num_views, image_size, image_size), config.pad_value, np.uint8)
    for number, file in sorted(views.items()):
        try:
            transform.render_view(file.read_bytes(), config=config, canvas=stack[number])
        except transform.DesignRejected as error:
            raise EmbeddingError(f"{file}: {error}") from None
    return stack


def views_to_model_input(stack: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """(V, H, W) uint8 -> (1, H, W, V) float32 in [0, 1], as the input pipeline makes it."""
    return (np.transpose(stack, (1, 2, 0))[np.newaxis].astype(np.float32)) / 255.0


# --- t-SNE and the projector ------------------------------------------------------------------------------


def tsne_points(
    vectors: npt.NDArray[Any], *, perplexity: float | None = None, seed: int = 0
) -> npt.NDArray[Any]:
    """2-D t-SNE coordinates (scikit-learn), with a perplexity that fits small sets when none is given."""
    count = vectors.shape[0]
    if count < 4:
        raise EmbeddingError(f"t-SNE needs at least 4 designs, got {count}")
    if perplexity is None:
        perplexity = float(min(30.0, max(2.0, (count - 1) / 3)))
    if not 0 < perplexity < count:
        raise EmbeddingError(f"perplexity must be in (0, {count}) for {count} designs, got {perplexity}")
    from sklearn.manifold import TSNE

    return TSNE(
        n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed
    ).fit_transform(np.asarray(vectors, np.float64))


def scatter_png(
    points: npt.NDArray[Any], families: Sequence[str], path: str | os.PathLike[str], *, title: str
) -> Path:
    """A scatter of 2-D points coloured by family, with a legend."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    names = sorted(set(families))
    colours = pyplot.get_cmap("tab10" if len(names) <= 10 else "tab20")
    figure, axis = pyplot.subplots(figsize=(7.5, 6))
    labels = np.asarray(families)
    for index, name in enumerate(names):
        mask = labels == name
        axis.scatter(
            points[mask, 0],
            points[mask, 1],
            s=22,
            color=colours(index % colours.N),
            label=name or "(no family)",
            edgecolors="white",
            linewidths=0.4,
        )
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title(title, fontsize=10)
    axis.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, title="family")
    figure.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    pyplot.close(figure)
    return out


def sprite_image(thumbnails: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], int]:
    """Thumbnails in a square grid (row-major, as the projector reads it) and the size of one thumbnail."""
    from PIL import Image

    count = thumbnails.shape[0]
    columns = math.ceil(math.sqrt(count))
    size = min(thumbnails.shape[1], MAX_SPRITE_SIDE // columns)
    if size < 1:
        raise EmbeddingError(f"{count} designs are too many for one projector sprite")
    if size != thumbnails.shape[1]:
        thumbnails = np.stack(
            [
                np.asarray(Image.fromarray(tile).resize((size, size), Image.Resampling.BILINEAR))
                for tile in thumbnails
            ]
        )
    sprite = np.zeros((columns * size, columns * size), np.uint8)
    for index, tile in enumerate(thumbnails):
        row, column = divmod(index, columns)
        sprite[row * size : (row + 1) * size, column * size : (column + 1) * size] = tile
    return sprite, size


def _tsv_field(text: str) -> str:
    # The projector's metadata TSV has no escaping: tabs and line breaks would shift columns.
    return re.sub(r"[\t\r\n]+", " ", text) or "(none)"


def projector_export(embeddings: EmbeddingSet, directory: str | os.PathLike[str]) -> list[Path]:
    """TensorBoard projector files: vectors.tsv, metadata.tsv, sprite.png, projector_config.pbtxt."""
    from PIL import Image
    from tensorboard.plugins import projector

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    vectors_path = out / PROJECTOR_VECTORS
    np.savetxt(vectors_path, embeddings.vectors, delimiter="\t", fmt="%.7g")
    metadata_path = out / PROJECTOR_METADATA
    rows = ["design_id\tfamily"] + [
        f"{_tsv_field(design_id)}\t{_tsv_field(family)}"
        for design_id, family in zip(embeddings.design_ids, embeddings.families, strict=True)
    ]
    metadata_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = PROJECTOR_TENSOR_NAME
    embedding.tensor_path = PROJECTOR_VECTORS
    embedding.metadata_path = PROJECTOR_METADATA
    written = [vectors_path, metadata_path]
    if embeddings.thumbnails is not None:
        sprite, size = sprite_image(embeddings.thumbnails)
        sprite_path = out / PROJECTOR_SPRITE
        Image.fromarray(sprite).save(sprite_path)
        embedding.sprite.image_path = PROJECTOR_SPRITE
        embedding.sprite.single_image_dim.extend([size, size])
        written.append(sprite_path)
    projector.visualize_embeddings(str(out), config)
    written.append(out / "projector_config.pbtxt")
    return written


@dataclasses.dataclass(frozen=True)
class TsneResult:
    png: Path
    projector_files: tuple[Path, ...]
    family_ratio: float | None


def tsne_report(
    embeddings: EmbeddingSet,
    out_dir: str | os.PathLike[str],
    *,
    perplexity: float | None = None,
    seed: int = 0,
    title: str | None = None,
    png_path: str | os.PathLike[str] | None = None,
) -> TsneResult:
    """t-SNE PNG (its title gives the intra/inter-family distance ratio) and the projector export."""
    from training.analysis import clustering

    out = Path(out_dir)
    try:
        ratio: float | None = clustering.family_distance_ratio(embeddings.vectors, embeddings.families)
    except ValueError:
        ratio = None
    points = tsne_points(embeddings.vectors, perplexity=perplexity, seed=seed)
    heading = title or f"t-SNE of {len(embeddings)} design embeddings ({embeddings.vectors.shape[1]}-d)"
    if ratio is not None:
        heading += f"\nintra/inter-family distance ratio {ratio:.3f}"
    png = scatter_png(points, embeddings.families, png_path or out / TSNE_FILE, title=heading)
    files = projector_export(embeddings, out / PROJECTOR_DIR)
    return TsneResult(png=png, projector_files=tuple(files), family_ratio=ratio)
