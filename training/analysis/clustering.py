"""Does the latent space group designs by family? The intra/inter-family distance ratio, and its watch.

The autoencoder is only useful for visual search if designs of one family land close together in the
embedding space and designs of different families land apart. One number says how well that holds for a
batch of embeddings with family labels::

    intra = mean Euclidean distance over all pairs of designs of the SAME family
    inter = mean Euclidean distance over all pairs of designs of DIFFERENT families
    ratio = intra / inter

Pairs are unordered and each pair counts once (a pair-weighted mean: with the balanced probe batches the
Debugger writer records, every family weighs the same). Designs without a family label (``""``, allowed
by the shard format) are left out. The ratio is scale-free, so it can be compared across models, steps
and embedding sizes: about 1 when families are mixed at random, well below 1 when they cluster (the
measured values are in docs/analysis.md). Embeddings that all collapse to one point (0/0) get an infinite
ratio: a collapsed latent space is not clustered at any threshold.

``RatioWatch`` turns a series of ratios into the LatentClusterRule's verdict: it fires when, from step
``start_step`` on (the model has had time to learn), the ratio is above ``threshold`` on ``patience``
consecutive evaluated steps.

This file is also the *source* of the SageMaker custom rule (``LatentClusterRule`` at the end; see
docs/analysis.md for ``Rule.custom`` / ``DebugRuleConfigurations``): a custom rule container gets one Python
file and has numpy and smdebug, nothing of this project. So this module imports nothing but numpy, smdebug
and the standard library; the in-container evaluator's rule (training/debugger/rules.py) uses the same
functions, so both places judge a latent space identically.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from smdebug.rules.rule import Rule

FloatArray = npt.NDArray[np.float64]
# Tensor names of the in-container writer (training/debugger/layout.py), repeated here because this file
# must stand alone in a custom rule container.
EMBEDDING_TENSOR = "embeddings/probe"
FAMILY_INDEX_TENSOR = "embeddings/family_index"
DEFAULT_RATIO_THRESHOLD = 0.9
DEFAULT_START_STEP = 0
DEFAULT_PATIENCE = 3
# The SageMaker custom rule: this file is its source; the rule container is AWS's custom rule evaluator
# (<account>.dkr.ecr.<region>.amazonaws.com/sagemaker-debugger-rule-evaluator:latest, account per region
# in AWS's "image URIs for custom rule evaluators" table).
CUSTOM_RULE_SOURCE = __file__
CUSTOM_RULE_CLASS = "LatentClusterRule"
CUSTOM_RULE_INSTANCE_TYPE = "ml.t3.medium"
CUSTOM_RULE_VOLUME_GB = 1


@dataclasses.dataclass(frozen=True)
class FamilySeparation:
    """Mean same-family and cross-family distances of a batch of embeddings, and their ratio."""

    intra: float
    inter: float
    ratio: float
    designs: int
    families: int
    intra_pairs: int
    inter_pairs: int


def pairwise_distances(vectors: npt.ArrayLike) -> FloatArray:
    """Euclidean distance matrix of the rows of ``vectors`` (float64; exact zeros on the diagonal)."""
    rows = np.asarray(vectors, dtype=np.float64)
    if rows.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors (designs x dimensions), got shape {rows.shape}")
    # Differences rather than the |a|^2 + |b|^2 - 2ab expansion: exact for identical rows, and the probe
    # batches this runs on are small (tens of designs).
    differences = rows[:, np.newaxis, :] - rows[np.newaxis, :, :]
    return np.sqrt(np.einsum("ijk,ijk->ij", differences, differences))


def family_separation(embeddings: npt.ArrayLike, families: Sequence[str]) -> FamilySeparation:
    """Intra-family and inter-family mean distances and their ratio (see the module docstring).

    Raises ValueError when the ratio is not defined for this batch: shapes that do not match, non-finite
    values, fewer than two labelled families, or no family with two designs.
    """
    vectors = np.asarray(embeddings, dtype=np.float64)
    if vectors.ndim == 1:
        raise ValueError(f"expected one embedding per design (2-D), got a 1-D array of {vectors.shape[0]}")
    if vectors.ndim > 2:
        vectors = vectors.reshape(vectors.shape[0], -1)
    labels = [str(family) for family in families]
    if vectors.shape[0] != len(labels):
        raise ValueError(f"{vectors.shape[0]} embeddings but {len(labels)} family labels")
    if not np.all(np.isfinite(vectors)):
        raise ValueError("the embeddings contain NaN or infinite values")
    labelled = [index for index, family in enumerate(labels) if family]
    vectors = vectors[labelled]
    labels = [labels[index] for index in labelled]
    distinct = sorted(set(labels))
    if len(distinct) < 2:
        raise ValueError(
            f"need designs of at least two families, got {len(distinct)} ({', '.join(distinct)})"
        )
    codes = np.array([distinct.index(family) for family in labels])
    distances = pairwise_distances(vectors)
    upper = np.triu(np.ones_like(distances, dtype=bool), k=1)
    same = (codes[:, np.newaxis] == codes[np.newaxis, :]) & upper
    different = (codes[:, np.newaxis] != codes[np.newaxis, :]) & upper
    intra_pairs, inter_pairs = int(same.sum()), int(different.sum())
    if intra_pairs == 0:
        raise ValueError(
            "need at least one family with two or more designs to measure intra-family distances"
        )
    intra = float(distances[same].mean())
    inter = float(distances[different].mean())
    # inter == 0 only when every design sits on one point: a collapsed latent space, worse than random.
    ratio = intra / inter if inter > 0 else math.inf
    return FamilySeparation(
        intra=intra,
        inter=inter,
        ratio=ratio,
        designs=len(labels),
        families=len(distinct),
        intra_pairs=intra_pairs,
        inter_pairs=inter_pairs,
    )


def family_distance_ratio(embeddings: npt.ArrayLike, families: Sequence[str]) -> float:
    """Just the ratio: intra-family mean distance / inter-family mean distance."""
    return family_separation(embeddings, families).ratio


@dataclasses.dataclass
class RatioWatch:
    """The LatentClusterRule's decision over time as plain state: feed it (step, ratio), it says when to fire.

    threshold: a ratio above it counts as "not clustered".
    start_step: steps before it are ignored (a fresh model is not clustered yet; give it N steps).
    patience: how many consecutive evaluated steps (from start_step on) must be above the threshold;
        a step at or below the threshold resets the count.
    """

    threshold: float
    start_step: int = 0
    patience: int = 1
    consecutive: int = 0
    last_step: int | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold) or self.threshold <= 0:
            raise ValueError(f"threshold must be a positive number, got {self.threshold}")
        if self.start_step < 0:
            raise ValueError(f"start_step must be >= 0, got {self.start_step}")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")

    def observe(self, step: int, ratio: float) -> bool:
        """Record the ratio of a step; True when the rule's condition holds at this step."""
        if self.last_step is not None and step <= self.last_step:
            # Rules may be invoked again for a step already seen (a re-read trial): count it once.
            return self.consecutive >= self.patience
        self.last_step = step
        if step < self.start_step:
            return False
        if ratio > self.threshold:
            self.consecutive += 1
        else:
            self.consecutive = 0
        return self.consecutive >= self.patience


def _parameter(value: object, parse: type[int] | type[float], name: str) -> Any:
    """SageMaker passes every rule parameter as a string."""
    try:
        return parse(str(value).strip())
    except ValueError:
        raise ValueError(
            f"LatentClusterRule: parameter {name} must be a {parse.__name__}, got {value!r}"
        ) from None


class LatentClusterRule(Rule):
    """SageMaker custom rule: the bottleneck does not group designs by family.

    At every saved step of the ``embeddings`` collection (the probe batch's bottleneck vectors and their
    family indices, as the in-container writer records them) the intra/inter-family distance ratio is
    computed; the rule fires when it stays above ``ratio_threshold`` for ``patience`` saved steps in a row
    from training step ``start_step`` on (``RatioWatch``). Steps without embeddings, with non-finite values
    (ExplodingTensor's job) or with fewer than two families are skipped, never fired on.
    """

    def __init__(
        self,
        base_trial: Any,
        ratio_threshold: float | str = DEFAULT_RATIO_THRESHOLD,
        start_step: int | str = DEFAULT_START_STEP,
        patience: int | str = DEFAULT_PATIENCE,
        action_json_str: str = "",
        **framework_parameters: object,
    ) -> None:
        # framework_parameters: what a rule container may pass besides the rule's own (end_step, ...).
        super().__init__(base_trial, action_str=action_json_str)
        self.watch = RatioWatch(
            threshold=_parameter(ratio_threshold, float, "ratio_threshold"),
            start_step=_parameter(start_step, int, "start_step"),
            patience=_parameter(patience, int, "patience"),
        )
        self.ratios: dict[int, float] = {}
        self.last_finding = ""

    def invoke_at_step(self, step: int) -> bool:
        present = set(self.base_trial.tensor_names(step=step))
        if EMBEDDING_TENSOR not in present or FAMILY_INDEX_TENSOR not in present:
            return False
        mode, mode_step = self.base_trial.mode_modestep(step)
        training_step = int(mode_step) if mode is not None else step
        embeddings = self.base_trial.tensor(EMBEDDING_TENSOR).value(step)
        families = [
            str(int(index))
            for index in np.asarray(self.base_trial.tensor(FAMILY_INDEX_TENSOR).value(step)).ravel()
        ]
        try:
            separation = family_separation(embeddings, families)
        except ValueError as error:
            self.logger.info(f"LatentClusterRule: step {training_step} not judged: {error}")
            return False
        self.ratios[training_step] = separation.ratio
        if not self.watch.observe(training_step, separation.ratio):
            return False
        self.last_finding = (
            f"intra/inter-family distance ratio {separation.ratio:.3g} (intra {separation.intra:.3g}, inter "
            f"{separation.inter:.3g}) > {self.watch.threshold:g} at step {training_step}, "
            f"{self.watch.consecutive} saved step(s) in a row"
        )
        self.logger.info(f"LatentClusterRule: {self.last_finding}")
        return True


def custom_rule_arguments(
    *,
    name: str,
    image_uri: str,
    source: str = CUSTOM_RULE_SOURCE,
    rule_parameters: dict[str, str] | None = None,
    instance_type: str = CUSTOM_RULE_INSTANCE_TYPE,
    volume_size_in_gb: int = CUSTOM_RULE_VOLUME_GB,
) -> dict[str, Any]:
    """Keyword arguments of the SageMaker Python SDK's ``Rule.custom`` (add ``collections_to_save``).

    ``source`` is this file (the SDK uploads a local path to the session's default bucket when the job is
    created) or an ``s3://`` copy of it; ``rule_parameters`` are the sweep spec's strings (a
    ``rule_to_invoke`` among them is dropped: it is this class). Unknown parameters are rejected here, before
    a job is created, because the rule container would only fail once the job runs.
    """
    parameters = {key: value for key, value in (rule_parameters or {}).items() if key != "rule_to_invoke"}
    known = {"ratio_threshold", "start_step", "patience"}
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ValueError(
            f"LatentClusterRule: unknown parameter(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(known))})"
        )
    RatioWatch(
        threshold=_parameter(
            parameters.get("ratio_threshold", DEFAULT_RATIO_THRESHOLD), float, "ratio_threshold"
        ),
        start_step=_parameter(parameters.get("start_step", DEFAULT_START_STEP), int, "start_step"),
        patience=_parameter(parameters.get("patience", DEFAULT_PATIENCE), int, "patience"),
    )
    return {
        "name": name,
        "image_uri": image_uri,
        "instance_type": instance_type,
        "volume_size_in_gb": volume_size_in_gb,
        "source": source,
        "rule_to_invoke": CUSTOM_RULE_CLASS,
        "rule_parameters": {key: str(value) for key, value in parameters.items()},
    }
