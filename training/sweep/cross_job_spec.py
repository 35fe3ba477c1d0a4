"""The spec's ``cross_job`` section: compare the sweep's jobs with each other and stop the worse ones.

Why a section of its own: the per-job rules judge one job against its own history; this judges a job against
its siblings at the same amount of training (``lambdas/stop_training_job/cross_job.py``, one pure core for
the local runner and the Lambda). Example::

    cross_job:
      policy: asha            # asha (asynchronous successive halving) | median (median stopping rule)
      grace_period: 100       # first rung, in training steps (then grace_period * reduction_factor**k)
      reduction_factor: 3     # asha: keep the best 1/reduction_factor at each rung
      rung_levels: [100, 400] # optional: explicit rungs instead of the geometric series
      min_reports: 3          # no judgement at a rung until this many jobs reported there
      keep_best: 1            # the best k at a rung are never stopped
      dry_run: false          # log what would be stopped, stop nothing

The objective and its direction are the spec's ``objective``; a rung is judged on the validation value of
that metric at the first validation at or after the rung. Settings are checked here, with the spec's other
problems, and become ``CrossJobSettings`` for the spec's budget (``settings``), so a budget override
(``--steps``) moves the rungs with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from lambdas.stop_training_job import cross_job

KEYS = ("policy", "grace_period", "reduction_factor", "rung_levels", "min_reports", "keep_best", "dry_run")


@dataclasses.dataclass(frozen=True)
class CrossJobSpec:
    policy: cross_job.Policy
    grace_period: int = 100
    reduction_factor: float = 3.0
    rung_levels: tuple[int, ...] = ()
    min_reports: int = 3
    keep_best: int = 1
    dry_run: bool = False

    def settings(self, *, goal: str, max_steps: int) -> cross_job.CrossJobSettings:
        return cross_job.CrossJobSettings(
            policy=self.policy,
            goal=goal,
            max_steps=max_steps,
            grace_period=self.grace_period,
            reduction_factor=self.reduction_factor,
            rung_levels=self.rung_levels,
            min_reports=self.min_reports,
            keep_best=self.keep_best,
            dry_run=self.dry_run,
        )


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse(value: object) -> tuple[CrossJobSpec | None, list[tuple[str, str]]]:
    """The section as a ``CrossJobSpec``, or the problems found, as (key path, message) pairs."""
    if not isinstance(value, Mapping):
        return None, [("cross_job", f"expected a mapping, got {type(value).__name__}")]
    problems: list[tuple[str, str]] = []
    for key in value:
        if key not in KEYS:
            problems.append((f"cross_job.{key}", f"unknown key (known: {', '.join(KEYS)})"))
    options: dict[str, Any] = {}
    policy = value.get("policy", cross_job.Policy.ASHA.value)
    if policy not in {item.value for item in cross_job.Policy}:
        problems.append(("cross_job.policy", f"{policy!r} is not one of {', '.join(cross_job.Policy)}"))
    else:
        options["policy"] = cross_job.Policy(policy)
    for key in ("grace_period", "min_reports", "keep_best"):
        if key in value:
            if not _is_integer(value[key]):
                problems.append((f"cross_job.{key}", f"expected an integer, got {value[key]!r}"))
            else:
                options[key] = value[key]
    if "reduction_factor" in value:
        factor = value["reduction_factor"]
        if isinstance(factor, bool) or not isinstance(factor, int | float):
            problems.append(("cross_job.reduction_factor", f"expected a number, got {factor!r}"))
        else:
            options["reduction_factor"] = float(factor)
    if "rung_levels" in value:
        levels = value["rung_levels"]
        if not isinstance(levels, list) or not levels or not all(_is_integer(level) for level in levels):
            problems.append(("cross_job.rung_levels", f"expected a list of step counts, got {levels!r}"))
        else:
            options["rung_levels"] = tuple(levels)
    if "dry_run" in value:
        if not isinstance(value["dry_run"], bool):
            problems.append(("cross_job.dry_run", f"expected true or false, got {value['dry_run']!r}"))
        else:
            options["dry_run"] = value["dry_run"]
    if problems:
        return None, problems
    section = CrossJobSpec(**options)
    # The core's own checks (reduction factor >= 2, min_reports >= 2, ...), with a placeholder budget.
    try:
        section.settings(
            goal=cross_job.MAXIMIZE, max_steps=max(2, *section.rung_levels, section.grace_period + 1)
        )
    except cross_job.SettingsError as error:
        return None, [("cross_job", str(error))]
    return section, []
