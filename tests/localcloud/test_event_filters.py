"""Lambda event filtering for exact values: what passes a mapping's `filter_criteria`, and
which patterns the local cloud refuses rather than matches differently from AWS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wsauth.localcloud.event_filters import FilterError, matches_any, parse_filters


def _criteria(*patterns: Any) -> dict[str, Any]:
    return {"filters": [{"pattern": json.dumps(pattern)} for pattern in patterns]}


def _record(event_name: str = "INSERT", key: str = "conn-1", **extra: Any) -> dict[str, Any]:
    return {
        "eventID": "1",
        "eventName": event_name,
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"connectionId": {"S": key}},
            "SequenceNumber": "100",
            "SizeBytes": 20,
            **extra,
        },
    }


@pytest.mark.parametrize(
    ("patterns", "record", "expected"),
    [
        ([{"eventName": ["INSERT", "REMOVE"]}], _record("INSERT"), True),
        ([{"eventName": ["INSERT", "REMOVE"]}], _record("REMOVE"), True),
        ([{"eventName": ["INSERT", "REMOVE"]}], _record("MODIFY"), False),
        ([{"dynamodb": {"Keys": {"connectionId": {"S": ["x"]}}}}], _record(key="x"), True),
        ([{"dynamodb": {"Keys": {"connectionId": {"S": ["x"]}}}}], _record(key="y"), False),
        ([{"dynamodb": {"Keys": {"userId": {"S": ["x"]}}}}], _record(key="x"), False),
        ([{"eventName": ["MODIFY"]}, {"dynamodb": {"SizeBytes": [20]}}], _record(), True),
        ([{"eventName": ["MODIFY"]}, {"dynamodb": {"SizeBytes": [21]}}], _record(), False),
        ([{"dynamodb": {"SizeBytes": [20.0]}}], _record(), True),
        ([{"dynamodb": {"SizeBytes": ["20"]}}], _record(), False),
        ([{"dynamodb": {"Flag": [True]}}], _record(Flag=True), True),
        ([{"dynamodb": {"Flag": [1]}}], _record(Flag=True), False),
        ([{"dynamodb": {"Gone": [None]}}], _record(Gone=None), True),
        ([{"dynamodb": {"Tags": ["b"]}}], _record(Tags=["a", "b"]), True),
        ([{"eventName": ["INSERT"], "eventSource": ["aws:sqs"]}], _record(), False),
        ([], _record("MODIFY"), True),
    ],
    ids=[
        "listed name",
        "other listed name",
        "unlisted name",
        "nested key value",
        "other key value",
        "absent field",
        "any filter: second",
        "no filter matches",
        "5 is 5.0",
        "a string is not a number",
        "boolean",
        "1 is not true",
        "null",
        "array field: any element",
        "every field must match",
        "no filters: everything",
    ],
)
def test_records_pass_when_a_filter_matches_every_field_it_names(
    patterns: list[Any], record: dict[str, Any], expected: bool
) -> None:
    """Exact-value patterns match as EventBridge's do; several filters are alternatives."""
    assert matches_any(parse_filters(_criteria(*patterns)), record) is expected


@pytest.mark.parametrize(
    ("pattern", "named"),
    [
        ({"eventName": [{"prefix": "INS"}]}, "prefix"),
        ({"eventName": [{"anything-but": ["MODIFY"]}]}, "anything-but"),
        ({"dynamodb": {"SizeBytes": [{"numeric": [">", 10]}]}}, "numeric"),
        ({"dynamodb": {"NewImage": [{"exists": True}]}}, "exists"),
        ({"eventName": ["INSERT", {"equals-ignore-case": "remove"}]}, "equals-ignore-case"),
        ({"$or": [{"eventName": ["INSERT"]}, {"eventName": ["REMOVE"]}]}, "$or"),
    ],
)
def test_pattern_operators_are_refused_by_name(pattern: Any, named: str) -> None:
    """An operator is an error naming it, not a pattern matched differently from AWS."""
    with pytest.raises(FilterError, match=r"uses .*" + named.replace("$", r"\$")):
        parse_filters(_criteria(pattern))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not JSON"),
        ('["INSERT"]', "is not a JSON object"),
        ('{"eventName": "INSERT"}', r'write \["INSERT"\]'),
        ('{"eventName": [["INSERT"]]}', "a list inside its list"),
    ],
)
def test_malformed_patterns_are_refused(text: str, message: str) -> None:
    """A pattern Lambda would refuse is refused with what to write."""
    with pytest.raises(FilterError, match=message):
        parse_filters({"filters": [{"pattern": text}]})


def test_event_names_are_what_a_name_only_filter_lets_through() -> None:
    """The start-up line can say `INSERT, REMOVE` for the usual filter."""
    names_only, keyed = parse_filters(
        _criteria({"eventName": ["INSERT", "REMOVE"]}, {"eventName": ["INSERT"], "x": ["y"]})
    )
    assert names_only.event_names() == ("INSERT", "REMOVE")
    assert keyed.event_names() is None
