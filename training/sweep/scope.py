"""One scope: the launcher reads what the deployed stop stack acts on, and refuses a sweep outside it.

Why: the stop stack acts only on jobs whose name starts with its job prefix and that carry its opt-in tag,
and stops only for its stopping rules unless it is in dry run. A launcher that assumed ``autostop=enabled``
and any name would launch jobs nobody watches; a spec saying ``stopping.dry_run: true`` would still be
stopped by a stack that is not in dry run. The stack publishes its settings as one JSON document in an SSM
parameter (``infra/config.py`` ``AutostopSettings.scope_document``; the parameter's name is the stack output
``ScopeParameterName``); this module reads it and compares it with a spec. The SageMaker backend calls, at
launch: ``read_deployed_scope`` then ``check_spec`` (raises ``ScopeError`` listing every problem), and tags
every job with ``opt_in_tags(scope)``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from lambdas.stop_training_job import vocabulary
from training.sweep import spec as spec_module

SCOPE_PARAMETER_OUTPUT = "ScopeParameterName"
SUPPORTED_VERSION = 1


class ScopeError(ValueError):
    """The deployed scope is unreadable, or the sweep is outside it; ``problems`` names each finding."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        listing = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(
            f"the sweep is outside the deployed autostop scope: {len(problems)} problem(s)\n{listing}"
        )


@dataclasses.dataclass(frozen=True)
class DeployedScope:
    """What the deployed stop stack acts on. ``stopping_rules`` ``None``: every rule stops."""

    tag_key: str
    tag_value: str
    job_prefix: str
    stopping_rules: frozenset[str] | None
    dry_run: bool

    @classmethod
    def from_document(cls, text: str, *, source: str) -> DeployedScope:
        """Parse the stack's scope document; ``ScopeError`` names the source and what is wrong."""
        try:
            document: object = json.loads(text)
        except json.JSONDecodeError:
            raise ScopeError([f"{source}: not a JSON document"]) from None
        if not isinstance(document, Mapping):
            raise ScopeError([f"{source}: expected a JSON object"])
        if document.get("version") != SUPPORTED_VERSION:
            raise ScopeError([f"{source}: scope document version {document.get('version')!r}, expected 1"])
        problems: list[str] = []
        strings = {key: document.get(key) for key in ("tagKey", "tagValue", "jobPrefix")}
        for key, value in strings.items():
            if not isinstance(value, str):
                problems.append(f"{source}: {key} must be a string")
        rules = document.get("stoppingRules")
        stopping_rules: frozenset[str] | None = None
        if rules != vocabulary.ALL_RULES:
            if (
                not isinstance(rules, list)
                or not rules
                or not all(vocabulary.is_rule_name(rule) for rule in rules)
            ):
                problems.append(f"{source}: stoppingRules must be '*' or a list of rule names")
            else:
                stopping_rules = frozenset(rules)
        dry_run = document.get("dryRun")
        if not isinstance(dry_run, bool):
            problems.append(f"{source}: dryRun must be a boolean")
        if problems:
            raise ScopeError(problems)
        return cls(
            tag_key=str(strings["tagKey"]),
            tag_value=str(strings["tagValue"]),
            job_prefix=str(strings["jobPrefix"]),
            stopping_rules=stopping_rules,
            dry_run=bool(dry_run),
        )


def read_deployed_scope(ssm: Any, parameter_name: str) -> DeployedScope:
    """``ssm:GetParameter`` of the stack's scope parameter (``ssm`` is a boto3 SSM client)."""
    answer = ssm.get_parameter(Name=parameter_name)
    return DeployedScope.from_document(
        str(answer["Parameter"]["Value"]), source=f"SSM parameter {parameter_name}"
    )


def opt_in_tags(scope: DeployedScope) -> dict[str, str]:
    """The tag every job of the sweep must carry for the stack to act on it."""
    return {scope.tag_key: scope.tag_value}


def _rules_text(rules: frozenset[str] | None) -> str:
    return vocabulary.ALL_RULES if rules is None else ", ".join(sorted(rules))


def scope_problems(spec: spec_module.SweepSpec, scope: DeployedScope) -> list[str]:
    """Every way the sweep would fall outside the deployed scope, or mean something else by ``stopping``."""
    problems: list[str] = []
    prefix = scope.job_prefix.lower()  # compared as the stop Lambda compares it
    outside = [job.name for job in spec.jobs() if not job.name.lower().startswith(prefix)]
    if outside:
        problems.append(
            f"name: job names must start with the deployed job prefix {scope.job_prefix!r} "
            f"({outside[0]!r} does not); rename the sweep"
        )
    spec_value = spec.tags.get(scope.tag_key)
    if spec_value is not None and spec_value != scope.tag_value:
        problems.append(
            f"tags.{scope.tag_key}: the deployed stack acts on {scope.tag_key}={scope.tag_value}, "
            f"the spec sets {spec_value!r}"
        )
    if spec.stopping.rules != scope.stopping_rules:
        problems.append(
            f"stopping.rules: the spec stops on {_rules_text(spec.stopping.rules)}, the deployed stack on "
            f"{_rules_text(scope.stopping_rules)}; make them the same (or redeploy with "
            "autostop:stoppingRules)"
        )
    if spec.stopping.dry_run != scope.dry_run:
        problems.append(
            f"stopping.dry_run: the spec says {str(spec.stopping.dry_run).lower()}, the deployed stack "
            f"{str(scope.dry_run).lower()} (redeploy with autostop:dryRun, or change the spec)"
        )
    return problems


def check_spec(spec: spec_module.SweepSpec, scope: DeployedScope) -> None:
    """Refuse a sweep outside the deployed scope: ``ScopeError`` listing every problem."""
    problems = scope_problems(spec, scope)
    if problems:
        raise ScopeError(problems)
