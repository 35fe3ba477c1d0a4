"""The pure cross-job decision: stop a job that is worse than its siblings at the same point of training.

Why a second kind of rule: the per-job rules (flat loss, dead gradients, NaN) stop jobs that are broken.
Most jobs of a real sweep are not broken, only worse than the others, and no per-job rule can see that: it
needs the objective of every job of the sweep at the same amount of training. This module decides with two
policies from the early-stopping literature:

- ``asha``: asynchronous successive halving, in its stopping form (as Syne Tune's ``HyperbandScheduler``
  with ``type="stopping"`` and Ray Tune's ``ASHAScheduler``). Rung levels are
  ``grace_period * reduction_factor**k`` training steps. A job reaching a rung continues only if its
  objective there is no worse than the cutoff of the best ``1 / reduction_factor`` of the other objectives
  recorded at that rung so far: their quantile, linearly interpolated, as Ray Tune's ASHA computes it
  (``np.nanpercentile(recorded, (1 - 1 / reduction_factor) * 100)``). A cut by rank alone (keep the best
  ``ceil(n / reduction_factor)``) ignores how far behind a job is: at a rung holding a healthy job, a job
  whose loss never moved and a second healthy job slightly behind the first, it stops the second healthy job
  (a third of three is one), and on the demo's sweep that was often the best configuration; the quantile
  lies between the broken job and the best one and keeps it.
- ``median``: the median stopping rule (Golovin et al., "Google Vizier", 2017; SageMaker automatic model
  tuning's early stopping is of this kind): a job reaching a rung continues only if its objective there is
  at least as good as the median of the other jobs' objectives at that rung.

Where the rungs start: by default at the jobs' first validation (``grace_period`` defaults to
``validation_interval``), then ``reduction_factor`` times further each time. That is the peers' default
geometry: Ray Tune's ASHA counts ``training_iteration`` (one per report) with ``grace_period=1``, and Syne
Tune's ASHA defaults to ``grace_period=1`` unit of what the training reports (an epoch in its examples): the
first report is the first rung. Here a report is a validation. A fixed number of steps cannot fit every
sweep: 100 steps is the first validation at the container's default ``validation_interval`` but the second
of a job validating every 50 steps, whose first judgement it delays by a whole rung (measured in
``docs/benchmarks.md``, sweep compute saved).

Why a reduction factor of 2 (keep the better half, rungs that double) when the peers default to 3 (Syne
Tune) or 4 (Ray Tune, Optuna's SuccessiveHalvingPruner): successive halving assumes a job behind at a rung
stays behind, and in real sweeps learning curves cross (a slow starter that ends best, a broken model ahead
early). Replayed on the same recorded sweeps (``docs/benchmarks.md``, sweep compute saved), a factor of 3
or 4 saved a few points more and lost the best configuration in most launch orders where a factor of 2
kept it in most; with a factor of 2 the ``asha`` cutoff is the median of the others, so the two policies
decide alike until the factor is set.

Both are asynchronous: a job is judged against whatever the sweep has recorded at that rung when it arrives,
never waiting for siblings. Two guards keep a healthy job from being stopped on too little evidence:
``min_reports`` (no judgement until that many jobs reported at the rung, the job itself included) and
``keep_best`` (a job among the best ``k`` at its rung is never stopped).

Judged once, or again as the rung fills up (``rejudge``, the default): judged only on arrival, the first jobs
at a rung pass on little or no evidence (too few reports, or only each other to beat) and then run unjudged
to the next rung, a third of their budget or more, however the rung fills behind them. ASHA as its authors
define it (Li et al., "A System for Massively Parallel Hyperparameter Tuning", 2020) promotes a job out of a
rung only while it is in the rung's top ``1 / reduction_factor`` of the jobs recorded there so far; the
stopping form keeps that meaning when a running job is judged again, at each later validation, at the
highest rung it has passed, against the objectives recorded there by then (its own value at the rung stays
the one it recorded on arrival). Measured on the same recorded sweeps, in ``docs/benchmarks.md`` (sweep
compute saved): more compute saved, and, on sweeps whose curves cross (a slow starter that ends best, broken
jobs ahead early), the best job lost more often: judging more often also means being misled more often.

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
# The training container's default ``validation_interval`` (``training/hparams.py``): the first validation
# of a job whose hyperparameters do not set one, hence its first rung.
DEFAULT_VALIDATION_INTERVAL: Final = 100
DEFAULT_REDUCTION_FACTOR: Final = 2.0
DEFAULT_MIN_REPORTS: Final = 3
DEFAULT_KEEP_BEST: Final = 1
DEFAULT_REJUDGE: Final = True


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
    """How the sweep's jobs are compared. Steps are training (optimizer) steps, as the rules count them.

    ``grace_period`` is the first rung; ``None`` (the default) puts it at the jobs' first validation,
    ``validation_interval`` steps in (the module docstring says why).
    """

    policy: Policy
    goal: str
    max_steps: int
    grace_period: int | None = None
    validation_interval: int = DEFAULT_VALIDATION_INTERVAL
    reduction_factor: float = DEFAULT_REDUCTION_FACTOR
    rung_levels: tuple[int, ...] = ()
    min_reports: int = DEFAULT_MIN_REPORTS
    keep_best: int = DEFAULT_KEEP_BEST
    rejudge: bool = DEFAULT_REJUDGE
    dry_run: bool = False

    def __post_init__(self) -> None:
        problems = settings_problems(self)
        if problems:
            raise SettingsError("; ".join(problems))

    @property
    def first_rung(self) -> int:
        """The first rung of the geometric series: ``grace_period``, else the first validation."""
        return self.grace_period if self.grace_period is not None else self.validation_interval

    def rungs(self) -> tuple[int, ...]:
        """The steps at which jobs report and are judged: explicit levels, or the geometric series."""
        if self.rung_levels:
            return tuple(level for level in sorted(set(self.rung_levels)) if level < self.max_steps)
        levels: list[int] = []
        level = float(self.first_rung)
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
    if settings.grace_period is not None and settings.grace_period < 1:
        problems.append(f"grace_period must be >= 1 step, got {settings.grace_period}")
    if settings.validation_interval < 1:
        problems.append(
            "validation_interval must be >= 1 step (the jobs are compared on their validations during "
            f"training), got {settings.validation_interval}"
        )
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
    if not isinstance(settings.rejudge, bool):
        problems.append(f"rejudge must be true or false, got {settings.rejudge!r}")
    if settings.keep_best < 1:
        problems.append(f"keep_best must be >= 1 (the best job is never stopped), got {settings.keep_best}")
    return problems


def rung_reached(settings: CrossJobSettings, previous_step: int, step: int) -> int | None:
    """The highest rung passed when a job moves from ``previous_step`` to ``step`` (exclusive, inclusive)."""
    passed = [level for level in settings.rungs() if previous_step < level <= step]
    return passed[-1] if passed else None


def rung_to_judge(settings: CrossJobSettings, previous_step: int, step: int) -> int | None:
    """The rung a validation at ``step`` (the job's previous one at ``previous_step``) is judged at.

    With ``rejudge``, the highest rung at or below ``step``: every validation from the first rung on is
    judged there. Without, only the validation that passes a rung (``rung_reached``), once.
    """
    if not settings.rejudge:
        return rung_reached(settings, previous_step, step)
    passed = [level for level in settings.rungs() if level <= step]
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


def _objective(key: float, goal: str) -> float:
    """The objective a sort key stands for (a non-finite key stays as it is: worse than any objective)."""
    return key if not math.isfinite(key) or goal == MINIMIZE else -key


def _quantile(keys: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of sort keys, linearly interpolated (numpy's default, Ray Tune's cutoff).

    A non-finite key (a NaN objective) is the worst; interpolating towards it gives an infinite cutoff, which
    keeps every finite objective: a job is not stopped for trailing a diverged one.
    """
    ordered = sorted(keys)
    position = fraction * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    share = position - below
    if share == 0 or ordered[below] == ordered[above]:
        return ordered[below]
    return ordered[below] + (ordered[above] - ordered[below]) * share


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
    others = [_sort_key(other, settings.goal) for name, other in peers.items() if name != job]
    if settings.policy is Policy.ASHA:
        cutoff_key = _quantile(others, 1 / settings.reduction_factor)
        cutoff = _objective(cutoff_key, settings.goal)
        kept = sum(1 for other in (own, *others) if math.isfinite(other) and other <= cutoff_key)
        cut = f"{cutoff:.6g}, the cutoff of the best 1/{settings.reduction_factor:g} of {reported - 1} others"
        if math.isfinite(own) and own <= cutoff_key:
            return verdict(Verdict.CONTINUE, kept, cutoff, f"objective {value:.6g} is no worse than {cut}")
        return verdict(Verdict.STOP, kept, cutoff, f"objective {value:.6g} is worse than {cut}")
    median_key = _median(others)
    threshold = _objective(median_key, settings.goal)
    if own <= median_key:
        return verdict(
            Verdict.CONTINUE, reported, threshold, f"objective {value:.6g} is no worse than the median"
        )
    return verdict(
        Verdict.STOP, reported, threshold, f"objective {value:.6g} is worse than the median {threshold:.6g}"
    )
