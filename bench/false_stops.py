"""False stops and missed stops: the rules at their DEFAULTS on healthy and bad training jobs.

Run: ``.venv/bin/python -m bench false_stops`` (rewrites only this section of ``docs/benchmarks.md``)

An auto-terminator is only worth switching on if it never stops a healthy job. Every job here is a real
TensorFlow training job run through the container's entry point (``training.train.main``, in this process,
one after the other) on a freshly rendered dataset, with the in-container rules ``LossNotDecreasing``,
``VanishingGradient``, ``ExplodingTensor`` and ``Overfit`` configured by name only (``RULES``: every
parameter at its default, no calibration for any job) and the demo's save schedule (losses every 5 steps,
gradients every 10). Each job runs to its budget once, its rules evaluated in the container as in a sweep
but with self-termination off: the step at which a rule first found issues is where a sweep would have
stopped it (rules judge each step only from the steps before it, so running on changes nothing before that
step), and the same run shows whether the job would have learned. How fast a stop follows a finding is
``bench/time_to_stop.py``'s measure; the subset of this benchmark in ``make test`` runs with
self-termination on.

- **Healthy**: a grid over learning rates on a log grid 1e-4..1e-2, batch sizes 8..64, both presets, both
  losses, decay on and off, two seeds and two image sizes (``healthy_configurations``). A grid job the rules
  would have stopped is a **false stop** if it learned in its budget: its validation SSIM rose by more than
  ``LEARNED_SSIM`` from its first validation to its last, its encoder tells designs apart (the spread of
  its embeddings across designs is more than ``COLLAPSED_SPREAD`` of their size) AND its trial shows no
  defect to the end of its budget (below). If not, the table says so: a grid point can be a bad job too.
  Some grid jobs kill their own ReLU layers: once no gradient reaches a layer, nothing before it learns
  again, yet the decoder can still raise SSIM by learning to draw the average render -- such a job is not
  healthy, whatever its SSIM. VanishingGradient bets, after 3 saved steps of an exactly-zero gradient, that
  the layer stays dead; the trial read to the end of the budget checks that bet.
- **Bad** (``bad_configurations``): learning rates 0 and 1e-7 (nothing moves), far too large ones, a dead
  ReLU bottleneck (the demo's ``deep_saturating`` variant), and NaN-producing data. A bad job that runs to
  its budget is a missed stop.

For each job the bench also reads, from the job's own trial and independently of the rules, the first step
at which a defect is visible (``defect_in_trial``): a NaN or infinite value; a gradient tensor that is exactly
zero from that step to the end (no gradient reaches the layer); a validation loss that did not move from the
previous validation (within float32 round-off). For a bad job that is "the condition appears"; for a
healthy one it should be "none".

NaN-producing data: the shards hold uint8 views, which cannot be NaN, so that job's training batches get one
NaN pixel each (``nan_batches``) -- as a broken float pre-processing step would give -- by wrapping the
job's dataset loader for that one job; everything else is the unchanged entry point.
LatentClusterRule is not in the set: at its default schedule (embeddings every 100 steps, patience 3) it
cannot fire within these jobs' budget, so a "0 false stops" for it would mean nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SMDEBUG_LOG_LEVEL", "error")
# smdebug re-reads an ended trial after a delay (1 s by default, for writers in other processes) on every read
# that misses a step; the trials read here are complete, their jobs have ended.
os.environ.setdefault("SMDEBUG_TRAINING_END_DELAY_REFRESH", "0")

COMMAND = ".venv/bin/python -m bench false_stops"
RULES = "LossNotDecreasing,VanishingGradient,ExplodingTensor,Overfit"
HOOK_CONFIG = {
    "CollectionConfigurations": [
        {"CollectionName": "losses", "CollectionParameters": {"save_interval": "5"}},
        {"CollectionName": "gradients", "CollectionParameters": {"save_interval": "10"}},
    ]
}
DESIGNS = 96
DESIGNS_PER_BATCH = 16
VIEWS = 6
RENDER_SIZE = 32
IMAGE_SIZES = (16, 32)
RENDER_SEED = 7
STEPS = 150
VALIDATION_INTERVAL = 30
# Every job: the same small network width (both presets keep their depth and bottleneck shape).
COMMON = {
    "base_filters": 4,
    "num_views": VIEWS,
    "log_interval": 10,
    "checkpoint_interval": 100000,
    "decay_steps": 50,
}
# A float32 mean moves by round-off only below this share of its value (rules.ROUND_OFF).
ROUND_OFF = 1e-6
# Consecutive saved steps a gradient must stay exactly 0 to count as a dead layer (one batch can miss a unit).
DEAD_STEPS = 3
# A job learned when its validation SSIM rose by more than this from its first validation to its last (an
# untrained model scores about 0.01; the grid's learning jobs reach 0.1 and more within the budget) ...
LEARNED_SSIM = 0.01
# ... and its embeddings of the dataset's designs are not all one vector: their largest per-dimension
# standard deviation across designs exceeds this share of their mean absolute value (float32 round-off of
# identical inputs stays orders of magnitude below it).
COLLAPSED_SPREAD = 1e-4


@dataclasses.dataclass(frozen=True)
class Configuration:
    name: str
    healthy: bool
    hyperparameters: dict[str, Any]
    nan_data: bool = False
    why: str = ""

    def describe(self) -> str:
        keys = ("learning_rate", "batch_size", "preset", "loss", "decay", "seed", "image_size")
        text = " ".join(f"{key}={self.hyperparameters[key]}" for key in keys if key in self.hyperparameters)
        extra = {key: value for key, value in self.hyperparameters.items() if key not in keys}
        text += "".join(f" {key}={value}" for key, value in extra.items())
        return text + (" nan_data" if self.nan_data else "")


@dataclasses.dataclass
class Outcome:
    configuration: Configuration
    exit_code: int
    steps_run: int
    stopped_by: str | None
    stop_step: int | None
    finding: str
    defect: str | None
    defect_step: int | None
    first_ssim: float | None  # validation SSIM at the job's first and last validation
    last_ssim: float | None
    seconds: float
    smallest_first_gradient: float | None = None  # the smallest mean |gradient| of a tensor at its first save
    lowest_peak_ratio: float | None = (
        None  # the lowest nonzero mean |gradient| / the tensor's own earlier peak
    )
    embedding_spread: float | None = None  # see COLLAPSED_SPREAD; None: not measured (the job was stopped)
    validation_losses: tuple[tuple[int, float], ...] = ()  # (step, validation loss)

    @property
    def fall_rates(self) -> list[float]:
        """How fast the validation loss fell between consecutive validations, as a share of the earlier
        value per step (negative: it rose) -- what LossNotDecreasing's ``min_decrease_per_step`` judges."""
        return [
            (before - after) / abs(before) / (step - previous)
            for (previous, before), (step, after) in itertools.pairwise(self.validation_losses)
            if math.isfinite(before) and math.isfinite(after) and before != 0 and step > previous
        ]

    @property
    def collapsed(self) -> bool:
        """Every design gets the same embedding (or a non-finite one)."""
        spread = self.embedding_spread
        return spread is not None and not (math.isfinite(spread) and spread > COLLAPSED_SPREAD)

    @property
    def learned(self) -> bool:
        """Its validation SSIM rose by more than ``LEARNED_SSIM`` from its first validation to its last, its
        embeddings tell designs apart and its trial shows no defect to the end of its budget."""
        if self.first_ssim is None or self.last_ssim is None or self.collapsed or self.defect is not None:
            return False
        return self.last_ssim - self.first_ssim > LEARNED_SSIM

    @property
    def verdict(self) -> str:
        if not self.configuration.healthy:
            return "stopped" if self.stopped_by is not None else "MISSED"
        if self.stopped_by is None:
            return "ok"
        if self.steps_run < STEPS or self.embedding_spread is None:
            return "stopped, not run to its budget"
        return "FALSE STOP" if self.learned else "stopped, did not learn in its budget"


def healthy_configurations() -> list[Configuration]:
    """34 configurations: every combination of preset, loss, image size and batch size (8, 64) twice, with
    the learning rate (1e-4, 1e-3, 1e-2), decay and seed varied across them, plus batch sizes 16 and 32."""
    configurations = []
    combinations = [
        (preset, loss, size, batch)
        for preset in ("optimized", "baseline")
        for loss in ("ssim", "l2")
        for size in IMAGE_SIZES
        for batch in (8, 64)
    ]
    learning_rates = (1e-4, 1e-3, 1e-2)
    for repeat in range(2):
        for index, (preset, loss, size, batch) in enumerate(combinations):
            configurations.append(
                {
                    "learning_rate": learning_rates[(index + repeat) % 3],
                    "batch_size": batch,
                    "preset": preset,
                    "loss": loss,
                    "decay": ("none", "exponential")[(index // 2 + repeat) % 2],
                    "seed": 1 + repeat,
                    "image_size": size,
                }
            )
    for batch, learning_rate in ((16, 3e-4), (32, 3e-3)):
        configurations.append(
            {
                "learning_rate": learning_rate,
                "batch_size": batch,
                "preset": "optimized",
                "loss": "ssim",
                "decay": "none",
                "seed": 1,
                "image_size": 32,
            }
        )
    return [
        Configuration(name=f"healthy-{index + 1:02d}", healthy=True, hyperparameters=hyperparameters)
        for index, hyperparameters in enumerate(configurations)
    ]


def bad_configurations() -> list[Configuration]:
    """10 jobs that are bad by construction, each kind in two settings."""
    base = {"batch_size": 16, "decay": "none", "seed": 1}
    small = {**base, "preset": "baseline", "loss": "l2", "image_size": 16}
    large = {**base, "preset": "optimized", "loss": "ssim", "image_size": 32}
    dead = {"bottleneck_layers": 16, "bottleneck_width": 8}
    cases = [
        ("zero-lr", {**large, "learning_rate": 0.0}, False, "learning rate 0: no weight moves"),
        ("zero-lr-small", {**small, "learning_rate": 0.0}, False, "learning rate 0: no weight moves"),
        ("tiny-lr", {**large, "learning_rate": 1e-7}, False, "learning rate 1e-7: nothing measurable moves"),
        ("tiny-lr-small", {**small, "learning_rate": 1e-7}, False, "learning rate 1e-7"),
        ("huge-lr", {**large, "learning_rate": 30.0}, False, "learning rate 30: far too large"),
        ("huge-lr-small", {**small, "learning_rate": 1e6}, False, "learning rate 1e6: far too large"),
        ("dead-bottleneck", {**large, **dead, "learning_rate": 3e-3}, False, "16 ReLU layers of 8 units"),
        (
            "dead-bottleneck-small",
            {**small, **dead, "learning_rate": 1e-2},
            False,
            "16 ReLU layers of 8 units",
        ),
        ("nan-data", {**large, "learning_rate": 1e-3}, True, "one NaN pixel per training batch"),
        ("nan-data-small", {**small, "learning_rate": 1e-3}, True, "one NaN pixel per training batch"),
    ]
    return [
        Configuration(name=name, healthy=False, hyperparameters=hyperparameters, nan_data=nan, why=why)
        for name, hyperparameters, nan, why in cases
    ]


def prepare_data(directory: Path, image_sizes: Sequence[int] = IMAGE_SIZES) -> dict[int, Path]:
    """Render the designs once and transform them into one channel per image size (the transformer core)."""
    from training import transform_cli
    from training.render import batches

    manifest = batches.generate_dataset(
        directory / "renders",
        designs=DESIGNS,
        designs_per_batch=DESIGNS_PER_BATCH,
        views=VIEWS,
        size=RENDER_SIZE,
        seed=RENDER_SEED,
    )
    archives = [Path(batch.path) for batch in manifest.batches]
    channels = {}
    for size in image_sizes:
        channels[size] = directory / f"shards-{size}"
        transform_cli.write_shards(archives, channels[size], image_size=size, num_views=VIEWS)
    return channels


def nan_batches(dataset: Any) -> Any:
    """The same batches with the first pixel of the first view of each batch set to NaN."""
    import tensorflow as tf

    def poison(views: tf.Tensor) -> tf.Tensor:
        index = tf.constant([[0, 0, 0, 0]])
        return tf.tensor_scatter_nd_update(views, index, tf.constant([math.nan], views.dtype))

    return dataset.map(poison)


@contextlib.contextmanager
def poisoned_training_data() -> Iterator[None]:
    """Wrap ``training.job.load_datasets`` so that the training batches carry NaN (validation stays clean)."""
    from training import job

    original = job.load_datasets

    def load_datasets(*arguments: Any, **keywords: Any) -> Any:
        datasets = original(*arguments, **keywords)
        return dataclasses.replace(datasets, train=nan_batches(datasets.train))

    job.load_datasets = load_datasets  # type: ignore[assignment]
    try:
        yield
    finally:
        job.load_datasets = original  # type: ignore[assignment]


def run_job(
    configuration: Configuration,
    channel: Path,
    root: Path,
    *,
    steps: int = STEPS,
    validation_interval: int = VALIDATION_INTERVAL,
    stop: bool = True,
) -> Outcome:
    """Run one job through the container entry point, then read what it left; ``stop=False``: the rules are
    evaluated but nothing stops the job (its embeddings are then measured too)."""
    import keras

    from training import train

    root.mkdir(parents=True)
    hyperparameters = {
        **COMMON,
        **configuration.hyperparameters,
        "steps": steps,
        "validation_interval": validation_interval,
        "debugger_rules": RULES,
        "debugger_hook_config": json.dumps(HOOK_CONFIG),
        "debugger_out_dir": str(root / "tensors"),
        "debugger_self_terminate_after": 0.01 if stop else 0,
    }
    argv = [item for key, value in hyperparameters.items() for item in (f"--{key}", str(value))]
    environment = {**os.environ, "AUTOSTOP_OPT_ML": str(root / "opt_ml"), "SM_CHANNEL_TRAIN": str(channel)}
    keras.backend.clear_session()
    started = time.perf_counter()
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    data = poisoned_training_data() if configuration.nan_data else contextlib.nullcontext()
    try:
        with contextlib.redirect_stdout(_Silent()), data:
            exit_code = train.main(argv, environment)
    finally:  # the entry point installs its stop handlers; the next job (or pytest) gets its own back
        for number, handler in handlers.items():
            signal.signal(number, handler)
    seconds = time.perf_counter() - started
    data_dir = root / "opt_ml" / "output" / "data"
    statuses = json.loads((data_dir / "debugger-rules.json").read_text(encoding="utf-8"))
    found = [status for status in statuses if status["RuleEvaluationStatus"] == "IssuesFound"]
    first = min(found, key=lambda status: status["Step"]) if found else None
    metrics = [
        json.loads(line) for line in (data_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    validation = [line["ssim"] for line in metrics if line["mode"] == "validation"]
    validation_losses = tuple(
        (int(line["step"]), float(line["loss"])) for line in metrics if line["mode"] == "validation"
    )
    summary = json.loads((root / "opt_ml" / "model" / "training.json").read_text(encoding="utf-8"))
    defect, defect_step = defect_in_trial(str(root / "tensors"))
    smallest_first_gradient, lowest_peak_ratio = gradient_scales(str(root / "tensors"))
    errors = [status for status in statuses if status["RuleEvaluationStatus"] == "Error"]
    if errors:
        raise RuntimeError(f"{configuration.name}: a rule ended in Error: {errors}")
    return Outcome(
        configuration=configuration,
        exit_code=exit_code,
        steps_run=int(summary["step"]),
        stopped_by=first["RuleConfigurationName"] if first else None,
        stop_step=first["Step"] if first else None,
        finding=first["Finding"] if first else "",
        defect=defect,
        defect_step=defect_step,
        first_ssim=validation[0] if validation else None,
        last_ssim=validation[-1] if validation else None,
        seconds=seconds,
        smallest_first_gradient=smallest_first_gradient,
        lowest_peak_ratio=lowest_peak_ratio,
        embedding_spread=None if stop else embedding_spread(root / "opt_ml" / "model", channel),
        validation_losses=validation_losses,
    )


def embedding_spread(model_dir: Path, channel: Path) -> float:
    """The largest per-dimension standard deviation of the job's embeddings of every design in ``channel``,
    relative to their mean absolute value (NaN when an embedding is not finite)."""
    import numpy as np

    from training.analysis import embeddings

    encoder = embeddings.load_encoder(model_dir)
    vectors = np.asarray(embeddings.embed_shards(encoder, channel).vectors, np.float64)
    if not np.all(np.isfinite(vectors)):
        return math.nan
    return float(np.max(np.std(vectors, axis=0)) / (np.mean(np.abs(vectors)) + 1e-30))


class _Silent:
    """Swallows the job's metric lines (the bench prints its own progress on stderr)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def defect_in_trial(path: str) -> tuple[str | None, int | None]:
    """The first step at which the trial itself shows a defect (read without the rules), or (None, None)."""
    import numpy as np
    from smdebug.core.modes import ModeKeys
    from smdebug.trials import create_trial

    trial = create_trial(path)
    found: list[tuple[int, str]] = []
    for name in trial.tensor_names():
        tensor = trial.tensor(name)
        for step in tensor.steps(mode=ModeKeys.TRAIN):
            value = np.asarray(tensor.value(step, mode=ModeKeys.TRAIN))
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                found.append((step, f"{name} not finite"))
                break
    for name in trial.tensor_names(collection="gradients"):
        tensor = trial.tensor(name)
        steps = tensor.steps(mode=ModeKeys.TRAIN)
        zero = [bool(np.all(np.asarray(tensor.value(step, mode=ModeKeys.TRAIN)) == 0)) for step in steps]
        dead_from = len(zero)
        while dead_from > 0 and zero[dead_from - 1]:
            dead_from -= 1
        if len(zero) - dead_from >= DEAD_STEPS:
            found.append((steps[dead_from], f"{name} exactly 0 to the end"))
    loss = trial.tensor("loss")
    validation = [
        (step, float(loss.value(step, mode=ModeKeys.EVAL))) for step in loss.steps(mode=ModeKeys.EVAL)
    ]
    for (_, before), (step, after) in itertools.pairwise(validation):
        if math.isfinite(before) and abs(after - before) <= abs(before) * ROUND_OFF:
            found.append((step, "validation loss did not move"))
            break
    if not found:
        return None, None
    step, what = min(found)
    return what, step


def gradient_scales(path: str) -> tuple[float | None, float | None]:
    """The smallest mean |gradient| of a gradient tensor at its first saved step (a fresh layer's scale),
    and the lowest ratio of a tensor's nonzero mean |gradient| to the largest it had at earlier saves."""
    import numpy as np
    from smdebug.core.modes import ModeKeys
    from smdebug.trials import create_trial

    trial = create_trial(path)
    first, ratios = [], []
    for name in trial.tensor_names(collection="gradients"):
        tensor = trial.tensor(name)
        means = [
            float(np.mean(np.abs(np.asarray(tensor.value(step, mode=ModeKeys.TRAIN)))))
            for step in tensor.steps(mode=ModeKeys.TRAIN)
        ]
        means = [mean for mean in means if math.isfinite(mean)]
        if not means:
            continue
        first.append(means[0])
        peak = means[0]
        for mean in means[1:]:
            if mean > 0 and peak > 0:
                ratios.append(mean / peak)
            peak = max(peak, mean)
    return (min(first) if first else None), (min(ratios) if ratios else None)


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_all(configurations: Sequence[Configuration], channels: dict[int, Path], root: Path) -> list[Outcome]:
    outcomes = []
    for configuration in configurations:
        size = int(configuration.hyperparameters["image_size"])
        outcome = run_job(configuration, channels[size], root / configuration.name, stop=False)
        log(
            f"{configuration.name}: {outcome.verdict} (stopped by {outcome.stopped_by} at "
            f"{outcome.stop_step}; defect {outcome.defect} at {outcome.defect_step}; {outcome.seconds:.0f} s)"
        )
        outcomes.append(outcome)
    return outcomes


def _ratio(outcome: Outcome) -> str:
    ratio = outcome.lowest_peak_ratio
    return "-" if ratio is None else f"{ratio:.1g}"


def _step(value: int | None) -> str:
    return "-" if value is None else str(value)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _rates(outcome: Outcome) -> str:
    """The validation loss's fall per step at the first comparison and the median over all of them."""
    rates = outcome.fall_rates
    if not rates:
        return "-"
    return f"{rates[0]:.2g} / {statistics.median(rates):.2g}"


def render(outcomes: Sequence[Outcome], seconds: float, cpu_seconds: float) -> str:
    healthy = [outcome for outcome in outcomes if outcome.configuration.healthy]
    bad = [outcome for outcome in outcomes if not outcome.configuration.healthy]
    false_stops = [outcome for outcome in healthy if outcome.verdict == "FALSE STOP"]
    not_learning = [
        outcome for outcome in healthy if outcome.verdict == "stopped, did not learn in its budget"
    ]
    missed = [outcome for outcome in bad if outcome.verdict == "MISSED"]
    lines = [
        "## False stops and missed stops (rules at their defaults)",
        "",
        f"`{COMMAND}` -- {len(healthy)} healthy-grid and {len(bad)} bad jobs, {STEPS} steps each at most, "
        f"validation every {VALIDATION_INTERVAL} steps, rules `{RULES}` with every parameter at its default "
        f"(losses saved every 5 steps, gradients every 10); {DESIGNS} rendered designs. Wall time "
        f"{seconds / 60:.1f} min, CPU time {cpu_seconds / 60:.1f} min (this process, all threads; wall time "
        "depends on what else the machine runs). Targets: 0 false stops, 0 missed stops.",
        "",
        f"- **False stops: {len(false_stops)} of {len(healthy)}** healthy-grid jobs"
        + (f" ({', '.join(outcome.configuration.name for outcome in false_stops)})" if false_stops else ""),
        f"- **Missed stops: {len(missed)} of {len(bad)}** bad jobs"
        + (f" ({', '.join(outcome.configuration.name for outcome in missed)})" if missed else ""),
    ]
    fresh = [
        outcome.smallest_first_gradient for outcome in healthy if outcome.smallest_first_gradient is not None
    ]
    if fresh:
        lines.append(
            f"- Healthy jobs' smallest mean |gradient| of a tensor at its first save (step 10): "
            f"{min(fresh):.2g} to {max(fresh):.2g} across jobs -- "
            f"{sum(value < 1e-7 for value in fresh)} of {len(fresh)} jobs below AWS's absolute threshold 1e-7"
        )
    learned = [outcome for outcome in healthy if outcome.learned and outcome.lowest_peak_ratio is not None]
    if learned:
        lowest = min(learned, key=lambda outcome: outcome.lowest_peak_ratio or math.inf)
        lines.append(
            f"- Healthy jobs that learned: lowest nonzero mean |gradient| of a tensor relative to its own "
            f"earlier peak {lowest.lowest_peak_ratio:.2g} ({lowest.configuration.name}); VanishingGradient's "
            "peak_fraction is 1e-6"
        )
    from training.debugger import rules

    learned_rates = [outcome.fall_rates[0] for outcome in healthy if outcome.learned and outcome.fall_rates]
    if learned_rates:
        lines.append(
            f"- LossNotDecreasing's min_decrease_per_step is {rules.MIN_DECREASE_PER_STEP:g}: the healthy "
            "jobs that learned saw their "
            f"validation loss fall by {min(learned_rates):.2g} per step or more at their first comparison "
            f"(a negative figure: it rose)"
        )
    if not_learning:
        lines.append(
            f"- Grid jobs the rules stopped that did not learn in their budget (validation SSIM up by at "
            f"most {LEARNED_SSIM}, every design given the same embedding, or a defect in the trial to the "
            f"end of the budget; not false stops): "
            f"{', '.join(outcome.configuration.name for outcome in not_learning)}"
        )
    collapsed = [outcome for outcome in healthy if outcome.collapsed]
    if collapsed:
        lines.append(
            f"- Grid jobs whose encoder ended giving every design the same embedding: "
            f"{', '.join(outcome.configuration.name for outcome in collapsed)}"
        )
    lines += [
        "",
        "### Bad jobs: where the defect appears and where the job was stopped",
        "",
        "| job | configuration | defect in the trial (first saved step showing it) | validation loss fall "
        "per step: first / median | stopped by | at step | wall s |",
        "|---|---|---|---|---|---:|---:|",
    ]
    for outcome in bad:
        configuration = outcome.configuration
        lines.append(
            f"| {configuration.name} | {configuration.why}: `{configuration.describe()}` | "
            f"{outcome.defect or 'none'} ({_step(outcome.defect_step)}) | {_rates(outcome)} | "
            f"{outcome.stopped_by or 'not stopped'} | {_step(outcome.stop_step)} | {outcome.seconds:.0f} |"
        )
    lines += [
        "",
        "### Healthy-grid jobs",
        "",
        "| job | configuration | validation SSIM first / last (whole budget) | validation loss fall per "
        "step: first / median | embedding spread | rules would stop it at (rule, step) | defect in the "
        "trial | lowest gradient / own peak | verdict |",
        "|---|---|---|---|---:|---|---|---:|---|",
    ]
    for outcome in healthy:
        configuration = outcome.configuration
        stop = f"{outcome.stopped_by} ({outcome.stop_step})" if outcome.stopped_by else "-"
        defect = f"{outcome.defect} ({outcome.defect_step})" if outcome.defect else "none"
        spread = "-" if outcome.embedding_spread is None else f"{outcome.embedding_spread:.1g}"
        lines.append(
            f"| {configuration.name} | `{configuration.describe()}` | {_number(outcome.first_ssim)} / "
            f"{_number(outcome.last_ssim)} | {_rates(outcome)} | {spread} | {stop} | {defect} | "
            f"{_ratio(outcome)} | {outcome.verdict} |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> str:
    started, cpu_started = time.perf_counter(), time.process_time()
    root = Path(tempfile.mkdtemp(prefix="autostop-false-stops-"))
    try:
        log("rendering and transforming the dataset")
        channels = prepare_data(root / "data")
        outcomes = run_all([*healthy_configurations(), *bad_configurations()], channels, root / "jobs")
        return render(outcomes, time.perf_counter() - started, time.process_time() - cpu_started)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.stdout.write(main())
