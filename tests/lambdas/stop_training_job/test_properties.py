"""Property: whatever arrives (documented events mutated at random, or random junk), a job out of scope is
never stopped, never tagged and never notified about, and interpretation never raises.

Out of scope means: no opt-in tag, the tag with another value or a differently-cased key, or a name outside
the configured prefix. The job is always described as InProgress, the worst case. The pure core gets many
examples; the handler, through botocore and the SageMaker fake (whose call log proves that no
StopTrainingJob was ever sent), fewer.
"""

from __future__ import annotations

import copy
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.stop_training_job import decision
from tests.lambdas.stop_training_job import event_fixtures as fixtures
from tests.lambdas.stop_training_job.conftest import Notifications, StopLambda
from tests.support.sagemaker_fake import FakeSageMaker, FakeTrainingJob

OUT_OF_SCOPE_PREFIX = "zz-"
SCENARIO_TAGS: dict[str, dict[str, str]] = {
    "untagged": {"project": "autostop-tests"},
    "wrong value": {"autostop": "disabled"},
    "wrong key": {"Autostop": "enabled"},
    "outside prefix": {"autostop": "enabled"},
}

INTERESTING_VALUES: list[Any] = [
    *decision.DETAIL_TYPES.values(),
    *(source.value for source in decision.EventSource),
    "IssuesFound",
    "InProgress",
    "Stopping",
    "Completed",
    "ALARM",
    "OK",
    fixtures.JOB_NAME,
    "sweep-lr-0002",
    f"{OUT_OF_SCOPE_PREFIX}sweep",
    f"{fixtures.JOB_NAME}/algo-1",
    "autostop-sweep-lr-0001/LossNotDecreasing",
    "autostop-sweep-lr-0002/VanishingGradient",
    fixtures.JOB_ARN,
    "LossNotDecreasing",
    "VanishingGradient",
    0,
    500,
]
KNOWN_KEYS = [
    "source",
    "detail-type",
    "detail",
    "resources",
    "id",
    "TrainingJobName",
    "TrainingJobArn",
    "TrainingJobStatus",
    "DebugRuleEvaluationStatuses",
    "ProfilerRuleEvaluationStatuses",
    "RuleConfigurationName",
    "RuleEvaluationStatus",
    "StatusDetails",
    "Step",
    "alarmName",
    "state",
    "value",
    "configuration",
    "metrics",
    "metricStat",
    "metric",
    "dimensions",
    "Host",
]

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=24)
    | st.sampled_from(INTERESTING_VALUES)
    | st.sampled_from([257, 1025, 300_000]).map(lambda size: "x" * size)  # past the API limits
)
JUNK = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def node_paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [path]
    if isinstance(node, dict):
        for key, child in node.items():
            paths += node_paths(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            paths += node_paths(child, (*path, index))
    return paths


# Half of the replacement values are meaningful to the Lambda (sources, statuses, job and alarm names), so
# mutated events often stay valid and reach the scope checks instead of all being malformed.
VALUES = st.one_of(st.sampled_from(INTERESTING_VALUES), JUNK)


@st.composite
def mutated_events(draw: st.DrawFn, max_mutations: int = 4) -> Any:
    """A documented fixture with random mutations: a node replaced, removed, or a key added."""
    event: Any = copy.deepcopy(fixtures.load(draw(st.sampled_from(fixtures.STOP_LAMBDA_FIXTURES))))
    for _ in range(draw(st.integers(min_value=0, max_value=max_mutations))):
        path = draw(st.sampled_from(node_paths(event)))
        operation = draw(st.sampled_from(["replace", "remove", "add"]))
        if not path:
            if operation == "replace":
                event = draw(VALUES)
            continue
        parent = event
        for key in path[:-1]:
            parent = parent[key]
        if operation == "replace":
            parent[path[-1]] = draw(VALUES)
        elif operation == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(KNOWN_KEYS))] = draw(VALUES)
        else:
            parent.insert(path[-1], draw(VALUES))
    return event


EVENTS = st.one_of(mutated_events(), JUNK)


def scope_config(scenario: str, dry_run: bool) -> decision.Config:
    prefix = OUT_OF_SCOPE_PREFIX if scenario == "outside prefix" else ""
    return decision.Config(job_prefix=prefix, dry_run=dry_run)


def described_in_progress(job_name: str) -> dict[str, object]:
    return {
        "TrainingJobName": job_name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{job_name}",
        "TrainingJobStatus": "InProgress",
    }


@settings(max_examples=600, derandomize=True, database=None, deadline=None)
@given(event=EVENTS, scenario=st.sampled_from(sorted(SCENARIO_TAGS)), dry_run=st.booleans())
def test_the_pure_core_never_stops_a_job_out_of_scope(event: Any, scenario: str, dry_run: bool) -> None:
    # GIVEN any event, settings, and an out-of-scope job described as InProgress
    config = scope_config(scenario, dry_run)
    # WHEN interpreted and decided
    facts = decision.interpret_event(event, config)
    if isinstance(facts, decision.IgnoredEvent):
        hypothesis.event(f"ignored: {facts.reason}")
        return
    hypothesis.assume(scenario != "outside prefix" or not facts.job_name.startswith(OUT_OF_SCOPE_PREFIX))
    verdict = decision.decide(
        facts,
        described_in_progress(facts.job_name),
        SCENARIO_TAGS[scenario],
        config,
        now=fixtures.SAMPLE_TIME,
    )
    # THEN never a stop, not even a dry-run one
    assert verdict.action is decision.Action.SKIP
    # (the same facts for an opted-in job: shows the generator reaches events that DO stop)
    opted_in = decision.decide(
        facts,
        described_in_progress(facts.job_name),
        {"autostop": "enabled"},
        config,
        now=fixtures.SAMPLE_TIME,
    )
    hypothesis.event(f"skipped: {verdict.reason}; if opted in: {opted_in.action}")


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(event=EVENTS)
def test_interpretation_never_raises(event: Any) -> None:
    outcome = decision.interpret_event(event, decision.Config())
    assert isinstance(outcome, decision.EventFacts | decision.IgnoredEvent)
    if isinstance(outcome, decision.IgnoredEvent):
        assert len(outcome.detail) < 400


@pytest.mark.slow
@settings(
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    event=mutated_events(max_mutations=2),
    scenario=st.sampled_from(sorted(SCENARIO_TAGS)),
    dry_run=st.booleans(),
)
def test_the_handler_never_stops_a_job_out_of_scope(
    event: Any,
    scenario: str,
    dry_run: bool,
    stop_lambda: StopLambda,
    sagemaker: FakeSageMaker,
    notifications: Notifications,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN every job SageMaker is asked about exists, runs, and is out of scope for this scenario
    tags = SCENARIO_TAGS[scenario]
    prefix = OUT_OF_SCOPE_PREFIX if scenario == "outside prefix" else ""

    def out_of_scope_job(name: str) -> FakeTrainingJob | None:
        if prefix and name.startswith(prefix):
            return None  # a job inside the prefix would be in scope: let it not exist
        return FakeTrainingJob(name, tags=dict(tags))

    sagemaker.forget_jobs()
    sagemaker.job_factory = out_of_scope_job
    monkeypatch.setenv("AUTOSTOP_JOB_PREFIX", prefix)
    monkeypatch.setenv("AUTOSTOP_DRY_RUN", "true" if dry_run else "false")
    # WHEN the event reaches the handler
    result = stop_lambda.invoke(event)
    # THEN a skip; SageMaker never received a stop or a tag, and nobody was notified
    assert result["action"] == "skip"
    hypothesis.event(f"handler: {result['reason']}")
    assert not [call for call in sagemaker.calls if call.operation in {"StopTrainingJob", "AddTags"}]
    assert notifications.received() == []
