"""cdk-nag (AwsSolutions, enforced by app.py) and cfn-lint on the synthesized app.

Both checks are shown to be able to fail: an injected violation fails the synth, removing our
acknowledgements fails it with exactly the findings they cover, and removing the narrow W3005 ignore makes
cfn-lint report exactly that warning.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from cfnlint import api as cfnlint_api

from infra import defaults
from tests.infra.conftest import Synthesized, load_app_module
from tests.support import cdk as cdk_support

Synth = Callable[..., Synthesized]

PSEUDO_ACCOUNT = "<AWS::Partition>:{service}:<AWS::Region>:<AWS::AccountId>"
TRAINING_JOB_FINDING = (
    f"AwsSolutions-IAM5[Resource::arn:{PSEUDO_ACCOUNT.format(service='sagemaker')}:training-job/*]"
)
ALARM_FINDING = (
    f"AwsSolutions-IAM5[Resource::arn:{PSEUDO_ACCOUNT.format(service='cloudwatch')}:alarm:autostop-*]"
)


def violations(outdir: Path) -> dict[str, list[str]]:
    """rule id -> construct paths, from CDK's policy validation report (written on every synth)."""
    report = json.loads((outdir / "validation-report.json").read_text())
    found: dict[str, list[str]] = {}
    for plugin in report["pluginReports"]:
        for violation in plugin["violations"]:
            paths = [construct["constructPath"] for construct in violation["violatingConstructs"]]
            found.setdefault(violation["ruleName"], []).extend(paths)
    return found


def synth_failing(outdir: Path, mutate: Callable[[Any], object] | None = None) -> dict[str, list[str]]:
    """Build app.py's app, apply ``mutate`` to the stack, synth: must fail; return the violations."""
    app = cdk_support.new_app(outdir=outdir)
    stack = load_app_module().build_app(app)
    if mutate is not None:
        mutate(stack)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    return violations(Path(app.outdir))


# --------------------------------------------------------------------------------------------- cdk-nag


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"autostop:jobPrefix": "sweep-", "autostop:stoppingRules": "LossNotDecreasing"},
        {"autostop:notificationEmail": "ml-team@example.com", "autostop:alarmPrefix": "stopper-"},
    ],
    ids=["defaults", "prefix-and-rules", "email-and-alarm-prefix"],
)
def test_app_has_zero_unacknowledged_nag_findings(synth: Synth, context: dict[str, Any]) -> None:
    # GIVEN app.py's app (AwsSolutionsChecks registered)  WHEN synthesized  THEN no violation is reported
    synthesized = synth(context)
    assert violations(synthesized.outdir) == {}


def test_nag_plugin_is_registered_and_fails_an_injected_violation(tmp_path: Path) -> None:
    # GIVEN an unencrypted-by-policy queue without DLQ or TLS policy slipped into the stack
    found = synth_failing(tmp_path, lambda stack: sqs.CfnQueue(stack, "InjectedPlainQueue"))
    # THEN the synth fails, naming the rules and the construct
    assert found["AwsSolutions-SQS3"] == ["Autostop/InjectedPlainQueue"]
    assert found["AwsSolutions-SQS4"] == ["Autostop/InjectedPlainQueue"]


def test_a_resource_star_grant_on_the_stop_role_fails_the_synth(tmp_path: Path) -> None:
    def grant_everything(stack: Any) -> None:
        stack.auto_stop.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sagemaker:StopTrainingJob"], resources=["*"])
        )

    found = synth_failing(tmp_path, grant_everything)
    assert found == {
        "AwsSolutions-IAM5[Resource::*]": ["Autostop/AutoStop/StopFunctionRole/DefaultPolicy/Resource"]
    }


def test_every_acknowledgement_is_needed_and_covers_exactly_its_finding(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN acknowledgements switched off (the render transformer and training stacks prove theirs in
    # tests/infra/test_render_transformer.py and test_training_resources.py; here: the auto-stop stack)
    made: list[tuple[str, str]] = []
    monkeypatch.setattr(
        defaults,
        "acknowledge",
        lambda scope, *, rule_id, reason: made.append((scope.node.path, rule_id)),
    )
    # WHEN synthesized  THEN exactly the acknowledged findings appear, on the stop function's and the alarm
    # janitor's role policies
    found = synth_failing(tmp_path)
    in_stack = "Autostop/"
    assert sorted(rule for path, rule in made if path.startswith(in_stack)) == sorted(
        [TRAINING_JOB_FINDING, ALARM_FINDING] * 2
    )
    policy = "Autostop/AutoStop/StopFunctionRole/DefaultPolicy/Resource"
    janitor_policy = "Autostop/AutoStop/AlarmJanitor/FunctionRole/DefaultPolicy/Resource"
    found_in_stack = {
        rule: sorted(path for path in paths if path.startswith(in_stack)) for rule, paths in found.items()
    }
    assert {rule: paths for rule, paths in found_in_stack.items() if paths} == {
        TRAINING_JOB_FINDING: sorted([policy, janitor_policy]),
        ALARM_FINDING: sorted([policy, janitor_policy]),
    }


@pytest.mark.parametrize("reason", ["", "because", "   needed         "])
def test_acknowledgement_without_a_real_reason_is_refused(reason: str) -> None:
    app = cdk_support.new_app()
    with pytest.raises(ValueError, match="must explain why"):
        defaults.acknowledge(app, rule_id="AwsSolutions-S1", reason=reason)


# --------------------------------------------------------------------------------------------- cfn-lint


def lint(template: dict[str, Any]) -> list[Any]:
    return list(cfnlint_api.lint(json.dumps(template)))


@pytest.mark.parametrize(
    "context",
    [{}, {"autostop:jobPrefix": "sweep-", "autostop:notificationEmail": "ml-team@example.com"}],
    ids=["defaults", "prefix-and-email"],
)
def test_cfn_lint_is_clean(synth: Synth, context: dict[str, Any]) -> None:
    matches = lint(synth(context).template_json)
    assert [str(match) for match in matches] == []


def test_w3005_is_ignored_only_where_cdk_emits_it(default_app: Synthesized) -> None:
    # GIVEN the template without the single resource-level cfn-lint ignore
    (function_id,) = [
        resource_id
        for resource_id, resource in default_app.resources("AWS::Lambda::Function").items()
        if "/AutoStop/StopFunction/" in resource["Metadata"]["aws:cdk:path"]
    ]
    template = copy.deepcopy(default_app.template_json)
    del template["Resources"][function_id]["Metadata"]["cfn-lint"]
    # WHEN linted  THEN exactly one W3005 appears, about the role CDK lists in DependsOn
    matches = lint(template)
    assert [match.rule.id for match in matches] == ["W3005"]
    assert "StopFunctionRole" in str(matches[0])
    # AND no other resource carries a cfn-lint ignore than the stack's Lambda functions (the stop Lambda
    # and the alarm janitor, made by the same defaults.python_function), each ignoring only W3005
    ignoring = [
        resource_id
        for resource_id, resource in default_app.template_json["Resources"].items()
        if "cfn-lint" in resource.get("Metadata", {})
    ]
    assert sorted(ignoring) == sorted(default_app.resources("AWS::Lambda::Function"))
    for resource_id in ignoring:
        assert default_app.template_json["Resources"][resource_id]["Metadata"]["cfn-lint"] == {
            "config": {"ignore_checks": ["W3005"]}
        }
