"""The ``autostop_cross_job`` hyperparameter: how a sweep's job is compared with its siblings, and where.

Why a hyperparameter: the stop Lambda must judge a rung report with the settings the sweep was launched
with, and it already reads the job's ``DescribeTrainingJob`` (for the signing key), whose
``HyperParameters`` only the launcher could have set. So the settings travel with the job, every sweep
can have its own, and no event field (which anyone allowed to ``PutEvents`` could write) decides how a job
is judged or which sweep it is recorded in.

The value is compact JSON with every field of ``CrossJobSettings`` spelled out (never left to a default,
which another version of ``cross_job`` might change), e.g.::

    {"sweep":"vision-lr","metric":"validation:loss","policy":"asha","goal":"minimize","max_steps":1000,
     "grace_period":null,"validation_interval":100,"reduction_factor":3.0,"rung_levels":[],
     "min_reports":3,"keep_best":1,"rejudge":true,"dry_run":false,"rungs":[100,300,900]}

A value missing a field, or naming one the settings do not have, is refused (launched by another version).

``rungs`` and ``rejudge`` are what the training container needs (it reports at these steps, and with
``rejudge`` at every validation after the first of them): the image does not ship
``cross_job``, so the launcher computes them, and ``decode`` refuses a value whose ``rungs`` are not the
settings' own. Pure: ``json`` and the cross-job core only.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from typing import Any

from . import cross_job
from .vocabulary import (
    CROSS_JOB_HYPERPARAMETER,
    HYPERPARAMETER_VALUE_MAX_LENGTH,
    OBJECTIVE_METRIC_PATTERN,
    SWEEP_NAME_PATTERN,
)

# Every field of the settings, by name: a field added to ``CrossJobSettings`` travels without a change here.
SETTINGS_FIELDS = tuple(field.name for field in dataclasses.fields(cross_job.CrossJobSettings))
# Fields whose value is not a whole number of steps or reports (those are checked here by their own rule).
_OTHER_KINDS = frozenset({"policy", "goal", "reduction_factor", "rung_levels", "rejudge", "dry_run"})
# Whole-number fields that may be null: their default is ``None`` (e.g. a first rung at the first validation).
_NULLABLE = frozenset(
    field.name for field in dataclasses.fields(cross_job.CrossJobSettings) if field.default is None
)
KEYS = ("sweep", "metric", *SETTINGS_FIELDS, "rungs")


class SweepSettingsError(ValueError):
    """The hyperparameter cannot be used; the message names every problem."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepComparison:
    """One sweep's cross-job comparison: its name (the table's partition), the objective, the settings."""

    sweep: str
    metric: str
    settings: cross_job.CrossJobSettings

    def __post_init__(self) -> None:
        problems = []
        if not SWEEP_NAME_PATTERN.fullmatch(self.sweep):
            problems.append(f"sweep {self.sweep[:80]!r} is not a sweep name (1-63 letters, digits, '-')")
        if not OBJECTIVE_METRIC_PATTERN.fullmatch(self.metric):
            problems.append(f"metric {self.metric[:80]!r} is not validation:<metric>")
        if problems:
            raise SweepSettingsError("; ".join(problems))


def encode(comparison: SweepComparison) -> str:
    """The hyperparameter's value (raises ``SweepSettingsError`` past SageMaker's 2500 characters)."""
    settings = comparison.settings
    document: dict[str, object] = {"sweep": comparison.sweep, "metric": comparison.metric}
    for name in SETTINGS_FIELDS:
        value = getattr(settings, name)
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        elif name == "reduction_factor":
            value = float(value)
        document[name] = value
    document["rungs"] = list(settings.rungs())
    value = json.dumps(document, separators=(",", ":"))
    if len(value) > HYPERPARAMETER_VALUE_MAX_LENGTH:
        raise SweepSettingsError(
            f"{CROSS_JOB_HYPERPARAMETER} would be {len(value)} characters, more than the "
            f"{HYPERPARAMETER_VALUE_MAX_LENGTH} SageMaker allows in a hyperparameter value"
        )
    return value


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(document: Mapping[str, Any], key: str, problems: list[str]) -> int:
    value = document.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(f"{key} must be an integer")
        return 1
    return value


def _integers(document: Mapping[str, Any], key: str, problems: list[str]) -> tuple[int, ...]:
    value = document.get(key)
    if not isinstance(value, list) or not all(_is_integer(item) for item in value):
        problems.append(f"{key} must be a list of integers")
        return ()
    return tuple(value)


def decode(value: object) -> SweepComparison:
    """The comparison a job was launched with, from its hyperparameter's value (a string, JSON-quoted once
    more by the SageMaker Python SDK's framework estimators); ``SweepSettingsError`` names every problem."""
    if not isinstance(value, str) or len(value) > HYPERPARAMETER_VALUE_MAX_LENGTH:
        raise SweepSettingsError(f"{CROSS_JOB_HYPERPARAMETER} must be a JSON text of at most 2500 characters")
    try:
        document = json.loads(value)
        if isinstance(document, str):
            document = json.loads(document)
    except ValueError:
        raise SweepSettingsError(f"{CROSS_JOB_HYPERPARAMETER} is not JSON") from None
    if not isinstance(document, dict):
        raise SweepSettingsError(f"{CROSS_JOB_HYPERPARAMETER} must be a JSON object")
    problems = [f"unknown key {key[:40]!r}" for key in document if key not in KEYS]
    problems += [f"missing key {key!r}" for key in KEYS if key not in document]
    if problems:
        raise SweepSettingsError(f"{CROSS_JOB_HYPERPARAMETER}: " + "; ".join(problems))
    sweep, metric, goal, policy = (document[key] for key in ("sweep", "metric", "goal", "policy"))
    if not all(isinstance(text, str) for text in (sweep, metric, goal, policy)):
        problems.append("sweep, metric, goal and policy must be strings")
    elif policy not in {member.value for member in cross_job.Policy}:
        problems.append(f"policy must be one of {', '.join(cross_job.Policy)}")
    reduction_factor = document["reduction_factor"]
    if isinstance(reduction_factor, bool) or not isinstance(reduction_factor, int | float):
        problems.append("reduction_factor must be a number")
    for flag in ("rejudge", "dry_run"):
        if not isinstance(document[flag], bool):
            problems.append(f"{flag} must be true or false")
    numbers: dict[str, int | None] = {}
    for name in SETTINGS_FIELDS:
        if name in _OTHER_KINDS:
            continue
        if document[name] is None and name in _NULLABLE:
            numbers[name] = None
        else:
            numbers[name] = _integer(document, name, problems)
    rung_levels = _integers(document, "rung_levels", problems)
    rungs = _integers(document, "rungs", problems)
    if problems:
        raise SweepSettingsError(f"{CROSS_JOB_HYPERPARAMETER}: " + "; ".join(problems))
    try:
        settings = cross_job.CrossJobSettings(
            policy=cross_job.Policy(policy),
            goal=goal,
            reduction_factor=float(reduction_factor),
            rung_levels=rung_levels,
            rejudge=document["rejudge"],
            dry_run=document["dry_run"],
            **numbers,  # type: ignore[arg-type]
        )
        comparison = SweepComparison(sweep=sweep, metric=metric, settings=settings)
    except (ValueError, TypeError) as error:  # cross_job.SettingsError, SweepSettingsError
        raise SweepSettingsError(f"{CROSS_JOB_HYPERPARAMETER}: {error}") from None
    if rungs != settings.rungs():
        raise SweepSettingsError(
            f"{CROSS_JOB_HYPERPARAMETER}: rungs {list(rungs)[:8]} are not the settings' own "
            f"{list(settings.rungs())[:8]} (launched by another version of autostop?)"
        )
    return comparison


def from_description(description: Mapping[str, object]) -> SweepComparison:
    """The comparison of the job ``DescribeTrainingJob`` describes (``SweepSettingsError`` without one)."""
    hyperparameters = description.get("HyperParameters")
    value = hyperparameters.get(CROSS_JOB_HYPERPARAMETER) if isinstance(hyperparameters, Mapping) else None
    if value is None:
        raise SweepSettingsError(
            f"the job has no {CROSS_JOB_HYPERPARAMETER} hyperparameter: it was not launched for cross-job "
            "stopping"
        )
    return decode(value)
