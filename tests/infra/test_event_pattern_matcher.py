"""The test matcher itself: it must agree with aws/event-ruler's README examples before it may judge our
patterns. Events and rules below are the README's (trimmed where noted)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.event_pattern_matcher import PatternError, matches

README_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "012345679012",
    "time": "2017-10-02T16:24:49Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
    "detail": {
        "c-count": 5,
        "d-count": 3,
        "x-limit": 301.8,
        "source-ip": "10.0.0.33",
        "instance-id": "i-000000aaaaaa00000",
        "state": "running",
    },
}

EMPLOYEES: dict[str, Any] = {
    "employees": [
        {"firstName": "John", "lastName": "Doe"},
        {"firstName": "Anna", "lastName": "Smith"},
        {"firstName": "Peter", "lastName": "Jones"},
    ]
}


@pytest.mark.parametrize(
    "pattern",
    [
        {
            "detail-type": ["EC2 Instance State-change Notification"],
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
            "detail": {"state": ["initializing", "running"]},
        },
        {"time": [{"prefix": "2017-10-02"}]},
        {"source": [{"suffix": "ec2"}]},
        {"source": [{"equals-ignore-case": "AWS.EC2"}]},
        {"detail-type": [{"wildcard": "EC2*State-change*"}]},
        {"detail": {"state": [{"anything-but": "initializing"}]}},
        {"detail": {"x-limit": [{"anything-but": 123}]}},
        {"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}},
        {"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}},
        {"detail": {"state": [{"anything-but": {"prefix": "init"}}]}},
        {
            "detail": {
                "c-count": [{"numeric": [">", 0, "<=", 5]}],
                "d-count": [{"numeric": ["<", 10]}],
                "x-limit": [{"numeric": ["=", 3.018e2]}],
            }
        },
        {"detail": {"c-count": [{"exists": True}]}},
        {"detail": {"no-such-field": [{"exists": False}]}},
        {"source": ["aws.ec2"], "$or": [{"region": ["eu-west-1"]}, {"account": ["012345679012"]}]},
        {
            "$or": [{"region": ["eu-west-1"]}, {"detail-type": [{"prefix": "EC2"}]}],
            "detail": {"$or": [{"state": ["stopped"]}, {"c-count": [{"numeric": [">=", 5]}]}]},
        },
    ],
    ids=lambda pattern: str(pattern)[:60],
)
def test_readme_rules_that_match_the_readme_event(pattern: dict[str, Any]) -> None:
    assert matches(pattern, README_EVENT)


@pytest.mark.parametrize(
    "pattern",
    [
        {"detail": {"state": ["initializing"]}},
        {"source": ["aws.ec"]},  # exact, not prefix
        {"time": [{"prefix": "2017-10-03"}]},
        {"detail": {"state": [{"anything-but": ["running"]}]}},
        {"detail": {"state": [{"anything-but": {"prefix": "run"}}]}},
        {"detail": {"c-count": [{"numeric": [">", 5]}]}},
        {"detail": {"c-count": [{"exists": False}]}},
        {"detail": {"no-such-field": [{"exists": True}]}},
        {"detail": {"no-such-field": [{"anything-but": "x"}]}},  # anything-but needs the field
        {"detail": {"c-count": ["5"]}},  # a string never equals a number
        {"detail": {"state": [{"numeric": [">", 0]}]}},  # numeric only matches numbers
        {"detail": {"c-count": [{"prefix": "5"}]}},  # prefix only matches strings
        {"$or": [{"region": ["eu-west-1"]}, {"account": ["1"]}]},
        {"detail": {"state": {"nested": ["running"]}}},  # a scalar is not an object
    ],
    ids=lambda pattern: str(pattern)[:60],
)
def test_rules_that_do_not_match_the_readme_event(pattern: dict[str, Any]) -> None:
    assert not matches(pattern, README_EVENT)


def test_array_of_objects_is_crushed_out_but_fields_must_share_an_element() -> None:
    # GIVEN the README's employees event
    # THEN one field matches through the array, two fields only within one element
    assert matches({"employees": {"firstName": ["Anna"]}}, EMPLOYEES)
    assert matches({"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}}, EMPLOYEES)
    assert not matches({"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}, EMPLOYEES)


def test_multi_level_arrays_are_crushed_out_too() -> None:
    nested = {
        "employees": [
            [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna", "lastName": "Smith"}],
            [{"firstName": "Peter", "lastName": "Jones"}],
        ]
    }
    assert matches({"employees": {"firstName": ["Peter"], "lastName": ["Jones"]}}, nested)
    assert not matches({"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}, nested)


def test_array_of_scalars_matches_when_any_element_matches() -> None:
    event = {"resources": ["arn:a", "arn:b"], "tags": []}
    assert matches({"resources": ["arn:b", "arn:c"]}, event)
    assert not matches({"resources": ["arn:c"]}, event)
    assert not matches({"tags": [{"exists": True}]}, event)  # an empty array has no values
    assert matches({"tags": [{"exists": False}]}, event)


def test_exists_only_sees_leaves() -> None:
    # README: exists:false matches when the named node is an object (not a leaf).
    event = {"detail": {"state": "running", "c-count": {"c1": 100}}}
    assert matches({"detail": {"c-count": [{"exists": False}]}}, event)
    assert not matches({"detail": {"c-count": [{"exists": True}]}}, event)
    # ... and when a whole parent is absent.
    assert matches({"missing": {"child": [{"exists": False}]}}, event)


def test_wildcards_escape_stars_and_backslashes() -> None:
    event = {"name": "a*b", "path": "a\\b", "alarm": "autostop-sweep-1/LossNotDecreasing"}
    assert matches({"name": [{"wildcard": "a\\*b"}]}, event)
    assert not matches({"name": [{"wildcard": "a\\*c"}]}, {"name": "a*c-not"})
    assert matches({"path": [{"wildcard": "a\\\\b"}]}, event)
    assert matches({"alarm": [{"wildcard": "autostop-sweep-*/LossNotDecreasing"}]}, event)
    assert not matches({"alarm": [{"wildcard": "autostop-sweep-*/Loss"}]}, event)  # anchored at the end
    assert not matches({"alarm": [{"wildcard": "sweep-*"}]}, event)  # anchored at the start


def test_booleans_and_null_match_only_themselves() -> None:
    event = {"flag": True, "nothing": None, "count": 1}
    assert matches({"flag": [True]}, event)
    assert not matches({"flag": ["true"]}, event)
    assert not matches({"count": [True]}, event)  # 1 is not true
    assert matches({"nothing": [None]}, event)
    assert not matches({"missing": [None]}, event)


def test_or_needs_all_of_a_branch() -> None:
    event = {"a": 1, "b": 2}
    assert matches({"$or": [{"a": [1], "b": [3]}, {"b": [2]}]}, event)
    assert not matches({"$or": [{"a": [1], "b": [3]}, {"b": [4]}]}, event)


def test_moto_limitation_is_not_ours() -> None:
    # moto's matcher never matches inside arrays of objects; EventBridge (and this matcher) does.
    event = {"detail": {"DebugRuleEvaluationStatuses": [{"RuleEvaluationStatus": "IssuesFound"}]}}
    assert matches(
        {"detail": {"DebugRuleEvaluationStatuses": {"RuleEvaluationStatus": ["IssuesFound"]}}}, event
    )


@pytest.mark.parametrize(
    "pattern",
    [
        {"source": "aws.ec2"},  # a leaf must be an array
        {"source": []},
        {"source": [{"cidr": "10.0.0.0/24"}]},  # not implemented: must not silently fail to match
        {"source": [{"prefix": "a", "suffix": "b"}]},
        {"source": [{"no-such-operator": 1}]},
        {"source": [{"wildcard": "a**b"}]},
        {"source": [{"wildcard": "a\\b"}]},
        {"source": [{"anything-but": ["a", 1]}]},
        {"detail": {"c-count": [{"numeric": [">", "1"]}]}},
        {"detail": {"c-count": [{"numeric": ["!=", 1]}]}},
        {"detail": {"state": [{"exists": "yes"}]}},
        {"$or": [{"source": ["aws.ec2"]}]},  # $or needs two branches
    ],
    ids=lambda pattern: str(pattern)[:60],
)
def test_invalid_patterns_raise(pattern: dict[str, Any]) -> None:
    with pytest.raises(PatternError):
        matches(pattern, README_EVENT)
