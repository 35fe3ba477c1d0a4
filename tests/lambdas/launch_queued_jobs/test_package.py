"""The package imports as the Lambda asset ships it: the folder alone, as top-level ``launch_queued_jobs``.

A stray absolute import (``from lambdas.launch_queued_jobs import ...``) works in the repository but breaks
in Lambda; importing a copy in an isolated interpreter, outside the repository, catches it here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import lambdas.launch_queued_jobs

PACKAGE_DIR = Path(lambdas.launch_queued_jobs.__file__).resolve().parent

PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
import launch_queued_jobs.app as app
assert app.__file__.startswith(sys.argv[1]), app.__file__
assert not any(name == "lambdas" or name.startswith("lambdas.") for name in sys.modules), "absolute import"
assert "boto3" not in sys.modules, "boto3 is imported on first use, not at import"
print(app.handler({"source": "aws.events"}, None)["action"])
"""


def test_the_shipped_folder_imports_as_its_own_top_level_package(tmp_path: Path) -> None:
    # GIVEN the package folder copied as the asset ships it, away from the repository
    shutil.copytree(
        PACKAGE_DIR, tmp_path / "launch_queued_jobs", ignore=shutil.ignore_patterns("__pycache__")
    )
    # WHEN an isolated interpreter (-I: no PYTHONPATH, no cwd) imports the handler and skips an event
    completed = subprocess.run(
        [sys.executable, "-I", "-c", PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=60,
    )
    # THEN it imports through relative imports only, and boto3 is not loaded for a skip
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "skip"
