"""The four rules' event patterns, taken from the SYNTHESIZED template, proven against every event fixture
(tests/events/*.json) and targeted variations, with the EventBridge-faithful matcher.

Why from the template and not only from infra/event_patterns.py: CDK renders ``events.EventPattern``
(key renaming, merging); what EventBridge evaluates is what the template says.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra import event_patterns
from infra.config import AutostopSettings
from tests.infra.conftest import Synthesized
from tests.support import cdk as cdk_support
from tests.support.event_pattern_matcher import matches

Synth = Callable[..., Synthesized]
EVENTS_DIRECTORY = cdk_support.REPOSITORY_ROOT / "tests" / "events"
FIXTURES = sorted(EVENTS_DIRECTORY.glob("*.json"))

SAGEMAKER = "TrainingJobStateChangeRule"
IN_CONTAINER = "InContainerRuleEvaluationRule"
ALARM = "RuleAlarmStateChangeRule"
RUNG_REPORT = "CrossJobRungReportRule"
RULE_SOURCES = {
    SAGEMAKER: "aws.sagemaker",
    IN_CONTAINER: "autostop.training",
    ALARM: "aws.cloudwatch",
    RUNG_REPORT: "autostop.training",
}

# Which rule (if any) each documented fixture must trigger under cdk.json's defaults.
EXPECTED_WITH_DEFAULTS: dict[str, str | None] = {
    "autostop_cross_job_rung_report.json": RUNG_REPORT,
    "autostop_rule_issues_found.json": IN_CONTAINER,
    "cloudwatch_alarm_rule_alarm.json": ALARM,
    "cloudwatch_alarm_rule_alarm_training_job_name_dimension.json": ALARM,
    "cloudwatch_alarm_rule_ok.json": None,
    "sagemaker_state_change_completed.json": SAGEMAKER,
    "sagemaker_state_change_in_progress.json": None,
    "sagemaker_state_change_issues_found.json": SAGEMAKER,
    "sagemaker_state_change_profiler_issues_found.json": SAGEMAKER,
    "sagemaker_state_change_stopped.json": SAGEMAKER,
}


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIRECTORY / name).read_text())
    return event


def synthesized_patterns(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """Rule construct id -> the EventPattern in the template."""
    patterns = {}
    for resource in synthesized.resources("AWS::Events::Rule").values():
        if "EventPattern" not in resource["Properties"]:
            continue  # the alarm janitor's schedule
        construct_id = resource["Metadata"]["aws:cdk:path"].split("/")[-2]
        patterns[construct_id] = resource["Properties"]["EventPattern"]
    assert set(patterns) == set(RULE_SOURCES)
    return patterns


def matching_rules(patterns: dict[str, dict[str, Any]], event: dict[str, Any]) -> set[str]:
    return {name for name, pattern in patterns.items() if matches(pattern, event)}


@pytest.fixture(scope="module")
def default_patterns(default_app: Synthesized) -> dict[str, dict[str, Any]]:
    return synthesized_patterns(default_app)


# --------------------------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda path: path.name)
def test_every_fixture_triggers_at_most_the_rule_of_its_source(
    default_patterns: dict[str, dict[str, Any]], fixture: Path
) -> None:
    # GIVEN any event fixture (including ones added later by other parts)
    event = json.loads(fixture.read_text())
    # WHEN run through the four synthesized patterns
    matched = matching_rules(default_patterns, event)
    # THEN at most one rule matches, the one for the event's source
    assert len(matched) <= 1
    assert all(RULE_SOURCES[name] == event.get("source") for name in matched)
    if fixture.name in EXPECTED_WITH_DEFAULTS:
        expected = EXPECTED_WITH_DEFAULTS[fixture.name]
        assert matched == ({expected} if expected else set()), fixture.name


def test_documented_fixtures_are_all_present() -> None:
    assert set(EXPECTED_WITH_DEFAULTS) <= {path.name for path in FIXTURES}


def test_synthesized_patterns_are_the_pure_functions_output(default_patterns: dict[str, Any]) -> None:
    settings = AutostopSettings()
    assert default_patterns[SAGEMAKER] == event_patterns.training_job_state_change(settings)
    assert default_patterns[IN_CONTAINER] == event_patterns.in_container_rule_evaluation(settings)
    assert default_patterns[ALARM] == event_patterns.rule_alarm_state_change(settings)
    assert default_patterns[RUNG_REPORT] == event_patterns.cross_job_rung_report(settings)


# --------------------------------------------------------------------------------------------- SageMaker


def with_statuses(
    event: dict[str, Any], *statuses: tuple[str, str], key: str = "DebugRuleEvaluationStatuses"
) -> Any:
    changed = copy.deepcopy(event)
    changed["detail"][key] = [
        {"RuleConfigurationName": name, "RuleEvaluationStatus": status} for name, status in statuses
    ]
    return changed


@pytest.mark.parametrize(
    "status",
    ["InProgress", "NoIssuesFound", "Error", "Stopping", "Stopped"],
)
def test_in_progress_job_without_issues_found_does_not_match(
    default_patterns: dict[str, dict[str, Any]], status: str
) -> None:
    event = with_statuses(load("sagemaker_state_change_in_progress.json"), ("LossNotDecreasing", status))
    assert not matches(default_patterns[SAGEMAKER], event)


@pytest.mark.parametrize("job_status", ["Completed", "Failed", "Stopped"])
def test_terminal_states_match_for_alarm_clean_up(
    default_patterns: dict[str, dict[str, Any]], job_status: str
) -> None:
    event = load("sagemaker_state_change_in_progress.json")
    event["detail"]["TrainingJobStatus"] = job_status
    del event["detail"]["DebugRuleEvaluationStatuses"]
    assert matches(default_patterns[SAGEMAKER], event)


def test_stopping_state_without_issues_does_not_match(default_patterns: dict[str, dict[str, Any]]) -> None:
    event = load("sagemaker_state_change_in_progress.json")
    event["detail"]["TrainingJobStatus"] = "Stopping"
    assert not matches(default_patterns[SAGEMAKER], event)


def test_restricted_rules_need_issues_found_on_that_rule_in_the_same_element(synth: Synth) -> None:
    # GIVEN only VanishingGradient stops jobs
    patterns = synthesized_patterns(synth({"autostop:stoppingRules": "VanishingGradient"}))
    base = load("sagemaker_state_change_in_progress.json")
    # THEN LossNotDecreasing IssuesFound + VanishingGradient InProgress (two elements) does not match ...
    assert not matches(
        patterns[SAGEMAKER],
        with_statuses(base, ("LossNotDecreasing", "IssuesFound"), ("VanishingGradient", "InProgress")),
    )
    assert not matches(patterns[SAGEMAKER], load("sagemaker_state_change_issues_found.json"))
    # ... while IssuesFound on VanishingGradient itself does
    assert matches(
        patterns[SAGEMAKER],
        with_statuses(base, ("LossNotDecreasing", "InProgress"), ("VanishingGradient", "IssuesFound")),
    )
    # ... and terminal events still match (alarm clean-up is for every job)
    assert matches(patterns[SAGEMAKER], load("sagemaker_state_change_completed.json"))


def test_profiler_rules_are_restricted_the_same_way(synth: Synth) -> None:
    profiler_event = load("sagemaker_state_change_profiler_issues_found.json")
    allowed = synthesized_patterns(synth({"autostop:stoppingRules": "LowGPUUtilization,LossNotDecreasing"}))
    other = synthesized_patterns(synth({"autostop:stoppingRules": "VanishingGradient"}))
    assert matches(allowed[SAGEMAKER], profiler_event)
    assert not matches(other[SAGEMAKER], profiler_event)


def test_job_prefix_narrows_sagemaker_and_in_container_rules(synth: Synth) -> None:
    in_scope = synthesized_patterns(synth({"autostop:jobPrefix": "sweep-"}))
    out_of_scope = synthesized_patterns(synth({"autostop:jobPrefix": "other-"}))
    for fixture, rule in (
        ("sagemaker_state_change_issues_found.json", SAGEMAKER),
        ("sagemaker_state_change_completed.json", SAGEMAKER),
        ("autostop_rule_issues_found.json", IN_CONTAINER),
        ("cloudwatch_alarm_rule_alarm.json", ALARM),
        ("autostop_cross_job_rung_report.json", RUNG_REPORT),
    ):
        event = load(fixture)
        assert matching_rules(in_scope, event) == {rule}, fixture
        assert matching_rules(out_of_scope, event) == set(), fixture


# --------------------------------------------------------------------------------------------- in-container


def test_in_container_event_needs_issues_found(default_patterns: dict[str, dict[str, Any]]) -> None:
    event = load("autostop_rule_issues_found.json")
    assert matches(default_patterns[IN_CONTAINER], event)
    assert not matches(
        default_patterns[IN_CONTAINER], with_statuses(event, ("LossNotDecreasing", "NoIssuesFound"))
    )


def test_in_container_rule_restriction_is_same_element(synth: Synth) -> None:
    patterns = synthesized_patterns(synth({"autostop:stoppingRules": "VanishingGradient"}))
    event = load("autostop_rule_issues_found.json")
    assert not matches(patterns[IN_CONTAINER], event)
    assert not matches(
        patterns[IN_CONTAINER],
        with_statuses(event, ("LossNotDecreasing", "IssuesFound"), ("VanishingGradient", "Error")),
    )
    assert matches(patterns[IN_CONTAINER], with_statuses(event, ("VanishingGradient", "IssuesFound")))


@pytest.mark.parametrize("source", ["aws.sagemaker", "autostop.training.other", "someone.else"])
def test_other_sources_with_the_same_detail_do_not_match_the_in_container_rule(
    default_patterns: dict[str, dict[str, Any]], source: str
) -> None:
    event = load("autostop_rule_issues_found.json")
    event["source"] = source
    assert not matches(default_patterns[IN_CONTAINER], event)


# --------------------------------------------------------------------------------------------- rung reports


def test_a_rung_report_matches_its_own_rule_only(default_patterns: dict[str, dict[str, Any]]) -> None:
    # GIVEN the documented rung report  WHEN matched  THEN only the rung-report rule, not the rule events'
    event = load("autostop_cross_job_rung_report.json")
    assert matching_rules(default_patterns, event) == {RUNG_REPORT}
    # AND a rule event is never delivered to the rung-report rule (the detail-types keep them apart)
    assert not matches(default_patterns[RUNG_REPORT], load("autostop_rule_issues_found.json"))


@pytest.mark.parametrize("rung", [0, -100, "300", None])
def test_a_rung_report_without_a_positive_rung_does_not_match(
    default_patterns: dict[str, dict[str, Any]], rung: object
) -> None:
    event = load("autostop_cross_job_rung_report.json")
    event["detail"]["Rung"] = rung
    assert not matches(default_patterns[RUNG_REPORT], event)


@pytest.mark.parametrize("source", ["aws.sagemaker", "autostop.training.other", "someone.else"])
def test_other_sources_with_the_same_detail_do_not_match_the_rung_report_rule(
    default_patterns: dict[str, dict[str, Any]], source: str
) -> None:
    event = load("autostop_cross_job_rung_report.json")
    event["source"] = source
    assert not matches(default_patterns[RUNG_REPORT], event)


# --------------------------------------------------------------------------------------------- alarms


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_alarm_states_other_than_alarm_do_not_match(
    default_patterns: dict[str, dict[str, Any]], state: str
) -> None:
    event = load("cloudwatch_alarm_rule_alarm.json")
    event["detail"]["state"]["value"] = state
    assert not matches(default_patterns[ALARM], event)


@pytest.mark.parametrize(
    "alarm_name",
    ["Autostop-AutoStopStopFunctionErrorsAlarm-ABC", "other-sweep-lr-0001/LossNotDecreasing", "autostop"],
)
def test_alarms_without_the_per_job_prefix_do_not_match(
    default_patterns: dict[str, dict[str, Any]], alarm_name: str
) -> None:
    event = load("cloudwatch_alarm_rule_alarm.json")
    event["detail"]["alarmName"] = alarm_name
    assert not matches(default_patterns[ALARM], event)


def test_alarm_rule_restriction_uses_the_rule_name_suffix(synth: Synth) -> None:
    patterns = synthesized_patterns(
        synth(
            {"autostop:jobPrefix": "sweep-", "autostop:stoppingRules": "LossNotDecreasing,VanishingGradient"}
        )
    )
    event = load("cloudwatch_alarm_rule_alarm.json")  # autostop-sweep-lr-0001/LossNotDecreasing
    assert matches(patterns[ALARM], event)
    for other_name in (
        "autostop-sweep-lr-0001/ExplodingTensor",
        "autostop-other-0001/LossNotDecreasing",
        "autostop-sweep-lr-0001/LossNotDecreasingSoon",
    ):
        event["detail"]["alarmName"] = other_name
        assert not matches(patterns[ALARM], event), other_name


def test_custom_alarm_prefix_replaces_the_default(synth: Synth) -> None:
    patterns = synthesized_patterns(synth({"autostop:alarmPrefix": "stopper-"}))
    event = load("cloudwatch_alarm_rule_alarm.json")
    assert not matches(patterns[ALARM], event)
    event["detail"]["alarmName"] = "stopper-sweep-lr-0001/LossNotDecreasing"
    assert matches(patterns[ALARM], event)
