"""EventBridge patterns of the stop Lambda's four rules, as pure functions of the settings.

Why pure functions returning plain dicts: the patterns are the first line of scope control (an event that
does not match never invokes the Lambda), so tests run them through an EventBridge-faithful matcher against
sample events, with no CDK involved. The stack passes the same dicts to ``events.Rule``.

Why so narrow: every invocation costs money and log noise, and a pattern that only lets through events the
Lambda would act on keeps the DLQ and error alarms meaningful. The Lambda still re-checks everything
(events are stale, repeated and out of order), so a pattern is never the only guard.

Semantics relied on (aws/event-ruler, the matcher behind EventBridge, README "JSON Array Matching"): an
array in the event matches if any element matches; in an array of objects, the fields named in one pattern
object must all match within the same element. ``$or`` is allowed inside ``detail``.
"""

from __future__ import annotations

from typing import Any

from infra.config import AutostopSettings

SAGEMAKER_SOURCE = "aws.sagemaker"
TRAINING_JOB_STATE_CHANGE = "SageMaker Training Job State Change"
IN_CONTAINER_SOURCE = "autostop.training"
RULE_EVALUATION_STATUS_CHANGE = "Debugger Rule Evaluation Status Change"
CROSS_JOB_RUNG_REPORT = "Cross-Job Rung Report"
CLOUDWATCH_SOURCE = "aws.cloudwatch"
ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"

# Terminal states: the Lambda deletes the job's per-job alarms (clean-up), nothing to stop.
TERMINAL_TRAINING_JOB_STATUSES = ("Completed", "Failed", "Stopped")
ISSUES_FOUND = "IssuesFound"
ALARM = "ALARM"
RULE_STATUS_LISTS = ("DebugRuleEvaluationStatuses", "ProfilerRuleEvaluationStatuses")

Pattern = dict[str, Any]


def rule_issues_found(settings: AutostopSettings) -> Pattern:
    """Pattern for ONE element of a rule-status list: IssuesFound, for a stopping rule when restricted.

    Both fields sit in one pattern object, so they must hold in the same array element: a job whose rule A
    found issues while a stopping rule B is still InProgress does not match.
    """
    element: Pattern = {"RuleEvaluationStatus": [ISSUES_FOUND]}
    if settings.stopping_rules is not None:
        element["RuleConfigurationName"] = list(settings.stopping_rules)
    return element


def _job_name_filter(settings: AutostopSettings) -> Pattern:
    # EventBridge rejects an empty prefix; no prefix configured means any job name.
    return {"TrainingJobName": [{"prefix": settings.job_prefix}]} if settings.job_prefix else {}


def training_job_state_change(settings: AutostopSettings) -> Pattern:
    """(a) SageMaker's own event: a terminal state (alarm clean-up) OR a Debugger/Profiler rule that found
    issues (stop), for in-prefix jobs. InProgress events with no issue (most of them) never match."""
    return {
        "source": [SAGEMAKER_SOURCE],
        "detail-type": [TRAINING_JOB_STATE_CHANGE],
        "detail": {
            **_job_name_filter(settings),
            "$or": [
                {"TrainingJobStatus": list(TERMINAL_TRAINING_JOB_STATUSES)},
                *({status_list: rule_issues_found(settings)} for status_list in RULE_STATUS_LISTS),
            ],
        },
    }


def in_container_rule_evaluation(settings: AutostopSettings) -> Pattern:
    """(b) The training container's own event (``events.PutEvents``): a stopping rule found issues."""
    return {
        "source": [IN_CONTAINER_SOURCE],
        "detail-type": [RULE_EVALUATION_STATUS_CHANGE],
        "detail": {
            **_job_name_filter(settings),
            "DebugRuleEvaluationStatuses": rule_issues_found(settings),
        },
    }


def rule_alarm_state_change(settings: AutostopSettings) -> Pattern:
    """(c) A per-job rule alarm ``<alarm prefix><job name>/<rule name>`` went to ALARM (never OK or
    INSUFFICIENT_DATA). Restricted stopping rules become one wildcard per rule on the name's suffix.

    Names are validated (config.py) to contain no ``*`` or ``\\``, so nothing needs escaping in a wildcard.
    """
    name_prefix = settings.per_job_alarm_name_prefix
    if settings.stopping_rules is None:
        alarm_names: list[Pattern] = [{"prefix": name_prefix}]
    else:
        alarm_names = [{"wildcard": f"{name_prefix}*/{rule}"} for rule in settings.stopping_rules]
    return {
        "source": [CLOUDWATCH_SOURCE],
        "detail-type": [ALARM_STATE_CHANGE],
        "detail": {"alarmName": alarm_names, "state": {"value": [ALARM]}},
    }


def cross_job_rung_report(settings: AutostopSettings) -> Pattern:
    """(d) The training container's objective at a rung (cross-job stopping, docs/events.md section 4), for
    in-prefix jobs. Which rung, and whether the job is worse than its siblings there, only the Lambda can
    tell (it needs the sweep's recorded objectives), so the pattern narrows on the job name alone."""
    return {
        "source": [IN_CONTAINER_SOURCE],
        "detail-type": [CROSS_JOB_RUNG_REPORT],
        "detail": {**_job_name_filter(settings), "Rung": [{"numeric": [">", 0]}]},
    }
