"""What CreateTrainingJob's answers mean for a claimed job, and which stored requests are never sent.

SageMaker's CreateTrainingJob errors (SageMaker API reference, CreateTrainingJob, Errors): ResourceInUse
(the name is taken), ResourceLimitExceeded (a quota), ResourceNotFound; plus the common ValidationException,
throttling and 5xx of every AWS API.
"""

from __future__ import annotations

import pytest

from lambdas.launch_queued_jobs import outcomes
from tests.lambdas.launch_queued_jobs import sweeps


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("ResourceInUse", outcomes.ALREADY_EXISTS),
        ("ValidationException", outcomes.REFUSED),
        ("ResourceNotFound", outcomes.REFUSED),
        ("ResourceLimitExceeded", outcomes.RETRY),
        ("ThrottlingException", outcomes.RETRY),
        ("InternalFailure", outcomes.RETRY),
        ("AccessDeniedException", outcomes.RETRY),
        ("", outcomes.RETRY),  # not an AWS answer at all: a dropped connection
    ],
)
def test_each_answer_of_create_training_job_has_one_meaning(code: str, outcome: str) -> None:
    assert outcomes.create_outcome(code) == outcome


def test_a_stored_request_is_sent_only_for_its_own_job_inside_the_prefix() -> None:
    request = sweeps.request("vision-lr-001")
    assert outcomes.request_problem(request, job_name="vision-lr-001", job_prefix="VISION-") is None
    assert "names the job 'vision-lr-001'" in str(
        outcomes.request_problem(request, job_name="vision-lr-002", job_prefix="")
    )
    assert "outside the deployed job prefix" in str(
        outcomes.request_problem(request, job_name="vision-lr-001", job_prefix="team-")
    )


def test_alarms_are_put_only_under_the_jobs_own_alarm_names() -> None:
    assert outcomes.alarm_in_scope(
        sweeps.alarm("vision-lr-001"), alarm_prefix="autostop-", job_name="vision-lr-001"
    )
    # job 1's alarm prefix is not job 10's
    assert not outcomes.alarm_in_scope(
        sweeps.alarm("vision-lr-0010"), alarm_prefix="autostop-", job_name="vision-lr-001"
    )
    assert not outcomes.alarm_in_scope({"AlarmName": 5}, alarm_prefix="autostop-", job_name="vision-lr-001")
    assert not outcomes.alarm_in_scope(
        sweeps.alarm("vision-lr-001"), alarm_prefix="stop-", job_name="vision-lr-001"
    )
