"""The sweep controller's handler over HTTP: the table on moto, SageMaker on the local fake.

AWS behaviours encoded here, with where AWS documents them: CreateTrainingJob of a name that exists answers
ResourceInUse, of a bad request ValidationException, and a quota ResourceLimitExceeded (SageMaker API
reference, CreateTrainingJob, Errors); EventBridge delivers an event at least once, so the same event may
arrive twice (Amazon EventBridge User Guide, "Event retry policy and using dead-letter queues").
"""

from __future__ import annotations

from types import ModuleType

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdas.launch_queued_jobs import items
from tests.lambdas.launch_queued_jobs import sweeps
from tests.support.sagemaker_fake import FakeSageMaker, Fault


def created(fake: FakeSageMaker) -> list[str]:
    """Names of the jobs SageMaker created (answered 200), in order."""
    return [
        call.params["TrainingJobName"] for call in fake.calls_to("CreateTrainingJob") if call.status == 200
    ]


def launch_first(total: int, parallel: int, **options: bool) -> list[str]:
    """A detached sweep whose command launched its first jobs, as --detach leaves it."""
    names = sweeps.queue_sweep(total=total, parallel=parallel, **options)
    sweeps.sweep_controller().advance(sweeps.SWEEP)
    return names


def end(fake: FakeSageMaker, name: str, status: str = "Completed") -> None:
    fake.job(name).status = status


def test_a_job_end_launches_the_next_queued_job_with_its_stored_request(
    handler: ModuleType, sagemaker: FakeSageMaker
) -> None:
    # GIVEN a sweep of 3, 2 at a time, with its first two jobs running
    names = launch_first(total=3, parallel=2)
    assert created(sagemaker) == names[:2]
    # WHEN job 1 completes and SageMaker says so
    end(sagemaker, names[0])
    outcome = handler.handler(sweeps.end_event(names[0]), None)
    # THEN job 3 is created from exactly the request stored for it (its own signing key included)
    assert created(sagemaker) == names
    assert sagemaker.job(names[2]).request == sweeps.request(names[2])
    assert outcome["action"] == "job_ended"
    assert outcome["slot_freed"] is True
    assert outcome["launched"] == [names[2]]
    assert [sweeps.job_state(name) for name in names] == [items.ENDED, items.LAUNCHED, items.LAUNCHED]
    state = sweeps.sweep_state()
    assert (state.running, state.ended, state.queued, state.state) == (2, 1, 0, items.DETACHED)


def test_a_duplicated_end_event_launches_nothing_more(handler: ModuleType, sagemaker: FakeSageMaker) -> None:
    # GIVEN a sweep of 3, one at a time; job 1 ended and its event was handled
    names = launch_first(total=3, parallel=1)
    end(sagemaker, names[0])
    handler.handler(sweeps.end_event(names[0]), None)
    # WHEN the same event is delivered again
    outcome = handler.handler(sweeps.end_event(names[0]), None)
    # THEN no slot is freed again and no job is created: job 3 waits for job 2
    assert outcome["action"] == "already_ended"
    assert outcome["launched"] == []
    assert created(sagemaker) == names[:2]
    assert sweeps.job_state(names[2]) == items.QUEUED


def test_the_last_end_finishes_the_sweep(handler: ModuleType, sagemaker: FakeSageMaker) -> None:
    names = launch_first(total=2, parallel=2)
    end(sagemaker, names[0], "Stopped")
    assert handler.handler(sweeps.end_event(names[0], "Stopped"), None)["sweep_finished"] is False
    end(sagemaker, names[1], "Failed")
    assert handler.handler(sweeps.end_event(names[1], "Failed"), None)["sweep_finished"] is True
    state = sweeps.sweep_state()
    assert (state.state, state.ended, state.running) == (items.FINISHED, 2, 0)


def test_a_launch_cut_short_after_create_is_recorded_when_sent_again(
    handler: ModuleType, sagemaker: FakeSageMaker
) -> None:
    # GIVEN job 2 claimed and created, but the invocation died before recording it (still launching)
    names = launch_first(total=3, parallel=1)
    store = sweeps.sweep_queue()
    end(sagemaker, names[0])
    assert store.mark_ended(sweeps.SWEEP, names[0], "Completed")
    assert store.claim_next(sweeps.SWEEP) == names[1]
    boto3.client("sagemaker").create_training_job(**sweeps.request(names[1]))
    # WHEN the retried event comes
    outcome = handler.handler(sweeps.end_event(names[0]), None)
    # THEN SageMaker answered ResourceInUse, the job is recorded launched, and nothing else was created
    assert outcome["action"] == "already_ended"
    assert outcome["launched"] == [names[1]]
    answers = [
        (call.params["TrainingJobName"], call.status) for call in sagemaker.calls_to("CreateTrainingJob")
    ]
    assert answers == [(names[0], 200), (names[1], 200), (names[1], 400)]
    assert sweeps.job_state(names[1]) == items.LAUNCHED
    assert sweeps.sweep_state().launching == frozenset()


def test_a_claimed_job_found_already_over_frees_its_slot_for_the_next(
    handler: ModuleType, sagemaker: FakeSageMaker
) -> None:
    # GIVEN job 2 claimed, created by a try that died, and already over: its end event came while it was
    # still queued in the table (so that event freed nothing)
    names = launch_first(total=3, parallel=1)
    store = sweeps.sweep_queue()
    end(sagemaker, names[0])
    store.mark_ended(sweeps.SWEEP, names[0], "Completed")
    store.claim_next(sweeps.SWEEP)
    boto3.client("sagemaker").create_training_job(**sweeps.request(names[1]))
    end(sagemaker, names[1], "Failed")
    # WHEN the next event comes
    handler.handler(sweeps.end_event(names[0]), None)
    # THEN job 2 is recorded ended (Failed) and job 3 launched in its slot
    assert sweeps.job_state(names[1]) == items.ENDED
    assert created(sagemaker) == names
    assert sweeps.sweep_state().running == 1


def test_a_refused_request_fails_that_job_only_and_the_next_takes_its_slot(
    handler: ModuleType, sagemaker: FakeSageMaker
) -> None:
    # GIVEN a sweep of 3, one at a time; SageMaker will refuse the next request
    names = launch_first(total=3, parallel=1)
    sagemaker.inject_fault("CreateTrainingJob", Fault.VALIDATION)
    end(sagemaker, names[0])
    # WHEN job 1 ends
    outcome = handler.handler(sweeps.end_event(names[0]), None)
    # THEN job 2 is recorded not launched, with SageMaker's reason, and job 3 runs in the freed slot
    assert outcome["launch_refused"] == [names[1]]
    assert outcome["launched"] == [names[2]]
    job = sweeps.sweep_queue().job(sweeps.SWEEP, names[1])
    assert job is not None
    assert job.state == items.LAUNCH_FAILED
    assert job.failure.startswith("CreateTrainingJob refused: ValidationException")
    state = sweeps.sweep_state()
    assert (state.running, state.launch_failed) == (1, 1)


@pytest.mark.parametrize(
    ("fault", "answers"),
    # botocore itself retries throttling (standard mode), so an invocation sends it MAX_ATTEMPTS times
    [(Fault.THROTTLING, "max_attempts"), (Fault.RESOURCE_LIMIT, "once"), (Fault.ACCESS_DENIED, "once")],
)
def test_a_launch_that_must_wait_keeps_its_claim_and_the_retried_event_sends_it(
    handler: ModuleType, sagemaker: FakeSageMaker, fault: Fault, answers: str
) -> None:
    # GIVEN a sweep of 2, one at a time; SageMaker answers the next create (all of botocore's attempts at
    # it) with an error waiting may fix
    names = launch_first(total=2, parallel=1)
    times = handler.MAX_ATTEMPTS if answers == "max_attempts" else 1
    sagemaker.inject_fault("CreateTrainingJob", fault, times=times)
    end(sagemaker, names[0])
    # WHEN job 1 ends  THEN the invocation fails (Lambda retries it), job 2 still holds its claimed slot
    with pytest.raises(ClientError):
        handler.handler(sweeps.end_event(names[0]), None)
    assert sweeps.job_state(names[1]) == items.LAUNCHING
    assert sweeps.sweep_state().launching == frozenset({names[1]})
    # AND the retried event creates it, once
    outcome = handler.handler(sweeps.end_event(names[0]), None)
    assert outcome["launched"] == [names[1]]
    assert created(sagemaker) == names
    assert sweeps.job_state(names[1]) == items.LAUNCHED


def test_each_launched_job_gets_its_alarms_and_nothing_outside_the_alarm_prefix(
    handler: ModuleType, sagemaker: FakeSageMaker, table: str
) -> None:
    # GIVEN a sweep whose job 2 also stores an alarm named outside the per-job alarm prefix
    names = launch_first(total=2, parallel=1, with_alarms=True)
    boto3.client("dynamodb").update_item(
        TableName=table,
        Key=items.job_key(sweeps.SWEEP, names[1]),
        UpdateExpression="SET alarms = :alarms",
        ExpressionAttributeValues={
            ":alarms": {
                "S": items.encode([sweeps.alarm(names[1]), {**sweeps.alarm(names[1]), "AlarmName": "x"}])
            }
        },
    )
    end(sagemaker, names[0])
    # WHEN job 1 ends
    handler.handler(sweeps.end_event(names[0]), None)
    # THEN each job got its own per-job alarm (job 1 from the command, job 2 here) and no other alarm
    alarms = boto3.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert sorted(alarm["AlarmName"] for alarm in alarms) == [
        f"autostop-{names[0]}/LossNotDecreasing",
        f"autostop-{names[1]}/LossNotDecreasing",
    ]


def test_a_request_outside_the_job_prefix_is_never_sent(
    handler: ModuleType, sagemaker: FakeSageMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a deployment whose job prefix the sweep's names do not have
    names = launch_first(total=2, parallel=1)
    monkeypatch.setenv(handler.JOB_PREFIX_ENV, "team-")
    end(sagemaker, names[0])
    # WHEN job 1 ends  THEN job 2 is recorded not launched, and never sent
    outcome = handler.handler(sweeps.end_event(names[0]), None)
    assert outcome["launch_refused"] == [names[1]]
    assert created(sagemaker) == names[:1]


def test_a_job_of_a_sweep_that_was_not_detached_is_left_alone(
    handler: ModuleType, sagemaker: FakeSageMaker
) -> None:
    outcome = handler.handler(sweeps.end_event("vision-other-001"), None)
    assert outcome == {"action": "skip", "reason": "not_a_detached_sweep_job", "job": "vision-other-001"}
    assert sagemaker.calls == []


@pytest.mark.parametrize("event", [None, {"source": "aws.sagemaker"}, {"detail": "x"}, "text"])
def test_malformed_and_foreign_events_are_skipped_without_any_aws_call_or_setting(
    event: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN no settings and no AWS at all (a skip must need neither)
    from lambdas.launch_queued_jobs import app

    for name in (app.TABLE_ENV, app.ALARM_PREFIX_ENV, "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    app.reset_clients()
    # WHEN handled  THEN a skip with a reason, and no client was even made
    outcome = app.handler(event, None)
    assert outcome["action"] == "skip"
    assert app._clients == {}


def test_a_sweep_cancelled_by_hand_launches_nothing_more(
    handler: ModuleType, sagemaker: FakeSageMaker, table: str
) -> None:
    # GIVEN a sweep with job 2 claimed but not created, cancelled as docs/sweeps.md says (sweep_state)
    names = launch_first(total=3, parallel=1)
    store = sweeps.sweep_queue()
    end(sagemaker, names[0])
    store.mark_ended(sweeps.SWEEP, names[0], "Completed")
    store.claim_next(sweeps.SWEEP)
    boto3.client("dynamodb").update_item(
        TableName=table,
        Key=items.sweep_key(sweeps.SWEEP),
        UpdateExpression="SET sweep_state = :cancelled",
        ExpressionAttributeValues={":cancelled": {"S": "cancelled"}},
    )
    # WHEN an end event comes  THEN nothing is created, claimed or not
    outcome = handler.handler(sweeps.end_event(names[0]), None)
    assert outcome["launched"] == []
    assert created(sagemaker) == names[:1]
    assert sweeps.job_state(names[2]) == items.QUEUED
