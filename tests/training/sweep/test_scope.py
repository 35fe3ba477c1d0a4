"""The launcher reads the deployed stop stack's scope from SSM (moto over HTTP) and refuses a sweep outside
it: a job prefix its names do not start with, another opt-in tag value, other stopping rules or dry run.

The parameter's value is the stack's own document (``AutostopSettings.scope_document``; the synthesized
template carries exactly it, tests/infra/test_auto_stop_stack.py). SSM's GetParameter returns a String
parameter's value as stored (AWS Systems Manager API Reference, GetParameter).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.config import AutostopSettings
from training.sweep import scope
from training.sweep import spec as spec_module

DEMO_SPEC = Path(__file__).resolve().parents[3] / "training" / "sweep" / "specs" / "demo.yaml"
PARAMETER = "/autostop/AutostopStack/scope"


@pytest.fixture
def demo() -> spec_module.SweepSpec:
    return spec_module.load_spec(DEMO_SPEC)


def deployed(settings: AutostopSettings) -> scope.DeployedScope:
    """Publish the stack's scope document in moto's SSM, then read it as the launcher does."""
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name=PARAMETER, Value=settings.scope_document(), Type="String", Overwrite=True)
    return scope.read_deployed_scope(ssm, PARAMETER)


def test_a_sweep_inside_the_default_scope_passes_and_gets_the_opt_in_tag(
    moto_endpoint: str, demo: spec_module.SweepSpec
) -> None:
    # GIVEN the stack deployed with its defaults
    deployed_scope = deployed(AutostopSettings())
    # WHEN the demo sweep is checked, THEN it is in scope, and its jobs are tagged autostop=enabled
    assert scope.scope_problems(demo, deployed_scope) == []
    scope.check_spec(demo, deployed_scope)
    assert scope.opt_in_tags(deployed_scope) == {"autostop": "enabled"}


def test_a_custom_tag_and_a_prefix_in_any_case_are_honoured(
    moto_endpoint: str, demo: spec_module.SweepSpec
) -> None:
    # GIVEN a stack with a custom opt-in tag and the job prefix "Demo-" (its jobs are demo-001, ...)
    deployed_scope = deployed(AutostopSettings(tag_key="team:stop", tag_value="yes", job_prefix="Demo-"))
    # THEN the jobs are in scope (names compared without case, as the stop Lambda compares them) and are
    # tagged with the deployed tag, not a hard-coded one
    assert scope.scope_problems(demo, deployed_scope) == []
    assert scope.opt_in_tags(deployed_scope) == {"team:stop": "yes"}


def test_every_way_out_of_scope_is_refused_at_once(moto_endpoint: str, demo: spec_module.SweepSpec) -> None:
    # GIVEN a stack acting on other names, stopping only for LossNotDecreasing, in dry run
    deployed_scope = deployed(
        AutostopSettings(job_prefix="prod-", stopping_rules=("LossNotDecreasing",), dry_run=True)
    )
    # ... and a spec that also sets the opt-in tag to another value
    spec = dataclasses.replace(demo, tags={**demo.tags, "autostop": "disabled"})
    # WHEN checked, THEN one error lists every problem, each naming the spec's key
    with pytest.raises(scope.ScopeError) as raised:
        scope.check_spec(spec, deployed_scope)
    assert [problem.split(":")[0] for problem in raised.value.problems] == [
        "name",
        "tags.autostop",
        "stopping.rules",
        "stopping.dry_run",
    ]
    assert "'demo-001' does not" in str(raised.value)
    assert "the spec stops on *, the deployed stack on LossNotDecreasing" in str(raised.value)
    assert "stopping.dry_run: the spec says false, the deployed stack true" in str(raised.value)


def test_a_dry_run_sweep_is_refused_by_a_stack_that_stops(
    moto_endpoint: str, demo: spec_module.SweepSpec
) -> None:
    # GIVEN a spec asking for a dry run, and a stack that stops for real
    spec = dataclasses.replace(demo, stopping=spec_module.StoppingSettings(rules=None, dry_run=True))
    # THEN the sweep is refused: the stack would stop its jobs
    assert scope.scope_problems(spec, deployed(AutostopSettings())) == [
        "stopping.dry_run: the spec says true, the deployed stack false (redeploy with autostop:dryRun, or "
        "change the spec)"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "not a JSON document"),
        ("[]", "expected a JSON object"),
        ('{"version": 2}', "scope document version 2, expected 1"),
        (
            '{"version": 1, "tagKey": 1, "tagValue": "", "jobPrefix": "", "stoppingRules": "*", '
            '"dryRun": false}',
            "tagKey must be a string",
        ),
    ],
)
def test_an_unreadable_scope_is_one_clear_error(moto_endpoint: str, value: str, message: str) -> None:
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name=PARAMETER, Value=value, Type="String")
    with pytest.raises(scope.ScopeError, match=message):
        scope.read_deployed_scope(ssm, PARAMETER)


def test_a_missing_parameter_is_ssms_own_error(moto_endpoint: str) -> None:
    with pytest.raises(ClientError, match="ParameterNotFound"):
        scope.read_deployed_scope(boto3.client("ssm"), "/autostop/no-such-stack/scope")
