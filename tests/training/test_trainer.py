"""The train step and the step-counted loop: gradients exposed, callbacks, stop requests, resume, decay."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.conftest import RenderedShards
from training import data, hparams, trainer

# Real training (or many TensorFlow processes): a slow module, handed out first (tests/conftest.py).
pytestmark = pytest.mark.slow

TINY = {"image_size": 16, "num_views": 2, "base_filters": 2, "bottleneck_width": 8, "embedding_size": 4}


def _trainer(**overrides: Any) -> trainer.AutoencoderTrainer:
    return trainer.build_trainer(hparams.HyperParameters(**{**TINY, **overrides}))


@pytest.fixture(scope="module")
def shared_trainer() -> trainer.AutoencoderTrainer:
    """One trainer for the loop tests: its compiled step is traced once (tracing dominates their time)."""
    return _trainer()


@pytest.fixture
def loop_trainer(shared_trainer: trainer.AutoencoderTrainer) -> trainer.AutoencoderTrainer:
    """The shared trainer back at step 0 and not recording (the loop tests do not depend on its weights)."""
    shared_trainer.optimizer.iterations.assign(0)
    shared_trainer.should_record_gradients = lambda step: False
    return shared_trainer


def _batches(count: int = 8, seed: int = 0) -> tf.data.Dataset:
    views = np.random.default_rng(seed).random((count, 16, 16, 2), np.float32)
    return tf.data.Dataset.from_tensor_slices(views).batch(4, drop_remainder=True).repeat()


class Recorder(keras.callbacks.Callback):
    """Keeps what the loop tells its callbacks (and, when asked, a copy of the exposed gradients)."""

    def __init__(self, stop_after: int = 0, copy_gradients: bool = False) -> None:
        super().__init__()
        self.events: list[tuple[str, Any]] = []
        self.gradients: dict[int, dict[str, np.ndarray]] = {}
        self.stop_after = stop_after
        self.stop = False
        self.copy_gradients = copy_gradients

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.events.append(("train_begin", int(self.model.optimizer.iterations)))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.events.append(("batch_end", batch, dict(logs or {})))
        if self.copy_gradients:
            self.gradients[batch] = {
                name: value.numpy().copy() for name, value in self.model.gradients.items()
            }
        if self.stop_after and batch >= self.stop_after:
            self.stop = True

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        self.events.append(("test_end", int(self.model.optimizer.iterations), dict(logs or {})))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.events.append(("train_end", dict(logs or {})))

    def steps(self) -> list[int]:
        return [event[1] for event in self.events if event[0] == "batch_end"]


def test_the_train_step_exposes_this_steps_gradients() -> None:
    # GIVEN a trainer recording gradients, and a tape's gradients for a batch at the trainer's current weights
    model_trainer = _trainer()
    exposed = model_trainer.enable_gradient_recording()
    views = next(iter(_batches()))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(
            model_trainer.reconstruction_loss(views, model_trainer.autoencoder(views, training=True))
        )
    expected = dict(
        zip(
            [variable.path for variable in model_trainer.autoencoder.trainable_variables],
            tape.gradient(loss, model_trainer.autoencoder.trainable_variables),
            strict=True,
        )
    )

    # WHEN the compiled step runs with recording on
    logs = tf.function(lambda batch: model_trainer.step(batch, record_gradients=True))(views)

    # THEN every trainable weight has its gradient, named by the weight's path, equal to the tape's
    assert float(logs["loss"]) == pytest.approx(float(loss), rel=1e-5)
    assert set(exposed) == set(expected)
    assert "encoder_conv_1/kernel" in exposed
    assert "embedding/bias" in exposed
    for name, gradient in expected.items():
        np.testing.assert_allclose(exposed[name].numpy(), gradient.numpy(), rtol=1e-4, atol=1e-7)
    assert any(float(tf.reduce_max(tf.abs(value))) > 0 for value in exposed.values())


def test_only_selected_steps_record_gradients() -> None:
    # GIVEN recording on step 2 only, and a callback that copies the exposed gradients after each step
    model_trainer = _trainer()
    model_trainer.enable_gradient_recording(lambda step: step == 2)
    recorder = Recorder(copy_gradients=True)

    # WHEN three steps run
    trainer.fit(model_trainer, _batches(), total_steps=3, callbacks=[recorder])

    # THEN step 1 saw nothing yet, step 2 saw its gradients, step 3 left them alone
    name = "encoder_conv_1/kernel"
    assert not recorder.gradients[1][name].any()
    assert recorder.gradients[2][name].any()
    np.testing.assert_array_equal(recorder.gradients[3][name], recorder.gradients[2][name])


def test_fit_reports_global_steps_validates_and_checkpoints_on_schedule(
    loop_trainer: trainer.AutoencoderTrainer,
) -> None:
    # GIVEN a trainer resumed at step 5 (its optimizer counts the global step)
    model_trainer = loop_trainer
    model_trainer.optimizer.iterations.assign(5)
    recorder = Recorder()
    saved: list[int] = []

    # WHEN it trains to step 9, validating every 2 and checkpointing every 3 steps
    result = trainer.fit(
        model_trainer,
        _batches(),
        total_steps=9,
        validation_batches=_batches(seed=1).take(2),
        validation_interval=2,
        checkpoint_interval=3,
        save_checkpoint=saved.append,
        callbacks=[recorder],
    )

    # THEN callbacks see steps 6..9, validation at 6, 8 and the end, checkpoints at 6, 9
    assert recorder.events[0] == ("train_begin", 5)
    assert recorder.steps() == [6, 7, 8, 9]
    assert [event[1] for event in recorder.events if event[0] == "test_end"] == [6, 8, 9]
    assert saved == [6, 9]
    assert (result.step, result.stopped) == (9, False)
    assert set(result.last_logs) == {"loss", "ssim", "l2", "learning_rate"}
    assert result.validation_logs is not None
    assert set(result.validation_logs) == {"loss", "ssim", "l2"}
    assert recorder.events[-1] == ("train_end", {"step": 9.0, "stopped": 0.0})


def test_a_stop_request_ends_after_the_current_step_with_a_checkpoint(
    loop_trainer: trainer.AutoencoderTrainer,
) -> None:
    # GIVEN a stop requested once step 2 has finished (as the SIGTERM handler would)
    model_trainer = loop_trainer
    recorder = Recorder(stop_after=2)
    saved: list[int] = []

    # WHEN training for 1000 steps
    result = trainer.fit(
        model_trainer,
        _batches(),
        total_steps=1000,
        validation_batches=_batches(seed=1).take(1),
        checkpoint_interval=500,
        save_checkpoint=saved.append,
        callbacks=[recorder],
        should_stop=lambda: recorder.stop,
    )

    # THEN it stops at step 2, checkpoints it, skips the final validation
    assert (result.step, result.stopped) == (2, True)
    assert saved == [2]
    assert recorder.steps() == [1, 2]
    assert not [event for event in recorder.events if event[0] == "test_end"]


def test_training_ends_when_a_finite_dataset_runs_out(loop_trainer: trainer.AutoencoderTrainer) -> None:
    saved: list[int] = []
    result = trainer.fit(loop_trainer, _batches().take(3), total_steps=100, save_checkpoint=saved.append)
    assert (result.step, result.stopped, saved) == (3, False, [3])


def test_learning_rate_decay_follows_the_global_step() -> None:
    # GIVEN exponential decay halving the rate every step  WHEN three steps run  THEN the logs show it
    recorder = Recorder()
    model_trainer = _trainer(learning_rate=0.01, decay="exponential", decay_rate=0.5, decay_steps=1)
    trainer.fit(model_trainer, _batches(), total_steps=3, callbacks=[recorder])
    rates = [event[2]["learning_rate"] for event in recorder.events if event[0] == "batch_end"]
    assert rates == pytest.approx([0.01, 0.005, 0.0025])


def test_inverse_time_decay_is_a_schedule_of_the_global_step() -> None:
    optimizer = trainer.make_optimizer(
        hparams.HyperParameters(
            **TINY, learning_rate=0.01, decay="inverse_time", decay_rate=1.0, decay_steps=1
        )
    )
    optimizer.iterations.assign(3)  # a resumed run: the schedule continues from the restored step
    assert float(optimizer.learning_rate) == pytest.approx(0.01 / (1 + 3))
    constant = trainer.make_optimizer(hparams.HyperParameters(**TINY, learning_rate=0.02))
    constant.iterations.assign(1000)
    assert float(constant.learning_rate) == pytest.approx(0.02)


def test_evaluate_weights_batches_by_their_size(loop_trainer: trainer.AutoencoderTrainer) -> None:
    model_trainer = loop_trainer
    views = np.random.default_rng(3).random((6, 16, 16, 2), np.float32)
    uneven = tf.data.Dataset.from_tensor_slices(views).batch(4)  # batches of 4 and 2
    whole = trainer.evaluate(model_trainer, tf.data.Dataset.from_tensor_slices(views).batch(6))
    assert trainer.evaluate(model_trainer, uneven) == pytest.approx(whole, rel=1e-5)


def test_the_same_seed_builds_the_same_model() -> None:
    first, second = _trainer(seed=5), _trainer(seed=5)
    for left, right in zip(first.autoencoder.get_weights(), second.autoencoder.get_weights(), strict=True):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(
        first.autoencoder.get_weights()[0], _trainer(seed=6).autoencoder.get_weights()[0]
    )


# --- the contrastive term (the loss hook) -------------------------------------------------------------------


def test_without_a_contrastive_weight_the_step_is_the_reconstruction_step(
    loop_trainer: trainer.AutoencoderTrainer,
) -> None:
    assert loop_trainer.auxiliary_losses == ()
    result = trainer.fit(loop_trainer, _batches(), total_steps=1)
    assert set(result.last_logs) == {"loss", "ssim", "l2", "learning_rate"}
    assert result.last_logs["loss"] == pytest.approx(1.0 - result.last_logs["ssim"], abs=1e-6)


def test_the_contrastive_term_joins_the_objective_and_its_gradients() -> None:
    # GIVEN a trainer with the contrastive term, recording gradients, and the tape's gradients of the
    # reconstruction loss alone at its initial weights
    model_trainer = _trainer(contrastive_weight=0.5, view_pooling="mean", normalize_embedding=True)
    exposed = model_trainer.enable_gradient_recording()
    views = next(iter(_batches()))
    variables = model_trainer.autoencoder.trainable_variables
    with tf.GradientTape() as tape:
        reconstruction_only = tf.reduce_mean(
            model_trainer.reconstruction_loss(views, model_trainer.autoencoder(views, training=True))
        )
    reconstruction_gradients = dict(
        zip(
            [variable.path for variable in variables],
            tape.gradient(reconstruction_only, variables),
            strict=True,
        )
    )

    # WHEN one step runs
    logs = {
        name: float(value)
        for name, value in model_trainer.compiled_step(record_gradients=True)(views).items()
    }

    # THEN the loss is reconstruction + weight x contrastive, SSIM still describes the reconstruction
    assert logs["loss"] == pytest.approx(1.0 - logs["ssim"] + 0.5 * logs["contrastive"], rel=1e-5)
    assert logs["ssim"] == pytest.approx(1.0 - float(reconstruction_only), rel=1e-5)
    assert logs["contrastive"] > 0
    # AND the decoder's gradients are the reconstruction's (the term does not reach it), the encoder's not
    np.testing.assert_allclose(
        exposed["decoder_projection/kernel"].numpy(),
        reconstruction_gradients["decoder_projection/kernel"].numpy(),
        rtol=1e-4,
        atol=1e-7,
    )
    encoder_kernel = "encoder_conv_1/per_view/kernel"
    assert not np.allclose(exposed[encoder_kernel].numpy(), reconstruction_gradients[encoder_kernel].numpy())
    assert all(np.isfinite(value.numpy()).all() for value in exposed.values())


def test_validation_computes_the_same_objective_every_pass() -> None:
    model_trainer = _trainer(contrastive_weight=1.0)
    batches = _batches(seed=2).take(2)
    first = trainer.evaluate(model_trainer, batches)
    assert set(first) == {"loss", "ssim", "l2", "contrastive"}
    assert first["loss"] == pytest.approx(1.0 - first["ssim"] + first["contrastive"], rel=1e-5)
    assert trainer.evaluate(model_trainer, batches) == pytest.approx(first, rel=1e-6)


def test_the_debugger_records_and_judges_a_run_with_the_contrastive_term(
    rendered_shards: RenderedShards, tmp_path: Any
) -> None:
    """The writer's losses and gradients, the probe's embeddings and every rule, with the extra term."""
    import json

    from smdebug.core.modes import ModeKeys
    from smdebug.trials import create_trial

    from training.debugger import config, evaluator, layout, rules, signals, writer

    # GIVEN a run with the term on, the writer saving losses every 5 steps and gradients every step, and the
    # sweep's rules at their defaults judging it as it runs
    shape = {"image_size": rendered_shards.image_size, "num_views": rendered_shards.num_views}
    model_trainer = trainer.build_trainer(
        hparams.HyperParameters(
            **shape,
            base_filters=4,
            bottleneck_width=16,
            embedding_size=8,
            batch_size=8,
            seed=3,
            contrastive_weight=0.5,
            view_pooling="mean",
            normalize_embedding=True,
        )
    )
    train = data.load_dataset(rendered_shards.path, batch_size=8, repeat=True, drop_remainder=True, **shape)
    validation = data.load_dataset(rendered_shards.path, batch_size=8, **shape).take(1)
    probe = writer.probe_from_dataset(data.load_examples(rendered_shards.path, **shape), size=16)
    names = ("LossNotDecreasing", "VanishingGradient", "ExplodingTensor", "LatentClusterRule")
    configurations = config.parse_rule_configurations(
        json.dumps(
            [{"RuleConfigurationName": name, "RuleParameters": {"rule_to_invoke": name}} for name in names]
        )
    )
    document = {
        "HookParameters": {"save_interval": "5"},
        "CollectionConfigurations": [
            *({"CollectionName": name} for name in ("losses", "metrics", "embeddings")),
            {"CollectionName": "gradients", "CollectionParameters": {"save_interval": "1"}},
        ],
    }
    hook = config.parse_debug_hook_config(document, source="test", out_dir=str(tmp_path / "tensors"))
    hook = hook.with_required(evaluator.required_collections(configurations))
    lines: list[str] = []
    rule_evaluator = evaluator.RuleEvaluator(
        configurations,
        dispatcher=signals.SignalDispatcher(
            [signals.MetricLogLineSink(write=lines.append)], log=lines.append
        ),
        registry=rules.RULES,
        log=lines.append,
    )
    recorder = Recorder()

    # WHEN it trains 20 steps, validating every 10
    trainer.fit(
        model_trainer,
        train,
        total_steps=20,
        validation_batches=validation,
        validation_interval=10,
        callbacks=[
            recorder,
            writer.DebuggerTensorWriter(hook, probe=probe, listeners=[rule_evaluator], log=lines.append),
        ],
    )

    # THEN the trial's loss is the objective the step logged (reconstruction + weighted term)
    trial = create_trial(hook.out_dir)
    loss = trial.tensor(layout.LOSS_TENSOR)
    logged = {event[1]: event[2] for event in recorder.events if event[0] == "batch_end"}
    for step in loss.steps(mode=ModeKeys.TRAIN):
        saved = float(loss.value(step, mode=ModeKeys.TRAIN))
        assert saved == pytest.approx(logged[step]["loss"], rel=1e-6)
        assert saved == pytest.approx(
            1.0 - logged[step]["ssim"] + 0.5 * logged[step]["contrastive"], rel=1e-5
        )
    assert loss.steps(mode=ModeKeys.EVAL)
    # AND every weight's gradient is recorded, finite, at every step; the probe's embeddings are recorded
    gradient_names = trial.tensor_names(collection=config.GRADIENTS)
    assert len(gradient_names) == len(model_trainer.autoencoder.trainable_variables)
    for name in gradient_names:
        assert len(trial.tensor(name).steps(mode=ModeKeys.TRAIN)) == 20
        assert np.isfinite(trial.tensor(name).value(20, mode=ModeKeys.TRAIN)).all()
    assert trial.tensor(layout.EMBEDDING_TENSOR).steps(mode=ModeKeys.TRAIN)
    # AND every rule, LatentClusterRule included, judged the run to the end without an error
    statuses = rule_evaluator.statuses()
    assert set(statuses) == set(names)
    assert set(statuses.values()) <= {"NoIssuesFound", "IssuesFound"}
