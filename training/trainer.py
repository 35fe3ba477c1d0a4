"""The training loop: a Keras train step that exposes gradients, step-counted training with checkpoints.

Why a custom loop and not ``Model.fit``: a SageMaker job counts optimizer steps, checkpoints every N steps
and resumes mid-"epoch" after a spot interruption, validates every M steps, and must stop within seconds
of SIGTERM with a checkpoint. ``fit`` ties all of that to epochs. The loop still speaks Keras: the step
logic lives in ``AutoencoderTrainer.train_step``/``test_step`` (a ``keras.Model`` subclass), and the loop
drives standard ``keras.callbacks.Callback`` objects (metric log lines, TensorBoard, and the
Debugger tensor writer and rule evaluator) with these calls:

- ``on_train_begin()``; ``callback.model`` is the trainer (``trainer.autoencoder``, ``trainer.encoder``,
  ``trainer.optimizer``; ``int(trainer.optimizer.iterations)`` is the global step, also after a resume).
- ``on_train_batch_begin(step)`` / ``on_train_batch_end(step, logs)``: ``step`` is the global step being
  run (1-based, continues across resumes); ``logs`` hold this batch's ``loss``, ``ssim``, ``l2`` and the
  ``learning_rate`` used (batch values, not running means: rules such as LossNotDecreasing want them).
- ``on_test_begin()``, ``on_test_batch_end(batch, logs)``, ``on_test_end(logs)`` around each validation
  pass; ``on_test_end`` gets the validation means ``loss``, ``ssim``, ``l2``.
- ``on_train_end(logs)`` with ``step`` and ``stopped`` (1.0 when ended by a stop request).

Loss hook: ``loss`` is the objective the optimizer minimizes, the reconstruction loss plus each auxiliary
term (``losses.AuxiliaryLoss``, e.g. the contrastive term of ``contrastive_weight``) times its weight; each
term's own value is logged under its name (``contrastive``), in training and validation alike, and
``ssim``/``l2`` always describe the reconstruction. Validation computes the terms too, with one fixed seed,
so its ``loss`` is the same objective, the same on every pass over the same batches. Without terms (the
default) the step is exactly the reconstruction step.

Gradients: ``trainer.enable_gradient_recording(should_record)`` creates one non-trainable variable per
trainable weight (``trainer.gradients``, keyed by the weight's path, e.g. ``encoder_conv_1/kernel``); on
the steps where ``should_record(step)`` is true the compiled step also copies that step's gradients into
them, so a callback reads them in ``on_train_batch_end``. Other steps run a second compiled function that
skips the copy, so recording costs nothing on steps that are not saved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import keras
import tensorflow as tf

from training import hparams as hparams_module
from training import losses, model

StepPredicate = Callable[[int], bool]
# The step part of every validation batch's augmentation seed: validation's loss is a fixed function of
# the weights (training steps are >= 0).
VALIDATION_STEP = -1


class AutoencoderTrainer(keras.Model):
    """Trains a functional autoencoder with a reconstruction loss; reports SSIM and L2 for every loss."""

    def __init__(
        self,
        autoencoder: keras.Model,
        encoder: keras.Model,
        *,
        loss: str,
        auxiliary_losses: Sequence[losses.AuxiliaryLoss] = (),
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(name="trainer", **kwargs)
        self.autoencoder = autoencoder
        self.encoder = encoder
        self.loss_name = loss
        self.reconstruction_loss = losses.get(loss)
        # A term of weight 0 is not computed at all: the step stays the reconstruction step.
        self.auxiliary_losses = tuple(term for term in auxiliary_losses if term.weight > 0)
        self.augmentation_seed = seed
        self.gradients: dict[str, tf.Variable] = {}
        self.should_record_gradients: StepPredicate = _never
        self._compiled: dict[str, Callable[[tf.Tensor], dict[str, tf.Tensor]]] = {}

    def call(self, inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.autoencoder(inputs, training=training)

    def enable_gradient_recording(
        self, should_record: StepPredicate = lambda step: True
    ) -> dict[str, tf.Variable]:
        """Expose the gradients of the steps ``should_record`` selects (see the module docstring)."""
        if not self.gradients:
            for variable in self.autoencoder.trainable_variables:
                self.gradients[variable.path] = tf.Variable(
                    tf.zeros(variable.shape, variable.dtype),
                    trainable=False,
                    name="gradient/" + variable.path.replace("/", "_"),
                )
        self.should_record_gradients = should_record
        return self.gradients

    def _batch_metrics(
        self, views: tf.Tensor, reconstruction: tf.Tensor, loss: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        # With the SSIM loss the metric is already known: 1 - loss (SSIM costs more than the model on CPU).
        ssim = 1.0 - loss if self.loss_name == "ssim" else tf.reduce_mean(losses.ssim(views, reconstruction))
        return {"loss": loss, "ssim": ssim, "l2": tf.reduce_mean(losses.l2(views, reconstruction))}

    def _objective(
        self, views: tf.Tensor, reconstruction: tf.Tensor, seed: tf.Tensor, *, training: bool
    ) -> dict[str, tf.Tensor]:
        """The batch's logs; ``loss`` is reconstruction + the weighted auxiliary terms (module docstring)."""
        reconstruction_loss = tf.reduce_mean(self.reconstruction_loss(views, reconstruction))
        logs = self._batch_metrics(views, reconstruction, reconstruction_loss)
        for term in self.auxiliary_losses:
            value = term(self.encoder, views, seed, training=training)
            logs[term.name] = value
            logs["loss"] = logs["loss"] + term.weight * value
        return logs

    def _seed(self, step: tf.Tensor | int) -> tf.Tensor:
        """(job seed, global step): each step's augmentations differ, and a resumed run draws the same."""
        return tf.stack([tf.constant(self.augmentation_seed, tf.int64), tf.cast(step, tf.int64)])

    def step(self, views: tf.Tensor, record_gradients: bool | tf.Tensor = False) -> dict[str, tf.Tensor]:
        """One optimizer step on a batch of views.

        ``record_gradients`` may be a boolean tensor: the compiled step takes it as an input, so one trace
        serves recording and plain steps (a second trace of this step costs seconds of every job's start-up).
        """
        learning_rate = tf.convert_to_tensor(self.optimizer.learning_rate)
        seed = self._seed(self.optimizer.iterations)
        with tf.GradientTape() as tape:
            reconstruction = self.autoencoder(views, training=True)
            logs = self._objective(views, reconstruction, seed, training=True)
        variables = self.autoencoder.trainable_variables
        gradients = tape.gradient(logs["loss"], variables)
        self.optimizer.apply(gradients, variables)
        if self.gradients:

            def record() -> tf.Tensor:
                for variable, gradient in zip(variables, gradients, strict=True):
                    self.gradients[variable.path].assign(gradient)
                return tf.constant(True)

            if isinstance(record_gradients, bool):
                if record_gradients:
                    record()
            else:
                tf.cond(record_gradients, record, lambda: tf.constant(False))
        logs["learning_rate"] = learning_rate
        return logs

    def compiled_step(self, *, record_gradients: bool) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
        """The train step as a tf.function, traced once per trainer (and once more if recording is enabled
        after the first trace); whether this step records its gradients is an input, not a retrace."""
        key = f"train/{bool(self.gradients)}"
        if key not in self._compiled:
            self._compiled[key] = tf.function(lambda views, record: self.step(views, record_gradients=record))
        bound = f"{key}/{record_gradients}"  # the flag made a tensor once, not at every step
        if bound not in self._compiled:
            function, flag = self._compiled[key], tf.constant(record_gradients)
            self._compiled[bound] = lambda views: function(views, flag)
        return self._compiled[bound]

    def compiled_test_step(self) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
        if "test" not in self._compiled:
            self._compiled["test"] = tf.function(self.test_step)
        return self._compiled["test"]

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:  # Keras' hook, so Model.fit works too
        return self.step(data)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        reconstruction = self.autoencoder(data, training=False)
        return self._objective(data, reconstruction, self._seed(VALIDATION_STEP), training=False)


def _never(step: int) -> bool:
    return False


def make_optimizer(hparams: hparams_module.HyperParameters) -> keras.optimizers.Optimizer:
    """Adam with the configured learning-rate decay (a schedule of the optimizer's iteration counter)."""
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = hparams.learning_rate
    if hparams.decay == "exponential":
        learning_rate = keras.optimizers.schedules.ExponentialDecay(
            hparams.learning_rate, decay_steps=hparams.decay_steps, decay_rate=hparams.decay_rate
        )
    elif hparams.decay == "inverse_time":
        learning_rate = keras.optimizers.schedules.InverseTimeDecay(
            hparams.learning_rate, decay_steps=hparams.decay_steps, decay_rate=hparams.decay_rate
        )
    return keras.optimizers.Adam(learning_rate=learning_rate)


def auxiliary_losses(hparams: hparams_module.HyperParameters) -> tuple[losses.AuxiliaryLoss, ...]:
    """The terms a job adds to its reconstruction loss (none by default)."""
    if hparams.contrastive_weight > 0:
        return (
            losses.ContrastiveLoss(
                weight=hparams.contrastive_weight, temperature=hparams.contrastive_temperature
            ),
        )
    return ()


def seed_process(hparams: hparams_module.HyperParameters) -> None:
    """Python's, NumPy's and TensorFlow's seeds (and, with ``deterministic``, TensorFlow's deterministic ops).

    Why also before the data pipeline is built: ops without a seed of their own draw one from TensorFlow's
    global seed and a counter of the random ops made so far; reset here, a job run after another in the same
    process (the benchmarks, the tests) gets the numbers it gets alone.
    """
    keras.utils.set_random_seed(hparams.seed)
    if hparams.deterministic:  # process-wide and for good: the container runs one job per process
        tf.config.experimental.enable_op_determinism()


def build_trainer(hparams: hparams_module.HyperParameters) -> AutoencoderTrainer:
    """Seeded model + optimizer, built (all variables exist, so a checkpoint restores into them at once)."""
    seed_process(hparams)
    autoencoder, encoder = model.build_model(hparams)
    trainer = AutoencoderTrainer(
        autoencoder, encoder, loss=hparams.loss, auxiliary_losses=auxiliary_losses(hparams), seed=hparams.seed
    )
    trainer.compile(optimizer=make_optimizer(hparams))
    trainer.optimizer.build(autoencoder.trainable_variables)
    return trainer


def training_checkpoint(trainer: AutoencoderTrainer) -> tf.train.Checkpoint:
    return tf.train.Checkpoint(autoencoder=trainer.autoencoder, optimizer=trainer.optimizer)


@dataclasses.dataclass(frozen=True)
class FitResult:
    step: int
    stopped: bool
    last_logs: dict[str, float]
    validation_logs: dict[str, float] | None


def evaluate(
    trainer: AutoencoderTrainer,
    batches: tf.data.Dataset,
    *,
    max_batches: int = 0,
    callbacks: keras.callbacks.CallbackList | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, float]:
    """Example-weighted means of loss, SSIM and L2 over a validation set (``max_batches`` 0: all)."""
    test_function = trainer.compiled_test_step()
    totals: dict[str, float] = {}
    examples = 0
    if callbacks is not None:
        callbacks.on_test_begin()
    for index, views in enumerate(batches):
        if (max_batches and index >= max_batches) or should_stop():
            break
        logs = {name: float(value) for name, value in test_function(views).items()}
        size = int(views.shape[0])
        for name, value in logs.items():
            totals[name] = totals.get(name, 0.0) + value * size
        examples += size
        if callbacks is not None:
            callbacks.on_test_batch_end(index, logs)
    means = {name: total / examples for name, total in totals.items()} if examples else {}
    if callbacks is not None:
        callbacks.on_test_end(means)
    return means


def fit(
    trainer: AutoencoderTrainer,
    train_batches: tf.data.Dataset,
    *,
    total_steps: int,
    validation_batches: tf.data.Dataset | None = None,
    validation_interval: int = 0,
    validation_steps: int = 0,
    checkpoint_interval: int = 0,
    save_checkpoint: Callable[[int], None] = lambda step: None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    should_stop: Callable[[], bool] = lambda: False,
) -> FitResult:
    """Run optimizer steps from the trainer's current step up to ``total_steps`` (or a stop request).

    ``train_batches`` should be endless (``repeat``); if it ends early, training ends there. A stop
    request is honoured after the step in flight: checkpoint, then return ``stopped=True``. A checkpoint
    is also written every ``checkpoint_interval`` steps and at the end; validation runs every
    ``validation_interval`` steps (0: only at the end) when validation batches are given.
    """
    callback_list = keras.callbacks.CallbackList(list(callbacks), model=trainer)
    step = int(trainer.optimizer.iterations)
    last_logs: dict[str, float] = {}
    validation_logs: dict[str, float] | None = None
    stopped = False
    checkpointed_step = step

    def validate() -> dict[str, float] | None:
        if validation_batches is None:
            return None
        return evaluate(
            trainer,
            validation_batches,
            max_batches=validation_steps,
            callbacks=callback_list,
            should_stop=should_stop,
        )

    callback_list.on_train_begin()
    iterator = iter(train_batches)
    while step < total_steps:
        if should_stop():
            stopped = True
            break
        views = next(iterator, None)
        if views is None:  # a finite dataset ran out: training ends here
            break
        callback_list.on_train_batch_begin(step + 1)
        record = bool(trainer.should_record_gradients(step + 1))
        logs = trainer.compiled_step(record_gradients=record)(views)
        step += 1
        last_logs = {name: float(value) for name, value in logs.items()}
        callback_list.on_train_batch_end(step, last_logs)
        if checkpoint_interval and step % checkpoint_interval == 0:
            save_checkpoint(step)
            checkpointed_step = step
        if validation_interval and step % validation_interval == 0 and step < total_steps:
            validation_logs = validate()
    if not stopped:
        validation_logs = validate()
        stopped = should_stop()
    if checkpointed_step != step:
        save_checkpoint(step)
    callback_list.on_train_end({"step": step, "stopped": 1.0 if stopped else 0.0})
    return FitResult(step=step, stopped=stopped, last_logs=last_logs, validation_logs=validation_logs)
