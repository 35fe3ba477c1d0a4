"""``pip install .`` gives an ``autostop`` command that runs: pyproject.toml declares what it imports.

Checked against the code (every third-party module imported under training/ and lambdas/, except the
Lambda adapters' powertools, is provided by a declared distribution) and against the lock (every
declared pin is constraints.txt's).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Imported only by the Lambda adapters (deployed with their own requirements), not by the command.
LAMBDA_ONLY = {"aws_lambda_powertools"}
PROJECT_PACKAGES = {"training", "lambdas", "infra", "tests", "bench"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = {}
    for requirement in project["dependencies"]:
        name, _, version = requirement.partition("==")
        assert version, f"{requirement} is not pinned with =="
        pins[normalise(name)] = version
    return pins


def lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith("#"):
            name, _, version = line.strip().partition("==")
            pins[normalise(name)] = version
    return pins


def imported_modules() -> set[str]:
    modules: set[str] = set()
    for folder in ("training", "lambdas"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules.add(node.module.split(".")[0])
    return {
        module
        for module in modules
        if module not in sys.stdlib_module_names and module not in PROJECT_PACKAGES | {"__future__"}
    }


def test_declared_pins_are_the_locks() -> None:
    locked = lock()
    assert {
        name: (version, locked.get(name))
        for name, version in declared().items()
        if locked.get(name) != version
    } == {}


def test_every_imported_distribution_is_declared() -> None:
    providers = importlib.metadata.packages_distributions()
    dependencies = set(declared())
    missing = {
        module: providers.get(module)
        for module in imported_modules() - LAMBDA_ONLY
        if not {normalise(name) for name in providers.get(module, [module])} & dependencies
    }
    assert missing == {}
