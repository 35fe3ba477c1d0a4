"""The `autostop` command.

Each subcommand lives in its own module exposing ``register(subparsers)``; this file only lists them, so
features land without touching each other. Modules are imported when the CLI starts, so they keep heavy
imports (TensorFlow, boto3) inside the functions that need them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules that add subcommands. A module that is not there yet is skipped (features arrive issue by issue).
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "training.render.cli",
    "training.transform_cli",
    "training.sweep.cli",
    "training.analysis.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autostop",
        description="SageMaker training sweeps whose bad jobs stop themselves.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            missing = error.name or ""
            if not (module_name == missing or module_name.startswith(missing + ".")):
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if not getattr(arguments, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    return int(arguments.handler(arguments) or 0)


if __name__ == "__main__":
    sys.exit(main())
