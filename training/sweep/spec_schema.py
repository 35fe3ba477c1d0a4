"""The sweep spec's schema: the validated spec's types, its vocabulary and its limits.

Why a module of its own: the spec's users (the local runner, the SageMaker launcher, the report, the CLI)
need the validated types, not the code that builds them; this module is what every other spec module
imports, and it imports none of them at load time. ``SweepSpec.jobs`` and ``SweepSpec.with_overrides``
reach the search expansion (``spec_search``) and the expansion check (``spec_validation``) at call time,
since those build on these types.

Every value here has already been checked by ``spec_validation``: the types hold no checks of their own.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lambdas.stop_training_job import cross_job, decision
from lambdas.stop_training_job.cross_job import CrossJobSettings  # SweepSpec.cross_job hides the module

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
OPT_IN_TAG_KEY = decision.DEFAULT_TAG_KEY
RESERVED_TAG_PREFIXES = ("aws:", "autostop")
HARDWARE_KINDS = ("cpu", "gpu")
# SageMaker's accelerated instance families with NVIDIA GPUs: ml.g4dn, ml.g5, ml.g6, ml.p3, ml.p4d, ml.p5 ...
GPU_INSTANCE_PATTERN = re.compile(r"ml\.[gp][0-9][a-z0-9]*\.[a-z0-9]+")


class SpecError(ValueError):
    """The spec is unusable. ``problems`` lists every finding, each starting with its key path."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        listing = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"invalid sweep spec {source}: {len(self.problems)} problem(s)\n{listing}")


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
class CrossJobSpec:
    """The ``cross_job`` section: compare the sweep's jobs with each other and stop the worse ones.

    The per-job rules judge one job against its own history; this judges a job against its siblings at the
    same amount of training (``lambdas/stop_training_job/cross_job.py``, one pure core for the local runner
    and the Lambda). Example::

        cross_job:
          policy: asha            # asha (asynchronous successive halving) | median (median stopping rule)
          grace_period: 50        # first rung, in training steps (then grace_period * reduction_factor**k);
                                  # default: the jobs' first validation (hyperparameters.validation_interval)
          reduction_factor: 2     # asha: keep the best 1/reduction_factor at each rung
          rung_levels: [100, 400] # optional: explicit rungs instead of the geometric series
          min_reports: 3          # no judgement at a rung until this many jobs reported there
          keep_best: 1            # the best k at a rung are never stopped
          rejudge: true           # judged again at each later validation, against the rung as it fills up
          dry_run: false          # log what would be stopped, stop nothing

    The objective and its direction are the spec's ``objective``; a rung is judged on the validation value
    of that metric at the first validation at or after the rung. The section becomes ``CrossJobSettings``
    for the spec's budget and validation interval (``settings``), so a budget override (``--steps``) moves
    the rungs with it. The defaults are the core's (its docstring says why).
    """

    policy: cross_job.Policy
    grace_period: int | None = None  # None: the jobs' first validation
    reduction_factor: float = cross_job.DEFAULT_REDUCTION_FACTOR
    rung_levels: tuple[int, ...] = ()
    min_reports: int = cross_job.DEFAULT_MIN_REPORTS
    keep_best: int = cross_job.DEFAULT_KEEP_BEST
    rejudge: bool = cross_job.DEFAULT_REJUDGE
    dry_run: bool = False

    def settings(
        self, *, goal: str, max_steps: int, hyperparameters: Mapping[str, object] | None = None
    ) -> cross_job.CrossJobSettings:
        return cross_job.CrossJobSettings(
            policy=self.policy,
            goal=goal,
            max_steps=max_steps,
            grace_period=self.grace_period,
            validation_interval=validation_interval(hyperparameters or {}),
            reduction_factor=self.reduction_factor,
            rung_levels=self.rung_levels,
            min_reports=self.min_reports,
            keep_best=self.keep_best,
            rejudge=self.rejudge,
            dry_run=self.dry_run,
        )


def validation_interval(hyperparameters: Mapping[str, object]) -> int:
    """Steps between the jobs' validations: the spec's hyperparameter, else the training container's default.

    0 (validate only at the end) also gives the default: such jobs report at no rung before their end, so
    where the rungs lie does not matter to them.
    """
    value = int(str(hyperparameters.get("validation_interval", cross_job.DEFAULT_VALIDATION_INTERVAL)))
    return value if value >= 1 else cross_job.DEFAULT_VALIDATION_INTERVAL


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
        return parameters_label(self.params)


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
    cross_job: CrossJobSpec | None = None

    def cross_job_settings(self) -> CrossJobSettings | None:
        """The cross-job comparison for this spec's objective and budget (``None``: jobs are not compared)."""
        if self.cross_job is None:
            return None
        return self.cross_job.settings(
            goal=self.objective.goal, max_steps=self.steps_per_job, hyperparameters=self.hyperparameters
        )

    def jobs(self) -> list[JobConfig]:
        """The job configurations (validated when the spec was loaded, so this cannot fail)."""
        from training.sweep import spec_search  # at call time: the expansion builds on this module

        return spec_search.expand(self)

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
        from training.sweep import spec_validation  # at call time: the validation builds on this module

        replaced = dataclasses.replace(self, **changes)
        problems: list[str] = []
        spec_validation.check_expansion(replaced, problems)
        if problems:
            raise SpecError(self.source, problems)
        return replaced


def job_name(sweep_name: str, index: int) -> str:
    return f"{sweep_name}-{index:0{JOB_NUMBER_WIDTH}d}"


def format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parameters_label(params: Mapping[str, object]) -> str:
    """Swept values as ``key=value`` words (``learning_rate=0.003 variant=deep_saturating``)."""
    return " ".join(f"{key}={format_value(value)}" for key, value in params.items())


def hyperparameter_text(value: object) -> str:
    """A hyperparameter as the string SageMaker stores (``0.001`` -> ``"0.001"``, ``1e-05`` stays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


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
