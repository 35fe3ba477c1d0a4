"""Cross-job rung reports through the real handler: real botocore over HTTP to moto's DynamoDB (the sweep
table), SNS and SQS, and to the SageMaker fake (moto has no StopTrainingJob). The table's scan, the fake's
call log and the notifications read back through SQS are the proof of what was recorded, stopped and sent.

Three jobs of one sweep report at rung 300 (ASHA, reduction factor 3, min_reports 3): the first two are
judged on too few reports and go on; the third, worst of three, is worse than the cutoff of the best third of
the two others and is stopped through the same path as a rule stop, under the rule name CrossJob.
"""

from __future__ import annotations

import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdas.stop_training_job import cross_job, decision, rung_store, sweep_settings
from tests.lambdas.stop_training_job import event_fixtures as fixtures
from tests.lambdas.stop_training_job.conftest import OPT_IN_TAGS, TEST_MAX_ATTEMPTS, Notifications, StopLambda
from tests.support.sagemaker_fake import FakeSageMaker, Fault
from tests.support.sweep_table import create_sweep_table

SERVICE = {"service": "stop-training-job"}
TABLE = "autostop-sweep-state"
SWEEP = "sweep-lr"
JOBS = ("sweep-lr-0001", "sweep-lr-0002", "sweep-lr-0003")
SETTINGS = fixtures.RUNG_REPORT_SETTINGS

# The Lambda's own judgement (cross_job.judge), in the stop's detail: 0.9 against the cutoff of the best third
# of 0.1 and 0.2, 0.1 + (0.2 - 0.1) / 3 (a loss: lower is better).
STOP_DETAIL = "asha at rung 300: objective 0.9 is worse than 0.133333, the cutoff of the best 1/3 of 2 others"


def key_of(job_name: str) -> str:
    return f"signing-key-of-{job_name}-for-these-tests"


def now() -> datetime.datetime:
    """The Lambda checks a signed report's time against its own clock: test reports are signed now."""
    return datetime.datetime.now(datetime.UTC)


def report(job_name: str, objective: str, **changes: Any) -> dict[str, Any]:
    """The documented rung report from ``job_name`` at rung 300, signed with that job's key, now."""
    return fixtures.rung_report(
        job_name=job_name, objective=objective, **{"key": key_of(job_name), "at": now(), **changes}
    )


def cross_job_request(job_name: str, settings: cross_job.CrossJobSettings = SETTINGS) -> dict[str, Any]:
    """The hyperparameters the SageMaker launcher gives a job of a sweep with a cross_job section."""
    comparison = sweep_settings.SweepComparison(sweep=SWEEP, metric="validation:loss", settings=settings)
    return {
        "HyperParameters": {
            "learning_rate": "0.01",
            "autostop_signing_key": key_of(job_name),
            "autostop_cross_job": sweep_settings.encode(comparison),
        }
    }


@pytest.fixture
def dynamodb(notifications: Notifications) -> Any:
    """A DynamoDB client on the moto server (``notifications`` already pointed botocore at it)."""
    return boto3.client("dynamodb")


@pytest.fixture
def sweep_table(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The sweep-state table as infra/sweep_state.py makes it, and the variable naming it."""
    create_sweep_table(dynamodb, TABLE)
    monkeypatch.setenv("AUTOSTOP_SWEEP_TABLE", TABLE)
    return TABLE


@pytest.fixture
def sweep_jobs(sagemaker: FakeSageMaker) -> tuple[str, ...]:
    for job_name in JOBS:
        sagemaker.add_job(job_name, tags=dict(OPT_IN_TAGS), request=cross_job_request(job_name))
    return JOBS


def recorded(dynamodb: Any) -> dict[str, str]:
    """Every item of the table: ``<sort key>`` -> objective text (a scan: the test reads it all)."""
    items = dynamodb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
    return {item["rung_job"]["S"]: item["objective"]["S"] for item in items if item["sweep"]["S"] == SWEEP}


def rung_item(job_name: str, rung: int = 300) -> str:
    return rung_store.sort_key(rung, job_name)


def stop_calls(sagemaker: FakeSageMaker) -> list[str]:
    return [call.params["TrainingJobName"] for call in sagemaker.calls_to("StopTrainingJob")]


# --- the stop at a rung ---


@pytest.mark.usefixtures("sweep_table", "sweep_jobs")
def test_the_worst_of_three_at_a_rung_is_stopped_tagged_and_notified(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, dynamodb: Any, notifications: Notifications
) -> None:
    # GIVEN three jobs of one sweep reaching rung 300, the best first
    first = stop_lambda.invoke(report(JOBS[0], "0.1"))
    second = stop_lambda.invoke(report(JOBS[1], "0.2"))
    # THEN the first two are judged on too few reports and go on, each recorded
    for result, reported in ((first, 1), (second, 2)):
        assert (result["action"], result["reason"], result["rule"]) == (
            "skip",
            "cross_job_continue",
            "CrossJob",
        )
        assert (result["sweep"], result["rung"], result["reported"]) == (SWEEP, 300, reported)
    assert stop_calls(sagemaker) == []
    # WHEN the worst of the three reports
    third = stop_lambda.invoke(report(JOBS[2], "0.9"))
    # THEN it is stopped through the rule stop path: marker, stop, stop tags, notification, closing marker
    assert third == {
        "action": "stop",
        "reason": "worse_than_peers",
        "job": JOBS[2],
        "rule": "CrossJob",
        "step": 300,
        "source": "autostop.training",
        "detail": STOP_DETAIL,
        "sweep": SWEEP,
        "rung": 300,
        "reported": 3,
    }
    assert stop_calls(sagemaker) == [JOBS[2]]
    assert sagemaker.job(JOBS[2]).status == "Stopping"
    assert [sagemaker.job(job).status for job in JOBS[:2]] == ["InProgress", "InProgress"]
    tags = sagemaker.job(JOBS[2]).tags
    assert (tags["autostop:stopped-by-rule"], tags["autostop:stop-source"], tags["autostop:audit"]) == (
        "CrossJob",
        "autostop.training",
        "notified",
    )
    (notification,) = notifications.received()
    assert (
        notification["Subject"] == f"autostop stopped {JOBS[2]}: CrossJob: worse than its sweep's other jobs"
    )
    body = notification["Message"]
    assert "Rule:          CrossJob (cross-job rule)" in body
    assert "Step:          300" in body
    assert f"StatusDetails: {STOP_DETAIL}" in body
    # AND the table holds the three objectives at rung 300, as the jobs signed them
    assert recorded(dynamodb) == {
        rung_item(JOBS[0]): "0.1",
        rung_item(JOBS[1]): "0.2",
        rung_item(JOBS[2]): "0.9",
    }
    # AND one describe per report, never more (the signing key and the settings come from the same one)
    assert len(sagemaker.calls_to("DescribeTrainingJob")) == 3
    assert stop_lambda.metric_values("JobsStopped", SERVICE) == [1]
    assert stop_lambda.metric_values("StopSkipped", {**SERVICE, "reason": "cross_job_continue"}) == [1, 1]


@pytest.mark.usefixtures("sweep_table", "sweep_jobs")
def test_a_duplicate_report_is_counted_once_and_a_retry_stops_nothing_twice(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, dynamodb: Any, notifications: Notifications
) -> None:
    # GIVEN the three reports, the worst job stopped
    for job_name, objective in zip(JOBS, ("0.1", "0.2", "0.9"), strict=True):
        stop_lambda.invoke(report(job_name, objective))
    notifications.received()
    # WHEN EventBridge delivers the first job's report again, and the stopped job's report again
    again = stop_lambda.invoke(report(JOBS[0], "0.1"))
    retried = stop_lambda.invoke(report(JOBS[2], "0.9"))
    # THEN the first is still judged against three reports, not four
    assert (again["action"], again["reported"]) == ("skip", 3)
    # AND the stopped job is not stopped or notified again (it is Stopping; its trail is closed)
    assert (retried["action"], retried["reason"], retried.get("audit_completed")) == (
        "skip",
        "job_not_in_progress",
        None,
    )
    assert stop_calls(sagemaker) == [JOBS[2]]
    assert notifications.received() == []
    assert len(recorded(dynamodb)) == 3


@pytest.mark.usefixtures("sweep_table", "sweep_jobs")
def test_a_second_report_of_a_job_at_a_rung_never_replaces_its_first(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, dynamodb: Any
) -> None:
    # GIVEN a job that reported 0.9 at rung 300, then (resumed from a checkpoint) 0.05 at the same rung
    stop_lambda.invoke(report(JOBS[2], "0.9"))
    stop_lambda.invoke(report(JOBS[2], "0.05", step=350))
    # THEN the first report stands (DynamoDB's conditional put; the rung store's contract)
    assert recorded(dynamodb) == {rung_item(JOBS[2]): "0.9"}


@pytest.mark.usefixtures("sweep_table", "sweep_jobs")
def test_a_job_first_at_a_rung_is_judged_again_at_its_next_report_once_the_rung_has_filled(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, dynamodb: Any
) -> None:
    # GIVEN the worst job first at rung 300 (alone: too few reports, it goes on), then the two better ones
    first = stop_lambda.invoke(report(JOBS[2], "0.9"))
    assert (first["action"], first["reason"], first["reported"]) == ("skip", "cross_job_continue", 1)
    for job_name, objective in ((JOBS[0], "0.1"), (JOBS[1], "0.2")):
        stop_lambda.invoke(report(job_name, objective))
    assert stop_calls(sagemaker) == []
    # WHEN its next validation reports rung 300 again (the container's rejudge), with a better loss by then
    again = stop_lambda.invoke(report(JOBS[2], "0.3", step=350))
    # THEN it is judged on its own first report there (0.9), against the rung as it stands now, and stopped
    assert (again["action"], again["reason"], again["step"], again["reported"]) == (
        "stop",
        "worse_than_peers",
        350,
        3,
    )
    assert again["detail"] == STOP_DETAIL
    assert stop_calls(sagemaker) == [JOBS[2]]
    assert recorded(dynamodb)[rung_item(JOBS[2])] == "0.9"


# --- reports that must never stop a job nor write the table ---


def _unsigned() -> dict[str, Any]:
    return fixtures.without(report(JOBS[2], "0.9"), ("detail", "Provenance"))


def _forged() -> dict[str, Any]:
    return report(JOBS[2], "0.9", key="a-key-someone-else-made-up-0123456789")


def _altered() -> dict[str, Any]:
    return fixtures.changed(report(JOBS[2], "0.001"), ("detail", "Objective"), "0.9")


def _malformed() -> dict[str, Any]:
    return fixtures.changed(report(JOBS[2], "0.9"), ("detail", "Rung"), "300")


def _not_a_rung() -> dict[str, Any]:
    return report(JOBS[2], "0.9", rung=200, step=200)


@pytest.mark.parametrize(
    ("make_event", "reason"),
    [
        (_unsigned, "unverified_event"),
        (_forged, "unverified_event"),
        (_altered, "unverified_event"),
        (_malformed, "malformed_event"),
        (_not_a_rung, "malformed_event"),
    ],
    ids=["unsigned", "forged", "altered", "malformed", "not-a-rung"],
)
@pytest.mark.usefixtures("sweep_table", "sweep_jobs")
def test_an_untrusted_report_never_stops_a_job_and_never_writes_the_table(
    stop_lambda: StopLambda,
    sagemaker: FakeSageMaker,
    dynamodb: Any,
    notifications: Notifications,
    make_event: Any,
    reason: str,
) -> None:
    # GIVEN two genuine reports already recorded: a third report, if counted, would stop its job
    stop_lambda.invoke(report(JOBS[0], "0.1"))
    stop_lambda.invoke(report(JOBS[1], "0.2"))
    before = recorded(dynamodb)
    # WHEN an untrusted report about the third job arrives
    result = stop_lambda.invoke(make_event())
    # THEN it is a logged skip: nothing written, stopped, tagged or notified
    assert (result["action"], result["reason"]) == ("skip", reason)
    assert recorded(dynamodb) == before
    assert stop_calls(sagemaker) == []
    assert sagemaker.calls_to("AddTags") == []
    assert notifications.received() == []


@pytest.mark.usefixtures("sweep_table")
def test_a_report_of_a_job_launched_without_the_comparison_writes_nothing(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, dynamodb: Any
) -> None:
    # GIVEN a job with its signing key but no autostop_cross_job hyperparameter
    sagemaker.add_job(
        JOBS[0],
        tags=dict(OPT_IN_TAGS),
        request={"HyperParameters": {"autostop_signing_key": key_of(JOBS[0])}},
    )
    result = stop_lambda.invoke(report(JOBS[0], "0.1"))
    assert (result["action"], result["reason"]) == ("skip", "cross_job_not_configured")
    assert recorded(dynamodb) == {}


@pytest.mark.usefixtures("sweep_table")
def test_a_report_of_a_job_that_is_not_opted_in_writes_nothing(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, dynamodb: Any
) -> None:
    sagemaker.add_job(JOBS[0], tags={"project": "other"}, request=cross_job_request(JOBS[0]))
    result = stop_lambda.invoke(report(JOBS[0], "0.1"))
    assert (result["action"], result["reason"]) == ("skip", "out_of_scope_tag")
    assert recorded(dynamodb) == {}


# --- dry run ---


@pytest.mark.parametrize("whose", ["deployment", "sweep"])
@pytest.mark.usefixtures("sweep_table")
def test_a_dry_run_records_and_notifies_but_stops_nothing(
    whose: str,
    stop_lambda: StopLambda,
    sagemaker: FakeSageMaker,
    dynamodb: Any,
    notifications: Notifications,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the deployment's dry run (AUTOSTOP_DRY_RUN) or the sweep's (cross_job.dry_run)
    settings = SETTINGS
    if whose == "deployment":
        monkeypatch.setenv("AUTOSTOP_DRY_RUN", "true")
    else:
        settings = cross_job.CrossJobSettings(**{**vars(SETTINGS), "dry_run": True})
    for job_name in JOBS:
        sagemaker.add_job(job_name, tags=dict(OPT_IN_TAGS), request=cross_job_request(job_name, settings))
    # WHEN the three jobs report, the worst last
    results = [
        stop_lambda.invoke(report(job_name, objective))
        for job_name, objective in zip(JOBS, ("0.1", "0.2", "0.9"), strict=True)
    ]
    # THEN the worst would be stopped: said, notified as a dry run, nothing stopped or tagged
    assert (results[2]["action"], results[2]["reason"]) == ("dry_run", "dry_run")
    assert f"dry run (the {whose}'s)" in results[2]["detail"]
    assert stop_calls(sagemaker) == []
    assert sagemaker.calls_to("AddTags") == []
    (notification,) = notifications.received()
    assert (
        notification["Subject"]
        == f"[DRY RUN] autostop would stop {JOBS[2]}: CrossJob: worse than its sweep's other jobs"
    )
    # AND the objectives are recorded all the same: the comparison of the other jobs goes on
    assert len(recorded(dynamodb)) == 3


# --- failures: loud, retried, nothing lost ---


# A failed invocation publishes no metric (Powertools warns so); the error is what is asserted.
@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
@pytest.mark.usefixtures("sweep_jobs")
def test_without_the_table_setting_a_report_fails_loudly_and_writes_nothing(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a deployment whose stop function was not told the table (AUTOSTOP_SWEEP_TABLE unset)
    monkeypatch.delenv("AUTOSTOP_SWEEP_TABLE", raising=False)
    # WHEN a genuine report arrives THEN the invocation fails (Errors alarm; retried, then the DLQ keeps it)
    with pytest.raises(decision.ConfigError, match="AUTOSTOP_SWEEP_TABLE is not set"):
        stop_lambda.invoke(report(JOBS[0], "0.1"))
    assert stop_calls(sagemaker) == []


# A failed invocation publishes no metric (Powertools warns so); the error is what is asserted.
@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
@pytest.mark.usefixtures("sweep_jobs")
def test_a_missing_table_is_an_error_the_retry_can_recover_from(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a table name that does not exist (yet): DynamoDB answers ResourceNotFoundException
    monkeypatch.setenv("AUTOSTOP_SWEEP_TABLE", "no-such-table")
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        stop_lambda.invoke(report(JOBS[0], "0.1"))
    assert stop_calls(sagemaker) == []


@pytest.mark.usefixtures("sweep_table", "sweep_jobs")
def test_a_retry_completes_the_trail_of_a_cross_job_stop_cut_short(
    stop_lambda: StopLambda, sagemaker: FakeSageMaker, notifications: Notifications
) -> None:
    # GIVEN two reports recorded, and AddTags failing right after the stop marker went through
    stop_lambda.invoke(report(JOBS[0], "0.1"))
    stop_lambda.invoke(report(JOBS[1], "0.2"))

    def fail_the_following_calls(params: dict[str, Any]) -> None:
        sagemaker.inject_fault("AddTags", Fault.INTERNAL_ERROR, times=TEST_MAX_ATTEMPTS)

    sagemaker.inject_action("AddTags", fail_the_following_calls)
    event = report(JOBS[2], "0.9")
    # WHEN the worst job's report arrives THEN it is stopped, and the failure is raised
    with pytest.raises(ClientError):
        stop_lambda.invoke(event)
    assert sagemaker.job(JOBS[2]).status == "Stopping"
    # AND EventBridge's retry writes the stop tags and the notification, as for a rule stop
    retried = stop_lambda.invoke(event)
    assert (retried["action"], retried["reason"], retried["audit_completed"]) == (
        "skip",
        "job_not_in_progress",
        True,
    )
    tags = sagemaker.job(JOBS[2]).tags
    assert (tags["autostop:stopped-by-rule"], tags["autostop:audit"]) == ("CrossJob", "notified")
    (notification,) = notifications.received()
    assert "CrossJob" in notification["Subject"]
    assert stop_calls(sagemaker) == [JOBS[2]]
