import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from consentry.domain.audience import (
    KNOWN_OPS,
    MAX_FILTER_CONDITIONS,
    MAX_FILTER_DEPTH,
    AudienceFilter,
)

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def build(data: Any) -> AudienceFilter:
    return AudienceFilter.model_validate(data)


def cond(attribute: str, op: str, value: Any = None) -> dict[str, Any]:
    node: dict[str, Any] = {"attribute": attribute, "op": op}
    if value is not None:
        node["value"] = value
    return node


def check(node: dict[str, Any], attributes: Mapping[str, object], now: datetime = NOW) -> bool:
    return build(node).matches(attributes, now)


# --- each op ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "attributes", "expected"),
    [
        # contains: tags held as list / set / tuple, case-insensitive
        (cond("pets", "contains", "ferret"), {"pets": ["dog", "ferret"]}, True),
        (cond("pets", "contains", "ferret"), {"pets": {"FERRET"}}, True),
        (cond("pets", "contains", "ferret"), {"pets": ("cat",)}, False),
        (cond("pets", "contains", "ferret"), {"pets": []}, False),
        (cond("pets", "contains", "ferret"), {"pets": "ferret"}, False),  # a string is not a tag list
        (cond("pets", "contains", "ferret"), {"pets": [1, None, "ferrets"]}, False),
        (cond("pets", "contains", "ferret"), {}, False),
        # equals
        (cond("tier", "equals", "gold"), {"tier": "Gold"}, True),
        (cond("tier", "equals", "gold"), {"tier": "silver"}, False),
        (cond("visits", "equals", 3), {"visits": Decimal("3")}, True),
        (cond("visits", "equals", 3), {"visits": 3.0}, True),
        (cond("ratio", "equals", 0.1), {"ratio": Decimal("0.1")}, True),
        (cond("visits", "equals", 3), {"visits": "3"}, False),
        (cond("vip", "equals", True), {"vip": True}, True),
        (cond("vip", "equals", True), {"vip": 1}, False),
        (cond("visits", "equals", 1), {"visits": True}, False),
        (cond("tier", "equals", "gold"), {}, False),
        # not_equals: present, comparable and different
        (cond("tier", "not_equals", "gold"), {"tier": "silver"}, True),
        (cond("tier", "not_equals", "gold"), {"tier": "GOLD"}, False),
        (cond("tier", "not_equals", "gold"), {}, False),
        (cond("tier", "not_equals", "gold"), {"tier": 5}, False),
        # in
        (cond("state", "in", ["FL", "TX"]), {"state": "tx"}, True),
        (cond("state", "in", ["FL", "TX"]), {"state": "CA"}, False),
        (cond("size", "in", [1, 2]), {"size": Decimal("2")}, True),
        (cond("size", "in", [1, 2]), {"size": "2"}, False),
        # numeric ranges
        (cond("spend", "gte", 100), {"spend": 100}, True),
        (cond("spend", "gt", 100), {"spend": 100}, False),
        (cond("spend", "gt", 100), {"spend": Decimal("100.01")}, True),
        (cond("spend", "lte", 9.5), {"spend": 9.5}, True),
        (cond("spend", "lt", 9.5), {"spend": 9.5}, False),
        (cond("spend", "lt", 9.5), {"spend": -3}, True),
        (cond("spend", "gte", 100), {"spend": "150"}, False),
        (cond("spend", "gte", 0), {"spend": True}, False),
        (cond("spend", "gte", 0), {"spend": float("nan")}, False),
        (cond("spend", "gte", 0), {"spend": None}, False),
        # exists
        (cond("email", "exists"), {"email": "a@example.com"}, True),
        (cond("email", "exists"), {"email": "  "}, False),
        (cond("email", "exists"), {"email": None}, False),
        (cond("email", "exists"), {}, False),
        (cond("pets", "exists"), {"pets": []}, False),
        (cond("visits", "exists"), {"visits": 0}, True),
        (cond("email", "exists", False), {}, True),
        (cond("email", "exists", False), {"email": "a@example.com"}, False),
    ],
)
def test_condition(node: dict[str, Any], attributes: dict[str, object], expected: bool) -> None:
    assert check(node, attributes) is expected


# --- dates -----------------------------------------------------------------------------------


def test_within_days_on_instants_includes_both_ends() -> None:
    node = cond("last_purchase", "within_days", 90)
    assert check(node, {"last_purchase": NOW - timedelta(days=90)})
    assert check(node, {"last_purchase": NOW})
    assert not check(node, {"last_purchase": NOW - timedelta(days=90, microseconds=1)})
    assert not check(node, {"last_purchase": NOW + timedelta(seconds=1)})


def test_within_days_on_dates_counts_whole_utc_days() -> None:
    node = cond("last_purchase", "within_days", 90)
    today = NOW.date()
    assert check(node, {"last_purchase": today - timedelta(days=90)})
    assert check(node, {"last_purchase": today})
    assert not check(node, {"last_purchase": today - timedelta(days=91)})
    assert not check(node, {"last_purchase": today + timedelta(days=1)})


def test_within_days_is_relative_to_the_given_now() -> None:
    node = cond("last_purchase", "within_days", 30)
    attributes = {"last_purchase": "2026-01-01"}
    assert check(node, attributes, datetime(2026, 1, 20, tzinfo=UTC))
    assert not check(node, attributes, datetime(2026, 3, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-01", True),
        ("2026-03-01T08:00:00Z", True),
        ("2026-03-01T08:00:00+05:00", True),
        ("2026-03-01T08:00:00", True),  # naive: read as UTC
        ("2025-01-01T08:00:00Z", False),
        (date(2026, 3, 1), True),
        (datetime(2026, 3, 1, 8), True),
        ("not a date", False),
        ("2026-02-30", False),
        ("", False),
        (20260301, False),
        (None, False),
        (["2026-03-01"], False),
    ],
)
def test_within_days_reads_dates_leniently_and_never_raises(value: object, expected: bool) -> None:
    assert check(cond("seen", "within_days", 30), {"seen": value}) is expected


def test_within_days_uses_the_utc_day_of_now() -> None:
    # 23:30 on the 14th at -05:00 is already the 15th in UTC.
    late_evening = datetime(2026, 3, 14, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    node = cond("seen", "within_days", 0)
    assert check(node, {"seen": "2026-03-15"}, late_evening)
    assert not check(node, {"seen": "2026-03-14"}, late_evening)


def test_older_than_days() -> None:
    node = cond("last_purchase", "older_than_days", 90)
    assert check(node, {"last_purchase": NOW - timedelta(days=90, seconds=1)})
    assert not check(node, {"last_purchase": NOW - timedelta(days=90)})
    assert check(node, {"last_purchase": NOW.date() - timedelta(days=91)})
    assert not check(node, {"last_purchase": NOW.date() - timedelta(days=90)})
    assert not check(node, {"last_purchase": "garbage"})
    assert not check(node, {})


def test_date_range_with_date_bounds_covers_whole_days() -> None:
    node = cond("signup", "date_range", {"from": "2026-01-01", "to": "2026-01-31"})
    assert check(node, {"signup": "2026-01-01T00:00:00Z"})
    assert check(node, {"signup": "2026-01-31T23:59:59Z"})
    assert check(node, {"signup": date(2026, 1, 15)})
    assert not check(node, {"signup": "2025-12-31T23:59:59Z"})
    assert not check(node, {"signup": "2026-02-01T00:00:00Z"})
    assert not check(node, {"signup": "2026-02-01"})


def test_date_range_with_instant_bounds_and_open_ends() -> None:
    after = cond("signup", "date_range", {"from": "2026-01-01T12:00:00+00:00"})
    assert check(after, {"signup": "2026-01-01T12:00:00Z"})
    assert not check(after, {"signup": "2026-01-01T11:59:59Z"})
    assert check(after, {"signup": "2099-01-01"})
    before = cond("signup", "date_range", {"to": "2026-01-01T12:00:00Z"})
    assert check(before, {"signup": "2026-01-01T12:00:00Z"})
    assert not check(before, {"signup": "2026-01-01T12:00:01Z"})
    assert check(before, {"signup": "1999-01-01"})


# --- combinators -----------------------------------------------------------------------------

FERRET_RECENT = {
    "all": [cond("pets", "contains", "ferret"), cond("last_purchase", "within_days", 90)],
}


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"pets": ["ferret"], "last_purchase": "2026-03-01"}, True),
        ({"pets": ["ferret"], "last_purchase": "2025-01-01"}, False),
        ({"pets": ["dog"], "last_purchase": "2026-03-01"}, False),
        ({}, False),
    ],
)
def test_all_needs_every_condition(attributes: dict[str, object], expected: bool) -> None:
    assert check(FERRET_RECENT, attributes) is expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [({"state": "FL"}, True), ({"vip": True}, True), ({"state": "CA", "vip": False}, False), ({}, False)],
)
def test_any_needs_one_condition(attributes: dict[str, object], expected: bool) -> None:
    node = {"any": [cond("state", "equals", "FL"), cond("vip", "equals", True)]}
    assert check(node, attributes) is expected


def test_not_inverts_and_includes_missing_attributes() -> None:
    node = {"not": cond("tier", "equals", "gold")}
    assert check(node, {"tier": "silver"})
    assert check(node, {})
    assert not check(node, {"tier": "gold"})


def test_nested_combinators() -> None:
    node = {
        "all": [
            cond("pets", "contains", "ferret"),
            {"any": [cond("spend", "gte", 100), {"not": cond("state", "in", ["TX", "FL"])}]},
        ]
    }
    assert check(node, {"pets": ["ferret"], "spend": 150, "state": "TX"})
    assert check(node, {"pets": ["ferret"], "spend": 5, "state": "CA"})
    assert not check(node, {"pets": ["ferret"], "spend": 5, "state": "TX"})
    assert not check(node, {"pets": [], "spend": 500, "state": "CA"})


def test_referenced_attributes() -> None:
    node = build(
        {"all": [cond("pets", "contains", "x"), {"not": {"any": [cond("a", "exists"), cond("b", "gt", 1)]}}]}
    )
    assert node.referenced_attributes() == {"pets", "a", "b"}


# --- data, serialisation and validation ------------------------------------------------------


def test_round_trips_through_json() -> None:
    data = {
        "all": [
            cond("pets", "contains", "ferret"),
            {"not": cond("state", "in", ["TX", "FL"])},
            cond("signup", "date_range", {"from": "2026-01-01", "to": "2026-02-01T10:00:00Z"}),
            cond("email", "exists"),
        ]
    }
    original = build(data)
    dumped = json.loads(original.model_dump_json())
    assert "not" in dumped["all"][1]
    assert dumped["all"][2]["value"] == {"from": "2026-01-01", "to": "2026-02-01T10:00:00Z"}
    assert AudienceFilter.model_validate(dumped) == original
    assert AudienceFilter.model_validate_json(original.model_dump_json()) == original


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (cond("pets", "nope", "x"), "op one of"),
        ({"attribute": "pets", "value": "x"}, "op one of"),
        ({"everything": []}, "op one of"),
        ("all", "op one of"),
        ({"all": [cond("a", "like", "x")]}, "op one of"),
        (cond("spend", "gte", "100"), "valid number"),
        (cond("spend", "gte", True), "valid number"),
        (cond("spend", "gt", float("inf")), "finite number"),
        (cond("seen", "within_days", "90"), "valid integer"),
        (cond("seen", "within_days", -1), "greater than or equal to 0"),
        (cond("seen", "within_days", 1.5), "valid integer"),
        (cond("pets", "contains", 3), "valid string"),
        (cond("pets", "contains", ""), "at least 1 character"),
        (cond("state", "in", []), "at least 1 item"),
        (cond("state", "in", "FL"), "valid tuple"),
        (cond("state", "equals", ["FL"]), "valid"),
        (cond("email", "exists", "yes"), "valid boolean"),
        (cond("", "exists"), "at least 1 character"),
        ({"attribute": "a", "op": "equals", "value": 1, "extra": 1}, "Extra inputs"),
        ({"all": []}, "at least 1 item"),
        ({"any": []}, "at least 1 item"),
        ({"all": [cond("a", "exists")], "any": [cond("a", "exists")]}, "Extra inputs"),
        (cond("d", "date_range", {}), "needs 'from', 'to' or both"),
        (cond("d", "date_range", {"from": "2026-02-01", "to": "2026-01-01"}), "'from' is after 'to'"),
        (cond("d", "date_range", {"from": "soon"}), "not an ISO date"),
        (cond("d", "date_range", {"from": 1700000000}), "not an ISO date"),
        (cond("d", "date_range", {"since": "2026-01-01"}), "Extra inputs"),
    ],
)
def test_invalid_filters_are_refused_with_a_clear_message(data: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        build(data)
    assert message in str(caught.value)


def test_unknown_op_message_lists_every_known_op() -> None:
    with pytest.raises(ValidationError) as caught:
        build(cond("a", "similar", "b"))
    for op in KNOWN_OPS:
        assert op in str(caught.value)


def test_depth_is_bounded() -> None:
    node: dict[str, Any] = cond("a", "exists")
    for _ in range(MAX_FILTER_DEPTH - 1):
        node = {"not": node}
    build(node)
    with pytest.raises(ValidationError, match="nested"):
        build({"not": node})


def test_condition_count_is_bounded() -> None:
    build({"any": [cond(f"a{i}", "exists") for i in range(MAX_FILTER_CONDITIONS)]})
    with pytest.raises(ValidationError, match="conditions"):
        build({"any": [cond(f"a{i}", "exists") for i in range(MAX_FILTER_CONDITIONS + 1)]})


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build(cond("a", "exists")).matches({}, datetime(2026, 1, 1))


# --- matching never raises -------------------------------------------------------------------

EVERY_OP = [
    cond("v", "contains", "x"),
    cond("v", "equals", "x"),
    cond("v", "equals", 1),
    cond("v", "equals", True),
    cond("v", "not_equals", 2.5),
    cond("v", "in", ["x", 1, False]),
    cond("v", "gt", 0),
    cond("v", "gte", 0),
    cond("v", "lt", 0),
    cond("v", "lte", 0),
    cond("v", "within_days", 30),
    cond("v", "older_than_days", 30),
    cond("v", "date_range", {"from": "2026-01-01", "to": "2026-12-31T00:00:00Z"}),
    cond("v", "exists"),
]

any_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.decimals()
    | st.text(max_size=30)
    | st.dates()
    | st.datetimes()
    | st.datetimes(timezones=st.timezones())
    | st.binary(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=6,
)


@given(value=any_value, now=st.datetimes(timezones=st.timezones()))
def test_matching_any_value_with_any_op_returns_a_bool(value: object, now: datetime) -> None:
    for node in EVERY_OP:
        assert check(node, {"v": value}, now) in (True, False)
        assert check({"not": node}, {"v": value}, now) is not check(node, {"v": value}, now)


@given(st.integers(min_value=-(10**6), max_value=10**6), st.integers(min_value=-(10**6), max_value=10**6))
def test_numeric_ops_agree_with_python_comparisons(actual: int, bound: int) -> None:
    attributes = {"v": Decimal(actual)}
    assert check(cond("v", "gt", bound), attributes) is (actual > bound)
    assert check(cond("v", "gte", bound), attributes) is (actual >= bound)
    assert check(cond("v", "lt", bound), attributes) is (actual < bound)
    assert check(cond("v", "lte", bound), attributes) is (actual <= bound)
    assert check(cond("v", "equals", bound), attributes) is (actual == bound)


def test_calendar_edges_do_not_raise() -> None:
    end_of_time = build(cond("d", "date_range", {"from": "0001-01-01", "to": "9999-12-31"}))
    assert end_of_time.matches({"d": "9999-12-31T23:59:59+00:00"}, NOW)
    assert end_of_time.matches({"d": "0001-01-01"}, NOW)
    dawn = datetime(1, 1, 1, tzinfo=UTC)
    assert not check(cond("d", "within_days", 30), {"d": "2000-01-01"}, dawn)
    assert not check(cond("d", "older_than_days", 30), {"d": "0001-01-01"}, dawn)
