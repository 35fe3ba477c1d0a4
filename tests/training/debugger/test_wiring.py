"""The debugger inside the training entry point: settings from hyperparameters, files and environment, and a
whole job run as SageMaker runs it (``python -m training.train`` in a subprocess with the /opt/ml layout)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from smdebug.core.modes import ModeKeys
from smdebug.trials import create_trial

from lambdas.stop_training_job import decision
from tests.training import support as training_support
from tests.training.conftest import RenderedShards
from tests.training.debugger import support
from training import hparams, train
from training.debugger import config, wiring

# Real training (or many TensorFlow processes): a slow module, handed out first (tests/conftest.py).
pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[3]
RULES = [
    {"RuleConfigurationName": "LossNotDecreasing", "RuleParameters": {"rule_to_invoke": "LossNotDecreasing"}},
    {"RuleConfigurationName": "ExplodingTensor", "RuleParameters": {"rule_to_invoke": "ExplodingTensor"}},
]


def _settings(
    tmp_path: Path, environ: dict[str, str] | None = None, **values: Any
) -> wiring.DebuggerSettings:
    return wiring.resolve(
        hparams.HyperParameters(**values),
        config_dir=tmp_path,
        default_out_dir=tmp_path / "tensors",
        environ=environ or {},
    )


def test_without_rules_or_a_hook_configuration_nothing_is_recorded(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert settings.hook is None
    assert settings.rules == ()


def test_rules_turn_recording_on_at_the_default_place_with_the_job_from_sagemakers_environment(
    tmp_path: Path,
) -> None:
    # GIVEN rules as a hyperparameter, SageMaker's job variables, the job's signing key and the local
    # runner's events file
    environ = {
        "TRAINING_JOB_ARN": support.JOB_ARN,
        "AUTOSTOP_SIGNING_KEY": support.SAMPLE_SIGNING_KEY,
        wiring.EVENTS_FILE_ENV: str(tmp_path / "events.jsonl"),
    }

    settings = _settings(
        tmp_path,
        environ,
        debugger_rules=json.dumps(RULES),
        debugger_put_events=True,
        debugger_self_terminate_after=30,
    )

    assert settings.hook is not None
    assert settings.hook.out_dir == str(tmp_path / "tensors")
    assert settings.hook.source == "defaults"
    assert [rule.name for rule in settings.rules] == ["LossNotDecreasing", "ExplodingTensor"]
    assert settings.job == support.JOB
    assert settings.put_events
    assert settings.events_file == tmp_path / "events.jsonl"
    assert settings.self_terminate_after_s == 30


def test_sagemakers_debug_hook_config_turns_recording_on_without_rules(tmp_path: Path) -> None:
    # GIVEN a job with a DebugHookConfig (managed rules), and an override of where tensors go
    (tmp_path / "debughookconfig.json").write_text(
        json.dumps(
            {
                "LocalPath": str(tmp_path / "sm-tensors"),
                "CollectionConfigurations": [{"CollectionName": "gradients"}],
            }
        ),
        encoding="utf-8",
    )

    settings = _settings(tmp_path)
    elsewhere = _settings(tmp_path, debugger_out_dir="s3://autostop-tensors/job-1")

    assert settings.hook is not None
    assert settings.hook.out_dir == str(tmp_path / "sm-tensors")
    assert [collection.name for collection in settings.hook.collections] == ["gradients", "losses"]
    assert not settings.put_events
    assert settings.events_file is None
    assert elsewhere.hook is not None
    assert elsewhere.hook.out_dir == "s3://autostop-tensors/job-1"


@pytest.mark.parametrize(
    ("values", "environ", "message"),
    [
        ({"debugger_rules": "[{"}, {}, "the rule configurations are not valid JSON"),
        (
            {"debugger_hook_config": '{"HookParameters": {"save_interval": "0"}}'},
            {},
            "save_interval must be > 0",
        ),
        (
            {"debugger_rules": "LossNotDecreasing", "debugger_put_events": True},
            {},
            "debugger_put_events needs",
        ),
        (
            {"debugger_rules": "LossNotDecreasing"},
            {"TRAINING_JOB_NAME": "bad_name"},
            "TRAINING_JOB_NAME/TRAINING_JOB_ARN",
        ),
        ({"debugger_out_dir": "s3://"}, {}, "debugger_out_dir must name a bucket"),
    ],
)
def test_bad_debugger_settings_are_one_clear_error(
    tmp_path: Path, values: dict[str, Any], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _settings(tmp_path, environ, **values)


def test_the_entry_point_rejects_bad_debugger_settings_before_training(
    tmp_path: Path, rendered_shards: RenderedShards, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a container layout whose rule list is not valid JSON
    environment = training_support.container_layout(
        tmp_path,
        train_channel=rendered_shards.path,
        hyperparameters={"debugger_rules": '[{"RuleConfigurationName"'},
    )

    # WHEN the entry point runs THEN exit 2, one error line, the failure file, and nothing trained or written
    assert train.main([], environment) == train.EXIT_BAD_CONFIGURATION
    error = capsys.readouterr().err
    assert error.startswith("error: the rule configurations are not valid JSON")
    assert (tmp_path / "output" / "failure").read_text(encoding="utf-8").startswith("the rule configurations")
    assert not (tmp_path / "output" / "tensors").exists()
    assert not (tmp_path / "model").exists()


def test_a_new_job_into_a_tensor_folder_holding_another_trial_is_refused_with_one_clear_error(
    tmp_path: Path, rendered_shards: RenderedShards, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN a container whose tensor folder holds the trial of an earlier run (a rerun into the same
    folder) and no checkpoint (so this is a new run, not a resumed one)
    WHEN the entry point runs with rules
    THEN exit 2 with one error line naming the folder, the failure file, and no model: the rules never
    judge another run's steps in silence."""
    support.write_trial(
        tmp_path / "output" / "tensors", support.losses({10: 1.0, 20: 1.0}), {"losses": ["loss"]}
    )
    environment = training_support.container_layout(
        tmp_path,
        train_channel=rendered_shards.path,
        hyperparameters={
            "image_size": "32",
            "num_views": "6",
            "base_filters": "4",
            "steps": "5",
            "debugger_rules": "ExplodingTensor",
        },
    )

    assert train.main([], environment) == train.EXIT_BAD_CONFIGURATION

    error = capsys.readouterr().err
    assert error.startswith(f"error: debugger: {tmp_path / 'output' / 'tensors'} already holds a trial")
    assert "already holds a trial of another run" in (tmp_path / "output" / "failure").read_text("utf-8")
    assert not (tmp_path / "model").exists()
    assert not (tmp_path / "output" / "tensorboard").exists()


def test_a_job_whose_loss_does_not_decrease_signals_and_stops_itself(
    tmp_path: Path, rendered_shards: RenderedShards
) -> None:
    # GIVEN a job as the local sweep runner starts it: learning rate 0, two rules, the events file, the job's
    # name and (local) ARN, self-termination 0.2 s after an issue, and far more steps than needed
    arn = "arn:aws:sagemaker:local:000000000000:training-job/local-lr-0"
    environment = training_support.container_layout(
        tmp_path,
        train_channel=rendered_shards.path,
        hyperparameters={
            "image_size": "32",
            "num_views": "6",
            "base_filters": "4",
            "bottleneck_width": "64",
            "embedding_size": "12",
            "batch_size": "8",
            "steps": "400",
            "learning_rate": "0",
            "validation_interval": "10",
            "validation_fraction": "0.25",
            "checkpoint_interval": "1000",
            "seed": "3",
            "debugger_rules": json.dumps(RULES),
            "debugger_self_terminate_after": "0.2",
        },
    )
    environment.update(
        {
            "TRAINING_JOB_NAME": "local-lr-0",
            "TRAINING_JOB_ARN": arn,
            wiring.EVENTS_FILE_ENV: str(tmp_path / "events.jsonl"),
        }
    )

    # WHEN the container runs
    completed = subprocess.run(
        training_support.train_command(),
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    # THEN LossNotDecreasing fired at a validation step (the loss of learning rate 0 never moves): the
    # metric line, the event...
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    lines = completed.stdout.splitlines()
    assert "rule:LossNotDecreasing=1" in lines
    assert "rule:ExplodingTensor=1" not in lines
    events = [
        json.loads(line) for line in (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    issues = [
        event
        for event in events
        if event["detail"]["DebugRuleEvaluationStatuses"][0]["RuleEvaluationStatus"] == "IssuesFound"
    ]
    assert len(issues) == 1
    assert issues[0]["detail"]["TrainingJobArn"] == arn
    step = issues[0]["detail"]["Step"]
    assert step % 10 == 0
    facts = decision.interpret_event(issues[0], decision.Config())
    assert isinstance(facts, decision.EventFacts)
    assert [finding.rule_name for finding in facts.issues] == ["LossNotDecreasing"]
    # ... no stop arrived, so the job stopped itself through the SIGTERM path: checkpoint, models, exit 0
    assert any(
        line.startswith(f"autostop: rule LossNotDecreasing found issues at step {step} and no stop arrived")
        for line in lines
    )
    assert "received SIGTERM: finishing the current step, then checkpointing" in lines
    ended = next(line for line in lines if line.startswith("training ended step="))
    assert ended.endswith("stopped=true")
    assert int(ended.split("step=")[1].split()[0]) < 400
    assert (tmp_path / "model" / "encoder.keras").is_file()
    # ... the trial is where SageMaker expects it, and the final statuses are in the job's output data
    trial = create_trial(str(tmp_path / "output" / "tensors"))
    assert trial.steps(mode=ModeKeys.EVAL)[:2] == [10, 20]
    statuses = json.loads(
        (tmp_path / "output" / "data" / wiring.STATUSES_FILE_NAME).read_text(encoding="utf-8")
    )
    assert {status["RuleConfigurationName"]: status["RuleEvaluationStatus"] for status in statuses} == {
        "LossNotDecreasing": "IssuesFound",
        "ExplodingTensor": "NoIssuesFound",
    }
    assert config.DEBUG_HOOK_CONFIG_FILE_NAME not in {
        path.name for path in (tmp_path / "input" / "config").iterdir()
    }


def test_the_debugger_hyperparameters_parse_as_sagemaker_passes_them() -> None:
    # GIVEN string values as in hyperparameters.json (the SDK's JSON-quoted strings included)
    parsed = hparams.from_mapping(
        {
            "debugger_rules": '"LossNotDecreasing,Overfit"',
            "debugger_put_events": "true",
            "debugger_probe_size": "16",
            "debugger_self_terminate_after": "30",
            "debugger_out_dir": " s3://autostop-tensors/job ",
        }
    )

    # THEN they are typed; defaults leave the debugger off
    assert (parsed.debugger_rules, parsed.debugger_put_events) == ("LossNotDecreasing,Overfit", True)
    assert (parsed.debugger_probe_size, parsed.debugger_self_terminate_after) == (16, 30.0)
    assert parsed.debugger_out_dir == "s3://autostop-tensors/job"
    defaults = hparams.HyperParameters()
    assert (
        defaults.debugger_rules,
        defaults.debugger_put_events,
        defaults.debugger_self_terminate_after,
    ) == (
        "",
        False,
        0.0,
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"debugger_put_events": "yes"}, "debugger_put_events must be true or false, got 'yes'"),
        ({"debugger_probe_size": "1"}, "debugger_probe_size must be >= 2"),
        ({"debugger_self_terminate_after": "-5"}, "debugger_self_terminate_after must be >= 0 seconds"),
    ],
)
def test_bad_debugger_hyperparameters_are_rejected(values: dict[str, str], message: str) -> None:
    with pytest.raises(hparams.HyperparameterError, match=re.escape(message)):
        hparams.from_mapping(values)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "{root}/output/tensors"),
        ({"AUTOSTOP_TENSORS_DIR": "{elsewhere}"}, "{elsewhere}"),
    ],
)
def test_the_entry_points_root_override_holds_for_a_hook_document_without_local_path(
    tmp_path: Path, environ: dict[str, str], expected: str
) -> None:
    """GIVEN a job whose container root is moved (AUTOSTOP_OPT_ML, as local runs and the sweep runner do)
    and a debughookconfig.json that names no LocalPath
    WHEN the entry point resolves its debugger settings from its paths
    THEN the tensors go under the moved root (or AUTOSTOP_TENSORS_DIR), never the literal /opt/ml."""
    root, elsewhere = tmp_path / "opt_ml", tmp_path / "elsewhere"
    config_dir = root / "input" / "config"
    config_dir.mkdir(parents=True)
    (config_dir / "debughookconfig.json").write_text(
        json.dumps({"CollectionConfigurations": [{"CollectionName": "losses"}]}), encoding="utf-8"
    )
    environment = {"AUTOSTOP_OPT_ML": str(root)} | {
        name: value.format(elsewhere=elsewhere) for name, value in environ.items()
    }
    paths = train.ContainerPaths.from_environment(environment)

    settings = wiring.resolve(
        hparams.HyperParameters(),
        config_dir=paths.config_dir,
        default_out_dir=paths.tensors_dir,
        environ=environment,
        opt_ml_root=paths.root,
    )

    assert settings.hook is not None
    assert settings.hook.out_dir == expected.format(root=root, elsewhere=elsewhere)
