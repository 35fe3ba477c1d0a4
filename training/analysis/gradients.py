"""What happened inside a training run: per-layer gradients, weight update ratios, vanishing gradients.

``autostop analyze <trial>`` reads a Debugger trial (a local folder or ``s3://bucket/prefix``, the layout
smdebug writes and ``smdebug.trials.create_trial`` reads) and answers the questions the seed's team asked
by hand: which layers still receive gradient, from which step they stopped, and which layers barely move.

Definitions (all per saved step):

- Tensor statistics of a gradient tensor: min, max, mean and mean |g| over its finite values, and how many
  values were not finite (NaN/inf). A *layer* is the group of tensors whose variable paths share everything
  but the last component (``encoder_conv_1/kernel`` and ``encoder_conv_1/bias`` -> ``encoder_conv_1``); its
  statistics are over all values of its tensors together (mean |g| weighted by tensor size).
- Weight update ratio of a layer between two consecutive saved steps s0 < s1 (from the ``weights`` and
  ``biases`` collections): ``||W(s1) - W(s0)|| / ||W(s0)||`` (Frobenius norms over all the layer's
  tensors), reported as is and per step (divided by s1 - s0, so runs saved at different intervals compare).
- Vanishing gradients: a layer is *below* at a step when its mean |g| is under ``threshold`` (1e-7 by
  default: the documented default of Debugger's VanishingGradient rule) or, when ``relative_threshold`` is
  set, under that fraction of the largest layer's mean |g| at the same step. A layer *vanishes from step s*
  when it is below at s and at every later saved step, for at least ``patience`` saved steps; a layer that
  dips below and recovers is reported as intermittent.
- Barely updated: a layer whose median per-step update ratio is under ``min_update_ratio``.

The reading (``collect``), the arithmetic (``build_report``), the words (``render_markdown``) and the
pictures (``write_plots``) are separate, so each is tested on its own; ``analyze`` runs them in order.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import os
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

DEFAULT_THRESHOLD = 1e-7
DEFAULT_PATIENCE = 1
DEFAULT_MIN_UPDATE_RATIO = 1e-6
GRADIENT_COLLECTION = "gradients"
WEIGHT_COLLECTIONS = ("weights", "biases")
LOSS_COLLECTION = "losses"
# Fixed bins of log10 |gradient| for the distribution plots: the same picture scale for every run. Values
# under the lowest edge (zeros included) fall into the first bin, values over the highest into the last.
HISTOGRAM_EDGES = np.linspace(-20.0, 2.0, 89)
# Forward order of the autoencoder's layers (training/model.py); other names sort naturally after them.
MODEL_LAYER_ORDER = (
    "encoder_conv",
    "bottleneck_dense",
    "embedding",
    "decoder_dense",
    "decoder_projection",
    "decoder_conv",
    "reconstruction",
)
ENCODER_LAYER_PREFIXES = ("encoder_", "bottleneck_", "embedding")
SUMMARY_FILE = "summary.md"
STATISTICS_FILE = "gradient_statistics.csv"
UPDATE_RATIOS_FILE = "update_ratios.csv"
DISTRIBUTIONS_PLOT = "gradient_distributions.png"
MAGNITUDES_PLOT = "layer_magnitudes.png"
UPDATE_RATIOS_PLOT = "update_ratios.png"


class TrialError(ValueError):
    """The trial cannot be analysed (missing, not a Debugger trial, no gradients); the message says why."""


@dataclasses.dataclass(frozen=True)
class TensorStatistics:
    """Statistics over the finite values of a tensor (or a layer's tensors) at one step."""

    minimum: float
    maximum: float
    mean: float
    mean_abs: float
    count: int
    nonfinite: int = 0


def tensor_statistics(values: npt.ArrayLike) -> TensorStatistics:
    """min, max, mean and mean |value| of the finite values; NaN statistics when none is finite."""
    array = np.asarray(values, dtype=np.float64).ravel()
    finite = array[np.isfinite(array)]
    nonfinite = int(array.size - finite.size)
    if finite.size == 0:
        return TensorStatistics(math.nan, math.nan, math.nan, math.nan, 0, nonfinite)
    return TensorStatistics(
        minimum=float(finite.min()),
        maximum=float(finite.max()),
        mean=float(finite.mean()),
        mean_abs=float(np.abs(finite).mean()),
        count=int(finite.size),
        nonfinite=nonfinite,
    )


def combine_statistics(parts: Iterable[TensorStatistics]) -> TensorStatistics:
    """Statistics of the union of several tensors' values (means weighted by the number of values)."""
    parts = list(parts)
    counted = [part for part in parts if part.count]
    nonfinite = sum(part.nonfinite for part in parts)
    if not counted:
        return TensorStatistics(math.nan, math.nan, math.nan, math.nan, 0, nonfinite)
    total = sum(part.count for part in counted)
    return TensorStatistics(
        minimum=min(part.minimum for part in counted),
        maximum=max(part.maximum for part in counted),
        mean=sum(part.mean * part.count for part in counted) / total,
        mean_abs=sum(part.mean_abs * part.count for part in counted) / total,
        count=total,
        nonfinite=nonfinite,
    )


_COLLECTION_PREFIXES = tuple(f"{name}/" for name in (GRADIENT_COLLECTION, *WEIGHT_COLLECTIONS))


def variable_path(tensor_name: str) -> str:
    """The model variable a recorded tensor belongs to: ``gradients/encoder_conv_1/kernel:0`` ->
    ``encoder_conv_1/kernel`` (collection prefix, TF output index and smdebug's ``Grad`` suffix removed)."""
    name = tensor_name
    for prefix in _COLLECTION_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    name = re.sub(r":\d+$", "", name)
    name = re.sub(r"(?<=.)Grad$", "", name)
    return name


def layer_name(tensor_name: str) -> str:
    """The layer of a recorded tensor: its variable path without the last component."""
    path = variable_path(tensor_name)
    return path.rsplit("/", 1)[0] if "/" in path else path


def _natural_key(text: str) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def layer_order_key(layer: str) -> tuple[Any, ...]:
    """Sort key putting layers in forward order: the autoencoder's known names first, then natural order."""
    for rank, prefix in enumerate(MODEL_LAYER_ORDER):
        if layer.startswith(prefix):
            return (0, rank, _natural_key(layer))
    return (1, 0, _natural_key(layer))


def order_layers(layers: Iterable[str]) -> list[str]:
    return sorted(set(layers), key=layer_order_key)


def first_and_last_encoder_layers(layers: Sequence[str]) -> tuple[str, str]:
    """The layer nearest the input and the encoder's last layer (the embedding), for the distribution plot.

    Layers are in forward order. For a model without the autoencoder's names: the first and last layers.
    """
    if not layers:
        raise ValueError("no layers")
    encoder = [layer for layer in layers if layer.startswith(ENCODER_LAYER_PREFIXES)]
    if len(encoder) >= 2:
        return encoder[0], encoder[-1]
    return layers[0], layers[-1]


# --- reading a trial ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class WeightUpdate:
    """Squared norms of one weight tensor's change between two consecutive saved steps."""

    previous_step: int
    step: int
    delta_squared: float
    previous_squared: float


@dataclasses.dataclass
class TrialData:
    """What ``collect`` read from a trial, already reduced to statistics (no tensor is kept whole)."""

    path: str
    gradients: dict[str, dict[int, TensorStatistics]]  # tensor name -> step -> statistics
    weight_updates: dict[str, list[WeightUpdate]]  # weight tensor name -> updates in step order
    histograms: dict[str, dict[int, npt.NDArray[np.int64]]]  # layer -> step -> counts per HISTOGRAM bin
    losses: dict[str, list[tuple[int, float]]]  # "<tensor> (<mode>)" -> (step, value)


def _silence_smdebug() -> None:
    os.environ.setdefault("SMDEBUG_LOG_LEVEL", "error")
    logging.getLogger("smdebug").setLevel(logging.ERROR)


def check_trial_location(path: str) -> None:
    """Fail fast with a clear message where smdebug would wait forever for a trial that is not there."""
    if path.startswith("s3://"):
        bucket, _, prefix = path[len("s3://") :].partition("/")
        if not bucket:
            raise TrialError(f"{path} is not an S3 location: expected s3://bucket/prefix")
        import boto3
        import botocore.exceptions

        collections_prefix = prefix.rstrip("/") + "/collections/" if prefix.strip("/") else "collections/"
        try:
            listing = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=collections_prefix, MaxKeys=5)
        except botocore.exceptions.ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise TrialError(f"cannot read the trial at {path}: {code or error}") from None
        except botocore.exceptions.BotoCoreError as error:
            raise TrialError(f"cannot read the trial at {path}: {error}") from None
        if not any(item["Key"].endswith("collections.json") for item in listing.get("Contents", [])):
            raise TrialError(
                f"no Debugger trial at {path}: no collections/*collections.json under it (is the path the "
                "job's Debugger output path, e.g. s3://bucket/<job>/debug-output?)"
            )
        return
    local = Path(path).expanduser()
    if not local.exists():
        raise TrialError(f"no Debugger trial at {path}: the folder does not exist")
    if not local.is_dir():
        raise TrialError(f"no Debugger trial at {path}: it is a file, expected the trial folder")
    if not any((local / "collections").glob("*/*collections.json")):
        raise TrialError(
            f"no Debugger trial at {path}: it has no collections/*/…collections.json (a trial folder holds "
            "collections/, events/ and index/)"
        )


def open_trial(path: str) -> Any:
    """``smdebug.trials.create_trial`` after checking that there is a trial to read."""
    check_trial_location(path)
    _silence_smdebug()
    from smdebug.trials import create_trial

    return create_trial(path)


def _collection_tensors(trial: Any, collection: str) -> list[str]:
    """Tensor names of a collection (smdebug answers [] for a collection the trial does not have)."""
    return sorted(trial.tensor_names(collection=collection))


def _training_mode(tensor: Any) -> Any:
    """TRAIN, whose mode steps are the optimizer steps (GLOBAL for a trial that recorded no modes)."""
    from smdebug.core.modes import ModeKeys

    return ModeKeys.TRAIN if tensor.steps(mode=ModeKeys.TRAIN) else ModeKeys.GLOBAL


def _histogram(values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    finite = np.abs(values[np.isfinite(values)])
    with np.errstate(divide="ignore"):
        logarithms = np.log10(finite)
    clipped = np.clip(logarithms, HISTOGRAM_EDGES[0], HISTOGRAM_EDGES[-1])
    counts, _ = np.histogram(clipped, bins=HISTOGRAM_EDGES)
    return counts.astype(np.int64)


def collect(
    trial: Any,
    *,
    gradient_collection: str = GRADIENT_COLLECTION,
    weight_collections: Sequence[str] = WEIGHT_COLLECTIONS,
    loss_collection: str = LOSS_COLLECTION,
    distribution_layers: Sequence[str] | None = None,
) -> TrialData:
    """Read every saved step of the gradient, weight and loss tensors, reducing each as it is read.

    ``distribution_layers`` (default: the first and last encoder layers) get log10 |g| histograms.
    """
    from smdebug.core.modes import ModeKeys

    gradient_names = _collection_tensors(trial, gradient_collection)
    if not gradient_names:
        recorded = [name for name, collection in trial.collections().items() if collection.tensor_names]
        available = ", ".join(sorted(recorded)) or "none"
        raise TrialError(
            f"the trial at {trial.path} has no tensors in collection {gradient_collection!r} "
            f"(collections: {available}); record gradients to analyse them"
        )
    layers = order_layers(layer_name(name) for name in gradient_names)
    histogram_layers = (
        set(distribution_layers)
        if distribution_layers is not None
        else set(first_and_last_encoder_layers(layers))
    )
    gradients: dict[str, dict[int, TensorStatistics]] = {}
    histograms: dict[str, dict[int, npt.NDArray[np.int64]]] = {}
    for name in gradient_names:
        tensor = trial.tensor(name)
        series: dict[int, TensorStatistics] = {}
        layer = layer_name(name)
        mode = _training_mode(tensor)
        for step in sorted(tensor.steps(mode=mode)):
            values = np.asarray(tensor.value(step, mode=mode), dtype=np.float64)
            series[step] = tensor_statistics(values)
            if layer in histogram_layers:
                counts = histograms.setdefault(layer, {})
                counts[step] = counts.get(step, np.zeros(len(HISTOGRAM_EDGES) - 1, np.int64)) + _histogram(
                    values
                )
        gradients[name] = series

    weight_updates: dict[str, list[WeightUpdate]] = {}
    weight_names = sorted(
        {name for collection in weight_collections for name in _collection_tensors(trial, collection)}
    )
    for name in weight_names:
        tensor = trial.tensor(name)
        previous: tuple[int, npt.NDArray[np.float64]] | None = None
        updates: list[WeightUpdate] = []
        mode = _training_mode(tensor)
        for step in sorted(tensor.steps(mode=mode)):
            values = np.asarray(tensor.value(step, mode=mode), dtype=np.float64)
            if previous is not None:
                previous_step, previous_values = previous
                if previous_values.shape == values.shape:
                    updates.append(
                        WeightUpdate(
                            previous_step=previous_step,
                            step=step,
                            delta_squared=float(np.sum(np.square(values - previous_values))),
                            previous_squared=float(np.sum(np.square(previous_values))),
                        )
                    )
            previous = (step, values)
        weight_updates[name] = updates

    losses: dict[str, list[tuple[int, float]]] = {}
    for name in _collection_tensors(trial, loss_collection):
        tensor = trial.tensor(name)
        for mode in (ModeKeys.TRAIN, ModeKeys.EVAL):
            steps = sorted(tensor.steps(mode=mode))
            if steps:
                losses[f"{name} ({mode.name.lower()})"] = [
                    (int(step), float(np.mean(tensor.value(step, mode=mode)))) for step in steps
                ]
    return TrialData(
        path=str(trial.path),
        gradients=gradients,
        weight_updates=weight_updates,
        histograms=histograms,
        losses=losses,
    )


# --- the arithmetic ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class UpdateRatio:
    previous_step: int
    step: int
    ratio: float

    @property
    def per_step(self) -> float:
        return self.ratio / (self.step - self.previous_step)


@dataclasses.dataclass(frozen=True)
class LayerDiagnosis:
    """Vanishing-gradient verdict for one layer."""

    layer: str
    status: str  # "ok" | "vanishing" | "intermittent" | "non-finite"
    below_steps: tuple[int, ...]
    vanished_from: int | None  # first step of the run of below steps that lasts to the end of the trial
    nonfinite_from: int | None


@dataclasses.dataclass(frozen=True)
class Thresholds:
    threshold: float = DEFAULT_THRESHOLD
    relative_threshold: float | None = None
    patience: int = DEFAULT_PATIENCE
    min_update_ratio: float = DEFAULT_MIN_UPDATE_RATIO

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold) and self.threshold >= 0):
            raise ValueError(f"threshold must be a number >= 0, got {self.threshold}")
        if self.relative_threshold is not None and not 0 < self.relative_threshold < 1:
            raise ValueError(f"relative_threshold must be in (0, 1), got {self.relative_threshold}")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if not (math.isfinite(self.min_update_ratio) and self.min_update_ratio >= 0):
            raise ValueError(f"min_update_ratio must be a number >= 0, got {self.min_update_ratio}")


@dataclasses.dataclass(frozen=True)
class GradientReport:
    path: str
    thresholds: Thresholds
    layers: tuple[str, ...]  # forward order
    steps: tuple[int, ...]
    layer_statistics: dict[str, dict[int, TensorStatistics]]
    tensor_statistics: dict[str, dict[int, TensorStatistics]]
    update_ratios: dict[str, list[UpdateRatio]]  # layer -> ratios in step order
    diagnoses: dict[str, LayerDiagnosis]
    barely_updated: dict[str, float]  # layer -> median per-step update ratio under min_update_ratio
    histograms: dict[str, dict[int, npt.NDArray[np.int64]]]
    losses: dict[str, list[tuple[int, float]]]

    @property
    def vanishing_layers(self) -> list[str]:
        return [layer for layer in self.layers if self.diagnoses[layer].status == "vanishing"]

    @property
    def first_vanishing_step(self) -> int | None:
        steps = [self.diagnoses[layer].vanished_from for layer in self.vanishing_layers]
        return min(step for step in steps if step is not None) if steps else None


def layer_statistics(
    gradients: Mapping[str, Mapping[int, TensorStatistics]],
) -> dict[str, dict[int, TensorStatistics]]:
    """Per-layer statistics per step from per-tensor statistics."""
    grouped: dict[str, dict[int, list[TensorStatistics]]] = {}
    for name, series in gradients.items():
        layer = grouped.setdefault(layer_name(name), {})
        for step, statistics_at_step in series.items():
            layer.setdefault(step, []).append(statistics_at_step)
    return {
        layer: {step: combine_statistics(parts) for step, parts in sorted(by_step.items())}
        for layer, by_step in grouped.items()
    }


def layer_update_ratios(weight_updates: Mapping[str, Sequence[WeightUpdate]]) -> dict[str, list[UpdateRatio]]:
    """||dW|| / ||W|| per layer between consecutive saved steps (norms over all of the layer's tensors)."""
    grouped: dict[str, dict[tuple[int, int], list[WeightUpdate]]] = {}
    for name, updates in weight_updates.items():
        layer = grouped.setdefault(layer_name(name), {})
        for update in updates:
            layer.setdefault((update.previous_step, update.step), []).append(update)
    ratios: dict[str, list[UpdateRatio]] = {}
    for layer, by_interval in grouped.items():
        ratios[layer] = []
        for (previous_step, step), updates in sorted(by_interval.items()):
            delta = math.sqrt(sum(update.delta_squared for update in updates))
            size = math.sqrt(sum(update.previous_squared for update in updates))
            ratio = delta / size if size > 0 else (0.0 if delta == 0 else math.inf)
            ratios[layer].append(UpdateRatio(previous_step=previous_step, step=step, ratio=ratio))
    return ratios


def diagnose_vanishing(
    magnitudes: Mapping[str, Mapping[int, float]], thresholds: Thresholds
) -> dict[str, LayerDiagnosis]:
    """Vanishing-gradient verdict per layer from its mean |gradient| per step (see the module docstring).

    A NaN magnitude (no finite gradient at that step) is not "small": it is reported as non-finite.
    """
    all_steps = sorted({step for series in magnitudes.values() for step in series})
    largest = {
        step: max(
            (
                series[step]
                for series in magnitudes.values()
                if step in series and math.isfinite(series[step])
            ),
            default=0.0,
        )
        for step in all_steps
    }
    diagnoses: dict[str, LayerDiagnosis] = {}
    for layer, series in magnitudes.items():
        steps = sorted(series)
        below: list[int] = []
        nonfinite = [step for step in steps if not math.isfinite(series[step])]
        for step in steps:
            value = series[step]
            if not math.isfinite(value):
                continue
            limit = thresholds.threshold
            if thresholds.relative_threshold is not None:
                limit = max(limit, thresholds.relative_threshold * largest[step])
            if value < limit:
                below.append(step)
        # The run of below steps that reaches the last saved step.
        run: list[int] = []
        below_set = set(below)
        for step in reversed(steps):
            if step not in below_set:
                break
            run.append(step)
        vanished_from = min(run) if len(run) >= thresholds.patience else None
        if nonfinite:
            status = "non-finite"
        elif vanished_from is not None:
            status = "vanishing"
        elif below:
            status = "intermittent"
        else:
            status = "ok"
        diagnoses[layer] = LayerDiagnosis(
            layer=layer,
            status=status,
            below_steps=tuple(below),
            vanished_from=vanished_from,
            nonfinite_from=min(nonfinite) if nonfinite else None,
        )
    return diagnoses


def build_report(data: TrialData, thresholds: Thresholds | None = None) -> GradientReport:
    """All the numbers of the analysis, from what ``collect`` read."""
    thresholds = thresholds or Thresholds()
    per_layer = layer_statistics(data.gradients)
    layers = tuple(order_layers(per_layer))
    magnitudes = {
        layer: {step: stats.mean_abs for step, stats in per_layer[layer].items()} for layer in layers
    }
    diagnoses = diagnose_vanishing(magnitudes, thresholds)
    ratios = layer_update_ratios(data.weight_updates)
    barely: dict[str, float] = {}
    for layer, series in ratios.items():
        finite = [ratio.per_step for ratio in series if math.isfinite(ratio.per_step)]
        if finite and statistics.median(finite) < thresholds.min_update_ratio:
            barely[layer] = statistics.median(finite)
    steps = tuple(sorted({step for series in per_layer.values() for step in series}))
    return GradientReport(
        path=data.path,
        thresholds=thresholds,
        layers=layers,
        steps=steps,
        layer_statistics=per_layer,
        tensor_statistics={name: dict(sorted(series.items())) for name, series in data.gradients.items()},
        update_ratios={layer: ratios[layer] for layer in order_layers(ratios)},
        diagnoses={layer: diagnoses[layer] for layer in layers},
        barely_updated={layer: barely[layer] for layer in order_layers(barely)},
        histograms=data.histograms,
        losses=data.losses,
    )


# --- words ------------------------------------------------------------------------------------------------


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3g}" if value != 0 else "0"


def _layer_span(layers: Sequence[str]) -> str:
    if len(layers) <= 4:
        return ", ".join(f"`{layer}`" for layer in layers)
    return f"`{layers[0]}`, `{layers[1]}`, … `{layers[-1]}`"


def _median_per_step(ratios: Sequence[UpdateRatio]) -> float | None:
    finite = [ratio.per_step for ratio in ratios if math.isfinite(ratio.per_step)]
    return statistics.median(finite) if finite else None


def _vanishing_advice(report: GradientReport, vanishing: Sequence[str]) -> str:
    """What the pattern of vanishing layers means, and what to do about it."""
    last_step = report.steps[-1]
    at_end = [report.layer_statistics[layer].get(last_step) for layer in vanishing]
    dead = all(
        stats is not None and stats.count > 0 and stats.minimum == stats.maximum == 0 for stats in at_end
    )
    rule = (
        f" VanishingGradient with threshold {_number(report.thresholds.threshold)} stops such a job at its "
        "first saved step below it."
    )
    if dead:
        return (
            "Their gradients are exactly zero: the network is dead, not slow — typically every ReLU unit "
            "switched off or an output sigmoid pinned at 0 or 1 (an output stuck at a constant, such as the "
            "background, often under an L2 loss). What to do: a lower learning rate or warm-up, a loss that "
            "does not reward a constant output (SSIM here), LeakyReLU, a different initialisation seed; "
            "restarting from a checkpoint taken before the step above." + rule
        )
    positions = sorted(report.layers.index(layer) for layer in vanishing)
    if len(vanishing) == len(report.layers):
        where = " Every layer is affected: the whole network has stopped learning."
    elif positions == list(range(len(vanishing))):
        where = (
            " They are the layers nearest the input, where the gradient has passed back through the most "
            "layers."
        )
    else:
        where = ""
    return (
        "These layers no longer learn." + where + " What to do: use non-saturating activations (ReLU family) "
        "instead of sigmoid/tanh in hidden layers, He initialisation, batch normalisation or residual "
        "connections, or fewer layers; check that the learning rate is not 0 and the inputs are scaled to "
        "[0, 1]." + rule
    )


def render_markdown(report: GradientReport, plots: Sequence[str] = ()) -> str:
    """A summary a person can act on: the diagnosis first, what to do about it, then the numbers."""
    thresholds = report.thresholds
    limit = f"mean |gradient| < {_number(thresholds.threshold)}"
    if thresholds.relative_threshold is not None:
        limit += f" or < {_number(thresholds.relative_threshold)} of the largest layer's"
    steps = report.steps
    lines = [
        "# Gradient analysis",
        "",
        f"Trial: `{report.path}` — {len(steps)} saved steps ({steps[0]}…{steps[-1]}), "
        f"{len(report.layers)} layers.",
        f"Vanishing means {limit} at every saved step to the end of the trial (at least "
        f"{thresholds.patience} saved step{'s' if thresholds.patience > 1 else ''}); barely updated means a "
        "median weight update ratio under "
        f"{_number(thresholds.min_update_ratio)} per step.",
        "",
        "## Diagnosis",
        "",
    ]
    findings = 0
    nonfinite = [layer for layer in report.layers if report.diagnoses[layer].status == "non-finite"]
    if nonfinite:
        findings += 1
        first = min(report.diagnoses[layer].nonfinite_from or 0 for layer in nonfinite)
        lines += [
            f"- **Exploding gradients**: NaN or infinite gradients from step {first} in "
            f"{_layer_span(nonfinite)}.",
            "  What to do: lower the learning rate (or add decay), clip gradients, check the inputs for NaN; "
            "ExplodingTensor stops such a job at the first saved step.",
        ]
    vanishing = report.vanishing_layers
    if vanishing:
        findings += 1
        lines += [
            f"- **Vanishing gradients** in {len(vanishing)} of {len(report.layers)} layers, from step "
            f"{report.first_vanishing_step}: {_layer_span(vanishing)}.",
            "  " + _vanishing_advice(report, vanishing),
        ]
    intermittent = [layer for layer in report.layers if report.diagnoses[layer].status == "intermittent"]
    if intermittent:
        lines.append(
            f"- Intermittently small gradients (recovered later): {_layer_span(intermittent)}. Watch them; "
            "no action needed if the loss keeps decreasing."
        )
    if report.barely_updated:
        findings += 1
        layers = list(report.barely_updated)
        lines += [
            f"- **Barely updated layers** ({len(layers)}): {_layer_span(layers)} (median update ratio per "
            f"step {_number(min(report.barely_updated.values()))}"
            + (f" to {_number(max(report.barely_updated.values()))}" if len(layers) > 1 else "")
            + ").",
            "  Their weights hardly change relative to their size, so they cost parameters and time without "
            "learning: remove or narrow them (the published optimization dropped fully connected bottleneck "
            "layers for this reason) or give them a higher learning rate.",
        ]
    if not findings:
        at_last_step = [
            report.layer_statistics[layer][steps[-1]].mean_abs
            for layer in report.layers
            if steps[-1] in report.layer_statistics[layer]
        ]
        lines.append(
            "- No vanishing or exploding gradients and no frozen layers: every layer's mean |gradient| "
            f"stayed above the limit at the end of the trial (smallest at the last step: "
            f"{_number(min(at_last_step))})."
        )
    if report.losses:
        lines += [
            "",
            "## Loss",
            "",
            "| tensor | first step | first value | last step | last value |",
            "|---|---|---|---|---|",
        ]
        for name, series in report.losses.items():
            (first_step, first_value), (last_step, last_value) = series[0], series[-1]
            lines.append(
                f"| {name} | {first_step} | {_number(first_value)} | {last_step} | {_number(last_value)} |"
            )
    lines += [
        "",
        "## Layers (forward order)",
        "",
        f"Mean |gradient| at the first and last saved steps ({steps[0]}, {steps[-1]}), its smallest and "
        "largest value over the run, the median weight update ratio per step, and the verdict.",
        "",
        "| layer | mean \\|g\\| first | mean \\|g\\| last | min mean \\|g\\| | max mean \\|g\\| "
        "| update ratio / step | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for layer in report.layers:
        series = report.layer_statistics[layer]
        values = [stats.mean_abs for stats in series.values() if math.isfinite(stats.mean_abs)]
        first = next(iter(series.values())).mean_abs
        last = list(series.values())[-1].mean_abs
        ratio = _median_per_step(report.update_ratios.get(layer, []))
        diagnosis = report.diagnoses[layer]
        verdict = {
            "ok": "ok",
            "vanishing": f"vanishing from step {diagnosis.vanished_from}",
            "intermittent": f"small at {len(diagnosis.below_steps)} step(s)",
            "non-finite": f"non-finite from step {diagnosis.nonfinite_from}",
        }[diagnosis.status]
        if layer in report.barely_updated:
            verdict += "; barely updated"
        lines.append(
            f"| `{layer}` | {_number(first)} | {_number(last)} | "
            f"{_number(min(values)) if values else 'n/a'} | {_number(max(values)) if values else 'n/a'} | "
            f"{_number(ratio) if ratio is not None else 'n/a'} | {verdict} |"
        )
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{Path(plot).stem.replace('_', ' ')}]({plot})" for plot in plots]
    lines += [
        "",
        f"Per-step numbers: `{STATISTICS_FILE}` (every layer and tensor), `{UPDATE_RATIOS_FILE}`.",
        "",
    ]
    return "\n".join(lines)


def write_tables(report: GradientReport, out_dir: Path) -> list[Path]:
    """The per-step numbers as CSV: one row per (layer or tensor, step)."""
    statistics_path = out_dir / STATISTICS_FILE
    with statistics_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["kind", "name", "layer", "step", "min", "max", "mean", "mean_abs", "count", "nonfinite"]
        )
        for kind, table in (("layer", report.layer_statistics), ("tensor", report.tensor_statistics)):
            names = (
                report.layers
                if kind == "layer"
                else sorted(table, key=lambda n: (layer_order_key(layer_name(n)), n))
            )
            for name in names:
                for step, stats in table[name].items():
                    writer.writerow(
                        [
                            kind,
                            name,
                            layer_name(name) if kind == "tensor" else name,
                            step,
                            repr(stats.minimum),
                            repr(stats.maximum),
                            repr(stats.mean),
                            repr(stats.mean_abs),
                            stats.count,
                            stats.nonfinite,
                        ]
                    )
    ratios_path = out_dir / UPDATE_RATIOS_FILE
    with ratios_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["layer", "previous_step", "step", "ratio", "ratio_per_step"])
        for layer, ratios in report.update_ratios.items():
            for ratio in ratios:
                writer.writerow(
                    [layer, ratio.previous_step, ratio.step, repr(ratio.ratio), repr(ratio.per_step)]
                )
    return [statistics_path, ratios_path]


# --- pictures ---------------------------------------------------------------------------------------------


def write_plots(report: GradientReport, out_dir: Path) -> list[Path]:
    """PNG plots: gradient distributions of the first vs last encoder layer, per-layer magnitudes, updates."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    written: list[Path] = []
    threshold_log = math.log10(report.thresholds.threshold) if report.thresholds.threshold > 0 else None

    if report.histograms:
        shown = [layer for layer in report.layers if layer in report.histograms]
        figure, axes = pyplot.subplots(
            1, len(shown), figsize=(6 * len(shown), 4.2), squeeze=False, sharey=True
        )
        for axis, layer in zip(axes[0], shown, strict=True):
            by_step = report.histograms[layer]
            steps = sorted(by_step)
            counts = np.stack([by_step[step] for step in steps], axis=1).astype(np.float64)
            fractions = counts / np.maximum(counts.sum(axis=0, keepdims=True), 1)
            positions = np.arange(len(steps) + 1) - 0.5
            mesh = axis.pcolormesh(positions, HISTOGRAM_EDGES, fractions, cmap="magma", shading="flat")
            if threshold_log is not None:
                axis.axhline(
                    threshold_log, color="cyan", linestyle="--", linewidth=1, label="vanishing threshold"
                )
                axis.legend(loc="upper right", fontsize=8)
            ticks = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), 8)).round().astype(int))
            axis.set_xticks(ticks, [str(steps[index]) for index in ticks])
            axis.set_xlabel("step")
            axis.set_title(f"{layer}: log10 |gradient| per step")
            figure.colorbar(mesh, ax=axis, label="fraction of values")
        axes[0][0].set_ylabel("log10 |gradient| (zeros at the bottom)")
        figure.tight_layout()
        path = out_dir / DISTRIBUTIONS_PLOT
        figure.savefig(path, dpi=110)
        pyplot.close(figure)
        written.append(path)

    colours = pyplot.get_cmap("viridis")
    figure, axis = pyplot.subplots(figsize=(9, 5))
    for index, layer in enumerate(report.layers):
        series = report.layer_statistics[layer]
        steps = list(series)
        values = [
            max(stats.mean_abs, 1e-30) if math.isfinite(stats.mean_abs) else math.nan
            for stats in series.values()
        ]
        axis.plot(
            steps, values, marker=".", color=colours(index / max(len(report.layers) - 1, 1)), label=layer
        )
    axis.axhline(
        report.thresholds.threshold or 1e-30, color="red", linestyle="--", linewidth=1, label="threshold"
    )
    axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("mean |gradient|")
    axis.set_title("Per-layer gradient magnitude (colour: input → output)")
    axis.legend(
        fontsize=7, ncol=2 if len(report.layers) > 12 else 1, loc="center left", bbox_to_anchor=(1.01, 0.5)
    )
    figure.tight_layout()
    path = out_dir / MAGNITUDES_PLOT
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    written.append(path)

    if any(report.update_ratios.values()):
        figure, axis = pyplot.subplots(figsize=(9, 5))
        ordered = list(report.update_ratios)
        for index, layer in enumerate(ordered):
            ratios = report.update_ratios[layer]
            if ratios:
                axis.plot(
                    [ratio.step for ratio in ratios],
                    [max(ratio.per_step, 1e-30) for ratio in ratios],
                    marker=".",
                    color=colours(index / max(len(ordered) - 1, 1)),
                    label=layer,
                )
        axis.axhline(report.thresholds.min_update_ratio or 1e-30, color="red", linestyle="--", linewidth=1)
        axis.set_yscale("log")
        axis.set_xlabel("step")
        axis.set_ylabel("||ΔW|| / ||W|| per step")
        axis.set_title("Weight update ratio per layer")
        axis.legend(
            fontsize=7, ncol=2 if len(ordered) > 12 else 1, loc="center left", bbox_to_anchor=(1.01, 0.5)
        )
        figure.tight_layout()
        path = out_dir / UPDATE_RATIOS_PLOT
        figure.savefig(path, dpi=110)
        pyplot.close(figure)
        written.append(path)
    return written


@dataclasses.dataclass(frozen=True)
class AnalysisResult:
    report: GradientReport
    summary: Path
    files: tuple[Path, ...]


def analyze(
    trial_path: str, out_dir: str | os.PathLike[str], thresholds: Thresholds | None = None
) -> AnalysisResult:
    """Read the trial, write the summary (``summary.md``), CSV tables and PNG plots into ``out_dir``."""
    trial = open_trial(trial_path)
    report = build_report(collect(trial), thresholds)
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    tables = write_tables(report, directory)
    plots = write_plots(report, directory)
    summary = directory / SUMMARY_FILE
    summary.write_text(render_markdown(report, [plot.name for plot in plots]), encoding="utf-8")
    return AnalysisResult(report=report, summary=summary, files=(summary, *tables, *plots))
