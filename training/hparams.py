"""Hyperparameters of a training job: parsed, validated and frozen before anything is written.

SageMaker hands a bring-your-own container its hyperparameters as
``/opt/ml/input/config/hyperparameters.json`` with every value a string (the Python SDK's framework
estimators additionally JSON-encode them, so a string may arrive as ``"\\"ssim\\""``). Local runs pass
the same names as CLI flags (``--learning_rate 0.01``), which override the file. Everything is checked
here, up front, so a bad value is one clear error line naming the problem -- never a traceback from deep
inside TensorFlow after checkpoints or model files were written.

Presets are bundles of architecture hyperparameters (``ArchitectureSpec``); ``base_filters``,
``bottleneck_layers``, ``bottleneck_width`` and ``embedding_size`` override a preset's values (tests use a
tiny ``base_filters``; the presets themselves are what the documentation and benchmarks measure).

This module imports no TensorFlow, so configuration errors are reported in well under a second.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from training.debugger import contract

LOSSES = ("ssim", "l2", "ssim_l1")
# How the encoder combines the views (training/model.py): "none" stacks them on the channel axis (the
# reference model); "mean"/"max" encode every view with the same convolutions and pool over the views.
VIEW_POOLINGS = ("none", "mean", "max")
DECAYS = ("none", "exponential", "inverse_time")
# Keys the SageMaker Python SDK adds to every job's hyperparameters; they are not ours to validate.
SAGEMAKER_RESERVED_PREFIX = "sagemaker_"
# The job's event-signing key (read by the rule evaluator's signer, training/debugger/provenance.py) and its
# sweep's cross-job comparison (read by the rung reporter, training/debugger/rung_reports.py): never training
# settings, and never kept where training settings are logged.
NOT_TRAINING_SETTINGS = frozenset({contract.SIGNING_KEY_HYPERPARAMETER, contract.CROSS_JOB_HYPERPARAMETER})
# tf.image.ssim uses an 11x11 Gaussian window: smaller images cannot be scored.
MINIMUM_IMAGE_SIZE = 16
# Training length when neither steps nor epochs is given.
DEFAULT_STEPS = 1000


class HyperparameterError(ValueError):
    """A hyperparameter (or a combination of them) is invalid; the message names it and says why."""


@dataclasses.dataclass(frozen=True)
class ArchitectureSpec:
    """The shape of the autoencoder; the decoder mirrors the encoder.

    encoder_filters[i] / encoder_strides[i] describe encoder conv layer i+1 (stride 2 halves the image);
    bottleneck_units are the hidden dense layers between the flattened feature map and the embedding
    (mirrored in the decoder); embedding_size is the width of the bottleneck vector (the design signature).
    """

    encoder_filters: tuple[int, ...]
    encoder_strides: tuple[int, ...]
    bottleneck_units: tuple[int, ...]
    embedding_size: int
    view_pooling: str = "none"
    normalize_embedding: bool = False

    @property
    def downsampling_factor(self) -> int:
        return int(math.prod(self.encoder_strides))

    @property
    def weighted_layer_count(self) -> int:
        """Conv and dense layers with weights: encoder + bottleneck + decoder (the published "layers")."""
        convs = len(self.encoder_filters)
        dense = len(self.bottleneck_units) + 1  # hidden layers + the embedding
        # decoder: mirrored hidden dense layers, the projection back to a feature map, mirrored convs, output.
        return convs + dense + len(self.bottleneck_units) + 1 + convs + 1


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named architecture, with filters expressed as multiples of a base filter count."""

    filter_multipliers: tuple[int, ...]
    encoder_strides: tuple[int, ...]
    base_filters: int
    bottleneck_layers: int
    bottleneck_width: int
    embedding_size: int


PRESETS: dict[str, Preset] = {
    # Deeper encoder/decoder (two convs per resolution), two hidden fully connected layers each side,
    # a 128-wide bottleneck: the reference model before optimization.
    "baseline": Preset(
        filter_multipliers=(1, 1, 2, 2, 3, 3, 4, 4),
        encoder_strides=(1, 2, 1, 2, 1, 2, 1, 2),
        base_filters=32,
        bottleneck_layers=2,
        bottleneck_width=256,
        embedding_size=128,
    ),
    # The published optimization: about a third fewer layers, a bottleneck more than 3x smaller (32 vs 128),
    # under 0.6x the parameters (docs/model.md has the measured numbers).
    "optimized": Preset(
        filter_multipliers=(1, 2, 2, 3, 4),
        encoder_strides=(2, 2, 1, 2, 2),
        base_filters=32,
        bottleneck_layers=1,
        bottleneck_width=192,
        embedding_size=32,
    ),
}


@dataclasses.dataclass(frozen=True)
class HyperParameters:
    """Validated hyperparameters. Build with ``from_mapping`` or ``load``; the constructor validates too."""

    learning_rate: float = 1e-3
    decay: str = "none"
    decay_rate: float = 0.96
    decay_steps: int = 1000
    batch_size: int = 32
    steps: int | None = None
    epochs: int | None = None
    loss: str = "ssim"
    preset: str = "optimized"
    seed: int = 42
    # TensorFlow's deterministic ops (tf.config.experimental.enable_op_determinism): the same job on the same
    # machine gives the same numbers run after run (slower; for tests and reproductions, off by default).
    deterministic: bool = False
    image_size: int = 64
    num_views: int = 12
    base_filters: int | None = None
    bottleneck_layers: int | None = None
    bottleneck_width: int | None = None
    embedding_size: int | None = None
    # Model options (docs/model.md): pool per-view encodings over the views, and/or scale the embedding
    # to unit length. Both off by default: the reference model.
    view_pooling: str = "none"
    normalize_embedding: bool = False
    # A contrastive term added to the reconstruction loss (training/losses.py, docs/model.md): NT-Xent
    # between the embeddings of two augmented copies of each design, weighted; 0 (default): off.
    contrastive_weight: float = 0.0
    contrastive_temperature: float = 0.1
    checkpoint_interval: int = 100
    checkpoints_to_keep: int = 2
    log_interval: int = 10
    validation_interval: int = 100
    validation_fraction: float = 0.1
    validation_steps: int = 0
    shuffle_buffer: int = 512
    # The in-container Debugger (docs/debugger.md); checked by training.debugger.wiring before training:
    # debugger_rules: a DebugRuleConfigurations JSON list, or comma-separated rule names (evaluator on);
    # debugger_hook_config: a DebugHookConfig JSON document (else debughookconfig.json, else defaults);
    # debugger_out_dir: the tensors' folder or s3:// URI (else the hook document's LocalPath);
    # debugger_put_events: send IssuesFound with events:PutEvents (SageMaker jobs with network access);
    # debugger_probe_size: designs whose embeddings are recorded;
    # debugger_self_terminate_after: seconds after IssuesFound before the job stops itself (0: off).
    debugger_rules: str = ""
    debugger_hook_config: str = ""
    debugger_out_dir: str = ""
    debugger_put_events: bool = False
    debugger_probe_size: int = 32
    debugger_self_terminate_after: float = 0.0

    def __post_init__(self) -> None:
        # Coerce first (the dataclass is also built directly by tests and benchmarks), then check ranges.
        for name in NAMES:
            object.__setattr__(self, name, _PARSERS[name](name, getattr(self, name)))
        _validate(self)

    def total_steps(self, training_designs: int) -> int:
        """Optimizer steps to run: ``steps``, or ``epochs`` passes over ``training_designs`` designs."""
        if self.epochs is not None:
            return self.epochs * max(1, math.ceil(training_designs / self.batch_size))
        return self.steps if self.steps is not None else DEFAULT_STEPS

    def architecture(self) -> ArchitectureSpec:
        """The preset with this job's overrides applied."""
        preset = PRESETS[self.preset]
        base = self.base_filters if self.base_filters is not None else preset.base_filters
        layers = self.bottleneck_layers if self.bottleneck_layers is not None else preset.bottleneck_layers
        width = self.bottleneck_width if self.bottleneck_width is not None else preset.bottleneck_width
        embedding = self.embedding_size if self.embedding_size is not None else preset.embedding_size
        return ArchitectureSpec(
            encoder_filters=tuple(base * multiplier for multiplier in preset.filter_multipliers),
            encoder_strides=preset.encoder_strides,
            bottleneck_units=(width,) * layers,
            embedding_size=embedding,
            view_pooling=self.view_pooling,
            normalize_embedding=self.normalize_embedding,
        )

    def to_json_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _parse_float(name: str, raw: object) -> float:
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise HyperparameterError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise HyperparameterError(f"{name} must be a finite number, got {raw!r}")
    return value


def _parse_int(name: str, raw: object) -> int:
    if isinstance(raw, bool):
        raise HyperparameterError(f"{name} must be an integer, got {raw!r}")
    if isinstance(raw, int):
        return raw
    try:
        return int(str(raw).strip())
    except ValueError:
        raise HyperparameterError(f"{name} must be an integer, got {raw!r}") from None


def _parse_optional_int(name: str, raw: object) -> int | None:
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none")):
        return None
    return _parse_int(name, raw)


def _parse_text(name: str, raw: object) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise HyperparameterError(f"{name} must be a string, got {type(raw).__name__}")
    return raw.strip()


def _parse_bool(name: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value not in ("true", "false"):
        raise HyperparameterError(f"{name} must be true or false, got {raw!r}")
    return value == "true"


def _parse_choice(choices: tuple[str, ...]) -> Callable[[str, object], str]:
    def parse(name: str, raw: object) -> str:
        value = str(raw).strip()
        if value not in choices:
            raise HyperparameterError(f"unknown {name} {value!r}: expected one of {', '.join(choices)}")
        return value

    return parse


_PARSERS: dict[str, Callable[[str, object], Any]] = {
    "learning_rate": _parse_float,
    "decay": _parse_choice(DECAYS),
    "decay_rate": _parse_float,
    "decay_steps": _parse_int,
    "batch_size": _parse_int,
    "steps": _parse_optional_int,
    "epochs": _parse_optional_int,
    "loss": _parse_choice(LOSSES),
    "preset": _parse_choice(tuple(PRESETS)),
    "seed": _parse_int,
    "deterministic": _parse_bool,
    "image_size": _parse_int,
    "num_views": _parse_int,
    "base_filters": _parse_optional_int,
    "bottleneck_layers": _parse_optional_int,
    "bottleneck_width": _parse_optional_int,
    "embedding_size": _parse_optional_int,
    "view_pooling": _parse_choice(VIEW_POOLINGS),
    "normalize_embedding": _parse_bool,
    "contrastive_weight": _parse_float,
    "contrastive_temperature": _parse_float,
    "checkpoint_interval": _parse_int,
    "checkpoints_to_keep": _parse_int,
    "log_interval": _parse_int,
    "validation_interval": _parse_int,
    "validation_fraction": _parse_float,
    "validation_steps": _parse_int,
    "shuffle_buffer": _parse_int,
    "debugger_rules": _parse_text,
    "debugger_hook_config": _parse_text,
    "debugger_out_dir": _parse_text,
    "debugger_put_events": _parse_bool,
    "debugger_probe_size": _parse_int,
    "debugger_self_terminate_after": _parse_float,
}
NAMES: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(HyperParameters))
if set(_PARSERS) != set(NAMES):
    raise RuntimeError("every hyperparameter needs exactly one parser")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise HyperparameterError(message)


def _validate(hparams: HyperParameters) -> None:
    _require(hparams.learning_rate >= 0, f"learning_rate must be >= 0, got {hparams.learning_rate}")
    _require(hparams.decay_rate > 0, f"decay_rate must be > 0, got {hparams.decay_rate}")
    if hparams.decay == "exponential":
        _require(
            hparams.decay_rate <= 1,
            f"decay_rate must be <= 1 for exponential decay (it multiplies the rate), "
            f"got {hparams.decay_rate}",
        )
    _require(hparams.decay_steps > 0, f"decay_steps must be > 0, got {hparams.decay_steps}")
    _require(hparams.batch_size > 0, f"batch_size must be > 0, got {hparams.batch_size}")
    _require(
        hparams.steps is None or hparams.epochs is None,
        "set steps or epochs, not both (steps counts optimizer steps, epochs counts passes over the data)",
    )
    _require(hparams.steps is None or hparams.steps > 0, f"steps must be > 0, got {hparams.steps}")
    _require(hparams.epochs is None or hparams.epochs > 0, f"epochs must be > 0, got {hparams.epochs}")
    _require(hparams.seed >= 0, f"seed must be >= 0, got {hparams.seed}")
    _require(hparams.num_views > 0, f"num_views must be > 0, got {hparams.num_views}")
    for name in ("base_filters", "bottleneck_width", "embedding_size"):
        value = getattr(hparams, name)
        _require(value is None or value > 0, f"{name} must be > 0, got {value}")
    _require(
        hparams.bottleneck_layers is None or hparams.bottleneck_layers >= 0,
        f"bottleneck_layers must be >= 0, got {hparams.bottleneck_layers}",
    )
    factor = PRESETS[hparams.preset].encoder_strides
    downsampling = int(math.prod(factor))
    _require(
        hparams.image_size >= MINIMUM_IMAGE_SIZE and hparams.image_size % downsampling == 0,
        f"image_size must be a multiple of {downsampling} (preset {hparams.preset} halves the image "
        f"{downsampling.bit_length() - 1} times) and >= {MINIMUM_IMAGE_SIZE}, got {hparams.image_size}",
    )
    _require(
        hparams.contrastive_weight >= 0,
        f"contrastive_weight must be >= 0 (0: no contrastive term), got {hparams.contrastive_weight}",
    )
    _require(
        hparams.contrastive_temperature > 0,
        f"contrastive_temperature must be > 0, got {hparams.contrastive_temperature}",
    )
    _require(
        hparams.contrastive_weight == 0 or hparams.batch_size >= 2,
        "contrastive_weight > 0 needs batch_size >= 2 (the other designs of a batch are the negatives), "
        f"got batch_size {hparams.batch_size}",
    )
    for name in ("checkpoint_interval", "log_interval", "checkpoints_to_keep", "shuffle_buffer"):
        value = getattr(hparams, name)
        _require(value > 0, f"{name} must be > 0, got {value}")
    _require(
        hparams.debugger_probe_size >= 2,
        f"debugger_probe_size must be >= 2 (embeddings are compared), got {hparams.debugger_probe_size}",
    )
    _require(
        hparams.debugger_self_terminate_after >= 0,
        "debugger_self_terminate_after must be >= 0 seconds (0: off), "
        f"got {hparams.debugger_self_terminate_after}",
    )
    for name in ("validation_interval", "validation_steps"):
        value = getattr(hparams, name)
        _require(value >= 0, f"{name} must be >= 0 (0 means: {_ZERO_MEANS[name]}), got {value}")
    _require(
        0 <= hparams.validation_fraction < 1,
        f"validation_fraction must be in [0, 1), got {hparams.validation_fraction}",
    )


_ZERO_MEANS = {
    "validation_interval": "validate only at the end",
    "validation_steps": "the whole validation set",
}


def _unquote(raw: object) -> object:
    """Undo the SageMaker SDK's JSON encoding of string values ('"ssim"' -> 'ssim')."""
    if isinstance(raw, str) and len(raw) >= 2 and raw[0] == raw[-1] == '"':
        try:
            decoded = json.loads(raw)
        except json.JSONDecodeError:
            return raw
        return decoded
    return raw


def from_mapping(values: Mapping[str, object]) -> HyperParameters:
    """Parse hyperparameters given as strings (SageMaker) or JSON values (local files, tests)."""
    parsed: dict[str, Any] = {}
    for name, raw in values.items():
        if name.startswith(SAGEMAKER_RESERVED_PREFIX) or name in NOT_TRAINING_SETTINGS:
            continue
        if name not in _PARSERS:
            raise HyperparameterError(f"unknown hyperparameter {name!r} (known: {', '.join(NAMES)})")
        parsed[name] = _PARSERS[name](name, _unquote(raw))
    return HyperParameters(**parsed)


class _RaisingArgumentParser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, so the caller prints one line."""

    def error(self, message: str) -> Any:  # argparse declares NoReturn; raising keeps that promise
        raise HyperparameterError(message)


def build_argument_parser() -> argparse.ArgumentParser:
    parser = _RaisingArgumentParser(
        prog="python -m training.train",
        description=(
            "Train the multi-view autoencoder (SageMaker contract). Values given here override "
            "hyperparameters.json."
        ),
    )
    for name in NAMES:
        parser.add_argument(
            f"--{name}", f"--{name.replace('_', '-')}", dest=name, default=None, metavar="VALUE"
        )
    return parser


def read_hyperparameters_file(path: Path) -> dict[str, object]:
    """The SageMaker hyperparameters file, or nothing when it does not exist (local runs)."""
    if not path.is_file():
        return {}
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HyperparameterError(f"cannot read hyperparameters file {path}: {error}") from None
    if not isinstance(content, dict):
        raise HyperparameterError(f"hyperparameters file {path} must hold a JSON object")
    return content


def load(argv: Sequence[str], hyperparameters_file: Path) -> HyperParameters:
    """Hyperparameters from the SageMaker file, overridden by CLI flags."""
    values = read_hyperparameters_file(hyperparameters_file)
    arguments = build_argument_parser().parse_args(list(argv))
    values.update({name: value for name, value in vars(arguments).items() if value is not None})
    return from_mapping(values)
