"""Cross-job rung reports from the container: reported at the rungs the Lambda judges, signed as the Lambda
verifies, sent with the PutEvents sink, and end to end from a real training run (the entry point as a
subprocess, TensorFlow, moto's EventBridge over HTTP) to the stop Lambda's admission of every report."""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.stop_training_job import cross_job, decision, rung_reports, rung_store, sweep_settings
from tests.support import moto_server
from tests.training import support as training_support
from tests.training.conftest import RenderedShards
from tests.training.debugger import support
from training.debugger import config, contract, provenance, signals, wiring
from training.debugger import rung_reports as container_reports

REPOSITORY = Path(__file__).resolve().parents[3]
RUNGS = (100, 300, 900)
REPORTING = container_reports.CrossJobReporting(metric="validation:loss", rungs=RUNGS)


class SentEntries:
    """A sender keeping what it was given (the PutEvents delivery itself is tested over HTTP below)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.closed = False

    def send(self, entry: dict[str, Any], *, rule_name: str, what: str, fallback: str | None = None) -> None:
        self.entries.append(entry)

    def close(self) -> None:
        self.closed = True


def reporter(sender: Any, *, job: signals.JobIdentity = support.JOB) -> container_reports.RungReporter:
    return container_reports.RungReporter(
        REPORTING, job=job, sender=sender, clock=support.fixed_clock, log=lambda _: None
    )


# --- one contract with the stop Lambda ---


def test_the_containers_names_are_the_lambdas() -> None:
    assert contract.CROSS_JOB_HYPERPARAMETER == decision.CROSS_JOB_HYPERPARAMETER
    assert contract.RUNG_REPORT_DETAIL_TYPE == decision.RUNG_REPORT_DETAIL_TYPE
    assert contract.RUNG_REPORT_MESSAGE_VERSION == decision.RUNG_REPORT_MESSAGE_VERSION
    assert contract.CROSS_JOB_RULE == decision.CROSS_JOB_RULE
    assert container_reports.MAX_RUNGS == cross_job.MAX_RUNGS


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(
    grace_period=st.integers(min_value=1, max_value=500),
    reduction_factor=st.sampled_from([2.0, 3.0, 4.0, 2.5]),
    max_steps=st.integers(min_value=2, max_value=20_000),
    previous=st.integers(min_value=0, max_value=20_000),
    advance=st.integers(min_value=0, max_value=5_000),
    rejudge=st.booleans(),
)
def test_the_container_counts_rungs_exactly_as_the_cross_job_core(
    grace_period: int, reduction_factor: float, max_steps: int, previous: int, advance: int, rejudge: bool
) -> None:
    # GIVEN any settings the launcher may write, and a job moving from one validation to the next
    settings_ = cross_job.CrossJobSettings(
        policy=cross_job.Policy.ASHA,
        goal=cross_job.MINIMIZE,
        max_steps=max_steps,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
        rejudge=rejudge,
    )
    comparison = sweep_settings.SweepComparison(sweep="s", metric="validation:loss", settings=settings_)
    # WHEN the container reads the launcher's value  THEN it reports at exactly the core's rungs
    reporting = container_reports.parse_reporting(sweep_settings.encode(comparison), "test")
    assert reporting.rejudge is rejudge
    step = previous + advance
    assert container_reports.rung_reached(reporting.rungs, previous, step) == cross_job.rung_reached(
        settings_, previous, step
    )
    assert container_reports.rung_to_report(reporting, previous, step) == cross_job.rung_to_judge(
        settings_, previous, step
    )


def test_a_value_from_a_launcher_before_rejudge_reports_each_rung_once() -> None:
    # GIVEN the hyperparameter as a launcher wrote it before the rejudge field existed
    reporting = container_reports.parse_reporting('{"metric":"validation:loss","rungs":[100,300]}', "old")
    # THEN the container reports each rung once, as that launcher's Lambda judged
    assert reporting.rejudge is False
    with pytest.raises(container_reports.CrossJobConfigError, match="rejudge must be true or false"):
        container_reports.parse_reporting('{"metric":"validation:loss","rungs":[100],"rejudge":1}', "bad")


@pytest.mark.parametrize(
    "value", [0.0412, 1e-05, -3.5, 123456.789, float("nan"), float("inf"), -float("inf")]
)
def test_the_objective_text_is_the_rung_stores_and_matches_the_lambdas_pattern(value: float) -> None:
    text = container_reports.objective_text(value)
    assert text == rung_store.objective_text(value)
    assert decision.OBJECTIVE_PATTERN.fullmatch(text)


def test_the_documented_report_is_what_the_container_sends() -> None:
    # GIVEN the sample job (key and time of docs/events.md) at rung 300 with objective 0.0412
    report = container_reports.RungReport(300, 300, "validation:loss", 0.0412, support.SAMPLE_TIME)
    # WHEN the container builds the PutEvents entry and the event EventBridge makes of it
    entry = container_reports.put_events_entry(support.JOB, report)
    documented = support.sample_event("autostop_cross_job_rung_report.json")
    event = container_reports.event_envelope(support.JOB, report, event_id=documented["id"])
    # THEN both are the documented ones, key for key and in order
    assert event == documented
    assert list(event["detail"]) == list(documented["detail"])
    assert (entry["Source"], entry["DetailType"], entry["Resources"]) == (
        "autostop.training",
        "Cross-Job Rung Report",
        documented["resources"],
    )
    assert json.loads(entry["Detail"]) == documented["detail"]


# --- the reporter: the first validation at or after a rung reports it, once ---


def test_each_rung_is_reported_once_at_the_first_validation_at_or_after_it() -> None:
    sent = SentEntries()
    rung_reporter = reporter(sent)
    # GIVEN validations at these steps (every 50, then a jump past two rungs at once)
    for step, loss in ((50, 0.9), (100, 0.5), (150, 0.45), (250, 0.4), (350, 0.3), (1000, 0.1)):
        rung_reporter.validated(step, {"loss": loss, "ssim": 1 - loss, "l2": loss / 10})
    # THEN rung 100 at step 100, rung 300 at step 350; the jump to 1000 reports the highest rung passed, 900
    details = [json.loads(entry["Detail"]) for entry in sent.entries]
    assert [(detail["Rung"], detail["Step"], detail["Objective"]) for detail in details] == [
        (100, 100, "0.5"),
        (300, 350, "0.3"),
        (900, 1000, "0.1"),
    ]
    assert all(detail["ObjectiveMetric"] == "validation:loss" for detail in details)


def test_with_rejudge_every_validation_after_the_first_rung_reports_the_highest_rung_passed() -> None:
    # GIVEN a comparison that judges jobs again as their rung fills up
    sent = SentEntries()
    rung_reporter = container_reports.RungReporter(
        dataclasses.replace(REPORTING, rejudge=True),
        job=support.JOB,
        sender=sent,
        clock=support.fixed_clock,
        log=lambda _: None,
    )
    # WHEN the job validates before, at and after its rungs
    for step, loss in ((50, 0.9), (100, 0.5), (150, 0.45), (350, 0.3), (400, 0.25)):
        rung_reporter.validated(step, {"loss": loss})
    # THEN nothing before the first rung; after it, each validation reports the highest rung it has passed
    details = [json.loads(entry["Detail"]) for entry in sent.entries]
    assert [(detail["Rung"], detail["Step"]) for detail in details] == [
        (100, 100),
        (100, 150),
        (300, 350),
        (300, 400),
    ]


def test_a_diverged_validation_is_reported_as_nan_which_ranks_last() -> None:
    sent = SentEntries()
    reporter(sent).validated(100, {"loss": float("nan")})
    assert json.loads(sent.entries[0]["Detail"])["Objective"] == "nan"


def test_a_sender_that_fails_never_fails_training() -> None:
    class Refusing(SentEntries):
        def send(self, entry: dict[str, Any], **kwargs: Any) -> None:
            raise RuntimeError("no network")

    lines: list[str] = []
    rung_reporter = container_reports.RungReporter(
        REPORTING, job=support.JOB, sender=Refusing(), clock=support.fixed_clock, log=lines.append
    )
    assert rung_reporter.validated(100, {"loss": 0.5}) is None
    assert lines == ["cross-job: the report at step 100 could not be sent: RuntimeError('no network')"]


def test_a_job_without_its_signing_key_cannot_report() -> None:
    with pytest.raises(container_reports.CrossJobConfigError, match="signing key"):
        reporter(SentEntries(), job=signals.JobIdentity(name=support.JOB_NAME))


# --- reading the launcher's hyperparameter ---


def write_hyperparameters(root: Path, values: dict[str, str]) -> dict[str, str]:
    directory = root / "input" / "config"
    directory.mkdir(parents=True)
    (directory / "hyperparameters.json").write_text(json.dumps(values), encoding="utf-8")
    return {"AUTOSTOP_OPT_ML": str(root), "TRAINING_JOB_NAME": support.JOB_NAME}


def launcher_value(max_steps: int = 1000) -> str:
    return sweep_settings.encode(
        sweep_settings.SweepComparison(
            sweep="sweep-lr",
            metric="validation:loss",
            settings=cross_job.CrossJobSettings(
                policy=cross_job.Policy.ASHA, goal=cross_job.MINIMIZE, max_steps=max_steps, reduction_factor=3
            ),
        )
    )


def test_the_comparison_comes_from_sagemakers_hyperparameters_file(tmp_path: Path) -> None:
    # GIVEN the launcher's value, JSON-quoted once more as the SageMaker Python SDK's estimators do
    environ = write_hyperparameters(tmp_path, {"autostop_cross_job": json.dumps(launcher_value())})
    # THEN the container reports the metric at the rungs, again at each validation (the default rejudge)
    assert container_reports.reporting_from(environ) == dataclasses.replace(REPORTING, rejudge=True)


def test_a_job_launched_without_the_comparison_reports_nothing(tmp_path: Path) -> None:
    assert container_reports.reporting_from(write_hyperparameters(tmp_path, {"steps": "10"})) is None
    assert container_reports.reporting_from({"AUTOSTOP_OPT_ML": str(tmp_path / "none")}) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not json", "expected the launcher's JSON object"),
        ('{"metric": "validation:loss"}', "needs metric (a string) and rungs"),
        ('{"metric": "train:loss", "rungs": [100]}', "metric must be validation:<name>"),
        ('{"metric": "validation:loss", "rungs": [300, 100]}', "rungs must be at most 32 increasing"),
        ('{"metric": "validation:loss", "rungs": [0, 100]}', "rungs must be positive"),
    ],
)
def test_a_bad_comparison_is_one_clear_configuration_error(tmp_path: Path, value: str, problem: str) -> None:
    environ = write_hyperparameters(tmp_path, {"autostop_cross_job": value})
    with pytest.raises(container_reports.CrossJobConfigError, match=re.escape(problem)):
        container_reports.reporting_from(environ)


def test_the_wiring_refuses_a_compared_job_without_its_key(tmp_path: Path) -> None:
    # GIVEN a job with the comparison but no signing key (never what the launcher writes)
    environ = write_hyperparameters(tmp_path, {"autostop_cross_job": launcher_value()})
    from training import hparams

    with pytest.raises(config.DebuggerConfigError, match="refuses unsigned rung reports"):
        wiring.resolve(
            hparams.HyperParameters(),
            config_dir=tmp_path / "input" / "config",
            default_out_dir=tmp_path / "tensors",
            environ=environ,
        )


# --- delivery with the PutEvents sink, over HTTP ---


def _queue_receiving_rung_reports() -> tuple[Any, str]:
    """An EventBridge rule on moto routing rung reports to an SQS queue the test reads."""
    sqs = boto3.client("sqs", region_name=moto_server.REGION)
    events = boto3.client("events", region_name=moto_server.REGION)
    queue_url = sqs.create_queue(QueueName="rung-reports")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {"source": ["autostop.training"], "detail-type": ["Cross-Job Rung Report"]}
    events.put_rule(Name="rung-reports", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="rung-reports", Targets=[{"Id": "queue", "Arn": queue_arn}])
    return sqs, queue_url


def received(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return events
        events += [json.loads(message["Body"]) for message in batch]
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_the_put_events_sink_delivers_the_signed_report_the_lambda_admits(moto_endpoint: str) -> None:
    # GIVEN moto's EventBridge routing rung reports to a queue, and the production PutEvents sink
    sqs, queue_url = _queue_receiving_rung_reports()
    lines: list[str] = []
    sink = signals.EventBridgeSink(support.JOB, log=lines.append)
    rung_reporter = container_reports.RungReporter(
        REPORTING, job=support.JOB, sender=sink, clock=support.fixed_clock, log=lines.append
    )
    # WHEN the job validates at step 100
    rung_reporter.validated(100, {"loss": 0.25})
    assert sink.flush(timeout_s=30)
    # THEN the report went through botocore over HTTP, logged as sent
    (event,) = received(sqs, queue_url)
    assert (event["source"], event["detail-type"]) == ("autostop.training", "Cross-Job Rung Report")
    assert lines == [
        "rule CrossJob: rung report (rung 100, validation:loss 0.25) sent "
        f"(event id {sink.deliveries[0].event_id})"
    ]
    # AND the stop Lambda's core parses it and admits it with the job's own key
    report = decision.interpret_rung_report(event)
    assert isinstance(report, decision.RungReport)
    description = {
        "TrainingJobName": support.JOB_NAME,
        "TrainingJobArn": support.JOB_ARN,
        "TrainingJobStatus": "InProgress",
        "HyperParameters": {
            "autostop_signing_key": support.SAMPLE_SIGNING_KEY,
            "autostop_cross_job": launcher_value(),
        },
    }
    admission = rung_reports.admit(
        report,
        description,
        {"autostop": "enabled"},
        decision.Config(),
        now=support.SAMPLE_TIME + datetime.timedelta(seconds=1),
    )
    assert isinstance(admission, rung_reports.Admitted)
    assert (admission.report.rung, admission.report.objective) == (100, 0.25)


# --- end to end: a real training run reports its rungs ---

TINY_RUN = {
    "image_size": "32",
    "num_views": "6",
    "base_filters": "4",
    "bottleneck_width": "64",
    "embedding_size": "12",
    "batch_size": "8",
    "steps": "48",
    "learning_rate": "0.01",
    "log_interval": "8",
    "validation_interval": "16",
    "validation_fraction": "0.25",
    "seed": "3",
    "loss": "ssim",
    "preset": "optimized",
}


@pytest.mark.slow
def test_a_real_training_run_reports_each_rung_signed_and_admitted(
    rendered_shards: RenderedShards, tmp_path: Path, moto_endpoint: str
) -> None:
    # GIVEN a 48-step job validating every 16 steps, launched as the SageMaker launcher launches a job of a
    # compared sweep: its signing key, and the comparison (rungs 16 and 32) as autostop_cross_job
    settings_ = cross_job.CrossJobSettings(
        policy=cross_job.Policy.ASHA,
        goal=cross_job.MINIMIZE,
        max_steps=48,
        grace_period=16,
        reduction_factor=2.0,
    )
    comparison = sweep_settings.SweepComparison(
        sweep="sweep-lr", metric="validation:loss", settings=settings_
    )
    key = provenance.new_signing_key()
    hyperparameters = {
        **TINY_RUN,
        "autostop_signing_key": key,
        "autostop_cross_job": sweep_settings.encode(comparison),
    }
    environment = training_support.container_layout(
        tmp_path, train_channel=rendered_shards.path, hyperparameters=hyperparameters
    )
    environment.update(
        {
            "TRAINING_JOB_NAME": support.JOB_NAME,
            "TRAINING_JOB_ARN": support.JOB_ARN,
            "AWS_ENDPOINT_URL": moto_endpoint,
            **moto_server.FAKE_CREDENTIALS,
        }
    )
    sqs, queue_url = _queue_receiving_rung_reports()
    started = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)
    # WHEN the container's entry point runs the job
    completed = subprocess.run(
        training_support.train_command(),
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    # THEN it reported rung 16 at step 16 and rung 32 at step 32 (its validations at those steps), then rung
    # 32 again at its last validation (the comparison's default rejudge), each with the loss printed there
    events = sorted(
        received(sqs, queue_url), key=lambda event: (int(event["detail"]["Rung"]), event["detail"]["Step"])
    )
    assert [(event["detail"]["Rung"], event["detail"]["Step"]) for event in events] == [
        (16, 16),
        (32, 32),
        (32, 48),
    ]
    printed = {
        int(line.split()[0].removeprefix("step=")): line.split("val_loss=")[1].split()[0]
        for line in completed.stdout.splitlines()
        if " val_loss=" in line
    }
    for event in events:
        assert float(event["detail"]["Objective"]) == pytest.approx(
            float(printed[event["detail"]["Step"]]), rel=1e-4
        )
    assert (
        "cross-job: reporting validation:loss at rungs 16, 32, then again at every validation"
        in completed.stdout
    )
    # AND the stop Lambda's core admits every report with the job's key and its launch comparison
    description = {
        "TrainingJobName": support.JOB_NAME,
        "TrainingJobArn": support.JOB_ARN,
        "TrainingJobStatus": "InProgress",
        "CreationTime": started,
        "HyperParameters": hyperparameters,
    }
    for event in events:
        report = decision.interpret_rung_report(event)
        assert isinstance(report, decision.RungReport)
        admission = rung_reports.admit(
            report,
            description,
            {"autostop": "enabled"},
            decision.Config(),
            now=datetime.datetime.now(datetime.UTC),
        )
        assert isinstance(admission, rung_reports.Admitted), admission
