"""``autostop analyze | embed | tsne | similar | evaluate``: look inside a run, and search by shape.

Examples::

    autostop analyze s3://bucket/job-1/debug-output -o analysis/job-1  # gradients, update ratios, plots
    autostop embed model/ data/shards -o embeddings/                  # signatures (+ the search index)
    autostop tsne embeddings/ -o pictures/                            # tsne.png + projector/ (TensorBoard)
    autostop similar embeddings/ design-0042 -k 5                     # nearest designs of an indexed one
    autostop similar embeddings/ renders/design-9000/ -k 5            # ... of a folder of views
    autostop evaluate model/ data/held-out -k 5                       # precision@k and mAP by family
    autostop evaluate embeddings/ --groups hard                       # ... and trained vs held-out families

Every command prints one ``autostop <command>: error: ...`` line and exits 2 on bad input (a missing trial,
empty shards, views that do not fit the model); heavy modules are imported only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2
# The split the training jobs make (training/hparams.py HParams.validation_fraction's default): what
# --split train|validation selects unless --validation-fraction says otherwise.
TRAINING_VALIDATION_FRACTION = 0.1
SPLIT_HELP = "which designs: all, or the training job's train or validation split (default: %(default)s)"
FRACTION_HELP = (
    "the validation fraction the model was trained with, for --split train|validation "
    f"(default: {TRAINING_VALIDATION_FRACTION}, training's default)"
)
METRIC_HELP = "distance between signatures (default: %(default)s)"


def register(subparsers: Any) -> None:
    _register_analyze(subparsers)
    _register_embed(subparsers)
    _register_tsne(subparsers)
    _register_similar(subparsers)
    _register_evaluate(subparsers)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _fail(command: str, message: str) -> int:
    print(f"autostop {command}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _quiet_tensorflow() -> None:
    """Import TensorFlow without its CUDA/absl start-up lines (training/quiet_tensorflow.py says why)."""
    from training import quiet_tensorflow

    quiet_tensorflow.import_tensorflow()


def _validation_fraction(arguments: argparse.Namespace) -> float:
    """The fraction that defines --split train|validation: given, or the one training used by default."""
    if arguments.validation_fraction is not None:
        return float(arguments.validation_fraction)
    return 0.0 if arguments.split == "all" else TRAINING_VALIDATION_FRACTION


# --- analyze ------------------------------------------------------------------------------------------------


def _register_analyze(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="per-layer gradient statistics, update ratios and a vanishing-gradient diagnosis of a trial",
        description=(
            "Read a Debugger trial (local folder or s3://bucket/prefix) and write summary.md (the diagnosis "
            "and what to do), per-step CSV tables and PNG plots into the output folder."
        ),
    )
    parser.add_argument(
        "trial", metavar="TRIAL", help="trial folder or s3:// prefix (the Debugger output path)"
    )
    parser.add_argument("-o", "--out", default="analysis", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=1e-7,
        help="mean |gradient| under this is vanishing (default: 1e-7)",
    )
    parser.add_argument(
        "--relative-threshold",
        type=float,
        default=None,
        help="also vanishing: under this fraction of the largest layer's mean |gradient| at the step",
    )
    parser.add_argument(
        "--patience", type=_positive_int, default=1, help="saved steps a layer must stay below (default: 1)"
    )
    parser.add_argument(
        "--min-update-ratio",
        type=float,
        default=1e-6,
        help="median ||dW||/||W|| per step under this is 'barely updated' (default: 1e-6)",
    )
    parser.set_defaults(handler=run_analyze)


def run_analyze(arguments: argparse.Namespace) -> int:
    from training.analysis import gradients

    try:
        thresholds = gradients.Thresholds(
            threshold=arguments.threshold,
            relative_threshold=arguments.relative_threshold,
            patience=arguments.patience,
            min_update_ratio=arguments.min_update_ratio,
        )
        result = gradients.analyze(arguments.trial, arguments.out, thresholds)
    except ValueError as error:  # TrialError, bad thresholds
        return _fail("analyze", str(error))
    report = result.report
    vanishing = report.vanishing_layers
    print(
        f"analysed {len(report.layers)} layers over {len(report.steps)} saved steps: "
        + (
            f"vanishing gradients in {len(vanishing)} layers from step {report.first_vanishing_step} "
            f"({', '.join(vanishing)})"
            if vanishing
            else "no vanishing gradients"
        )
        + (f"; barely updated: {', '.join(report.barely_updated)}" if report.barely_updated else "")
    )
    print(f"summary: {result.summary}")
    return 0


# --- embed --------------------------------------------------------------------------------------------------


def _register_embed(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "embed",
        help="design signatures (bottleneck vectors) of every design in a folder of shards",
        description=(
            "Run a trained encoder over training shards and write vectors.npy, embeddings.json (design ids, "
            "families) and thumbnails.npy. The folder is also the index of `autostop similar`."
        ),
    )
    parser.add_argument(
        "model", metavar="MODEL", help="encoder.keras / autoencoder.keras, model dir or model.tar.gz"
    )
    parser.add_argument("shards", metavar="SHARDS", help="folder of *.tfrecord shards (or one shard)")
    parser.add_argument("-o", "--out", default="embeddings", help="output folder (default: %(default)s)")
    parser.add_argument(
        "--batch-size", type=_positive_int, default=64, help="designs per batch (default: %(default)s)"
    )
    parser.add_argument("--split", choices=("all", "train", "validation"), default="all", help=SPLIT_HELP)
    parser.add_argument("--validation-fraction", type=float, default=None, help=FRACTION_HELP)
    parser.add_argument(
        "--metric",
        choices=("euclidean", "cosine"),
        default="euclidean",
        help="distance the index uses (default: %(default)s)",
    )
    parser.set_defaults(handler=run_embed)


def _embed(
    model: str, shards: str, *, batch_size: int, split: str = "all", validation_fraction: float = 0.0
) -> Any:
    _quiet_tensorflow()
    from training.analysis import embeddings

    encoder = embeddings.load_encoder(model)
    return embeddings.embed_shards(
        encoder,
        shards,
        batch_size=batch_size,
        split=split,
        validation_fraction=validation_fraction,
        source={"model": str(Path(model).resolve())},
    )


def run_embed(arguments: argparse.Namespace) -> int:
    from training.analysis import search

    try:
        embedded = _embed(
            arguments.model,
            arguments.shards,
            batch_size=arguments.batch_size,
            split=arguments.split,
            validation_fraction=_validation_fraction(arguments),
        )
        out = search.SimilarityIndex(embedded, metric=arguments.metric).save(arguments.out)
    except ValueError as error:
        return _fail("embed", str(error))
    families = sorted(set(embedded.families))
    print(
        f"embedded {len(embedded)} designs ({embedded.vectors.shape[1]}-d, {len(families)} families) "
        f"into {out}"
    )
    return 0


# --- tsne ---------------------------------------------------------------------------------------------------


def _register_tsne(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tsne",
        help="t-SNE picture of embeddings coloured by family, and a TensorBoard projector export",
        description=(
            "From an embeddings folder (`autostop embed`): OUT/tsne.png and OUT/projector/ (vectors.tsv, "
            "metadata.tsv, sprite.png, projector_config.pbtxt; view with tensorboard --logdir OUT/projector)."
        ),
    )
    parser.add_argument("embeddings", metavar="EMBEDDINGS", help="embeddings folder")
    parser.add_argument("-o", "--out", default="tsne", help="output folder (default: %(default)s)")
    parser.add_argument("--perplexity", type=float, default=None, help="default: min(30, (designs - 1) / 3)")
    parser.add_argument("--seed", type=int, default=0, help="t-SNE's random seed (default: %(default)s)")
    parser.add_argument(
        "--title", default=None, help="the picture's title (default: t-SNE of N design embeddings)"
    )
    parser.set_defaults(handler=run_tsne)


def run_tsne(arguments: argparse.Namespace) -> int:
    from training.analysis import embeddings

    try:
        embedded = embeddings.EmbeddingSet.load(arguments.embeddings)
        result = embeddings.tsne_report(
            embedded,
            arguments.out,
            perplexity=arguments.perplexity,
            seed=arguments.seed,
            title=arguments.title,
        )
    except ValueError as error:
        return _fail("tsne", str(error))
    ratio = f" (intra/inter-family distance ratio {result.family_ratio:.3f})" if result.family_ratio else ""
    print(f"t-SNE: {result.png}{ratio}")
    projector = result.projector_files[-1].parent
    print(f"projector: {projector} (tensorboard --logdir {projector})")
    return 0


# --- similar ------------------------------------------------------------------------------------------------


def _register_similar(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "similar",
        help="the designs most similar to a design id or to a folder of views",
        description=(
            "Nearest designs by signature. INDEX is an embeddings folder (`autostop embed`), or a model "
            "together with --shards to index on the fly. QUERY is an indexed design id or a folder of views "
            "(view_00.png ...), which is embedded with the model the index was made with (or --model)."
        ),
    )
    parser.add_argument(
        "index", metavar="MODEL_OR_INDEX", help="an embeddings folder, or a model (with --shards)"
    )
    parser.add_argument(
        "query", metavar="DESIGN_ID_OR_FOLDER", help="an indexed design id, or a folder of views"
    )
    parser.add_argument("-k", type=_positive_int, default=5, help="number of results (default: %(default)s)")
    parser.add_argument("--shards", default=None, help="shards to index when MODEL_OR_INDEX is a model")
    parser.add_argument("--model", default=None, help="model for a folder query (default: the index's model)")
    parser.add_argument(
        "--metric", choices=("euclidean", "cosine"), default=None, help="distance (default: the index's)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(handler=run_similar)


def run_similar(arguments: argparse.Namespace) -> int:
    from training.analysis import embeddings, search

    try:
        if search.is_index(arguments.index):
            index = search.load_index(arguments.index, metric=arguments.metric)
            model = arguments.model or index.model
        else:
            if not arguments.shards:
                raise search.SearchError(
                    f"{arguments.index} is not an index folder; to search with a model, give --shards"
                )
            embedded = _embed(arguments.index, arguments.shards, batch_size=64)
            index = search.SimilarityIndex(embedded, metric=arguments.metric or search.DEFAULT_METRIC)
            model = arguments.model or arguments.index
        query = Path(arguments.query)
        if query.is_dir():
            if not model:
                raise search.SearchError("a folder query needs the model: give --model")
            _quiet_tensorflow()
            encoder = embeddings.load_encoder(model)
            image_size, num_views = embeddings.input_shape(encoder)
            stack = embeddings.read_views_folder(query, image_size=image_size, num_views=num_views)
            vector = embeddings.embed_views(encoder, embeddings.views_to_model_input(stack))[0]
            results = index.query(vector, arguments.k)
            subject = f"views in {query}"
        else:
            results = index.neighbours_of(arguments.query, arguments.k)
            subject = f"design {arguments.query}"
    except ValueError as error:
        return _fail("similar", str(error))
    if arguments.json:
        print(json.dumps([result.__dict__ for result in results], indent=1))
        return 0
    print(
        f"{len(results)} designs most similar to {subject} ({index.metric} distance, {len(index)} indexed):"
    )
    print(f"{'rank':>4}  {'distance':>10}  {'family':<16} design")
    for result in results:
        print(f"{result.rank:>4}  {result.distance:>10.4f}  {result.family or '-':<16} {result.design_id}")
    return 0


# --- evaluate -----------------------------------------------------------------------------------------------


def _register_evaluate(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="precision@k and mAP by family on held-out designs",
        description=(
            "Leave-one-out retrieval over held-out designs: each design queries all the others; results of "
            "its family are relevant (definitions: training/analysis/search.py). SOURCE is an embeddings "
            "folder, or a model with SHARDS of held-out designs."
        ),
    )
    parser.add_argument(
        "source", metavar="MODEL_OR_EMBEDDINGS", help="an embeddings folder, or a model (with SHARDS)"
    )
    parser.add_argument(
        "shards", metavar="SHARDS", nargs="?", default=None, help="held-out shards (with a model)"
    )
    parser.add_argument(
        "-k", type=_positive_int, default=5, help="results per query for precision@k (default: %(default)s)"
    )
    parser.add_argument("--split", choices=("all", "train", "validation"), default="all", help=SPLIT_HELP)
    parser.add_argument("--validation-fraction", type=float, default=None, help=FRACTION_HELP)
    parser.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean", help=METRIC_HELP)
    parser.add_argument("--json", dest="json_path", default=None, help="also write the report as JSON here")
    parser.add_argument(
        "--groups",
        action="append",
        default=None,
        metavar="hard|FILE",
        help=(
            "also evaluate each group of families among itself: 'hard' (the hard render dataset's trained "
            "vs held-out families), a render folder's families.json, or a JSON object family -> group; "
            "repeatable (mappings are merged)"
        ),
    )
    parser.set_defaults(handler=run_evaluate)


def run_evaluate(arguments: argparse.Namespace) -> int:
    from training.analysis import embeddings, search

    try:
        if search.is_index(arguments.source):
            embedded = embeddings.EmbeddingSet.load(arguments.source)
        elif arguments.shards:
            embedded = _embed(
                arguments.source,
                arguments.shards,
                batch_size=64,
                split=arguments.split,
                validation_fraction=_validation_fraction(arguments),
            )
        else:
            raise search.SearchError(
                f"{arguments.source} is not an embeddings folder; with a model, give SHARDS"
            )
        report = search.evaluate_retrieval(embedded, k=arguments.k, metric=arguments.metric)
        by_group: dict[str, Any] = {}
        if arguments.groups:
            from training.analysis import groups

            by_group = search.evaluate_by_group(
                embedded, groups.load_groups(arguments.groups), k=arguments.k, metric=arguments.metric
            )
    except ValueError as error:
        return _fail("evaluate", str(error))
    from training.analysis import clustering

    try:
        ratio: float | None = clustering.family_distance_ratio(embedded.vectors, embedded.families)
    except ValueError:  # one family only: retrieval is defined, the ratio is not
        ratio = None
    print(
        f"{report.queries} designs as leave-one-out queries ({report.skipped} skipped), "
        f"{arguments.metric} distance: precision@{report.k} {report.precision_at_k:.3f}, "
        f"mAP {report.mean_average_precision:.3f}; intra/inter-family distance ratio "
        + (f"{ratio:.3f}" if ratio is not None else "n/a")
    )
    print(report.markdown())
    if by_group:
        print("\nBy group (each group's designs retrieved among themselves):")
        print(search.groups_markdown(by_group))
    if arguments.json_path:
        document = {**report.to_json_dict(), "family_distance_ratio": ratio}
        if by_group:
            document["groups"] = {group: scores.to_json_dict() for group, scores in by_group.items()}
        Path(arguments.json_path).write_text(json.dumps(document, indent=1), encoding="utf-8")
    return 0
