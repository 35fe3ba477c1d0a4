"""Model quality: is the trained encoder a better signature than raw pixels, on designs it never saw?

Run: ``.venv/bin/python -m bench model_quality`` (rewrites this section of docs/benchmarks.md).

Data: the hard dataset of the render generator (``training.render.variation``: every design in a random
pose, scale and lighting), turned into shards by the transformer core, exactly as in production. Three
render seeds give three disjoint sets:

- *train*: designs of the ten trained families, the only designs any model is trained on;
- *(i) held-out designs of trained families*: new designs (another seed) of the same ten families;
- *(ii) held-out families*: designs of the six families no model ever trains on.

Embeddings compared on (i) and (ii), each by leave-one-out retrieval within its own set (precision@k and
mAP with same-family results relevant, ``training.analysis.search.evaluate_retrieval``):

- raw pixels (the views flattened: what a model has to beat to be worth training);
- each untrained encoder (freshly initialised, same seed): what training has to improve on;
- every configuration below, trained by ``training.job.run`` (the code a SageMaker job runs) from the same
  seed, for the same steps and batch size; the job's wall time (data pipeline, training, saving) is its
  training time.

The view-pooled, unit-embedding model is trained twice: on reconstruction alone, and with the contrastive
term (``contrastive_weight`` ``CONTRASTIVE_WEIGHT``; SSIM stays the reconstruction loss, docs/model.md).

Smaller runs for a quick look (they print the same report, with their own command line in it; nothing is
written to docs/benchmarks.md): ``--train-per-family``, ``--views``, ``--steps``, ``--batch-size`` and the
other flags shrink the data or the training, and ``--contrastive-weights 0,0.1,1`` trains only the
view-pooled, unit-embedding model, once per weight (and with ``--contrastive-temperatures 0.1,0.5``, each
weight above 0 once per NT-Xent temperature)::

    .venv/bin/python -m bench.model_quality --train-per-family 16 --held-out-designs-per-family 8 \
        --held-out-family-designs-per-family 16 --views 6 --steps 300 --batch-size 16 \
        --contrastive-weights 0,1

L2 gets a learning-rate search (an L2 model that collapses to the mean image says nothing about L2): every
rate in ``L2_LEARNING_RATES`` is trained and the run with the best precision@k on set (i) is reported
(selected on (i), so set (ii) stays untouched by the choice); the others are listed as well.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from training import data, hparams, job, model, transform_cli
from training.analysis import clustering, embeddings, search
from training.render import batches, variation

COMMAND = ".venv/bin/python -m bench model_quality"
NUM_VIEWS = 12
# 32x32 rather than the reference 64x64: every training here takes minutes, not an hour, on 2 CPU cores.
IMAGE_SIZE = 32
REFERENCE_IMAGE_SIZE = 64
TRAIN_PER_FAMILY = 40
HELD_OUT_DESIGNS_PER_FAMILY = 8
HELD_OUT_FAMILY_DESIGNS_PER_FAMILY = 20
STEPS = 250
BATCH_SIZE = 32
SSIM_LEARNING_RATE = 1e-3
L2_LEARNING_RATES = (1e-3, 1e-4)
SEED = 17
TRAIN_RENDER_SEED = 101
HELD_OUT_DESIGNS_RENDER_SEED = 202
HELD_OUT_FAMILIES_RENDER_SEED = 303
K = 5
CONTRASTIVE_WEIGHT = 1.0
# The NT-Xent temperature the training container uses unless told otherwise.
DEFAULT_TEMPERATURE = hparams.HyperParameters().contrastive_temperature
TRAINED_SET = "held-out designs of trained families"
UNSEEN_SET = "held-out families"


@dataclasses.dataclass(frozen=True)
class Configuration:
    """One model to train: a preset, a loss, the learning rates tried, and the model options."""

    preset: str
    loss: str
    learning_rates: tuple[float, ...]
    view_pooling: str = "none"
    normalize_embedding: bool = False
    contrastive_weight: float = 0.0
    contrastive_temperature: float = DEFAULT_TEMPERATURE

    @property
    def label(self) -> str:
        options = [] if self.view_pooling == "none" else [f"{self.view_pooling}-pooled views"]
        if self.normalize_embedding:
            options.append("unit embedding")
        if self.contrastive_weight:
            options.append(f"contrastive {self.contrastive_weight:g}")
            if self.contrastive_temperature != DEFAULT_TEMPERATURE:
                options.append(f"temperature {self.contrastive_temperature:g}")
        return f"{self.preset}, {self.loss}" + (f" ({', '.join(options)})" if options else "")

    @property
    def name(self) -> str:
        """A job folder name unique among the configurations."""
        return (
            f"{self.preset}-{self.loss}-{self.view_pooling}-{'unit' if self.normalize_embedding else 'raw'}"
            f"-c{self.contrastive_weight:g}"
            + (
                f"-t{self.contrastive_temperature:g}"
                if self.contrastive_temperature != DEFAULT_TEMPERATURE
                else ""
            )
        )


CONFIGURATIONS = (
    Configuration("baseline", "ssim", (SSIM_LEARNING_RATE,)),
    Configuration("optimized", "ssim", (SSIM_LEARNING_RATE,)),
    Configuration("baseline", "l2", L2_LEARNING_RATES),
    Configuration("optimized", "l2", L2_LEARNING_RATES),
    Configuration("optimized", "ssim", (SSIM_LEARNING_RATE,), view_pooling="mean", normalize_embedding=True),
    # The same model with the contrastive term (training/losses.py): SSIM stays the reconstruction loss.
    Configuration(
        "optimized",
        "ssim",
        (SSIM_LEARNING_RATE,),
        view_pooling="mean",
        normalize_embedding=True,
        contrastive_weight=CONTRASTIVE_WEIGHT,
    ),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    train_per_family: int = TRAIN_PER_FAMILY
    held_out_designs_per_family: int = HELD_OUT_DESIGNS_PER_FAMILY
    held_out_family_designs_per_family: int = HELD_OUT_FAMILY_DESIGNS_PER_FAMILY
    num_views: int = NUM_VIEWS
    image_size: int = IMAGE_SIZE
    steps: int = STEPS
    batch_size: int = BATCH_SIZE
    seed: int = SEED
    configurations: tuple[Configuration, ...] = CONFIGURATIONS
    workers: int = 2
    command: str = COMMAND


@dataclasses.dataclass(frozen=True)
class Scores:
    """Retrieval on both evaluation sets, and the family distance ratio on the held-out families."""

    trained_families: search.RetrievalReport
    unseen_families: search.RetrievalReport
    unseen_ratio: float


@dataclasses.dataclass(frozen=True)
class Run:
    configuration: Configuration
    learning_rate: float
    parameters: int
    encoder_parameters: int
    embedding_size: int
    seconds: float
    scores: Scores
    held_out_ssim: float | None


@dataclasses.dataclass(frozen=True)
class Sets:
    train: Path
    trained_families: Path
    unseen_families: Path


def render_shards(root: Path, *, settings: Settings, split: str, designs_per_family: int, seed: int) -> Path:
    """Render hard designs of one family split and turn each render batch into a shard."""
    families = variation.default_families(variation.HARD, split)
    manifest = batches.generate_dataset(
        root / "batches",
        designs=designs_per_family * len(families),
        designs_per_batch=64,
        views=settings.num_views,
        size=settings.image_size,
        seed=seed,
        workers=settings.workers,
        difficulty=variation.HARD,
        split=split,
    )
    shards = root / "shards"
    transform_cli.write_shards(
        [Path(batch.path) for batch in manifest.batches],
        shards,
        image_size=settings.image_size,
        num_views=settings.num_views,
    )
    return shards


def job_hyperparameters(
    settings: Settings, configuration: Configuration, learning_rate: float
) -> hparams.HyperParameters:
    return hparams.HyperParameters(
        preset=configuration.preset,
        loss=configuration.loss,
        view_pooling=configuration.view_pooling,
        normalize_embedding=configuration.normalize_embedding,
        contrastive_weight=configuration.contrastive_weight,
        contrastive_temperature=configuration.contrastive_temperature,
        image_size=settings.image_size,
        num_views=settings.num_views,
        steps=settings.steps,
        batch_size=settings.batch_size,
        learning_rate=learning_rate,
        seed=settings.seed,
        validation_interval=0,
        log_interval=max(1, settings.steps // 5),
        checkpoint_interval=settings.steps,
    )


def raw_pixels(shards: Path, settings: Settings) -> embeddings.EmbeddingSet:
    """Every design's views flattened into one vector: the signature that needs no model."""
    vectors: list[np.ndarray] = []
    design_ids: list[str] = []
    families: list[str] = []
    dataset = data.load_dataset(
        shards,
        image_size=settings.image_size,
        num_views=settings.num_views,
        batch_size=64,
        with_metadata=True,
    )
    for batch in dataset:
        views = batch["views"].numpy()
        vectors.append(views.reshape(views.shape[0], -1))
        design_ids.extend(value.decode() for value in batch["design_id"].numpy())
        families.extend(value.decode() for value in batch["family"].numpy())
    return embeddings.EmbeddingSet(
        vectors=np.concatenate(vectors).astype(np.float32),
        design_ids=tuple(design_ids),
        families=tuple(families),
    )


def score(trained_families: embeddings.EmbeddingSet, unseen_families: embeddings.EmbeddingSet) -> Scores:
    return Scores(
        trained_families=search.evaluate_retrieval(trained_families, k=K),
        unseen_families=search.evaluate_retrieval(unseen_families, k=K),
        unseen_ratio=clustering.family_distance_ratio(unseen_families.vectors, unseen_families.families),
    )


def score_encoder(encoder: keras.Model, sets: Sets) -> Scores:
    return score(
        embeddings.embed_shards(encoder, sets.trained_families),
        embeddings.embed_shards(encoder, sets.unseen_families),
    )


def measure_untrained(settings: Settings, sets: Sets, configuration: Configuration) -> Scores:
    """Retrieval with a freshly initialised encoder of a configuration: what training has to improve on."""
    keras.utils.set_random_seed(settings.seed)
    _, encoder = model.build_model(job_hyperparameters(settings, configuration, SSIM_LEARNING_RATE))
    return score_encoder(encoder, sets)


def train_and_measure(
    settings: Settings, configuration: Configuration, learning_rate: float, sets: Sets, root: Path
) -> Run:
    parameters = job_hyperparameters(settings, configuration, learning_rate)
    name = f"{configuration.name}-{learning_rate:g}"
    locations = job.JobLocations(
        train_channel=sets.train,
        validation_channel=sets.trained_families,
        model_dir=root / name / "model",
        checkpoint_dir=root / name / "checkpoints",
    )
    started = time.perf_counter()
    # The job prints metric lines (for SageMaker's metric definitions); this script's stdout is the report.
    with contextlib.redirect_stdout(io.StringIO()):
        result = job.run(parameters, locations, log=lambda line: None)
    seconds = time.perf_counter() - started
    encoder = embeddings.load_encoder(locations.model_dir)
    built_autoencoder, built_encoder = model.build_model(parameters)
    return Run(
        configuration=configuration,
        learning_rate=learning_rate,
        parameters=built_autoencoder.count_params(),
        encoder_parameters=built_encoder.count_params(),
        embedding_size=parameters.architecture().embedding_size,
        seconds=seconds,
        scores=score_encoder(encoder, sets),
        held_out_ssim=(result.validation_logs or {}).get("ssim"),
    )


def best_run(runs: Sequence[Run]) -> Run:
    """The learning rate a configuration is reported with: best precision@k on set (i), then mAP."""
    return max(
        runs,
        key=lambda run: (
            run.scores.trained_families.precision_at_k,
            run.scores.trained_families.mean_average_precision,
        ),
    )


def measure(settings: Settings, work: Path) -> dict[str, object]:
    started = time.perf_counter()
    sets = Sets(
        train=render_shards(
            work / "train",
            settings=settings,
            split=variation.TRAIN_SPLIT,
            designs_per_family=settings.train_per_family,
            seed=TRAIN_RENDER_SEED,
        ),
        trained_families=render_shards(
            work / "held-out-designs",
            settings=settings,
            split=variation.TRAIN_SPLIT,
            designs_per_family=settings.held_out_designs_per_family,
            seed=HELD_OUT_DESIGNS_RENDER_SEED,
        ),
        unseen_families=render_shards(
            work / "held-out-families",
            settings=settings,
            split=variation.HELD_OUT_SPLIT,
            designs_per_family=settings.held_out_family_designs_per_family,
            seed=HELD_OUT_FAMILIES_RENDER_SEED,
        ),
    )
    render_seconds = time.perf_counter() - started
    pixels = score(raw_pixels(sets.trained_families, settings), raw_pixels(sets.unseen_families, settings))
    architectures = {
        (item.preset, item.view_pooling, item.normalize_embedding): item for item in settings.configurations
    }
    untrained = {key: measure_untrained(settings, sets, item) for key, item in architectures.items()}
    reference = dataclasses.replace(settings, image_size=REFERENCE_IMAGE_SIZE)
    reference_parameters = {
        preset: model.build_model(
            job_hyperparameters(
                reference, Configuration(preset, "ssim", (SSIM_LEARNING_RATE,)), SSIM_LEARNING_RATE
            )
        )[0].count_params()
        for preset in ("baseline", "optimized")
    }
    runs = {
        configuration: [
            train_and_measure(settings, configuration, learning_rate, sets, work / "jobs")
            for learning_rate in configuration.learning_rates
        ]
        for configuration in settings.configurations
    }
    return {
        "pixels": pixels,
        "untrained": untrained,
        "runs": runs,
        "render_seconds": render_seconds,
        "reference_parameters": reference_parameters,
        "total_seconds": time.perf_counter() - started,
    }


def _verdict(condition: bool) -> str:
    return "met" if condition else "**not met**"


def _row(label: str, scores: Scores, details: str) -> str:
    trained, unseen = scores.trained_families, scores.unseen_families
    return (
        f"| {label} | {details} | {trained.precision_at_k:.3f} | {trained.mean_average_precision:.3f} | "
        f"{unseen.precision_at_k:.3f} | {unseen.mean_average_precision:.3f} | {scores.unseen_ratio:.3f} |"
    )


def _per_family_table(columns: dict[str, search.RetrievalReport]) -> list[str]:
    names = list(columns)
    families = sorted({scores.family for report in columns.values() for scores in report.families})
    lines = [
        "| family | " + " | ".join(f"{name} P@{K} / AP" for name in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for family in families:
        cells = []
        for report in columns.values():
            found = next((scores for scores in report.families if scores.family == family), None)
            cells.append(f"{found.precision_at_k:.3f} / {found.average_precision:.3f}" if found else "-")
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    lines.append(
        "| **all** | "
        + " | ".join(
            f"**{report.precision_at_k:.3f} / {report.mean_average_precision:.3f}**"
            for report in columns.values()
        )
        + " |"
    )
    return lines


def report(settings: Settings, results: dict[str, object]) -> str:
    pixels: Scores = results["pixels"]  # type: ignore[assignment]
    untrained: dict[tuple[str, str, bool], Scores] = results["untrained"]  # type: ignore[assignment]
    runs: dict[Configuration, list[Run]] = results["runs"]  # type: ignore[assignment]
    trained_families = len(variation.TRAINED_FAMILIES)
    unseen_families = len(variation.HELD_OUT_FAMILIES)
    lines = [
        "## Model quality: similarity search on designs never trained on",
        "",
        f"Command: `{settings.command}` -- the hard render dataset (every design in a random pose, scale and "
        "lighting; training/render/variation.py), "
        f"{settings.num_views} views of {settings.image_size}x{settings.image_size}, sharded by the "
        f"transformer core. Training: {settings.train_per_family * trained_families} designs of the "
        f"{trained_families} trained families. Evaluated on (i) {TRAINED_SET}: "
        f"{settings.held_out_designs_per_family * trained_families} new designs of those families; "
        f"(ii) {UNSEEN_SET}: {settings.held_out_family_designs_per_family * unseen_families} designs of "
        f"{unseen_families} families no model trains on ({', '.join(variation.HELD_OUT_FAMILIES)}). "
        f"Every trained model: `training.job.run` for {settings.steps} steps of batch {settings.batch_size}, "
        f"Adam, seed {settings.seed}; SSIM at learning rate {SSIM_LEARNING_RATE:g}, L2 at the best of "
        f"{', '.join(f'{rate:g}' for rate in L2_LEARNING_RATES)} (chosen on set (i)). Retrieval: "
        f"leave-one-out within each set, precision@{K} and mAP with same-family results relevant "
        "(training/analysis/search.py); ratio: intra/inter-family mean distance on set (ii) (lower clusters "
        f"better). TF {tf.__version__} on CPU ({os.cpu_count()} cores, {platform.machine()}); rendering "
        f"took {results['render_seconds']:.0f} s, the whole run {results['total_seconds'] / 60:.0f} min.",
        "",
        f"| embedding | parameters, training time | (i) P@{K} | (i) mAP | (ii) P@{K} | (ii) mAP "
        "| (ii) ratio |",
        "|---|---|---:|---:|---:|---:|---:|",
        _row("raw pixels", pixels, f"{settings.num_views * settings.image_size**2:,}-d, no training"),
    ]
    for (preset, pooling, normalized), scores in untrained.items():
        label = Configuration(preset, "-", (), pooling, normalized).label.replace(", -", "")
        lines.append(_row(f"{label}, untrained", scores, "0 s"))
    reported: dict[Configuration, Run] = {}
    for configuration, tried in runs.items():
        chosen = best_run(tried)
        reported[configuration] = chosen
        lines.append(
            _row(
                f"{configuration.label}, lr {chosen.learning_rate:g}",
                chosen.scores,
                f"{chosen.parameters:,}, {chosen.seconds:.0f} s",
            )
        )
    search_lines = []
    for configuration, tried in runs.items():
        if len(tried) > 1:
            search_lines.append(
                f"- {configuration.label}: "
                + "; ".join(
                    f"lr {run.learning_rate:g}: (i) P@{K} {run.scores.trained_families.precision_at_k:.3f}, "
                    f"(ii) P@{K} {run.scores.unseen_families.precision_at_k:.3f}, held-out SSIM "
                    + (f"{run.held_out_ssim:.3f}" if run.held_out_ssim is not None else "n/a")
                    for run in tried
                )
            )
    if search_lines:
        lines += ["", "Learning-rate search (every run):", "", *search_lines]
    best = max(reported.values(), key=lambda run: run.scores.unseen_families.precision_at_k)
    best_untrained = max(scores.unseen_families.precision_at_k for scores in untrained.values())
    unseen = best.scores.unseen_families.precision_at_k
    lines += [
        "",
        "| target | measured (same run) | verdict |",
        "|---|---|---|",
        f"| raw pixels on (ii) <= 0.7 (pixels do not solve the data) | "
        f"{pixels.unseen_families.precision_at_k:.3f} | "
        f"{_verdict(pixels.unseen_families.precision_at_k <= 0.7)} |",
        f"| best trained encoder on (ii) >= 0.85 | {unseen:.3f} ({best.configuration.label}) | "
        f"{_verdict(unseen >= 0.85)} |",
        f"| ... and >= 0.1 above raw pixels and the untrained encoder on (ii) | {unseen:.3f} vs "
        f"{pixels.unseen_families.precision_at_k:.3f} and {best_untrained:.3f} | "
        f"{_verdict(unseen >= max(pixels.unseen_families.precision_at_k, best_untrained) + 0.1)} |",
        f"| same model on (i) >= 0.95 | {best.scores.trained_families.precision_at_k:.3f} | "
        f"{_verdict(best.scores.trained_families.precision_at_k >= 0.95)} |",
    ]
    for configuration, run in reported.items():
        if configuration.preset != "optimized":
            continue
        twin = next(
            (
                other
                for key, other in reported.items()
                if key.preset == "baseline"
                and (key.loss, key.view_pooling, key.normalize_embedding, key.contrastive_weight)
                == (
                    configuration.loss,
                    configuration.view_pooling,
                    configuration.normalize_embedding,
                    configuration.contrastive_weight,
                )
            ),
            None,
        )
        if twin is None:
            continue
        ratio = run.parameters / twin.parameters
        gap = twin.scores.unseen_families.precision_at_k - run.scores.unseen_families.precision_at_k
        lines.append(
            f"| optimized <= 0.6x baseline parameters, within 0.01 P@{K} on (ii) ({configuration.label}) | "
            f"{ratio:.2f}x, {run.scores.unseen_families.precision_at_k:.3f} vs "
            f"{twin.scores.unseen_families.precision_at_k:.3f} | {_verdict(ratio <= 0.6 and gap <= 0.01)} |"
        )
    reference: dict[str, int] = results["reference_parameters"]  # type: ignore[assignment]
    lines += [
        "",
        f"At the reference input ({REFERENCE_IMAGE_SIZE}x{REFERENCE_IMAGE_SIZE}, {settings.num_views} views) "
        f"the optimized preset has {reference['optimized']:,} parameters vs {reference['baseline']:,}: "
        f"{reference['optimized'] / reference['baseline']:.2f}x.",
        "",
        f"Per family, {UNSEEN_SET} (ii):",
        "",
        *_per_family_table(
            {
                "raw pixels": pixels.unseen_families,
                **{f"{key.label}": run.scores.unseen_families for key, run in reported.items()},
            }
        ),
        "",
        f"Per family, {TRAINED_SET} (i):",
        "",
        *_per_family_table(
            {
                "raw pixels": pixels.trained_families,
                **{f"{key.label}": run.scores.trained_families for key, run in reported.items()},
            }
        ),
    ]
    mean_time = statistics.fmean(run.seconds for tried in runs.values() for run in tried)
    lines += ["", f"Mean training time per run: {mean_time:.0f} s."]
    return "\n".join(lines) + "\n"


def main(settings: Settings | None = None) -> str:
    settings = settings or Settings()
    with tempfile.TemporaryDirectory(prefix="model-quality-") as directory:
        results = measure(settings, Path(directory))
        return report(settings, results)


def contrastive_probe(
    weights: Sequence[float],
    temperatures: Sequence[float] = (DEFAULT_TEMPERATURE,),
) -> tuple[Configuration, ...]:
    """The view-pooled, unit-embedding model with SSIM at each contrastive weight (0: reconstruction only)
    and, with a contrastive term, each of its temperatures."""
    return tuple(
        Configuration(
            "optimized",
            "ssim",
            (SSIM_LEARNING_RATE,),
            view_pooling="mean",
            normalize_embedding=True,
            contrastive_weight=weight,
            contrastive_temperature=temperature,
        )
        for weight in weights
        for temperature in (temperatures if weight else temperatures[:1])
    )


def settings_from_arguments(argv: Sequence[str]) -> Settings:
    """The full benchmark without arguments; smaller data, fewer steps or a contrastive probe with them."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.model_quality", description=__doc__.split("\n")[0])
    defaults = Settings()
    parser.add_argument("--train-per-family", type=int, default=defaults.train_per_family)
    parser.add_argument(
        "--held-out-designs-per-family", type=int, default=defaults.held_out_designs_per_family
    )
    parser.add_argument(
        "--held-out-family-designs-per-family", type=int, default=defaults.held_out_family_designs_per_family
    )
    parser.add_argument("--views", type=int, default=defaults.num_views)
    parser.add_argument("--size", type=int, default=defaults.image_size)
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument(
        "--contrastive-weights",
        default=None,
        metavar="W,W,...",
        help="train only the mean-pooled, unit-embedding SSIM model, once per contrastive weight",
    )
    parser.add_argument(
        "--contrastive-temperatures",
        default=None,
        metavar="T,T,...",
        help="with --contrastive-weights: train each weight > 0 once per NT-Xent temperature",
    )
    arguments = parser.parse_args(list(argv))
    configurations = defaults.configurations
    if arguments.contrastive_temperatures is not None and arguments.contrastive_weights is None:
        parser.error("--contrastive-temperatures goes with --contrastive-weights")
    if arguments.contrastive_weights is not None:
        weights = [float(weight) for weight in arguments.contrastive_weights.split(",") if weight.strip()]
        if not weights or min(weights) < 0:
            parser.error(f"--contrastive-weights must be weights >= 0, got {arguments.contrastive_weights!r}")
        temperatures = [
            float(value) for value in (arguments.contrastive_temperatures or "").split(",") if value.strip()
        ] or [DEFAULT_TEMPERATURE]
        if min(temperatures) <= 0:
            parser.error(
                f"--contrastive-temperatures must be > 0, got {arguments.contrastive_temperatures!r}"
            )
        configurations = contrastive_probe(weights, temperatures)
    return Settings(
        train_per_family=arguments.train_per_family,
        held_out_designs_per_family=arguments.held_out_designs_per_family,
        held_out_family_designs_per_family=arguments.held_out_family_designs_per_family,
        num_views=arguments.views,
        image_size=arguments.size,
        steps=arguments.steps,
        batch_size=arguments.batch_size,
        seed=defaults.seed,
        configurations=configurations,
        workers=arguments.workers,
        command=" ".join([COMMAND.replace("-m bench model_quality", "-m bench.model_quality"), *argv])
        if argv
        else COMMAND,
    )


if __name__ == "__main__":
    import sys

    print(main(settings_from_arguments(sys.argv[1:])))
