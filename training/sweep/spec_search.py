"""The sweep's search: a validated spec expanded into its jobs (grid or random search, then ``include``).

Why a module of its own: expansion is the one place that decides which jobs a sweep runs, with which
hyperparameters and names; it must be deterministic (the same spec gives the same jobs, in the same order,
with the same names, on every machine: random search draws from ``random.Random(seed)``) and it must not
fail, since ``spec_validation.check_expansion`` ran it on the spec before any job started.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Mapping

from training.sweep.spec_schema import (
    DATASET,
    SPECIAL_PARAMETERS,
    VARIANT,
    Dataset,
    Distribution,
    JobConfig,
    ParameterValues,
    SpecError,
    SweepSpec,
    hyperparameter_text,
    job_name,
)


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


def job_hyperparameters(spec: SweepSpec, params: Mapping[str, object]) -> tuple[dict[str, str], str | None]:
    """One job's whole hyperparameters.json (seed, fixed values, its variant's, its swept values, steps)
    as SageMaker's strings, and its variant's name."""
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
        hyperparameters, variant = job_hyperparameters(spec, params)
        dataset = _job_dataset(spec, params)
        if dataset is None:  # excluded by validation
            raise SpecError(spec.source, [f"job {index}: no dataset"])
        jobs.append(
            JobConfig(index, job_name(spec.name, index), dict(params), hyperparameters, dataset, variant)
        )
    return jobs
