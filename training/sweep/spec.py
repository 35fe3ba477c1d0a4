"""The sweep spec: a YAML (or TOML) file, validated up front, expanded into named job configurations.

Why this module: it is the one import the spec's users need (``from training.sweep import spec``); the work
is done by one module a job, each re-exported here unchanged:

- ``spec_schema``: the validated spec's types (``SweepSpec``, ``JobConfig``, ``SpecError``, ...), its
  vocabulary and limits.
- ``spec_parsing``: the file into plain data (``read_document``) and the problem collector.
- ``spec_validation``: a document into a ``SweepSpec`` (``load_spec``, ``parse_spec``), every problem
  named with its key path in one ``SpecError``; the sections are checked by ``spec_validation_training``
  (hyperparameters, variants, datasets, search), ``spec_validation_stopping`` (rules, debugger, stopping,
  cross_job) and ``spec_validation_sagemaker`` (sagemaker, tags).
- ``spec_search``: a validated spec expanded into its jobs (grid or random search, then ``include``).

A module rather than a ``spec`` package: the shipped specs are found next to it
(``Path(spec.__file__).parent / "specs"``), and every ``spec.<name>`` of before still resolves here.

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
    cross_job: {policy: asha, grace_period: 100}      # compare the jobs with each other (``CrossJobSpec``)
    tags: {team: vision}
    sagemaker: {...}                # the SageMaker backend's settings (``SageMakerSettings``)

Swept parameters are the training hyperparameters (``training/hparams.py``: ``learning_rate``, ``decay``,
``batch_size``, ``loss``, ``preset``, ...) plus ``dataset`` and ``variant``. Expansion is deterministic: the
same spec gives the same jobs, in the same order, with the same names, on every machine.

These modules import neither TensorFlow nor boto3. Rule names and parameters are checked against the
in-container evaluator's rules (``training/debugger/rules.py``, imported lazily: it loads smdebug).
"""

from __future__ import annotations

from training.sweep.spec_parsing import SPEC_SUFFIXES, read_document
from training.sweep.spec_schema import (
    CHANNEL_NAME_PATTERN,
    CHANNELS,
    DATASET,
    DEFAULT_OBJECTIVE_METRIC,
    DISTRIBUTIONS,
    GOALS,
    GPU_INSTANCE_PATTERN,
    HARDWARE_KINDS,
    JOB_NUMBER_WIDTH,
    MAX_JOBS,
    MAX_PARALLEL_JOBS,
    MAX_RULES,
    MAX_SWEEP_NAME_LENGTH,
    MAX_USER_TAGS,
    OBJECTIVE_METRICS,
    OPT_IN_TAG_KEY,
    RESERVED_HYPERPARAMETERS,
    RESERVED_TAG_PREFIXES,
    SPECIAL_PARAMETERS,
    STRATEGIES,
    SWEEP_NAME_PATTERN,
    VARIANT,
    CrossJobSpec,
    Dataset,
    Distribution,
    JobConfig,
    Objective,
    ParameterValues,
    RuleSpec,
    SageMakerSettings,
    SpecError,
    SpotSettings,
    StoppingSettings,
    SweepSpec,
    format_value,
    hyperparameter_text,
    image_for_instance,
    instance_hardware,
    job_name,
    parameters_label,
)
from training.sweep.spec_search import configurations, expand
from training.sweep.spec_validation import REQUIRED_KEYS, TOP_LEVEL_KEYS, load_spec, parse_spec
from training.sweep.spec_validation_sagemaker import (
    IMAGE_URI_PATTERN,
    INSTANCE_TYPE_PATTERN,
    REGION_PATTERN,
    ROLE_ARN_PATTERN,
    S3_URI_PATTERN,
    SAGEMAKER_KEYS,
    SSM_PARAMETER_NAME_PATTERN,
)
from training.sweep.spec_validation_stopping import CROSS_JOB_KEYS, FALLBACK_RULES, FRAMEWORK_RULE_PARAMETERS

__all__ = [
    "CHANNELS",
    "CHANNEL_NAME_PATTERN",
    "CROSS_JOB_KEYS",
    "DATASET",
    "DEFAULT_OBJECTIVE_METRIC",
    "DISTRIBUTIONS",
    "FALLBACK_RULES",
    "FRAMEWORK_RULE_PARAMETERS",
    "GOALS",
    "GPU_INSTANCE_PATTERN",
    "HARDWARE_KINDS",
    "IMAGE_URI_PATTERN",
    "INSTANCE_TYPE_PATTERN",
    "JOB_NUMBER_WIDTH",
    "MAX_JOBS",
    "MAX_PARALLEL_JOBS",
    "MAX_RULES",
    "MAX_SWEEP_NAME_LENGTH",
    "MAX_USER_TAGS",
    "OBJECTIVE_METRICS",
    "OPT_IN_TAG_KEY",
    "REGION_PATTERN",
    "REQUIRED_KEYS",
    "RESERVED_HYPERPARAMETERS",
    "RESERVED_TAG_PREFIXES",
    "ROLE_ARN_PATTERN",
    "S3_URI_PATTERN",
    "SAGEMAKER_KEYS",
    "SPECIAL_PARAMETERS",
    "SPEC_SUFFIXES",
    "SSM_PARAMETER_NAME_PATTERN",
    "STRATEGIES",
    "SWEEP_NAME_PATTERN",
    "TOP_LEVEL_KEYS",
    "VARIANT",
    "CrossJobSpec",
    "Dataset",
    "Distribution",
    "JobConfig",
    "Objective",
    "ParameterValues",
    "RuleSpec",
    "SageMakerSettings",
    "SpecError",
    "SpotSettings",
    "StoppingSettings",
    "SweepSpec",
    "configurations",
    "expand",
    "format_value",
    "hyperparameter_text",
    "image_for_instance",
    "instance_hardware",
    "job_name",
    "load_spec",
    "parameters_label",
    "parse_spec",
    "read_document",
]
