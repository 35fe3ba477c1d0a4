"""The stop path's settings: ``cdk.json`` context -> the Lambda's environment -> ``Config``.

Why apart from the decision: the settings are parsed once per invocation (and by the local sweep runner and
the launcher's scope check from other sources), and every bad value must be named in one error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from .vocabulary import (
    ALARM_PREFIX_PATTERN,
    ALL_RULES,
    DEFAULT_ALARM_PREFIX,
    DEFAULT_TAG_KEY,
    DEFAULT_TAG_VALUE,
    ENV_ALARM_PREFIX,
    ENV_DRY_RUN,
    ENV_JOB_PREFIX,
    ENV_STOPPING_RULES,
    ENV_SWEEP_TABLE,
    ENV_TAG_KEY,
    ENV_TAG_VALUE,
    ENV_TOPIC_ARN,
    JOB_PREFIX_PATTERN,
    RULE_NAME_PATTERN,
    TABLE_NAME_PATTERN,
    TAG_KEY_PATTERN,
    TAG_VALUE_PATTERN,
    TOPIC_ARN_PATTERN,
)


class ConfigError(ValueError):
    """The settings are unusable. The message lists every problem, each naming its environment variable."""


@dataclasses.dataclass(frozen=True)
class Config:
    """What the operator chose: ``cdk.json`` context -> the Lambda's environment, or the sweep runner's flags.

    ``stopping_rules`` is ``None`` for "every rule stops" (``*``), else the rule configuration names that
    stop.
    ``topic_arn`` may be empty (no notification), which the local runner uses; the stack always sets it.
    ``sweep_table`` is the DynamoDB table of cross-job rung objectives; empty where nothing records them
    (the local runner keeps its own), in which case the Lambda refuses rung reports loudly.
    """

    tag_key: str = DEFAULT_TAG_KEY
    tag_value: str = DEFAULT_TAG_VALUE
    job_prefix: str = ""
    stopping_rules: frozenset[str] | None = None
    dry_run: bool = False
    topic_arn: str = ""
    alarm_prefix: str = DEFAULT_ALARM_PREFIX
    sweep_table: str = ""

    def __post_init__(self) -> None:
        problems = _config_problems(self)
        if problems:
            raise ConfigError("invalid autostop settings: " + "; ".join(problems))

    def stops_rule(self, rule_name: str) -> bool:
        """Whether an issue found by this rule configuration stops the job."""
        return self.stopping_rules is None or rule_name in self.stopping_rules

    def job_name_in_scope(self, job_name: str) -> bool:
        """Without case: the name may come from an ARN that SageMaker lowercased."""
        return job_name.lower().startswith(self.job_prefix.lower())

    def tags_in_scope(self, tags: Mapping[str, str]) -> bool:
        """The opt-in: the job carries the tag key with exactly the tag value."""
        return tags.get(self.tag_key) == self.tag_value


def _config_problems(config: Config) -> list[str]:
    problems: list[str] = []
    if not isinstance(config.tag_key, str) or not TAG_KEY_PATTERN.fullmatch(config.tag_key):
        problems.append(f"{ENV_TAG_KEY} must be 1-128 tag characters (letters, digits, spaces, _.:/=+-@)")
    elif config.tag_key.lower().startswith("aws:"):
        problems.append(f"{ENV_TAG_KEY} must not start with the reserved 'aws:'")
    if not isinstance(config.tag_value, str) or not TAG_VALUE_PATTERN.fullmatch(config.tag_value):
        problems.append(f"{ENV_TAG_VALUE} must be 0-256 tag characters (letters, digits, spaces, _.:/=+-@)")
    if not isinstance(config.job_prefix, str) or (
        config.job_prefix and not JOB_PREFIX_PATTERN.fullmatch(config.job_prefix)
    ):
        problems.append(
            f"{ENV_JOB_PREFIX} must be empty or 1-63 training-job name characters (letters, digits, '-'), "
            "starting with a letter or digit"
        )
    if config.stopping_rules is not None:
        if not isinstance(config.stopping_rules, frozenset) or not config.stopping_rules:
            problems.append(f"{ENV_STOPPING_RULES} must name at least one rule, or be '*' for all rules")
        else:
            bad = sorted(
                repr(name)[:80]
                for name in config.stopping_rules
                if not isinstance(name, str) or not RULE_NAME_PATTERN.fullmatch(name)
            )
            if bad:
                problems.append(
                    f"{ENV_STOPPING_RULES} has invalid rule configuration names {', '.join(bad)} "
                    "(1-256 characters: letters, digits, _.:=+@/-, starting with a letter or digit)"
                )
    if not isinstance(config.dry_run, bool):
        problems.append(f"{ENV_DRY_RUN} must be a boolean")
    if not isinstance(config.topic_arn, str) or (
        config.topic_arn and not TOPIC_ARN_PATTERN.fullmatch(config.topic_arn)
    ):
        problems.append(f"{ENV_TOPIC_ARN} must be empty or an SNS topic ARN")
    if not isinstance(config.alarm_prefix, str) or not ALARM_PREFIX_PATTERN.fullmatch(config.alarm_prefix):
        problems.append(f"{ENV_ALARM_PREFIX} must be 1-128 characters (letters, digits, _.:=+@/-)")
    if not isinstance(config.sweep_table, str) or (
        config.sweep_table and not TABLE_NAME_PATTERN.fullmatch(config.sweep_table)
    ):
        problems.append(f"{ENV_SWEEP_TABLE} must be empty or a DynamoDB table name (3-255 of A-Za-z0-9_.-)")
    return problems


def config_from_environment(env: Mapping[str, str]) -> Config:
    """Parse the ``AUTOSTOP_*`` settings from a mapping (``os.environ`` in the Lambda; any dict in tests).

    Missing variables take the documented defaults. Bad values raise ``ConfigError`` naming every problem:
    a misconfigured stop function must fail loudly (its Errors alarm fires, events wait in the DLQ) rather
    than run with settings nobody chose.
    """
    problems: list[str] = []

    dry_run_text = env.get(ENV_DRY_RUN, "false").strip().lower()
    dry_run = dry_run_text == "true"
    if dry_run_text not in {"true", "false"}:
        problems.append(f"{ENV_DRY_RUN} must be 'true' or 'false', got {env.get(ENV_DRY_RUN, '')[:40]!r}")

    stopping_rules: frozenset[str] | None = None
    rules_text = env.get(ENV_STOPPING_RULES, ALL_RULES).strip()
    if rules_text != ALL_RULES:
        names = [name.strip() for name in rules_text.split(",")]
        if ALL_RULES in names:
            problems.append(f"{ENV_STOPPING_RULES} must be '*' alone or a comma-separated list of rule names")
        elif not all(names):
            problems.append(f"{ENV_STOPPING_RULES} has an empty rule name (got {rules_text[:80]!r})")
        else:
            stopping_rules = frozenset(names)

    settings = {
        "tag_key": env.get(ENV_TAG_KEY, DEFAULT_TAG_KEY),
        "tag_value": env.get(ENV_TAG_VALUE, DEFAULT_TAG_VALUE),
        "job_prefix": env.get(ENV_JOB_PREFIX, ""),
        "topic_arn": env.get(ENV_TOPIC_ARN, ""),
        "alarm_prefix": env.get(ENV_ALARM_PREFIX, DEFAULT_ALARM_PREFIX),
        "sweep_table": env.get(ENV_SWEEP_TABLE, ""),
    }
    try:
        config = Config(stopping_rules=stopping_rules, dry_run=dry_run, **settings)
    except ConfigError as error:
        problems.append(str(error).removeprefix("invalid autostop settings: "))
    if problems:
        raise ConfigError("invalid autostop settings: " + "; ".join(problems))
    return config
