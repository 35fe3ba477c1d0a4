"""The Keras callback that records Debugger-format tensors through smdebug's core writer.

Why not smdebug's ``KerasHook``: it is disabled for TF >= 2.12 and rejects TF 2.13+ variables, and with stock
TensorFlow its gradients collection stays empty. This callback writes the same files with smdebug's own
``FileWriter`` (event + index file per saved step), ``CollectionManager.export`` (the collections file) and
the end-of-training marker, so ``smdebug.trials.create_trial`` -- and managed Debugger rules, where an account
still has them -- read the result like any smdebug trial, from a local folder or ``s3://``.

Steps and names: ``layout`` (training step ``s`` is global step ``2s``, its validation ``2s + 1``).

What is recorded (collections and schedules: ``config``): the batch ``loss`` and ``ssim``/``l2``/
``learning_rate`` of the step, or the validation means; ``weights/<path>`` and ``biases/<path>`` of every
trainable variable; ``gradients/<path>``, which the trainer copies out of its compiled step only on the
steps this callback will save (``AutoencoderTrainer.enable_gradient_recording``); ``embeddings/probe``, the
bottleneck output for a fixed probe batch, with ``embeddings/family_index`` (the probe designs' families as
indices); ``outputs/<layer>`` for layers matched by a regex, also on the probe batch. The probe designs'
ids and family names are in ``<out_dir>/autostop-probe.json`` beside the trial. The step at which the loss
turns NaN or infinite is saved too, off schedule, so it is judged at once (``_loss_turned_non_finite``).

One trial, one run (``_take_folder``): a new run refuses a folder that holds a trial, a resumed run
continues its own (docs/debugger.md, "Files").

Cost. On a saved step the training thread only copies tensors to NumPy (and, for embeddings/outputs, runs the
probe batch forward); a background thread serializes and writes them, then tells the listeners (the rule
evaluator) which step is readable. A bounded queue applies back-pressure instead of using unbounded memory.
A failed write is logged and skipped: recording never fails training.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import keras
import numpy as np

from training import log_lines
from training.debugger import config as config_module
from training.debugger import layout

DEFAULT_PROBE_SIZE = 32
WORKER = layout.WORKER
PROBE_FILE_NAME = layout.PROBE_FILE_NAME
END_OF_JOB_FILE_NAME = layout.END_OF_JOB_FILE_NAME
LOSS_TENSOR = layout.LOSS_TENSOR
METRIC_TENSORS = layout.METRIC_TENSORS
EMBEDDING_TENSOR = layout.EMBEDDING_TENSOR
FAMILY_INDEX_TENSOR = layout.FAMILY_INDEX_TENSOR
StepRecord = layout.StepRecord


def _print_line(line: str) -> None:
    log_lines.write_line(line)  # whole and alone, whichever thread prints


@dataclasses.dataclass(frozen=True)
class Probe:
    """A fixed batch of designs whose embeddings are recorded: views ``(N, H, W, V)`` and their families."""

    views: np.ndarray
    design_ids: tuple[str, ...]
    families: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.views.ndim != 4:
            raise ValueError(
                f"probe views must be (designs, height, width, views), got shape {self.views.shape}"
            )
        if not len(self.design_ids) == len(self.families) == self.views.shape[0]:
            raise ValueError("probe views, design ids and families must have the same length")

    @property
    def family_names(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.families)))

    @property
    def family_index(self) -> np.ndarray:
        names = {name: index for index, name in enumerate(self.family_names)}
        return np.asarray([names[family] for family in self.families], np.int32)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "design_ids": list(self.design_ids),
            "families": list(self.families),
            "family_names": list(self.family_names),
            "family_index": self.family_index.tolist(),
            "views_shape": list(self.views.shape),
            "tensors": {"embeddings": EMBEDDING_TENSOR, "family_index": FAMILY_INDEX_TENSOR},
        }


def _as_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "numpy"):
        return _as_text(value.numpy())
    if isinstance(value, np.ndarray):
        return _as_text(value.item())
    return str(value)


def select_probe(examples: Iterable[Mapping[str, Any]], size: int = DEFAULT_PROBE_SIZE) -> Probe:
    """Up to ``size`` designs, balanced across families (round robin in first-seen order).

    ``examples`` yields dicts with ``views`` (H x W x V), ``design_id`` and ``family`` (the pipeline's
    ``load_examples`` output, unshuffled, so the probe is the same on every run). Balance matters: the latent
    cluster rule compares distances within and across families, which needs several of each. At most
    ``4 * size`` examples are read.
    """
    if size < 2:
        raise ValueError(f"the probe needs at least 2 designs, got size={size}")
    by_family: dict[str, list[tuple[str, np.ndarray]]] = {}
    for index, example in enumerate(examples):
        if index >= 4 * size:
            break
        family = _as_text(example["family"])
        views = example["views"]
        by_family.setdefault(family, []).append(
            (_as_text(example["design_id"]), np.asarray(views.numpy() if hasattr(views, "numpy") else views))
        )
    chosen: list[tuple[str, str, np.ndarray]] = []
    position = 0
    while len(chosen) < size and any(position < len(members) for members in by_family.values()):
        for family, members in by_family.items():
            if position < len(members) and len(chosen) < size:
                chosen.append((members[position][0], family, members[position][1]))
        position += 1
    if not chosen:
        raise ValueError("no examples to build the probe from")
    return Probe(
        views=np.stack([views for _, _, views in chosen]).astype(np.float32),
        design_ids=tuple(design_id for design_id, _, _ in chosen),
        families=tuple(family for _, family, _ in chosen),
    )


class WriterListener(Protocol):
    """What the rule evaluator learns from the writer (each call must return quickly and never raise)."""

    def writing_started(self, out_dir: str, first_step: int) -> None: ...

    def step_written(self, global_step_number: int) -> None: ...

    def writing_ended(self) -> None: ...


_STOP = object()


class DebuggerTensorWriter(keras.callbacks.Callback):
    """Write the configured collections of an ``AutoencoderTrainer`` run as an smdebug trial.

    Its place in the callback list does not matter. Listeners (the evaluator) hear ``writing_started``
    once the collections file exists (a trial can be opened), ``step_written`` after each step is readable,
    and ``writing_ended`` after the end marker. ``close`` (also called by ``on_train_end``) is idempotent.
    """

    def __init__(
        self,
        hook_config: config_module.HookConfig,
        *,
        probe: Probe | None = None,
        listeners: Sequence[WriterListener] = (),
        max_pending_steps: int = 4,
        log: Callable[[str], None] = _print_line,
    ) -> None:
        super().__init__()
        if max_pending_steps <= 0:
            raise ValueError(f"max_pending_steps must be > 0, got {max_pending_steps}")
        self.hook_config = hook_config
        self.probe = probe
        self.listeners = list(listeners)
        self.log = log
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_pending_steps)
        self._thread: threading.Thread | None = None
        self._tensor_collections: dict[str, str] = {}
        self._variables: list[tuple[str, str, Any]] = []  # (tensor name, collection, variable)
        self._gradients: list[tuple[str, Any]] = []
        self._outputs_model: keras.Model | None = None
        self._output_names: list[str] = []
        self._closed = False
        self._started = False
        self._loss_was_finite = True
        self.steps_written: list[int] = []  # global steps, in write order (read by tests and benchmarks)
        self.write_seconds: list[float] = []  # the writer thread's time for each of them
        self.write_errors = 0

    # --- what is recorded ---

    def _collection_includes(self, collection: str, tensor_name: str) -> bool:
        settings = self.hook_config.collection(collection)
        return settings is not None and settings.includes(tensor_name)

    def _plan(self) -> None:
        """Decide, once, which tensor belongs to which collection (the collections file lists them)."""
        trainer = self.model
        plan: dict[str, str] = {}
        if self._collection_includes(config_module.LOSSES, LOSS_TENSOR):
            plan[LOSS_TENSOR] = config_module.LOSSES
        for name in METRIC_TENSORS:
            if self._collection_includes(config_module.METRICS, name):
                plan[name] = config_module.METRICS
        for variable in trainer.autoencoder.trainable_variables:
            collection = config_module.BIASES if variable.path.endswith("/bias") else config_module.WEIGHTS
            name = f"{collection}/{variable.path}"
            if self._collection_includes(collection, name):
                plan[name] = collection
                self._variables.append((name, collection, variable))
        if self.hook_config.collection(config_module.GRADIENTS) is not None:
            gradients = trainer.enable_gradient_recording(self._records_gradients)
            for path, variable in gradients.items():
                name = f"{config_module.GRADIENTS}/{path}"
                if self._collection_includes(config_module.GRADIENTS, name):
                    plan[name] = config_module.GRADIENTS
                    self._gradients.append((name, variable))
        probe_collections = [config_module.EMBEDDINGS, config_module.OUTPUTS]
        if self.probe is None:
            for collection in probe_collections:
                if self.hook_config.collection(collection) is not None:
                    self.log(f"debugger: no probe batch given, collection {collection!r} is not recorded")
        else:
            if self.hook_config.collection(config_module.EMBEDDINGS) is not None:
                plan[EMBEDDING_TENSOR] = config_module.EMBEDDINGS
                plan[FAMILY_INDEX_TENSOR] = config_module.EMBEDDINGS
            outputs = self.hook_config.collection(config_module.OUTPUTS)
            if outputs is not None:
                layers = [
                    layer
                    for layer in trainer.autoencoder.layers
                    if not isinstance(layer, keras.layers.InputLayer)
                    and outputs.includes(f"{config_module.OUTPUTS}/{layer.name}")
                ]
                if layers:
                    inputs = trainer.autoencoder.inputs
                    self._outputs_model = keras.Model(
                        inputs[0] if len(inputs) == 1 else inputs,  # the autoencoder's own input structure
                        [layer.output for layer in layers],
                        name="debugger_outputs",
                    )
                    self._output_names = [f"{config_module.OUTPUTS}/{layer.name}" for layer in layers]
                    plan.update(dict.fromkeys(self._output_names, config_module.OUTPUTS))
                else:
                    self.log(
                        f"debugger: include_regex {list(outputs.include_regex)} matches no layer of the model"
                    )
        self._tensor_collections = plan

    def _records_gradients(self, step: int) -> bool:
        return self.hook_config.saves(config_module.GRADIENTS, config_module.TRAIN, step)

    def _saves(self, collection: str, mode: str, step: int) -> bool:
        return self.hook_config.saves(collection, mode, step)

    def _scalar_tensors(self, logs: Mapping[str, Any], mode: str, step: int) -> dict[str, np.ndarray]:
        tensors: dict[str, np.ndarray] = {}
        for name, collection in self._tensor_collections.items():
            scalar = collection in (config_module.LOSSES, config_module.METRICS) and name in logs
            if scalar and self._saves(collection, mode, step):
                tensors[name] = np.asarray(float(logs[name]), np.float32)
        return tensors

    def _train_tensors(self, step: int, logs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        tensors = self._scalar_tensors(logs, config_module.TRAIN, step)
        for name, collection, variable in self._variables:
            if self._saves(collection, config_module.TRAIN, step):
                tensors[name] = np.array(variable.numpy())
        if self._saves(config_module.GRADIENTS, config_module.TRAIN, step):
            for name, variable in self._gradients:
                tensors[name] = np.array(variable.numpy())
        if self.probe is not None:
            if EMBEDDING_TENSOR in self._tensor_collections and self._saves(
                config_module.EMBEDDINGS, config_module.TRAIN, step
            ):
                embeddings = self.model.encoder(self.probe.views, training=False)
                tensors[EMBEDDING_TENSOR] = np.asarray(embeddings, np.float32)
                tensors[FAMILY_INDEX_TENSOR] = self.probe.family_index
            if self._outputs_model is not None and self._saves(
                config_module.OUTPUTS, config_module.TRAIN, step
            ):
                outputs = self._outputs_model(self.probe.views, training=False)
                if not isinstance(outputs, list | tuple):
                    outputs = [outputs]
                for name, value in zip(self._output_names, outputs, strict=True):
                    tensors[name] = np.asarray(value)
        return tensors

    # --- Keras callback API ---

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self._started:
            return
        self._started = True
        try:
            self._begin()
        except config_module.TrialFolderInUseError:
            # Not a failed write: training on would make every rule judge another run's steps.
            self._closed = True
            self._notify("writing_ended")
            raise
        except Exception as error:  # recording is an aid: training goes on without it
            self._closed = True
            self.log(
                f"debugger: cannot record tensors to {self.hook_config.out_dir}: {error!r}; "
                "training continues without them"
            )
            self._notify("writing_ended")

    def _begin(self) -> None:
        self._plan()
        out_dir = self.hook_config.out_dir
        if not self.hook_config.is_s3:
            os.makedirs(out_dir, exist_ok=True)
        first_step = int(self.model.optimizer.iterations) + 1
        self._take_folder(out_dir, first_step)
        self._export_collections()
        if self.probe is not None:
            layout.write_text(
                os.path.join(out_dir, PROBE_FILE_NAME), json.dumps(self.probe.to_json_dict(), sort_keys=True)
            )
        for warning in self.hook_config.warnings:
            self.log(f"debugger: {warning}")
        self._thread = threading.Thread(target=self._write_loop, name="debugger-writer", daemon=True)
        self._thread.start()
        counts: dict[str, int] = {}
        for collection in self._tensor_collections.values():
            counts[collection] = counts.get(collection, 0) + 1
        summary = ", ".join(f"{name}={count}" for name, count in sorted(counts.items()))
        self.log(f"debugger: writing tensors to {out_dir} from step {first_step} ({summary})")
        self._notify("writing_started", out_dir, first_step)

    def _take_folder(self, out_dir: str, first_step: int) -> None:
        """A run judges its own steps, whatever the folder held before.

        A new run (training starts at step 1) refuses a folder that holds a trial: its steps would carry
        the old run's numbers, and the evaluator, having read those, would never see the new values (a
        rerun into a used folder ended NoIssuesFound where an empty folder fired at step 20). A resumed run
        (restored from a checkpoint) continues its own trial: the end marker is lifted, and steps written
        after the checkpoint by the interrupted run are removed before they are written again.
        """
        if first_step <= 1:
            if layout.holds_trial(out_dir):
                raise config_module.TrialFolderInUseError(
                    f"debugger: {out_dir} already holds a trial of another run; a new run needs its own "
                    "tensor folder (set debugger_out_dir, AUTOSTOP_TENSORS_DIR or the hook "
                    "configuration's LocalPath to an empty folder, or remove the old trial)"
                )
            run = json.dumps({"first_step": first_step, "started_at": time.time()}, sort_keys=True)
            if not layout.claim(out_dir, run):
                raise config_module.TrialFolderInUseError(
                    f"debugger: another run started writing a trial to {out_dir} at the same time; a new "
                    "run needs its own tensor folder"
                )
            return
        if layout.remove_end_marker(out_dir):
            self.log(f"debugger: {out_dir} held an ended trial; resuming it (end marker removed)")
        stale = layout.remove_steps_from(out_dir, layout.global_step(config_module.TRAIN, first_step))
        if stale:
            self.log(
                f"debugger: removed {stale} steps at or after step {first_step} that the interrupted run "
                "wrote after its last checkpoint"
            )
        if not self.hook_config.is_s3:  # a resumed run into an empty folder (a new container) claims it
            layout.claim(out_dir, json.dumps({"first_step": first_step, "resumed": True}, sort_keys=True))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._started or self._closed:
            return
        logs = logs or {}
        scheduled = self.hook_config.saves_any(config_module.TRAIN, batch)
        loss_turned_non_finite = self._loss_turned_non_finite(logs)
        if not scheduled and not loss_turned_non_finite:
            return
        try:
            tensors = self._train_tensors(batch, logs) if scheduled else {}
            if loss_turned_non_finite:
                tensors[LOSS_TENSOR] = np.asarray(float(logs[LOSS_TENSOR]), np.float32)
        except Exception as error:
            self._collect_failed(batch, error)
            return
        if tensors:
            self._queue.put(StepRecord(config_module.TRAIN, batch, tensors))

    def _loss_turned_non_finite(self, logs: Mapping[str, Any]) -> bool:
        """Whether this step's loss is NaN or infinite and the previous step's was not.

        The loss is known at every step, while the losses collection saves it every few steps: a loss
        that turns NaN between two saves would be judged only at the next one (1.9 s later at 0.27 s/step).
        So the step at which the loss stops being finite is saved too, with its loss, off schedule: the
        evaluator judges it at once (ExplodingTensor) and the trial itself shows the bad step, to managed
        Debugger as well. Only the change is saved, not every later NaN step: a job that goes on (a dry
        run) writes no file per step.
        """
        if LOSS_TENSOR not in self._tensor_collections or LOSS_TENSOR not in logs:
            return False
        try:
            finite = math.isfinite(float(logs[LOSS_TENSOR]))
        except (TypeError, ValueError):
            return False
        turned = not finite and self._loss_was_finite
        self._loss_was_finite = finite
        return turned

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        if not self._started or self._closed or not logs:
            return
        step = int(self.model.optimizer.iterations)
        try:
            tensors = self._scalar_tensors(logs, config_module.EVAL, step)
        except Exception as error:
            self._collect_failed(step, error)
            return
        if tensors:
            self._queue.put(StepRecord(config_module.EVAL, step, tensors))

    def _collect_failed(self, step: int, error: Exception) -> None:
        self.write_errors += 1
        if self.write_errors <= 3:
            self.log(f"debugger: could not collect the tensors of step {step}: {error!r}")

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.close()

    def close(self) -> None:
        """Write what is queued, re-export the collections, mark the trial ended, tell the listeners."""
        if self._closed or not self._started:
            return
        self._closed = True
        self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join()
        try:
            self._export_collections()
            layout.write_end_marker(self.hook_config.out_dir)
        except Exception as error:  # never fail training for the record of it
            self.write_errors += 1
            self.log(f"debugger: could not finish the trial at {self.hook_config.out_dir}: {error!r}")
        self.log(
            f"debugger: wrote {len(self.steps_written)} steps to {self.hook_config.out_dir}"
            + (f" ({self.write_errors} write errors)" if self.write_errors else "")
        )
        self._notify("writing_ended")

    # --- writing ---

    def _export_collections(self) -> None:
        layout.export_collections(
            self.hook_config.out_dir,
            [
                layout.CollectionEntry(
                    name=settings.name,
                    tensor_names=tuple(
                        name for name, owner in self._tensor_collections.items() if owner == settings.name
                    ),
                    include_regex=settings.include_regex,
                    schedules={
                        mode: None if schedule is None else schedule.to_json_dict()
                        for mode in config_module.MODES
                        for schedule in [settings.schedule(mode)]
                    },
                )
                for settings in self.hook_config.collections
            ],
        )

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if not isinstance(item, StepRecord):
                continue
            started = time.perf_counter()
            try:
                layout.write_record(self.hook_config.out_dir, item)
            except Exception as error:
                self.write_errors += 1
                if self.write_errors <= 3:
                    self.log(f"debugger: could not write step {item.training_step} ({item.mode}): {error!r}")
                continue
            self.write_seconds.append(time.perf_counter() - started)
            self.steps_written.append(item.global_step)
            self._notify("step_written", item.global_step)

    def _notify(self, method: str, *arguments: Any) -> None:
        for listener in self.listeners:
            try:
                getattr(listener, method)(*arguments)
            except Exception as error:
                self.log(f"debugger: listener {type(listener).__name__}.{method} failed: {error!r}")


def probe_from_dataset(examples: Any, size: int = DEFAULT_PROBE_SIZE) -> Probe:
    """``select_probe`` over a ``tf.data`` dataset of examples (``data.load_examples``, unshuffled)."""
    return select_probe(examples.take(4 * size).as_numpy_iterator(), size)
