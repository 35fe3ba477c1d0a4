"""Parsing the sweep spec: a YAML or TOML file into plain data, and the collector of problems found in it.

Why a module of its own: reading the file and naming a problem by its key path are the same for every
section of the spec; the section checks (``spec_validation`` and the ``spec_validation_*`` modules) share
this one ``Problems`` collector, so every message has one form (``search.parameters.learning_rate[2]:
learning_rate must be a number, got 'fast'``) and every problem of a spec is reported at once.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from training.sweep.spec_schema import SpecError

SPEC_SUFFIXES = (".yaml", ".yml", ".toml")


def read_document(path: Path) -> object:
    """Parse a YAML or TOML file (by suffix) into plain data; a syntax error is a ``SpecError``."""
    source = str(path)
    if path.suffix not in SPEC_SUFFIXES:
        raise SpecError(source, [f"the spec must be a {', '.join(SPEC_SUFFIXES)} file"])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(source, [f"cannot read the file: {error}"]) from None
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise SpecError(source, [f"not valid TOML: {error}"]) from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SpecError(source, [f"not valid YAML: {' '.join(str(error).split())}"]) from None


class Problems:
    """Collects problems with their key paths; ``check`` helpers return the value or None."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)

    def mapping(self, value: object, path: str) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.add(path, f"expected a mapping, got {_type_name(value)}")
            return None
        for key in value:
            if not isinstance(key, str):
                self.add(path, f"keys must be strings, got {key!r}")
                return None
        return value

    def known_keys(self, value: Mapping[str, Any], path: str, known: Sequence[str]) -> None:
        for key in value:
            if key not in known:
                self.add(join_path(path, key), f"unknown key (known: {', '.join(known)})")

    def integer(self, value: object, path: str, *, minimum: int, maximum: int | None = None) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"expected an integer, got {describe(value)}")
            return None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            self.add(path, f"must be {bounds}, got {value}")
            return None
        return value

    def number(self, value: object, path: str) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.add(path, f"expected a finite number, got {describe(value)}")
            return None
        return float(value)

    def text(
        self, value: object, path: str, *, pattern: re.Pattern[str] | None = None, what: str = ""
    ) -> str | None:
        if not isinstance(value, str) or not value:
            self.add(path, f"expected a non-empty string, got {describe(value)}")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.add(path, f"{value[:80]!r} is not {what}")
            return None
        return value

    def boolean(self, value: object, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.add(path, f"expected true or false, got {describe(value)}")
            return None
        return value


def join_path(path: str, key: str | int) -> str:
    """A key path one level down: ``search`` + ``samples`` -> ``search.samples``, + 2 -> ``rules[2]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _type_name(value: object) -> str:
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "nothing"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return type(value).__name__


def describe(value: object) -> str:
    """A value as a problem message shows it: scalars as written (cut at 80 characters), else its kind."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return repr(value)[:80]
    return _type_name(value)
