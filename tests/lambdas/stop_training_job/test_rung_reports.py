"""The rung report's pure path: parse (never raises), admit (signed by the job, launched for cross-job
stopping, fitting its sweep's settings) and the verdict after the judgement. No AWS here: the handler tests
(test_handler_rung_reports.py) run the same path through botocore against moto's DynamoDB."""

from __future__ import annotations

import datetime
from typing import Any

import hypothesis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.stop_training_job import cross_job, decision, rung_reports, sweep_settings
from tests.lambdas.stop_training_job import event_fixtures as fixtures
from tests.lambdas.stop_training_job import test_properties
from tests.lambdas.stop_training_job.event_fixtures import JOB_ARN, JOB_NAME, SAMPLE_SIGNING_KEY, SAMPLE_TIME

CONFIG = decision.Config()
TAGS = {"autostop": "enabled"}
SETTINGS = fixtures.RUNG_REPORT_SETTINGS
COMPARISON = sweep_settings.SweepComparison(sweep="sweep-lr", metric="validation:loss", settings=SETTINGS)
NOW = SAMPLE_TIME + datetime.timedelta(seconds=2)


def description(status: str = "InProgress", **hyperparameters: str) -> dict[str, Any]:
    """DescribeTrainingJob of the fixtures' job, launched for cross-job stopping with the sample key."""
    return {
        "TrainingJobName": JOB_NAME,
        "TrainingJobArn": JOB_ARN,
        "TrainingJobStatus": status,
        "CreationTime": SAMPLE_TIME - datetime.timedelta(minutes=10),
        "HyperParameters": {
            "autostop_signing_key": SAMPLE_SIGNING_KEY,
            "autostop_cross_job": sweep_settings.encode(COMPARISON),
            **hyperparameters,
        },
    }


def parsed(event: dict[str, Any]) -> decision.RungReport:
    report = decision.interpret_rung_report(event)
    assert isinstance(report, decision.RungReport), report
    return report


def admitted(event: dict[str, Any], **changes: Any) -> rung_reports.Admitted | decision.Decision:
    arguments: dict[str, Any] = {"description": description(), "tags": TAGS, "config": CONFIG, **changes}
    return rung_reports.admit(
        parsed(event), arguments["description"], arguments["tags"], arguments["config"], now=NOW
    )


def judged(value: float, peers: dict[str, float]) -> cross_job.Judgement:
    return cross_job.judge(SETTINGS, rung=300, job=JOB_NAME, peers={JOB_NAME: value, **peers})


# --- parsing ---


def test_the_documented_report_parses_into_its_facts() -> None:
    report = parsed(fixtures.load(fixtures.RUNG_REPORT))
    assert (report.job_name, report.rung, report.step, report.metric) == (
        JOB_NAME,
        300,
        300,
        "validation:loss",
    )
    assert (report.objective_text, report.objective) == ("0.0412", 0.0412)
    assert report.signature is not None
    assert report.source is decision.EventSource.TRAINING


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("detail", "Rung"), 0, "detail.Rung: expected a positive integer"),
        (("detail", "Rung"), "300", "detail.Rung: expected a positive integer"),
        (("detail", "Rung"), True, "detail.Rung: expected a positive integer"),
        (("detail", "Step"), 299, "detail.Step: a rung is reported at or after it"),
        (("detail", "Objective"), 0.0412, "detail.Objective: expected a string"),
        (("detail", "Objective"), "NaN", "detail.Objective: expected a number as text"),
        (("detail", "Objective"), "1" * 33, "detail.Objective: 33 characters"),
        (("detail", "ObjectiveMetric"), "train:loss", "detail.ObjectiveMetric: expected validation:<metric>"),
        (("detail", "TrainingJobName"), "other-job", "names job 'sweep-lr-0001' but detail.TrainingJobName"),
        (("detail", "Provenance", "Signature"), "zz", "detail.Provenance: needs SignedAt and a hex"),
        (("detail",), [], "event.detail: expected an object"),
    ],
)
def test_a_malformed_report_is_ignored_naming_the_field(
    path: tuple[str, ...], value: object, problem: str
) -> None:
    ignored = decision.interpret_rung_report(
        fixtures.changed(fixtures.load(fixtures.RUNG_REPORT), path, value)
    )
    assert isinstance(ignored, decision.IgnoredEvent)
    assert ignored.reason is decision.Reason.MALFORMED_EVENT
    assert problem in ignored.detail


@pytest.mark.parametrize("event", [None, [], "text", {"source": "autostop.training"}, {"detail-type": 1}])
def test_something_else_is_not_a_rung_report(event: object) -> None:
    assert not decision.is_rung_report(event)
    ignored = decision.interpret_rung_report(event)
    assert isinstance(ignored, decision.IgnoredEvent)
    assert ignored.reason is decision.Reason.FOREIGN_EVENT


def test_a_diverged_objective_travels_as_text_and_ranks_last() -> None:
    report = parsed(fixtures.rung_report(objective="nan"))
    assert report.objective != report.objective  # NaN
    assert judged(report.objective, {"a": 0.5, "b": 0.6}).rank == 3


# --- admission: only what the job itself signed, for the sweep it was launched in ---


def test_a_report_signed_by_the_job_is_admitted_with_its_sweeps_comparison() -> None:
    # GIVEN the documented report, signed with the sample key (docs/events.md section 4), as it is
    admission = admitted(fixtures.load(fixtures.RUNG_REPORT))
    assert isinstance(admission, rung_reports.Admitted)
    assert (admission.job_name, admission.status, admission.comparison) == (
        JOB_NAME,
        "InProgress",
        COMPARISON,
    )


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        (fixtures.without(fixtures.rung_report(), ("detail", "Provenance")), "the rung report is not signed"),
        (
            fixtures.rung_report(key="another-jobs-key-0123456789abcdef-xyz"),
            "does not verify with the job's key",
        ),
        (
            fixtures.changed(fixtures.rung_report(), ("detail", "Objective"), "0.0001"),
            "does not verify with the job's key",
        ),
        (
            fixtures.changed(fixtures.rung_report(), ("detail", "Step"), 400),
            "does not verify with the job's key",
        ),
        (fixtures.rung_report(at=SAMPLE_TIME - datetime.timedelta(hours=2)), "the event is stale"),
        (fixtures.rung_report(at=SAMPLE_TIME + datetime.timedelta(hours=1)), "signed in the future"),
    ],
    ids=["unsigned", "another-key", "objective-changed", "step-changed", "stale", "future"],
)
def test_a_forged_or_altered_report_is_never_admitted(event: dict[str, Any], problem: str) -> None:
    skip = admitted(event)
    assert isinstance(skip, decision.Decision)
    assert (skip.action, skip.reason) == (decision.Action.SKIP, decision.Reason.UNVERIFIED_EVENT)
    assert problem in skip.detail


def test_a_rule_events_signature_never_stands_for_a_rung_report() -> None:
    # GIVEN a genuine rule event's provenance, copied onto a rung report (same job, same key, same time)
    rule_event = fixtures.signed(fixtures.load(fixtures.TRAINING_ISSUES_FOUND))
    event = fixtures.changed(
        fixtures.rung_report(), ("detail", "Provenance"), rule_event["detail"]["Provenance"]
    )
    # THEN it does not verify: the two kinds are signed under different message versions
    skip = admitted(event)
    assert isinstance(skip, decision.Decision)
    assert skip.reason is decision.Reason.UNVERIFIED_EVENT


@pytest.mark.parametrize(
    ("changes", "reason", "detail"),
    [
        ({"tags": {"autostop": "disabled"}}, decision.Reason.OUT_OF_SCOPE_TAG, "not tagged autostop=enabled"),
        ({"description": None}, decision.Reason.JOB_NOT_FOUND, "found no such job"),
        (
            {"description": {**description(), "TrainingJobArn": JOB_ARN.replace(JOB_NAME, "other")}},
            decision.Reason.MALFORMED_DESCRIPTION,
            "lacks the job's name, ARN or status",
        ),
        (
            {
                "description": {
                    **description(),
                    "HyperParameters": {"autostop_signing_key": SAMPLE_SIGNING_KEY},
                }
            },
            decision.Reason.CROSS_JOB_NOT_CONFIGURED,
            "not launched for cross-job stopping",
        ),
        (
            {"description": description(autostop_cross_job='{"sweep": "x"}')},
            decision.Reason.CROSS_JOB_NOT_CONFIGURED,
            "missing key",
        ),
        ({"config": decision.Config(job_prefix="other-")}, decision.Reason.OUT_OF_SCOPE_PREFIX, "other-"),
    ],
    ids=["untagged", "no-job", "other-job", "no-comparison", "bad-comparison", "prefix"],
)
def test_a_report_outside_the_comparison_is_never_admitted(
    changes: dict[str, Any], reason: decision.Reason, detail: str
) -> None:
    skip = admitted(fixtures.rung_report(), **changes)
    assert isinstance(skip, decision.Decision)
    assert (skip.action, skip.reason) == (decision.Action.SKIP, reason)
    assert detail in skip.detail


@pytest.mark.parametrize(
    ("event", "detail"),
    [
        (fixtures.rung_report(metric="validation:ssim"), "the sweep compares validation:loss"),
        (
            fixtures.rung_report(rung=200, step=250),
            "rung 200 is not one of the sweep's rungs [100, 300, 900]",
        ),
    ],
)
def test_a_signed_report_that_does_not_fit_the_sweeps_settings_is_refused(
    event: dict[str, Any], detail: str
) -> None:
    skip = admitted(event)
    assert isinstance(skip, decision.Decision)
    assert skip.reason is decision.Reason.MALFORMED_EVENT
    assert detail in skip.detail


def test_a_report_of_a_job_that_has_ended_is_still_admitted_its_objective_is_a_fact() -> None:
    admission = admitted(fixtures.rung_report(), description=description("Completed"))
    assert isinstance(admission, rung_reports.Admitted)


# --- the verdict after the judgement ---


def admission(status: str = "InProgress") -> rung_reports.Admitted:
    result = admitted(fixtures.rung_report(), description=description(status))
    assert isinstance(result, rung_reports.Admitted)
    return result


def test_the_worst_of_three_is_stopped_under_the_rule_name_crossjob() -> None:
    verdict = rung_reports.verdict(admission(), judged(0.9, {"a": 0.1, "b": 0.2}), CONFIG)
    assert (verdict.action, verdict.reason) == (decision.Action.STOP, decision.Reason.WORSE_THAN_PEERS)
    assert verdict.finding is not None
    assert (verdict.rule_name, verdict.finding.origin, verdict.finding.step) == (
        "CrossJob",
        decision.FindingOrigin.CROSS_JOB,
        300,
    )
    # the judgement's own words: 0.9 against the cutoff of the best third of 0.1 and 0.2 (a loss)
    assert verdict.detail == (
        "asha at rung 300: objective 0.9 is worse than 0.133333, the cutoff of the best 1/3 of 2 others"
    )
    assert decision.stop_tags(verdict, NOW)["autostop:stopped-by-rule"] == "CrossJob"


@pytest.mark.parametrize(
    ("value", "peers", "reason"),
    [(0.1, {"a": 0.2, "b": 0.3}, "rank 1 is among the best 1"), (0.9, {"a": 0.1}, "only 2 of 3 reports")],
)
def test_a_job_ranking_well_enough_or_judged_too_early_goes_on(
    value: float, peers: dict[str, float], reason: str
) -> None:
    verdict = rung_reports.verdict(admission(), judged(value, peers), CONFIG)
    assert (verdict.action, verdict.reason) == (decision.Action.SKIP, decision.Reason.CROSS_JOB_CONTINUE)
    assert reason in verdict.detail


@pytest.mark.parametrize("value", [0.9, 0.05], ids=["worse", "better"])
def test_a_job_that_is_no_longer_running_is_not_stopped(value: float) -> None:
    judgement = judged(value, {"a": 0.1, "b": 0.2})
    verdict = rung_reports.verdict(admission("Stopping"), judgement, CONFIG)
    assert (verdict.action, verdict.reason) == (decision.Action.SKIP, decision.Reason.JOB_NOT_IN_PROGRESS)
    # AND only a report that judges it worse may complete a cut-short trail, as the CrossJob stop it asked for
    recorded = rung_reports.recorded_stop(admission("Stopping"), judgement)
    assert (recorded is not None) == judgement.stops


def test_the_deployments_or_the_sweeps_dry_run_only_says_it_would_stop() -> None:
    judgement = judged(0.9, {"a": 0.1, "b": 0.2})
    deployment = rung_reports.verdict(admission(), judgement, decision.Config(dry_run=True))
    assert deployment.action is decision.Action.DRY_RUN
    assert "dry run (the deployment's)" in deployment.detail
    dry_sweep = sweep_settings.SweepComparison(
        sweep="sweep-lr",
        metric="validation:loss",
        settings=cross_job.CrossJobSettings(**{**vars(SETTINGS), "dry_run": True}),
    )
    sweep = rung_reports.verdict(
        rung_reports.Admitted(admission().report, JOB_NAME, "InProgress", dry_sweep), judgement, CONFIG
    )
    assert sweep.action is decision.Action.DRY_RUN
    assert "dry run (the sweep's)" in sweep.detail


# --- properties: whatever arrives, parsing never raises and a tampered report is never admitted ---


def signed_facts(report: decision.RungReport) -> tuple[object, ...]:
    return (
        report.job_name.lower(),
        report.rung,
        report.step,
        report.metric,
        report.objective_text,
        report.signature,
    )


@st.composite
def tampered_reports(draw: st.DrawFn) -> dict[str, Any]:
    """The documented report with 1-3 of its detail's fields replaced, removed, or keys added."""
    event = fixtures.load(fixtures.RUNG_REPORT)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        detail = event["detail"]
        key = draw(st.sampled_from([*detail, "Extra"]))
        if draw(st.booleans()) and key in detail:
            del detail[key]
        else:
            detail[key] = draw(
                test_properties.VALUES | st.sampled_from([301, 900, "0.5", "nan", "validation:ssim"])
            )
    return event


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(event=tampered_reports() | test_properties.JUNK)
def test_a_tampered_report_is_never_admitted_and_parsing_never_raises(event: Any) -> None:
    # GIVEN the documented report with its fields changed at random (or random junk)
    outcome = decision.interpret_rung_report(event)
    assert isinstance(outcome, decision.RungReport | decision.IgnoredEvent)
    if isinstance(outcome, decision.IgnoredEvent):
        hypothesis.event(f"ignored: {outcome.reason}")
        return
    # WHEN the parsed report is judged for admission against the job's own key and comparison
    admission = rung_reports.admit(outcome, description(), TAGS, CONFIG, now=NOW)
    original = parsed(fixtures.load(fixtures.RUNG_REPORT))
    # (the job may be named by its name, its ARN or the resources: any of them names the job that signed)
    unchanged = signed_facts(outcome) == signed_facts(original)
    # THEN only a report whose signed facts and signature are untouched is admitted
    assert isinstance(admission, rung_reports.Admitted) == unchanged
    hypothesis.event("admitted" if unchanged else f"refused: {getattr(admission, 'reason', '')}")
