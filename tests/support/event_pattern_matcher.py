"""An EventBridge event-pattern matcher for tests, faithful to aws/event-ruler's documented semantics.

Why not moto's matcher (or a one-liner): moto's EventBridge matching does not look inside arrays of
objects, so a pattern like ``{"detail": {"DebugRuleEvaluationStatuses": {"RuleEvaluationStatus":
["IssuesFound"]}}}`` never matches there (false negatives), and it has no array-consistency rule at all.
The autostop rules depend on exactly that, so tests use this matcher instead.

Semantics implemented (aws/event-ruler README, which EventBridge uses: "Ruler by Example", "JSON Array
Matching", "The $or Primitive"):

- A pattern is an object; every field it names must match (AND); ``$or`` (a list of 2+ objects) matches if
  any of its objects matches, AND-ed with the sibling fields.
- A leaf is a list of matchers; it matches if ANY event value matches ANY matcher. An event array of
  scalars supplies each element as a value (nested arrays are flattened).
- Arrays of objects are "crushed out": an object pattern matched against an array matches if ONE element
  matches the whole object pattern. So two fields of one pattern object must hold within the same array
  element (event-ruler's ``rulesForJSONEvent`` array consistency: no match may take fields from different
  elements of the same array).
- Matchers: exact strings / numbers / booleans / null; ``prefix``, ``suffix``, ``equals-ignore-case``,
  ``wildcard`` (``*`` any run, ``\\*`` literal star, ``\\\\`` literal backslash), ``anything-but`` (value,
  list, or ``prefix``/``suffix``/``equals-ignore-case``/``wildcard``), ``numeric`` (``=``, ``<``, ``<=``,
  ``>``, ``>=`` pairs), ``exists`` (leaf values only: an object is not a leaf, as the README notes).
- String matchers only match strings, numeric matchers only numbers (booleans are not numbers).

Not implemented (raise :class:`PatternError`): ``cidr`` and any unknown operator, so a typo in a pattern
fails the test instead of silently never matching. Exact number matching compares numeric values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

_OR = "$or"
_STRING_OPERATORS = ("prefix", "suffix", "equals-ignore-case", "wildcard")
_NUMERIC_COMPARATORS = ("=", "<", "<=", ">", ">=")
_MISSING = object()


class PatternError(ValueError):
    """The pattern is not a valid EventBridge pattern (or uses an operator this matcher lacks)."""


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """True if ``event`` (a parsed JSON object) matches the EventBridge ``pattern``."""
    if not isinstance(pattern, Mapping):
        raise PatternError(f"a pattern must be a JSON object, got {type(pattern).__name__}")
    return _match_object(pattern, event)


def _match_object(pattern: Mapping[str, Any], value: Any) -> bool:
    if isinstance(value, list):
        elements = list(_flatten(value))
        if elements:
            # Crushed-out array: one element must satisfy the whole object pattern (array consistency).
            return any(_match_object(pattern, element) for element in elements)
    if not isinstance(value, Mapping):
        # Absent, scalar or empty: no leaf below here, so only {"exists": false} leaves can match.
        return all(_absent_ok(key, sub) for key, sub in pattern.items())
    for key, sub_pattern in pattern.items():
        if key == _OR and _is_or(sub_pattern):
            if not any(_match_object(branch, value) for branch in sub_pattern):
                return False
            continue
        field = value.get(key, _MISSING)
        if isinstance(sub_pattern, Mapping):
            if not _match_object(sub_pattern, field):
                return False
        elif isinstance(sub_pattern, list):
            if not _match_leaf(sub_pattern, field):
                return False
        else:
            raise PatternError(
                f"field {key!r}: pattern values must be arrays or objects, got {sub_pattern!r}"
            )
    return True


def _is_or(candidate: Any) -> bool:
    if not isinstance(candidate, list):
        return False
    if len(candidate) < 2 or not all(isinstance(branch, Mapping) for branch in candidate):
        raise PatternError(f"$or needs a list of at least two objects, got {candidate!r}")
    return True


def _absent_ok(key: str, sub_pattern: Any) -> bool:
    """Can a pattern field match when the event has no leaf values for it (absent, or not an object)?"""
    if key == _OR and _is_or(sub_pattern):
        return any(all(_absent_ok(k, s) for k, s in branch.items()) for branch in sub_pattern)
    if isinstance(sub_pattern, list):
        return _match_leaf(sub_pattern, _MISSING)
    if isinstance(sub_pattern, Mapping):
        return all(_absent_ok(k, s) for k, s in sub_pattern.items())
    raise PatternError(f"field {key!r}: pattern values must be arrays or objects, got {sub_pattern!r}")


def _flatten(values: Sequence[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from _flatten(value)
        else:
            yield value


def _leaf_values(field: Any) -> list[Any]:
    """Scalar values an event field supplies to a leaf matcher (objects are not leaves)."""
    if field is _MISSING:
        return []
    candidates = list(_flatten(field)) if isinstance(field, list) else [field]
    return [value for value in candidates if not isinstance(value, Mapping)]


def _match_leaf(matchers: list[Any], field: Any) -> bool:
    if not matchers:
        raise PatternError("a pattern array must not be empty")
    values = _leaf_values(field)
    for matcher in matchers:
        if isinstance(matcher, Mapping):
            if _match_operator(matcher, values):
                return True
        elif isinstance(matcher, list):
            raise PatternError(f"nested arrays are not valid pattern values: {matcher!r}")
        elif any(_equals(matcher, value) for value in values):
            return True
    return False


def _equals(expected: Any, value: Any) -> bool:
    if expected is None or isinstance(expected, bool) or isinstance(value, bool) or value is None:
        return expected is value
    if isinstance(expected, str) or isinstance(value, str):
        return isinstance(expected, str) and isinstance(value, str) and expected == value
    if _is_number(expected) and _is_number(value):
        return math.isclose(float(expected), float(value), rel_tol=0, abs_tol=1e-6)
    raise PatternError(f"unsupported exact-match value {expected!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _match_operator(matcher: Mapping[str, Any], values: list[Any]) -> bool:
    if len(matcher) != 1:
        raise PatternError(f"a matcher object must have exactly one operator, got {dict(matcher)!r}")
    ((operator, argument),) = matcher.items()
    if operator == "exists":
        if not isinstance(argument, bool):
            raise PatternError(f"exists takes true or false, got {argument!r}")
        return bool(values) is argument
    if operator in _STRING_OPERATORS:
        return any(isinstance(value, str) and _string_operator(operator, argument, value) for value in values)
    if operator == "anything-but":
        return any(_anything_but(argument, value) for value in values)
    if operator == "numeric":
        conditions = _numeric_conditions(argument)
        return any(_is_number(value) and _numeric(conditions, float(value)) for value in values)
    raise PatternError(f"operator {operator!r} is not supported by this matcher")


def _string_operator(operator: str, argument: Any, value: str) -> bool:
    if not isinstance(argument, str):
        raise PatternError(f"{operator} takes a string, got {argument!r}")
    if operator == "prefix":
        return value.startswith(argument)
    if operator == "suffix":
        return value.endswith(argument)
    if operator == "equals-ignore-case":
        return value.casefold() == argument.casefold()
    return _wildcard_regex(argument).fullmatch(value) is not None


def _wildcard_regex(wildcard: str) -> re.Pattern[str]:
    parts: list[str] = []
    index = 0
    while index < len(wildcard):
        character = wildcard[index]
        if character == "\\":
            following = wildcard[index + 1 : index + 2]
            if following not in ("*", "\\"):
                raise PatternError(f"wildcard {wildcard!r}: a backslash may only escape '*' or '\\'")
            parts.append(re.escape(following))
            index += 2
            continue
        if character == "*":
            if wildcard[index + 1 : index + 2] == "*":
                raise PatternError(f"wildcard {wildcard!r}: consecutive '*' are not allowed")
            parts.append(".*")
        else:
            parts.append(re.escape(character))
        index += 1
    return re.compile("".join(parts), re.DOTALL)


def _anything_but(argument: Any, value: Any) -> bool:
    if isinstance(argument, Mapping):
        if len(argument) != 1:
            raise PatternError(f"anything-but takes one nested operator, got {dict(argument)!r}")
        ((operator, nested),) = argument.items()
        if operator not in _STRING_OPERATORS:
            raise PatternError(f"anything-but does not support {operator!r}")
        return isinstance(value, str) and not _string_operator(operator, nested, value)
    excluded = argument if isinstance(argument, list) else [argument]
    if not excluded or not (
        all(isinstance(item, str) for item in excluded) or all(_is_number(item) for item in excluded)
    ):
        raise PatternError(f"anything-but takes strings or numbers (not mixed), got {argument!r}")
    return not any(_equals(item, value) for item in excluded)


def _numeric_conditions(argument: Any) -> list[tuple[str, float]]:
    if not isinstance(argument, list) or not argument or len(argument) % 2 or len(argument) > 4:
        raise PatternError(f"numeric takes 1 or 2 (comparator, number) pairs, got {argument!r}")
    conditions = []
    for comparator, bound in zip(argument[::2], argument[1::2], strict=True):
        if comparator not in _NUMERIC_COMPARATORS or not _is_number(bound):
            raise PatternError(f"numeric: invalid condition {comparator!r} {bound!r}")
        conditions.append((comparator, float(bound)))
    return conditions


def _numeric(conditions: list[tuple[str, float]], value: float) -> bool:
    return all(_compare(comparator, value, bound) for comparator, bound in conditions)


def _compare(comparator: str, value: float, bound: float) -> bool:
    if comparator == "=":
        return math.isclose(value, bound, rel_tol=0, abs_tol=1e-6)
    if comparator == "<":
        return value < bound
    if comparator == "<=":
        return value <= bound
    if comparator == ">":
        return value > bound
    return value >= bound
