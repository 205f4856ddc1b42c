"""When a campaign runs: one-off instants, recurring cron, and "10:00 in each recipient's zone".

EventBridge Scheduler triggers the fan-out (`at(...)` or `cron(...)` plus a time zone). For
local-time campaigns one trigger fires at the earliest instant any recipient zone reaches the
local time; the fan-out then buckets recipients by zone and enqueues each bucket with a delay,
so nothing polls per recipient.

Wall-clock rules (DST): a local time that does not exist (spring-forward gap) moves to the
first valid instant after the gap; one that happens twice (fall-back) takes the first.
"""

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

ScheduleKind = Literal["once", "recurring", "local_time"]

# The easternmost offset in use (Pacific/Kiritimati): with no zones given, a local-time
# campaign starts when the first place on Earth reaches its local time.
EARLIEST_UTC_OFFSET = timedelta(hours=14)


class UnknownTimeZone(ValueError):
    pass


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or UnknownTimeZone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZone(f"unknown time zone {name!r}; use an IANA name like 'America/Chicago'") from exc


# --- EventBridge Scheduler cron ---------------------------------------------------------------


class _CronField(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i
    allows_question: bool = False  # "?" (day-of-month / day-of-week only)
    allows_step: bool = True
    last_suffix: bool = False  # "L" alone, and "<n>L" in day-of-week
    weekday_suffix: bool = False  # "<n>W" and "LW" in day-of-month
    nth: bool = False  # "<weekday>#<n>" in day-of-week


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")

# The six fields of `cron(minutes hours day-of-month month day-of-week year)` and the
# wildcards EventBridge accepts in each.
_CRON_FIELDS: tuple[_CronField, ...] = (
    _CronField(name="minutes", low=0, high=59),
    _CronField(name="hours", low=0, high=23),
    _CronField(
        name="day-of-month", low=1, high=31, allows_question=True, last_suffix=True, weekday_suffix=True
    ),
    _CronField(name="month", low=1, high=12, names=_MONTHS),
    _CronField(
        name="day-of-week",
        low=1,
        high=7,
        names=_WEEKDAYS,
        allows_question=True,
        allows_step=False,
        last_suffix=True,
        nth=True,
    ),
    _CronField(name="year", low=1970, high=2199),
)

_CRON_WRAPPER = re.compile(r"cron\((?P<body>[^()]*)\)\Z")


class InvalidCron(ValueError):
    pass


def _cron_value(field: _CronField, token: str) -> int:
    upper = token.upper()
    if upper in field.names:
        return field.low + field.names.index(upper)
    if not token.isdigit():
        raise InvalidCron(f"{field.name}: {token!r} is not a value")
    value = int(token)
    if not field.low <= value <= field.high:
        raise InvalidCron(f"{field.name}: {value} is outside {field.low}-{field.high}")
    return value


def _check_cron_item(field: _CronField, item: str) -> None:
    upper = item.upper()
    if upper == "*":
        return
    if field.last_suffix and upper == "L":
        return
    if field.weekday_suffix and upper == "LW":
        return
    if field.weekday_suffix and upper.endswith("W"):
        _cron_value(field, item[:-1])
        return
    if field.last_suffix and field.nth and upper.endswith("L"):
        _cron_value(field, item[:-1])
        return
    if field.nth and "#" in item:
        weekday, _, nth = item.partition("#")
        _cron_value(field, weekday)
        if not (nth.isdigit() and 1 <= int(nth) <= 5):
            raise InvalidCron(f"{field.name}: {item!r} needs an occurrence 1-5 after '#'")
        return
    base, has_step, step = item.partition("/")
    if has_step:
        if not field.allows_step:
            raise InvalidCron(f"{field.name}: increments ('/') are not allowed")
        if not (step.isdigit() and int(step) >= 1):
            raise InvalidCron(f"{field.name}: {item!r} needs a positive increment after '/'")
        if base == "*":
            return
    start, is_range, end = base.partition("-")
    _cron_value(field, start)
    if is_range:
        _cron_value(field, end)


def _check_cron_field(field: _CronField, text: str) -> None:
    if text == "?":
        if not field.allows_question:
            raise InvalidCron(f"{field.name}: '?' is only allowed in day-of-month and day-of-week")
        return
    items = text.split(",")
    if field.nth and "#" in text and len(items) > 1:
        raise InvalidCron(f"{field.name}: a '#' expression cannot be combined with others")
    for item in items:
        if not item:
            raise InvalidCron(f"{field.name}: empty item in {text!r}")
        _check_cron_item(field, item)


def validate_cron(expression: str) -> str:
    """Check an EventBridge Scheduler `cron(...)` expression; return it with spacing normalised."""
    wrapper = _CRON_WRAPPER.match(expression.strip())
    if wrapper is None:
        raise InvalidCron(
            f"{expression!r} is not of the form cron(minutes hours day-of-month month day-of-week year)"
        )
    fields = wrapper.group("body").split()
    if len(fields) != len(_CRON_FIELDS):
        raise InvalidCron(f"cron needs {len(_CRON_FIELDS)} fields, got {len(fields)}: {expression!r}")
    for field, text in zip(_CRON_FIELDS, fields, strict=True):
        _check_cron_field(field, text)
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        raise InvalidCron("exactly one of day-of-month and day-of-week must be '?'")
    return f"cron({' '.join(fields)})"


# --- local wall time -> instant ---------------------------------------------------------------


def _wall(instant_seconds: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(instant_seconds, UTC).astimezone(tz).replace(tzinfo=None)


def _first_instant_at_or_after(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first instant whose wall time in `tz` is >= `wall`, for a `wall` inside a gap.

    With fold=0 a gap time is read with the offset before the jump (an instant after the
    gap), with fold=1 with the offset after it (an instant before the gap); the transition
    lies between, found by bisecting whole seconds (tz transitions fall on whole seconds).
    """
    before = math.floor(wall.replace(tzinfo=tz, fold=1).timestamp())
    after = math.ceil(wall.replace(tzinfo=tz, fold=0).timestamp())
    if before > after:
        before, after = after, before
    while after - before > 1:
        middle = (before + after) // 2
        if _wall(middle, tz) >= wall:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def local_instant(wall: datetime, zone_name: str) -> datetime:
    """The aware UTC instant when the naive `wall` time occurs in `zone_name` (DST rules above)."""
    tz = zone(zone_name)
    first = wall.replace(tzinfo=tz, fold=0)
    instant = first.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != wall:
        return _first_instant_at_or_after(wall, tz)
    return instant


def local_send_instants(local_time: time, on: date, zones: Iterable[str]) -> dict[str, datetime]:
    """zone -> the aware UTC instant when it is `local_time` there on `on`."""
    wall = datetime.combine(on, local_time.replace(tzinfo=None))
    return {zone_name: local_instant(wall, zone_name) for zone_name in zones}


def bucket_deferral(zone_instants: Mapping[str, datetime], now: datetime) -> list[tuple[datetime, list[str]]]:
    """Zones grouped by send instant, earliest first.

    Instants at or before `now` collapse into one bucket at `now` (the trigger fires at the
    earliest zone's instant, so by the time fan-out runs that zone is already due); the
    send-time gate still checks each recipient's window.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    buckets: dict[datetime, list[str]] = {}
    for zone_name, instant in zone_instants.items():
        due = max(instant, now).astimezone(UTC)
        buckets.setdefault(due, []).append(zone_name)
    return [(instant, sorted(zones)) for instant, zones in sorted(buckets.items())]


# --- the schedule model ----------------------------------------------------------------------

# Which optional fields each kind needs; every other field must be left empty.
_FIELDS_BY_KIND: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # kind: (required, allowed)
    "once": (frozenset({"at"}), frozenset({"at", "timezone"})),
    "recurring": (frozenset({"cron"}), frozenset({"cron", "timezone"})),
    "local_time": (frozenset({"local_time", "date"}), frozenset({"local_time", "date"})),
}
_OPTIONAL_FIELDS = ("at", "cron", "timezone", "local_time", "date")


class Schedule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ScheduleKind
    at: datetime | None = None  # once: an aware instant, or naive wall time in `timezone`
    cron: str | None = None  # recurring: EventBridge Scheduler "cron(0 10 ? * MON *)"
    timezone: str | None = None  # IANA; for recurring cron and once-with-naive
    local_time: time | None = None  # local_time: this wall time in each recipient's zone...
    date: dt.date | None = None  # ...on this date

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        return None if value is None else validate_cron(value)

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value

    @field_validator("local_time")
    @classmethod
    def _naive_local_time(cls, value: time | None) -> time | None:
        if value is not None and value.tzinfo is not None:
            raise ValueError("local_time is a wall time in each recipient's zone; give it without an offset")
        return value

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Self:
        required, allowed = _FIELDS_BY_KIND[self.kind]
        given = {name for name in _OPTIONAL_FIELDS if getattr(self, name) is not None}
        if missing := sorted(required - given):
            raise ValueError(f"a {self.kind} schedule needs {', '.join(missing)}")
        if extra := sorted(given - allowed):
            raise ValueError(f"a {self.kind} schedule does not take {', '.join(extra)}")
        if self.kind == "once" and self.at is not None:
            if self.at.tzinfo is None and self.timezone is None:
                raise ValueError("a once schedule needs an aware 'at' or a naive 'at' with a timezone")
            if self.at.tzinfo is not None and self.timezone is not None:
                raise ValueError("give 'at' with an offset or 'timezone', not both")
        return self

    def first_instant(self, zones: Iterable[str] | None = None) -> datetime | None:
        """When it first fires (None for recurring: Scheduler owns cron arithmetic)."""
        if self.kind == "once":
            assert self.at is not None
            if self.at.tzinfo is not None:
                return self.at.astimezone(UTC)
            assert self.timezone is not None
            return local_instant(self.at, self.timezone)
        if self.kind == "local_time":
            assert self.local_time is not None
            assert self.date is not None
            if zones is None:
                wall = datetime.combine(self.date, self.local_time).replace(tzinfo=UTC)
                return wall - EARLIEST_UTC_OFFSET
            instants = local_send_instants(self.local_time, self.date, zones)
            if not instants:
                raise ValueError("a local_time schedule needs at least one recipient time zone")
            return min(instants.values())
        return None

    def last_instant(self) -> datetime | None:
        """A bound after which it can no longer fire (None for recurring)."""
        if self.kind == "local_time":
            assert self.local_time is not None
            assert self.date is not None
            # The westernmost offset in use is UTC-12.
            return datetime.combine(self.date, self.local_time).replace(tzinfo=UTC) + timedelta(hours=12)
        return self.first_instant()


def _at_expression(instant: datetime) -> str:
    # Scheduler takes whole seconds; round up so it never fires before the requested instant.
    utc = instant.astimezone(UTC)
    if utc.microsecond:
        utc = utc.replace(microsecond=0) + timedelta(seconds=1)
    return f"at({utc.strftime('%Y-%m-%dT%H:%M:%S')})"


def scheduler_expression(schedule: Schedule, zones: Iterable[str] | None = None) -> tuple[str, str | None]:
    """The EventBridge Scheduler (ScheduleExpression, ScheduleExpressionTimezone) pair.

    One-off and local-time schedules become `at(...)` in UTC (we resolve DST ourselves);
    recurring ones keep their cron and zone (None: Scheduler's default, UTC). For local-time
    schedules `zones` are the recipients' zones; without them the trigger is the first
    moment any zone on Earth (UTC+14) reaches the local time.
    """
    instant = schedule.first_instant(zones)
    if instant is None:
        assert schedule.cron is not None
        return schedule.cron, schedule.timezone
    return _at_expression(instant), "UTC"
