"""One job's ``CreateTrainingJob``, built by the SageMaker Python SDK 2.x ``Estimator``.

Why SDK 2.x: 3.x has no ``Estimator`` and no Debugger rules API. Each job is an ``Estimator`` of the
project's training image with:

- the job's hyperparameters (strings), plus the in-container evaluator's settings (its rule configurations in
  SageMaker's ``DebugRuleConfigurations`` shape, ``PutEvents`` on) and, for a sweep with a ``cross_job``
  section, ``autostop_cross_job``: the comparison's settings, objective and sweep name, which the container
  reports rungs by and the stop Lambda judges with (``lambdas/stop_training_job/sweep_settings.py``);
- ``DebuggerHookConfig`` with the spec's collections (and those the rules need), so the container records
  Debugger-format tensors where SageMaker and managed rules expect them;
- ``Rule.sagemaker(rule_configs.<rule>(), rule_parameters=..., collections_to_save=...)`` for every rule that
  is a managed built-in, when ``sagemaker.managed_rules`` is on (accounts that still have managed Debugger);
  ``collections_to_save`` repeats the hook's own collection configurations so the request carries each
  collection once (a rule_configs default would add its own at save_interval 500);
- ``LatentClusterRule`` as a SageMaker custom rule (``custom_rules``);
- the opt-in tag ``autostop=enabled`` (the stop Lambda stops nothing without it), ``autostop:sweep`` and the
  spec's tags;
- metric definitions for the training metric lines (docs/training.md), the step, and the rule lines
  ``rule:<Name>=1`` (docs/debugger.md), which feed the per-job alarms;
- optional managed spot training (``use_spot_instances``, ``max_wait``, ``checkpoint_s3_uri``).

The SDK only builds the request: ``sdk.request_of`` runs ``fit`` against a recording client, and the
launcher sends the request itself (``sdk.py`` says why).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from lambdas.stop_training_job import decision, sweep_settings
from training.sweep import spec as spec_module
from training.sweep.sagemaker import custom_rules
from training.sweep.sagemaker.settings import CUSTOM_RULES, SWEEP_TAG_KEY, LaunchSettings

# The training metric lines (training/callbacks.py METRIC_DEFINITIONS, docs/training.md), repeated here so the
# launcher needs no TensorFlow; tests/training/sweep compare both. The leading space keeps " loss=" from
# matching inside "val_loss=".
TRAINING_METRIC_DEFINITIONS: tuple[dict[str, str], ...] = (
    {"Name": "train:loss", "Regex": " loss=(\\S+)"},
    {"Name": "train:ssim", "Regex": " ssim=(\\S+)"},
    {"Name": "train:l2", "Regex": " l2=(\\S+)"},
    {"Name": "train:learning_rate", "Regex": " learning_rate=(\\S+)"},
    {"Name": "validation:loss", "Regex": " val_loss=(\\S+)"},
    {"Name": "validation:ssim", "Regex": " val_ssim=(\\S+)"},
    {"Name": "validation:l2", "Regex": " val_l2=(\\S+)"},
)
# The global step of each training metric line ("step=120 loss=..."; validation lines have " val_loss=").
STEP_METRIC_DEFINITION = {"Name": "train:step", "Regex": "step=([0-9]+) loss="}
# Debugger rules that managed Debugger offers as built-ins (sagemaker.debugger.rule_configs functions).
MANAGED_RULE_FUNCTIONS = {
    "LossNotDecreasing": "loss_not_decreasing",
    "VanishingGradient": "vanishing_gradient",
    "ExplodingTensor": "exploding_tensor",
    "Overfit": "overfit",
}
# Collections each in-container rule reads (training/debugger/rules.py REQUIRED_COLLECTIONS), used when that
# module cannot be imported.
FALLBACK_REQUIRED_COLLECTIONS = {
    "LossNotDecreasing": ("losses",),
    "VanishingGradient": ("gradients",),
    "ExplodingTensor": ("losses", "gradients"),
    "Overfit": ("losses",),
    "LatentClusterRule": ("embeddings",),
}
# Rules that run as SageMaker custom rules (Rule.custom) when managed rules are on; the rest of a spec's
# rules that are not managed built-ins run in the container only.
# The in-container evaluator's hyperparameters (docs/debugger.md).
RULES_HYPERPARAMETER = "debugger_rules"
PUT_EVENTS_HYPERPARAMETER = "debugger_put_events"
CROSS_JOB_HYPERPARAMETER = decision.CROSS_JOB_HYPERPARAMETER


def required_collections(rules: Iterable[spec_module.RuleSpec]) -> list[str]:
    try:
        from training.debugger import rules as rules_module

        table = {name: rule.REQUIRED_COLLECTIONS for name, rule in rules_module.RULES.items()}
    except ImportError:
        table = dict(FALLBACK_REQUIRED_COLLECTIONS)
    needed: list[str] = []
    for rule in rules:
        needed.extend(table.get(rule.rule_to_invoke, ()))
    return list(dict.fromkeys(needed))


def metric_definitions(spec: spec_module.SweepSpec) -> list[dict[str, str]]:
    """Training metrics, the step, and one ``rule:<Name>`` metric per configured rule."""
    from training.debugger import signals

    rule_metrics = signals.metric_definitions(rule.name for rule in spec.rules)
    return [*TRAINING_METRIC_DEFINITIONS, STEP_METRIC_DEFINITION, *rule_metrics]


def job_tags(spec: spec_module.SweepSpec, job: spec_module.JobConfig) -> list[dict[str, str]]:
    tags = [
        {"Key": decision.DEFAULT_TAG_KEY, "Value": decision.DEFAULT_TAG_VALUE},
        {"Key": SWEEP_TAG_KEY, "Value": spec.name},
    ]
    tags += [{"Key": key, "Value": value} for key, value in spec.tags.items()]
    return tags


def container_hyperparameters(
    spec: spec_module.SweepSpec, job: spec_module.JobConfig, launch: LaunchSettings
) -> dict[str, str]:
    """The job's hyperparameters plus the in-container evaluator's (rules; PutEvents unless isolated) and the
    sweep's cross-job comparison (when the spec has one)."""
    hyperparameters = dict(job.hyperparameters)
    if launch.settings.in_container_rules:
        hyperparameters[RULES_HYPERPARAMETER] = json.dumps(spec.rule_configurations(), separators=(",", ":"))
        put_events = launch.settings.put_events and not launch.settings.network_isolation
        hyperparameters[PUT_EVENTS_HYPERPARAMETER] = "true" if put_events else "false"
    comparison = cross_job_hyperparameter(spec)
    if comparison is not None:
        hyperparameters[CROSS_JOB_HYPERPARAMETER] = comparison
    return hyperparameters


def cross_job_hyperparameter(spec: spec_module.SweepSpec) -> str | None:
    """``autostop_cross_job`` for every job of the sweep (``None``: its jobs are not compared). The same for
    all of them: the sweep's name is the table partition their objectives are recorded in."""
    settings = spec.cross_job_settings()
    if settings is None:
        return None
    return sweep_settings.encode(
        sweep_settings.SweepComparison(sweep=spec.name, metric=spec.objective.metric, settings=settings)
    )


def build_estimator(
    spec: spec_module.SweepSpec, job: spec_module.JobConfig, launch: LaunchSettings, session: Any
) -> Any:
    """The job's ``sagemaker.estimator.Estimator`` (nothing is sent until ``fit``)."""
    from sagemaker.debugger import CollectionConfig, DebuggerHookConfig, Rule, rule_configs
    from sagemaker.estimator import Estimator

    settings = launch.settings
    collection_names = list(dict.fromkeys([*spec.debugger_collections, *required_collections(spec.rules)]))
    collections = {
        name: CollectionConfig(name, parameters=dict(spec.debugger_collections.get(name, {})) or None)
        for name in collection_names
    }
    output_path = (settings.output_path or "").rstrip("/")  # required by LaunchSettings.resolve
    hook = DebuggerHookConfig(
        s3_output_path=settings.debugger_output_path or f"{output_path}/debug-output",
        collection_configs=list(collections.values()),
    )
    managed_rules = []
    if settings.managed_rules:
        for rule in spec.rules:
            parameters = {key: value for key, value in rule.parameters.items() if key != "rule_to_invoke"}
            rule_collections = [
                collections[name] for name in required_collections([rule]) if name in collections
            ]
            if rule.rule_to_invoke in CUSTOM_RULES:
                if settings.custom_rule_image_uri:
                    managed_rules.append(
                        Rule.custom(
                            **custom_rules.custom_rule_arguments(rule.name, parameters, launch),
                            collections_to_save=rule_collections,
                        )
                    )
                continue  # without the evaluator image: evaluated in the container only
            function_name = MANAGED_RULE_FUNCTIONS.get(rule.rule_to_invoke)
            if function_name is None:
                continue  # an in-container rule only
            managed_rules.append(
                Rule.sagemaker(
                    getattr(rule_configs, function_name)(),
                    name=rule.name,
                    rule_parameters=parameters,
                    collections_to_save=rule_collections,
                )
            )
    spot: dict[str, Any] = {}
    if settings.spot is not None:
        spot = {
            "use_spot_instances": True,
            "max_wait": settings.spot.max_wait_seconds,
            "checkpoint_s3_uri": f"{settings.spot.checkpoint_s3_uri.rstrip('/')}/{job.name}",
        }
    return Estimator(
        image_uri=launch.image_uri,
        role=launch.role_arn,
        instance_count=1,
        instance_type=settings.instance_type,
        volume_size=settings.volume_size_gb,
        max_run=settings.max_run_seconds,
        output_path=settings.output_path,
        hyperparameters=container_hyperparameters(spec, job, launch),
        metric_definitions=metric_definitions(spec),
        tags=job_tags(spec, job),
        debugger_hook_config=hook,
        rules=managed_rules or None,
        disable_profiler=True,
        enable_network_isolation=settings.network_isolation,
        sagemaker_session=session,
        **spot,
    )


def training_inputs(job: spec_module.JobConfig) -> dict[str, Any]:
    from sagemaker.inputs import TrainingInput

    return {channel: TrainingInput(location) for channel, location in job.dataset.channels.items()}
