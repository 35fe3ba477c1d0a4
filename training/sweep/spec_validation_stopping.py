"""Validating what stops the sweep's jobs: ``rules``, ``debugger``, ``stopping`` and ``cross_job``.

Why a module of its own: these sections configure the stop path, and each is checked against the part that
will run it, so a mistake fails before the sweep, not in the middle of it: rule names and parameters
against the in-container evaluator's rules (``training/debugger/rules.py``, imported lazily: it loads
smdebug), collection schedules against the container's Debugger config parser, ``stopping.rules`` against
the configured rules, and ``cross_job`` against the cross-job core's own settings checks
(``lambdas/stop_training_job/cross_job.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lambdas.stop_training_job import cross_job, decision
from training.sweep.spec_parsing import Problems, describe, join_path
from training.sweep.spec_schema import MAX_RULES, CrossJobSpec, RuleSpec, StoppingSettings

# The five rules the in-container evaluator implements (training/debugger/rules.py RULES); used only when
# that module cannot be imported.
FALLBACK_RULES = ("LossNotDecreasing", "VanishingGradient", "ExplodingTensor", "Overfit", "LatentClusterRule")
FRAMEWORK_RULE_PARAMETERS = ("rule_to_invoke", "start_step", "end_step")
CROSS_JOB_KEYS = (
    "policy",
    "grace_period",
    "reduction_factor",
    "rung_levels",
    "min_reports",
    "keep_best",
    "rejudge",
    "dry_run",
)


def _available_rules() -> Mapping[str, Mapping[str, Callable[[str], Any]] | None]:
    """Rule name -> its parameter parsers (``None`` when the evaluator's module cannot be imported)."""
    try:
        from training.debugger import rules as rules_module
    except ImportError:
        return dict.fromkeys(FALLBACK_RULES)
    return {name: rule.PARAMETERS for name, rule in rules_module.RULES.items()}


def parse_rules(value: object, problems: Problems) -> tuple[RuleSpec, ...]:
    if not isinstance(value, list) or not value:
        problems.add("rules", f"expected a non-empty list of rule configurations, got {describe(value)}")
        return ()
    if len(value) > MAX_RULES:
        problems.add("rules", f"at most {MAX_RULES} rules (SageMaker's limit), got {len(value)}")
    available = _available_rules()
    rules: list[RuleSpec] = []
    for index, entry in enumerate(value):
        path = join_path("rules", index)
        if isinstance(entry, str):
            entry = {"RuleConfigurationName": entry}
        mapping = problems.mapping(entry, path)
        if mapping is None:
            continue
        problems.known_keys(mapping, path, ("RuleConfigurationName", "RuleParameters"))
        name = problems.text(
            mapping.get("RuleConfigurationName"),
            join_path(path, "RuleConfigurationName"),
            pattern=decision.RULE_NAME_PATTERN,
            what="a rule configuration name (letters, digits, _.:=+@/-)",
        )
        raw_parameters = problems.mapping(
            mapping.get("RuleParameters", {}) or {}, join_path(path, "RuleParameters")
        )
        if name is None or raw_parameters is None:
            continue
        parameters: dict[str, str] = {}
        for key, item in raw_parameters.items():
            key_path = join_path(join_path(path, "RuleParameters"), key)
            if isinstance(item, bool):
                parameters[key] = "True" if item else "False"
            elif isinstance(item, str | int | float):
                parameters[key] = str(item)
            else:
                problems.add(key_path, f"expected a string or a number, got {describe(item)}")
        rule = RuleSpec(name, parameters)
        if rule.rule_to_invoke not in available:
            problems.add(
                join_path(path, "RuleConfigurationName")
                if "rule_to_invoke" not in parameters
                else join_path(join_path(path, "RuleParameters"), "rule_to_invoke"),
                f"unknown rule {rule.rule_to_invoke!r} (the in-container evaluator has: "
                f"{', '.join(available)})",
            )
            continue
        if any(existing.name == name for existing in rules):
            problems.add(join_path(path, "RuleConfigurationName"), f"{name!r} is configured twice")
            continue
        _check_rule_parameters(
            rule, available[rule.rule_to_invoke], join_path(path, "RuleParameters"), problems
        )
        rules.append(rule)
    return tuple(rules)


def _check_rule_parameters(
    rule: RuleSpec, parsers: Mapping[str, Callable[[str], Any]] | None, path: str, problems: Problems
) -> None:
    for key, text in rule.parameters.items():
        key_path = join_path(path, key)
        if key in FRAMEWORK_RULE_PARAMETERS:
            if key != "rule_to_invoke" and not re.fullmatch(r"[0-9]+|none|None|", text):
                problems.add(key_path, f"expected a step number, got {text[:40]!r}")
            continue
        if parsers is None:
            continue
        if key not in parsers:
            known = ", ".join(sorted(parsers)) or "none"
            problems.add(key_path, f"unknown parameter of {rule.rule_to_invoke} (known: {known})")
            continue
        try:
            parsers[key](text)
        except ValueError as error:
            problems.add(key_path, str(error))


def parse_debugger(value: object, problems: Problems) -> dict[str, dict[str, str]]:
    mapping = problems.mapping(value, "debugger")
    if mapping is None:
        return {}
    problems.known_keys(mapping, "debugger", ("collections",))
    collections = problems.mapping(mapping.get("collections", {}), "debugger.collections")
    parsed: dict[str, dict[str, str]] = {}
    for name, parameters in (collections or {}).items():
        path = join_path("debugger.collections", name)
        if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", name):
            problems.add(path, "collection names are letters, digits and _")
            continue
        entries = problems.mapping(parameters if parameters is not None else {}, path)
        if entries is None:
            continue
        parsed[name] = {}
        for key, item in entries.items():
            if isinstance(item, bool) or not isinstance(item, str | int):
                problems.add(join_path(path, key), f"expected a string or an integer, got {describe(item)}")
            else:
                parsed[name][key] = str(item)
    _check_collections(parsed, problems)
    return parsed


def _check_collections(collections: Mapping[str, Mapping[str, str]], problems: Problems) -> None:
    """Validate with the container's own parser, so a bad schedule fails here, not inside every job."""
    if not collections:
        return
    try:
        from training.debugger import config as debugger_config
    except ImportError:
        return
    document = {
        "CollectionConfigurations": [
            {"CollectionName": name, "CollectionParameters": dict(parameters)}
            for name, parameters in collections.items()
        ]
    }
    try:
        hook = debugger_config.parse_debug_hook_config(document, source="debugger.collections")
    except debugger_config.DebuggerConfigError as error:
        problems.add("debugger.collections", str(error).removeprefix("debugger.collections: "))
        return
    for warning in hook.warnings:
        problems.add("debugger.collections", warning)


def parse_stopping(value: object, rules: Sequence[RuleSpec], problems: Problems) -> StoppingSettings:
    mapping = problems.mapping(value, "stopping")
    if mapping is None:
        return StoppingSettings()
    problems.known_keys(mapping, "stopping", ("rules", "dry_run"))
    dry_run = problems.boolean(mapping.get("dry_run", False), "stopping.dry_run")
    raw = mapping.get("rules", decision.ALL_RULES)
    stopping_rules: frozenset[str] | None = None
    if raw != decision.ALL_RULES:
        if not isinstance(raw, list) or not raw or not all(isinstance(item, str) for item in raw):
            problems.add(
                "stopping.rules", f"expected '*' or a list of rule configuration names, got {describe(raw)}"
            )
        else:
            configured = {rule.name for rule in rules}
            for index, item in enumerate(raw):
                if item not in configured:
                    problems.add(join_path("stopping.rules", index), f"{item!r} is not a configured rule")
            stopping_rules = frozenset(raw)
    return StoppingSettings(stopping_rules, bool(dry_run))


def parse_cross_job(value: object, problems: Problems) -> CrossJobSpec | None:
    mapping = problems.mapping(value, "cross_job")
    if mapping is None:
        return None
    problems.known_keys(mapping, "cross_job", CROSS_JOB_KEYS)
    before = len(problems.items)
    options: dict[str, Any] = {}
    policy = mapping.get("policy", cross_job.Policy.ASHA.value)
    if policy not in {item.value for item in cross_job.Policy}:
        problems.add("cross_job.policy", f"{describe(policy)} is not one of {', '.join(cross_job.Policy)}")
    else:
        options["policy"] = cross_job.Policy(policy)
    for key in ("grace_period", "min_reports", "keep_best"):
        if key in mapping:
            options[key] = problems.integer(mapping[key], f"cross_job.{key}", minimum=1)
    if "reduction_factor" in mapping:
        options["reduction_factor"] = problems.number(
            mapping["reduction_factor"], "cross_job.reduction_factor"
        )
    if "rung_levels" in mapping:
        levels = mapping["rung_levels"]
        if not isinstance(levels, list) or not levels:
            problems.add("cross_job.rung_levels", f"expected a list of step counts, got {describe(levels)}")
        else:
            checked = [
                problems.integer(level, join_path("cross_job.rung_levels", index), minimum=1)
                for index, level in enumerate(levels)
            ]
            options["rung_levels"] = tuple(level for level in checked if level is not None)
    for key in ("rejudge", "dry_run"):
        if key in mapping:
            options[key] = problems.boolean(mapping[key], f"cross_job.{key}")
    if len(problems.items) > before:
        return None
    section = CrossJobSpec(**options)
    # The core's own checks (reduction factor >= 2, min_reports >= 2, ...), with a placeholder budget.
    try:
        section.settings(
            goal=cross_job.MAXIMIZE,
            max_steps=max(2, *section.rung_levels, (section.grace_period or 1) + 1),
        )
    except cross_job.SettingsError as error:
        problems.add("cross_job", str(error))
        return None
    return section
