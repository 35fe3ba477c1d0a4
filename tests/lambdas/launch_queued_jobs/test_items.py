"""The table layout: job names, keys beside the rung store's, the stored request, the item size bound."""

from __future__ import annotations

import json

import pytest

from lambdas.launch_queued_jobs import items
from lambdas.stop_training_job import rung_store
from tests.lambdas.launch_queued_jobs import sweeps
from training.sweep import spec as spec_module


@pytest.mark.parametrize(("sweep", "index"), [("vision-lr", 1), ("a", 999), ("x--y-2", 42)])
def test_job_names_are_the_launchers_and_name_their_sweep(sweep: str, index: int) -> None:
    # GIVEN the launcher's job name for a sweep's job  THEN the controller names it alike and finds the sweep
    name = spec_module.job_name(sweep, index)
    assert items.job_name(sweep, index) == name
    assert items.sweep_of_job(name) == sweep


@pytest.mark.parametrize("name", ["vision-lr-0001", "vision-lr-01", "vision-lr", "-001", "vision_lr-001", ""])
def test_names_of_another_form_belong_to_no_sweep(name: str) -> None:
    assert items.sweep_of_job(name) is None


def test_the_controllers_sort_keys_start_with_letters_and_never_meet_a_rung_items() -> None:
    # GIVEN the sweep item's and a job item's sort keys, and a rung item's of the same sweep
    keys = [items.sweep_key("vision-lr"), items.job_key("vision-lr", "vision-lr-001")]
    rung = rung_store.sort_key(0, "vision-lr-001")
    # THEN they share the partition key and name, and none begins with a rung's prefix (digits)
    for key in keys:
        assert key[items.PARTITION_KEY] == {"S": "vision-lr"}
        sort_key = key[items.SORT_KEY]["S"]
        assert sort_key[0].isalpha()
        assert not sort_key.startswith(rung_store.rung_prefix(0))
    assert (items.PARTITION_KEY, items.SORT_KEY) == (rung_store.PARTITION_KEY, rung_store.SORT_KEY)
    assert rung[0].isdigit()


def test_a_queued_job_holds_its_request_exactly_and_reads_back() -> None:
    # GIVEN a request and an alarm request
    request = sweeps.request("vision-lr-007")
    item = items.queued_job_item(
        sweep="vision-lr", index=7, request=request, alarms=[sweeps.alarm("vision-lr-007")]
    )
    # WHEN read back  THEN the same request, alarms, number and state
    job = items.JobItem.from_item(item)
    assert job.request == request
    assert job.alarms == (sweeps.alarm("vision-lr-007"),)
    assert (job.index, job.state, job.name) == (7, items.QUEUED, "vision-lr-007")


def test_a_request_for_another_job_is_refused_when_queued() -> None:
    with pytest.raises(ValueError, match="must be named vision-lr-002"):
        items.queued_job_item(sweep="vision-lr", index=2, request=sweeps.request("vision-lr-003"), alarms=[])


def test_the_size_counted_bounds_the_bytes_dynamodb_counts() -> None:
    # GIVEN a job item with multi-byte characters in its request
    request = sweeps.request("vision-lr-001")
    request["HyperParameters"]["note"] = "héllo wörld ✓" * 100
    item = items.queued_job_item(sweep="vision-lr", index=1, request=request, alarms=[])
    # THEN its size counts the UTF-8 bytes of every name and text value (never the characters)
    text_bytes = sum(
        len(name.encode()) + len(value["S"].encode()) for name, value in item.items() if "S" in value
    )
    numbers = sum(len(name.encode()) + items.MAX_NUMBER_BYTES for name, value in item.items() if "N" in value)
    assert items.item_size_bytes(item) == text_bytes + numbers
    assert items.item_size_bytes(item) > len(json.dumps(request, ensure_ascii=False))


def test_a_new_sweep_is_preparing_and_checked() -> None:
    state = items.SweepState.from_item(items.sweep_item(sweep="s", parallel=2, total=3, created_at="t"))
    assert (state.state, state.parallel, state.total, state.next_index, state.running) == (
        items.PREPARING,
        2,
        3,
        1,
        0,
    )
    assert not state.can_claim  # preparing: nothing is claimed before every job is written
    with pytest.raises(ValueError, match="parallel"):
        items.sweep_item(sweep="s", parallel=0, total=3, created_at="t")
    with pytest.raises(ValueError, match="1-999 jobs"):
        items.sweep_item(sweep="s", parallel=1, total=1000, created_at="t")
