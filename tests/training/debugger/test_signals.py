"""The stop signal: the documented event shape, its route to a stop, and sinks that never fail training.

PutEvents goes over HTTP to the moto server (real botocore). Failures that moto cannot produce (HTTP 500,
entries EventBridge failed, throttling) come from a small local HTTP server that answers a scripted sequence:
the one fake here, used only where no real part can fail on demand.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra import event_patterns
from infra.config import AutostopSettings
from lambdas.stop_training_job import decision
from tests.support import event_pattern_matcher, moto_server
from tests.training.debugger import support
from training.debugger import evaluator, signals

ISSUES_FOUND = signals.RuleSignal(
    rule_name="LossNotDecreasing",
    status=signals.RuleStatus.ISSUES_FOUND,
    step=40,
    status_details=signals.condition_met_details("LossNotDecreasing", 40),
    time=support.SAMPLE_TIME,
)


def test_the_put_events_entry_is_byte_for_byte_the_documented_one() -> None:
    # GIVEN the documented sample event (tests/events/autostop_rule_issues_found.json, docs/events.md)
    sample = support.sample_event()

    # WHEN the container builds the entry for the same finding
    entry = signals.put_events_entry(support.JOB, ISSUES_FOUND)

    # THEN Source, DetailType, Resources are the envelope's fields and Detail is the very same JSON text
    assert list(entry) == ["Source", "DetailType", "Resources", "Detail"]
    assert entry["Source"] == sample["source"] == "autostop.training"
    assert entry["DetailType"] == sample["detail-type"] == "Debugger Rule Evaluation Status Change"
    assert entry["Resources"] == sample["resources"]
    assert entry["Detail"] == json.dumps(sample["detail"])


def test_the_local_event_is_the_documented_sample_exactly() -> None:
    # WHEN the local sink's envelope is built with the sample's id
    sample = support.sample_event()
    envelope = signals.event_envelope(support.JOB, ISSUES_FOUND, event_id=sample["id"])

    # THEN it is the sample, byte for byte (key order included)
    assert json.dumps(envelope) == json.dumps(sample)


def test_the_event_matches_the_stop_stacks_pattern_and_the_decision_core_stops_the_job() -> None:
    # GIVEN the event as EventBridge delivers it, and the stop stack's pattern from the default settings
    event = signals.event_envelope(support.JOB, ISSUES_FOUND)
    pattern = event_patterns.in_container_rule_evaluation(AutostopSettings())

    # WHEN EventBridge matches it and the stop Lambda's decision core judges it (job InProgress, opted in)
    config = decision.config_from_environment({})
    facts = decision.interpret_event(event, config)
    assert isinstance(facts, decision.EventFacts)
    description = {
        "TrainingJobName": support.JOB_NAME,
        "TrainingJobArn": support.JOB_ARN,
        "TrainingJobStatus": "InProgress",
        "HyperParameters": {"autostop_signing_key": support.SAMPLE_SIGNING_KEY},
    }
    verdict = decision.decide(facts, description, {"autostop": "enabled"}, config, now=support.SAMPLE_TIME)

    # THEN the pattern matches, screening passes, and the decision is a stop for this rule at this step
    assert event_patterns.in_container_rule_evaluation(AutostopSettings()) == pattern
    assert event_pattern_matcher.matches(pattern, event)
    assert decision.screen(facts, config) is None
    assert verdict.action is decision.Action.STOP
    assert (verdict.job_name, verdict.rule_name, verdict.source) == (
        support.JOB_NAME,
        "LossNotDecreasing",
        decision.EventSource.TRAINING,
    )
    assert verdict.finding is not None
    assert verdict.finding.step == 40


def test_statuses_other_than_issues_found_do_not_match_the_pattern() -> None:
    # GIVEN the end-of-training status of a rule that found nothing
    done = signals.RuleSignal(
        "LossNotDecreasing", signals.RuleStatus.NO_ISSUES_FOUND, time=support.SAMPLE_TIME
    )
    event = signals.event_envelope(support.JOB, done)

    # THEN EventBridge would not invoke the stop Lambda, and the decision core would not stop either
    assert not event_pattern_matcher.matches(
        event_patterns.in_container_rule_evaluation(AutostopSettings()), event
    )
    facts = decision.interpret_event(event, decision.Config())
    assert isinstance(facts, decision.EventFacts)
    assert decision.screen(facts, decision.Config()) is not None
    assert event["detail"]["DebugRuleEvaluationStatuses"] == [
        {
            "RuleConfigurationName": "LossNotDecreasing",
            "RuleEvaluationStatus": "NoIssuesFound",
            "LastModifiedTime": "2026-11-20T10:15:31Z",
        }
    ]


def _queue_receiving_autostop_events(url: str) -> tuple[Any, str]:
    """An EventBridge rule on moto routing ``autostop.training`` events to an SQS queue we can read."""
    sqs = boto3.client("sqs", region_name=moto_server.REGION)
    events = boto3.client("events", region_name=moto_server.REGION)
    queue_url = sqs.create_queue(QueueName="autostop-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="autostop-training", EventPattern=json.dumps({"source": ["autostop.training"]}))
    events.put_targets(Rule="autostop-training", Targets=[{"Id": "queue", "Arn": queue_arn}])
    return sqs, queue_url


def test_put_events_over_http_delivers_the_documented_event(moto_endpoint: str) -> None:
    # GIVEN moto's EventBridge routing autostop.training events to a queue
    sqs, queue_url = _queue_receiving_autostop_events(moto_endpoint)
    lines: list[str] = []
    sink = signals.EventBridgeSink(support.JOB, log=lines.append)

    # WHEN the sink emits an IssuesFound signal (and a NoIssuesFound one, which it does not send)
    sink.emit(ISSUES_FOUND)
    sink.emit(signals.RuleSignal("Overfit", signals.RuleStatus.NO_ISSUES_FOUND, time=support.SAMPLE_TIME))
    assert sink.flush(timeout_s=30)

    # THEN one event went through botocore over HTTP and arrived with the documented source and detail
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert len(messages) == 1
    delivered = json.loads(messages[0]["Body"])
    sample = support.sample_event()
    assert (delivered["source"], delivered["detail-type"]) == (sample["source"], sample["detail-type"])
    assert delivered["resources"] == sample["resources"]
    assert delivered["detail"] == sample["detail"]
    assert [delivery.sent for delivery in sink.deliveries] == [True]
    assert sink.deliveries[0].attempts == 1
    assert lines == [f"rule LossNotDecreasing: stop event sent (event id {sink.deliveries[0].event_id})"]


class _ScriptedEventBridge(http.server.BaseHTTPRequestHandler):
    """Answers PutEvents with the next (status, body) of the server's script; counts requests."""

    def do_POST(self) -> None:
        server: Any = self.server
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status, body = server.script.pop(0) if server.script else (200, _ACCEPTED)
        server.requests += 1
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return


_ACCEPTED = {"FailedEntryCount": 0, "Entries": [{"EventId": "11111111-2222-3333-4444-555555555555"}]}


@contextlib.contextmanager
def _scripted_event_bridge(script: list[tuple[int, dict[str, Any]]]) -> Iterator[Any]:
    server: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ScriptedEventBridge)
    server.script = list(script)
    server.requests = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("script", "requests", "sent", "error"),
    [
        # Two HTTP 500s, then accepted: retried (botocore's own retries are off, the sink retries).
        ([(500, {"__type": "InternalException", "message": "boom"})] * 2, 3, True, None),
        # EventBridge answers 200 but failed the entry (throttled): retried.
        (
            [
                (
                    200,
                    {
                        "FailedEntryCount": 1,
                        "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow"}],
                    },
                )
            ],
            2,
            True,
            None,
        ),
        # Access denied is not retried: it would fail the same way again.
        (
            [(400, {"__type": "AccessDeniedException", "message": "no"})],
            1,
            False,
            "AccessDeniedException (HTTP 400)",
        ),
        # Always failing: gives up after the configured attempts.
        (
            [(503, {"__type": "ServiceUnavailableException"})] * 9,
            4,
            False,
            "ServiceUnavailableException (HTTP 503)",
        ),
    ],
)
def test_put_events_failures_are_retried_with_backoff_and_never_raise(
    monkeypatch: pytest.MonkeyPatch,
    script: list[tuple[int, dict[str, Any]]],
    requests: int,
    sent: bool,
    error: str | None,
) -> None:
    with _scripted_event_bridge(script) as server:
        # GIVEN the production client (AWS_ENDPOINT_URL) pointed at a server failing as scripted
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
        delays: list[float] = []
        sink = signals.EventBridgeSink(
            support.JOB, attempts=4, backoff_s=0.5, sleep=delays.append, log=lambda _: None
        )

        # WHEN it emits (and its delivery thread is done)
        sink.emit(ISSUES_FOUND)
        assert sink.flush(timeout_s=30)

    # THEN the requests made, the outcome and the growing jittered delays are as expected
    delivery = sink.deliveries[0]
    assert server.requests == requests
    assert delivery.attempts == requests
    assert delivery.sent is sent
    assert delivery.error == error
    assert len(delays) == requests - 1
    for attempt, delay in enumerate(delays):
        assert 0.25 * 2**attempt <= delay <= 0.5 * 2**attempt


def test_an_unreachable_endpoint_is_logged_and_the_other_sinks_still_get_the_signal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN PutEvents pointed at a closed port, and the metric line after it
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{moto_server.free_port()}")
    lines: list[str] = []
    event_bridge = signals.EventBridgeSink(support.JOB, attempts=3, sleep=lambda _: None, log=lines.append)
    dispatcher = signals.SignalDispatcher([event_bridge, signals.MetricLogLineSink(write=lines.append)])

    # WHEN the signal is dispatched, and the delivery thread has given up
    dispatcher.emit(ISSUES_FOUND)
    assert event_bridge.flush(timeout_s=30)

    # THEN nothing raised: the metric line printed at once, then 3 attempts and a log line saying so
    assert event_bridge.deliveries[0].attempts == 3
    assert not event_bridge.deliveries[0].sent
    assert "EndpointConnectionError" in (event_bridge.deliveries[0].error or "")
    assert lines[0] == "rule:LossNotDecreasing=1"
    assert lines[1].startswith("rule LossNotDecreasing: could not send the stop event after 3 attempts (")


def test_self_termination_keeps_its_deadline_while_put_events_retries_against_a_refusing_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN the sinks a SageMaker job builds (PutEvents on, self-termination after 0.2 s), PutEvents
    pointed at a port that refuses connections, and its backoff held until the test releases it
    WHEN the evaluator's thread dispatches an IssuesFound signal
    THEN the dispatch returns without waiting for PutEvents, and the job stops itself while PutEvents is
    still retrying: the grace period starts when the rule fires, whatever PutEvents does. (Without a gate,
    the real backoff of 5 attempts is 3.75-7.5 s plus the attempts themselves.)"""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{moto_server.free_port()}")
    lines: list[str] = []
    sinks = evaluator.build_sinks(
        job=support.JOB, put_events=True, events_file=None, self_terminate_after_s=0.2, log=lines.append
    )
    event_bridge = next(sink for sink in sinks if isinstance(sink, signals.EventBridgeSink))
    backoff_released = threading.Event()
    event_bridge.sleep = lambda _: backoff_released.wait(60)
    terminated_while_retrying: list[bool] = []
    terminated = threading.Event()

    def terminate() -> None:
        terminated_while_retrying.append(not backoff_released.is_set())
        terminated.set()

    self_termination = next(sink for sink in sinks if isinstance(sink, signals.SelfTermination))
    self_termination.terminate = terminate
    dispatcher = signals.SignalDispatcher(sinks, log=lines.append)
    dispatching = threading.Thread(target=dispatcher.emit, args=(ISSUES_FOUND,))

    try:
        dispatching.start()
        dispatching.join(timeout=30)
        dispatched_before_put_events_ended = not dispatching.is_alive() and not event_bridge.deliveries
        stopped = terminated.wait(timeout=30)
    finally:
        backoff_released.set()
    delivered = event_bridge.flush(timeout_s=60)

    assert dispatched_before_put_events_ended
    assert stopped
    assert terminated_while_retrying == [True]
    assert delivered
    assert not event_bridge.deliveries[0].sent
    assert "EndpointConnectionError" in (event_bridge.deliveries[0].error or "")


def test_closing_waits_for_pending_put_events_within_its_drain_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN an event still being retried at the end of training
    WHEN the sink is closed with a short drain timeout THEN close returns after it, saying so, never hangs;
    and an event that completes in time is reported before close returns."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{moto_server.free_port()}")
    lines: list[str] = []
    held = threading.Event()
    stuck = signals.EventBridgeSink(
        support.JOB, sleep=lambda _: held.wait(60), drain_timeout_s=0.05, log=lines.append
    )
    quick = signals.EventBridgeSink(support.JOB, attempts=2, sleep=lambda _: None, log=lines.append)

    stuck.emit(ISSUES_FOUND)
    quick.emit(ISSUES_FOUND)
    try:
        stuck.close()
        quick.close()
    finally:
        held.set()

    assert any(
        line.startswith("debugger: stop events still being sent after 0.05 s at the end of training")
        for line in lines
    )
    assert [delivery.attempts for delivery in quick.deliveries] == [2]


def test_a_failing_sink_is_logged_and_does_not_stop_the_others() -> None:
    def broken(_: signals.RuleSignal) -> None:
        raise OSError("disk full")

    recorder = support.Recorder()
    log: list[str] = []
    dispatcher = signals.SignalDispatcher([signals.CallbackSink(broken), recorder.sink], log=log.append)
    dispatcher.emit(ISSUES_FOUND)
    assert recorder.signals == [ISSUES_FOUND]
    assert log == ["debugger: signal sink CallbackSink failed: OSError('disk full')"]


def test_metric_lines_and_their_metric_definitions() -> None:
    # GIVEN the metric sink and SageMaker metric definitions for two rule names
    lines: list[str] = []
    sink = signals.MetricLogLineSink(write=lines.append)
    definitions = signals.metric_definitions(["LossNotDecreasing", "Latent.v2+x"])

    # WHEN a rule starts, finds issues, and another ends without issues
    sink.emit(signals.RuleSignal("LossNotDecreasing", signals.RuleStatus.IN_PROGRESS))
    sink.emit(ISSUES_FOUND)
    sink.emit(signals.RuleSignal("Latent.v2+x", signals.RuleStatus.NO_ISSUES_FOUND))
    sink.emit(signals.RuleSignal("Latent.v2+x", signals.RuleStatus.ISSUES_FOUND, step=3))

    # THEN the lines are rule:<Name>=0/1 and each definition parses only its own rule's line
    assert lines == ["rule:LossNotDecreasing=0", "rule:LossNotDecreasing=1", "rule:Latent.v2+x=1"]
    assert definitions[0] == {"Name": "rule:LossNotDecreasing", "Regex": "rule:LossNotDecreasing=([0-9]+)"}
    found = {
        d["Name"]: [m.group(1) for line in lines if (m := re.search(d["Regex"], line))] for d in definitions
    }
    assert found == {"rule:LossNotDecreasing": ["0", "1"], "rule:Latent.v2+x": ["1"]}
    assert re.search(definitions[1]["Regex"], "rule:LatentXv2+x=1") is None  # the dot is escaped


def test_the_local_file_holds_one_event_per_line_that_the_decision_core_reads(tmp_path: Path) -> None:
    # GIVEN the local sink for a local job (name only, no ARN)
    job = signals.JobIdentity(name="local-run-7")
    path = tmp_path / "events" / "rule-events.jsonl"
    sink = signals.JsonLinesSink(path, job)

    # WHEN a rule starts and finds issues
    sink.emit(
        signals.RuleSignal("LossNotDecreasing", signals.RuleStatus.IN_PROGRESS, time=support.SAMPLE_TIME)
    )
    sink.emit(ISSUES_FOUND)

    # THEN each line is an event the decision core reads; only the IssuesFound one leads to a stop
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [
        event["detail"]["DebugRuleEvaluationStatuses"][0]["RuleEvaluationStatus"] for event in events
    ] == [
        "InProgress",
        "IssuesFound",
    ]
    assert events[1]["resources"] == []
    assert events[1]["detail"]["TrainingJobName"] == "local-run-7"
    assert "TrainingJobArn" not in events[1]["detail"]
    config = decision.Config()
    judged = [decision.interpret_event(event, config) for event in events]
    assert all(isinstance(facts, decision.EventFacts) for facts in judged)
    screened = [decision.screen(facts, config) for facts in judged if isinstance(facts, decision.EventFacts)]
    assert screened[0] is not None
    assert screened[0].reason is decision.Reason.NO_ISSUES_FOUND
    assert screened[1] is None


def _wait_until(condition: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_self_termination_stops_the_job_when_no_stop_arrives() -> None:
    # GIVEN self-termination after a short grace period, limited to LossNotDecreasing
    terminated = threading.Event()
    lines: list[str] = []
    sink = signals.SelfTermination(
        0.05, rules=["LossNotDecreasing"], terminate=terminated.set, log=lines.append
    )

    # WHEN another rule fires, then LossNotDecreasing fires (twice), and no stop comes
    sink.emit(signals.RuleSignal("Overfit", signals.RuleStatus.ISSUES_FOUND, step=5))
    sink.emit(ISSUES_FOUND)
    sink.emit(ISSUES_FOUND)

    # THEN it terminates once, for LossNotDecreasing, saying why
    assert _wait_until(terminated.is_set)
    assert sink.fired_for == "LossNotDecreasing"
    assert lines == [
        "rule LossNotDecreasing found issues at step 40: this job stops itself in 0.05 s unless it is "
        "stopped before",
        "autostop: rule LossNotDecreasing found issues at step 40 and no stop arrived within 0.05 s; "
        "stopping this training job itself (final checkpoint, models saved)",
    ]


def test_self_termination_is_cancelled_when_training_ends_first() -> None:
    terminated = threading.Event()
    sink = signals.SelfTermination(0.2, terminate=terminated.set, log=lambda _: None)
    sink.emit(ISSUES_FOUND)
    sink.close()  # the stop arrived: training ended
    assert not terminated.wait(0.5)
    assert sink.fired_for is None


def test_job_identity_comes_from_sagemakers_environment_and_is_validated() -> None:
    environment = {"TRAINING_JOB_ARN": support.JOB_ARN, "AUTOSTOP_SIGNING_KEY": support.SAMPLE_SIGNING_KEY}
    assert signals.JobIdentity.from_environment(environment) == support.JOB
    assert signals.JobIdentity.from_environment({}) == signals.JobIdentity()
    assert not signals.JobIdentity().named
    assert (support.JOB.region, support.JOB.account) == ("us-east-1", "123456789012")
    with pytest.raises(ValueError, match="not a SageMaker training job name"):
        signals.JobIdentity(name="bad_name")
    with pytest.raises(ValueError, match="does not name job"):
        signals.JobIdentity(name="other-job", arn=support.JOB_ARN)
    with pytest.raises(ValueError, match="needs the training job's name or ARN"):
        signals.EventBridgeSink(signals.JobIdentity())
