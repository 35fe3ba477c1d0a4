"""Typed, validated settings of the autostop stack, read from CDK context (``cdk.json`` or ``-c key=value``).

Why validate here, before any construct exists: every setting ends up inside an IAM policy, an EventBridge
pattern or a Lambda environment variable, where a bad value is either a deploy-time failure far from its
cause or, worse, a silently broader permission (an empty alarm prefix would allow deleting every alarm in
the account). A bad value fails ``cdk synth`` with the context key, the rule and the value.

Context keys (defaults in ``CONTEXT_KEYS``; ``cdk.json`` carries the same defaults):

``autostop:tagKey`` (``autostop``)
    Opt-in tag key. A training job is in scope only if it carries this tag with ``autostop:tagValue``.
    1-128 of ``A-Z a-z 0-9 _ . : / = + @ -`` (usable in the IAM condition key ``aws:ResourceTag/<key>``),
    not starting with ``aws:``, and not one of the audit tag keys the stop Lambda writes.
``autostop:tagValue`` (``enabled``)
    Opt-in tag value: 1-256 of the same characters.
``autostop:jobPrefix`` (empty: any name)
    Only training jobs whose name starts with this prefix are in scope (IAM resources, event patterns and
    the Lambda all narrow to it). ``[A-Za-z0-9-]*``, at most 62 characters, starting with a letter or digit.
``autostop:stoppingRules`` (``*``)
    ``*`` (every Debugger/Profiler rule stops its job) or rule configuration names, as a comma-separated
    string or a JSON list. Names: a letter or digit, then up to 255 of ``A-Z a-z 0-9 _ . : = + @ / -``
    (``vocabulary.is_rule_name``: the one definition the Lambda, the launcher and the container use).
``autostop:dryRun`` (``false``)
    ``true``: the Lambda logs and notifies but never stops a job. A JSON boolean or ``"true"``/``"false"``.
``autostop:notificationEmail`` (empty: no subscription)
    An email address subscribed to the notification topic (the recipient must confirm it).
``autostop:alarmPrefix`` (``autostop-``)
    Prefix of the per-job alarms ``<prefix><job name>/<rule name>``; the Lambda may describe and delete
    only alarms with this prefix. 1-64 of ``A-Z a-z 0-9 _ . + = @ -`` (no IAM wildcard, no ``/``).
``autostop:stopFunctionReservedConcurrency`` (``5``)
    Reserved concurrency of the stop Lambda, 1-100.
``autostop:logRetentionDays`` (``30``)
    Retention of the stop Lambda's log group, one of CloudWatch Logs' allowed values
    (``LOG_RETENTION_DAYS_ALLOWED``).

Render transformer (ranges are checked again by ``infra.render_transformer``):

``autostop:transformer:memoryMb`` (``1024``), ``autostop:transformer:timeoutSeconds`` (``120``),
``autostop:transformer:architecture`` (``arm64`` or ``x86_64``)
    The transformer Lambda's memory, timeout and architecture.
``autostop:transformer:maximumConcurrency`` (``10``)
    The SQS event source's MaximumConcurrency (also the function's reserved concurrency).
``autostop:transformer:batchSize`` (``10``), ``autostop:transformer:maxBatchingWindowSeconds`` (``5``)
    Messages per invocation and how long SQS may wait to fill a batch.
``autostop:transformer:imageSize`` (``64``), ``autostop:transformer:numViews`` (``12``)
    Views are fitted into ``imageSize`` x ``imageSize``; a design must have exactly ``numViews`` views.

This module is pure Python (no aws_cdk import), so it can be tested and reused without synthesizing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping

# Pure Python too: the stop path's one vocabulary (rule names, tag keys), shared with the Lambda, the
# launcher's spec and (kept equal by a test) the container.
from lambdas.stop_training_job import vocabulary

CONTEXT_PREFIX = "autostop:"

# Tags the stop Lambda writes on a job it stops (the stop tags and the audit trail's two markers, see
# lambdas/stop_training_job/vocabulary.py); its AddTags permission is limited to exactly these keys.
AUDIT_TAG_KEYS = (
    vocabulary.TAG_STOPPED_BY_RULE,
    vocabulary.TAG_STOPPED_AT,
    vocabulary.TAG_STOP_SOURCE,
    vocabulary.TAG_STOP_REQUESTED_AT,
    vocabulary.TAG_AUDIT,
)

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS_ALLOWED = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

MAX_RESERVED_CONCURRENCY = 100

_TAG_KEY = re.compile(r"[A-Za-z0-9_.:/=+@-]{1,128}")
_TAG_VALUE = re.compile(r"[A-Za-z0-9_.:/=+@-]{1,256}")
_JOB_PREFIX = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]{0,61})?")
_ALARM_PREFIX = re.compile(r"[A-Za-z0-9_.+=@-]{1,64}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_MAX_EMAIL_LENGTH = 254

EVERY_RULE = "*"
# The scope document the stop stack publishes (``AutostopSettings.scope_document``).
SCOPE_DOCUMENT_VERSION_KEY = "version"
SCOPE_DOCUMENT_VERSION = 1


class ConfigurationError(ValueError):
    """A context value is invalid; the message names the key, the expected form and the value."""

    def __init__(self, key: str, expected: str, value: object) -> None:
        super().__init__(f"cdk context {key!r}: {expected}; got {value!r}")
        self.key = key


@dataclasses.dataclass(frozen=True)
class ContextKey:
    name: str
    default: object
    description: str


CONTEXT_KEYS: Mapping[str, ContextKey] = {
    key.name: key
    for key in (
        ContextKey("autostop:tagKey", "autostop", "opt-in tag key a training job must carry"),
        ContextKey("autostop:tagValue", "enabled", "value the opt-in tag must have"),
        ContextKey("autostop:jobPrefix", "", "training job name prefix in scope (empty: any name)"),
        ContextKey("autostop:stoppingRules", EVERY_RULE, "'*' or rule configuration names that stop a job"),
        ContextKey("autostop:dryRun", False, "log and notify, never stop"),
        ContextKey("autostop:notificationEmail", "", "email subscribed to notifications (empty: none)"),
        ContextKey("autostop:alarmPrefix", "autostop-", "name prefix of the per-job rule alarms"),
        ContextKey("autostop:stopFunctionReservedConcurrency", 5, "reserved concurrency of the stop Lambda"),
        ContextKey("autostop:logRetentionDays", 30, "log retention of the stop Lambda, in days"),
        ContextKey("autostop:transformer:memoryMb", 1024, "memory of the render transformer Lambda (MB)"),
        ContextKey("autostop:transformer:timeoutSeconds", 120, "timeout of the render transformer Lambda"),
        ContextKey("autostop:transformer:architecture", "arm64", "arm64 or x86_64"),
        ContextKey("autostop:transformer:maximumConcurrency", 10, "SQS event source MaximumConcurrency"),
        ContextKey("autostop:transformer:batchSize", 10, "SQS messages per transformer invocation"),
        ContextKey("autostop:transformer:maxBatchingWindowSeconds", 5, "SQS batching window in seconds"),
        ContextKey("autostop:transformer:imageSize", 64, "side of the square the views are fitted into"),
        ContextKey("autostop:transformer:numViews", 12, "views every design must have"),
    )
}

TRANSFORMER_ARCHITECTURES = ("arm64", "x86_64")


@dataclasses.dataclass(frozen=True)
class AutostopSettings:
    """Validated settings. Constructing one directly validates too (tests and other tools can)."""

    tag_key: str = "autostop"
    tag_value: str = "enabled"
    job_prefix: str = ""
    # None: every rule stops its job; otherwise the rule configuration names that do.
    stopping_rules: tuple[str, ...] | None = None
    dry_run: bool = False
    notification_email: str = ""
    alarm_prefix: str = "autostop-"
    stop_function_reserved_concurrency: int = 5
    log_retention_days: int = 30

    def __post_init__(self) -> None:
        _check(
            "autostop:tagKey",
            self.tag_key,
            _TAG_KEY.fullmatch(self.tag_key) is not None
            and not self.tag_key.lower().startswith("aws:")
            and self.tag_key not in AUDIT_TAG_KEYS,
            "1-128 of A-Z a-z 0-9 _ . : / = + @ -, not starting with 'aws:', not an audit tag key "
            f"{AUDIT_TAG_KEYS}",
        )
        _check(
            "autostop:tagValue",
            self.tag_value,
            _TAG_VALUE.fullmatch(self.tag_value) is not None,
            "1-256 of A-Z a-z 0-9 _ . : / = + @ -",
        )
        _check(
            "autostop:jobPrefix",
            self.job_prefix,
            _JOB_PREFIX.fullmatch(self.job_prefix) is not None,
            "empty, or up to 62 of [A-Za-z0-9-] starting with a letter or digit (a job name prefix)",
        )
        if self.stopping_rules is not None:
            _check(
                "autostop:stoppingRules",
                self.stopping_rules,
                len(self.stopping_rules) > 0
                and len(set(self.stopping_rules)) == len(self.stopping_rules)
                and all(vocabulary.is_rule_name(name) for name in self.stopping_rules),
                "'*' or distinct rule configuration names (a letter or digit, then up to 255 of "
                "A-Z a-z 0-9 _ . : = + @ / -)",
            )
        _check("autostop:dryRun", self.dry_run, isinstance(self.dry_run, bool), "a boolean")
        _check(
            "autostop:notificationEmail",
            self.notification_email,
            self.notification_email == ""
            or (
                len(self.notification_email) <= _MAX_EMAIL_LENGTH
                and _EMAIL.fullmatch(self.notification_email) is not None
            ),
            "empty (no subscription) or one email address",
        )
        _check(
            "autostop:alarmPrefix",
            self.alarm_prefix,
            _ALARM_PREFIX.fullmatch(self.alarm_prefix) is not None,
            "1-64 of A-Z a-z 0-9 _ . + = @ - (never empty: the stop Lambda may delete every alarm with it)",
        )
        _check(
            "autostop:stopFunctionReservedConcurrency",
            self.stop_function_reserved_concurrency,
            _is_int(self.stop_function_reserved_concurrency)
            and 1 <= self.stop_function_reserved_concurrency <= MAX_RESERVED_CONCURRENCY,
            f"an integer from 1 to {MAX_RESERVED_CONCURRENCY}",
        )
        _check(
            "autostop:logRetentionDays",
            self.log_retention_days,
            _is_int(self.log_retention_days) and self.log_retention_days in LOG_RETENTION_DAYS_ALLOWED,
            f"one of {LOG_RETENTION_DAYS_ALLOWED}",
        )

    @property
    def stops_on_every_rule(self) -> bool:
        return self.stopping_rules is None

    @property
    def stopping_rules_setting(self) -> str:
        """The ``AUTOSTOP_STOPPING_RULES`` value: ``*`` or the comma-separated names."""
        return EVERY_RULE if self.stopping_rules is None else ",".join(self.stopping_rules)

    def scope_document(self) -> str:
        """What the stop stack acts on, as the launcher reads it (``training/sweep/scope.py``) from the SSM
        parameter the stack publishes: one JSON object, keys sorted, so the launcher and the Lambda can never
        disagree about the tag, the job prefix, the stopping rules or dry run."""
        import json

        return json.dumps(
            {
                SCOPE_DOCUMENT_VERSION_KEY: SCOPE_DOCUMENT_VERSION,
                "tagKey": self.tag_key,
                "tagValue": self.tag_value,
                "jobPrefix": self.job_prefix,
                "stoppingRules": EVERY_RULE if self.stopping_rules is None else list(self.stopping_rules),
                "dryRun": self.dry_run,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @property
    def per_job_alarm_name_prefix(self) -> str:
        """Every in-scope per-job alarm name starts with this: ``<alarm prefix><job prefix>``."""
        return f"{self.alarm_prefix}{self.job_prefix}"


def _check(key: str, value: object, valid: bool, expected: str) -> None:
    if not valid:
        raise ConfigurationError(key, f"must be {expected}", value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(key, "must be a string", value)
    return value.strip()


def _boolean(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigurationError(
        key, "must be true or false (a JSON boolean or the string 'true'/'false')", value
    )


def _integer(key: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,9}\s*", value):
        return int(value)
    raise ConfigurationError(key, "must be an integer", value)


def _stopping_rules(key: str, value: object) -> tuple[str, ...] | None:
    if isinstance(value, str):
        names = [name.strip() for name in value.split(",")]
    elif isinstance(value, list) and all(isinstance(name, str) for name in value):
        names = [name.strip() for name in value]
    else:
        raise ConfigurationError(key, "must be '*', a comma-separated string or a list of rule names", value)
    if names == [EVERY_RULE]:
        return None
    if EVERY_RULE in names:
        raise ConfigurationError(key, "'*' cannot be combined with rule names", value)
    if not names or any(name == "" for name in names):
        raise ConfigurationError(key, "must not contain empty rule names (use '*' for every rule)", value)
    return tuple(names)


def settings_from_context(lookup: Callable[[str], object]) -> AutostopSettings:
    """Build settings from a context lookup (``app.node.try_get_context``); absent keys take their default.

    Values given with ``cdk synth -c key=value`` arrive as strings, so booleans and integers are also
    accepted in string form.
    """

    def value(key: str) -> object:
        found = lookup(key)
        return CONTEXT_KEYS[key].default if found is None else found

    return AutostopSettings(
        tag_key=_string("autostop:tagKey", value("autostop:tagKey")),
        tag_value=_string("autostop:tagValue", value("autostop:tagValue")),
        job_prefix=_string("autostop:jobPrefix", value("autostop:jobPrefix")),
        stopping_rules=_stopping_rules("autostop:stoppingRules", value("autostop:stoppingRules")),
        dry_run=_boolean("autostop:dryRun", value("autostop:dryRun")),
        notification_email=_string("autostop:notificationEmail", value("autostop:notificationEmail")),
        alarm_prefix=_string("autostop:alarmPrefix", value("autostop:alarmPrefix")),
        stop_function_reserved_concurrency=_integer(
            "autostop:stopFunctionReservedConcurrency", value("autostop:stopFunctionReservedConcurrency")
        ),
        log_retention_days=_integer("autostop:logRetentionDays", value("autostop:logRetentionDays")),
    )


@dataclasses.dataclass(frozen=True)
class TransformerSettings:
    """Settings of the render transformer. Ranges Lambda and SQS impose are checked by the
    construct itself; here the types and the architecture name."""

    memory_mb: int = 1024
    timeout_seconds: int = 120
    architecture: str = "arm64"
    maximum_concurrency: int = 10
    batch_size: int = 10
    max_batching_window_seconds: int = 5
    image_size: int = 64
    num_views: int = 12

    def __post_init__(self) -> None:
        _check(
            "autostop:transformer:architecture",
            self.architecture,
            self.architecture in TRANSFORMER_ARCHITECTURES,
            f"one of {TRANSFORMER_ARCHITECTURES}",
        )


def transformer_settings_from_context(lookup: Callable[[str], object]) -> TransformerSettings:
    """Build the transformer's settings from a context lookup; absent keys take their default."""

    def integer(name: str) -> int:
        key = f"autostop:transformer:{name}"
        found = lookup(key)
        return _integer(key, CONTEXT_KEYS[key].default if found is None else found)

    architecture_key = "autostop:transformer:architecture"
    architecture = lookup(architecture_key)
    return TransformerSettings(
        memory_mb=integer("memoryMb"),
        timeout_seconds=integer("timeoutSeconds"),
        architecture=_string(
            architecture_key, CONTEXT_KEYS[architecture_key].default if architecture is None else architecture
        ),
        maximum_concurrency=integer("maximumConcurrency"),
        batch_size=integer("batchSize"),
        max_batching_window_seconds=integer("maxBatchingWindowSeconds"),
        image_size=integer("imageSize"),
        num_views=integer("numViews"),
    )
