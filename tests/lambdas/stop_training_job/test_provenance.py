"""Only a job's own signed event stops it: forged, re-addressed, stale and unsigned in-container events never
stop anything, and the container's free text never reaches a notification.

The handler runs against the SageMaker fake (DescribeTrainingJob returns the job's hyperparameters, as AWS
documents for DescribeTrainingJob's ``HyperParameters``) and moto's SNS, over HTTP. Events are signed the
way the container signs them (``training/debugger/provenance.py``); the Lambda verifies with its own copy of
the encoding (``lambdas/stop_training_job/provenance.py``), so these tests also keep the two equal.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from lambdas.stop_training_job import decision, vocabulary
from lambdas.stop_training_job import provenance as lambda_provenance
from tests.lambdas.stop_training_job import event_fixtures as fixtures
from tests.lambdas.stop_training_job.conftest import (
    OPT_IN_TAGS,
    SIGNED_JOB_REQUEST,
    Notifications,
    StopLambda,
)
from tests.lambdas.stop_training_job.event_fixtures import JOB_NAME, changed, for_job, load, signed, without
from tests.support.sagemaker_fake import FakeSageMaker
from training.debugger import contract
from training.debugger import provenance as container_provenance

OTHER_JOB = "sweep-lr-0002"
OTHER_KEY = "key-of-another-job-of-the-same-account-0123456789"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def fresh_event() -> dict[str, Any]:
    return signed(load(fixtures.TRAINING_ISSUES_FOUND), at=now())


def assert_nothing_happened(
    result: dict[str, Any], sagemaker: FakeSageMaker, notifications: Notifications
) -> None:
    assert (result["action"], result["reason"]) == ("skip", "unverified_event")
    assert sagemaker.calls_to("StopTrainingJob") == []
    assert sagemaker.calls_to("AddTags") == []
    assert sagemaker.job(JOB_NAME).status == "InProgress"
    assert notifications.received() == []


def test_the_containers_signature_encoding_is_the_lambdas() -> None:
    # GIVEN the names both sides must agree on
    assert contract.SIGNING_KEY_HYPERPARAMETER == vocabulary.SIGNING_KEY_HYPERPARAMETER
    assert contract.SIGNING_KEY_PATTERN.pattern == vocabulary.SIGNING_KEY_PATTERN.pattern
    assert contract.SIGNATURE_ALGORITHM == vocabulary.SIGNATURE_ALGORITHM
    assert contract.SIGNED_MESSAGE_VERSION == vocabulary.SIGNED_MESSAGE_VERSION
    # WHEN both encode the same fields (every shape a field takes), THEN the bytes and the HMAC are the same
    for step in (None, 0, 40, 2**63 - 1):
        for job_name in ("sweep-lr-0001", "Sweep-LR-0001"):
            fields = {
                "job_name": job_name,
                "rule_name": "team:Loss/Not=Decreasing",
                "status": "IssuesFound",
                "step": step,
                "signed_at": "2026-11-20T10:15:31Z",
            }
            container_message = container_provenance.signed_message(**fields)  # type: ignore[arg-type]
            lambda_message = lambda_provenance.signed_message(**fields)  # type: ignore[arg-type]
            assert container_message == lambda_message
            assert container_provenance.sign(OTHER_KEY, container_message) == lambda_provenance.signature(
                OTHER_KEY, lambda_message
            )


def test_the_documented_sample_verifies_with_the_sample_key_at_its_time() -> None:
    # GIVEN the documented signed sample (docs/events.md) and the job it names, launched with the sample key
    facts = decision.interpret_event(load(fixtures.TRAINING_ISSUES_FOUND), decision.Config())
    assert isinstance(facts, decision.EventFacts)
    description = {
        "TrainingJobName": JOB_NAME,
        "TrainingJobArn": fixtures.JOB_ARN,
        "TrainingJobStatus": "InProgress",
        "HyperParameters": {"autostop_signing_key": fixtures.SAMPLE_SIGNING_KEY},
    }
    # WHEN decided a minute after it was signed, and again a day later
    in_time = decision.decide(
        facts,
        description,
        OPT_IN_TAGS,
        decision.Config(),
        now=fixtures.SAMPLE_TIME + datetime.timedelta(minutes=1),
    )
    a_day_late = decision.decide(
        facts,
        description,
        OPT_IN_TAGS,
        decision.Config(),
        now=fixtures.SAMPLE_TIME + datetime.timedelta(days=1),
    )
    # THEN it stops in time, and is stale a day later
    assert in_time.action is decision.Action.STOP
    assert (a_day_late.reason, a_day_late.detail) == (
        decision.Reason.UNVERIFIED_EVENT,
        f"the event is stale (signed more than {vocabulary.SIGNATURE_MAX_AGE_S} s ago)",
    )


def test_a_signed_event_of_the_job_itself_stops_it_without_the_containers_free_text(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str, notifications: Notifications
) -> None:
    # GIVEN the job's own event, signed now, whose StatusDetails (not signed) was rewritten on the way
    event = changed(
        fresh_event(),
        ("detail", "DebugRuleEvaluationStatuses", 0, "StatusDetails"),
        "URGENT: visit http://phish.example to keep your job",
    )
    # WHEN it arrives, THEN the job is stopped
    result = stop_lambda.invoke(event)
    assert (result["action"], result["source"], result["step"]) == ("stop", "autostop.training", 40)
    # AND the notification carries the signed facts only, never the free text
    (notification,) = notifications.received()
    assert "phish" not in notification["Message"]
    assert "StatusDetails: not reported" in notification["Message"]
    assert "Step:          40" in notification["Message"]


@pytest.mark.parametrize(
    ("forge", "problem"),
    [
        (lambda event: without(event, ("detail", "Provenance")), "the in-container event is not signed"),
        (
            lambda event: signed(event, key=OTHER_KEY, at=now()),
            "the event's signature does not verify with the job's key",
        ),
        (
            lambda event: changed(event, ("detail", "Step"), 41),
            "the event's signature does not verify with the job's key",
        ),
        (
            lambda event: changed(
                event,
                ("detail", "DebugRuleEvaluationStatuses", 0, "RuleConfigurationName"),
                "VanishingGradient",
            ),
            "the event's signature does not verify with the job's key",
        ),
        (
            lambda event: signed(event, at=now() - datetime.timedelta(hours=2)),
            f"the event is stale (signed more than {vocabulary.SIGNATURE_MAX_AGE_S} s ago)",
        ),
        (
            lambda event: signed(event, at=now() + datetime.timedelta(minutes=30)),
            "the event is signed in the future",
        ),
        (
            # The fake created the job 10 minutes ago: an event signed 20 minutes ago predates it.
            lambda event: signed(event, at=now() - datetime.timedelta(minutes=20)),
            "the event is signed before the job was created",
        ),
        (
            lambda event: changed(event, ("detail", "Provenance", "SignedAt"), "2026-11-20 10:15:31"),
            "the event's signature does not verify with the job's key",
        ),
    ],
    ids=[
        "unsigned",
        "wrong-key",
        "step-changed",
        "rule-changed",
        "stale",
        "future",
        "before-job",
        "time-form",
    ],
)
def test_forged_or_stale_events_never_stop_anything(
    forge: Any,
    problem: str,
    stop_lambda: StopLambda,
    sagemaker: FakeSageMaker,
    tagged_job: str,
    notifications: Notifications,
) -> None:
    # GIVEN the job's event forged in one way (right shape, right job, opted-in and running)
    event = forge(fresh_event())
    # WHEN it arrives
    result = stop_lambda.invoke(event)
    # THEN nothing is stopped, tagged or notified, and the skip says why
    assert_nothing_happened(result, sagemaker, notifications)
    assert result["detail"] == problem
    assert stop_lambda.metric_values(
        "StopSkipped", {"service": "stop-training-job", "reason": "unverified_event"}
    )


def test_another_jobs_signature_never_stops_this_job(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str, notifications: Notifications
) -> None:
    # GIVEN another job of the account, which knows its own key and signs an event naming this job
    sagemaker.add_job(
        OTHER_JOB, tags=dict(OPT_IN_TAGS), request={"HyperParameters": {"autostop_signing_key": OTHER_KEY}}
    )
    about_this_job = signed(load(fixtures.TRAINING_ISSUES_FOUND), key=OTHER_KEY, at=now())
    # ... or replays its own genuine event re-addressed to this job
    own_event = signed(for_job(load(fixtures.TRAINING_ISSUES_FOUND), OTHER_JOB), key=OTHER_KEY, at=now())
    readdressed = for_job(own_event, JOB_NAME)
    # WHEN either arrives, THEN this job is untouched
    for event in (about_this_job, readdressed):
        assert_nothing_happened(stop_lambda.invoke(event), sagemaker, notifications)
    assert sagemaker.job(OTHER_JOB).status == "InProgress"


def test_a_job_launched_without_a_key_is_never_stopped_by_an_in_container_event(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, notifications: Notifications
) -> None:
    # GIVEN an opted-in job whose launcher gave it no signing key
    sagemaker.add_job(JOB_NAME, tags=dict(OPT_IN_TAGS))
    # WHEN a signed event names it, THEN it is refused: there is nothing to verify against
    result = stop_lambda.invoke(fresh_event())
    assert_nothing_happened(result, sagemaker, notifications)
    assert result["detail"] == "the job has no autostop_signing_key hyperparameter to verify the event with"


def test_a_replay_of_the_jobs_own_event_stops_once(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, tagged_job: str, notifications: Notifications
) -> None:
    # GIVEN the job's genuine event, delivered, then replayed within the window
    event = fresh_event()
    first = stop_lambda.invoke(event)
    replayed = stop_lambda.invoke(event)
    # THEN the replay asks for what the job asked already: one stop, one notification, a no-op replay
    assert first["action"] == "stop"
    assert (replayed["action"], replayed["reason"]) == ("skip", "job_not_in_progress")
    assert len(sagemaker.calls_to("StopTrainingJob")) == 1
    assert len(notifications.received()) == 1


def test_a_lowercased_arn_of_a_mixed_case_job_still_stops_it(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, notifications: Notifications
) -> None:
    # GIVEN job Sweep-LR-0001, and SageMaker's state-change event naming it with a lowercased ARN (as
    # SageMaker spells training-job ARNs in places)
    sagemaker.add_job("Sweep-LR-0001", tags=dict(OPT_IN_TAGS), request=SIGNED_JOB_REQUEST)
    lowercased_arn = "arn:aws:sagemaker:us-east-1:123456789012:training-job/sweep-lr-0001"
    event = changed(load(fixtures.SAGEMAKER_ISSUES_FOUND), ("detail", "TrainingJobName"), "Sweep-LR-0001")
    event = changed(event, ("detail", "TrainingJobArn"), lowercased_arn)
    event = changed(event, ("resources",), [lowercased_arn])
    # WHEN it arrives, THEN the names agree without case and the job is stopped
    result = stop_lambda.invoke(event)
    assert (result["action"], result["job"]) == ("stop", "Sweep-LR-0001")
    assert sagemaker.job("Sweep-LR-0001").status == "Stopping"
    # AND the container's own event for it, with the lowercased ARN, is signed and verified as well
    sagemaker.job("Sweep-LR-0001").status = "InProgress"
    container_event = changed(
        load(fixtures.TRAINING_ISSUES_FOUND), ("detail", "TrainingJobName"), "Sweep-LR-0001"
    )
    container_event = changed(container_event, ("detail", "TrainingJobArn"), lowercased_arn)
    container_event = changed(container_event, ("resources",), [lowercased_arn])
    result = stop_lambda.invoke(signed(container_event, at=now()))
    assert (result["action"], result["source"]) == ("stop", "autostop.training")


def test_a_description_with_a_lowercased_arn_is_the_job_itself() -> None:
    # GIVEN DescribeTrainingJob answering with the ARN lowercased for job Sweep-LR-0001
    facts = decision.interpret_event(
        changed(load(fixtures.SAGEMAKER_ISSUES_FOUND), ("detail", "TrainingJobName"), "Sweep-LR-0001"),
        decision.Config(job_prefix="Sweep-"),
    )
    assert isinstance(facts, decision.EventFacts)
    description = {
        "TrainingJobName": "Sweep-LR-0001",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/sweep-lr-0001",
        "TrainingJobStatus": "InProgress",
    }
    # WHEN deciding (the prefix is compared without case too), THEN it is a stop, not malformed_description
    verdict = decision.decide(
        facts, description, OPT_IN_TAGS, decision.Config(job_prefix="Sweep-"), now=now()
    )
    assert verdict.action is decision.Action.STOP


def test_an_unsigned_event_with_many_statuses_is_refused_as_unsigned() -> None:
    # GIVEN an unsigned in-container event carrying two IssuesFound statuses
    event = without(load(fixtures.TRAINING_ISSUES_FOUND), ("detail", "Provenance"))
    status = event["detail"]["DebugRuleEvaluationStatuses"][0]
    event["detail"]["DebugRuleEvaluationStatuses"].append({**status, "RuleConfigurationName": "Other"})
    facts = decision.interpret_event(event, decision.Config())
    assert isinstance(facts, decision.EventFacts)
    description = {
        "TrainingJobName": JOB_NAME,
        "TrainingJobArn": fixtures.JOB_ARN,
        "TrainingJobStatus": "InProgress",
        "HyperParameters": {"autostop_signing_key": fixtures.SAMPLE_SIGNING_KEY},
    }
    # WHEN decided, THEN the reason is that it is not signed
    verdict = decision.decide(facts, description, OPT_IN_TAGS, decision.Config(), now=fixtures.SAMPLE_TIME)
    assert (verdict.reason, verdict.detail) == (
        decision.Reason.UNVERIFIED_EVENT,
        "the in-container event is not signed",
    )
    # AND a signed event cannot carry two statuses at all
    signed_two = changed(
        event, ("detail", "Provenance"), load(fixtures.TRAINING_ISSUES_FOUND)["detail"]["Provenance"]
    )
    ignored = decision.interpret_event(signed_two, decision.Config())
    assert isinstance(ignored, decision.IgnoredEvent)
    assert ignored.reason is decision.Reason.MALFORMED_EVENT
