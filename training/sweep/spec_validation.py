"""Validating a sweep spec: a parsed document into a ``SweepSpec``, every problem named, one ``SpecError``.

Why validate everything before the first job: a sweep costs hours of compute; a typo found after ten jobs
ran (an unknown rule, a learning rate list with a string in it, an image size the preset cannot take)
wastes them. ``load_spec`` collects every problem it finds, each naming its key path
(``search.parameters.learning_rate[2]: learning_rate must be a number, got 'fast'``), and raises one
``SpecError`` listing them all.

This module checks the top level and the objective, hands each other section to the module that knows it
(``spec_validation_training``, ``spec_validation_stopping``, ``spec_validation_sagemaker``), and last checks
what only the expanded jobs show (``check_expansion``).
"""

from __future__ import annotations

import json
from pathlib import Path

from training import hparams as hparams_module
from training.sweep import spec_search
from training.sweep.spec_parsing import Problems, describe, read_document
from training.sweep.spec_schema import (
    DATASET,
    DEFAULT_OBJECTIVE_METRIC,
    GOALS,
    MAX_JOBS,
    MAX_PARALLEL_JOBS,
    MAX_SWEEP_NAME_LENGTH,
    OBJECTIVE_METRICS,
    SWEEP_NAME_PATTERN,
    Objective,
    SpecError,
    SweepSpec,
    parameters_label,
)
from training.sweep.spec_validation_sagemaker import parse_sagemaker, parse_tags
from training.sweep.spec_validation_stopping import (
    parse_cross_job,
    parse_debugger,
    parse_rules,
    parse_stopping,
)
from training.sweep.spec_validation_training import (
    parse_datasets,
    parse_hyperparameter_mapping,
    parse_search,
    parse_variants,
)

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


def load_spec(path: str | Path) -> SweepSpec:
    """Read, validate and check the expansion of a spec file; ``SpecError`` lists every problem."""
    spec_path = Path(path)
    return parse_spec(read_document(spec_path), source=str(spec_path))


def parse_spec(document: object, *, source: str = "<spec>") -> SweepSpec:
    """Validate a parsed document (plain data) into a ``SweepSpec``; ``SpecError`` lists every problem."""
    problems = Problems()
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
        problems.add("description", f"expected a string, got {describe(description)}")
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
    hyperparameters = parse_hyperparameter_mapping(
        root.get("hyperparameters", {}), "hyperparameters", problems
    )
    variants = parse_variants(root.get("variants", {}), problems)
    datasets = parse_datasets(root.get("datasets"), problems) if "datasets" in root else {}
    strategy, samples, parameters, include = parse_search(root.get("search"), problems, variants, datasets)
    rules = parse_rules(root.get("rules"), problems) if "rules" in root else ()
    collections = parse_debugger(root.get("debugger", {}), problems)
    stopping = parse_stopping(root.get("stopping", {}), rules, problems)
    tags = parse_tags(root.get("tags", {}), problems)
    sagemaker = parse_sagemaker(root.get("sagemaker", {}), problems)
    compare_jobs = parse_cross_job(root["cross_job"], problems) if "cross_job" in root else None

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
    check_expansion(spec, problems.items)
    if problems.items:
        raise SpecError(source, problems.items)
    return spec


def _parse_objective(value: object, problems: Problems) -> Objective:
    mapping = problems.mapping(value, "objective")
    if mapping is None:
        return Objective()
    problems.known_keys(mapping, "objective", ("metric", "goal"))
    metric = mapping.get("metric", DEFAULT_OBJECTIVE_METRIC)
    if metric not in OBJECTIVE_METRICS:
        problems.add("objective.metric", f"{describe(metric)} is not one of {', '.join(OBJECTIVE_METRICS)}")
        return Objective()
    goal = mapping.get("goal", OBJECTIVE_METRICS[metric])
    if goal not in GOALS:
        problems.add("objective.goal", f"{describe(goal)} is not one of {', '.join(GOALS)}")
        return Objective(metric, OBJECTIVE_METRICS[metric])
    return Objective(metric, goal)


def check_expansion(spec: SweepSpec, problems: list[str]) -> None:
    """Problems only the expanded jobs show: too many, duplicates, no dataset, invalid combinations."""
    if len(spec.datasets) > 1 and DATASET not in spec.parameters:
        missing = [index for index, entry in enumerate(spec.include) if DATASET not in entry]
        if spec.parameters or missing:
            problems.append(
                f"datasets: {len(spec.datasets)} datasets are defined; choose per job with "
                "search.parameters.dataset (or a dataset in every search.include entry)"
            )
            return
    all_configurations = spec_search.configurations(spec)
    if len(all_configurations) > MAX_JOBS:
        problems.append(f"search: {len(all_configurations)} jobs; at most {MAX_JOBS} per sweep")
        return
    seen: dict[str, int] = {}
    for index, params in enumerate(all_configurations, start=1):
        hyperparameters, _ = spec_search.job_hyperparameters(spec, params)
        key = json.dumps({**hyperparameters, DATASET: str(params.get(DATASET, ""))}, sort_keys=True)
        if key in seen:
            problems.append(
                f"search: job {index} ({parameters_label(params)}) trains exactly like job {seen[key]}: "
                "remove the duplicate"
            )
            continue
        seen[key] = index
        try:
            hparams_module.from_mapping(hyperparameters)
        except hparams_module.HyperparameterError as error:
            problems.append(f"search: job {index} ({parameters_label(params) or 'defaults'}): {error}")
