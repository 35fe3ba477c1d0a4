"""Debugger rules on ``smdebug.rules.Rule``: AWS's documented built-ins re-implemented, and a latent rule.

Why re-implemented: Debugger's built-in rule implementations were never open source and are in no smdebug
release. These accept AWS's documented rule and parameter names, so a
sweep spec written for managed Debugger configures them unchanged. Their semantics are built to never stop a
healthy job at their defaults, on any model: they judge smoothed values (window medians, validation means),
need the condition at several consecutive judgments (``patience``), and scale to the job's own behaviour
where no absolute number fits every model (a gradient is small relative to its own peak). Where that makes
them differ from managed Debugger, docs/debugger.md says so rule by rule, with the measurement behind it;
``bench/false_stops.py`` measures false and missed stops at the defaults.

Each rule is a plain smdebug rule: ``invoke_at_step(step)`` gets a *global* step and returns True when its
condition holds there, so it runs under smdebug's ``invoke_rule`` (which then raises
``RuleEvaluationConditionMet``) and under the in-container evaluator alike. Rules read *mode steps* (training
steps, see ``writer``) and keep what they need between invocations (the reference loss, a patience counter).
``from_rule_parameters`` builds a rule from SageMaker ``RuleParameters`` (every value a string, e.g.
``{"num_steps": "10"}``), rejecting unknown names and bad values with a ``RuleConfigurationError`` that
names them. ``last_finding`` explains the latest firing in words (the evaluator logs it).

Rules never fire on what they cannot judge: a NaN loss does not make LossNotDecreasing fire (ExplodingTensor
reports it), a probe with fewer than two families does not make LatentClusterRule fire.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
from smdebug.core.modes import ModeKeys
from smdebug.rules.rule import Rule

from training.analysis import clustering
from training.debugger import config as config_module
from training.debugger import layout

MODE_NAMES = {"TRAIN": ModeKeys.TRAIN, "EVAL": ModeKeys.EVAL, "GLOBAL": ModeKeys.GLOBAL}
# Parameters SageMaker's rule configurations carry that are not the rule's own: accepted and not used here
# (the evaluator handles start/end of evaluation itself; autostop's stop path replaces smdebug's actions).
FRAMEWORK_PARAMETERS = frozenset({"rule_to_invoke", "action_json_str", "start_step", "end_step"})


# A rule's parameters are unusable: the message names the rule, the parameter and the problem.
RuleConfigurationError = config_module.RuleConfigurationError


# --- parameter parsing (SageMaker passes every RuleParameters value as a string) ---


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ValueError(f"expected True or False, got {text[:40]!r}")


def parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"expected an integer, got {text[:40]!r}") from None


def parse_float(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {text[:40]!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {text[:40]!r}")
    return value


def parse_optional_float(text: str) -> float | None:
    return None if text.strip().lower() in ("", "none") else parse_float(text)


def parse_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_mode(text: str) -> ModeKeys | None:
    value = text.strip().upper()
    if value in ("", "NONE"):
        return None
    if value not in MODE_NAMES:
        raise ValueError(f"expected one of {', '.join(MODE_NAMES)}, got {text[:40]!r}")
    return MODE_NAMES[value]


def _check_regexes(patterns: Iterable[str], rule: str) -> list[str]:
    checked = []
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as error:
            raise RuleConfigurationError(f"{rule}: tensor_regex {pattern!r} is invalid: {error}") from None
        checked.append(pattern)
    return checked


def _finite_mean(value: Any) -> float:
    array = np.asarray(value, np.float64)
    return float(np.mean(array)) if array.size else math.nan


class AutostopRule(Rule):
    """Shared plumbing: parameter parsing, collection membership, explanations."""

    PARAMETERS: ClassVar[Mapping[str, Callable[[str], Any]]] = {}
    REQUIRED_COLLECTIONS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, base_trial: Any, action_str: str = "") -> None:
        super().__init__(base_trial, action_str=action_str)
        self.last_finding = ""

    @classmethod
    def from_rule_parameters(cls, base_trial: Any, parameters: Mapping[str, str]) -> AutostopRule:
        """Build the rule from SageMaker ``RuleParameters`` (string values)."""
        arguments: dict[str, Any] = {}
        for name, raw in parameters.items():
            if name in FRAMEWORK_PARAMETERS:
                continue
            if name not in cls.PARAMETERS:
                known = ", ".join(sorted(cls.PARAMETERS)) or "none"
                raise RuleConfigurationError(f"{cls.__name__}: unknown parameter {name!r} (known: {known})")
            if not isinstance(raw, str):
                raise RuleConfigurationError(f"{cls.__name__}: parameter {name!r} must be a string")
            try:
                arguments[name] = cls.PARAMETERS[name](raw)
            except ValueError as error:
                raise RuleConfigurationError(f"{cls.__name__}: parameter {name!r}: {error}") from None
        try:
            return cls(base_trial, **arguments)
        except ValueError as error:
            raise RuleConfigurationError(f"{cls.__name__}: {error}") from None

    # --- trial helpers ---

    def _tensors_at(self, step: int) -> set[str]:
        return set(self.base_trial.tensor_names(step=step))

    def _collection_members(self, name: str, present: set[str]) -> set[str]:
        """Tensors of ``present`` in collection ``name`` (listed names, or its include_regex)."""
        try:
            collection = self.base_trial.collection(name)
        except KeyError:
            return set()
        listed = set(collection.tensor_names or ())
        patterns = collection.include_regex if isinstance(collection.include_regex, list) else []
        return {
            tensor for tensor in present if tensor in listed or any(re.search(p, tensor) for p in patterns)
        }

    def _selected(
        self, step: int, collection_names: Iterable[str], tensor_regex: Iterable[str], *, default_all: bool
    ) -> list[str]:
        present = self._tensors_at(step)
        chosen: set[str] = set()
        any_selector = False
        for name in collection_names:
            any_selector = True
            chosen |= self._collection_members(name, present)
        for pattern in tensor_regex:
            any_selector = True
            chosen |= {tensor for tensor in present if re.search(pattern, tensor)}
        if not any_selector and default_all:
            chosen = present
        return sorted(chosen)

    def _mode_step(self, step: int) -> tuple[ModeKeys, int]:
        mode, mode_step = self.base_trial.mode_modestep(step)
        if mode is None:
            return ModeKeys.GLOBAL, step
        return mode, int(mode_step)

    def _fire(self, message: str) -> bool:
        self.last_finding = message
        self.logger.info(f"{self.rule_name}: {message}")
        return True


# A decrease smaller than this share of the loss is float32 round-off of a mean, not learning.
ROUND_OFF = 1e-6
# The slowest decrease that still counts as learning, as a share of the loss per training step (3e-7: 1% in
# about 33,000 steps). A job with a learning rate of 1e-7 lowers its validation loss, measurably but
# uselessly, by about 1.8e-7 of itself per step; the slowest healthy job of the false-stop benchmark's grid
# falls by more than twice that from its first validations on (docs/debugger.md, docs/benchmarks.md).
MIN_DECREASE_PER_STEP = 3e-7


@dataclasses.dataclass
class _LossSeries:
    """What LossNotDecreasing keeps per judged tensor and mode (it is invoked at every step, in order)."""

    pending: list[float] = dataclasses.field(default_factory=list)  # training losses of the open window
    points: list[tuple[int, float]] = dataclasses.field(default_factory=list)  # (step, smoothed loss)
    last_judged: int | None = None
    not_decreasing: int = 0  # consecutive judgments that found no decrease
    has_decreased: bool = False  # a judgment found a decrease (the job has started to learn)
    risen: int = 0  # consecutive points above the lowest by more than increase_threshold_percent


class LossNotDecreasing(AutostopRule):
    """The smoothed loss did not decrease over ``patience`` consecutive comparisons ``num_steps`` apart.

    Points: every validation loss (already a mean over the whole validation set) or, for training losses,
    the median of ``window`` [5] consecutive saved batch losses (non-overlapping windows): single batches
    differ by more than a slowly learning job improves. A point is compared with the latest point at least
    ``num_steps`` [10] steps earlier, at most once every ``num_steps``; it is *not decreasing* when it is not
    below that reference by more than ``diff_percent`` [0] percent, by more than float32 round-off
    (``ROUND_OFF``) and by more than ``min_decrease_per_step`` [``MIN_DECREASE_PER_STEP``] of the reference
    for every step between them (a loss falling at 1% per 33,000 steps is not learning) -- except that,
    until the validation loss has decreased once, only a validation loss that does not move at all counts (a
    healthy job's initial plateau drifts; a stuck job's loss stays put). The rule fires after ``patience``
    [3] consecutive not-decreasing comparisons, or, with ``increase_threshold_percent`` [off], after
    ``patience`` consecutive points that far above the lowest.

    ``mode`` [unset]: validation losses only -- a job's training losses never stand in for validation (on a
    healthy job's early plateau they are as flat as a stuck job's; ``docs/debugger.md``). ``TRAIN`` judges
    training-loss windows, ``GLOBAL`` every saved value in windows. ``collection_names``, ``tensor_regex``
    and ``use_losses_collection`` [True] choose the scalar tensors.
    """

    PARAMETERS: ClassVar[Mapping[str, Callable[[str], Any]]] = {
        "collection_names": parse_list,
        "tensor_regex": parse_list,
        "use_losses_collection": parse_bool,
        "num_steps": parse_int,
        "diff_percent": parse_float,
        "increase_threshold_percent": parse_optional_float,
        "mode": parse_mode,
        "window": parse_int,
        "patience": parse_int,
        "min_decrease_per_step": parse_float,
    }
    REQUIRED_COLLECTIONS = (config_module.LOSSES,)

    def __init__(
        self,
        base_trial: Any,
        collection_names: Iterable[str] = (),
        tensor_regex: Iterable[str] = (),
        use_losses_collection: bool = True,
        num_steps: int = 10,
        diff_percent: float = 0.0,
        increase_threshold_percent: float | None = None,
        mode: ModeKeys | None = None,
        window: int = 5,
        patience: int = 3,
        min_decrease_per_step: float = MIN_DECREASE_PER_STEP,
        action_str: str = "",
    ) -> None:
        super().__init__(base_trial, action_str=action_str)
        if num_steps <= 0:
            raise ValueError(f"num_steps must be > 0, got {num_steps}")
        if not 0 <= diff_percent < 100:
            raise ValueError(f"diff_percent must be in [0, 100), got {diff_percent}")
        if increase_threshold_percent is not None and increase_threshold_percent <= 0:
            raise ValueError(f"increase_threshold_percent must be > 0, got {increase_threshold_percent}")
        if window <= 0:
            raise ValueError(f"window must be > 0, got {window}")
        if patience <= 0:
            raise ValueError(f"patience must be > 0, got {patience}")
        if not 0 <= min_decrease_per_step < 0.01:
            raise ValueError(f"min_decrease_per_step must be in [0, 0.01), got {min_decrease_per_step}")
        self.collection_names = list(collection_names)
        self.tensor_regex = _check_regexes(tensor_regex, "LossNotDecreasing")
        self.use_losses_collection = use_losses_collection
        self.num_steps = num_steps
        self.diff_percent = diff_percent
        self.increase_threshold_percent = increase_threshold_percent
        self.mode = mode
        self.window = window
        self.patience = patience
        self.min_decrease_per_step = min_decrease_per_step
        self._series: dict[tuple[str, ModeKeys], _LossSeries] = {}

    @property
    def judged_mode(self) -> ModeKeys:
        return ModeKeys.EVAL if self.mode is None else self.mode

    def invoke_at_step(self, step: int) -> bool:
        mode = self.judged_mode
        step_mode, mode_step = self._mode_step(step)
        if mode is ModeKeys.GLOBAL:
            mode_step = step
        elif step_mode != mode:
            return False
        collections = [
            *self.collection_names,
            *([config_module.LOSSES] if self.use_losses_collection else []),
        ]
        for name in self._selected(step, collections, self.tensor_regex, default_all=False):
            tensor = self.base_trial.tensor(name)
            value = _finite_mean(
                tensor.value(step) if mode is ModeKeys.GLOBAL else tensor.value(mode_step, mode=mode)
            )
            if not math.isfinite(value):
                continue  # ExplodingTensor's finding, not this rule's
            series = self._series.setdefault((name, mode), _LossSeries())
            point = self._add(series, value, mode)
            if point is not None and self._judge(series, mode_step, point, f"{name} ({mode.name})"):
                return True
        return False

    def _add(self, series: _LossSeries, value: float, mode: ModeKeys) -> float | None:
        """The smoothed point this value completes, or None while a training window is still open."""
        if mode is ModeKeys.EVAL:
            return value
        series.pending.append(value)
        if len(series.pending) < self.window:
            return None
        point = float(np.median(series.pending))
        series.pending.clear()
        return point

    def _judge(self, series: _LossSeries, step: int, point: float, what: str) -> bool:
        earlier = [(at, value) for at, value in series.points if at <= step - self.num_steps]
        lowest = min((value for _, value in series.points), default=point)
        series.points.append((step, point))
        smoothed = (
            "validation loss"
            if self.judged_mode is ModeKeys.EVAL
            else ("loss" if self.window == 1 else f"median of {self.window} losses")
        )
        threshold = self.increase_threshold_percent
        if threshold is not None:
            series.risen = series.risen + 1 if point > lowest + abs(lowest) * threshold / 100 else 0
            if series.risen >= self.patience:
                return self._fire(
                    f"{what}: {smoothed} {point:.6g} at step {step} is more than {threshold:g}% above the "
                    f"lowest {lowest:.6g}, {series.risen} point(s) in a row"
                )
        if not earlier or (series.last_judged is not None and step < series.last_judged + self.num_steps):
            return False
        # Validation: the latest earlier point. Training windows: the lowest earlier one -- a stuck job's
        # window medians scatter around one level, so against the latest they "decrease" half the time.
        reference_step, reference = (
            earlier[-1] if self.judged_mode is ModeKeys.EVAL else min(earlier, key=lambda item: item[1])
        )
        series.last_judged = step
        share = max(self.diff_percent / 100, ROUND_OFF, self.min_decrease_per_step * (step - reference_step))
        required = reference - abs(reference) * share
        decreasing = point <= required
        round_off = abs(reference) * ROUND_OFF
        series.has_decreased = series.has_decreased or point < reference - round_off
        # Until a job's validation loss has fallen once, only a loss that does not move at all counts: early
        # on, a healthy job can sit on a plateau where its validation loss drifts up by 1e-5 of itself for
        # over a hundred steps before it falls; a stuck job's does not move.
        moving = abs(point - reference) > round_off
        warming_up = self.judged_mode is ModeKeys.EVAL and not series.has_decreased and moving
        series.not_decreasing = 0 if decreasing or warming_up else series.not_decreasing + 1
        if series.not_decreasing >= self.patience:
            return self._fire(
                f"{what}: {smoothed} {point:.7g} at step {step} is not {share * 100:.2g}% below "
                f"{reference:.7g} at step {reference_step}, {series.not_decreasing} comparison(s) in a row"
            )
        return False


@dataclasses.dataclass
class _GradientHistory:
    peak: float = 0.0  # the largest mean |gradient| seen so far
    vanished: int = 0  # consecutive saved steps found vanished


class VanishingGradient(AutostopRule):
    """A gradient vanished: a ``gradients`` tensor was vanished at ``patience`` [3] saved steps in a row.

    Vanished means: every value exactly zero (at least ``zero_fraction`` [1.0] of them: no gradient reaches
    the layer, its units are dead), or a mean |gradient| below ``threshold`` [1e-7, AWS's default] that is
    also below ``peak_fraction`` [1e-6] times the largest mean |gradient| the tensor had so far. Why the
    second condition: a freshly initialized layer's gradients can be far below 1e-7 (1e-11 measured) and
    grow as the job learns; a gradient vanishes when it falls far below its own scale, not below a number
    that fits one model.
    """

    PARAMETERS: ClassVar[Mapping[str, Callable[[str], Any]]] = {
        "threshold": parse_float,
        "peak_fraction": parse_float,
        "zero_fraction": parse_float,
        "patience": parse_int,
    }
    REQUIRED_COLLECTIONS = (config_module.GRADIENTS,)

    def __init__(
        self,
        base_trial: Any,
        threshold: float = 1e-7,
        peak_fraction: float = 1e-6,
        zero_fraction: float = 1.0,
        patience: int = 3,
        action_str: str = "",
    ) -> None:
        super().__init__(base_trial, action_str=action_str)
        if threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if not 0 < peak_fraction < 1:
            raise ValueError(f"peak_fraction must be in (0, 1), got {peak_fraction}")
        if not 0 < zero_fraction <= 1:
            raise ValueError(f"zero_fraction must be in (0, 1], got {zero_fraction}")
        if patience <= 0:
            raise ValueError(f"patience must be > 0, got {patience}")
        self.threshold = threshold
        self.peak_fraction = peak_fraction
        self.zero_fraction = zero_fraction
        self.patience = patience
        self._history: dict[str, _GradientHistory] = {}

    def invoke_at_step(self, step: int) -> bool:
        _, mode_step = self._mode_step(step)
        for name in self._selected(step, [config_module.GRADIENTS], [], default_all=False):
            value = np.asarray(self.base_trial.tensor(name).value(step), np.float64)
            if value.size == 0:
                continue
            mean_absolute = float(np.mean(np.abs(value)))
            if not math.isfinite(mean_absolute):
                continue  # ExplodingTensor's finding
            zeros = float(np.count_nonzero(value == 0)) / value.size
            history = self._history.setdefault(name, _GradientHistory())
            history.peak = max(history.peak, mean_absolute)
            dead = zeros >= self.zero_fraction
            shrunk = mean_absolute < self.threshold and mean_absolute < self.peak_fraction * history.peak
            history.vanished = history.vanished + 1 if dead or shrunk else 0
            if history.vanished >= self.patience:
                why = (
                    f"{zeros:.0%} of its values are exactly 0"
                    if dead
                    else f"mean |gradient| {mean_absolute:.3g} < {self.threshold:g} and < "
                    f"{self.peak_fraction:g} x its peak {history.peak:.3g}"
                )
                return self._fire(
                    f"{name} vanished at step {mode_step}: {why}, {history.vanished} saved step(s) in a row"
                )
        return False


class ExplodingTensor(AutostopRule):
    """A tensor holds NaN (or, unless ``only_nan``, infinite) values.

    ``collection_names`` / ``tensor_regex`` (comma-separated) select the tensors; neither: every tensor saved
    at the step (losses, gradients, weights, embeddings...).
    """

    PARAMETERS: ClassVar[Mapping[str, Callable[[str], Any]]] = {
        "collection_names": parse_list,
        "tensor_regex": parse_list,
        "only_nan": parse_bool,
    }

    def __init__(
        self,
        base_trial: Any,
        collection_names: Iterable[str] = (),
        tensor_regex: Iterable[str] = (),
        only_nan: bool = False,
        action_str: str = "",
    ) -> None:
        super().__init__(base_trial, action_str=action_str)
        self.collection_names = list(collection_names)
        self.tensor_regex = _check_regexes(tensor_regex, "ExplodingTensor")
        self.only_nan = only_nan

    def invoke_at_step(self, step: int) -> bool:
        _, mode_step = self._mode_step(step)
        for name in self._selected(step, self.collection_names, self.tensor_regex, default_all=True):
            value = np.asarray(self.base_trial.tensor(name).value(step))
            if not np.issubdtype(value.dtype, np.floating):
                continue
            bad = np.isnan(value) if self.only_nan else ~np.isfinite(value)
            count = int(np.count_nonzero(bad))
            if count:
                kind = "NaN" if self.only_nan else "NaN or infinite"
                return self._fire(f"{name} has {count} {kind} values at step {mode_step}")
        return False


class Overfit(AutostopRule):
    """Validation loss pulls away from training loss.

    At each evaluation step ``s >= start_step`` [0], ratio = (validation loss - mean training loss) / mean
    training loss, the training mean over the saved training steps since the previous evaluation. The rule
    fires once the ratio exceeded ``ratio_threshold`` [0.1] at ``patience`` [1] evaluations in a row.
    """

    PARAMETERS: ClassVar[Mapping[str, Callable[[str], Any]]] = {
        "tensor_regex": parse_list,
        "start_step": parse_int,
        "patience": parse_int,
        "ratio_threshold": parse_float,
    }
    REQUIRED_COLLECTIONS = (config_module.LOSSES,)

    def __init__(
        self,
        base_trial: Any,
        tensor_regex: Iterable[str] = (),
        start_step: int = 0,
        patience: int = 1,
        ratio_threshold: float = 0.1,
        action_str: str = "",
    ) -> None:
        super().__init__(base_trial, action_str=action_str)
        if start_step < 0:
            raise ValueError(f"start_step must be >= 0, got {start_step}")
        if patience <= 0:
            raise ValueError(f"patience must be > 0, got {patience}")
        if ratio_threshold <= 0:
            raise ValueError(f"ratio_threshold must be > 0, got {ratio_threshold}")
        self.tensor_regex = _check_regexes(tensor_regex, "Overfit")
        self.start_step = start_step
        self.patience = patience
        self.ratio_threshold = ratio_threshold
        self._previous_evaluation: dict[str, int] = {}
        self._exceeded: dict[str, int] = {}

    def invoke_at_step(self, step: int) -> bool:
        mode, mode_step = self._mode_step(step)
        if mode != ModeKeys.EVAL:
            return False
        collections = [] if self.tensor_regex else [config_module.LOSSES]
        for name in self._selected(step, collections, self.tensor_regex, default_all=False):
            previous = self._previous_evaluation.get(name, -1)
            self._previous_evaluation[name] = mode_step
            if mode_step < self.start_step:
                continue
            tensor = self.base_trial.tensor(name)
            validation = _finite_mean(tensor.value(mode_step, mode=ModeKeys.EVAL))
            training_steps = [s for s in tensor.steps(mode=ModeKeys.TRAIN) if previous < s <= mode_step]
            if not training_steps or not math.isfinite(validation):
                continue
            training = float(
                np.mean([_finite_mean(tensor.value(s, mode=ModeKeys.TRAIN)) for s in training_steps])
            )
            if not math.isfinite(training) or training == 0:
                continue
            ratio = (validation - training) / abs(training)
            exceeded = self._exceeded.get(name, 0) + 1 if ratio > self.ratio_threshold else 0
            self._exceeded[name] = exceeded
            if exceeded >= self.patience:
                return self._fire(
                    f"{name}: validation {validation:.6g} vs training mean {training:.6g} at step "
                    f"{mode_step}: ratio {ratio:.3g} > {self.ratio_threshold:g} for {exceeded} evaluation(s)"
                )
        return False


def cluster_ratio(embeddings: np.ndarray, family_index: np.ndarray) -> tuple[float, float, float] | None:
    """``(intra / inter, intra, inter)``: mean Euclidean distance between designs of the same family and of
    different families (``training.analysis.clustering.family_separation``, the same arithmetic the SageMaker
    custom rule runs). ``None`` when the ratio is not defined for the batch (one family, all singletons,
    non-finite values). A ratio near 1 means the latent space ignores families; clustered embeddings give a
    small ratio; a collapsed latent space (all embeddings equal) gives infinity."""
    vectors = np.asarray(embeddings, np.float64)
    vectors = vectors.reshape(len(vectors), -1)
    families = [str(int(index)) for index in np.asarray(family_index).reshape(-1)]
    try:
        separation = clustering.family_separation(vectors, families)
    except ValueError:
        return None
    return separation.ratio, separation.intra, separation.inter


class LatentClusterRule(AutostopRule):
    """The bottleneck does not group designs by family.

    On each saved ``embeddings`` step, ratio = mean intra-family distance / mean inter-family distance of the
    probe designs' embeddings (``cluster_ratio``). The rule fires once the ratio was above
    ``ratio_threshold`` [0.9] at ``patience`` [3] saved steps in a row from training step ``start_step`` [0]
    on (``clustering.RatioWatch``, shared with the SageMaker custom rule); a collapsed latent space counts as
    above. Needs a probe with at least two families and two designs of one family; otherwise it never fires.
    """

    PARAMETERS: ClassVar[Mapping[str, Callable[[str], Any]]] = {
        "ratio_threshold": parse_float,
        "start_step": parse_int,
        "patience": parse_int,
    }
    REQUIRED_COLLECTIONS = (config_module.EMBEDDINGS,)

    def __init__(
        self,
        base_trial: Any,
        ratio_threshold: float = clustering.DEFAULT_RATIO_THRESHOLD,
        start_step: int = clustering.DEFAULT_START_STEP,
        patience: int = clustering.DEFAULT_PATIENCE,
        action_str: str = "",
    ) -> None:
        super().__init__(base_trial, action_str=action_str)
        if ratio_threshold <= 0:
            raise ValueError(f"ratio_threshold must be > 0, got {ratio_threshold}")
        if start_step < 0:
            raise ValueError(f"start_step must be >= 0, got {start_step}")
        if patience <= 0:
            raise ValueError(f"patience must be > 0, got {patience}")
        self.ratio_threshold = ratio_threshold
        self.start_step = start_step
        self.patience = patience
        self.watch = clustering.RatioWatch(
            threshold=ratio_threshold, start_step=start_step, patience=patience
        )
        self.ratios: dict[int, float] = {}  # training step -> ratio (for analysis and tests)

    def invoke_at_step(self, step: int) -> bool:
        present = self._tensors_at(step)
        if layout.EMBEDDING_TENSOR not in present or layout.FAMILY_INDEX_TENSOR not in present:
            return False
        _, mode_step = self._mode_step(step)
        if mode_step < self.start_step:
            return False
        embeddings = np.asarray(self.base_trial.tensor(layout.EMBEDDING_TENSOR).value(step))
        families = np.asarray(self.base_trial.tensor(layout.FAMILY_INDEX_TENSOR).value(step))
        result = cluster_ratio(embeddings, families)
        if result is None:
            return False
        ratio, intra, inter = result
        self.ratios[mode_step] = ratio
        if self.watch.observe(mode_step, ratio):
            return self._fire(
                f"intra/inter-family distance ratio {ratio:.3g} (intra {intra:.3g}, inter {inter:.3g}) > "
                f"{self.ratio_threshold:g} at step {mode_step}, "
                f"{self.watch.consecutive} saved step(s) in a row"
            )
        return False


RULES: dict[str, type[AutostopRule]] = {
    rule.__name__: rule
    for rule in (LossNotDecreasing, VanishingGradient, ExplodingTensor, Overfit, LatentClusterRule)
}
