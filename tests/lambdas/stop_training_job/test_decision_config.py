"""Settings: parsed from a plain mapping, documented defaults, and one clear error naming every bad value."""

from __future__ import annotations

import pytest

from lambdas.stop_training_job import decision

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:autostop-notifications"


def test_missing_variables_take_the_documented_defaults() -> None:
    # GIVEN an environment without any AUTOSTOP_* variable
    # WHEN the settings are parsed
    config = decision.config_from_environment({})
    # THEN every default of the contract applies
    assert config == decision.Config(
        tag_key="autostop",
        tag_value="enabled",
        job_prefix="",
        stopping_rules=None,
        dry_run=False,
        topic_arn="",
        alarm_prefix="autostop-",
    )
    assert config.stops_rule("AnyRule")


def test_every_variable_is_read() -> None:
    # GIVEN every variable set to a non-default value
    environment = {
        "AUTOSTOP_TAG_KEY": "team:autostop",
        "AUTOSTOP_TAG_VALUE": "on",
        "AUTOSTOP_JOB_PREFIX": "sweep-",
        "AUTOSTOP_STOPPING_RULES": " LossNotDecreasing , VanishingGradient ",
        "AUTOSTOP_DRY_RUN": "TRUE",
        "AUTOSTOP_TOPIC_ARN": TOPIC_ARN,
        "AUTOSTOP_ALARM_PREFIX": "stopper-",
    }
    # WHEN parsed
    config = decision.config_from_environment(environment)
    # THEN each one lands in its field, rule names trimmed, booleans case-insensitive
    assert config.tag_key == "team:autostop"
    assert config.tag_value == "on"
    assert config.job_prefix == "sweep-"
    assert config.stopping_rules == frozenset({"LossNotDecreasing", "VanishingGradient"})
    assert config.dry_run is True
    assert config.topic_arn == TOPIC_ARN
    assert config.alarm_prefix == "stopper-"
    assert config.stops_rule("VanishingGradient")
    assert not config.stops_rule("Overfit")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AUTOSTOP_DRY_RUN", "yes", "AUTOSTOP_DRY_RUN must be 'true' or 'false'"),
        ("AUTOSTOP_DRY_RUN", "", "AUTOSTOP_DRY_RUN must be 'true' or 'false'"),
        ("AUTOSTOP_STOPPING_RULES", "", "AUTOSTOP_STOPPING_RULES has an empty rule name"),
        ("AUTOSTOP_STOPPING_RULES", "A,,B", "AUTOSTOP_STOPPING_RULES has an empty rule name"),
        ("AUTOSTOP_STOPPING_RULES", "*,LossNotDecreasing", "'*' alone"),
        ("AUTOSTOP_STOPPING_RULES", "Loss Not Decreasing", "invalid rule configuration names"),
        ("AUTOSTOP_JOB_PREFIX", "sweep_", "AUTOSTOP_JOB_PREFIX must be empty or 1-63"),
        ("AUTOSTOP_JOB_PREFIX", "-sweep", "AUTOSTOP_JOB_PREFIX must be empty or 1-63"),
        ("AUTOSTOP_JOB_PREFIX", "s" * 64, "AUTOSTOP_JOB_PREFIX must be empty or 1-63"),
        ("AUTOSTOP_TAG_KEY", "", "AUTOSTOP_TAG_KEY must be 1-128"),
        ("AUTOSTOP_TAG_KEY", "aws:autostop", "reserved 'aws:'"),
        ("AUTOSTOP_TAG_KEY", "auto*stop", "AUTOSTOP_TAG_KEY must be 1-128"),
        ("AUTOSTOP_TAG_VALUE", "v" * 257, "AUTOSTOP_TAG_VALUE must be 0-256"),
        (
            "AUTOSTOP_TOPIC_ARN",
            "autostop-notifications",
            "AUTOSTOP_TOPIC_ARN must be empty or an SNS topic ARN",
        ),
        ("AUTOSTOP_ALARM_PREFIX", "", "AUTOSTOP_ALARM_PREFIX must be 1-128"),
        ("AUTOSTOP_ALARM_PREFIX", "auto stop", "AUTOSTOP_ALARM_PREFIX must be 1-128"),
    ],
)
def test_a_bad_value_is_a_clear_error_naming_its_variable(variable: str, value: str, message: str) -> None:
    # GIVEN one bad setting
    # WHEN parsed
    # THEN ConfigError says which variable and what is allowed
    with pytest.raises(decision.ConfigError, match=message.replace("*", r"\*")):
        decision.config_from_environment({variable: value})


def test_all_problems_are_reported_at_once() -> None:
    # GIVEN three bad settings
    environment = {"AUTOSTOP_DRY_RUN": "maybe", "AUTOSTOP_TAG_KEY": "", "AUTOSTOP_ALARM_PREFIX": ""}
    # WHEN parsed
    with pytest.raises(decision.ConfigError) as raised:
        decision.config_from_environment(environment)
    # THEN one error lists all three, so one deploy fixes them all
    for variable in ("AUTOSTOP_DRY_RUN", "AUTOSTOP_TAG_KEY", "AUTOSTOP_ALARM_PREFIX"):
        assert variable in str(raised.value)


def test_a_huge_bad_value_is_not_echoed_in_full() -> None:
    # GIVEN a megabyte of garbage in a variable
    # WHEN parsed
    with pytest.raises(decision.ConfigError) as raised:
        decision.config_from_environment({"AUTOSTOP_DRY_RUN": "x" * 1_000_000})
    # THEN the message stays short
    assert len(str(raised.value)) < 500


def test_config_built_directly_is_validated_too() -> None:
    # GIVEN the local sweep runner building settings without an environment
    # WHEN a value is invalid
    # THEN the same validation applies
    with pytest.raises(decision.ConfigError, match="AUTOSTOP_STOPPING_RULES must name at least one rule"):
        decision.Config(stopping_rules=frozenset())
    with pytest.raises(decision.ConfigError, match="AUTOSTOP_DRY_RUN must be a boolean"):
        decision.Config(dry_run="false")  # type: ignore[arg-type]


def test_scope_checks() -> None:
    # GIVEN a prefix and a custom opt-in tag
    config = decision.Config(tag_key="team", tag_value="ml", job_prefix="sweep-")
    # THEN the name must start with the prefix, and the tag must match exactly (key and value)
    assert config.job_name_in_scope("sweep-lr-0001")
    assert not config.job_name_in_scope("other-sweep-lr-0001")
    assert config.tags_in_scope({"team": "ml", "x": "y"})
    assert not config.tags_in_scope({"team": "ML"})
    assert not config.tags_in_scope({"Team": "ml"})
    assert not config.tags_in_scope({})
