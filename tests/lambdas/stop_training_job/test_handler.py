"""The stop Lambda end to end through real botocore over HTTP: moto (SNS, SQS, CloudWatch), SageMaker fake.

Each test names the behaviour of the stop path it proves. The fake's call log is the proof of what
was (not) sent to SageMaker; the SQS queue subscribed to the topic is the proof of what was notified.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdas.stop_training_job import decision
from tests.lambdas.stop_training_job import event_fixtures as fixtures
from tests.lambdas.stop_training_job.conftest import (
    OPT_IN_TAGS,
    SIGNED_JOB_REQUEST,
    TEST_MAX_ATTEMPTS,
    Notifications,
    StopLambda,
)
from tests.lambdas.stop_training_job.event_fixtures import JOB_NAME, changed, for_job, load
from tests.support.sagemaker_fake import FakeSageMaker, Fault

SERVICE = {"service": "stop-training-job"}
STOP_TAG_KEYS = {"autostop:stopped-by-rule", "autostop:stopped-at", "autostop:stop-source"}
TRAIL_KEYS = {"autostop:stop-requested-at", "autostop:audit"}
CONSOLE_URL = f"https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/jobs/{JOB_NAME}"


def now() -> datetime.datetime:
    """The Lambda checks a signed event's time against its own clock: test events are signed now."""
    return datetime.datetime.now(datetime.UTC)


def operations(sagemaker: FakeSageMaker) -> list[str]:
    return [call.operation for call in sagemaker.calls]


def stop_tags_on(sagemaker: FakeSageMaker, job_name: str = JOB_NAME) -> dict[str, str]:
    return {key: value for key, value in sagemaker.job(job_name).tags.items() if key.startswith("autostop:")}


def skipped_reasons(stop_lambda: StopLambda, reason: str) -> list[float]:
    return stop_lambda.metric_values("StopSkipped", {**SERVICE, "reason": reason})


def decision_lines(stop_lambda: StopLambda) -> list[dict[str, Any]]:
    return [line for line in stop_lambda.log_lines() if line["message"] in {"decision", "event ignored"}]


# --- stopping ---


def test_sagemaker_issue_stops_the_job_then_tags_notifies_and_counts(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str, notifications: Notifications
) -> None:
    # GIVEN an opted-in InProgress job and the SageMaker event saying LossNotDecreasing found issues
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    # WHEN the handler runs
    result = stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    # THEN it looked the job up, stopped it, then tagged it, in that order
    assert result == {
        "action": "stop",
        "reason": "issues_found",
        "job": JOB_NAME,
        "rule": "LossNotDecreasing",
        "step": 500,
        "source": "aws.sagemaker",
        "detail": "rule LossNotDecreasing found issues",
    }
    assert operations(sagemaker) == [
        "DescribeTrainingJob",
        "ListTags",
        "AddTags",
        "StopTrainingJob",
        "AddTags",
        "AddTags",
    ]
    assert sagemaker.calls_to("StopTrainingJob")[0].params == {"TrainingJobName": JOB_NAME}
    assert sagemaker.job(JOB_NAME).status == "Stopping"
    # AND the marker before the stop, the three contract keys after it, the closing marker last
    requested, stop_tags, closed = sagemaker.calls_to("AddTags")
    assert [tag["Key"] for tag in requested.params["Tags"]] == ["autostop:stop-requested-at"]
    assert {tag["Key"] for tag in stop_tags.params["Tags"]} == STOP_TAG_KEYS
    assert closed.params["Tags"] == [{"Key": "autostop:audit", "Value": "notified"}]
    tags = {key: value for key, value in stop_tags_on(sagemaker).items() if key in STOP_TAG_KEYS}
    assert tags["autostop:stopped-by-rule"] == "LossNotDecreasing"
    assert tags["autostop:stop-source"] == "aws.sagemaker"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", tags["autostop:stopped-at"])
    stopped_at = datetime.datetime.strptime(tags["autostop:stopped-at"], "%Y-%m-%dT%H:%M:%S%z")
    assert before <= stopped_at <= datetime.datetime.now(datetime.UTC)
    assert set(sagemaker.job(JOB_NAME).tags) == {*OPT_IN_TAGS, *tags, *TRAIL_KEYS}
    # AND one notification with the job, the rule, StatusDetails and the console link
    (notification,) = notifications.received()
    assert notification["Subject"] == f"autostop stopped {JOB_NAME}: rule LossNotDecreasing found issues"
    body = notification["Message"]
    assert f"Job:           {JOB_NAME}" in body
    assert "Rule:          LossNotDecreasing (debugger rule)" in body
    assert "Step:          500" in body
    assert (
        "StatusDetails: RuleEvaluationConditionMet: Evaluation of the rule LossNotDecreasing at step 500 "
        "resulted in the condition being met"
    ) in body
    assert f"Console:       {CONSOLE_URL}" in body
    assert "autostop:stopped-by-rule=LossNotDecreasing" in body
    assert "DRY RUN" not in body
    assert notification["MessageAttributes"]["action"]["Value"] == "stop"
    assert notification["MessageAttributes"]["job"]["Value"] == JOB_NAME
    # AND the metrics: one job stopped, one issue (also by rule), nothing skipped
    assert stop_lambda.metric_values("JobsStopped", SERVICE) == [1]
    assert stop_lambda.metric_values("IssuesFound", SERVICE) == [1]
    assert stop_lambda.metric_values("IssuesFound", {**SERVICE, "rule": "LossNotDecreasing"}) == [1]
    assert stop_lambda.metric_values("StopSkipped", SERVICE) == []
    # AND one structured decision line
    (line,) = decision_lines(stop_lambda)
    assert (line["level"], line["action"], line["job"], line["rule"]) == (
        "INFO",
        "stop",
        JOB_NAME,
        "LossNotDecreasing",
    )


def test_in_container_event_stops_with_its_step_and_source(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str, notifications: Notifications
) -> None:
    # GIVEN the project's own rule event, published by the training container
    result = stop_lambda.invoke(fixtures.signed(load(fixtures.TRAINING_ISSUES_FOUND), at=now()))
    # THEN the same stop, recorded as coming from autostop.training at step 40
    assert (result["action"], result["source"], result["step"]) == ("stop", "autostop.training", 40)
    assert stop_tags_on(sagemaker)["autostop:stop-source"] == "autostop.training"
    (notification,) = notifications.received()
    assert "Step:          40" in notification["Message"]


@pytest.mark.parametrize("name", [fixtures.ALARM_HOST, fixtures.ALARM_TRAINING_JOB_NAME])
def test_alarm_event_stops_the_job_named_by_its_dimension(
    name: str,
    stop_lambda: StopLambda,
    sagemaker: FakeSageMaker,
    tagged_job: str,
    notifications: Notifications,
) -> None:
    # GIVEN a per-job alarm in ALARM, naming the job by Host=<job>/algo-1 or TrainingJobName=<job>
    result = stop_lambda.invoke(load(name))
    # THEN the job is stopped for the rule in the alarm's name
    assert (result["action"], result["job"], result["rule"]) == ("stop", JOB_NAME, "LossNotDecreasing")
    assert stop_tags_on(sagemaker)["autostop:stop-source"] == "aws.cloudwatch"
    (notification,) = notifications.received()
    assert "Rule:          LossNotDecreasing (alarm rule)" in notification["Message"]
    assert "StatusDetails: Threshold Crossed" in notification["Message"]


def test_profiler_rule_issue_stops_the_job(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str, notifications: Notifications
) -> None:
    result = stop_lambda.invoke(load(fixtures.SAGEMAKER_PROFILER_ISSUES_FOUND))
    assert (result["action"], result["rule"]) == ("stop", "LowGPUUtilization")
    assert stop_tags_on(sagemaker)["autostop:stopped-by-rule"] == "LowGPUUtilization"
    assert stop_lambda.metric_values("IssuesFound", {**SERVICE, "rule": "LowGPUUtilization"}) == [1]
    assert len(notifications.received()) == 1


def test_opt_in_tag_found_on_a_later_list_tags_page(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, notifications: Notifications
) -> None:
    # GIVEN a job with many tags, the opt-in tag last, and ListTags answering one tag per page
    sagemaker.list_tags_page_size = 1
    sagemaker.add_job(JOB_NAME, tags={**{f"tag-{index}": "x" for index in range(5)}, "autostop": "enabled"})
    # WHEN an issue arrives
    result = stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    # THEN every page was read and the job stopped
    assert result["action"] == "stop"
    assert len(sagemaker.calls_to("ListTags")) == 6


# --- scope and filters ---


def test_rules_that_do_not_stop_are_counted_but_never_looked_up(
    stop_lambda: StopLambda,
    sagemaker: FakeSageMaker,
    tagged_job: str,
    notifications: Notifications,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN only VanishingGradient stops jobs, and the event's issue is LossNotDecreasing's
    monkeypatch.setenv("AUTOSTOP_STOPPING_RULES", "VanishingGradient, ExplodingTensor")
    # WHEN the event arrives
    result = stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    # THEN a skip without any SageMaker call; the issue is still counted for the account-wide alarm
    assert (result["action"], result["reason"]) == ("skip", "rule_not_stopping")
    assert sagemaker.calls == []
    assert notifications.received() == []
    assert stop_lambda.metric_values("IssuesFound", SERVICE) == [1]
    assert skipped_reasons(stop_lambda, "rule_not_stopping") == [1]


def test_a_job_outside_the_prefix_is_never_looked_up(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOSTOP_JOB_PREFIX", "sweep-lr-1")
    result = stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    assert (result["action"], result["reason"]) == ("skip", "out_of_scope_prefix")
    assert sagemaker.calls == []


def test_a_job_inside_the_prefix_is_stopped(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOSTOP_JOB_PREFIX", "sweep-lr-")
    assert stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))["action"] == "stop"


@pytest.mark.parametrize(
    "tags", [{}, {"autostop": "disabled"}, {"team": "ml"}], ids=["untagged", "wrong", "other"]
)
def test_a_job_without_the_opt_in_tag_is_never_stopped(
    tags: dict[str, str], stop_lambda: StopLambda, sagemaker: FakeSageMaker, notifications: Notifications
) -> None:
    # GIVEN an InProgress job that did not opt in, and an issue for it
    sagemaker.add_job(JOB_NAME, tags=tags)
    # WHEN the event arrives
    result = stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    # THEN it is looked up and left alone
    assert (result["action"], result["reason"]) == ("skip", "out_of_scope_tag")
    assert operations(sagemaker) == ["DescribeTrainingJob", "ListTags"]
    assert sagemaker.job(JOB_NAME).status == "InProgress"
    assert notifications.received() == []
    assert skipped_reasons(stop_lambda, "out_of_scope_tag") == [1]


def test_access_denied_by_the_tag_condition_is_an_out_of_scope_skip(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, notifications: Notifications
) -> None:
    # GIVEN IAM allows SageMaker calls only on jobs tagged autostop=enabled, and this job is untagged
    sagemaker.require_tag = ("autostop", "enabled")
    sagemaker.add_job(JOB_NAME, tags={})
    # WHEN an issue arrives
    result = stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    # THEN AccessDenied on Describe means "not opted in": a skip, not an error
    assert (result["action"], result["reason"]) == ("skip", "out_of_scope_access_denied")
    assert [(call.operation, call.status) for call in sagemaker.calls] == [("DescribeTrainingJob", 400)]
    assert notifications.received() == []


def test_access_denied_on_list_tags_is_an_out_of_scope_skip(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str
) -> None:
    sagemaker.inject_fault("ListTags", Fault.ACCESS_DENIED)
    result = stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    assert result["reason"] == "out_of_scope_access_denied"
    assert sagemaker.calls_to("StopTrainingJob") == []


# --- dry run ---


def test_dry_run_notifies_and_never_stops_or_tags(
    stop_lambda: StopLambda,
    sagemaker: FakeSageMaker,
    tagged_job: str,
    notifications: Notifications,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN dry run
    monkeypatch.setenv("AUTOSTOP_DRY_RUN", "true")
    # WHEN an issue arrives for an opted-in running job
    result = stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    # THEN the would-be stop is notified, saying DRY RUN, and nothing is stopped or tagged
    assert (result["action"], result["reason"], result["rule"]) == ("dry_run", "dry_run", "LossNotDecreasing")
    assert operations(sagemaker) == ["DescribeTrainingJob", "ListTags"]
    assert sagemaker.job(JOB_NAME).status == "InProgress"
    assert sagemaker.job(JOB_NAME).tags == OPT_IN_TAGS
    (notification,) = notifications.received()
    assert notification["Subject"].startswith("[DRY RUN] autostop would stop sweep-lr-0001")
    assert notification["Message"].startswith("DRY RUN: autostop would have stopped")
    assert f"Console:       {CONSOLE_URL}" in notification["Message"]
    assert notification["MessageAttributes"]["action"]["Value"] == "dry_run"
    assert stop_lambda.metric_values("JobsStopped", SERVICE) == []
    assert skipped_reasons(stop_lambda, "dry_run") == [1]


# --- idempotency ---


def test_a_duplicate_event_is_a_no_op_success(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str, notifications: Notifications
) -> None:
    # GIVEN the same event delivered twice (EventBridge delivers at least once)
    event = load(fixtures.SAGEMAKER_ISSUES_FOUND)
    first = stop_lambda.invoke(event)
    second = stop_lambda.invoke(event)
    # THEN one stop, one tagging, one notification; the second run is a successful skip
    assert first["action"] == "stop"
    assert (second["action"], second["reason"]) == ("skip", "job_not_in_progress")
    assert len(sagemaker.calls_to("StopTrainingJob")) == 1
    assert len(sagemaker.calls_to("AddTags")) == 3
    assert len(notifications.received()) == 1


@pytest.mark.parametrize("status", ["Stopping", "Stopped", "Completed", "Failed"])
def test_a_job_already_past_in_progress_is_a_no_op_success(
    status: str, stop_lambda: StopLambda, sagemaker: FakeSageMaker, notifications: Notifications
) -> None:
    # GIVEN a stale issue event for a job that is already finishing or finished
    sagemaker.add_job(JOB_NAME, status=status, tags=dict(OPT_IN_TAGS), request=SIGNED_JOB_REQUEST)
    # WHEN it arrives
    result = stop_lambda.invoke(fixtures.signed(load(fixtures.TRAINING_ISSUES_FOUND), at=now()))
    # THEN nothing is stopped, tagged or notified, and no error is raised
    assert (result["action"], result["reason"]) == ("skip", "job_not_in_progress")
    assert sagemaker.calls_to("StopTrainingJob") == []
    assert sagemaker.calls_to("AddTags") == []
    assert notifications.received() == []


def test_validation_exception_on_a_finishing_job_is_success_without_a_second_notification(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, notifications: Notifications
) -> None:
    # GIVEN a job that completes in the instant between our Describe and our StopTrainingJob
    sagemaker.add_job(JOB_NAME, tags=dict(OPT_IN_TAGS), finishes_on_stop="Completed")
    # WHEN an issue arrives
    result = stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    # THEN SageMaker's ValidationException is confirmed by a fresh Describe and treated as success
    assert (result["action"], result["reason"]) == ("skip", "job_not_in_progress")
    assert result["detail"] == "StopTrainingJob was rejected: the job is already Completed"
    assert [(call.operation, call.status) for call in sagemaker.calls] == [
        ("DescribeTrainingJob", 200),
        ("ListTags", 200),
        ("AddTags", 200),
        ("StopTrainingJob", 400),
        ("DescribeTrainingJob", 200),
        ("AddTags", 200),
    ]
    # AND the job is not tagged as stopped by us (the trail is closed as rejected), and nobody is told
    tags = stop_tags_on(sagemaker)
    assert set(tags) == TRAIL_KEYS
    assert tags["autostop:audit"] == "stop-rejected: the job was already Completed"
    assert notifications.received() == []
    assert stop_lambda.metric_values("JobsStopped", SERVICE) == []


def test_validation_exception_while_the_job_still_runs_is_raised(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str, notifications: Notifications
) -> None:
    # GIVEN SageMaker rejects the stop although the job is still InProgress (not the finishing race)
    sagemaker.inject_fault("StopTrainingJob", Fault.VALIDATION)
    # WHEN an issue arrives, THEN the error is raised so EventBridge retries
    with pytest.raises(ClientError, match="ValidationException"):
        stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    assert notifications.received() == []


def test_a_job_that_does_not_exist_is_a_logged_skip(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, notifications: Notifications
) -> None:
    # GIVEN no such job (SageMaker answers ValidationException "Requested resource not found.")
    # WHEN an issue event names it
    result = stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    # THEN a skip, logged with its reason, not an error
    assert (result["action"], result["reason"]) == ("skip", "job_not_found")
    assert operations(sagemaker) == ["DescribeTrainingJob"]
    (line,) = decision_lines(stop_lambda)
    assert (line["level"], line["reason"], line["job"]) == ("INFO", "job_not_found", JOB_NAME)
    assert notifications.received() == []


# --- throttling and server errors ---


def test_throttling_that_persists_is_raised_after_botocore_retries(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str
) -> None:
    # GIVEN SageMaker throttles every attempt
    sagemaker.inject_fault("DescribeTrainingJob", Fault.THROTTLING, times=TEST_MAX_ATTEMPTS)
    # WHEN an issue arrives, THEN botocore retried, then the error is raised (EventBridge retries, DLQ keeps)
    with pytest.raises(ClientError, match="ThrottlingException"):
        stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    assert len(sagemaker.calls_to("DescribeTrainingJob")) == TEST_MAX_ATTEMPTS
    assert sagemaker.calls_to("StopTrainingJob") == []


def test_throttling_that_passes_is_absorbed_by_botocore_retries(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str
) -> None:
    sagemaker.inject_fault("StopTrainingJob", Fault.THROTTLING, times=TEST_MAX_ATTEMPTS - 1)
    assert stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))["action"] == "stop"
    assert [call.status for call in sagemaker.calls_to("StopTrainingJob")] == [400, 200]


@pytest.mark.parametrize(
    ("operation", "fault"),
    [("StopTrainingJob", Fault.INTERNAL_ERROR), ("ListTags", Fault.SERVICE_UNAVAILABLE)],
)
def test_server_errors_are_raised_and_a_retry_of_the_event_then_succeeds(
    operation: str,
    fault: Fault,
    stop_lambda: StopLambda,
    sagemaker: FakeSageMaker,
    tagged_job: str,
    notifications: Notifications,
) -> None:
    # GIVEN a 5xx on every attempt of one call
    sagemaker.inject_fault(operation, fault, times=TEST_MAX_ATTEMPTS)
    event = load(fixtures.SAGEMAKER_ISSUES_FOUND)
    # WHEN the event arrives, THEN the error is raised and nothing was stopped, tagged or notified
    with pytest.raises(ClientError, match=fault.value[1]):
        stop_lambda.invoke(event)
    assert len(sagemaker.calls_to(operation)) == TEST_MAX_ATTEMPTS
    assert sagemaker.job(JOB_NAME).status == "InProgress"
    assert not set(stop_tags_on(sagemaker)) & (STOP_TAG_KEYS | {"autostop:audit"})
    assert notifications.received() == []
    # AND EventBridge's retry of the same event stops the job
    assert stop_lambda.invoke(event)["action"] == "stop"


def test_a_marker_failure_before_the_stop_stops_nothing_and_the_retry_stops(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str, notifications: Notifications
) -> None:
    # GIVEN AddTags fails on every attempt of the first call (the marker written before the stop)
    sagemaker.inject_fault("AddTags", Fault.INTERNAL_ERROR, times=TEST_MAX_ATTEMPTS)
    event = load(fixtures.SAGEMAKER_ISSUES_FOUND)
    # WHEN the event arrives, THEN the failure is raised and the job still runs, untouched and unnotified
    with pytest.raises(ClientError, match="InternalFailure"):
        stop_lambda.invoke(event)
    assert sagemaker.calls_to("StopTrainingJob") == []
    assert sagemaker.job(JOB_NAME).status == "InProgress"
    assert notifications.received() == []
    # AND the retried event stops, tags and notifies it once
    assert stop_lambda.invoke(event)["action"] == "stop"
    assert set(stop_tags_on(sagemaker)) == STOP_TAG_KEYS | TRAIL_KEYS
    assert len(notifications.received()) == 1


@pytest.mark.parametrize("failing", ["AddTags", "Publish"])
def test_a_retry_completes_the_audit_trail_cut_short_after_the_stop_once(
    failing: str,
    stop_lambda: StopLambda,
    sagemaker: FakeSageMaker,
    tagged_job: str,
    notifications: Notifications,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the stop succeeds, then AddTags of the stop tags fails (SageMaker fake, after the marker call
    # went through) or the notification fails (a topic that does not exist on moto's SNS)
    if failing == "AddTags":

        def fail_the_following_calls(params: dict[str, Any]) -> None:
            sagemaker.inject_fault("AddTags", Fault.INTERNAL_ERROR, times=TEST_MAX_ATTEMPTS)

        sagemaker.inject_action("AddTags", fail_the_following_calls)
    else:
        monkeypatch.setenv("AUTOSTOP_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:no-such-topic")
    event = fixtures.signed(load(fixtures.TRAINING_ISSUES_FOUND), at=now())
    # WHEN the event arrives, THEN the job is stopped and counted, and the failure is raised
    with pytest.raises(ClientError):
        stop_lambda.invoke(event)
    assert sagemaker.job(JOB_NAME).status == "Stopping"
    assert stop_lambda.metric_values("JobsStopped", SERVICE) == [1]
    assert notifications.received() == []
    assert "autostop:audit" not in sagemaker.job(JOB_NAME).tags
    # AND EventBridge's retry of the event (the fault gone) writes the stop tags and the notification
    monkeypatch.setenv("AUTOSTOP_TOPIC_ARN", notifications.topic_arn)
    retried = stop_lambda.invoke(event)
    assert (retried["action"], retried["reason"], retried["audit_completed"]) == (
        "skip",
        "job_not_in_progress",
        True,
    )
    tags = stop_tags_on(sagemaker)
    assert set(tags) == STOP_TAG_KEYS | TRAIL_KEYS
    assert (tags["autostop:stopped-by-rule"], tags["autostop:stop-source"], tags["autostop:audit"]) == (
        "LossNotDecreasing",
        "autostop.training",
        "notified",
    )
    (notification,) = notifications.received()
    assert notification["Subject"] == f"autostop stopped {JOB_NAME}: rule LossNotDecreasing found issues"
    assert "Step:          40" in notification["Message"]
    # AND a further retry finds the trail closed: nothing is sent or stopped again
    again = stop_lambda.invoke(event)
    assert (again["action"], again.get("audit_completed")) == ("skip", None)
    assert notifications.received() == []
    assert len(sagemaker.calls_to("StopTrainingJob")) == 1


def test_a_job_stopped_by_someone_else_gets_no_audit_trail(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, notifications: Notifications
) -> None:
    # GIVEN a job a person stopped (no autostop marker) and a retried issue event for it
    sagemaker.add_job(JOB_NAME, status="Stopped", tags=dict(OPT_IN_TAGS), request=SIGNED_JOB_REQUEST)
    result = stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    # THEN nothing claims autostop stopped it
    assert (result["action"], result["reason"], result.get("audit_completed")) == (
        "skip",
        "job_not_in_progress",
        None,
    )
    assert stop_tags_on(sagemaker) == {}
    assert notifications.received() == []


def test_notification_failure_after_the_stop_is_raised(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a topic that does not exist
    monkeypatch.setenv("AUTOSTOP_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:no-such-topic")
    # WHEN the job is stopped, THEN it stays stopped and tagged, the trail stays open, the failure is raised
    with pytest.raises(ClientError):
        stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    assert sagemaker.job(JOB_NAME).status == "Stopping"
    assert set(stop_tags_on(sagemaker)) == STOP_TAG_KEYS | {"autostop:stop-requested-at"}


def test_without_a_topic_the_stop_happens_and_the_missing_notification_is_logged(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOSTOP_TOPIC_ARN", "")
    assert stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))["action"] == "stop"
    assert any("notification not sent" in line["message"] for line in stop_lambda.log_lines())


# --- finished jobs: per-job alarm clean-up ---


def put_alarm(cloudwatch: Any, name: str, job_name: str) -> None:
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="/aws/sagemaker/TrainingJobs",
        MetricName=f"rule:{name.rsplit('/', 1)[-1]}",
        Dimensions=[{"Name": "Host", "Value": f"{job_name}/algo-1"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def alarm_names(cloudwatch: Any) -> set[str]:
    pages = cloudwatch.get_paginator("describe_alarms").paginate()
    return {alarm["AlarmName"] for page in pages for alarm in page["MetricAlarms"]}


@pytest.mark.parametrize("status", ["Completed", "Stopped", "Failed"])
def test_a_finished_job_loses_exactly_its_own_alarms(
    status: str, stop_lambda: StopLambda, sagemaker: FakeSageMaker
) -> None:
    # GIVEN alarms of job-1, and of jobs whose names or alarm names merely start the same way
    cloudwatch = boto3.client("cloudwatch")
    own = {"autostop-job-1/LossNotDecreasing", "autostop-job-1/VanishingGradient"}
    others = {
        "autostop-job-10/LossNotDecreasing",
        "autostop-job-1-b/LossNotDecreasing",
        "autostop-job-2/LossNotDecreasing",
        "other-job-1/LossNotDecreasing",
        "autostop-job-1",
    }
    for name in own | others:
        put_alarm(cloudwatch, name, "job-1")
    # WHEN the SageMaker event says job-1 finished
    event = changed(
        for_job(load(fixtures.SAGEMAKER_STOPPED), "job-1"), ("detail", "TrainingJobStatus"), status
    )
    result = stop_lambda.invoke(event)
    # THEN exactly autostop-job-1/... are deleted, without any SageMaker call
    assert result["alarms_deleted"] == sorted(own)
    assert (result["action"], result["reason"]) == ("skip", "job_not_in_progress")
    assert alarm_names(cloudwatch) == others
    assert sagemaker.calls == []


def test_alarm_clean_up_deletes_more_than_one_batch(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker
) -> None:
    # GIVEN more alarms for job-1 than DeleteAlarms takes at once (100), and one of job-10
    cloudwatch = boto3.client("cloudwatch")
    for index in range(105):
        put_alarm(cloudwatch, f"autostop-job-1/Rule{index:03d}", "job-1")
    put_alarm(cloudwatch, "autostop-job-10/Rule000", "job-10")
    # WHEN job-1 completes
    result = stop_lambda.invoke(for_job(load(fixtures.SAGEMAKER_COMPLETED), "job-1"))
    # THEN all 105 are gone, job-10's stays
    assert len(result["alarms_deleted"]) == 105
    assert alarm_names(cloudwatch) == {"autostop-job-10/Rule000"}


def test_a_job_still_stopping_keeps_its_alarms(stop_lambda: StopLambda, sagemaker: FakeSageMaker) -> None:
    cloudwatch = boto3.client("cloudwatch")
    put_alarm(cloudwatch, "autostop-job-1/LossNotDecreasing", "job-1")
    event = changed(
        for_job(load(fixtures.SAGEMAKER_STOPPED), "job-1"), ("detail", "TrainingJobStatus"), "Stopping"
    )
    result = stop_lambda.invoke(event)
    assert "alarms_deleted" not in result
    assert alarm_names(cloudwatch) == {"autostop-job-1/LossNotDecreasing"}


# --- events without anything to act on ---


@pytest.mark.parametrize(
    ("name", "reason"),
    [(fixtures.SAGEMAKER_IN_PROGRESS, "no_issues_found"), (fixtures.ALARM_OK, "alarm_not_in_alarm")],
)
def test_events_without_an_issue_need_no_aws_call(
    name: str, reason: str, stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str
) -> None:
    result = stop_lambda.invoke(load(name))
    assert (result["action"], result["reason"]) == ("skip", reason)
    assert sagemaker.calls == []
    assert skipped_reasons(stop_lambda, reason) == [1]
    assert stop_lambda.metric_values("IssuesFound", SERVICE) == []


HUGE = "x" * 1_000_000


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (None, "malformed_event"),
        ([load(fixtures.SAGEMAKER_ISSUES_FOUND)], "malformed_event"),
        ("aws.sagemaker", "malformed_event"),
        ({"source": "aws.sagemaker"}, "malformed_event"),
        (
            changed(load(fixtures.SAGEMAKER_ISSUES_FOUND), ("detail", "TrainingJobName"), HUGE),
            "malformed_event",
        ),
        (changed(load(fixtures.SAGEMAKER_ISSUES_FOUND), ("source",), HUGE), "malformed_event"),
        (
            changed(load(fixtures.SAGEMAKER_ISSUES_FOUND), ("detail", "DebugRuleEvaluationStatuses", 0), 1),
            "malformed_event",
        ),
        (changed(load(fixtures.ALARM_HOST), ("detail", "configuration"), []), "malformed_event"),
        (changed(load(fixtures.SAGEMAKER_ISSUES_FOUND), ("source",), "aws.s3"), "foreign_event"),
        (
            changed(load(fixtures.ALARM_HOST), ("detail", "alarmName"), "billing/LossNotDecreasing"),
            "foreign_event",
        ),
    ],
    ids=[
        "null",
        "list",
        "string",
        "no detail-type",
        "huge job name",
        "huge source",
        "status entry not an object",
        "alarm configuration not an object",
        "other source",
        "alarm of someone else",
    ],
)
def test_malformed_and_foreign_events_are_a_logged_skip_never_a_call(
    event: object, reason: str, stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str
) -> None:
    # GIVEN an event that is malformed or not ours, about an opted-in running job where one is named
    # WHEN it arrives
    result = stop_lambda.invoke(event)
    # THEN a skip with the reason, no exception, no AWS call, and one bounded warning line
    assert (result["action"], result["reason"]) == ("skip", reason)
    assert sagemaker.calls == []
    (line,) = decision_lines(stop_lambda)
    assert (line["level"], line["message"], line["reason"]) == ("WARNING", "event ignored", reason)
    assert len(str(line)) < 2000
    assert skipped_reasons(stop_lambda, reason) == [1]


def test_an_unexpected_interpretation_failure_is_still_a_skip(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No known input makes ``interpret_event`` raise (see the property tests), so the failure is injected
    with monkeypatch: the guard must turn it into a logged skip, not a retry loop."""

    def failing_interpretation(event: object, config: decision.Config) -> decision.EventFacts:
        raise RuntimeError("unforeseen")

    monkeypatch.setattr(decision, "interpret_event", failing_interpretation)
    result = stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    assert (result["action"], result["reason"]) == ("skip", "malformed_event")
    assert sagemaker.calls == []
    assert any(
        line["level"] == "ERROR" and "unforeseen" in line.get("exception", "")
        for line in stop_lambda.log_lines()
    )


# Powertools warns that the failed invocation published no metric: true, and expected here.
@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
def test_invalid_settings_fail_loudly(stop_lambda: StopLambda, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a deployment with a bad setting
    monkeypatch.setenv("AUTOSTOP_DRY_RUN", "perhaps")
    # WHEN any event arrives, THEN the invocation fails (Errors alarm; the event waits in the DLQ)
    with pytest.raises(decision.ConfigError, match="AUTOSTOP_DRY_RUN"):
        stop_lambda.invoke(load(fixtures.SAGEMAKER_ISSUES_FOUND))
    assert any(line["level"] == "ERROR" for line in stop_lambda.log_lines())
