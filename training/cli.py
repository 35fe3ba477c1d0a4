"""The `autostop` command.

Each subcommand lives in its own module exposing ``register(subparsers)``; this file only lists them, so
features land without touching each other. Modules are imported when the CLI starts, so they keep heavy
imports (TensorFlow, boto3) inside the functions that need them. Every command ends the same way on an
error a user can fix (``training/cli_errors.py``): one ``autostop <command>: error: ...`` line.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence

from training import cli_errors

DISTRIBUTION = "autostop"

# Modules that add subcommands. A module that is not there yet is skipped (features arrive issue by issue).
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "training.render.cli",
    "training.transform_cli",
    "training.sweep.cli",
    "training.analysis.cli",
)


def version() -> str:
    """The installed distribution's version (``pip install .`` or ``make venv``)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: pip install .)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autostop",
        description="SageMaker training sweeps whose bad jobs stop themselves.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
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
    _name_leaf_commands(parser)
    return parser


def _name_leaf_commands(parser: argparse.ArgumentParser) -> None:
    """Give every command's parser its own name (``autostop sweep run``) for its error lines."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                subparser.set_defaults(command_prog=subparser.prog)
                _name_leaf_commands(subparser)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if not getattr(arguments, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    prog = getattr(arguments, "command_prog", parser.prog)
    return cli_errors.run(arguments.handler, arguments, prog)


if __name__ == "__main__":
    sys.exit(main())
