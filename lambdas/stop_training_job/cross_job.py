"""The pure cross-job decision: stop a job that is worse than its siblings at the same point of training.

Why a second kind of rule: the per-job rules (flat loss, dead gradients, NaN) stop jobs that are broken.
Most jobs of a real sweep are not broken, only worse than the others, and no per-job rule can see that: it
needs the objective of every job of the sweep at the same amount of training. This module decides with two
policies from the early-stopping literature:

- ``asha``: asynchronous successive halving, in its stopping form (as Syne Tune's ``HyperbandScheduler``
  with ``type="stopping"`` and Ray Tune's ``ASHAScheduler``). Rung levels are
  ``grace_period * reduction_factor**k`` training steps. A job reaching a rung continues only if its
  objective there ranks in the best ``1 / reduction_factor`` of all objectives recorded at that rung so far.
- ``median``: the median stopping rule (Golovin et al., "Google Vizier", 2017; SageMaker automatic model
  tuning's early stopping is of this kind): a job reaching a rung continues only if its objective there is
  at least as good as the median of the other jobs' objectives at that rung.

Both are asynchronous: a job is judged against whatever the sweep has recorded at that rung when it arrives,
never waiting for siblings. Two guards keep a healthy job from being stopped on too little evidence:
``min_reports`` (no judgement until that many jobs reported at the rung, the job itself included) and
``keep_best`` (a job among the best ``k`` at its rung is never stopped).

Like ``decision``, this module is pure: plain values in, plain values out, no AWS SDK, no clock, no
environment. The store that keeps each rung's objectives (DynamoDB in the Lambda, SQLite locally) lives with
the adapters.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping, Sequence
from typing import Final

MAXIMIZE: Final = "maximize"
MINIMIZE: Final = "minimize"
GOALS: Final = (MAXIMIZE, MINIMIZE)
MAX_RUNGS: Final = 32


class Policy(enum.StrEnum):
    ASHA = "asha"
    MEDIAN = "median"


class Verdict(enum.StrEnum):
    CONTINUE = "continue"
    STOP = "stop"


class SettingsError(ValueError):
    """Cross-job settings that cannot be used; the message names every problem."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class CrossJobSettings:
    """How the sweep's jobs are compared. Steps are training (optimizer) steps, as the rules count them."""

    policy: Policy
    goal: str
    max_steps: int
    grace_period: int = 100
    reduction_factor: float = 3.0
    rung_levels: tuple[int, ...] = ()
    min_reports: int = 3
    keep_best: int = 1
    dry_run: bool = False

    def __post_init__(self) -> None:
        problems = settings_problems(self)
        if problems:
            raise SettingsError("; ".join(problems))

    def rungs(self) -> tuple[int, ...]:
        """The steps at which jobs report and are judged: explicit levels, or the geometric series."""
        if self.rung_levels:
            return tuple(level for level in sorted(set(self.rung_levels)) if level < self.max_steps)
        levels: list[int] = []
        level = float(self.grace_period)
        while round(level) < self.max_steps and len(levels) < MAX_RUNGS:
            if not levels or round(level) > levels[-1]:
                levels.append(round(level))
            level *= self.reduction_factor
        return tuple(levels)


def settings_problems(settings: CrossJobSettings) -> list[str]:
    problems: list[str] = []
    if not isinstance(settings.policy, Policy):
        problems.append(f"policy must be one of {', '.join(Policy)}")
    if settings.goal not in GOALS:
        problems.append(f"goal must be {MAXIMIZE} or {MINIMIZE}, got {settings.goal!r}")
    if settings.max_steps < 1:
        problems.append(f"max_steps must be >= 1, got {settings.max_steps}")
    if settings.grace_period < 1:
        problems.append(f"grace_period must be >= 1 step, got {settings.grace_period}")
    if not math.isfinite(settings.reduction_factor) or settings.reduction_factor < 2:
        problems.append(f"reduction_factor must be >= 2, got {settings.reduction_factor}")
    if any(level < 1 for level in settings.rung_levels):
        problems.append("rung_levels must be positive step counts")
    if len(settings.rung_levels) > MAX_RUNGS:
        problems.append(f"at most {MAX_RUNGS} rung_levels")
    if settings.min_reports < 2:
        problems.append(
            f"min_reports must be >= 2 (a job is only compared with others), got {settings.min_reports}"
        )
    if settings.keep_best < 1:
        problems.append(f"keep_best must be >= 1 (the best job is never stopped), got {settings.keep_best}")
    return problems


def rung_reached(settings: CrossJobSettings, previous_step: int, step: int) -> int | None:
    """The highest rung passed when a job moves from ``previous_step`` to ``step`` (exclusive, inclusive)."""
    passed = [level for level in settings.rungs() if previous_step < level <= step]
    return passed[-1] if passed else None


@dataclasses.dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    rung: int
    job: str
    value: float
    reported: int
    rank: int
    kept: int
    threshold: float | None
    reason: str

    @property
    def stops(self) -> bool:
        return self.verdict is Verdict.STOP


def _sort_key(value: float, goal: str) -> float:
    """Smaller is better; a non-finite objective (a NaN loss, a failed validation) ranks last."""
    if not math.isfinite(value):
        return math.inf
    return -value if goal == MAXIMIZE else value


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def judge(settings: CrossJobSettings, *, rung: int, job: str, peers: Mapping[str, float]) -> Judgement:
    """Judge ``job`` at ``rung`` against every objective recorded there (``peers`` includes the job's own).

    A job is ranked with ties in its favour: an equal objective never ranks it below a sibling.
    """
    if job not in peers:
        raise ValueError(f"job {job!r} has no objective recorded at rung {rung}")
    value = peers[job]
    own = _sort_key(value, settings.goal)
    reported = len(peers)
    rank = 1 + sum(
        1 for name, other in peers.items() if name != job and _sort_key(other, settings.goal) < own
    )

    def verdict(verdict: Verdict, kept: int, threshold: float | None, reason: str) -> Judgement:
        return Judgement(verdict, rung, job, value, reported, rank, kept, threshold, reason)

    if reported < settings.min_reports:
        return verdict(Verdict.CONTINUE, reported, None, f"only {reported} of {settings.min_reports} reports")
    if rank <= settings.keep_best:
        return verdict(
            Verdict.CONTINUE, settings.keep_best, None, f"rank {rank} is among the best {settings.keep_best}"
        )
    if settings.policy is Policy.ASHA:
        kept = max(settings.keep_best, math.ceil(reported / settings.reduction_factor))
        if rank <= kept:
            return verdict(Verdict.CONTINUE, kept, None, f"rank {rank} of {reported} is in the best {kept}")
        return verdict(Verdict.STOP, kept, None, f"rank {rank} of {reported} is outside the best {kept}")
    others = [_sort_key(other, settings.goal) for name, other in peers.items() if name != job]
    median_key = _median(others)
    threshold = median_key if not math.isfinite(median_key) or settings.goal == MINIMIZE else -median_key
    if own <= median_key:
        return verdict(
            Verdict.CONTINUE, reported, threshold, f"objective {value:.6g} is no worse than the median"
        )
    return verdict(
        Verdict.STOP, reported, threshold, f"objective {value:.6g} is worse than the median {threshold:.6g}"
    )
