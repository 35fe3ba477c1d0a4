"""Settings from cdk.json context: defaults, accepted forms, and a clear error for every bad value."""

from __future__ import annotations

from typing import Any

import pytest

from infra import config, defaults
from lambdas.stop_training_job import vocabulary
from tests.support import cdk as cdk_support
from training.debugger import contract


def from_context(**values: Any) -> config.AutostopSettings:
    """Settings from a context holding ``values`` (keys without the ``autostop:`` prefix)."""
    context = {f"autostop:{key}": value for key, value in values.items()}
    return config.settings_from_context(context.get)


def test_absent_keys_take_the_documented_defaults() -> None:
    # GIVEN an empty context  WHEN read  THEN every default of the issue applies
    settings = config.settings_from_context(lambda key: None)
    assert settings == config.AutostopSettings()
    assert settings.tag_key == "autostop"
    assert settings.tag_value == "enabled"
    assert settings.job_prefix == ""
    assert settings.stopping_rules is None
    assert settings.stops_on_every_rule
    assert settings.stopping_rules_setting == "*"
    assert settings.dry_run is False
    assert settings.notification_email == ""
    assert settings.alarm_prefix == "autostop-"
    assert settings.stop_function_reserved_concurrency == 5
    assert settings.log_retention_days == 30


def test_cdk_json_carries_every_documented_key_with_its_default() -> None:
    context = cdk_support.cdk_json_context()
    ours = {key: value for key, value in context.items() if key.startswith(config.CONTEXT_PREFIX)}
    assert ours == {key: entry.default for key, entry in config.CONTEXT_KEYS.items()}
    assert config.settings_from_context(context.get) == config.AutostopSettings()


@pytest.mark.parametrize("key", sorted(config.CONTEXT_KEYS))
def test_every_key_is_documented_in_the_module_docstring(key: str) -> None:
    assert config.__doc__ is not None
    assert f"``{key}``" in config.__doc__


def test_command_line_strings_are_accepted() -> None:
    # GIVEN values as `cdk synth -c key=value` passes them (strings)
    settings = from_context(
        dryRun="TRUE",
        stopFunctionReservedConcurrency=" 7 ",
        logRetentionDays="90",
        stoppingRules=" LossNotDecreasing , VanishingGradient ",
    )
    assert settings.dry_run is True
    assert settings.stop_function_reserved_concurrency == 7
    assert settings.log_retention_days == 90
    assert settings.stopping_rules == ("LossNotDecreasing", "VanishingGradient")
    assert settings.stopping_rules_setting == "LossNotDecreasing,VanishingGradient"


def test_json_forms_are_accepted() -> None:
    settings = from_context(
        dryRun=False, stoppingRules=["LowGPUUtilization"], stopFunctionReservedConcurrency=1
    )
    assert settings.dry_run is False
    assert settings.stopping_rules == ("LowGPUUtilization",)
    assert from_context(stoppingRules=["*"]).stopping_rules is None


def test_per_job_alarm_name_prefix_combines_both_prefixes() -> None:
    assert (
        from_context(alarmPrefix="stopper-", jobPrefix="sweep-").per_job_alarm_name_prefix == "stopper-sweep-"
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("tagKey", ""),
        ("tagKey", "aws:createdBy"),
        ("tagKey", "opt in"),
        ("tagKey", "team*"),
        ("tagKey", "autostop:stopped-at"),  # the stop Lambda writes this one
        ("tagKey", "k" * 129),
        ("tagKey", 5),
        ("tagValue", ""),
        ("tagValue", "${aws:username}"),
        ("jobPrefix", "sweep_"),
        ("jobPrefix", "-sweep"),
        ("jobPrefix", "sweep*"),
        ("jobPrefix", "s" * 63),
        ("stoppingRules", ""),
        ("stoppingRules", "LossNotDecreasing,"),
        ("stoppingRules", "*,LossNotDecreasing"),
        ("stoppingRules", "Loss*"),
        ("stoppingRules", "Loss NotDecreasing"),
        ("stoppingRules", "-LossNotDecreasing"),
        ("stoppingRules", "A,A"),
        ("stoppingRules", []),
        ("stoppingRules", 3),
        ("dryRun", "yes"),
        ("dryRun", 1),
        ("notificationEmail", "not-an-email"),
        ("notificationEmail", "two@example.com,three@example.com"),
        ("alarmPrefix", ""),
        ("alarmPrefix", "autostop-*"),
        ("alarmPrefix", "autostop/"),
        ("stopFunctionReservedConcurrency", 0),
        ("stopFunctionReservedConcurrency", 101),
        ("stopFunctionReservedConcurrency", True),
        ("stopFunctionReservedConcurrency", "five"),
        ("logRetentionDays", 31),
        ("logRetentionDays", "forever"),
    ],
)
def test_bad_values_fail_with_the_key_and_the_value(key: str, value: Any) -> None:
    # GIVEN a bad value  WHEN read  THEN ConfigurationError names the context key and shows the value
    with pytest.raises(config.ConfigurationError) as raised:
        from_context(**{key: value})
    assert raised.value.key == f"autostop:{key}"
    assert f"'autostop:{key}'" in str(raised.value)
    assert "got" in str(raised.value)


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(config.ConfigurationError, match="autostop:alarmPrefix"):
        config.AutostopSettings(alarm_prefix="")
    with pytest.raises(config.ConfigurationError, match="autostop:stoppingRules"):
        config.AutostopSettings(stopping_rules=())


def test_every_allowed_retention_maps_to_a_cdk_retention() -> None:
    assert sorted(defaults.LOG_RETENTION_BY_DAYS) == sorted(config.LOG_RETENTION_DAYS_ALLOWED)
    with pytest.raises(ValueError, match="no 31-day retention"):
        defaults.log_retention(31)


@pytest.mark.parametrize("name", ["team:Loss", "Loss/NotDecreasing", "a=b+c@d.e_f-g", "R" * 256])
def test_stopping_rules_accept_every_name_the_lambda_the_spec_and_the_container_accept(name: str) -> None:
    # GIVEN a rule name valid for the decision core, the launcher's spec and the container's contract
    assert vocabulary.is_rule_name(name)
    assert contract.RULE_NAME_PATTERN.fullmatch(name)
    # WHEN the stack reads it as a stopping rule, THEN synth accepts it too (one definition of rule names)
    assert from_context(stoppingRules=[name]).stopping_rules == (name,)


@pytest.mark.parametrize("name", ["", "-Loss", "Loss Not", "Loss*", "R" * 257, "Lösung"])
def test_stopping_rules_refuse_every_name_the_lambda_refuses(name: str) -> None:
    assert not vocabulary.is_rule_name(name)
    with pytest.raises(config.ConfigurationError, match="autostop:stoppingRules"):
        from_context(stoppingRules=[name])
