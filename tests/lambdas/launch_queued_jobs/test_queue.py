"""Every state change of a detached sweep is one conditional write, over HTTP to moto's DynamoDB.

DynamoDB behaviours relied on (Amazon DynamoDB Developer Guide): a write with a ConditionExpression that
does not hold changes nothing and answers ConditionalCheckFailedException ("Condition expressions"); a
TransactWriteItems whose condition fails changes nothing and answers TransactionCanceledException with one
CancellationReason per item ("Amazon DynamoDB Transactions"); DELETE of a set member removes it, and the
attribute with its last member ("Update expressions").
"""

from __future__ import annotations

import boto3
import pytest

from lambdas.launch_queued_jobs import items, queue
from tests.lambdas.launch_queued_jobs import sweeps


def test_jobs_are_claimed_in_order_and_never_beyond_the_parallel_limit(table: str) -> None:
    # GIVEN a detached sweep of 3 jobs, 2 at a time
    names = sweeps.queue_sweep(total=3, parallel=2)
    store = sweeps.sweep_queue()
    # WHEN claiming until nothing is claimed
    claimed = [store.claim_next(sweeps.SWEEP) for _ in range(3)]
    # THEN the first two, in order, and then none: both hold a slot and are launching
    assert claimed == [names[0], names[1], None]
    state = sweeps.sweep_state()
    assert (state.running, state.next_index, state.launching) == (2, 3, frozenset(names[:2]))
    assert [sweeps.job_state(name) for name in names] == [items.LAUNCHING, items.LAUNCHING, items.QUEUED]


def test_a_sweep_still_preparing_is_never_claimed_from(table: str) -> None:
    # GIVEN a sweep whose command has not finished writing its jobs
    sweeps.queue_sweep(total=2, parallel=2, opened=False)
    # THEN nothing is claimed
    assert sweeps.sweep_queue().claim_next(sweeps.SWEEP) is None
    assert sweeps.sweep_state().running == 0


def test_an_end_frees_its_slot_once_however_often_it_is_told(table: str) -> None:
    # GIVEN two launched jobs of a 2-at-a-time sweep of 3
    names = sweeps.queue_sweep(total=3, parallel=2)
    store = sweeps.sweep_queue()
    for _ in names[:2]:
        name = store.claim_next(sweeps.SWEEP)
        assert name is not None
        assert store.mark_launched(sweeps.SWEEP, name)
    # WHEN job 1's end is recorded twice
    first = store.mark_ended(sweeps.SWEEP, names[0], "Completed")
    second = store.mark_ended(sweeps.SWEEP, names[0], "Completed")
    # THEN one slot was freed, once; the job keeps the status of the first
    assert (first, second) == (True, False)
    state = sweeps.sweep_state()
    assert (state.running, state.ended) == (1, 1)
    job = store.job(sweeps.SWEEP, names[0])
    assert job is not None
    assert (job.state, job.end_status) == (items.ENDED, "Completed")
    # AND exactly one more job can be claimed
    assert [store.claim_next(sweeps.SWEEP), store.claim_next(sweeps.SWEEP)] == [names[2], None]


def test_a_queued_job_that_was_never_claimed_cannot_end(table: str) -> None:
    # GIVEN a sweep with nothing claimed (an end event of a job that has the name but is not the sweep's)
    names = sweeps.queue_sweep(total=1, parallel=1)
    # THEN its end frees nothing
    assert not sweeps.sweep_queue().mark_ended(sweeps.SWEEP, names[0], "Completed")
    assert (sweeps.sweep_state().running, sweeps.job_state(names[0])) == (0, items.QUEUED)


def test_a_launch_is_recorded_once_and_a_refused_one_frees_its_slot(table: str) -> None:
    names = sweeps.queue_sweep(total=2, parallel=2)
    store = sweeps.sweep_queue()
    store.claim_next(sweeps.SWEEP)
    store.claim_next(sweeps.SWEEP)
    # WHEN job 1 is recorded launched twice, and job 2 refused twice
    assert [store.mark_launched(sweeps.SWEEP, names[0]), store.mark_launched(sweeps.SWEEP, names[0])] == [
        True,
        False,
    ]
    assert [
        store.mark_launch_failed(sweeps.SWEEP, names[1], "ValidationException: bad"),
        store.mark_launch_failed(sweeps.SWEEP, names[1], "again"),
    ] == [True, False]
    # THEN one slot is held (job 1), none is launching, and job 2 keeps its first reason
    state = sweeps.sweep_state()
    assert (state.running, state.launch_failed, state.launching) == (1, 1, frozenset())
    job = store.job(sweeps.SWEEP, names[1])
    assert job is not None
    assert (job.state, job.failure) == (items.LAUNCH_FAILED, "ValidationException: bad")


def test_the_sweep_finishes_once_when_every_job_was_claimed_and_none_holds_a_slot(table: str) -> None:
    names = sweeps.queue_sweep(total=1, parallel=1)
    store = sweeps.sweep_queue()
    assert not store.finish_if_done(sweeps.SWEEP)  # queued
    store.claim_next(sweeps.SWEEP)
    assert not store.finish_if_done(sweeps.SWEEP)  # running
    store.mark_ended(sweeps.SWEEP, names[0], "Stopped")
    assert [store.finish_if_done(sweeps.SWEEP), store.finish_if_done(sweeps.SWEEP)] == [True, False]
    assert sweeps.sweep_state().state == items.FINISHED


def test_a_sweep_of_a_name_taken_is_refused_and_nothing_is_overwritten(table: str) -> None:
    # GIVEN a detached sweep with a job launched
    sweeps.queue_sweep(total=2, parallel=1)
    store = sweeps.sweep_queue()
    store.claim_next(sweeps.SWEEP)
    before = boto3.client("dynamodb").scan(TableName=table)["Items"]
    # WHEN the same name is detached again, and one of its job items written again
    with pytest.raises(queue.SweepExists) as exists:
        store.create_sweep(name=sweeps.SWEEP, parallel=5, total=9)
    with pytest.raises(queue.JobExists):
        store.add_job(
            items.queued_job_item(
                sweep=sweeps.SWEEP, index=1, request=sweeps.request("vision-lr-001"), alarms=[]
            )
        )
    # THEN the error carries the sweep as it is, and the table is unchanged
    assert exists.value.state is not None
    assert (exists.value.state.parallel, exists.value.state.running) == (1, 1)
    assert boto3.client("dynamodb").scan(TableName=table)["Items"] == before


def test_a_job_item_not_queued_at_the_cursor_is_stepped_over(table: str) -> None:
    # GIVEN a hand-edited table: job 1's item says launched although the cursor points at it
    names = sweeps.queue_sweep(total=2, parallel=2)
    boto3.client("dynamodb").update_item(
        TableName=table,
        Key=items.job_key(sweeps.SWEEP, names[0]),
        UpdateExpression="SET job_state = :launched",
        ExpressionAttributeValues={":launched": {"S": items.LAUNCHED}},
    )
    logged: list[object] = []
    store = queue.SweepQueue(boto3.client("dynamodb"), table, now=sweeps.now, log=logged.append)
    # WHEN claiming  THEN job 2 is claimed and job 1 skipped, with a log line
    assert store.claim_next(sweeps.SWEEP) == names[1]
    assert sweeps.sweep_state().running == 1
    assert len(logged) == 1
