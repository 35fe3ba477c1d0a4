"""How every ``autostop`` command ends on an error a user can fix: one line, ``<command>: error: ...``.

Why one place: AWS errors (no region, no credentials, an API error, an endpoint out of reach) and file
errors can reach any subcommand; each printing its own traceback, or its own style, is what a user should
never have to read. Errors that are not the user's to fix (bugs) still raise, with their traceback. The
line has argparse's own shape (``autostop sweep run: error: ...``), so usage errors and these read alike.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader went away


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def fail(prog: str, message: object, code: int = EXIT_ERROR) -> int:
    """Print ``<prog>: error: <message>`` on stderr; return ``code``."""
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr, flush=True)
    return code


def aws_message(error: BaseException) -> str | None:
    """The line for a botocore error (``None`` for anything else)."""
    if not type(error).__module__.startswith(("botocore", "boto3")):
        return None
    from botocore import exceptions

    if isinstance(error, exceptions.NoRegionError):
        return "no AWS region: pass --region, or set AWS_REGION (or a region in your AWS profile)"
    if isinstance(error, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return (
            "no AWS credentials: sign in (e.g. `aws sso login`) or set AWS_PROFILE, or AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(error, exceptions.ClientError):
        details = error.response.get("Error", {})
        operation = getattr(error, "operation_name", "the AWS request")
        return f"{operation} failed: {details.get('Code', 'error')}: {one_line(details.get('Message', ''))}"
    if isinstance(error, exceptions.EndpointConnectionError):
        return f"cannot reach {error.kwargs.get('endpoint_url', 'AWS')}: check the region and the network"
    return one_line(error) or type(error).__name__


def file_message(error: BaseException) -> str | None:
    if not isinstance(error, OSError) or isinstance(error, ConnectionError | TimeoutError):
        return None
    where = f": {error.filename}" if error.filename else ""
    return f"{error.strerror or one_line(error)}{where}"


def _silence_stdout() -> None:
    """The reader of stdout went away (``| head``): nothing more can be written, and the interpreter's
    final flush must not raise again (Python docs, "Note on SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def run(handler: Callable[[Any], int | None], arguments: Any, prog: str) -> int:
    """Run a subcommand's handler; AWS and file errors become one line, Ctrl-C exit 130, a closed pipe
    a quiet exit."""
    try:
        code = int(handler(arguments) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except Exception as error:
        message = aws_message(error) or file_message(error)
        if message is None:
            raise
        return fail(prog, message)
