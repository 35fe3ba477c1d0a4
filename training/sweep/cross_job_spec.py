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
that metric at the first validation at or after the rung. Settings are checked with the spec's other problems
(``spec._parse_cross_job``) and become ``CrossJobSettings`` for the spec's budget (``settings``), so a budget
override (``--steps``) moves the rungs with it.
"""

from __future__ import annotations

import dataclasses

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
