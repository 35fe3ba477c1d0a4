"""The tensor writer's folder discipline: a run judges its own steps whatever the folder held before.

Runs are tiny but real (the production trainer, a model of a few thousand parameters, one fixed batch of
random views, a dozen steps); the trial is read back with smdebug's ``create_trial``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import tensorflow as tf
from smdebug.core.modes import ModeKeys
from smdebug.trials import create_trial

from tests.training.debugger import support
from training import hparams, trainer
from training.debugger import config, evaluator, layout, rules, signals, writer

# Real training (or many TensorFlow processes): a slow module, handed out first (tests/conftest.py).
pytestmark = pytest.mark.slow

HYPERPARAMETERS: dict[str, Any] = {
    "image_size": 32,
    "num_views": 6,
    "base_filters": 4,
    "bottleneck_width": 16,
    "embedding_size": 8,
    "batch_size": 4,
    "learning_rate": 0.01,
    "seed": 5,
}
# Losses every 5 steps, nothing else: the smallest trial that still has several steps.
HOOK_DOCUMENT = {"CollectionConfigurations": [{"CollectionName": "losses", "CollectionParameters": {}}]}
HOOK_PARAMETERS = {"HookParameters": {"save_interval": "5"}}


def _hook(out_dir: Path | str) -> config.HookConfig:
    return config.parse_debug_hook_config(
        {**HOOK_DOCUMENT, **HOOK_PARAMETERS}, source="test", out_dir=str(out_dir)
    )


def _views(seed: int) -> tf.data.Dataset:
    views = np.random.default_rng(seed).random((4, 32, 32, 6), np.float32)
    return tf.data.Dataset.from_tensors(views).repeat()


class LossRecorder(rules.AutostopRule):
    """Remembers the training loss it read at every step it was asked to judge (never fires)."""

    PARAMETERS: ClassVar[dict[str, Any]] = {}
    REQUIRED_COLLECTIONS: ClassVar[tuple[str, ...]] = (config.LOSSES,)
    judged: ClassVar[dict[int, float]] = {}

    def invoke_at_step(self, step: int) -> bool:
        if step % 2 == 0:  # training steps (global step 2s)
            value = self.base_trial.tensor(layout.LOSS_TENSOR).value(step)
            LossRecorder.judged[layout.training_step_of(step)] = float(value)
        return False


class LossLog(tf.keras.callbacks.Callback):
    """The loss the trainer computed at each step (what the writer should have recorded)."""

    def __init__(self) -> None:
        super().__init__()
        self.losses: dict[int, float] = {}

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.losses[batch] = float((logs or {})["loss"])


def _train(
    out_dir: Path,
    *,
    steps: int,
    start_step: int = 0,
    data_seed: int = 0,
    listeners: tuple[writer.WriterListener, ...] = (),
    lines: list[str] | None = None,
) -> LossLog:
    built = trainer.build_trainer(hparams.HyperParameters(**HYPERPARAMETERS))
    built.optimizer.iterations.assign(start_step)  # a resumed job: its optimizer counts the global step
    losses = LossLog()
    trainer.fit(
        built,
        _views(data_seed),
        total_steps=start_step + steps,
        callbacks=[
            losses,
            writer.DebuggerTensorWriter(
                _hook(out_dir), listeners=list(listeners), log=(lines if lines is not None else []).append
            ),
        ],
    )
    return losses


def test_a_new_run_into_a_folder_holding_a_trial_is_refused_before_its_first_step(tmp_path: Path) -> None:
    """GIVEN a folder holding the ended trial of a first run
    WHEN a second, new run (step 0, no checkpoint) is pointed at the same folder
    THEN it stops with one clear error before training, and the first run's trial is left as it was."""
    out_dir = tmp_path / "tensors"
    first = _train(out_dir, steps=10)
    before = sorted(path.relative_to(out_dir) for path in out_dir.rglob("*"))
    recorder = support.Recorder()
    rule_evaluator = evaluator.RuleEvaluator(
        config.parse_rule_configurations("ExplodingTensor"),
        dispatcher=signals.SignalDispatcher([recorder.sink]),
        log=lambda _: None,
    )

    with pytest.raises(config.TrialFolderInUseError, match="already holds a trial of another run"):
        _train(out_dir, steps=10, data_seed=1, listeners=(rule_evaluator,))

    assert sorted(path.relative_to(out_dir) for path in out_dir.rglob("*")) == before
    trial = create_trial(str(out_dir))
    assert trial.tensor("loss").value(10, mode=ModeKeys.TRAIN) == pytest.approx(first.losses[10])
    # the evaluator was told, and no rule claims to have judged anything
    assert rule_evaluator.statuses() == {"ExplodingTensor": "Error"}


def test_two_runs_claiming_one_folder_at_the_same_moment_one_wins(tmp_path: Path) -> None:
    """GIVEN two new runs that both found the folder empty (two local jobs sharing the default path)
    WHEN both claim it THEN exactly one gets it (an exclusive create), and the folder then holds a trial."""
    out_dir = str(tmp_path / "shared")
    Path(out_dir).mkdir()

    assert layout.claim(out_dir, "{}")
    assert not layout.claim(out_dir, "{}")
    assert layout.holds_trial(out_dir)


def test_a_resumed_run_continues_its_own_trial_and_is_judged_on_its_own_values(tmp_path: Path) -> None:
    """GIVEN the trial of a run that wrote steps 5-20 but whose last checkpoint was at step 10 (killed)
    WHEN the job resumes from step 10 (other data, so other losses) into the same folder, judged by a rule
    THEN steps 15 and 20 of the interrupted run are replaced, not shadowed: the trial holds the resumed
    run's values, and the rule judged exactly the resumed run's steps, with the resumed run's values."""
    out_dir = tmp_path / "tensors"
    _train(out_dir, steps=20, data_seed=0)
    LossRecorder.judged = {}
    rule_evaluator = evaluator.RuleEvaluator(
        config.parse_rule_configurations("LossRecorder"),
        dispatcher=signals.SignalDispatcher([]),
        registry={"LossRecorder": LossRecorder},
        log=lambda _: None,
    )
    lines: list[str] = []

    resumed = _train(out_dir, steps=15, start_step=10, data_seed=1, listeners=(rule_evaluator,), lines=lines)

    assert f"debugger: {out_dir} held an ended trial; resuming it (end marker removed)" in lines
    assert any("removed 2 steps at or after step 11" in line for line in lines)
    trial = create_trial(str(out_dir))
    assert trial.tensor("loss").steps(mode=ModeKeys.TRAIN) == [5, 10, 15, 20, 25]
    for step in (15, 20, 25):
        assert trial.tensor("loss").value(step, mode=ModeKeys.TRAIN) == pytest.approx(resumed.losses[step])
    assert LossRecorder.judged == pytest.approx({step: resumed.losses[step] for step in (15, 20, 25)})
    assert json.loads((out_dir / layout.RUN_FILE_NAME).read_text(encoding="utf-8"))["first_step"] == 1


def test_a_loss_that_turns_nan_between_saves_is_saved_and_judged_at_its_own_step(tmp_path: Path) -> None:
    """GIVEN losses saved every 5 steps, and a batch of NaN views at step 7 (so the loss of step 7 is NaN:
    the reconstruction target itself is NaN, whatever CPU computes it)
    WHEN the run is judged by ExplodingTensor
    THEN the trial holds step 7 with its NaN loss (off schedule, only the step where the loss turned), and
    ExplodingTensor fires at step 7, not at the next save (10)."""
    views = np.random.default_rng(0).random((12, 4, 32, 32, 6), np.float32)
    views[6] = np.nan  # the 7th batch
    recorder = support.Recorder()
    rule_evaluator = evaluator.RuleEvaluator(
        config.parse_rule_configurations("ExplodingTensor"),
        dispatcher=signals.SignalDispatcher([recorder.sink]),
        log=lambda _: None,
    )
    built = trainer.build_trainer(hparams.HyperParameters(**HYPERPARAMETERS))
    out_dir = tmp_path / "tensors"

    trainer.fit(
        built,
        tf.data.Dataset.from_tensor_slices(views),
        total_steps=12,
        callbacks=[
            writer.DebuggerTensorWriter(_hook(out_dir), listeners=[rule_evaluator], log=lambda _: None)
        ],
    )

    trial = create_trial(str(out_dir))
    assert trial.tensor("loss").steps(mode=ModeKeys.TRAIN) == [5, 7, 10]
    assert np.isnan(trial.tensor("loss").value(7, mode=ModeKeys.TRAIN))
    assert [signal.step for signal in recorder.of("ExplodingTensor") if signal.step is not None] == [7]
    assert rule_evaluator.statuses() == {"ExplodingTensor": "IssuesFound"}
