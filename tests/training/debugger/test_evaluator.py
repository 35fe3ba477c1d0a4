"""The rule evaluator: SageMaker-shaped configuration, statuses, one signal per rule, failures contained.

The trial grows step by step exactly as the writer grows it (``layout`` writes, then the listener calls),
from a thread standing in for the training loop; TensorFlow is not needed for any of this.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.training.debugger import support
from training.debugger import config, evaluator, layout, rules, signals

FLAT_LOSS = {layout.LOSS_TENSOR: 0.7}
# LossNotDecreasing on single training losses, each compared with the one 10 steps earlier, firing at the
# first comparison: the simplest rule whose firing step these evaluator tests can state (the rule's own
# semantics are tested in test_rules.py).
SINGLE_LOSSES = {"mode": "TRAIN", "window": "1", "patience": "1"}


class CrashingRule(rules.AutostopRule):
    """A rule with a bug: raises from step 5 on."""

    PARAMETERS: ClassVar[dict[str, Any]] = {}

    def invoke_at_step(self, step: int) -> bool:
        if layout.training_step_of(step) >= 5:
            raise RuntimeError("index out of range")
        return False


REGISTRY = {**rules.RULES, "CrashingRule": CrashingRule}


def _configurations(*entries: dict[str, Any]) -> tuple[config.RuleConfiguration, ...]:
    return config.parse_rule_configurations(json.dumps(list(entries)))


def _rule(name: str, rule_to_invoke: str | None = None, **parameters: str) -> dict[str, Any]:
    return {
        "RuleConfigurationName": name,
        "RuleParameters": {"rule_to_invoke": rule_to_invoke or name, **parameters},
    }


def _wait_until(condition: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _grow(
    rule_evaluator: evaluator.RuleEvaluator,
    out_dir: Path,
    records: list[support.Record],
    *,
    first_step: int = 1,
) -> None:
    """Write a trial the way the writer does, telling the evaluator as the writer would, from a thread."""

    def training() -> None:
        support.write_trial(out_dir, [], {"losses": [layout.LOSS_TENSOR]}, ended=False)
        rule_evaluator.writing_started(str(out_dir), first_step)
        for mode, step, tensors in records:
            layout.write_record(str(out_dir), layout.StepRecord(mode, step, tensors))
            written = layout.global_step(mode, step)
            rule_evaluator.step_written(written)
            # One step at a time, as during training: the evaluator reads the trial as it grows.
            assert _wait_until(lambda written=written: rule_evaluator.last_evaluated_step >= written)
        layout.write_end_marker(str(out_dir))
        rule_evaluator.writing_ended()

    thread = threading.Thread(target=training)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()


def test_statuses_signals_and_contained_failures(tmp_path: Path) -> None:
    # GIVEN a flat loss, and rules: one that fires, one that finds nothing, one that crashes, one unknown to
    # the container, one with a bad parameter
    recorder = support.Recorder()
    log: list[str] = []
    rule_evaluator = evaluator.RuleEvaluator(
        _configurations(
            _rule("LossNotDecreasing", **SINGLE_LOSSES),
            _rule("NoNaN", "ExplodingTensor"),
            _rule("Buggy", "CrashingRule"),
            _rule("Overtraining"),
            _rule("Strict", "VanishingGradient", threshold="-1"),
        ),
        dispatcher=signals.SignalDispatcher([recorder.sink]),
        registry=REGISTRY,
        clock=support.fixed_clock,
        log=log.append,
    )

    # WHEN 30 training steps are written and evaluated
    _grow(rule_evaluator, tmp_path / "trial", [(layout.TRAIN, step, FLAT_LOSS) for step in range(1, 31)])

    # THEN each rule ends in the right status, with exactly one signal per status change
    assert rule_evaluator.statuses() == {
        "LossNotDecreasing": "IssuesFound",
        "NoNaN": "NoIssuesFound",
        "Buggy": "Error",
        "Overtraining": "Error",
        "Strict": "Error",
    }
    assert recorder.statuses("LossNotDecreasing") == ["InProgress", "IssuesFound"]
    assert recorder.statuses("NoNaN") == ["InProgress", "NoIssuesFound"]
    assert recorder.statuses("Buggy") == ["InProgress", "Error"]
    assert recorder.statuses("Overtraining") == ["Error"]
    issue = recorder.of("LossNotDecreasing")[1]
    assert issue.step == 11
    assert issue.status_details == signals.condition_met_details("LossNotDecreasing", 11)
    assert issue.finding == (
        "loss (TRAIN): loss 0.7 at step 11 is not 0.0003% below 0.7 at step 1, 1 comparison(s) in a row"
    )
    assert issue.time == support.SAMPLE_TIME
    states = {state.configuration.name: state for state in rule_evaluator.snapshot()}
    assert states["Buggy"].status_details == "InternalError: RuntimeError: index out of range"
    assert states["Buggy"].step == 5
    assert states["Overtraining"].status_details.startswith(
        "ConfigurationError: rule_to_invoke 'Overtraining' is not implemented in the container (available: "
    )
    assert (
        states["Strict"].status_details
        == "ConfigurationError: VanishingGradient: threshold must be > 0, got -1.0"
    )
    assert states["LossNotDecreasing"].to_json_dict() == {
        "RuleConfigurationName": "LossNotDecreasing",
        "RuleEvaluationStatus": "IssuesFound",
        "StatusDetails": signals.condition_met_details("LossNotDecreasing", 11),
        "LastModifiedTime": "2026-11-20T10:15:31Z",
        "Step": 11,
        "Finding": issue.finding,
    }
    assert "rule LossNotDecreasing: IssuesFound at step 11: loss (TRAIN): loss 0.7" in "\n".join(log)
    assert any(
        line.startswith("rule Buggy: Error at step 5: RuntimeError('index out of range')") for line in log
    )


def test_start_and_end_step_limit_where_a_rule_is_evaluated(tmp_path: Path) -> None:
    # GIVEN the same flat loss, LossNotDecreasing from step 15, and another copy only before step 11
    recorder = support.Recorder()
    rule_evaluator = evaluator.RuleEvaluator(
        _configurations(
            _rule("Late", "LossNotDecreasing", start_step="15", **SINGLE_LOSSES),
            _rule("Early", "LossNotDecreasing", end_step="11", **SINGLE_LOSSES),
        ),
        dispatcher=signals.SignalDispatcher([recorder.sink]),
        log=lambda _: None,
    )

    # WHEN 30 steps are evaluated
    _grow(rule_evaluator, tmp_path / "trial", [(layout.TRAIN, step, FLAT_LOSS) for step in range(1, 31)])

    # THEN the late rule sees steps from 15 on, so it first compares (and fires) at 25 against 15; the
    # early one never reaches a comparison
    assert rule_evaluator.statuses() == {"Late": "IssuesFound", "Early": "NoIssuesFound"}
    assert recorder.of("Late")[-1].step == 25


def test_a_resumed_job_evaluates_only_its_own_steps(tmp_path: Path) -> None:
    # GIVEN a trial holding steps 1-40 of which this run (resumed at step 21) wrote 21-40
    recorder = support.Recorder()
    rule_evaluator = evaluator.RuleEvaluator(
        _configurations(_rule("LossNotDecreasing", **SINGLE_LOSSES)),
        dispatcher=signals.SignalDispatcher([recorder.sink]),
        log=lambda _: None,
    )

    _grow(
        rule_evaluator,
        tmp_path / "trial",
        [(layout.TRAIN, step, FLAT_LOSS) for step in range(1, 41)],
        first_step=21,
    )

    # THEN the first step judged is 21, so the first comparison (and the issue) is at 31, not at 11 as it
    # would be had the earlier run's steps been judged
    assert recorder.of("LossNotDecreasing")[-1].step == 31


def test_when_no_tensors_were_written_every_rule_ends_in_error_not_no_issues() -> None:
    # GIVEN an evaluator whose writer could not start (e.g. an unwritable tensor folder)
    recorder = support.Recorder()
    rule_evaluator = evaluator.RuleEvaluator(
        _configurations(_rule("LossNotDecreasing")), dispatcher=signals.SignalDispatcher([recorder.sink])
    )

    # WHEN training ends
    rule_evaluator.writing_ended()

    # THEN the rule reports Error: nobody checked anything
    assert rule_evaluator.statuses() == {"LossNotDecreasing": "Error"}
    assert (
        recorder.of("LossNotDecreasing")[0].status_details
        == "InternalError: trial unreadable: no tensors were written"
    )


def test_follow_evaluates_a_trial_written_by_another_process_and_the_cli_reports(tmp_path: Path) -> None:
    # GIVEN a finished trial with a loss that stops decreasing at step 10
    trial = support.write_trial(
        tmp_path / "trial",
        support.losses({step: max(0.5, 1 - step / 20) for step in range(1, 41)}),
        {"losses": [layout.LOSS_TENSOR]},
    )
    events_file = tmp_path / "rule-events.jsonl"

    # WHEN the standalone evaluator runs on it (as `python -m training.debugger.evaluator` does)
    code = evaluator.main(
        [
            "--trial",
            trial,
            "--rules",
            json.dumps([_rule("LossNotDecreasing", **SINGLE_LOSSES), _rule("ExplodingTensor")]),
            "--events-file",
            str(events_file),
            "--job-name",
            "local-run-1",
            "--poll-interval",
            "0.05",
        ]
    )

    # THEN it exits 1 (issues found) and the events file tells the local runner which rule fired where
    assert code == 1
    events = [json.loads(line) for line in events_file.read_text(encoding="utf-8").splitlines()]
    finals = {
        status["RuleConfigurationName"]: (status["RuleEvaluationStatus"], event["detail"].get("Step"))
        for event in events
        for status in event["detail"]["DebugRuleEvaluationStatuses"]
        if status["RuleEvaluationStatus"] != "InProgress"
    }
    assert finals == {"LossNotDecreasing": ("IssuesFound", 21), "ExplodingTensor": ("NoIssuesFound", None)}


def test_the_cli_rejects_a_bad_rule_list_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert evaluator.main(["--trial", str(tmp_path), "--rules", '[{"RuleConfigurationName": "a b"}]']) == 2
    assert capsys.readouterr().err.startswith("error: rule configuration [0]: RuleConfigurationName must be")


def test_sagemaker_rule_configurations_and_the_shorthand_parse_alike() -> None:
    # GIVEN a DebugRuleConfigurations list as CreateTrainingJob takes it, and the shorthand
    sagemaker = [
        {
            "RuleConfigurationName": "LossNotDecreasing",
            "RuleEvaluatorImage": "503895931360.dkr.ecr.us-east-1.amazonaws.com/sagemaker-debugger-rules",
            "InstanceType": "ml.t3.medium",
            "RuleParameters": {"rule_to_invoke": "LossNotDecreasing", "num_steps": "20"},
        },
        {"RuleConfigurationName": "NoClusters", "RuleParameters": {"rule_to_invoke": "LatentClusterRule"}},
    ]

    parsed = config.parse_rule_configurations(json.dumps(sagemaker))
    shorthand = config.parse_rule_configurations(" LossNotDecreasing , Overfit ")

    assert parsed == (
        config.RuleConfiguration(
            "LossNotDecreasing",
            "LossNotDecreasing",
            {"rule_to_invoke": "LossNotDecreasing", "num_steps": "20"},
        ),
        config.RuleConfiguration("NoClusters", "LatentClusterRule", {"rule_to_invoke": "LatentClusterRule"}),
    )
    assert [(c.name, c.rule_to_invoke, dict(c.parameters)) for c in shorthand] == [
        ("LossNotDecreasing", "LossNotDecreasing", {}),
        ("Overfit", "Overfit", {}),
    ]
    assert config.parse_rule_configurations("") == ()
    assert evaluator.required_collections(parsed + shorthand) == ["losses", "embeddings"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[not json", "the rule configurations are not valid JSON"),
        ('{"RuleConfigurationName": "x"}', "RuleConfigurationName must be 1-256 characters"),  # not a list
        ('["LossNotDecreasing"]', "rule configuration [0] must be a JSON object"),
        ('[{"RuleParameters": {}}]', "RuleConfigurationName must be 1-256 characters"),
        (
            '[{"RuleConfigurationName": "x", "RuleParameters": {"num_steps": 5}}]',
            "RuleParameters must map strings",
        ),
        ("LossNotDecreasing,LossNotDecreasing", "names must be unique; repeated: LossNotDecreasing"),
        (",".join(f"Rule{index}" for index in range(21)), "at most 20 rules"),
    ],
)
def test_malformed_rule_configurations_are_one_clear_error(value: str, message: str) -> None:
    with pytest.raises(config.RuleConfigurationError) as raised:
        config.parse_rule_configurations(value)
    assert message in str(raised.value)
