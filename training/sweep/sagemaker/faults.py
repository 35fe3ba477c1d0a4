"""Which AWS errors are worth waiting out, and a retry with exponential backoff for those.

Why a retry above botocore's own (standard mode, a few attempts within seconds): a sweep polls for hours,
and a throttling burst or a regional blip can outlast botocore's attempts. Giving up there would end the
launcher while its jobs run on; waiting a few minutes more costs nothing. Errors that waiting cannot fix
(expired or missing credentials, access denied, a bad request) are raised at once, so the launcher can
detach cleanly and say why. The clock and the sleeper are injected: tests never sleep.

AWS documents throttling and 5xx errors as the ones to retry with backoff
(https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

Result = TypeVar("Result")

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
# Errors that mean the caller's credentials cannot be used: the launcher stops and says how to go on.
CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "AccessDeniedException",
    }
)
# botocore exceptions (by class name: no botocore import in this module) for a connection that failed.
CONNECTION_ERRORS = frozenset(
    {
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "ConnectionError",
    }
)
DEFAULT_FIRST_DELAY_SECONDS = 2.0
DEFAULT_MAX_DELAY_SECONDS = 60.0
DEFAULT_MAX_ATTEMPTS = 8  # 2+4+8+16+32+60+60 s: about 3 minutes of waiting in all


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(error, "response", None)
    if isinstance(response, Mapping):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _http_status(error: BaseException) -> int:
    response = getattr(error, "response", None)
    if isinstance(response, Mapping):
        return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return 0


def is_transient(error: BaseException) -> bool:
    """Throttling, a 5xx answer, or a connection that failed: worth trying again after a while."""
    code = error_code(error)
    if code in THROTTLING_CODES or code in TRANSIENT_CODES:
        return True
    if _http_status(error) >= 500:
        return True
    return any(kind.__name__ in CONNECTION_ERRORS for kind in type(error).__mro__)


def is_aws_error(error: BaseException) -> bool:
    """An error of botocore (an answer of AWS, a connection, credentials), as opposed to a bug."""
    return any(kind.__module__.startswith(("botocore", "boto3", "urllib3")) for kind in type(error).__mro__)


def is_credential_problem(error: BaseException) -> bool:
    return error_code(error) in CREDENTIAL_CODES or type(error).__name__ in {
        "NoCredentialsError",
        "PartialCredentialsError",
        "TokenRetrievalError",
        "UnauthorizedSSOTokenError",
        "SSOTokenLoadError",
    }


def describe(error: BaseException) -> str:
    """One line: the error code (or class) and its message."""
    code = error_code(error) or type(error).__name__
    message = " ".join(str(error).split())
    return f"{code}: {message}" if message and code not in message else message or code


class Retrier:
    """Call a function, retrying transient errors with exponential backoff (``sleep`` is injected)."""

    def __init__(
        self,
        *,
        sleep: Callable[[float], None],
        log: Callable[[str], None],
        first_delay_seconds: float = DEFAULT_FIRST_DELAY_SECONDS,
        max_delay_seconds: float = DEFAULT_MAX_DELAY_SECONDS,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.sleep = sleep
        self.log = log
        self.first_delay_seconds = first_delay_seconds
        self.max_delay_seconds = max_delay_seconds
        self.max_attempts = max_attempts

    def delays(self) -> list[float]:
        """The waits between attempts: doubling from the first delay, capped."""
        return [
            min(self.max_delay_seconds, self.first_delay_seconds * 2**attempt)
            for attempt in range(self.max_attempts - 1)
        ]

    def call(self, what: str, function: Callable[[], Result]) -> Result:
        delays = self.delays()
        for attempt in range(self.max_attempts):
            try:
                return function()
            except Exception as error:
                if not is_transient(error) or attempt == self.max_attempts - 1:
                    raise
                delay = delays[attempt]
                self.log(f"{what}: {describe(error)}; trying again in {delay:.0f} s")
                self.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises
