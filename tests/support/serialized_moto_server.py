"""moto's server, answering one request at a time: what concurrency tests of conditional writes need.

Why: DynamoDB applies each request -- a conditional ``UpdateItem``, a ``TransactWriteItems`` -- atomically
(Amazon DynamoDB Developer Guide, "Condition expressions"; "Amazon DynamoDB Transactions": all or nothing,
isolated from other writes). moto's server handles requests on concurrent threads without that atomicity:
its condition check and its write can interleave with another thread's, and a cancelled transaction
restores a copy of the whole table, erasing writes made meanwhile. A test of racing clients against it would
fail (or pass) for moto's reasons. Here each request holds a lock while moto answers it, which gives every
request the atomicity DynamoDB documents; the clients still race freely *between* requests, which is where
the races of the code under test are. Run as ``python -m tests.support.serialized_moto_server -p PORT``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tests.support import moto_server

REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def serialized(application: Callable[..., Iterable[bytes]]) -> Callable[..., list[bytes]]:
    """A WSGI application answering one request at a time (the whole body is produced under the lock)."""
    lock = threading.Lock()

    def answer(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            return list(application(environ, start_response))

    return answer


@contextlib.contextmanager
def running_serialized_moto_server() -> Iterator[str]:
    """Start the serialized server in its own process on a free loopback port; yield its base URL."""
    port = moto_server.free_port()
    environment = {**os.environ, **moto_server.FAKE_CREDENTIALS, "PYTHONPATH": REPOSITORY_ROOT}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.serialized_moto_server", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment,
        cwd=REPOSITORY_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        moto_server.wait_until_serving(f"{url}/moto-api/")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-p", "--port", type=int, required=True)
    arguments = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(arguments.port))
    application = DomainDispatcherApplication(create_backend_app)
    run_simple(
        "127.0.0.1",
        arguments.port,
        serialized(application),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
