"""Names and limits the stop Lambda's contract fixes (docs/events.md), for the container.

Why a copy and not ``from lambdas.stop_training_job import decision``: the training image is built from
``training/`` alone and does not ship ``lambdas/``. The values are the decision core's own; a test
(tests/training/debugger/test_contract.py) asserts they are equal, so they cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Final

SOURCE: Final = "autostop.training"
DETAIL_TYPE: Final = "Debugger Rule Evaluation Status Change"
ISSUES_FOUND: Final = "IssuesFound"

JOB_NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
JOB_ARN_PATTERN: Final = re.compile(
    r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:training-job/(?P<name>[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})"
)
# A rule configuration name also becomes a tag value, a metric dimension and part of an alarm name.
RULE_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:=+@/-]{0,255}")
STATUS_DETAILS_MAX_LENGTH: Final = 1024
MAX_RULE_STATUSES: Final = 20  # DebugRuleConfigurations: at most 20 rules
MAX_STEP: Final = 2**63 - 1

# The in-container event's signature (docs/events.md section 2; ``provenance``).
SIGNING_KEY_HYPERPARAMETER: Final = "autostop_signing_key"
SIGNING_KEY_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{32,256}")
SIGNATURE_ALGORITHM: Final = "HMAC-SHA256"
SIGNED_MESSAGE_VERSION: Final = "autostop-event-v1"

# Cross-job stopping (docs/events.md section 4; ``rung_reports``): the launcher's hyperparameter with the
# sweep's comparison, and the signed report of the job's objective at a rung.
CROSS_JOB_HYPERPARAMETER: Final = "autostop_cross_job"
RUNG_REPORT_DETAIL_TYPE: Final = "Cross-Job Rung Report"
RUNG_REPORT_MESSAGE_VERSION: Final = "autostop-rung-report-v1"
CROSS_JOB_RULE: Final = "CrossJob"
