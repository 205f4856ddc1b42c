from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from consentry.domain.schedule import (
    InvalidCron,
    Schedule,
    UnknownTimeZone,
    bucket_deferral,
    local_send_instants,
    scheduler_expression,
    validate_cron,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- cron ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 10 * * ? *)",
        "cron(15 12 * * ? *)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 8 1 * ? *)",
        "cron(0/15 * * * ? *)",
        "cron(*/10 * ? * mon-fri *)",
        "cron(0/5 8-17 ? * MON-FRI *)",
        "cron(0 9 ? * 2#1 *)",
        "cron(0 9 L * ? *)",
        "cron(0 9 LW * ? *)",
        "cron(0 9 15W * ? *)",
        "cron(0 9 ? * 6L *)",
        "cron(0 9 ? JAN,JUL MON 2026-2030)",
        "cron(30 23 31 DEC ? 2199)",
        "cron(0,30 9,17 1-15 1/2 ? *)",
    ],
)
def test_valid_cron(expression: str) -> None:
    assert validate_cron(expression) == expression


def test_cron_spacing_is_normalised() -> None:
    assert validate_cron("  cron(0  10 ? *   MON *) ") == "cron(0 10 ? * MON *)"


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 10 ? * MON *", "not of the form"),
        ("rate(5 minutes)", "not of the form"),
        ("cron(0 10 ? * MON)", "6 fields"),
        ("cron(0 0 10 ? * MON *)", "7"),
        ("cron(60 10 ? * MON *)", "minutes: 60"),
        ("cron(0 24 ? * MON *)", "hours: 24"),
        ("cron(0 10 32 * ? *)", "day-of-month: 32"),
        ("cron(0 10 0 * ? *)", "day-of-month: 0"),
        ("cron(0 10 ? 13 MON *)", "month: 13"),
        ("cron(0 10 ? FOO MON *)", "month"),
        ("cron(0 10 ? * 8 *)", "day-of-week: 8"),
        ("cron(0 10 ? * FUN *)", "day-of-week"),
        ("cron(0 10 ? * MON 1969)", "year: 1969"),
        ("cron(0 10 * * * *)", "exactly one"),
        ("cron(0 10 ? * ? *)", "exactly one"),
        ("cron(0 10 1 * MON *)", "exactly one"),
        ("cron(? 10 * * ? *)", "only allowed in day-of-month"),
        ("cron(0 10 ? * MON/2 *)", "increments"),
        ("cron(0/0 10 * * ? *)", "positive increment"),
        ("cron(0 10 ? * 2#6 *)", "occurrence 1-5"),
        ("cron(0 10 ? * 2#1,3#2 *)", "cannot be combined"),
        ("cron(0 10 1,,2 * ? *)", "empty item"),
        ("cron(0 L * * ? *)", "hours"),
        ("cron(0 10 ? * MONDAY *)", "day-of-week"),
        ("cron(-1 10 * * ? *)", "minutes"),
    ],
)
def test_invalid_cron(expression: str, problem: str) -> None:
    with pytest.raises(InvalidCron, match=problem.replace("?", r"\?")):
        validate_cron(expression)


# --- the schedule model ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"kind": "once"}, "needs at"),
        ({"kind": "once", "at": "2026-11-24T10:00:00"}, "naive 'at' with a timezone"),
        ({"kind": "once", "at": "2026-11-24T10:00:00Z", "timezone": "UTC"}, "not both"),
        (
            {"kind": "once", "at": "2026-11-24T10:00:00Z", "cron": "cron(0 10 ? * MON *)"},
            "does not take cron",
        ),
        ({"kind": "recurring"}, "needs cron"),
        ({"kind": "recurring", "cron": "cron(0 10 * * * *)"}, "exactly one"),
        (
            {"kind": "recurring", "cron": "cron(0 10 ? * MON *)", "timezone": "Mars/Olympus"},
            "unknown time zone",
        ),
        ({"kind": "recurring", "cron": "cron(0 10 ? * MON *)", "date": "2026-11-24"}, "does not take date"),
        ({"kind": "local_time", "local_time": "10:00"}, "needs date"),
        ({"kind": "local_time", "date": "2026-11-24"}, "needs local_time"),
        ({"kind": "local_time", "local_time": "10:00+02:00", "date": "2026-11-24"}, "without an offset"),
        ({"kind": "local_time", "local_time": "10:00", "date": "2026-11-24", "timezone": "UTC"}, "timezone"),
        ({"kind": "weekly"}, "kind"),
        ({"kind": "once", "at": "2026-11-24T10:00:00Z", "every": "day"}, "Extra inputs"),
    ],
)
def test_invalid_schedules(data: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Schedule.model_validate(data)
    assert problem in str(caught.value)


def test_schedule_round_trips_through_json() -> None:
    for schedule in [
        Schedule(kind="once", at=utc(2026, 11, 24, 10)),
        Schedule(kind="once", at=datetime(2026, 11, 24, 10), timezone="Europe/Paris"),
        Schedule(kind="recurring", cron="cron(0 10 ? * MON *)", timezone="America/Chicago"),
        Schedule(kind="local_time", local_time=time(10), date=date(2026, 11, 24)),
    ]:
        assert Schedule.model_validate_json(schedule.model_dump_json()) == schedule


# --- scheduler expressions -------------------------------------------------------------------


def test_once_with_an_aware_instant_is_sent_in_utc() -> None:
    at = datetime(2026, 11, 24, 10, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert scheduler_expression(Schedule(kind="once", at=at)) == ("at(2026-11-24T15:00:00)", "UTC")


def test_once_rounds_up_to_whole_seconds() -> None:
    at = datetime(2026, 11, 24, 10, 0, 0, 1, tzinfo=UTC)
    assert scheduler_expression(Schedule(kind="once", at=at)) == ("at(2026-11-24T10:00:01)", "UTC")


def test_once_with_a_naive_time_resolves_the_zone_and_dst() -> None:
    winter = Schedule(kind="once", at=datetime(2026, 1, 15, 10), timezone="America/New_York")
    summer = Schedule(kind="once", at=datetime(2026, 7, 15, 10), timezone="America/New_York")
    gap = Schedule(kind="once", at=datetime(2026, 3, 8, 2, 30), timezone="America/New_York")
    assert scheduler_expression(winter) == ("at(2026-01-15T15:00:00)", "UTC")
    assert scheduler_expression(summer) == ("at(2026-07-15T14:00:00)", "UTC")
    assert scheduler_expression(gap) == ("at(2026-03-08T07:00:00)", "UTC")  # 03:00 EDT


def test_recurring_keeps_its_cron_and_zone() -> None:
    chicago = Schedule(kind="recurring", cron="cron(0 10 ? * MON *)", timezone="America/Chicago")
    assert scheduler_expression(chicago) == ("cron(0 10 ? * MON *)", "America/Chicago")
    plain = Schedule(kind="recurring", cron="cron(0 10 ? * MON *)")
    assert scheduler_expression(plain) == ("cron(0 10 ? * MON *)", None)


def test_local_time_starts_when_the_easternmost_given_zone_gets_there() -> None:
    schedule = Schedule(kind="local_time", local_time=time(10), date=date(2026, 11, 24))
    zones = ["America/Los_Angeles", "Europe/Paris", "America/New_York"]
    # Paris is UTC+1 in November: 10:00 there is 09:00 UTC, the earliest of the three.
    assert scheduler_expression(schedule, zones) == ("at(2026-11-24T09:00:00)", "UTC")
    assert scheduler_expression(schedule, ["Pacific/Kiritimati", *zones]) == (
        "at(2026-11-23T20:00:00)",
        "UTC",
    )


def test_local_time_without_zones_starts_at_utc_plus_14() -> None:
    schedule = Schedule(kind="local_time", local_time=time(10), date=date(2026, 11, 24))
    assert scheduler_expression(schedule) == ("at(2026-11-23T20:00:00)", "UTC")


def test_local_time_with_an_empty_zone_list_is_an_error() -> None:
    schedule = Schedule(kind="local_time", local_time=time(10), date=date(2026, 11, 24))
    with pytest.raises(ValueError, match="at least one"):
        scheduler_expression(schedule, [])


# --- local send instants ---------------------------------------------------------------------


def test_instants_per_zone_on_an_ordinary_day() -> None:
    instants = local_send_instants(time(10), date(2026, 11, 24), ["Europe/London", "Asia/Kolkata", "UTC"])
    assert instants == {
        "Europe/London": utc(2026, 11, 24, 10),
        "Asia/Kolkata": utc(2026, 11, 24, 4, 30),
        "UTC": utc(2026, 11, 24, 10),
    }


@pytest.mark.parametrize(
    ("zone", "day", "wall", "expected"),
    [
        # Spring forward: 02:00 EST -> 03:00 EDT. 02:30 does not exist; 03:00 EDT = 07:00 UTC.
        ("America/New_York", date(2026, 3, 8), time(2, 30), utc(2026, 3, 8, 7)),
        ("America/New_York", date(2026, 3, 8), time(2, 0), utc(2026, 3, 8, 7)),
        ("America/New_York", date(2026, 3, 8), time(3, 0), utc(2026, 3, 8, 7)),
        ("America/New_York", date(2026, 3, 8), time(1, 59), utc(2026, 3, 8, 6, 59)),
        # Fall back: 01:30 happens in EDT (05:30 UTC) and again in EST; the first one wins.
        ("America/New_York", date(2026, 11, 1), time(1, 30), utc(2026, 11, 1, 5, 30)),
        # Europe: 01:00 UTC jump; 02:30 CET does not exist -> 03:00 CEST = 01:00 UTC.
        ("Europe/Berlin", date(2026, 3, 29), time(2, 30), utc(2026, 3, 29, 1)),
        ("Europe/Berlin", date(2026, 10, 25), time(2, 30), utc(2026, 10, 25, 0, 30)),
        # Lord Howe moves by 30 minutes: 02:00 -> 02:30 (+10:30 -> +11).
        ("Australia/Lord_Howe", date(2026, 10, 4), time(2, 15), utc(2026, 10, 3, 15, 30)),
        # Samoa skipped 30 December 2011 entirely: the first valid instant is 31 Dec 00:00 +14.
        ("Pacific/Apia", date(2011, 12, 30), time(10), utc(2011, 12, 30, 10)),
    ],
)
def test_dst_edges(zone: str, day: date, wall: time, expected: datetime) -> None:
    assert local_send_instants(wall, day, [zone]) == {zone: expected}


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(UnknownTimeZone, match="Mars/Olympus"):
        local_send_instants(time(10), date(2026, 11, 24), ["Europe/Paris", "Mars/Olympus"])


def _wall_of(instant: datetime, zone_name: str) -> datetime:
    return instant.astimezone(ZoneInfo(zone_name)).replace(tzinfo=None)


# Zones with unusual rules: half-hour DST, negative DST, skipped days, midnight transitions.
EDGE_ZONES = [
    "America/New_York",
    "America/Santiago",
    "America/Havana",
    "America/St_Johns",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Australia/Sydney",
    "Pacific/Apia",
    "Pacific/Chatham",
    "Africa/Casablanca",
    "Asia/Gaza",
]


def _offset(tz: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None
    return offset


def _transitions(zone_name: str, first_year: int, last_year: int) -> list[tuple[str, datetime, datetime]]:
    """(zone, wall time just before, wall time just after) for each offset change, found by
    stepping days, then minutes (these zones change on whole minutes)."""
    tz = ZoneInfo(zone_name)
    found: list[tuple[str, datetime, datetime]] = []
    instant = utc(first_year, 1, 1)
    while instant.year <= last_year:
        next_instant = instant + timedelta(days=1)
        if _offset(tz, instant) != _offset(tz, next_instant):
            low, high = instant, next_instant
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                middle = middle.replace(second=0, microsecond=0)
                if _offset(tz, middle) == _offset(tz, low):
                    low = middle
                else:
                    high = middle
            found.append((zone_name, _wall_of(low, zone_name), _wall_of(high, zone_name)))
        instant = next_instant
    return found


TRANSITIONS = [found for zone_name in EDGE_ZONES for found in _transitions(zone_name, 2010, 2030)]
ALL_ZONES = sorted(available_timezones())


def _check_instant(zone_name: str, day: date, wall_time: time) -> None:
    wall = datetime.combine(day, wall_time)
    instant = local_send_instants(wall_time, day, [zone_name])[zone_name]
    assert instant.tzinfo is UTC
    tz = ZoneInfo(zone_name)
    # Every instant showing this wall time, found independently: the time read with each fold.
    candidates = sorted(
        {
            candidate
            for fold in (0, 1)
            if _wall_of(candidate := wall.replace(tzinfo=tz, fold=fold).astimezone(UTC), zone_name) == wall
        }
    )
    if candidates:
        assert instant == candidates[0]  # shows local_time; the first one when it happens twice
        assert _wall_of(instant, zone_name) == wall
    else:
        # In a gap: the first valid instant after it.
        assert _wall_of(instant, zone_name) > wall
        assert _wall_of(instant - timedelta(seconds=1), zone_name) < wall
        assert instant.microsecond == 0


def test_edge_zones_have_gaps_and_folds_to_test() -> None:
    gaps = [1 for _, before, after in TRANSITIONS if after - before > timedelta(minutes=1)]
    folds = [1 for _, before, after in TRANSITIONS if after - before < timedelta(minutes=1)]
    assert len(gaps) > 50
    assert len(folds) > 50


@given(
    st.sampled_from(TRANSITIONS),
    st.timedeltas(min_value=timedelta(hours=-2), max_value=timedelta(hours=2)),
    st.booleans(),
)
def test_instants_around_dst_changes(
    transition: tuple[str, datetime, datetime], shift: timedelta, from_after: bool
) -> None:
    # Wall times within two hours of either side of a change: inside gaps, folds and next to them.
    zone_name, before, after = transition
    wall = (after if from_after else before) + shift
    _check_instant(zone_name, wall.date(), wall.time())


@given(
    st.sampled_from(ALL_ZONES),
    st.dates(min_value=date(1990, 1, 1), max_value=date(2037, 12, 31)),
    st.times(),
)
def test_instants_in_any_zone_on_any_date(zone_name: str, day: date, wall_time: time) -> None:
    _check_instant(zone_name, day, wall_time)


# --- bucketing -------------------------------------------------------------------------------


def test_bucket_deferral_groups_zones_by_instant_in_order() -> None:
    instants = local_send_instants(
        time(10),
        date(2026, 11, 24),
        ["America/Los_Angeles", "America/New_York", "America/Toronto", "America/Vancouver", "Europe/Paris"],
    )
    assert bucket_deferral(instants, utc(2026, 11, 24, 8)) == [
        (utc(2026, 11, 24, 9), ["Europe/Paris"]),
        (utc(2026, 11, 24, 15), ["America/New_York", "America/Toronto"]),
        (utc(2026, 11, 24, 18), ["America/Los_Angeles", "America/Vancouver"]),
    ]


def test_bucket_deferral_sends_overdue_zones_now() -> None:
    now = utc(2026, 11, 24, 16)
    instants = {"Europe/Paris": utc(2026, 11, 24, 9), "America/New_York": utc(2026, 11, 24, 15)}
    instants["America/Chicago"] = utc(2026, 11, 24, 16)
    instants["America/Denver"] = utc(2026, 11, 24, 17)
    assert bucket_deferral(instants, now) == [
        (now, ["America/Chicago", "America/New_York", "Europe/Paris"]),
        (utc(2026, 11, 24, 17), ["America/Denver"]),
    ]


def test_bucket_deferral_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        bucket_deferral({}, datetime(2026, 1, 1))


@given(
    st.dictionaries(
        st.sampled_from(ALL_ZONES),
        st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 1, 3), timezones=st.just(UTC)),
        max_size=20,
    ),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 1, 3), timezones=st.just(UTC)),
)
def test_bucket_deferral_places_each_zone_once_at_its_due_time(
    zone_instants: dict[str, datetime], now: datetime
) -> None:
    buckets = bucket_deferral(zone_instants, now)
    placed = [zone_name for _, zones in buckets for zone_name in zones]
    assert sorted(placed) == sorted(zone_instants)
    instants = [instant for instant, _ in buckets]
    assert instants == sorted(set(instants))
    for instant, zones in buckets:
        assert instant >= now
        for zone_name in zones:
            assert instant == max(zone_instants[zone_name], now)
