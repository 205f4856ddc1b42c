"""Audience filters: which of a topic's subscribers a campaign reaches.

A filter is data, stored with the campaign and accepted from the admin API/CLI:

    {"all": [{"attribute": "pets", "op": "contains", "value": "ferret"},
             {"attribute": "last_purchase", "op": "within_days", "value": 90}]}

Nodes are `{"all": [...]}`, `{"any": [...]}`, `{"not": {...}}` or a condition
`{"attribute": ..., "op": ..., "value": ...}`. Validation happens when the filter is built
(unknown op, wrong value type -> pydantic ValidationError); matching never raises: an attribute
of the wrong type, or a date that does not parse, simply does not match, because sending a
ferret coupon to someone whose data we cannot read is the wrong default.

Semantics worth knowing:
- string comparisons ignore case (imports and web forms disagree on capitalisation);
- numbers compare by value across int/float/Decimal (DynamoDB returns Decimal); booleans
  are not numbers;
- `not_equals` needs the attribute present and comparable; use `{"not": {... equals ...}}`
  to also include contacts without the attribute;
- day-based date rules use UTC days; a date-only attribute is the whole UTC day.
"""

import operator
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    model_validator,
)

# Bounds on what an operator may submit: deep or huge filters are mistakes, and matching
# runs once per subscriber of a topic.
MAX_FILTER_DEPTH = 8
MAX_FILTER_CONDITIONS = 100

Scalar = StrictBool | StrictInt | StrictFloat | StrictStr
Number = StrictInt | StrictFloat
DayCount = Annotated[StrictInt, Field(ge=0, le=36_600)]

_COMPARATORS: dict[str, Callable[[Decimal, Decimal], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}

_NODE_CONFIG = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, serialize_by_alias=True)


# --- reading attribute values (never raises) -------------------------------------------------


def _as_number(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        number = Decimal(str(value))
    elif isinstance(value, Decimal):
        number = value
    else:
        return None
    return number if number.is_finite() else None


def _scalar_equal(attribute_value: object, wanted: bool | int | float | str) -> bool | None:
    """True/False when the two are comparable, None when their types do not match."""
    if isinstance(wanted, bool):
        return attribute_value is wanted if isinstance(attribute_value, bool) else None
    if isinstance(wanted, str):
        return attribute_value.casefold() == wanted.casefold() if isinstance(attribute_value, str) else None
    actual = _as_number(attribute_value)
    expected = _as_number(wanted)
    if actual is None or expected is None:
        return None
    return actual == expected


def _as_date_or_instant(value: object) -> date | datetime | None:
    """A date (whole day) or an aware instant; naive datetimes are taken as UTC."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return value
    return None


def _start_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _instant(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else _start_of(value)


def _is_present(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple | set | frozenset | dict):
        return bool(value)
    return True


# --- conditions ------------------------------------------------------------------------------


class _Condition(BaseModel):
    model_config = _NODE_CONFIG

    attribute: StrictStr = Field(min_length=1)

    def referenced_attributes(self) -> frozenset[str]:
        return frozenset({self.attribute})

    def size(self) -> tuple[int, int]:
        """(depth, number of conditions)."""
        return 1, 1

    def matches(self, attributes: Mapping[str, object], now: datetime) -> bool:
        return self.test(attributes.get(self.attribute), now)

    def test(self, value: object, now: datetime) -> bool:
        raise NotImplementedError


class Contains(_Condition):
    """The attribute is a list/set of strings (tags) holding `value`."""

    op: Literal["contains"]
    value: StrictStr = Field(min_length=1)

    def test(self, value: object, now: datetime) -> bool:
        if not isinstance(value, list | tuple | set | frozenset):
            return False
        wanted = self.value.casefold()
        return any(isinstance(item, str) and item.casefold() == wanted for item in value)


class Equals(_Condition):
    op: Literal["equals"]
    value: Scalar

    def test(self, value: object, now: datetime) -> bool:
        return _scalar_equal(value, self.value) is True


class NotEquals(_Condition):
    """Present, comparable and different (absent or mismatched types do not match)."""

    op: Literal["not_equals"]
    value: Scalar

    def test(self, value: object, now: datetime) -> bool:
        return _scalar_equal(value, self.value) is False


class In(_Condition):
    op: Literal["in"]
    value: tuple[Scalar, ...] = Field(min_length=1, max_length=1000)

    def test(self, value: object, now: datetime) -> bool:
        return any(_scalar_equal(value, candidate) is True for candidate in self.value)


class Compare(_Condition):
    op: Literal["gt", "gte", "lt", "lte"]
    value: Number

    @model_validator(mode="after")
    def _finite(self) -> Self:
        if _as_number(self.value) is None:
            raise ValueError(f"{self.op} needs a finite number, got {self.value!r}")
        return self

    def test(self, value: object, now: datetime) -> bool:
        actual = _as_number(value)
        bound = _as_number(self.value)
        return actual is not None and bound is not None and _COMPARATORS[self.op](actual, bound)


class _DaysCondition(_Condition):
    value: DayCount

    def test(self, value: object, now: datetime) -> bool:
        when = _as_date_or_instant(value)
        if when is None:
            return False
        try:
            if isinstance(when, datetime):
                return self.compare(when, now, now - timedelta(days=self.value))
            today = now.astimezone(UTC).date()
            return self.compare(when, today, today - timedelta(days=self.value))
        except OverflowError:
            # Cut-offs before year 1: nothing real lies there, so nothing matches.
            return False

    def compare(self, when: date, now: date, cutoff: date) -> bool:
        raise NotImplementedError


class WithinDays(_DaysCondition):
    """The date/time lies in the last `value` days up to `now` (future dates do not match)."""

    op: Literal["within_days"]

    def compare(self, when: date, now: date, cutoff: date) -> bool:
        return cutoff <= when <= now


class OlderThanDays(_DaysCondition):
    """The date/time lies more than `value` days before `now` (win-back audiences)."""

    op: Literal["older_than_days"]

    def compare(self, when: date, now: date, cutoff: date) -> bool:
        return when < cutoff


def _parse_bound(value: object) -> date | datetime | None:
    # "2026-01-01" is a whole day, anything longer an instant (naive = UTC). Numbers are
    # refused rather than read as epoch seconds: nobody types a campaign date that way.
    if value is None:
        return None
    parsed = _as_date_or_instant(value)
    if parsed is None:
        raise ValueError(f"{value!r} is not an ISO date (2026-01-31) or date-time (2026-01-31T09:00:00Z)")
    return parsed


DateBound = Annotated[datetime | date | None, BeforeValidator(_parse_bound)]


class DateBounds(BaseModel):
    """Inclusive absolute bounds; a date bound covers that whole UTC day."""

    model_config = _NODE_CONFIG

    start: DateBound = Field(default=None, alias="from")
    end: DateBound = Field(default=None, alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start is None and self.end is None:
            raise ValueError("date_range needs 'from', 'to' or both")
        if self.start is not None and self.end is not None and _instant(self.start) > self._end_instant():
            raise ValueError("date_range 'from' is after 'to'")
        return self

    def _end_instant(self) -> datetime:
        assert self.end is not None
        if isinstance(self.end, datetime):
            return self.end
        return datetime.combine(self.end, time.max, tzinfo=UTC)

    def contains(self, when: datetime) -> bool:
        if self.start is not None and when < _instant(self.start):
            return False
        return self.end is None or when <= self._end_instant()


class DateRange(_Condition):
    op: Literal["date_range"]
    value: DateBounds

    def test(self, value: object, now: datetime) -> bool:
        when = _as_date_or_instant(value)
        return when is not None and self.value.contains(_instant(when))


class Exists(_Condition):
    """`value: true` (default): present and not blank/empty; `value: false`: the opposite."""

    op: Literal["exists"]
    value: StrictBool = True

    def test(self, value: object, now: datetime) -> bool:
        return _is_present(value) is self.value


# --- combinators -----------------------------------------------------------------------------


class AllOf(BaseModel):
    model_config = _NODE_CONFIG
    KIND: ClassVar[str] = "all"

    all: tuple["FilterNode", ...] = Field(min_length=1)

    def matches(self, attributes: Mapping[str, object], now: datetime) -> bool:
        return all(node.matches(attributes, now) for node in self.all)

    def referenced_attributes(self) -> frozenset[str]:
        return frozenset().union(*(node.referenced_attributes() for node in self.all))

    def size(self) -> tuple[int, int]:
        sizes = [node.size() for node in self.all]
        return 1 + max(depth for depth, _ in sizes), sum(count for _, count in sizes)


class AnyOf(BaseModel):
    model_config = _NODE_CONFIG
    KIND: ClassVar[str] = "any"

    any: tuple["FilterNode", ...] = Field(min_length=1)

    def matches(self, attributes: Mapping[str, object], now: datetime) -> bool:
        return any(node.matches(attributes, now) for node in self.any)

    def referenced_attributes(self) -> frozenset[str]:
        return frozenset().union(*(node.referenced_attributes() for node in self.any))

    def size(self) -> tuple[int, int]:
        sizes = [node.size() for node in self.any]
        return 1 + max(depth for depth, _ in sizes), sum(count for _, count in sizes)


class Not(BaseModel):
    model_config = _NODE_CONFIG
    KIND: ClassVar[str] = "not"

    negated: "FilterNode" = Field(alias="not")

    def matches(self, attributes: Mapping[str, object], now: datetime) -> bool:
        return not self.negated.matches(attributes, now)

    def referenced_attributes(self) -> frozenset[str]:
        return self.negated.referenced_attributes()

    def size(self) -> tuple[int, int]:
        depth, count = self.negated.size()
        return depth + 1, count


# op -> union tag; several comparison ops share one model.
_CONDITION_TAGS: dict[str, str] = {
    "contains": "contains",
    "equals": "equals",
    "not_equals": "not_equals",
    "in": "in",
    "gt": "compare",
    "gte": "compare",
    "lt": "compare",
    "lte": "compare",
    "within_days": "within_days",
    "older_than_days": "older_than_days",
    "date_range": "date_range",
    "exists": "exists",
}
_COMBINATORS: tuple[str, ...] = ("all", "any", "not")
KNOWN_OPS: tuple[str, ...] = tuple(_CONDITION_TAGS)


def _node_tag(data: Any) -> str | None:
    if isinstance(data, AllOf | AnyOf | Not):
        return data.KIND
    if isinstance(data, _Condition):
        op = getattr(data, "op", None)
        return _CONDITION_TAGS.get(op) if isinstance(op, str) else None
    if not isinstance(data, Mapping):
        return None
    for combinator in _COMBINATORS:
        if combinator in data:
            return combinator
    op = data.get("op")
    return _CONDITION_TAGS.get(op) if isinstance(op, str) else None


FilterNode = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[Not, Tag("not")]
    | Annotated[Contains, Tag("contains")]
    | Annotated[Equals, Tag("equals")]
    | Annotated[NotEquals, Tag("not_equals")]
    | Annotated[In, Tag("in")]
    | Annotated[Compare, Tag("compare")]
    | Annotated[WithinDays, Tag("within_days")]
    | Annotated[OlderThanDays, Tag("older_than_days")]
    | Annotated[DateRange, Tag("date_range")]
    | Annotated[Exists, Tag("exists")],
    Discriminator(
        _node_tag,
        custom_error_type="unknown_filter_node",
        custom_error_message=(
            "a filter node is {'all': [...]}, {'any': [...]}, {'not': {...}} or "
            "{'attribute': ..., 'op': ..., 'value': ...} with op one of: " + ", ".join(KNOWN_OPS)
        ),
    ),
]

for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()


class AudienceFilter(RootModel[FilterNode]):
    """A validated filter; `matches` decides one contact."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        depth, conditions = self.root.size()
        if depth > MAX_FILTER_DEPTH:
            raise ValueError(f"filter is nested {depth} deep; the limit is {MAX_FILTER_DEPTH}")
        if conditions > MAX_FILTER_CONDITIONS:
            raise ValueError(f"filter has {conditions} conditions; the limit is {MAX_FILTER_CONDITIONS}")
        return self

    def matches(self, attributes: Mapping[str, object], now: datetime) -> bool:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return self.root.matches(attributes, now)

    def referenced_attributes(self) -> frozenset[str]:
        """Attribute names the filter reads (e.g. to project only those from the store)."""
        return self.root.referenced_attributes()
