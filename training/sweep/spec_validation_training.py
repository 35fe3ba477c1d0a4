"""Validating what the sweep's jobs train: ``hyperparameters``, ``variants``, ``datasets`` and ``search``.

Why a module of its own: these sections name training hyperparameters, and each value is checked with the
training container's own parser (``training/hparams.py``), so a learning rate the container would refuse
fails here, before any job starts, not inside every job. Combinations of values are checked per job, once
the spec is expanded (``spec_validation.check_expansion``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from training import hparams as hparams_module
from training.sweep.spec_parsing import Problems, describe, join_path
from training.sweep.spec_schema import (
    CHANNELS,
    DATASET,
    DISTRIBUTIONS,
    MAX_JOBS,
    RESERVED_HYPERPARAMETERS,
    SPECIAL_PARAMETERS,
    STRATEGIES,
    VARIANT,
    Dataset,
    Distribution,
    ParameterValues,
    hyperparameter_text,
)

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # variant and dataset names
_DEBUGGER_REASON = "set by the sweep from rules and debugger.collections (docs/sweeps.md)"
_RESERVED_REASONS = {
    "steps": "set the step budget with steps_per_job",
    "epochs": "set the step budget with steps_per_job (epochs are not supported in sweeps)",
}


def _hyperparameter_names() -> tuple[str, ...]:
    return hparams_module.NAMES


def _check_hyperparameter_value(name: str, value: object, path: str, problems: Problems) -> None:
    """Type and range of one value, with the training container's own parser and checks.

    A YAML boolean (``deterministic: true``) is accepted and passed on as SageMaker would store it, the
    string ``"true"``; given to a parameter that is not a switch, the container's parser names the problem.
    """
    if not isinstance(value, str | int | float):  # bool is an int
        problems.add(path, f"expected a string, a number or a boolean, got {describe(value)}")
        return
    try:
        # The value with every other hyperparameter at its default; combinations are checked per job.
        hparams_module.from_mapping({name: hyperparameter_text(value)})
    except hparams_module.HyperparameterError as error:
        problems.add(path, str(error))


def parse_hyperparameter_mapping(value: object, path: str, problems: Problems) -> dict[str, object]:
    mapping = problems.mapping(value, path)
    if mapping is None:
        return {}
    parsed: dict[str, object] = {}
    for key, item in mapping.items():
        key_path = join_path(path, key)
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


def parse_variants(value: object, problems: Problems) -> dict[str, dict[str, object]]:
    mapping = problems.mapping(value, "variants")
    if mapping is None:
        return {}
    variants: dict[str, dict[str, object]] = {}
    for key, item in mapping.items():
        if not NAME_PATTERN.fullmatch(key):
            problems.add(join_path("variants", key), "variant names are 1-64 letters, digits, _ . -")
            continue
        variants[key] = parse_hyperparameter_mapping(
            item if item is not None else {}, join_path("variants", key), problems
        )
    return variants


def parse_datasets(value: object, problems: Problems) -> dict[str, Dataset]:
    mapping = problems.mapping(value, "datasets")
    if mapping is None:
        return {}
    if not mapping:
        problems.add("datasets", "name at least one dataset")
    datasets: dict[str, Dataset] = {}
    for key, item in mapping.items():
        path = join_path("datasets", key)
        if not NAME_PATTERN.fullmatch(key):
            problems.add(path, "dataset names are 1-64 letters, digits, _ . -")
            continue
        channels = problems.mapping(item, path)
        if channels is None:
            continue
        problems.known_keys(channels, path, CHANNELS)
        if "train" not in channels:
            problems.add(join_path(path, "train"), "required (the training channel's folder or s3:// prefix)")
        parsed: dict[str, str] = {}
        for channel in CHANNELS:
            if channel in channels:
                location = problems.text(channels[channel], join_path(path, channel))
                if location is not None:
                    parsed[channel] = location
        kinds = {location.startswith("s3://") for location in parsed.values()}
        if len(kinds) > 1:
            problems.add(path, "channels must all be local folders or all be s3:// prefixes")
        datasets[key] = Dataset(key, parsed)
    return datasets


def parse_search(
    value: object,
    problems: Problems,
    variants: Mapping[str, object],
    datasets: Mapping[str, Dataset],
) -> tuple[str, int | None, dict[str, ParameterValues], tuple[Mapping[str, object], ...]]:
    mapping = problems.mapping(value, "search") if value is not None else None
    if mapping is None:
        return "grid", None, {}, ()
    problems.known_keys(mapping, "search", ("strategy", "samples", "parameters", "include"))
    strategy = mapping.get("strategy", "grid")
    if strategy not in STRATEGIES:
        problems.add("search.strategy", f"{describe(strategy)} is not one of {', '.join(STRATEGIES)}")
        strategy = "grid"
    samples = None
    if strategy == "random":
        samples = problems.integer(mapping.get("samples"), "search.samples", minimum=1, maximum=MAX_JOBS)
    elif "samples" in mapping:
        problems.add("search.samples", "only for strategy: random")

    parameters: dict[str, ParameterValues] = {}
    raw_parameters = problems.mapping(mapping.get("parameters", {}), "search.parameters")
    for key, item in (raw_parameters or {}).items():
        path = join_path("search.parameters", key)
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
            problems.add(path, f"expected a non-empty list of values, got {describe(item)}")
            continue
        values = []
        for index, element in enumerate(item):
            if _check_parameter_value(key, element, join_path(path, index), problems, variants, datasets):
                values.append(element)
        if len(set(map(json.dumps, values))) != len(values):
            problems.add(path, "lists a value twice")
        parameters[key] = tuple(values)

    include: list[Mapping[str, object]] = []
    raw_include = mapping.get("include", [])
    if not isinstance(raw_include, list):
        problems.add("search.include", f"expected a list of configurations, got {describe(raw_include)}")
        raw_include = []
    for index, entry in enumerate(raw_include):
        path = join_path("search.include", index)
        configuration = problems.mapping(entry, path)
        if configuration is None:
            continue
        if not configuration:
            problems.add(path, "an empty configuration")
        checked: dict[str, object] = {}
        for key, element in configuration.items():
            key_path = join_path(path, key)
            if _known_parameter(key, key_path, problems) and _check_parameter_value(
                key, element, key_path, problems, variants, datasets
            ):
                checked[key] = element
        include.append(checked)
    if not parameters and not include:
        problems.add("search", "needs parameters or include entries: a sweep of no jobs")
    return strategy, samples, parameters, tuple(include)


def _known_parameter(key: str, path: str, problems: Problems) -> bool:
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
    problems: Problems,
    variants: Mapping[str, object],
    datasets: Mapping[str, Dataset],
) -> bool:
    before = len(problems.items)
    if key == VARIANT:
        if value not in variants:
            problems.add(
                path,
                f"unknown variant {describe(value)} (variants: {', '.join(variants) or 'none defined'})",
            )
    elif key == DATASET:
        if value not in datasets:
            problems.add(
                path,
                f"unknown dataset {describe(value)} (datasets: {', '.join(datasets) or 'none defined'})",
            )
    else:
        _check_hyperparameter_value(key, value, path, problems)
    return len(problems.items) == before


def _parse_distribution(
    value: Mapping[str, Any], key: str, path: str, problems: Problems
) -> Distribution | None:
    problems.known_keys(value, path, ("distribution", "min", "max"))
    kind = value.get("distribution")
    if kind not in DISTRIBUTIONS:
        problems.add(
            join_path(path, "distribution"), f"{describe(kind)} is not one of {', '.join(DISTRIBUTIONS)}"
        )
        return None
    if key in SPECIAL_PARAMETERS:
        problems.add(path, f"{key} takes a list of names, not a distribution")
        return None
    low = problems.number(value.get("min"), join_path(path, "min"))
    high = problems.number(value.get("max"), join_path(path, "max"))
    if low is None or high is None:
        return None
    if low > high:
        problems.add(path, f"min ({low:g}) must not exceed max ({high:g})")
        return None
    if kind == "log_uniform" and low <= 0:
        problems.add(join_path(path, "min"), f"log_uniform needs min > 0, got {low:g}")
        return None
    if kind == "int_uniform" and not (low.is_integer() and high.is_integer()):
        problems.add(path, "int_uniform needs integer min and max")
        return None
    for bound, label in ((low, "min"), (high, "max")):
        sample: object = int(bound) if kind == "int_uniform" else bound
        _check_hyperparameter_value(key, sample, join_path(path, label), problems)
    return Distribution(kind, low, high)
