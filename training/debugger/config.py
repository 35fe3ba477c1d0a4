"""Where Debugger tensors go and which collections are saved at which steps.

One document shape configures every run: SageMaker's ``DebugHookConfig``, which SageMaker writes into the
container as ``/opt/ml/input/config/debughookconfig.json`` when a job has one (so managed rules and the
SageMaker console see the same tensors). A job without it (managed Debugger is closed to new customers, and
local runs) passes the same JSON document as a hyperparameter, or takes the defaults below::

    {"LocalPath": "/opt/ml/output/tensors",            # where the writer writes (a folder or s3://...)
     "S3OutputPath": "s3://bucket/prefix/tensors",     # where SageMaker uploads LocalPath (recorded only)
     "HookParameters": {"save_interval": "100"},       # defaults for every listed collection
     "CollectionConfigurations": [
        {"CollectionName": "losses", "CollectionParameters": {"train.save_interval": "5"}},
        {"CollectionName": "gradients", "CollectionParameters": {"save_interval": "50", "end_step": "5000"}},
        {"CollectionName": "outputs", "CollectionParameters": {"include_regex": "embedding|decoder_conv_1"}}]}

Values may be strings (SageMaker's API types them as strings) or JSON numbers. Save parameters are smdebug's
(``save_interval``, ``start_step``, ``end_step`` exclusive, ``save_steps`` comma-separated), each optionally
prefixed ``train.`` or ``eval.`` for one mode; ``include_regex`` (comma-separated, ``re.search``) restricts a
collection to the tensor names it matches (for ``outputs``: selects the layers). Steps are training
(optimizer) steps in both modes: an ``eval`` step is the training step after which validation ran.

Why small defaults: a saved step of weights plus gradients of the 1.3M-parameter model is ~10 MB, so the big
collections are saved rarely, while the scalars the fast rules need (losses) are saved often:

| collection | train | eval | tensors |
|---|---|---|---|
| losses | every 10 steps | every validation | ``loss`` |
| metrics | every 10 steps | every validation | ``ssim``, ``l2``, ``learning_rate`` |
| gradients | every 200 steps | - | ``gradients/<weight path>`` |
| weights, biases | every 1000 steps | - | ``weights/<path>``, ``biases/<path>`` |
| embeddings | every 100 steps | - | ``embeddings/probe`` (probe x embedding), ``embeddings/family_index`` |
| outputs | every 1000 steps, only with ``include_regex`` | - | ``outputs/<layer>`` for the probe batch |

When a document lists collections, only those are saved, plus ``losses`` (tiny, and every loss rule needs
them) and whatever the configured rules require (``with_required``). Parameters this writer does not
implement (``reductions``, ``save_histogram``, ``save_all``, ...) and collections it does not produce are
reported in ``HookConfig.warnings`` and ignored, so a managed-Debugger configuration never fails a job.

Rule configurations (``parse_rule_configurations``) are SageMaker's ``DebugRuleConfigurations`` entries, or
rule names for the shorthand; the evaluator's docstring shows them.

This module imports neither TensorFlow nor smdebug: a bad document is one clear error before training.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from training.debugger import contract, layout

DEBUG_HOOK_CONFIG_FILE_NAME = "debughookconfig.json"
# smdebug's DEFAULT_SAGEMAKER_OUTDIR: where SageMaker expects the hook's files (and uploads them from).
SAGEMAKER_TENSORS_PATH = "/opt/ml/output/tensors"
# The container's root as SageMaker lays it out; local runs and tests move it (``AUTOSTOP_OPT_ML``).
SAGEMAKER_OPT_ML = "/opt/ml"

LOSSES = "losses"
METRICS = "metrics"
WEIGHTS = "weights"
BIASES = "biases"
GRADIENTS = "gradients"
EMBEDDINGS = "embeddings"
OUTPUTS = "outputs"

TRAIN = layout.TRAIN
EVAL = layout.EVAL
MODES = layout.MODES

SAVE_PARAMETERS = ("save_interval", "start_step", "end_step", "save_steps")
# smdebug parameters that have a meaning for its own hooks but not for this writer (reported, ignored).
IGNORED_PARAMETERS = frozenset(
    {"reductions", "save_histogram", "save_all", "export_tensorboard", "tensorboard_dir", "include_workers"}
)
IGNORED_MODE_PREFIXES = ("global.", "predict.")


class DebuggerConfigError(ValueError):
    """The hook configuration is unusable; the message names the field and the problem."""


class TrialFolderInUseError(DebuggerConfigError):
    """A new run was pointed at a tensor folder that already holds another run's trial (a rerun, or two
    jobs sharing one path): refused, because the rules would judge the old run's steps instead of its own."""


@dataclasses.dataclass(frozen=True)
class SaveSchedule:
    """smdebug's ``SaveConfigMode`` semantics: ``save_steps``, or every ``save_interval`` in [start, end)."""

    save_interval: int
    start_step: int = 0
    end_step: int | None = None
    save_steps: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.save_interval <= 0:
            raise DebuggerConfigError(f"save_interval must be > 0, got {self.save_interval}")
        if self.start_step < 0:
            raise DebuggerConfigError(f"start_step must be >= 0, got {self.start_step}")
        if self.end_step is not None and self.end_step <= self.start_step:
            raise DebuggerConfigError(
                f"end_step must be > start_step ({self.start_step}), got {self.end_step}"
            )
        if any(step < 0 for step in self.save_steps):
            raise DebuggerConfigError(f"save_steps must be >= 0, got {list(self.save_steps)}")

    def should_save(self, step: int) -> bool:
        if step in self.save_steps:
            return True
        in_range = step >= self.start_step and (self.end_step is None or step < self.end_step)
        return in_range and step % self.save_interval == 0

    def to_json_dict(self) -> dict[str, Any]:
        """The shape smdebug's ``SaveConfigMode.to_json_dict`` exports into the collections file."""
        return {
            "save_interval": self.save_interval,
            "save_steps": list(self.save_steps),
            "start_step": self.start_step,
            "end_step": self.end_step,
        }


@dataclasses.dataclass(frozen=True)
class CollectionConfig:
    """One collection: its schedule per mode (``None``: not saved in that mode) and optional name regexes."""

    name: str
    train: SaveSchedule | None
    eval: SaveSchedule | None = None
    include_regex: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for pattern in self.include_regex:
            try:
                re.compile(pattern)
            except re.error as error:
                raise DebuggerConfigError(
                    f"collection {self.name!r}: include_regex {pattern!r} is not a regular expression: "
                    f"{error}"
                ) from None

    def schedule(self, mode: str) -> SaveSchedule | None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        return self.train if mode == TRAIN else self.eval

    def saves(self, mode: str, step: int) -> bool:
        schedule = self.schedule(mode)
        return schedule is not None and schedule.should_save(step)

    def includes(self, tensor_name: str) -> bool:
        """smdebug's ``match_inc``: no regex means every tensor of the collection; else ``re.search`` any."""
        return not self.include_regex or any(
            re.search(pattern, tensor_name) for pattern in self.include_regex
        )


_DEFAULTS: dict[str, CollectionConfig] = {
    LOSSES: CollectionConfig(LOSSES, SaveSchedule(10), SaveSchedule(1)),
    METRICS: CollectionConfig(METRICS, SaveSchedule(10), SaveSchedule(1)),
    GRADIENTS: CollectionConfig(GRADIENTS, SaveSchedule(200)),
    WEIGHTS: CollectionConfig(WEIGHTS, SaveSchedule(1000)),
    BIASES: CollectionConfig(BIASES, SaveSchedule(1000)),
    EMBEDDINGS: CollectionConfig(EMBEDDINGS, SaveSchedule(100)),
    OUTPUTS: CollectionConfig(OUTPUTS, SaveSchedule(1000)),
}
KNOWN_COLLECTIONS: tuple[str, ...] = tuple(_DEFAULTS)
# Collections with values in eval mode (validation means); the others exist only for training steps.
EVAL_COLLECTIONS = frozenset({LOSSES, METRICS})


def default_collection(name: str) -> CollectionConfig:
    if name not in _DEFAULTS:
        raise DebuggerConfigError(f"unknown collection {name!r} (known: {', '.join(KNOWN_COLLECTIONS)})")
    return _DEFAULTS[name]


@dataclasses.dataclass(frozen=True)
class HookConfig:
    """The resolved configuration: output location, collections, where it came from, what was ignored."""

    out_dir: str
    collections: tuple[CollectionConfig, ...]
    source: str
    s3_output_path: str | None = None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.out_dir:
            raise DebuggerConfigError("the tensor output path (LocalPath) must not be empty")
        names = [collection.name for collection in self.collections]
        if len(names) != len(set(names)):
            raise DebuggerConfigError(f"collections listed twice: {sorted(names)}")

    @property
    def is_s3(self) -> bool:
        return self.out_dir.startswith("s3://")

    def collection(self, name: str) -> CollectionConfig | None:
        return next((collection for collection in self.collections if collection.name == name), None)

    def saves(self, name: str, mode: str, step: int) -> bool:
        collection = self.collection(name)
        return collection is not None and collection.saves(mode, step)

    def saves_any(self, mode: str, step: int) -> bool:
        return any(collection.saves(mode, step) for collection in self.collections)

    def with_required(self, names: Iterable[str]) -> HookConfig:
        """Add (with default schedules) the collections that configured rules need and that are missing."""
        missing = [name for name in dict.fromkeys(names) if self.collection(name) is None]
        if not missing:
            return self
        added = tuple(default_collection(name) for name in missing)
        return dataclasses.replace(self, collections=self.collections + added)

    def with_out_dir(self, out_dir: str) -> HookConfig:
        return dataclasses.replace(self, out_dir=out_dir)


def default_hook_config(out_dir: str, *, source: str = "defaults") -> HookConfig:
    """Every collection this writer produces, at the default schedules (``outputs`` needs a regex: off)."""
    collections = tuple(collection for name, collection in _DEFAULTS.items() if name != OUTPUTS)
    return HookConfig(out_dir=out_dir, collections=collections, source=source)


def _text(value: object, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DebuggerConfigError(f"{field} must be a string or a number, got {type(value).__name__}")
    return str(value).strip()


def _integer(value: object, field: str) -> int:
    text = _text(value, field)
    try:
        return int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            raise DebuggerConfigError(f"{field} must be an integer, got {text[:40]!r}") from None
        if not number.is_integer():
            raise DebuggerConfigError(f"{field} must be an integer, got {text[:40]!r}") from None
        return int(number)


def _split(value: object, field: str) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(_text(item, field) for item in value if _text(item, field))
    return tuple(part.strip() for part in _text(value, field).split(",") if part.strip())


def _save_parameters(parameters: Mapping[str, object], prefix: str, field: str) -> dict[str, Any]:
    """The save parameters of one mode prefix (``""``, ``"train."``, ``"eval."``), parsed."""
    parsed: dict[str, Any] = {}
    for key, value in parameters.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if name not in SAVE_PARAMETERS:
            continue
        path = f"{field}.{key}"
        if name == "save_steps":
            parsed[name] = tuple(_integer(part, path) for part in _split(value, path))
        elif name == "end_step" and _text(value, path).lower() in ("", "none"):
            parsed[name] = None
        else:
            parsed[name] = _integer(value, path)
    return parsed


def _check_keys(parameters: Mapping[str, object], field: str, warnings: list[str]) -> None:
    for key in parameters:
        if not isinstance(key, str):
            raise DebuggerConfigError(f"{field} keys must be strings")
        bare = key.split(".", 1)[1] if key.startswith(("train.", "eval.", "global.", "predict.")) else key
        if key.startswith(IGNORED_MODE_PREFIXES):
            warnings.append(f"{field}.{key}: modes other than train and eval are not recorded; ignored")
        elif bare in IGNORED_PARAMETERS:
            warnings.append(f"{field}.{key}: not implemented by the autostop writer; ignored")
        elif bare not in (*SAVE_PARAMETERS, "include_regex"):
            raise DebuggerConfigError(
                f"{field}.{key}: unknown parameter (known: {', '.join((*SAVE_PARAMETERS, 'include_regex'))}, "
                "optionally prefixed train. or eval.)"
            )


def _mapping(value: object, field: str) -> Mapping[str, object]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DebuggerConfigError(f"{field} must be a JSON object, got {type(value).__name__}")
    return value


def _schedule(
    base: SaveSchedule | None, shared: Mapping[str, Any], specific: Mapping[str, Any], field: str
) -> SaveSchedule | None:
    if base is None:
        return None
    values = {**dataclasses.asdict(base), **shared, **specific}
    values["save_steps"] = tuple(values["save_steps"])
    try:
        return SaveSchedule(**values)
    except DebuggerConfigError as error:
        raise DebuggerConfigError(f"{field}: {error}") from None


def rooted_local_path(local_path: str, *, opt_ml_root: str, default_out_dir: str) -> str:
    """``LocalPath`` as this container lays out ``/opt/ml`` (``AUTOSTOP_OPT_ML`` moves it for local runs).

    SageMaker writes the literal ``/opt/ml/output/tensors`` into ``debughookconfig.json``: that is "the
    default tensor folder", so it becomes ``default_out_dir`` (which honours ``AUTOSTOP_TENSORS_DIR``).
    Any other path under ``/opt/ml`` moves with the root; paths elsewhere and ``s3://`` URIs stay as given.
    """
    if local_path.rstrip("/") == SAGEMAKER_TENSORS_PATH:
        return default_out_dir
    root = opt_ml_root.rstrip("/") or "/"
    if root != SAGEMAKER_OPT_ML and (
        local_path == SAGEMAKER_OPT_ML or local_path.startswith(SAGEMAKER_OPT_ML + "/")
    ):
        return root + local_path[len(SAGEMAKER_OPT_ML) :]
    return local_path


def parse_debug_hook_config(
    document: object,
    *,
    source: str,
    out_dir: str | None = None,
    default_out_dir: str = SAGEMAKER_TENSORS_PATH,
    opt_ml_root: str = SAGEMAKER_OPT_ML,
) -> HookConfig:
    """A parsed ``DebugHookConfig`` document as a ``HookConfig``; ``out_dir`` replaces ``LocalPath``.

    Without ``LocalPath`` the tensors go to ``default_out_dir``; a ``LocalPath`` under ``/opt/ml`` is
    placed under ``opt_ml_root`` (``rooted_local_path``), so a run with a moved root never writes to the
    literal ``/opt/ml``.
    """
    if not isinstance(document, Mapping):
        raise DebuggerConfigError(f"{source}: the debug hook configuration must be a JSON object")
    warnings: list[str] = []
    local_path = document.get("LocalPath", default_out_dir)
    s3_output_path = document.get("S3OutputPath")
    if not isinstance(local_path, str) or not local_path:
        raise DebuggerConfigError(f"{source}: LocalPath must be a non-empty string")
    if s3_output_path is not None and (
        not isinstance(s3_output_path, str) or not s3_output_path.startswith("s3://")
    ):
        raise DebuggerConfigError(f"{source}: S3OutputPath must be an s3:// URI")

    hook_parameters = _mapping(document.get("HookParameters"), f"{source}: HookParameters")
    _check_keys(hook_parameters, "HookParameters", warnings)
    if "include_regex" in hook_parameters:
        warnings.append("HookParameters.include_regex: set include_regex per collection instead; ignored")
    hook_shared = _save_parameters(hook_parameters, "", "HookParameters")
    hook_modes = {mode: _save_parameters(hook_parameters, f"{mode}.", "HookParameters") for mode in MODES}

    configurations = document.get("CollectionConfigurations")
    if configurations is None:
        names: dict[str, Mapping[str, object]] = {name: {} for name in KNOWN_COLLECTIONS if name != OUTPUTS}
    else:
        if not isinstance(configurations, list):
            raise DebuggerConfigError(f"{source}: CollectionConfigurations must be a list")
        names = {}
        for index, entry in enumerate(configurations):
            field = f"CollectionConfigurations[{index}]"
            entry_mapping = _mapping(entry, f"{source}: {field}")
            name = entry_mapping.get("CollectionName")
            if not isinstance(name, str) or not name:
                raise DebuggerConfigError(f"{source}: {field}.CollectionName must be a non-empty string")
            if name not in KNOWN_COLLECTIONS:
                warnings.append(f"collection {name!r} is not produced by the autostop writer; ignored")
                continue
            if name in names:
                raise DebuggerConfigError(f"{source}: collection {name!r} is configured twice")
            names[name] = _mapping(
                entry_mapping.get("CollectionParameters"), f"{source}: {field}.CollectionParameters"
            )
        names.setdefault(LOSSES, {})

    collections = []
    for name, parameters in names.items():
        field = f"collection {name!r}"
        _check_keys(parameters, field, warnings)
        default = default_collection(name)
        shared = {**hook_shared, **_save_parameters(parameters, "", field)}
        include_regex = (
            _split(parameters["include_regex"], f"{field}.include_regex")
            if "include_regex" in parameters
            else ()
        )
        schedules = {}
        for mode in MODES:
            own = _save_parameters(parameters, f"{mode}.", field)
            specific = {**hook_modes[mode], **own}
            base = default.schedule(mode)
            if base is None and own:
                warnings.append(f"{field}: has no {mode} values; {mode}.* parameters ignored")
            schedules[mode] = _schedule(base, shared, specific, f"{source}: {field} ({mode})")
        if name == OUTPUTS and not include_regex:
            warnings.append("collection 'outputs' needs include_regex naming the layers to record; not saved")
            continue
        collections.append(CollectionConfig(name, schedules[TRAIN], schedules[EVAL], include_regex))
    return HookConfig(
        out_dir=out_dir
        or rooted_local_path(local_path, opt_ml_root=opt_ml_root, default_out_dir=default_out_dir),
        collections=tuple(collections),
        source=source,
        s3_output_path=s3_output_path,
        warnings=tuple(warnings),
    )


def load_hook_config(
    *,
    config_dir: Path,
    default_out_dir: str,
    document_text: str | None = None,
    out_dir: str | None = None,
    opt_ml_root: str = SAGEMAKER_OPT_ML,
) -> HookConfig:
    """The configuration of this run, first match wins.

    1. ``document_text``: a ``DebugHookConfig`` JSON document given as a hyperparameter or CLI flag;
    2. ``<config_dir>/debughookconfig.json``, written by SageMaker when the job has a ``DebugHookConfig``;
    3. the defaults, writing to ``default_out_dir``.

    ``out_dir`` (a folder or ``s3://`` URI), when given, replaces the document's ``LocalPath``. A document
    without ``LocalPath`` writes to ``default_out_dir`` too, and one under ``/opt/ml`` moves with
    ``opt_ml_root`` (``rooted_local_path``): the root override holds on every path.
    """
    if document_text is not None and document_text.strip():
        try:
            document = json.loads(document_text)
        except json.JSONDecodeError as error:
            raise DebuggerConfigError(f"the debug hook configuration is not valid JSON: {error}") from None
        return parse_debug_hook_config(
            document,
            source="hyperparameters",
            out_dir=out_dir,
            default_out_dir=default_out_dir,
            opt_ml_root=opt_ml_root,
        )
    path = config_dir / DEBUG_HOOK_CONFIG_FILE_NAME
    if path.is_file():
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DebuggerConfigError(f"cannot read {path}: {error}") from None
        return parse_debug_hook_config(
            document,
            source=str(path),
            out_dir=out_dir,
            default_out_dir=default_out_dir,
            opt_ml_root=opt_ml_root,
        )
    return default_hook_config(out_dir or default_out_dir)


# --- rule configurations (SageMaker's DebugRuleConfigurations shape) ---


class RuleConfigurationError(ValueError):
    """A rule configuration is unusable: the list is malformed (an error before training), or one rule's
    parameters are (that rule's status becomes Error; the others run)."""


@dataclasses.dataclass(frozen=True)
class RuleConfiguration:
    """One ``DebugRuleConfigurations`` entry: the name events carry, the rule class, its string parameters."""

    name: str
    rule_to_invoke: str
    parameters: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_sagemaker(cls, entry: object, index: int = 0) -> RuleConfiguration:
        field = f"rule configuration [{index}]"
        if not isinstance(entry, Mapping):
            raise RuleConfigurationError(f"{field} must be a JSON object")
        name = entry.get("RuleConfigurationName")
        if not isinstance(name, str) or not contract.RULE_NAME_PATTERN.fullmatch(name):
            raise RuleConfigurationError(
                f"{field}: RuleConfigurationName must be 1-256 characters (letters, digits, _.:=+@/-), "
                f"starting with a letter or digit; got {str(name)[:80]!r}"
            )
        parameters = entry.get("RuleParameters") or {}
        if not isinstance(parameters, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in parameters.items()
        ):
            raise RuleConfigurationError(f"{field} ({name}): RuleParameters must map strings to strings")
        rule_to_invoke = parameters.get("rule_to_invoke", name)
        return cls(name=name, rule_to_invoke=rule_to_invoke, parameters=dict(parameters))


def parse_rule_configurations(value: str | Sequence[object]) -> tuple[RuleConfiguration, ...]:
    """A JSON list of ``DebugRuleConfigurations`` entries, or comma-separated rule names with defaults."""
    entries: Sequence[object]
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return ()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as error:
                raise RuleConfigurationError(f"the rule configurations are not valid JSON: {error}") from None
            if not isinstance(parsed, list):
                raise RuleConfigurationError("the rule configurations must be a JSON list")
            entries = parsed
        else:
            entries = [{"RuleConfigurationName": name.strip()} for name in text.split(",") if name.strip()]
    else:
        entries = value
    configurations = tuple(
        RuleConfiguration.from_sagemaker(entry, index) for index, entry in enumerate(entries)
    )
    names = [configuration.name for configuration in configurations]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise RuleConfigurationError(
            f"rule configuration names must be unique; repeated: {', '.join(duplicates)}"
        )
    if len(configurations) > contract.MAX_RULE_STATUSES:
        raise RuleConfigurationError(f"at most {contract.MAX_RULE_STATUSES} rules (SageMaker's limit)")
    return configurations
