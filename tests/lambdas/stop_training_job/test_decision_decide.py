"""The stop rules of the pure core, one test per rule: facts + job now + tags + settings -> decision."""

from __future__ import annotations

import datetime
import json

import pytest

from lambdas.stop_training_job import decision
from tests.lambdas.stop_training_job import event_fixtures as fixtures
from tests.lambdas.stop_training_job.event_fixtures import changed, load

Action = decision.Action
Reason = decision.Reason
CONFIG = decision.Config()
OPT_IN = {"autostop": "enabled"}
NOW = fixtures.SAMPLE_TIME + datetime.timedelta(seconds=2)


def facts_of(name: str, config: decision.Config = CONFIG) -> decision.EventFacts:
    facts = decision.interpret_event(load(name), config)
    assert isinstance(facts, decision.EventFacts)
    return facts


def described(status: str = "InProgress", job_name: str = fixtures.JOB_NAME) -> dict[str, object]:
    return {
        "TrainingJobName": job_name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{job_name}",
        "TrainingJobStatus": status,
        "HyperParameters": {"autostop_signing_key": fixtures.SAMPLE_SIGNING_KEY},
    }


@pytest.mark.parametrize(
    ("name", "rule", "source", "step"),
    [
        (fixtures.SAGEMAKER_ISSUES_FOUND, "LossNotDecreasing", decision.EventSource.SAGEMAKER, 500),
        (fixtures.SAGEMAKER_PROFILER_ISSUES_FOUND, "LowGPUUtilization", decision.EventSource.SAGEMAKER, 120),
        (fixtures.TRAINING_ISSUES_FOUND, "LossNotDecreasing", decision.EventSource.TRAINING, 40),
        (fixtures.ALARM_HOST, "LossNotDecreasing", decision.EventSource.CLOUDWATCH, None),
        (fixtures.ALARM_TRAINING_JOB_NAME, "LossNotDecreasing", decision.EventSource.CLOUDWATCH, None),
    ],
)
def test_an_issue_of_a_stopping_rule_on_an_opted_in_running_job_stops_it(
    name: str, rule: str, source: decision.EventSource, step: int | None
) -> None:
    # GIVEN an event reporting IssuesFound, a job that is InProgress now and carries the opt-in tag
    facts = facts_of(name)
    # WHEN deciding
    verdict = decision.decide(facts, described(), OPT_IN, CONFIG, now=NOW)
    # THEN stop, recording the rule, the source and the step
    assert (verdict.action, verdict.reason) == (Action.STOP, Reason.ISSUES_FOUND)
    assert (verdict.job_name, verdict.rule_name, verdict.source) == (fixtures.JOB_NAME, rule, source)
    assert verdict.finding is not None
    assert verdict.finding.step == step


def test_dry_run_would_stop_but_says_dry_run() -> None:
    verdict = decision.decide(
        facts_of(fixtures.SAGEMAKER_ISSUES_FOUND), described(), OPT_IN, decision.Config(dry_run=True), now=NOW
    )
    assert (verdict.action, verdict.reason, verdict.rule_name) == (
        Action.DRY_RUN,
        Reason.DRY_RUN,
        "LossNotDecreasing",
    )


@pytest.mark.parametrize("status", ["Stopping", "Stopped", "Completed", "Failed", "Deleting", "SomethingNew"])
def test_a_job_that_is_not_in_progress_now_is_never_stopped(status: str) -> None:
    # GIVEN an event with an issue, but DescribeTrainingJob says the job is no longer InProgress
    # (the event is stale, a duplicate, or out of order)
    verdict = decision.decide(
        facts_of(fixtures.SAGEMAKER_ISSUES_FOUND), described(status), OPT_IN, CONFIG, now=NOW
    )
    # THEN a no-op skip
    assert (verdict.action, verdict.reason) == (Action.SKIP, Reason.JOB_NOT_IN_PROGRESS)
    assert status in verdict.detail


@pytest.mark.parametrize("status", ["Stopping", "Stopped", "Completed", "Failed"])
def test_an_event_claiming_an_irreversible_state_is_skipped_before_any_lookup(status: str) -> None:
    # GIVEN a SageMaker event that still lists IssuesFound but says the job is past InProgress
    event = changed(load(fixtures.SAGEMAKER_ISSUES_FOUND), ("detail", "TrainingJobStatus"), status)
    facts = decision.interpret_event(event, CONFIG)
    assert isinstance(facts, decision.EventFacts)
    # WHEN screening
    early = decision.screen(facts, CONFIG)
    # THEN skip without looking the job up; decide agrees even if a description said InProgress
    assert early is not None
    assert early.reason is Reason.JOB_NOT_IN_PROGRESS
    assert decision.decide(facts, described("InProgress"), OPT_IN, CONFIG, now=NOW).action is Action.SKIP


def test_the_status_claimed_by_an_event_never_causes_a_stop() -> None:
    # GIVEN an event claiming InProgress while the job is actually Completed
    verdict = decision.decide(
        facts_of(fixtures.SAGEMAKER_ISSUES_FOUND), described("Completed"), OPT_IN, CONFIG, now=NOW
    )
    # THEN the description wins
    assert verdict.reason is Reason.JOB_NOT_IN_PROGRESS


@pytest.mark.parametrize(
    "tags",
    [{}, {"autostop": "disabled"}, {"autostop": "Enabled"}, {"Autostop": "enabled"}, {"other": "enabled"}],
    ids=json.dumps,
)
def test_a_job_without_the_exact_opt_in_tag_is_out_of_scope(tags: dict[str, str]) -> None:
    verdict = decision.decide(facts_of(fixtures.SAGEMAKER_ISSUES_FOUND), described(), tags, CONFIG, now=NOW)
    assert (verdict.action, verdict.reason) == (Action.SKIP, Reason.OUT_OF_SCOPE_TAG)


def test_the_opt_in_tag_is_configurable() -> None:
    config = decision.Config(tag_key="team:stop", tag_value="yes")
    facts = facts_of(fixtures.SAGEMAKER_ISSUES_FOUND)
    assert decision.decide(facts, described(), {"team:stop": "yes"}, config, now=NOW).action is Action.STOP
    assert decision.decide(facts, described(), OPT_IN, config, now=NOW).reason is Reason.OUT_OF_SCOPE_TAG


def test_a_job_outside_the_name_prefix_is_out_of_scope_before_any_lookup() -> None:
    # GIVEN a prefix the job's name does not start with, and a job otherwise worth stopping
    config = decision.Config(job_prefix="sweep-lr-1")
    facts = facts_of(fixtures.SAGEMAKER_ISSUES_FOUND, config)
    # THEN screening already skips it, and decide agrees
    early = decision.screen(facts, config)
    assert early is not None
    assert early.reason is Reason.OUT_OF_SCOPE_PREFIX
    assert decision.decide(facts, described(), OPT_IN, config, now=NOW).reason is Reason.OUT_OF_SCOPE_PREFIX


def test_a_job_inside_the_name_prefix_is_stopped() -> None:
    config = decision.Config(job_prefix="sweep-lr-")
    verdict = decision.decide(
        facts_of(fixtures.SAGEMAKER_ISSUES_FOUND, config), described(), OPT_IN, config, now=NOW
    )
    assert verdict.action is Action.STOP


@pytest.mark.parametrize("name", [fixtures.SAGEMAKER_IN_PROGRESS, fixtures.SAGEMAKER_COMPLETED])
def test_no_issue_no_stop(name: str) -> None:
    facts = facts_of(name)
    verdict = decision.decide(facts, described(), OPT_IN, CONFIG, now=NOW)
    assert verdict.action is Action.SKIP
    assert verdict.reason in {Reason.NO_ISSUES_FOUND, Reason.JOB_NOT_IN_PROGRESS}


def test_no_issues_found_is_decided_by_screening_alone() -> None:
    early = decision.screen(facts_of(fixtures.SAGEMAKER_IN_PROGRESS), CONFIG)
    assert early is not None
    assert early.reason is Reason.NO_ISSUES_FOUND


def test_issues_of_rules_that_do_not_stop_are_skipped() -> None:
    # GIVEN only VanishingGradient stops, and the event's issue is LossNotDecreasing's
    config = decision.Config(stopping_rules=frozenset({"VanishingGradient"}))
    facts = facts_of(fixtures.SAGEMAKER_ISSUES_FOUND)
    # THEN skip, naming the rule
    verdict = decision.decide(facts, described(), OPT_IN, config, now=NOW)
    assert (verdict.action, verdict.reason) == (Action.SKIP, Reason.RULE_NOT_STOPPING)
    assert "LossNotDecreasing" in verdict.detail


def test_the_first_stopping_rule_with_issues_is_recorded() -> None:
    # GIVEN two rules with issues, of which only the second stops
    event = load(fixtures.SAGEMAKER_ISSUES_FOUND)
    event["detail"]["DebugRuleEvaluationStatuses"][1]["RuleEvaluationStatus"] = "IssuesFound"
    facts = decision.interpret_event(event, CONFIG)
    assert isinstance(facts, decision.EventFacts)
    # WHEN every rule stops, the first is recorded; when only VanishingGradient stops, it is
    assert decision.decide(facts, described(), OPT_IN, CONFIG, now=NOW).rule_name == "LossNotDecreasing"
    only_second = decision.Config(stopping_rules=frozenset({"VanishingGradient"}))
    assert decision.decide(facts, described(), OPT_IN, only_second, now=NOW).rule_name == "VanishingGradient"


def test_profiler_rules_obey_the_stopping_rules_filter_too() -> None:
    facts = facts_of(fixtures.SAGEMAKER_PROFILER_ISSUES_FOUND)
    not_listed = decision.Config(stopping_rules=frozenset({"LossNotDecreasing"}))
    listed = decision.Config(stopping_rules=frozenset({"LowGPUUtilization"}))
    assert decision.decide(facts, described(), OPT_IN, not_listed, now=NOW).reason is Reason.RULE_NOT_STOPPING
    assert decision.decide(facts, described(), OPT_IN, listed, now=NOW).action is Action.STOP


def test_a_job_that_does_not_exist_is_a_skip() -> None:
    verdict = decision.decide(facts_of(fixtures.SAGEMAKER_ISSUES_FOUND), None, {}, CONFIG, now=NOW)
    assert (verdict.action, verdict.reason) == (Action.SKIP, Reason.JOB_NOT_FOUND)


@pytest.mark.parametrize(
    "description",
    [
        {},
        described(job_name="sweep-lr-0002"),
        {
            **described(),
            "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/sweep-lr-0002",
        },
        {**described(), "TrainingJobArn": None},
        {**described(), "TrainingJobStatus": 1},
    ],
    ids=["empty", "another job", "another job's ARN", "no ARN", "status not a string"],
)
def test_a_description_that_is_not_of_this_job_never_leads_to_a_stop(description: dict[str, object]) -> None:
    verdict = decision.decide(facts_of(fixtures.SAGEMAKER_ISSUES_FOUND), description, OPT_IN, CONFIG, now=NOW)
    assert (verdict.action, verdict.reason) == (Action.SKIP, Reason.MALFORMED_DESCRIPTION)


def test_decision_to_dict_is_json_able_and_complete() -> None:
    verdict = decision.decide(facts_of(fixtures.TRAINING_ISSUES_FOUND), described(), OPT_IN, CONFIG, now=NOW)
    assert json.loads(json.dumps(verdict.to_dict())) == {
        "action": "stop",
        "reason": "issues_found",
        "job": fixtures.JOB_NAME,
        "rule": "LossNotDecreasing",
        "step": 40,
        "source": "autostop.training",
        "detail": "rule LossNotDecreasing found issues",
    }


# --- helpers for acting on a decision ---


def test_stop_tags_are_exactly_the_three_contract_keys_in_utc_seconds() -> None:
    # GIVEN a stop decided from an alarm, at a time given in another timezone
    verdict = decision.decide(facts_of(fixtures.ALARM_HOST), described(), OPT_IN, CONFIG, now=NOW)
    stopped_at = datetime.datetime(
        2026, 11, 20, 12, 15, 31, 999999, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    # WHEN the tags are made
    tags = decision.stop_tags(verdict, stopped_at)
    # THEN exactly the three keys, UTC ISO-8601 to the second, the source as the event's source
    assert tags == {
        "autostop:stopped-by-rule": "LossNotDecreasing",
        "autostop:stopped-at": "2026-11-20T10:15:31Z",
        "autostop:stop-source": "aws.cloudwatch",
    }


def test_stop_tags_refuse_anything_but_a_stop_with_an_aware_time() -> None:
    facts = facts_of(fixtures.SAGEMAKER_ISSUES_FOUND)
    now = datetime.datetime.now(datetime.UTC)
    with pytest.raises(ValueError, match="only for a STOP"):
        decision.stop_tags(decision.decide(facts, described(), {}, CONFIG, now=NOW), now)
    with pytest.raises(ValueError, match="timezone-aware"):
        decision.stop_tags(
            decision.decide(facts, described(), OPT_IN, CONFIG, now=NOW), now.replace(tzinfo=None)
        )


def test_job_alarms_are_matched_with_the_trailing_slash() -> None:
    # GIVEN job-1 and job-10, whose names share a prefix
    config = decision.Config()
    # THEN job-1's alarms are exactly those under "autostop-job-1/"
    assert decision.job_alarm_prefix("job-1", config) == "autostop-job-1/"
    assert decision.is_job_alarm("autostop-job-1/LossNotDecreasing", "job-1", config)
    assert not decision.is_job_alarm("autostop-job-10/LossNotDecreasing", "job-1", config)
    assert not decision.is_job_alarm("autostop-job-1-b/LossNotDecreasing", "job-1", config)
    assert not decision.is_job_alarm("other-job-1/LossNotDecreasing", "job-1", config)


def test_console_url() -> None:
    assert decision.console_url("eu-west-1", "job-1") == (
        "https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/job-1"
    )


def test_tags_from_list_keeps_well_formed_entries_only() -> None:
    items = [
        {"Key": "autostop", "Value": "enabled"},
        {"Key": "k"},
        {"Key": 1, "Value": "v"},
        "junk",
        {"Value": "x"},
    ]
    assert decision.tags_from_list(items) == {"autostop": "enabled", "k": ""}
    assert decision.tags_from_list(None) == {}
