"""Event interpretation: the three documented kinds become plain facts; anything else is a reasoned skip."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.stop_training_job import decision
from tests.lambdas.stop_training_job import event_fixtures as fixtures
from tests.lambdas.stop_training_job.event_fixtures import changed, load, without

CONFIG = decision.Config()
Reason = decision.Reason


def interpret(event: object, config: decision.Config = CONFIG) -> decision.EventFacts | decision.IgnoredEvent:
    return decision.interpret_event(event, config)


def facts_of(event: object, config: decision.Config = CONFIG) -> decision.EventFacts:
    facts = interpret(event, config)
    assert isinstance(facts, decision.EventFacts), facts
    return facts


def ignored(event: object, config: decision.Config = CONFIG) -> decision.IgnoredEvent:
    outcome = interpret(event, config)
    assert isinstance(outcome, decision.IgnoredEvent), outcome
    return outcome


# --- the documented shapes ---


def test_sagemaker_state_change_with_issues_found() -> None:
    # GIVEN the documented SageMaker state-change event with a Debugger rule IssuesFound
    # WHEN interpreted
    facts = facts_of(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    # THEN the job, the claimed status and every rule status are read; the step comes from StatusDetails
    assert facts.source is decision.EventSource.SAGEMAKER
    assert facts.job_name == fixtures.JOB_NAME
    assert facts.job_status == "InProgress"
    assert facts.event_id == "6a7e8feb-b491-4cf7-a9f1-bf3703467718"
    assert [(f.rule_name, f.status, f.origin) for f in facts.findings] == [
        ("LossNotDecreasing", "IssuesFound", decision.FindingOrigin.DEBUGGER),
        ("VanishingGradient", "InProgress", decision.FindingOrigin.DEBUGGER),
    ]
    issue = facts.issues[0]
    assert issue.step == 500
    assert issue.status_details.startswith(
        "RuleEvaluationConditionMet: Evaluation of the rule LossNotDecreasing"
    )
    assert not issue.status_details.endswith("\n")
    assert not facts.job_finished


def test_sagemaker_profiler_rule_statuses_are_findings_too() -> None:
    # GIVEN the documented event with ProfilerRuleEvaluationStatuses
    facts = facts_of(load(fixtures.SAGEMAKER_PROFILER_ISSUES_FOUND))
    # THEN the profiler rule is a finding with its origin and step
    assert [(f.rule_name, f.origin, f.step) for f in facts.issues] == [
        ("LowGPUUtilization", decision.FindingOrigin.PROFILER, 120)
    ]


@pytest.mark.parametrize(
    ("name", "status"), [(fixtures.SAGEMAKER_COMPLETED, "Completed"), (fixtures.SAGEMAKER_STOPPED, "Stopped")]
)
def test_terminal_state_changes_say_the_job_finished(name: str, status: str) -> None:
    facts = facts_of(load(name))
    assert facts.job_status == status
    assert facts.job_finished


def test_in_container_event_is_read_like_the_sagemaker_event_with_its_step() -> None:
    # GIVEN the project's in-container event (no RuleEvaluationJobArn, ISO timestamps, a Step field)
    # WHEN interpreted
    facts = facts_of(load(fixtures.TRAINING_ISSUES_FOUND))
    # THEN the same facts come out; the step is the event's Step, and no job status is claimed
    assert facts.source is decision.EventSource.TRAINING
    assert facts.job_name == fixtures.JOB_NAME
    assert facts.job_status is None
    assert [(f.rule_name, f.status, f.step) for f in facts.findings] == [
        ("LossNotDecreasing", "IssuesFound", 40)
    ]


def test_in_container_event_ignores_a_status_it_should_not_carry() -> None:
    # GIVEN an in-container event that claims a job status (only SageMaker's own events are trusted for it)
    event = changed(load(fixtures.TRAINING_ISSUES_FOUND), ("detail", "TrainingJobStatus"), "Completed")
    # THEN the claim is not read
    assert facts_of(event).job_status is None


def test_alarm_event_names_the_job_by_host_dimension_and_the_rule_by_alarm_name() -> None:
    # GIVEN the documented alarm event: name autostop-<job>/<rule>, metric dimension Host=<job>/algo-1
    facts = facts_of(load(fixtures.ALARM_HOST))
    # THEN the job and the rule are read; the alarm's reason is the status details
    assert facts.source is decision.EventSource.CLOUDWATCH
    assert facts.job_name == fixtures.JOB_NAME
    (finding,) = facts.findings
    assert (finding.rule_name, finding.status, finding.origin) == (
        "LossNotDecreasing",
        "IssuesFound",
        decision.FindingOrigin.ALARM,
    )
    assert finding.status_details.startswith("Threshold Crossed")


def test_alarm_event_names_the_job_by_training_job_name_dimension() -> None:
    facts = facts_of(load(fixtures.ALARM_TRAINING_JOB_NAME))
    assert facts.job_name == fixtures.JOB_NAME
    assert facts.issues[0].rule_name == "LossNotDecreasing"


def test_alarm_event_uses_the_configured_prefix() -> None:
    # GIVEN alarms named with another prefix
    event = changed(
        load(fixtures.ALARM_HOST), ("detail", "alarmName"), "stopper-sweep-lr-0001/LossNotDecreasing"
    )
    # THEN they are ours only when the settings say so
    assert facts_of(event, decision.Config(alarm_prefix="stopper-")).job_name == fixtures.JOB_NAME
    assert ignored(event).reason is Reason.FOREIGN_EVENT


def test_alarm_back_to_ok_is_ignored_with_its_reason() -> None:
    outcome = ignored(load(fixtures.ALARM_OK))
    assert outcome.reason is Reason.ALARM_NOT_IN_ALARM
    assert outcome.job_name == fixtures.JOB_NAME


def test_metric_math_entries_are_skipped_when_another_metric_names_the_job() -> None:
    # GIVEN an alarm with an expression entry beside the metric
    event = load(fixtures.ALARM_HOST)
    event["detail"]["configuration"]["metrics"].insert(
        0, {"id": "e1", "expression": "m1 * 1", "returnData": True}
    )
    # THEN the job is still found
    assert facts_of(event).job_name == fixtures.JOB_NAME


def test_every_field_is_optional_a_minimal_event_is_facts_without_findings() -> None:
    # GIVEN the smallest event naming a job
    event = {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Training Job State Change",
        "detail": {"TrainingJobName": "job-1"},
    }
    # THEN it is read: no status, no findings, no id
    assert facts_of(event) == decision.EventFacts(decision.EventSource.SAGEMAKER, "job-1")


@pytest.mark.parametrize(
    "path", [("detail", "TrainingJobName"), ("detail", "TrainingJobArn"), ("resources",)], ids=str
)
def test_the_job_can_be_named_by_any_one_of_name_arn_or_resources(path: tuple[str, ...]) -> None:
    # GIVEN an event with only one of the three places naming the job
    event = load(fixtures.TRAINING_ISSUES_FOUND)
    for other in [("detail", "TrainingJobName"), ("detail", "TrainingJobArn"), ("resources",)]:
        if other != path:
            event = without(event, other)
    # THEN the job is still named
    assert facts_of(event).job_name == fixtures.JOB_NAME


# --- foreign and malformed events ---


@pytest.mark.parametrize("event", [None, [], "event", 42, 3.5, True, b"{}"], ids=repr)
def test_non_object_events_are_malformed(event: object) -> None:
    outcome = ignored(event)
    assert outcome.reason is Reason.MALFORMED_EVENT
    assert "expected an object" in outcome.detail


@pytest.mark.parametrize(
    ("source", "detail_type"),
    [
        ("aws.s3", "Object Created"),
        ("aws.sagemaker", "SageMaker Endpoint State Change"),
        ("autostop.training", "SageMaker Training Job State Change"),
        ("aws.cloudwatch", "Debugger Rule Evaluation Status Change"),
        ("AWS.SAGEMAKER", "SageMaker Training Job State Change"),
    ],
)
def test_other_sources_and_detail_types_are_foreign(source: str, detail_type: str) -> None:
    event = load(fixtures.SAGEMAKER_ISSUES_FOUND) | {"source": source, "detail-type": detail_type}
    assert ignored(event).reason is Reason.FOREIGN_EVENT


HUGE = "x" * 1_000_000

MALFORMED_CASES: list[tuple[str, tuple[str | int, ...], Any, str]] = [
    (fixtures.SAGEMAKER_ISSUES_FOUND, ("source",), None, "needs source and detail-type"),
    (fixtures.SAGEMAKER_ISSUES_FOUND, ("source",), 7, "event.source: expected a string"),
    (fixtures.SAGEMAKER_ISSUES_FOUND, ("detail-type",), HUGE, "event.detail-type: 1000000 characters"),
    (fixtures.SAGEMAKER_ISSUES_FOUND, ("detail",), None, "event.detail: missing"),
    (fixtures.SAGEMAKER_ISSUES_FOUND, ("detail",), ["x"], "event.detail: expected an object, got list"),
    (
        fixtures.SAGEMAKER_ISSUES_FOUND,
        ("detail", "TrainingJobName"),
        12,
        "detail.TrainingJobName: expected a string",
    ),
    (fixtures.SAGEMAKER_ISSUES_FOUND, ("detail", "TrainingJobName"), HUGE, "detail.TrainingJobName: 1000000"),
    (
        fixtures.SAGEMAKER_ISSUES_FOUND,
        ("detail", "TrainingJobName"),
        "bad_name",
        "not a SageMaker training job name",
    ),
    (fixtures.SAGEMAKER_ISSUES_FOUND, ("detail", "TrainingJobName"), "other-job", "names 'other-job'"),
    (fixtures.SAGEMAKER_ISSUES_FOUND, ("detail", "TrainingJobArn"), "arn:aws:s3:::bucket", "not a SageMaker"),
    (fixtures.SAGEMAKER_ISSUES_FOUND, ("resources",), "arn", "event.resources: expected a list"),
    (fixtures.SAGEMAKER_ISSUES_FOUND, ("resources", 0), {"arn": 1}, "resources[0]: expected an ARN string"),
    (fixtures.SAGEMAKER_ISSUES_FOUND, ("detail", "TrainingJobStatus"), ["InProgress"], "TrainingJobStatus"),
    (fixtures.SAGEMAKER_ISSUES_FOUND, ("detail", "DebugRuleEvaluationStatuses"), {"a": 1}, "expected a list"),
    (fixtures.SAGEMAKER_ISSUES_FOUND, ("detail", "DebugRuleEvaluationStatuses"), [{}] * 21, "21 items"),
    (fixtures.SAGEMAKER_ISSUES_FOUND, ("detail", "DebugRuleEvaluationStatuses", 0), "IssuesFound", "got str"),
    (
        fixtures.SAGEMAKER_ISSUES_FOUND,
        ("detail", "DebugRuleEvaluationStatuses", 0, "RuleEvaluationStatus"),
        True,
        "DebugRuleEvaluationStatuses[0].RuleEvaluationStatus: expected a string, got bool",
    ),
    (
        fixtures.SAGEMAKER_ISSUES_FOUND,
        ("detail", "DebugRuleEvaluationStatuses", 0, "RuleConfigurationName"),
        None,
        "needs RuleConfigurationName and RuleEvaluationStatus",
    ),
    (
        fixtures.SAGEMAKER_ISSUES_FOUND,
        ("detail", "DebugRuleEvaluationStatuses", 0, "RuleConfigurationName"),
        "Loss Not Decreasing",
        "not a rule configuration name autostop accepts",
    ),
    (
        fixtures.SAGEMAKER_ISSUES_FOUND,
        ("detail", "DebugRuleEvaluationStatuses", 0, "StatusDetails"),
        "y" * 1025,
        "StatusDetails: 1025 characters",
    ),
    (
        fixtures.SAGEMAKER_ISSUES_FOUND,
        ("detail", "DebugRuleEvaluationStatuses", 0, "LastModifiedTime"),
        {"epoch": 1},
        "LastModifiedTime: expected epoch milliseconds",
    ),
    (
        fixtures.SAGEMAKER_PROFILER_ISSUES_FOUND,
        ("detail", "ProfilerRuleEvaluationStatuses", 0, "RuleEvaluationJobArn"),
        "processing-job/x",
        "RuleEvaluationJobArn: not an ARN",
    ),
    (fixtures.TRAINING_ISSUES_FOUND, ("detail", "Step"), -1, "detail.Step: expected a non-negative integer"),
    (fixtures.TRAINING_ISSUES_FOUND, ("detail", "Step"), "40", "detail.Step"),
    (fixtures.TRAINING_ISSUES_FOUND, ("detail", "Step"), True, "detail.Step"),
    (fixtures.TRAINING_ISSUES_FOUND, ("detail", "Step"), 2**64, "detail.Step"),
    (fixtures.ALARM_HOST, ("detail", "alarmName"), None, "detail.alarmName: missing"),
    (
        fixtures.ALARM_HOST,
        ("detail", "alarmName"),
        "autostop-sweep-lr-0001",
        "expected '<prefix><training job>/",
    ),
    (fixtures.ALARM_HOST, ("detail", "alarmName"), "autostop-bad_job/Rule", "alarmName (job part)"),
    (fixtures.ALARM_HOST, ("detail", "alarmName"), "autostop-sweep-lr-0001/", "alarmName (rule part)"),
    (
        fixtures.ALARM_HOST,
        ("detail", "alarmName"),
        "autostop-other-job/LossNotDecreasing",
        "names job 'other-job'",
    ),
    (fixtures.ALARM_HOST, ("detail", "state"), "ALARM", "detail.state: expected an object"),
    (fixtures.ALARM_HOST, ("detail", "state", "value"), 1, "detail.state.value: expected a string"),
    (
        fixtures.ALARM_HOST,
        ("detail", "configuration", "metrics"),
        [],
        "no metric has a Host or TrainingJobName",
    ),
    (fixtures.ALARM_HOST, ("detail", "configuration", "metrics", 0), "m1", "metrics[0]: expected an object"),
    (
        fixtures.ALARM_HOST,
        ("detail", "configuration", "metrics", 0, "metricStat", "metric", "dimensions", "Host"),
        "sweep-lr-0001",
        "Host: expected '<training job>/algo-<N>'",
    ),
    (
        fixtures.ALARM_HOST,
        ("detail", "configuration", "metrics", 0, "metricStat", "metric", "dimensions"),
        {"Host": "sweep-lr-0001/algo-1", "TrainingJobName": "sweep-lr-0002"},
        "names job 'sweep-lr-0002'",
    ),
    (
        fixtures.ALARM_HOST,
        ("detail", "configuration", "metrics", 0, "metricStat", "metric", "dimensions"),
        {f"d{index}": "v" for index in range(31)},
        "more than 30 dimensions",
    ),
]


@pytest.mark.parametrize(
    ("name", "path", "value", "message"), MALFORMED_CASES, ids=lambda case: str(case)[:60]
)
def test_malformed_fields_make_the_event_a_reasoned_skip(
    name: str, path: tuple[str | int, ...], value: Any, message: str
) -> None:
    # GIVEN a documented event with one field of the wrong type, length or pattern
    event = changed(load(name), path, value)
    # WHEN interpreted
    outcome = ignored(event)
    # THEN it is skipped as malformed, the detail names the field, and never echoes a huge value
    assert outcome.reason is Reason.MALFORMED_EVENT
    assert message in outcome.detail
    assert len(outcome.detail) < 300


def test_a_job_named_nowhere_is_malformed() -> None:
    event = load(fixtures.TRAINING_ISSUES_FOUND)
    for path in [("detail", "TrainingJobName"), ("detail", "TrainingJobArn"), ("resources",)]:
        event = without(event, path)
    outcome = ignored(event)
    assert outcome.reason is Reason.MALFORMED_EVENT
    assert "names no training job" in outcome.detail


def test_resources_that_are_not_training_jobs_are_ignored() -> None:
    # GIVEN an event whose resources also list a processing job
    event = load(fixtures.SAGEMAKER_ISSUES_FOUND)
    event["resources"].append("arn:aws:sagemaker:us-east-1:123456789012:processing-job/x")
    # THEN only the training job counts
    assert facts_of(event).job_name == fixtures.JOB_NAME


def test_an_unusable_event_id_is_dropped_not_fatal() -> None:
    event = changed(load(fixtures.SAGEMAKER_ISSUES_FOUND), ("id",), "i" * 5000)
    assert facts_of(event).event_id is None


def test_summarize_event_is_bounded_and_never_raises() -> None:
    # GIVEN events of any shape
    summary = decision.summarize_event({"source": HUGE, "detail-type": 5, "id": "abc"})
    # THEN the summary is short and typed
    assert len(summary["source"]) == 131
    assert summary["detail-type"] == "<int>"
    assert summary["id"] == "abc"
    assert decision.summarize_event([1, 2]) == {"type": "list"}
