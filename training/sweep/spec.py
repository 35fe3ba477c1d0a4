"""The sweep spec: a YAML (or TOML) file, validated up front, expanded into named job configurations.

Why validate everything before the first job: a sweep costs hours of compute; a typo found after ten jobs
ran (an unknown rule, a learning rate list with a string in it, an image size the preset cannot take) wastes
them. ``load_spec`` collects every problem it finds, each naming its key path (``search.parameters.
learning_rate[2]: expected a number, got 'fast'``), and raises one ``SpecError`` listing them all.

Shape (docs/sweeps.md has the reference; ``training/sweep/specs/demo.yaml`` is a working example)::

    name: demo                      # job names are <name>-001, <name>-002, ... (SageMaker's name pattern)
    seed: 7                         # random sampling and every job's training seed
    max_parallel_jobs: 2
    steps_per_job: 400              # the step budget of every job (hyperparameter "steps")
    objective: {metric: validation:ssim, goal: maximize}
    search:
      strategy: grid                # grid (every combination, in the order written) | random
      samples: 8                    # random only: how many configurations to draw
      parameters:                   # grid: lists; random: lists (uniform choice) or distributions
        learning_rate: [0.0, 0.001, 0.003, 5.0]
        variant: [standard, deep_saturating]
        # random: learning_rate: {distribution: log_uniform, min: 1.0e-5, max: 1.0e-1}
      include:                      # extra configurations, run after the grid/samples
        - {learning_rate: 0.003, decay: exponential}
    hyperparameters: {image_size: 32, num_views: 6}   # every job (training/hparams.py names)
    variants:                       # named bundles of hyperparameters, chosen by the parameter "variant"
      standard: {}
      deep_saturating: {activation: sigmoid, bottleneck_layers: 8}
    datasets:                       # chosen by the parameter "dataset" (needed when there are several)
      shapes: {train: runs/demo/data/shards}          # a local folder, or s3:// for SageMaker
    rules:                          # SageMaker DebugRuleConfigurations entries
      - RuleConfigurationName: LossNotDecreasing
        RuleParameters: {num_steps: "30", diff_percent: "1"}
      - ExplodingTensor            # shorthand: the rule with its documented defaults
    debugger: {collections: {losses: {save_interval: "5"}, gradients: {save_interval: "20"}}}
    stopping: {rules: "*", dry_run: false}
    tags: {team: vision}
    sagemaker: {...}                # the SageMaker backend's settings (``SageMakerSettings``)

Swept parameters are the training hyperparameters (``training/hparams.py``: ``learning_rate``, ``decay``,
``batch_size``, ``loss``, ``preset``, ...) plus ``dataset`` and ``variant``. Expansion is deterministic: the
same spec gives the same jobs, in the same order, with the same names, on every machine.

This module imports neither TensorFlow nor boto3. Rule names and parameters are checked against the
in-container evaluator's rules (``training/debugger/rules.py``, imported lazily: it loads smdebug).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lambdas.stop_training_job import cross_job, decision
from training import hparams as hparams_module
from training.sweep import cross_job_spec

SPEC_SUFFIXES = (".yaml", ".yml", ".toml")
SWEEP_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
MAX_JOBS = 999  # three-digit job numbers: <name>-001 ... <name>-999
JOB_NUMBER_WIDTH = 3
MAX_SWEEP_NAME_LENGTH = decision.JOB_NAME_MAX_LENGTH - 1 - JOB_NUMBER_WIDTH
MAX_PARALLEL_JOBS = 100
MAX_RULES = decision.MAX_RULE_STATUSES
# SageMaker: at most 50 tags per resource; autostop adds the opt-in tag, the sweep name and the job number
# at launch, and the stop Lambda adds three after a stop.
MAX_USER_TAGS = 40
DATASET = "dataset"
VARIANT = "variant"
SPECIAL_PARAMETERS = (DATASET, VARIANT)
# Set by the spec itself, not by a sweep dimension or a fixed hyperparameter.
RESERVED_HYPERPARAMETERS = frozenset(
    {"steps", "epochs", "debugger_rules", "debugger_hook_config", "debugger_out_dir", "debugger_put_events"}
)
DEFAULT_OBJECTIVE_METRIC = "validation:ssim"
OBJECTIVE_METRICS = {
    "validation:ssim": "maximize",
    "validation:loss": "minimize",
    "validation:l2": "minimize",
}
GOALS = ("maximize", "minimize")
STRATEGIES = ("grid", "random")
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform")
CHANNEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9\.\-_]{1,64}")
# Only these two channels exist in the training container's contract (training/train.py).
CHANNELS = ("train", "validation")
# The five rules the in-container evaluator implements (training/debugger/rules.py RULES); used only when
# that module cannot be imported.
FALLBACK_RULES = ("LossNotDecreasing", "VanishingGradient", "ExplodingTensor", "Overfit", "LatentClusterRule")
OPT_IN_TAG_KEY = decision.DEFAULT_TAG_KEY
RESERVED_TAG_PREFIXES = ("aws:", "autostop")


class SpecError(ValueError):
    """The spec is unusable. ``problems`` lists every finding, each starting with its key path."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        listing = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid sweep spec {source}: {len(self.problems)} problem(s)\n{listing}")


# --- The validated spec ---


@dataclasses.dataclass(frozen=True)
class Distribution:
    """A random-search distribution over [low, high] (``log_uniform`` needs low > 0)."""

    kind: str
    low: float
    high: float

    def sample(self, rng: random.Random) -> float | int:
        if self.kind == "int_uniform":
            return rng.randint(int(self.low), int(self.high))
        if self.kind == "log_uniform":
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return float(f"{value:.4g}")  # readable in names, reports and hyperparameters


ParameterValues = tuple[object, ...] | Distribution


@dataclasses.dataclass(frozen=True)
class Objective:
    metric: str = DEFAULT_OBJECTIVE_METRIC
    goal: str = "maximize"

    def better(self, candidate: float, incumbent: float) -> bool:
        return candidate > incumbent if self.goal == "maximize" else candidate < incumbent

    @property
    def log_name(self) -> str:
        """The metric's name in the training log lines (``validation:ssim`` -> ``val_ssim``)."""
        return "val_" + self.metric.split(":", 1)[1]


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A named dataset: channel name -> location (a local folder or an ``s3://`` prefix)."""

    name: str
    channels: Mapping[str, str]

    @property
    def is_s3(self) -> bool:
        return all(location.startswith("s3://") for location in self.channels.values())


@dataclasses.dataclass(frozen=True)
class RuleSpec:
    """One ``DebugRuleConfigurations`` entry (parameters as strings, as SageMaker types them)."""

    name: str
    parameters: Mapping[str, str]

    @property
    def rule_to_invoke(self) -> str:
        return self.parameters.get("rule_to_invoke", self.name)

    def to_sagemaker(self) -> dict[str, Any]:
        return {"RuleConfigurationName": self.name, "RuleParameters": dict(self.parameters)}


@dataclasses.dataclass(frozen=True)
class SpotSettings:
    max_wait_seconds: int
    checkpoint_s3_uri: str


@dataclasses.dataclass(frozen=True)
class SageMakerSettings:
    """The SageMaker backend's settings; ``image_uri`` and ``role_arn`` can also come from the CLI.

    The training image: ``cpu_image_uri`` and ``gpu_image_uri`` (the training stack's two images; the
    instance type picks one, see ``image_for_instance``), or one ``image_uri`` built for ``image_hardware``.
    """

    image_uri: str | None = None
    image_hardware: str = "cpu"  # what image_uri is built for: cpu | gpu
    cpu_image_uri: str | None = None
    gpu_image_uri: str | None = None
    role_arn: str | None = None
    region: str | None = None
    instance_type: str = "ml.m5.xlarge"
    volume_size_gb: int = 30
    max_run_seconds: int = 24 * 3600
    output_path: str | None = None
    debugger_output_path: str | None = None
    managed_rules: bool = False
    in_container_rules: bool = True
    put_events: bool = True
    alarm_prefix: str = decision.DEFAULT_ALARM_PREFIX
    poll_seconds: float = 30.0
    spot: SpotSettings | None = None
    network_isolation: bool = False
    # AWS's custom rule evaluator image of the region (docs/sweeps.md): with managed_rules on, the launcher
    # attaches LatentClusterRule as a SageMaker custom rule running on it.
    custom_rule_image_uri: str | None = None
    # The stop stack's published scope (its ScopeParameterName output): a launch refuses a sweep outside it.
    scope_parameter: str | None = None


@dataclasses.dataclass(frozen=True)
class StoppingSettings:
    """What the local runner's decision core stops on (the Lambda's ``AUTOSTOP_*`` settings, locally)."""

    rules: frozenset[str] | None = None  # None: every rule stops
    dry_run: bool = False


@dataclasses.dataclass(frozen=True)
class JobConfig:
    """One job of the sweep: its stable name, the swept values, and everything it is launched with."""

    index: int  # 1-based, the order of the expansion
    name: str
    params: Mapping[str, object]  # the swept values (including dataset/variant names)
    hyperparameters: Mapping[str, str]  # the whole hyperparameters.json, values as strings
    dataset: Dataset
    variant: str | None

    @property
    def steps(self) -> int:
        return int(self.hyperparameters["steps"])

    def label(self) -> str:
        """Short human-readable parameters, e.g. ``learning_rate=0.003 variant=deep_saturating``."""
        return " ".join(f"{key}={format_value(value)}" for key, value in self.params.items())


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    name: str
    source: str
    seed: int
    max_parallel_jobs: int
    steps_per_job: int
    objective: Objective
    strategy: str
    samples: int | None
    parameters: Mapping[str, ParameterValues]
    include: tuple[Mapping[str, object], ...]
    hyperparameters: Mapping[str, object]
    variants: Mapping[str, Mapping[str, object]]
    datasets: Mapping[str, Dataset]
    rules: tuple[RuleSpec, ...]
    debugger_collections: Mapping[str, Mapping[str, str]]
    stopping: StoppingSettings
    tags: Mapping[str, str]
    sagemaker: SageMakerSettings
    description: str = ""
    cross_job: cross_job_spec.CrossJobSpec | None = None

    def cross_job_settings(self) -> cross_job.CrossJobSettings | None:
        """The cross-job comparison for this spec's objective and budget (``None``: jobs are not compared)."""
        if self.cross_job is None:
            return None
        return self.cross_job.settings(goal=self.objective.goal, max_steps=self.steps_per_job)

    def jobs(self) -> list[JobConfig]:
        """The job configurations (validated when the spec was loaded, so this cannot fail)."""
        return expand(self)

    def job_name(self, index: int) -> str:
        return job_name(self.name, index)

    def rule_configurations(self) -> list[dict[str, Any]]:
        return [rule.to_sagemaker() for rule in self.rules]

    def decision_config(self) -> decision.Config:
        """The stop decision's settings for this sweep: its jobs' prefix, the opt-in tag, its rules."""
        return decision.Config(
            job_prefix=self.name + "-",
            stopping_rules=self.stopping.rules,
            dry_run=self.stopping.dry_run,
        )

    def with_overrides(self, **changes: Any) -> SweepSpec:
        """A copy with fields replaced (CLI overrides, the demo's data folder), re-validated."""
        replaced = dataclasses.replace(self, **changes)
        problems: list[str] = []
        _check_expansion(replaced, problems)
        if problems:
            raise SpecError(self.source, problems)
        return replaced


def job_name(sweep_name: str, index: int) -> str:
    return f"{sweep_name}-{index:0{JOB_NUMBER_WIDTH}d}"


def format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def hyperparameter_text(value: object) -> str:
    """A hyperparameter as the string SageMaker stores (``0.001`` -> ``"0.001"``, ``1e-05`` stays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# --- Reading and validating ---


class _Problems:
    """Collects problems with their key paths; ``check`` helpers return the value or None."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)

    def mapping(self, value: object, path: str) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.add(path, f"expected a mapping, got {_type_name(value)}")
            return None
        for key in value:
            if not isinstance(key, str):
                self.add(path, f"keys must be strings, got {key!r}")
                return None
        return value

    def known_keys(self, value: Mapping[str, Any], path: str, known: Sequence[str]) -> None:
        for key in value:
            if key not in known:
                self.add(_join(path, key), f"unknown key (known: {', '.join(known)})")

    def integer(self, value: object, path: str, *, minimum: int, maximum: int | None = None) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"expected an integer, got {_describe(value)}")
            return None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            self.add(path, f"must be {bounds}, got {value}")
            return None
        return value

    def number(self, value: object, path: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.add(path, f"expected a finite number, got {_describe(value)}")
            return None
        return float(value)

    def text(
        self, value: object, path: str, *, pattern: re.Pattern[str] | None = None, what: str = ""
    ) -> str | None:
        if not isinstance(value, str) or not value:
            self.add(path, f"expected a non-empty string, got {_describe(value)}")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.add(path, f"{value[:80]!r} is not {what}")
            return None
        return value

    def boolean(self, value: object, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.add(path, f"expected true or false, got {_describe(value)}")
            return None
        return value


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _type_name(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "nothing"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _describe(value: object) -> str:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return repr(value)[:80]
    return _type_name(value)


TOP_LEVEL_KEYS = (
    "name",
    "description",
    "seed",
    "max_parallel_jobs",
    "steps_per_job",
    "objective",
    "search",
    "hyperparameters",
    "variants",
    "datasets",
    "rules",
    "cross_job",
    "debugger",
    "stopping",
    "tags",
    "sagemaker",
)
REQUIRED_KEYS = ("name", "steps_per_job", "search", "datasets", "rules")


def read_document(path: Path) -> object:
    """Parse a YAML or TOML file (by suffix) into plain data; a syntax error is a ``SpecError``."""
    source = str(path)
    if path.suffix not in SPEC_SUFFIXES:
        raise SpecError(source, [f"the spec must be a {', '.join(SPEC_SUFFIXES)} file"])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(source, [f"cannot read the file: {error}"]) from None
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise SpecError(source, [f"not valid TOML: {error}"]) from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SpecError(source, [f"not valid YAML: {' '.join(str(error).split())}"]) from None


def load_spec(path: str | Path) -> SweepSpec:
    """Read, validate and check the expansion of a spec file; ``SpecError`` lists every problem."""
    spec_path = Path(path)
    return parse_spec(read_document(spec_path), source=str(spec_path))


def parse_spec(document: object, *, source: str = "<spec>") -> SweepSpec:
    """Validate a parsed document (plain data) into a ``SweepSpec``; ``SpecError`` lists every problem."""
    problems = _Problems()
    root = problems.mapping(document, "")
    if root is None:
        raise SpecError(source, problems.items)
    problems.known_keys(root, "", TOP_LEVEL_KEYS)
    for key in REQUIRED_KEYS:
        if key not in root:
            problems.add(key, "required")

    name = problems.text(root.get("name"), "name", pattern=SWEEP_NAME_PATTERN, what="a sweep name")
    if name is not None and len(name) > MAX_SWEEP_NAME_LENGTH:
        problems.add(
            "name", f"at most {MAX_SWEEP_NAME_LENGTH} characters (job names add -NNN), got {len(name)}"
        )
        name = None
    description = root.get("description", "")
    if not isinstance(description, str):
        problems.add("description", f"expected a string, got {_describe(description)}")
        description = ""
    seed = problems.integer(root.get("seed", 0), "seed", minimum=0, maximum=2**31 - 1)
    max_parallel = problems.integer(
        root.get("max_parallel_jobs", 2), "max_parallel_jobs", minimum=1, maximum=MAX_PARALLEL_JOBS
    )
    steps = (
        problems.integer(root.get("steps_per_job"), "steps_per_job", minimum=1)
        if "steps_per_job" in root
        else None
    )
    objective = _parse_objective(root.get("objective", {}), problems)
    hyperparameters = _parse_hyperparameter_mapping(
        root.get("hyperparameters", {}), "hyperparameters", problems
    )
    variants = _parse_variants(root.get("variants", {}), problems)
    datasets = _parse_datasets(root.get("datasets"), problems) if "datasets" in root else {}
    strategy, samples, parameters, include = _parse_search(root.get("search"), problems, variants, datasets)
    rules = _parse_rules(root.get("rules"), problems) if "rules" in root else ()
    collections = _parse_debugger(root.get("debugger", {}), problems)
    stopping = _parse_stopping(root.get("stopping", {}), rules, problems)
    tags = _parse_tags(root.get("tags", {}), problems)
    sagemaker = _parse_sagemaker(root.get("sagemaker", {}), problems)
    compare_jobs = _parse_cross_job(root["cross_job"], problems) if "cross_job" in root else None

    if problems.items or name is None or seed is None or max_parallel is None or steps is None:
        raise SpecError(source, problems.items)
    spec = SweepSpec(
        name=name,
        source=source,
        seed=seed,
        max_parallel_jobs=max_parallel,
        steps_per_job=steps,
        objective=objective,
        strategy=strategy,
        samples=samples,
        parameters=parameters,
        include=include,
        hyperparameters=hyperparameters,
        variants=variants,
        datasets=datasets,
        rules=rules,
        debugger_collections=collections,
        stopping=stopping,
        tags=tags,
        sagemaker=sagemaker,
        description=description,
        cross_job=compare_jobs,
    )
    _check_expansion(spec, problems.items)
    if problems.items:
        raise SpecError(source, problems.items)
    return spec


def _parse_objective(value: object, problems: _Problems) -> Objective:
    mapping = problems.mapping(value, "objective")
    if mapping is None:
        return Objective()
    problems.known_keys(mapping, "objective", ("metric", "goal"))
    metric = mapping.get("metric", DEFAULT_OBJECTIVE_METRIC)
    if metric not in OBJECTIVE_METRICS:
        problems.add("objective.metric", f"{_describe(metric)} is not one of {', '.join(OBJECTIVE_METRICS)}")
        return Objective()
    goal = mapping.get("goal", OBJECTIVE_METRICS[metric])
    if goal not in GOALS:
        problems.add("objective.goal", f"{_describe(goal)} is not one of {', '.join(GOALS)}")
        return Objective(metric, OBJECTIVE_METRICS[metric])
    return Objective(metric, goal)


def _hyperparameter_names() -> tuple[str, ...]:
    return hparams_module.NAMES


def _check_hyperparameter_value(name: str, value: object, path: str, problems: _Problems) -> None:
    """Type and range of one value, with the training container's own parser and checks."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.add(path, f"expected a string or a number, got {_describe(value)}")
        return
    try:
        # The value with every other hyperparameter at its default; combinations are checked per job.
        hparams_module.from_mapping({name: hyperparameter_text(value)})
    except hparams_module.HyperparameterError as error:
        problems.add(path, str(error))


def _parse_hyperparameter_mapping(value: object, path: str, problems: _Problems) -> dict[str, object]:
    mapping = problems.mapping(value, path)
    if mapping is None:
        return {}
    parsed: dict[str, object] = {}
    for key, item in mapping.items():
        key_path = _join(path, key)
        if key in RESERVED_HYPERPARAMETERS:
            problems.add(key_path, _RESERVED_REASONS.get(key, _DEBUGGER_REASON))
        elif key not in _hyperparameter_names():
            problems.add(
                key_path, f"unknown training hyperparameter (known: {', '.join(_hyperparameter_names())})"
            )
        else:
            _check_hyperparameter_value(key, item, key_path, problems)
            parsed[key] = item
    return parsed


_DEBUGGER_REASON = "set by the sweep from rules and debugger.collections (docs/sweeps.md)"
_RESERVED_REASONS = {
    "steps": "set the step budget with steps_per_job",
    "epochs": "set the step budget with steps_per_job (epochs are not supported in sweeps)",
}


def _parse_variants(value: object, problems: _Problems) -> dict[str, dict[str, object]]:
    mapping = problems.mapping(value, "variants")
    if mapping is None:
        return {}
    variants: dict[str, dict[str, object]] = {}
    for key, item in mapping.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", key):
            problems.add(_join("variants", key), "variant names are 1-64 letters, digits, _ . -")
            continue
        variants[key] = _parse_hyperparameter_mapping(
            item if item is not None else {}, _join("variants", key), problems
        )
    return variants


def _parse_datasets(value: object, problems: _Problems) -> dict[str, Dataset]:
    mapping = problems.mapping(value, "datasets")
    if mapping is None:
        return {}
    if not mapping:
        problems.add("datasets", "name at least one dataset")
    datasets: dict[str, Dataset] = {}
    for key, item in mapping.items():
        path = _join("datasets", key)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", key):
            problems.add(path, "dataset names are 1-64 letters, digits, _ . -")
            continue
        channels = problems.mapping(item, path)
        if channels is None:
            continue
        problems.known_keys(channels, path, CHANNELS)
        if "train" not in channels:
            problems.add(_join(path, "train"), "required (the training channel's folder or s3:// prefix)")
        parsed: dict[str, str] = {}
        for channel in CHANNELS:
            if channel in channels:
                location = problems.text(channels[channel], _join(path, channel))
                if location is not None:
                    parsed[channel] = location
        kinds = {location.startswith("s3://") for location in parsed.values()}
        if len(kinds) > 1:
            problems.add(path, "channels must all be local folders or all be s3:// prefixes")
        datasets[key] = Dataset(key, parsed)
    return datasets


def _parse_search(
    value: object,
    problems: _Problems,
    variants: Mapping[str, object],
    datasets: Mapping[str, Dataset],
) -> tuple[str, int | None, dict[str, ParameterValues], tuple[Mapping[str, object], ...]]:
    mapping = problems.mapping(value, "search") if value is not None else None
    if mapping is None:
        return "grid", None, {}, ()
    problems.known_keys(mapping, "search", ("strategy", "samples", "parameters", "include"))
    strategy = mapping.get("strategy", "grid")
    if strategy not in STRATEGIES:
        problems.add("search.strategy", f"{_describe(strategy)} is not one of {', '.join(STRATEGIES)}")
        strategy = "grid"
    samples = None
    if strategy == "random":
        samples = problems.integer(mapping.get("samples"), "search.samples", minimum=1, maximum=MAX_JOBS)
    elif "samples" in mapping:
        problems.add("search.samples", "only for strategy: random")

    parameters: dict[str, ParameterValues] = {}
    raw_parameters = problems.mapping(mapping.get("parameters", {}), "search.parameters")
    for key, item in (raw_parameters or {}).items():
        path = _join("search.parameters", key)
        if not _known_parameter(key, path, problems):
            continue
        if isinstance(item, Mapping):
            if strategy == "grid":
                problems.add(path, "a grid takes a list of values (distributions are for strategy: random)")
                continue
            distribution = _parse_distribution(item, key, path, problems)
            if distribution is not None:
                parameters[key] = distribution
            continue
        if not isinstance(item, list) or not item:
            problems.add(path, f"expected a non-empty list of values, got {_describe(item)}")
            continue
        values = []
        for index, element in enumerate(item):
            if _check_parameter_value(key, element, _join(path, index), problems, variants, datasets):
                values.append(element)
        if len(set(map(json.dumps, values))) != len(values):
            problems.add(path, "lists a value twice")
        parameters[key] = tuple(values)

    include: list[Mapping[str, object]] = []
    raw_include = mapping.get("include", [])
    if not isinstance(raw_include, list):
        problems.add("search.include", f"expected a list of configurations, got {_describe(raw_include)}")
        raw_include = []
    for index, entry in enumerate(raw_include):
        path = _join("search.include", index)
        configuration = problems.mapping(entry, path)
        if configuration is None:
            continue
        if not configuration:
            problems.add(path, "an empty configuration")
        checked: dict[str, object] = {}
        for key, element in configuration.items():
            key_path = _join(path, key)
            if _known_parameter(key, key_path, problems) and _check_parameter_value(
                key, element, key_path, problems, variants, datasets
            ):
                checked[key] = element
        include.append(checked)
    if not parameters and not include:
        problems.add("search", "needs parameters or include entries: a sweep of no jobs")
    return strategy, samples, parameters, tuple(include)


def _known_parameter(key: str, path: str, problems: _Problems) -> bool:
    if key in SPECIAL_PARAMETERS:
        return True
    if key in RESERVED_HYPERPARAMETERS:
        budget = "the step budget is steps_per_job, the same for every job (the report compares jobs by it)"
        problems.add(path, budget if key in ("steps", "epochs") else _DEBUGGER_REASON)
        return False
    if key not in _hyperparameter_names():
        swept = [name for name in _hyperparameter_names() if name not in RESERVED_HYPERPARAMETERS]
        known = ", ".join((*SPECIAL_PARAMETERS, *swept))
        problems.add(path, f"unknown parameter (known: {known})")
        return False
    return True


def _check_parameter_value(
    key: str,
    value: object,
    path: str,
    problems: _Problems,
    variants: Mapping[str, object],
    datasets: Mapping[str, Dataset],
) -> bool:
    before = len(problems.items)
    if key == VARIANT:
        if value not in variants:
            problems.add(
                path,
                f"unknown variant {_describe(value)} (variants: {', '.join(variants) or 'none defined'})",
            )
    elif key == DATASET:
        if value not in datasets:
            problems.add(
                path,
                f"unknown dataset {_describe(value)} (datasets: {', '.join(datasets) or 'none defined'})",
            )
    else:
        _check_hyperparameter_value(key, value, path, problems)
    return len(problems.items) == before


def _parse_distribution(
    value: Mapping[str, Any], key: str, path: str, problems: _Problems
) -> Distribution | None:
    problems.known_keys(value, path, ("distribution", "min", "max"))
    kind = value.get("distribution")
    if kind not in DISTRIBUTIONS:
        problems.add(
            _join(path, "distribution"), f"{_describe(kind)} is not one of {', '.join(DISTRIBUTIONS)}"
        )
        return None
    if key in SPECIAL_PARAMETERS:
        problems.add(path, f"{key} takes a list of names, not a distribution")
        return None
    low = problems.number(value.get("min"), _join(path, "min"))
    high = problems.number(value.get("max"), _join(path, "max"))
    if low is None or high is None:
        return None
    if low > high:
        problems.add(path, f"min ({low:g}) must not exceed max ({high:g})")
        return None
    if kind == "log_uniform" and low <= 0:
        problems.add(_join(path, "min"), f"log_uniform needs min > 0, got {low:g}")
        return None
    if kind == "int_uniform" and not (low.is_integer() and high.is_integer()):
        problems.add(path, "int_uniform needs integer min and max")
        return None
    for bound, label in ((low, "min"), (high, "max")):
        sample: object = int(bound) if kind == "int_uniform" else bound
        _check_hyperparameter_value(key, sample, _join(path, label), problems)
    return Distribution(kind, low, high)


def _available_rules() -> Mapping[str, Mapping[str, Callable[[str], Any]] | None]:
    """Rule name -> its parameter parsers (``None`` when the evaluator's module cannot be imported)."""
    try:
        from training.debugger import rules as rules_module
    except ImportError:
        return dict.fromkeys(FALLBACK_RULES)
    return {name: rule.PARAMETERS for name, rule in rules_module.RULES.items()}


FRAMEWORK_RULE_PARAMETERS = ("rule_to_invoke", "start_step", "end_step")


def _parse_rules(value: object, problems: _Problems) -> tuple[RuleSpec, ...]:
    if not isinstance(value, list) or not value:
        problems.add("rules", f"expected a non-empty list of rule configurations, got {_describe(value)}")
        return ()
    if len(value) > MAX_RULES:
        problems.add("rules", f"at most {MAX_RULES} rules (SageMaker's limit), got {len(value)}")
    available = _available_rules()
    rules: list[RuleSpec] = []
    for index, entry in enumerate(value):
        path = _join("rules", index)
        if isinstance(entry, str):
            entry = {"RuleConfigurationName": entry}
        mapping = problems.mapping(entry, path)
        if mapping is None:
            continue
        problems.known_keys(mapping, path, ("RuleConfigurationName", "RuleParameters"))
        name = problems.text(
            mapping.get("RuleConfigurationName"),
            _join(path, "RuleConfigurationName"),
            pattern=decision.RULE_NAME_PATTERN,
            what="a rule configuration name (letters, digits, _.:=+@/-)",
        )
        raw_parameters = problems.mapping(
            mapping.get("RuleParameters", {}) or {}, _join(path, "RuleParameters")
        )
        if name is None or raw_parameters is None:
            continue
        parameters: dict[str, str] = {}
        for key, item in raw_parameters.items():
            key_path = _join(_join(path, "RuleParameters"), key)
            if isinstance(item, bool):
                parameters[key] = "True" if item else "False"
            elif isinstance(item, str | int | float):
                parameters[key] = str(item)
            else:
                problems.add(key_path, f"expected a string or a number, got {_describe(item)}")
        rule = RuleSpec(name, parameters)
        if rule.rule_to_invoke not in available:
            problems.add(
                _join(path, "RuleConfigurationName")
                if "rule_to_invoke" not in parameters
                else _join(_join(path, "RuleParameters"), "rule_to_invoke"),
                f"unknown rule {rule.rule_to_invoke!r} (the in-container evaluator has: "
                f"{', '.join(available)})",
            )
            continue
        if any(existing.name == name for existing in rules):
            problems.add(_join(path, "RuleConfigurationName"), f"{name!r} is configured twice")
            continue
        _check_rule_parameters(rule, available[rule.rule_to_invoke], _join(path, "RuleParameters"), problems)
        rules.append(rule)
    return tuple(rules)


def _check_rule_parameters(
    rule: RuleSpec, parsers: Mapping[str, Callable[[str], Any]] | None, path: str, problems: _Problems
) -> None:
    for key, text in rule.parameters.items():
        key_path = _join(path, key)
        if key in FRAMEWORK_RULE_PARAMETERS:
            if key != "rule_to_invoke" and not re.fullmatch(r"[0-9]+|none|None|", text):
                problems.add(key_path, f"expected a step number, got {text[:40]!r}")
            continue
        if parsers is None:
            continue
        if key not in parsers:
            known = ", ".join(sorted(parsers)) or "none"
            problems.add(key_path, f"unknown parameter of {rule.rule_to_invoke} (known: {known})")
            continue
        try:
            parsers[key](text)
        except ValueError as error:
            problems.add(key_path, str(error))


def _parse_debugger(value: object, problems: _Problems) -> dict[str, dict[str, str]]:
    mapping = problems.mapping(value, "debugger")
    if mapping is None:
        return {}
    problems.known_keys(mapping, "debugger", ("collections",))
    collections = problems.mapping(mapping.get("collections", {}), "debugger.collections")
    parsed: dict[str, dict[str, str]] = {}
    for name, parameters in (collections or {}).items():
        path = _join("debugger.collections", name)
        if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", name):
            problems.add(path, "collection names are letters, digits and _")
            continue
        entries = problems.mapping(parameters if parameters is not None else {}, path)
        if entries is None:
            continue
        parsed[name] = {}
        for key, item in entries.items():
            if isinstance(item, bool) or not isinstance(item, str | int):
                problems.add(_join(path, key), f"expected a string or an integer, got {_describe(item)}")
            else:
                parsed[name][key] = str(item)
    _check_collections(parsed, problems)
    return parsed


def _check_collections(collections: Mapping[str, Mapping[str, str]], problems: _Problems) -> None:
    """Validate with the container's own parser, so a bad schedule fails here, not inside every job."""
    if not collections:
        return
    try:
        from training.debugger import config as debugger_config
    except ImportError:
        return
    document = {
        "CollectionConfigurations": [
            {"CollectionName": name, "CollectionParameters": dict(parameters)}
            for name, parameters in collections.items()
        ]
    }
    try:
        hook = debugger_config.parse_debug_hook_config(document, source="debugger.collections")
    except debugger_config.DebuggerConfigError as error:
        problems.add("debugger.collections", str(error).removeprefix("debugger.collections: "))
        return
    for warning in hook.warnings:
        problems.add("debugger.collections", warning)


def _parse_stopping(value: object, rules: Sequence[RuleSpec], problems: _Problems) -> StoppingSettings:
    mapping = problems.mapping(value, "stopping")
    if mapping is None:
        return StoppingSettings()
    problems.known_keys(mapping, "stopping", ("rules", "dry_run"))
    dry_run = problems.boolean(mapping.get("dry_run", False), "stopping.dry_run")
    raw = mapping.get("rules", decision.ALL_RULES)
    stopping_rules: frozenset[str] | None = None
    if raw != decision.ALL_RULES:
        if not isinstance(raw, list) or not raw or not all(isinstance(item, str) for item in raw):
            problems.add(
                "stopping.rules", f"expected '*' or a list of rule configuration names, got {_describe(raw)}"
            )
        else:
            configured = {rule.name for rule in rules}
            for index, item in enumerate(raw):
                if item not in configured:
                    problems.add(_join("stopping.rules", index), f"{item!r} is not a configured rule")
            stopping_rules = frozenset(raw)
    return StoppingSettings(stopping_rules, bool(dry_run))


def _parse_cross_job(value: object, problems: _Problems) -> cross_job_spec.CrossJobSpec | None:
    mapping = problems.mapping(value, "cross_job")
    if mapping is None:
        return None
    problems.known_keys(mapping, "cross_job", cross_job_spec.KEYS)
    before = len(problems.items)
    options: dict[str, Any] = {}
    policy = mapping.get("policy", cross_job.Policy.ASHA.value)
    if policy not in {item.value for item in cross_job.Policy}:
        problems.add("cross_job.policy", f"{_describe(policy)} is not one of {', '.join(cross_job.Policy)}")
    else:
        options["policy"] = cross_job.Policy(policy)
    for key in ("grace_period", "min_reports", "keep_best"):
        if key in mapping:
            options[key] = problems.integer(mapping[key], f"cross_job.{key}", minimum=1)
    if "reduction_factor" in mapping:
        options["reduction_factor"] = problems.number(
            mapping["reduction_factor"], "cross_job.reduction_factor"
        )
    if "rung_levels" in mapping:
        levels = mapping["rung_levels"]
        if not isinstance(levels, list) or not levels:
            problems.add("cross_job.rung_levels", f"expected a list of step counts, got {_describe(levels)}")
        else:
            checked = [
                problems.integer(level, _join("cross_job.rung_levels", index), minimum=1)
                for index, level in enumerate(levels)
            ]
            options["rung_levels"] = tuple(level for level in checked if level is not None)
    if "dry_run" in mapping:
        options["dry_run"] = problems.boolean(mapping["dry_run"], "cross_job.dry_run")
    if len(problems.items) > before:
        return None
    section = cross_job_spec.CrossJobSpec(**options)
    # The core's own checks (reduction factor >= 2, min_reports >= 2, ...), with a placeholder budget.
    try:
        section.settings(
            goal=cross_job.MAXIMIZE, max_steps=max(2, *section.rung_levels, section.grace_period + 1)
        )
    except cross_job.SettingsError as error:
        problems.add("cross_job", str(error))
        return None
    return section


def _parse_tags(value: object, problems: _Problems) -> dict[str, str]:
    mapping = problems.mapping(value, "tags")
    if mapping is None:
        return {}
    if len(mapping) > MAX_USER_TAGS:
        problems.add("tags", f"at most {MAX_USER_TAGS} tags (SageMaker allows 50; autostop adds its own)")
    tags: dict[str, str] = {}
    for key, item in mapping.items():
        path = _join("tags", key)
        if not decision.TAG_KEY_PATTERN.fullmatch(key):
            problems.add(path, "tag keys are 1-128 letters, digits, spaces and _.:/=+-@")
        elif key.lower().startswith(RESERVED_TAG_PREFIXES):
            problems.add(path, "keys starting with 'aws:' or 'autostop' are reserved (autostop sets them)")
        elif not isinstance(item, str | int | float) or isinstance(item, bool):
            problems.add(path, f"expected a string, got {_describe(item)}")
        elif not decision.TAG_VALUE_PATTERN.fullmatch(str(item)):
            problems.add(path, "tag values are 0-256 letters, digits, spaces and _.:/=+-@")
        else:
            tags[key] = str(item)
    return tags


S3_URI_PATTERN = re.compile(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?")
IMAGE_URI_PATTERN = re.compile(
    r"[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9._/-]+(:[\w.-]+|@sha256:[0-9a-f]{64})"
)
ROLE_ARN_PATTERN = re.compile(r"arn:aws[a-z\-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}")
INSTANCE_TYPE_PATTERN = re.compile(r"ml\.[a-z0-9]+\.[a-z0-9]+")
REGION_PATTERN = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
HARDWARE_KINDS = ("cpu", "gpu")
# SageMaker's accelerated instance families with NVIDIA GPUs: ml.g4dn, ml.g5, ml.g6, ml.p3, ml.p4d, ml.p5 ...
GPU_INSTANCE_PATTERN = re.compile(r"ml\.[gp][0-9][a-z0-9]*\.[a-z0-9]+")


def instance_hardware(instance_type: str) -> str:
    """``gpu`` for the GPU instance families (ml.g*, ml.p*), ``cpu`` otherwise."""
    return "gpu" if GPU_INSTANCE_PATTERN.fullmatch(instance_type) else "cpu"


def image_for_instance(settings: SageMakerSettings) -> str | None:
    """The image the instance type needs: ``image_uri`` if given, else the CPU or GPU image."""
    if settings.image_uri:
        return settings.image_uri
    if instance_hardware(settings.instance_type) == "gpu":
        return settings.gpu_image_uri
    return settings.cpu_image_uri


SAGEMAKER_KEYS = (
    "image_uri",
    "image_hardware",
    "cpu_image_uri",
    "gpu_image_uri",
    "role_arn",
    "region",
    "instance_type",
    "volume_size_gb",
    "max_run_seconds",
    "output_path",
    "debugger_output_path",
    "managed_rules",
    "in_container_rules",
    "put_events",
    "alarm_prefix",
    "poll_seconds",
    "spot",
    "network_isolation",
    "custom_rule_image_uri",
    "scope_parameter",
)
SSM_PARAMETER_NAME_PATTERN = re.compile(r"[a-zA-Z0-9_.\-/]{1,2048}")


def _check_image_hardware(settings: Mapping[str, Any], problems: _Problems) -> None:
    """Refuse an image built for other hardware than the instance type's: a CPU image on a GPU instance
    trains on the CPU at GPU prices; the GPU image on a CPU instance pulls CUDA libraries it cannot use."""
    instance_type = str(settings.get("instance_type", SageMakerSettings.instance_type))
    needed = instance_hardware(instance_type)
    if settings.get("image_uri"):
        given = str(settings.get("image_hardware", SageMakerSettings.image_hardware))
        if given != needed:
            problems.add(
                "sagemaker.image_uri",
                f"is a {given.upper()} image (image_hardware: {given}) but {instance_type} is a "
                f"{needed.upper()} instance: use the {needed.upper()} image (image_hardware: {needed})",
            )
        return
    if not settings.get("cpu_image_uri") and not settings.get("gpu_image_uri"):
        return  # no image in the spec: --image-uri must give one (checked when launching)
    if not settings.get(f"{needed}_image_uri"):
        other = "gpu" if needed == "cpu" else "cpu"
        problems.add(
            f"sagemaker.{needed}_image_uri",
            f"missing: {instance_type} is a {needed.upper()} instance and only the {other.upper()} image "
            f"({other}_image_uri) is given",
        )


def _parse_sagemaker(value: object, problems: _Problems) -> SageMakerSettings:
    mapping = problems.mapping(value, "sagemaker")
    if mapping is None:
        return SageMakerSettings()
    problems.known_keys(mapping, "sagemaker", SAGEMAKER_KEYS)
    settings: dict[str, Any] = {}
    patterns = {
        "image_uri": (
            IMAGE_URI_PATTERN,
            "an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>)",
        ),
        "cpu_image_uri": (IMAGE_URI_PATTERN, "an ECR image URI (the training stack's CpuImageUri)"),
        "gpu_image_uri": (IMAGE_URI_PATTERN, "an ECR image URI (the training stack's GpuImageUri)"),
        "custom_rule_image_uri": (
            IMAGE_URI_PATTERN,
            "an ECR image URI (AWS's <account>.dkr.ecr.<region>.amazonaws.com/"
            "sagemaker-debugger-rule-evaluator:latest)",
        ),
        "role_arn": (ROLE_ARN_PATTERN, "an IAM role ARN"),
        "scope_parameter": (SSM_PARAMETER_NAME_PATTERN, "an SSM parameter name (ScopeParameterName)"),
        "region": (REGION_PATTERN, "an AWS region"),
        "instance_type": (INSTANCE_TYPE_PATTERN, "a SageMaker instance type (ml.<family>.<size>)"),
        "output_path": (S3_URI_PATTERN, "an s3:// URI"),
        "debugger_output_path": (S3_URI_PATTERN, "an s3:// URI"),
        "alarm_prefix": (decision.ALARM_PREFIX_PATTERN, "an alarm name prefix (letters, digits, _.:=+@/-)"),
    }
    for key, (pattern, what) in patterns.items():
        if key in mapping:
            text = problems.text(mapping[key], _join("sagemaker", key), pattern=pattern, what=what)
            if text is not None:
                settings[key] = text
    for key, minimum, maximum in (("volume_size_gb", 1, 16384), ("max_run_seconds", 60, 28 * 24 * 3600)):
        if key in mapping:
            number = problems.integer(mapping[key], _join("sagemaker", key), minimum=minimum, maximum=maximum)
            if number is not None:
                settings[key] = number
    for key in ("managed_rules", "in_container_rules", "put_events", "network_isolation"):
        if key in mapping:
            flag = problems.boolean(mapping[key], _join("sagemaker", key))
            if flag is not None:
                settings[key] = flag
    if "poll_seconds" in mapping:
        poll = problems.number(mapping["poll_seconds"], "sagemaker.poll_seconds")
        if poll is not None and poll <= 0:
            problems.add("sagemaker.poll_seconds", "must be > 0")
        elif poll is not None:
            settings["poll_seconds"] = poll
    if "spot" in mapping and mapping["spot"] is not None:
        spot = problems.mapping(mapping["spot"], "sagemaker.spot")
        if spot is not None:
            problems.known_keys(spot, "sagemaker.spot", ("max_wait_seconds", "checkpoint_s3_uri"))
            wait = problems.integer(
                spot.get("max_wait_seconds"), "sagemaker.spot.max_wait_seconds", minimum=1
            )
            uri = problems.text(
                spot.get("checkpoint_s3_uri"),
                "sagemaker.spot.checkpoint_s3_uri",
                pattern=S3_URI_PATTERN,
                what="an s3:// URI",
            )
            max_run = settings.get("max_run_seconds", SageMakerSettings.max_run_seconds)
            if wait is not None and wait < max_run:
                problems.add(
                    "sagemaker.spot.max_wait_seconds", f"must be >= max_run_seconds ({max_run}), got {wait}"
                )
            elif wait is not None and uri is not None:
                settings["spot"] = SpotSettings(wait, uri)
    if "image_hardware" in mapping:
        hardware = mapping["image_hardware"]
        if hardware in HARDWARE_KINDS:
            settings["image_hardware"] = hardware
        else:
            problems.add("sagemaker.image_hardware", f"must be one of {', '.join(HARDWARE_KINDS)}")
    _check_image_hardware(settings, problems)
    if settings.get("in_container_rules") is False and not settings.get("managed_rules"):
        problems.add(
            "sagemaker", "in_container_rules and managed_rules are both off: nothing would find issues"
        )
    return SageMakerSettings(**settings)


# --- Expansion ---


def _grid(parameters: Mapping[str, ParameterValues]) -> Iterator[dict[str, object]]:
    names = list(parameters)
    lists = [parameters[name] for name in names]
    for combination in itertools.product(*lists):  # type: ignore[arg-type]  # grids hold tuples only
        yield dict(zip(names, combination, strict=True))


def _random(
    parameters: Mapping[str, ParameterValues], samples: int, seed: int
) -> Iterator[dict[str, object]]:
    rng = random.Random(seed)  # noqa: S311  # reproducible sampling, not security
    for _ in range(samples):
        drawn: dict[str, object] = {}
        for name, values in parameters.items():
            drawn[name] = values.sample(rng) if isinstance(values, Distribution) else rng.choice(values)
        yield drawn


def configurations(spec: SweepSpec) -> list[dict[str, object]]:
    """The swept values of every job, in launch order: grid/samples first, then ``include``."""
    if spec.strategy == "random":
        drawn = list(_random(spec.parameters, spec.samples or 0, spec.seed)) if spec.parameters else []
    else:
        drawn = list(_grid(spec.parameters)) if spec.parameters else []
    return drawn + [dict(entry) for entry in spec.include]


def _job_hyperparameters(spec: SweepSpec, params: Mapping[str, object]) -> tuple[dict[str, str], str | None]:
    variant = params.get(VARIANT)
    merged: dict[str, object] = {"seed": spec.seed}
    merged.update(spec.hyperparameters)
    if isinstance(variant, str):
        merged.update(spec.variants[variant])
    merged.update({key: value for key, value in params.items() if key not in SPECIAL_PARAMETERS})
    merged["steps"] = spec.steps_per_job
    return {key: hyperparameter_text(value) for key, value in merged.items()}, variant if isinstance(
        variant, str
    ) else None


def _job_dataset(spec: SweepSpec, params: Mapping[str, object]) -> Dataset | None:
    chosen = params.get(DATASET)
    if isinstance(chosen, str):
        return spec.datasets.get(chosen)
    if len(spec.datasets) == 1:
        return next(iter(spec.datasets.values()))
    return None


def expand(spec: SweepSpec) -> list[JobConfig]:
    jobs: list[JobConfig] = []
    for index, params in enumerate(configurations(spec), start=1):
        hyperparameters, variant = _job_hyperparameters(spec, params)
        dataset = _job_dataset(spec, params)
        if dataset is None:  # excluded by validation
            raise SpecError(spec.source, [f"job {index}: no dataset"])
        jobs.append(
            JobConfig(index, job_name(spec.name, index), dict(params), hyperparameters, dataset, variant)
        )
    return jobs


def _check_expansion(spec: SweepSpec, problems: list[str]) -> None:
    """Problems only the expanded jobs show: too many, duplicates, no dataset, invalid combinations."""
    if len(spec.datasets) > 1 and DATASET not in spec.parameters:
        missing = [index for index, entry in enumerate(spec.include) if DATASET not in entry]
        if spec.parameters or missing:
            problems.append(
                f"datasets: {len(spec.datasets)} datasets are defined; choose per job with "
                "search.parameters.dataset (or a dataset in every search.include entry)"
            )
            return
    all_configurations = configurations(spec)
    if len(all_configurations) > MAX_JOBS:
        problems.append(f"search: {len(all_configurations)} jobs; at most {MAX_JOBS} per sweep")
        return
    seen: dict[str, int] = {}
    for index, params in enumerate(all_configurations, start=1):
        hyperparameters, _ = _job_hyperparameters(spec, params)
        key = json.dumps({**hyperparameters, DATASET: str(params.get(DATASET, ""))}, sort_keys=True)
        if key in seen:
            problems.append(
                f"search: job {index} ({_label(params)}) trains exactly like job {seen[key]}: "
                "remove the duplicate"
            )
            continue
        seen[key] = index
        try:
            hparams_module.from_mapping(hyperparameters)
        except hparams_module.HyperparameterError as error:
            problems.append(f"search: job {index} ({_label(params) or 'defaults'}): {error}")


def _label(params: Mapping[str, object]) -> str:
    return " ".join(f"{key}={format_value(value)}" for key, value in params.items())
