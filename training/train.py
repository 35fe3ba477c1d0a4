"""SageMaker training entry point (bring-your-own container): the contract, nothing else.

SageMaker runs ``docker run <image> train``; the image's ``train`` executable runs ``python -m
training.train``. This module maps the container contract onto ``training.job.run``:

- Hyperparameters: ``<opt_ml>/input/config/hyperparameters.json`` (values are strings), overridden by CLI
  flags (``--learning_rate 0.01``) for local runs.
- Data: channel ``train`` (required) and ``validation`` (optional) under ``<opt_ml>/input/data/``, or
  ``SM_CHANNEL_TRAIN`` / ``SM_CHANNEL_VALIDATION``.
- Outputs: the autoencoder and the encoder (``.keras``) to ``SM_MODEL_DIR`` (``<opt_ml>/model``);
  checkpoints to ``<opt_ml>/checkpoints`` (``AUTOSTOP_CHECKPOINT_DIR``), resumed from the newest;
  TensorBoard events to ``<opt_ml>/output/tensorboard`` (``AUTOSTOP_TENSORBOARD_DIR``); the failure reason
  to ``<opt_ml>/output/failure`` (SageMaker shows it as the job's FailureReason).
- ``<opt_ml>`` is ``/opt/ml`` unless ``AUTOSTOP_OPT_ML`` says otherwise, so local runs and tests use the
  container's layout in a temporary directory.
- SIGTERM (StopTrainingJob, spot interruption; SageMaker kills after 120 s) or SIGINT: finish the step in
  flight, checkpoint, save the models, exit 0 -- within about one step.
- Bad hyperparameters, a missing channel or an empty dataset: one ``error: ...`` line on stderr, exit 2,
  nothing written to the model or checkpoint directories. These checks run before TensorFlow is imported.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from training import channels, log_lines
from training import hparams as hparams_module
from training.debugger import config as debugger_config
from training.debugger import wiring

OPT_ML_ENV = "AUTOSTOP_OPT_ML"
DEFAULT_OPT_ML = "/opt/ml"
TRAIN_CHANNEL = "train"
VALIDATION_CHANNEL = "validation"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_CONFIGURATION = 2


@dataclasses.dataclass(frozen=True)
class ContainerPaths:
    """Where the SageMaker contract puts things, resolved from the environment."""

    root: Path
    hyperparameters_file: Path
    train_channel: Path
    train_channel_source: str
    validation_channel: Path | None
    model_dir: Path
    output_data_dir: Path
    checkpoint_dir: Path
    tensorboard_dir: Path
    failure_file: Path
    config_dir: Path
    tensors_dir: Path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ContainerPaths:
        root = Path(environ.get(OPT_ML_ENV, DEFAULT_OPT_ML))
        config_dir = Path(environ.get("SM_INPUT_CONFIG_DIR", str(root / "input" / "config")))
        data_dir = root / "input" / "data"
        output_dir = Path(environ.get("SM_OUTPUT_DIR", str(root / "output")))
        if "SM_CHANNEL_TRAIN" in environ:
            train_channel, source = Path(environ["SM_CHANNEL_TRAIN"]), "SM_CHANNEL_TRAIN"
        else:
            train_channel, source = data_dir / TRAIN_CHANNEL, "the default channel directory"
        validation_channel: Path | None = None
        if "SM_CHANNEL_VALIDATION" in environ:
            validation_channel = Path(environ["SM_CHANNEL_VALIDATION"])
        elif (data_dir / VALIDATION_CHANNEL).exists():
            validation_channel = data_dir / VALIDATION_CHANNEL
        return cls(
            root=root,
            hyperparameters_file=config_dir / "hyperparameters.json",
            train_channel=train_channel,
            train_channel_source=source,
            validation_channel=validation_channel,
            model_dir=Path(environ.get("SM_MODEL_DIR", str(root / "model"))),
            output_data_dir=Path(environ.get("SM_OUTPUT_DATA_DIR", str(output_dir / "data"))),
            checkpoint_dir=Path(environ.get("AUTOSTOP_CHECKPOINT_DIR", str(root / "checkpoints"))),
            tensorboard_dir=Path(environ.get("AUTOSTOP_TENSORBOARD_DIR", str(output_dir / "tensorboard"))),
            failure_file=output_dir / "failure",
            config_dir=config_dir,
            tensors_dir=Path(environ.get("AUTOSTOP_TENSORS_DIR", str(output_dir / "tensors"))),
        )


class StopRequest:
    """Set by SIGTERM/SIGINT; the training loop polls it between steps.

    The handler only records the signal: printing (or any I/O) inside a signal handler can re-enter a
    ``print`` the main thread was in the middle of. The message is printed by the first poll that sees it.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._announced = False
        self.signal_name = ""

    def install(self) -> StopRequest:
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, self._handle)
        return self

    def _handle(self, signal_number: int, frame: FrameType | None) -> None:
        if not self._event.is_set():
            self.signal_name = signal.Signals(signal_number).name
            self._event.set()

    def is_set(self) -> bool:
        if self._event.is_set() and not self._announced:
            self._announced = True
            log_lines.write_line(
                f"received {self.signal_name}: finishing the current step, then checkpointing"
            )
        return self._event.is_set()


def check_channels(paths: ContainerPaths) -> None:
    """The training channel must exist and hold records; a validation channel, if given, too."""
    if not paths.train_channel.exists():
        raise channels.DatasetError(
            f"missing training channel {TRAIN_CHANNEL!r}: {paths.train_channel} "
            f"({paths.train_channel_source}) does not exist"
        )
    channels.list_shards(paths.train_channel)
    if paths.validation_channel is not None:
        if not paths.validation_channel.exists():
            raise channels.DatasetError(
                f"validation channel {paths.validation_channel} (SM_CHANNEL_VALIDATION) does not exist"
            )
        channels.list_shards(paths.validation_channel)


def report_failure(paths: ContainerPaths, message: str) -> None:
    """One line on stderr, and SageMaker's failure file (best effort: it must not mask the error)."""
    line = " ".join(message.split())
    log_lines.write_error_line(f"error: {line}")
    try:
        paths.failure_file.parent.mkdir(parents=True, exist_ok=True)
        paths.failure_file.write_text(line + "\n", encoding="utf-8")
    except OSError:
        pass


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    environment = os.environ if environ is None else environ
    paths = ContainerPaths.from_environment(environment)
    try:
        hparams = hparams_module.load(arguments, paths.hyperparameters_file)
        check_channels(paths)
        debugger = wiring.resolve(
            hparams,
            config_dir=paths.config_dir,
            default_out_dir=paths.tensors_dir,
            environ=environment,
            opt_ml_root=paths.root,
        )
    except (hparams_module.HyperparameterError, channels.DatasetError, ValueError) as error:
        report_failure(paths, str(error))
        return EXIT_BAD_CONFIGURATION
    stop = StopRequest().install()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from training import checkpoints, job  # TensorFlow: imported only once the configuration is valid

    log_lines.write_line(f"hyperparameters {json.dumps(hparams.to_json_dict(), sort_keys=True)}")
    locations = job.JobLocations(
        train_channel=paths.train_channel,
        validation_channel=paths.validation_channel,
        model_dir=paths.model_dir,
        checkpoint_dir=paths.checkpoint_dir,
        tensorboard_dir=paths.tensorboard_dir,
        output_data_dir=paths.output_data_dir,
    )
    try:
        debugger_callbacks = wiring.build_callbacks(
            debugger,
            hyperparameters=hparams,
            train_channel=paths.train_channel,
            output_data_dir=paths.output_data_dir,
        )
        job.run(hparams, locations, should_stop=stop.is_set, extra_callbacks=debugger_callbacks)
    except (
        channels.DatasetError,
        checkpoints.CheckpointError,
        hparams_module.HyperparameterError,
        debugger_config.DebuggerConfigError,  # e.g. a new run pointed at a folder holding another trial
    ) as error:
        report_failure(paths, str(error))
        return EXIT_BAD_CONFIGURATION
    except Exception as error:
        traceback.print_exc()
        report_failure(paths, f"training failed: {type(error).__name__}: {error}")
        return EXIT_FAILURE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
