"""No lost and no double launch when job ends race: many invocations at once, each event delivered twice.

Real threads run the real handler at the same moment (a barrier releases them together) against the table
on moto -- served one request at a time, as DynamoDB applies each request atomically (see
tests/support/serialized_moto_server.py) -- and SageMaker on the local fake. The invocations race freely
between their requests, as concurrent Lambda invocations do. The assertions hold for every interleaving:
each job is created exactly once, never more than the parallel limit run at once, and the sweep finishes.
EventBridge may deliver an event more than once (Amazon EventBridge User Guide, "Event retry policy and
using dead-letter queues"), hence every event twice.
"""

from __future__ import annotations

import threading
from collections import Counter
from types import ModuleType
from typing import Any

import pytest

from lambdas.launch_queued_jobs import items
from tests.lambdas.launch_queued_jobs import sweeps
from tests.support.sagemaker_fake import FakeSageMaker

DELIVERIES_PER_EVENT = 2
JOIN_TIMEOUT_SECONDS = 120


def deliver_all_at_once(handler: ModuleType, events: list[dict[str, Any]]) -> list[BaseException]:
    """Run the handler on every event in its own thread, all released together; the errors raised."""
    barrier = threading.Barrier(len(events))
    errors: list[BaseException] = []

    def invoke(event: dict[str, Any]) -> None:
        barrier.wait()
        try:
            handler.handler(event, None)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=invoke, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "an invocation hung"
    return errors


@pytest.mark.parametrize(("total", "parallel"), [(12, 4), (5, 2)])
def test_racing_and_duplicated_job_ends_launch_every_job_exactly_once(
    handler: ModuleType, sagemaker: FakeSageMaker, total: int, parallel: int
) -> None:
    # GIVEN a detached sweep whose command launched its first jobs
    names = sweeps.queue_sweep(total=total, parallel=parallel)
    sweeps.sweep_controller().advance(sweeps.SWEEP)
    # AND the handler's clients made before the race (Lambda runs one invocation per client cache)
    for service in ("dynamodb", "sagemaker", "cloudwatch"):
        handler._client(service)
    most_running = 0
    for _ in range(total):
        running = [job for job in sagemaker.jobs.values() if job.status == "InProgress"]
        if not running:
            break
        most_running = max(most_running, len(running))
        # WHEN every running job ends at once and each end event arrives twice, all together
        for job in running:
            job.status = job.secondary_status = "Completed"
        events = [sweeps.end_event(job.name) for job in running for _ in range(DELIVERIES_PER_EVENT)]
        errors = deliver_all_at_once(handler, events)
        # THEN no invocation failed, and the table counts exactly the jobs SageMaker runs
        assert errors == []
        in_progress = sum(job.status == "InProgress" for job in sagemaker.jobs.values())
        assert sweeps.sweep_state().running == in_progress <= parallel
    # THEN every job was created exactly once (a second create of a name can only be refused)
    creations = Counter(
        call.params["TrainingJobName"]
        for call in sagemaker.calls_to("CreateTrainingJob")
        if call.status == 200
    )
    assert creations == Counter(names)
    assert most_running == parallel
    # AND the sweep knows every job ended, each once, and is finished
    state = sweeps.sweep_state()
    assert (state.state, state.ended, state.running, state.launching) == (
        items.FINISHED,
        total,
        0,
        frozenset(),
    )
    assert {sweeps.job_state(name) for name in names} == {items.ENDED}
