"""Send-time windows: may this number be texted at this instant, and if not, when next?

A send is allowed when, in every time zone the recipient may be in, every rule that applies
allows the recipient's local wall-clock time: the legal rules (US federal, the number's state,
France for marketing; data/send_windows.json) and the business's own window. Legal rules always
apply, so a business window can only narrow them.

Two views of the same rules, kept consistent by tests:
- a direct check of one instant (cheap, gives the reason code of a refusal);
- allowed UTC intervals per UTC day, computed per time-zone offset segment so DST gaps and
  repeated hours are exact, intersected over rules and zones and cached per schedule. The
  next allowed instant and the end of the current window come from these by stepping over
  window boundaries, never minute by minute.
"""

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from consentry.domain.messages import MessageClass
from consentry.domain.regions import Regions, regions_for

MINUTES_PER_DAY = 24 * 60
DEFAULT_HORIZON = timedelta(days=14)

BUSINESS_RULE = "business"
OUTSIDE_WINDOW = "outside_window"
EXCLUDED_DAY = "excluded_day"
EXCLUDED_DATE = "excluded_date"
UNKNOWN_TIME_ZONE = "unknown_time_zone"
NO_COMMON_WINDOW = "no_common_window"

Interval = tuple[datetime, datetime]  # aware UTC, end exclusive

DAY_NUMBERS: dict[str, int] = {
    "mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6,
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6,
    "tues": 1, "weds": 2, "thur": 3, "thurs": 3,
}  # fmt: skip
DAY_ALIASES: dict[str, str] = {
    "weekdays": "mon-fri", "business": "mon-fri", "weekend": "sat-sun", "daily": "mon-sun", "all": "mon-sun",
}  # fmt: skip
DAY_LABELS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAYS: frozenset[int] = frozenset(range(7))

_WINDOW_PATTERN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")


def parse_days(spec: str) -> frozenset[int]:
    """'mon-fri', 'mon,wed,fri', 'fri-mon' (wraps), 'weekdays'... -> weekday numbers, 0 = Monday."""
    days: set[int] = set()
    text = DAY_ALIASES.get(spec.strip().lower(), spec.strip().lower())
    for token in filter(None, (part.strip() for part in text.split(","))):
        first, _, last = token.partition("-")
        if first.strip() not in DAY_NUMBERS or (last and last.strip() not in DAY_NUMBERS):
            raise ValueError(f"unknown day {token!r} in {spec!r}: use e.g. mon-fri, mon-sun or mon,wed,fri")
        start = DAY_NUMBERS[first.strip()]
        stop = DAY_NUMBERS[last.strip()] if last else start
        days.update((start + step) % 7 for step in range((stop - start) % 7 + 1))
    if not days:
        raise ValueError(f"no days in {spec!r}: use e.g. mon-fri, mon-sun or mon,wed,fri")
    return frozenset(days)


def describe_days(days: frozenset[int]) -> str:
    """Weekday numbers -> 'mon-fri', 'mon,wed,fri', 'mon-wed,sat' (parse_days reads it back)."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        DAY_LABELS[run[0]] if len(run) == 1 else f"{DAY_LABELS[run[0]]}-{DAY_LABELS[run[-1]]}" for run in runs
    )


def parse_window(spec: str) -> tuple[time, time]:
    """'09:00-20:00' -> (start, end); end exclusive, '24:00' (or '00:00') = midnight ending the day."""
    match = _WINDOW_PATTERN.match(spec)
    if match is None:
        raise ValueError(f"window {spec!r} is not HH:MM-HH:MM, e.g. 09:00-20:00")
    start_hour, start_minute, end_hour, end_minute = (int(group) for group in match.groups())
    if (
        start_hour > 23
        or start_minute > 59
        or end_minute > 59
        or end_hour > 24
        or (end_hour == 24 and end_minute)
    ):
        raise ValueError(f"window {spec!r} has a time that does not exist")
    end = time(0) if end_hour == 24 else time(end_hour, end_minute)
    return time(start_hour, start_minute), end


def _minute_of_day(value: time) -> int:
    return value.hour * 60 + value.minute


class WindowPolicy(BaseModel):
    """The business's own window: local hours, weekdays and excluded dates. Narrows the legal rules."""

    model_config = ConfigDict(frozen=True)

    start: time = time(0)
    end: time = time(0)  # exclusive; 00:00 is the midnight that ends the day
    days: frozenset[int] = ALL_DAYS  # 0 = Monday
    excluded_dates: frozenset[date] = frozenset()

    @field_validator("start", "end")
    @classmethod
    def _whole_minutes_local(cls, value: time) -> time:
        if value.tzinfo is not None or value.second or value.microsecond:
            raise ValueError("window times are whole minutes of local wall-clock time, without a zone")
        return value

    @field_validator("days")
    @classmethod
    def _real_weekdays(cls, value: frozenset[int]) -> frozenset[int]:
        if not value or not value <= ALL_DAYS:
            raise ValueError("days must be a non-empty set of weekday numbers 0 (Monday) to 6 (Sunday)")
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> Self:
        if self.end_minute <= self.start_minute:
            raise ValueError("window start must be before its end (windows cannot cross midnight)")
        return self

    @property
    def start_minute(self) -> int:
        return _minute_of_day(self.start)

    @property
    def end_minute(self) -> int:
        return _minute_of_day(self.end) or MINUTES_PER_DAY

    @property
    def unrestricted(self) -> bool:
        return (
            (self.start_minute, self.end_minute) == (0, MINUTES_PER_DAY)
            and self.days == ALL_DAYS
            and (not self.excluded_dates)
        )

    @classmethod
    def parse(
        cls,
        window: str | None = None,
        days: str | None = None,
        excluded_dates: Iterable[str | date] = (),
        base: "WindowPolicy | None" = None,
    ) -> "WindowPolicy":
        """Build from CLI/config text; parts not given are taken from `base` (default: unrestricted).

        Raises ValueError with a message fit for a user.
        """
        base = base or cls()
        start, end = parse_window(window) if window is not None else (base.start, base.end)
        dates = set(base.excluded_dates)
        for value in excluded_dates:
            try:
                dates.add(value if isinstance(value, date) else date.fromisoformat(value.strip()))
            except ValueError as exc:
                raise ValueError(f"excluded date {value!r} is not YYYY-MM-DD") from exc
        if (_minute_of_day(end) or MINUTES_PER_DAY) <= _minute_of_day(start):
            raise ValueError(f"window {window!r} must start before it ends (windows cannot cross midnight)")
        return cls(
            start=start,
            end=end,
            days=parse_days(days) if days is not None else base.days,
            excluded_dates=frozenset(dates),
        )

    def describe(self) -> str:
        end = "24:00" if self.end_minute == MINUTES_PER_DAY else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end} {describe_days(self.days)}"


DEFAULT_POLICIES: dict[MessageClass, WindowPolicy] = {
    # compliance.md: business hours on business days for marketing...
    "promotional": WindowPolicy(start=time(9), end=time(20), days=frozenset(range(5))),
    # ...and only the legal rules for transactional messages, unless a topic narrows them.
    "transactional": WindowPolicy(),
}


class WindowDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    allowed: bool
    reason: str | None = None  # refusal reason code, None when allowed
    # The rule that decided: the refusing one or, when allowed, the one that closes the window
    # ("none" when nothing closes it within the horizon).
    rule: str
    zone: str | None = None  # the time zone in which that rule decided
    next_allowed: datetime | None = None  # refused: earliest allowed instant within the horizon (UTC)
    allowed_until: datetime | None = None  # allowed: when the window closes, if within the horizon (UTC)
    zones: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DailyRule:
    """One rule in local wall-clock time: hours per weekday, closed dates, a reason for each refusal."""

    name: str
    hours: tuple[tuple[int, int] | None, ...]  # per weekday 0=Mon: (start, end) minutes, end exclusive
    time_reason: str
    closed_day_reason: str
    excluded_dates: frozenset[date] = frozenset()
    excluded_date_reason: str = EXCLUDED_DATE
    holiday_calendar: str | None = None
    holiday_reason: str = EXCLUDED_DATE

    def closed_date_reason(self, day: date) -> str | None:
        if day in self.excluded_dates:
            return self.excluded_date_reason
        if self.holiday_calendar is not None and day in public_holidays(self.holiday_calendar, day.year):
            return self.holiday_reason
        return None

    def hours_on(self, day: date) -> tuple[int, int] | None:
        if self.closed_date_reason(day) is not None:
            return None
        return self.hours[day.weekday()]

    def refusal_at(self, local: datetime) -> str | None:
        """Reason this rule refuses the local wall-clock time, or None when it allows it."""
        day = local.date()
        closed_reason = self.closed_date_reason(day)
        if closed_reason is not None:
            return closed_reason
        hours = self.hours[day.weekday()]
        if hours is None:
            return self.closed_day_reason
        # Boundaries are whole minutes, so comparing whole seconds decides exactly.
        second_of_day = local.hour * 3600 + local.minute * 60 + local.second
        if not hours[0] * 60 <= second_of_day < hours[1] * 60:
            return self.time_reason
        return None


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian computus)."""
    golden = year % 19
    century, year_of_century = divmod(year, 100)
    leap_centuries, century_rest = divmod(century, 4)
    moon_correction = (century + 8) // 25
    epact_correction = (century - moon_correction + 1) // 3
    epact = (19 * golden + century - leap_centuries - epact_correction + 15) % 30
    leap_years, year_rest = divmod(year_of_century, 4)
    weekday_shift = (32 + 2 * century_rest + 2 * leap_years - epact - year_rest) % 7
    late_correction = (golden + 11 * epact + 22 * weekday_shift) // 451
    month, day = divmod(epact + weekday_shift - 7 * late_correction + 114, 31)
    return date(year, month, day + 1)


def _load_rule_table() -> dict[str, Any]:
    text = resources.files("consentry.domain.data").joinpath("send_windows.json").read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


_RULE_TABLE = _load_rule_table()
HOLIDAY_CALENDARS: dict[str, dict[str, Any]] = _RULE_TABLE["holidays"]


@lru_cache(maxsize=256)
def public_holidays(calendar: str, year: int) -> frozenset[date]:
    spec = HOLIDAY_CALENDARS[calendar]
    fixed = {date(year, int(month_day[:2]), int(month_day[3:])) for month_day in spec["fixed"]}
    easter = easter_sunday(year)
    movable = {easter + timedelta(days=offset) for offset in spec["days_after_easter"]}
    return frozenset(fixed | movable)


@dataclass(frozen=True, slots=True)
class LegalRule:
    rule: DailyRule
    countries: frozenset[str]
    states: frozenset[str]
    classes: frozenset[str]

    def applies(self, country: str, states: Iterable[str], message_class: MessageClass) -> bool:
        if message_class not in self.classes:
            return False
        return country in self.countries or not self.states.isdisjoint(states)


def _weekly_hours(spec: dict[str, str]) -> tuple[tuple[int, int] | None, ...]:
    hours: list[tuple[int, int] | None] = [None] * 7
    for day_spec, window_spec in spec.items():
        start, end = parse_window(window_spec)
        for day in parse_days(day_spec):
            hours[day] = (_minute_of_day(start), _minute_of_day(end) or MINUTES_PER_DAY)
    return tuple(hours)


def _legal_rule(entry: dict[str, Any]) -> LegalRule:
    reason: str = entry["reason"]
    return LegalRule(
        rule=DailyRule(
            name=entry["rule"],
            hours=_weekly_hours(entry["hours"]),
            time_reason=reason,
            closed_day_reason=entry.get("closed_day_reason", reason),
            holiday_calendar=entry.get("holidays"),
            holiday_reason=entry.get("holiday_reason", reason),
        ),
        countries=frozenset(entry.get("countries", ())),
        states=frozenset(entry.get("states", ())),
        classes=frozenset(entry["classes"]),
    )


LEGAL_RULES: tuple[LegalRule, ...] = tuple(_legal_rule(entry) for entry in _RULE_TABLE["rules"])


def business_rule(policy: WindowPolicy) -> DailyRule:
    span = (policy.start_minute, policy.end_minute)
    return DailyRule(
        name=BUSINESS_RULE,
        hours=tuple(span if day in policy.days else None for day in range(7)),
        time_reason=OUTSIDE_WINDOW,
        closed_day_reason=EXCLUDED_DAY,
        excluded_dates=policy.excluded_dates,
    )


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


@lru_cache(maxsize=8192)
def _offset_segments(zone_name: str, utc_day: date) -> tuple[tuple[datetime, datetime, timedelta], ...]:
    """Split a UTC day into stretches of constant UTC offset in the zone: (start, end, offset)."""
    zone = ZoneInfo(zone_name)
    step = timedelta(hours=3)  # real zones never change offset twice within 3 hours
    second = timedelta(seconds=1)

    def offset_at(instant: datetime) -> timedelta:
        offset = instant.astimezone(zone).utcoffset()
        assert offset is not None
        return offset

    segments: list[tuple[datetime, datetime, timedelta]] = []
    segment_start = probe = _day_start(utc_day)
    day_end = segment_start + timedelta(days=1)
    current = offset_at(segment_start)
    while probe < day_end:
        next_probe = min(probe + step, day_end)
        if offset_at(next_probe) != current:
            # Bisect to the first whole second with the new offset: offset(low) is current, offset(high) not.
            low, high = probe, next_probe
            while high - low > second:
                middle = (low + (high - low) / 2).replace(microsecond=0)
                if offset_at(middle) == current:
                    low = middle
                else:
                    high = middle
            if high < day_end:
                segments.append((segment_start, high, current))
                segment_start, current = high, offset_at(high)
        probe = next_probe
    segments.append((segment_start, day_end, current))
    return tuple(segments)


def _merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def _intersect(left: Sequence[Interval], right: Sequence[Interval]) -> tuple[Interval, ...]:
    result: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if start < end:
            result.append((start, end))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return tuple(result)


@lru_cache(maxsize=16_384)
def _rule_intervals(rule: DailyRule, zone_name: str, utc_day: date) -> tuple[Interval, ...]:
    """The instants of one UTC day at which the rule allows the local time in the zone."""
    intervals: list[Interval] = []
    for segment_start, segment_end, offset in _offset_segments(zone_name, utc_day):
        # Within a segment wall time = UTC + offset, so a local span maps back by subtracting it.
        wall_low = (segment_start + offset).replace(tzinfo=None)
        wall_high = (segment_end + offset).replace(tzinfo=None)
        local_day = wall_low.date()
        while datetime.combine(local_day, time()) < wall_high:
            hours = rule.hours_on(local_day)
            if hours is not None:
                midnight = datetime.combine(local_day, time())
                low = max(midnight + timedelta(minutes=hours[0]), wall_low)
                high = min(midnight + timedelta(minutes=hours[1]), wall_high)
                if low < high:
                    intervals.append(
                        ((low - offset).replace(tzinfo=UTC), (high - offset).replace(tzinfo=UTC))
                    )
            local_day += timedelta(days=1)
    return _merge(intervals)


@dataclass(frozen=True, slots=True)
class Refusal:
    rule: str
    reason: str
    zone: str


@dataclass(eq=False, slots=True)
class WindowSchedule:
    """Every (rule, zone) constraint for one kind of recipient; cached, so compare by identity."""

    zones: tuple[str, ...]
    rules: tuple[DailyRule, ...]
    _days: dict[date, tuple[Interval, ...]] = field(default_factory=dict, repr=False)

    _MAX_CACHED_DAYS = 64

    def refusal_at(self, at: datetime) -> Refusal | None:
        """The first rule (legal before business) refusing the instant in any zone, or None."""
        if not self.zones:
            return Refusal(rule="zone", reason=UNKNOWN_TIME_ZONE, zone="")
        local_times = [(zone, at.astimezone(ZoneInfo(zone))) for zone in self.zones]
        for rule in self.rules:
            for zone, local in local_times:
                reason = rule.refusal_at(local)
                if reason is not None:
                    return Refusal(rule=rule.name, reason=reason, zone=zone)
        return None

    def intervals_on(self, utc_day: date) -> tuple[Interval, ...]:
        """Allowed instants of a UTC day, intersected over every rule and zone."""
        cached = self._days.get(utc_day)
        if cached is not None:
            return cached
        if not self.zones:
            intervals: tuple[Interval, ...] = ()
        else:
            intervals = ((_day_start(utc_day), _day_start(utc_day) + timedelta(days=1)),)
            for rule in self.rules:
                for zone in self.zones:
                    intervals = _intersect(intervals, _rule_intervals(rule, zone, utc_day))
        if len(self._days) >= self._MAX_CACHED_DAYS:
            self._days.clear()
        self._days[utc_day] = intervals
        return intervals

    def next_allowed(self, at: datetime, horizon: timedelta = DEFAULT_HORIZON) -> datetime | None:
        """Earliest instant >= at that is allowed, if there is one before at + horizon."""
        at = _as_utc(at)
        limit = at + horizon
        day = at.date()
        while _day_start(day) < limit:
            for start, end in self.intervals_on(day):
                if end > at:
                    candidate = max(start, at)
                    return candidate if candidate < limit else None
            day += timedelta(days=1)
        return None

    def allowed_until(self, at: datetime, horizon: timedelta = DEFAULT_HORIZON) -> datetime | None:
        """End of the allowed stretch containing `at`: None if it reaches past the horizon."""
        return _run_end(self.intervals_on, _as_utc(at), horizon)


def _run_end(
    intervals_on: Callable[[date], tuple[Interval, ...]], at: datetime, horizon: timedelta
) -> datetime | None:
    limit = at + horizon
    day = at.date()
    end = next((high for low, high in intervals_on(day) if low <= at < high), at)
    # A stretch clipped at UTC midnight may go on in the next day's intervals.
    while end == _day_start(day + timedelta(days=1)) and end < limit:
        day += timedelta(days=1)
        following = intervals_on(day)
        if not following or following[0][0] != end:
            break
        end = following[0][1]
    return None if end >= limit else end


def _as_utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("the send time must be timezone-aware")
    return at.astimezone(UTC)


@lru_cache(maxsize=4096)
def schedule_for(
    country: str,
    states: tuple[str, ...],
    zones: tuple[str, ...],
    message_class: MessageClass,
    policy: WindowPolicy,
) -> WindowSchedule:
    """The schedule of every recipient sharing country, states and zones: fanout buckets on this."""
    rules = [legal.rule for legal in LEGAL_RULES if legal.applies(country, states, message_class)]
    if not policy.unrestricted:
        rules.append(business_rule(policy))
    return WindowSchedule(zones=zones, rules=tuple(rules))


def decide(
    regions: Regions, at: datetime, message_class: MessageClass, policy: WindowPolicy | None = None
) -> WindowDecision:
    """The window part of the send-time gate for a recipient whose regions are known."""
    at = _as_utc(at)
    policy = policy if policy is not None else DEFAULT_POLICIES[message_class]
    schedule = schedule_for(regions.country, regions.states, regions.zones, message_class, policy)
    refusal = schedule.refusal_at(at)
    if refusal is None:
        until = schedule.allowed_until(at)
        # Whatever refuses the first instant after the stretch is the rule that closes it.
        closing = schedule.refusal_at(until) if until is not None else None
        return WindowDecision(
            allowed=True,
            rule=closing.rule if closing is not None else "none",
            zone=closing.zone if closing is not None else None,
            allowed_until=until,
            zones=regions.zones,
        )
    following = schedule.next_allowed(at)
    if (
        following is None
        and len(regions.zones) > 1
        and all(
            schedule_for(regions.country, regions.states, (zone,), message_class, policy).next_allowed(at)
            for zone in regions.zones
        )
    ):
        # Every zone has its hours, but they never overlap: the spread of zones is the cause.
        refusal = Refusal(rule="zones", reason=NO_COMMON_WINDOW, zone=refusal.zone)
    return WindowDecision(
        allowed=False,
        reason=refusal.reason,
        rule=refusal.rule,
        zone=refusal.zone or None,
        next_allowed=following,
        zones=regions.zones,
    )


def check_window(
    number_e164: str,
    at: datetime,
    message_class: MessageClass,
    policy: WindowPolicy | None = None,
    zones_override: tuple[str, ...] | None = None,
) -> WindowDecision:
    """May `number_e164` be texted at `at`? Raises InvalidPhoneNumber / ValueError on bad input."""
    return decide(regions_for(number_e164, zones_override), at, message_class, policy)


def next_allowed(
    number_e164: str,
    at: datetime,
    message_class: MessageClass,
    policy: WindowPolicy | None = None,
    zones_override: tuple[str, ...] | None = None,
    horizon: timedelta = DEFAULT_HORIZON,
) -> datetime | None:
    """Earliest instant >= at (UTC) when every zone allows a send; None if none within the horizon."""
    regions = regions_for(number_e164, zones_override)
    policy = policy if policy is not None else DEFAULT_POLICIES[message_class]
    schedule = schedule_for(regions.country, regions.states, regions.zones, message_class, policy)
    return schedule.next_allowed(at, horizon)
