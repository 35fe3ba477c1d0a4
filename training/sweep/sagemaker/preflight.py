"""Before any job is created: credentials that work, in the region and account the spec names.

Why: without it, a missing or expired credential shows up as every job failing to be created, a report of
failures, and a long botocore traceback. ``sts:GetCallerIdentity`` needs no permission at all (AWS STS API
reference: "No permissions are required to perform this operation"), so it tells credential problems apart
from permission problems, in one request.
"""

from __future__ import annotations

from typing import Any

from training.sweep.sagemaker import faults
from training.sweep.sagemaker.settings import LaunchError, LaunchSettings


def check_credentials(boto_session: Any, launch: LaunchSettings) -> str:
    """The caller's account ID; ``LaunchError`` (one line) when credentials or the account are wrong."""
    try:
        identity = boto_session.client("sts", region_name=launch.region).get_caller_identity()
    except Exception as error:
        if faults.is_credential_problem(error):
            raise LaunchError(
                f"no usable AWS credentials ({faults.describe(error)}); sign in (e.g. `aws sso login`) or "
                "set AWS_PROFILE, then run the command again"
            ) from None
        raise LaunchError(
            f"cannot reach AWS in {launch.region} to check the credentials: {faults.describe(error)}"
        ) from None
    account = str(identity.get("Account", ""))
    role_account = launch.role_arn.split(":")[4]
    if account and role_account != account:
        raise LaunchError(
            f"the credentials are for account {account}, but the execution role {launch.role_arn} is in "
            f"account {role_account}; use the training stack's outputs of this account "
            "(autostop sweep configure)"
        )
    return account
