import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consentry import clock
from consentry.cli import main
from consentry.domain.messages import MessageClass
from consentry.domain.regions import Regions, regions_for
from consentry.domain.window import (
    DEFAULT_POLICIES,
    WindowPolicy,
    check_window,
    decide,
    describe_days,
    easter_sunday,
    next_allowed,
    parse_days,
    public_holidays,
    schedule_for,
)

# --- An independent oracle, transcribed from compliance.md, checked minute by minute ----------------

US_JURISDICTIONS = {"US", "PR", "VI", "GU", "AS", "MP"}
FEDERAL = (8 * 60, 21 * 60)
EIGHT_TO_EIGHT = dict.fromkeys(range(7), (8 * 60, 20 * 60))
STATE_HOURS: dict[str, dict[int, tuple[int, int]]] = {
    "FL": EIGHT_TO_EIGHT,
    "OK": EIGHT_TO_EIGHT,
    "MD": EIGHT_TO_EIGHT,
    "WA": EIGHT_TO_EIGHT,
    "TX": {**dict.fromkeys(range(6), (9 * 60, 21 * 60)), 6: (12 * 60, 21 * 60)},
}
FRANCE_HOURS = dict.fromkeys(range(6), (8 * 60, 22 * 60))  # never on Sunday
FRENCH_HOLIDAYS = {
    date(year, month, day)
    for year in range(2024, 2029)
    for month, day in ((1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25))
} | {
    # Easter Monday, Ascension, Whit Monday
    date(2024, 4, 1), date(2024, 5, 9), date(2024, 5, 20),
    date(2025, 4, 21), date(2025, 5, 29), date(2025, 6, 9),
    date(2026, 4, 6), date(2026, 5, 14), date(2026, 5, 25),
    date(2027, 3, 29), date(2027, 5, 6), date(2027, 5, 17),
}  # fmt: skip


def oracle_allowed(regions: Regions, at: datetime, message_class: MessageClass, policy: WindowPolicy) -> bool:
    if not regions.zones:
        return False
    for zone in regions.zones:
        local = at.astimezone(ZoneInfo(zone))
        minute, weekday, day = local.hour * 60 + local.minute, local.weekday(), local.date()
        spans: list[tuple[int, int] | None] = []
        if regions.country in US_JURISDICTIONS:
            spans.append(FEDERAL)
        spans.extend(STATE_HOURS[state].get(weekday) for state in regions.states if state in STATE_HOURS)
        if regions.country == "FR" and message_class == "promotional":
            spans.append(None if day in FRENCH_HOLIDAYS else FRANCE_HOURS.get(weekday))
        business_open = weekday in policy.days and day not in policy.excluded_dates
        spans.append((policy.start_minute, policy.end_minute) if business_open else None)
        if any(span is None or not span[0] <= minute < span[1] for span in spans):
            return False
    return True


def whole_minutes_after(at: datetime) -> Iterator[datetime]:
    minute = at.replace(second=0, microsecond=0)
    if minute <= at:
        minute += timedelta(minutes=1)
    while True:
        yield minute
        minute += timedelta(minutes=1)


def oracle_next_allowed(
    regions: Regions, at: datetime, message_class: MessageClass, policy: WindowPolicy
) -> datetime | None:
    if oracle_allowed(regions, at, message_class, policy):
        return at
    for minute in whole_minutes_after(at):
        if minute >= at + timedelta(days=14):
            return None
        if oracle_allowed(regions, minute, message_class, policy):
            return minute
    raise AssertionError("unreachable")


def oracle_allowed_until(
    regions: Regions, at: datetime, message_class: MessageClass, policy: WindowPolicy
) -> datetime | None:
    for minute in whole_minutes_after(at):
        if minute >= at + timedelta(days=14):
            return None
        if not oracle_allowed(regions, minute, message_class, policy):
            return minute
    raise AssertionError("unreachable")


# --- Strategies -------------------------------------------------------------------------------------

NUMBERS = [
    "+12125550143",  # NY
    "+13055550143",  # FL
    "+14055550143",  # OK
    "+14105550143",  # MD
    "+12065550143",  # WA
    "+15125550143",  # TX
    "+19155550143",  # TX, but on Mountain time
    "+14155550143",  # CA
    "+12083205555",  # ID, Mountain and Pacific
    "+17015551234",  # ND, Mountain and Central
    "+33612345678",  # FR
    "+16135550123",  # Ontario: no legal rule here
    "+17875551234",  # Puerto Rico
]
ODD_ZONES = [
    "America/New_York",
    "Europe/Paris",
    "Australia/Lord_Howe",  # half-hour DST shift
    "Asia/Kathmandu",  # +05:45
    "America/St_Johns",  # -03:30 with DST
    "Pacific/Chatham",  # +12:45 / +13:45
    "Pacific/Honolulu",
]
# Days around DST changes in the zones above, where off-by-an-hour bugs live.
DST_DAYS = [
    datetime(2025, 3, 9, tzinfo=UTC),  # US spring forward
    datetime(2025, 11, 2, tzinfo=UTC),  # US fall back
    datetime(2025, 3, 30, tzinfo=UTC),  # EU spring forward
    datetime(2025, 10, 26, tzinfo=UTC),  # EU fall back
    datetime(2025, 4, 5, 15, tzinfo=UTC),  # Lord Howe and Chatham fall back
    datetime(2026, 3, 8, tzinfo=UTC),
    datetime(2026, 3, 29, tzinfo=UTC),
]

instants = st.one_of(
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 1), timezones=st.just(UTC)),
    st.builds(
        lambda day, seconds: day + timedelta(seconds=seconds),
        st.sampled_from(DST_DAYS),
        st.integers(min_value=-2 * 86_400, max_value=2 * 86_400),
    ),
)


@st.composite
def policies(draw: st.DrawFn) -> WindowPolicy:
    start = draw(st.integers(min_value=0, max_value=23 * 60 + 45))
    end = draw(st.integers(min_value=start + 1, max_value=24 * 60))
    days = draw(st.frozensets(st.integers(min_value=0, max_value=6), min_size=1))
    excluded = draw(
        st.frozensets(st.dates(min_value=date(2025, 3, 1), max_value=date(2025, 11, 30)), max_size=4)
    )
    return WindowPolicy(
        start=time(start // 60, start % 60),
        end=time(end // 60 % 24, end % 60),
        days=days,
        excluded_dates=excluded,
    )


any_policy = st.one_of(st.sampled_from([DEFAULT_POLICIES["promotional"], WindowPolicy()]), policies())
classes = st.sampled_from(["promotional", "transactional"])
zone_overrides = st.one_of(
    st.none(), st.lists(st.sampled_from(ODD_ZONES), min_size=1, max_size=3, unique=True)
)


# --- Properties ---------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    number=st.sampled_from(NUMBERS),
    at=instants,
    message_class=classes,
    policy=any_policy,
    zones=zone_overrides,
)
def test_decision_agrees_with_the_rules_in_every_zone(
    number: str, at: datetime, message_class: MessageClass, policy: WindowPolicy, zones: list[str] | None
) -> None:
    regions = regions_for(number, zones)
    decision = decide(regions, at, message_class, policy)
    assert decision.allowed == oracle_allowed(regions, at, message_class, policy)
    assert (decision.reason is None) == decision.allowed
    assert decision.zones == regions.zones
    # The cached interval view must say the same as the direct check.
    schedule = schedule_for(regions.country, regions.states, regions.zones, message_class, policy)
    in_intervals = any(start <= at < end for start, end in schedule.intervals_on(at.date()))
    assert in_intervals == decision.allowed


@settings(max_examples=120, deadline=None)
@given(
    number=st.sampled_from(NUMBERS),
    at=instants,
    message_class=classes,
    policy=any_policy,
    zones=zone_overrides,
)
@example(number="+12125550143", at=datetime(2025, 3, 9, 4, tzinfo=UTC), message_class="transactional",
         policy=WindowPolicy(), zones=None)  # fmt: skip
def test_next_allowed_is_the_first_allowed_minute(
    number: str, at: datetime, message_class: MessageClass, policy: WindowPolicy, zones: list[str] | None
) -> None:
    regions = regions_for(number, zones)
    decision = decide(regions, at, message_class, policy)
    expected = oracle_next_allowed(regions, at, message_class, policy)
    if decision.allowed:
        assert decision.next_allowed is None
        assert expected == at
        assert decision.allowed_until == oracle_allowed_until(regions, at, message_class, policy)
    else:
        assert decision.next_allowed == expected
        assert decision.allowed_until is None
    found = next_allowed(number, at, message_class, policy, tuple(zones) if zones else None)
    assert found == expected
    if found is not None:
        assert found >= at
        assert check_window(number, found, message_class, policy, tuple(zones) if zones else None).allowed
        assert found.utcoffset() == timedelta(0)


@settings(max_examples=100, deadline=None)
@given(number=st.sampled_from(NUMBERS), at=instants, message_class=classes, policy=policies())
def test_business_window_only_narrows_the_legal_rules(
    number: str, at: datetime, message_class: MessageClass, policy: WindowPolicy
) -> None:
    narrowed = check_window(number, at, message_class, policy)
    legal_only = check_window(number, at, message_class, WindowPolicy())
    if narrowed.allowed:
        assert legal_only.allowed
    if not legal_only.allowed:
        assert not narrowed.allowed
        assert narrowed.rule != "business"  # the legal refusal is the one reported


@settings(max_examples=100, deadline=None)
@given(at=instants, message_class=classes, policy=any_policy)
def test_several_zones_allow_only_what_every_zone_allows(
    at: datetime, message_class: MessageClass, policy: WindowPolicy
) -> None:
    number = "+12083205555"  # Boise and Los Angeles
    both = check_window(number, at, message_class, policy)
    each = [check_window(number, at, message_class, policy, (zone,)) for zone in regions_for(number).zones]
    assert both.allowed == all(decision.allowed for decision in each)


# --- DST, state rules and reasons, example by example -----------------------------------------------


def at_local(zone: str, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone))


NY = "America/New_York"


def test_federal_window_follows_new_york_across_spring_forward() -> None:
    # Saturday 23:00 EST; the clocks skip 02:00-03:00 that night.
    at = at_local(NY, 2025, 3, 8, 23, 0)
    assert next_allowed("+12125550143", at, "transactional") == datetime(
        2025, 3, 9, 12, tzinfo=UTC
    )  # 08:00 EDT
    before = check_window("+12125550143", at_local(NY, 2025, 3, 9, 7, 59), "transactional")
    assert (before.allowed, before.reason) == (False, "federal_window")
    assert check_window("+12125550143", at_local(NY, 2025, 3, 9, 8, 0), "transactional").allowed


def test_federal_window_follows_new_york_across_fall_back() -> None:
    # 01:30 happens twice on 2025-11-02; 08:00 that morning is EST, 13:00 UTC.
    first_one_thirty = datetime(2025, 11, 2, 5, 30, tzinfo=UTC)
    second_one_thirty = datetime(2025, 11, 2, 6, 30, tzinfo=UTC)
    for at in (first_one_thirty, second_one_thirty):
        decision = check_window("+12125550143", at, "transactional")
        assert decision.next_allowed == datetime(2025, 11, 2, 13, tzinfo=UTC)
    until = check_window("+12125550143", datetime(2025, 11, 2, 14, tzinfo=UTC), "transactional").allowed_until
    assert until == datetime(2025, 11, 3, 2, tzinfo=UTC)  # 21:00 EST


def test_a_window_inside_the_spring_forward_gap_keeps_only_the_hour_that_exists() -> None:
    policy = WindowPolicy.parse("01:30-02:30")
    schedule = schedule_for("ZZ", (), ("Europe/Paris",), "transactional", policy)
    # 2025-03-30: 02:00 CET becomes 03:00 CEST, so only 01:30-02:00 CET (00:30-01:00 UTC) is on the clock;
    # the next night's 01:30-02:30 CEST starts at 23:30 UTC the same UTC day.
    assert schedule.intervals_on(date(2025, 3, 30)) == (
        (datetime(2025, 3, 30, 0, 30, tzinfo=UTC), datetime(2025, 3, 30, 1, tzinfo=UTC)),
        (datetime(2025, 3, 30, 23, 30, tzinfo=UTC), datetime(2025, 3, 31, 0, tzinfo=UTC)),
    )


def test_a_window_inside_the_repeated_fall_back_hour_opens_twice() -> None:
    policy = WindowPolicy.parse("02:15-02:45")
    schedule = schedule_for("ZZ", (), ("Europe/Paris",), "transactional", policy)
    # 2025-10-26: 03:00 CEST becomes 02:00 CET, so 02:15-02:45 happens at 00:15 and at 01:15 UTC.
    assert schedule.intervals_on(date(2025, 10, 26)) == (
        (datetime(2025, 10, 26, 0, 15, tzinfo=UTC), datetime(2025, 10, 26, 0, 45, tzinfo=UTC)),
        (datetime(2025, 10, 26, 1, 15, tzinfo=UTC), datetime(2025, 10, 26, 1, 45, tzinfo=UTC)),
    )
    between = datetime(2025, 10, 26, 0, 50, tzinfo=UTC)
    assert schedule.refusal_at(between) is not None
    assert schedule.next_allowed(between) == datetime(2025, 10, 26, 1, 15, tzinfo=UTC)


def test_an_area_code_across_two_zones_opens_when_the_later_one_does() -> None:
    # Monday 2025-06-02, Idaho's 208: 08:00 in Los Angeles is 09:00 in Boise; 21:00 in Boise is 20:00 there.
    decision = check_window("+12083205555", datetime(2025, 6, 2, 14, 30, tzinfo=UTC), "transactional")
    assert (decision.allowed, decision.rule, decision.zone) == (False, "federal", "America/Los_Angeles")
    assert decision.next_allowed == datetime(2025, 6, 2, 15, tzinfo=UTC)
    opened = check_window("+12083205555", datetime(2025, 6, 2, 15, tzinfo=UTC), "transactional")
    assert opened.allowed
    assert opened.allowed_until == datetime(2025, 6, 3, 3, tzinfo=UTC)
    assert (opened.rule, opened.zone) == ("federal", "America/Boise")


@pytest.mark.parametrize(
    ("number", "zone", "reason", "rule"),
    [
        ("+13055550143", NY, "state_window_fl", "state:FL"),
        ("+14055550143", "America/Chicago", "state_window_ok", "state:OK"),
        ("+14105550143", NY, "state_window_md", "state:MD"),
        ("+12065550143", "America/Los_Angeles", "state_window_wa", "state:WA"),
    ],
)
def test_eight_pm_states_refuse_after_eight(number: str, zone: str, reason: str, rule: str) -> None:
    refused = check_window(number, at_local(zone, 2025, 6, 3, 20, 0), "transactional")
    assert (refused.allowed, refused.reason, refused.rule) == (False, reason, rule)
    assert refused.next_allowed == at_local(zone, 2025, 6, 4, 8, 0)
    still_open = check_window(number, at_local(zone, 2025, 6, 3, 19, 59), "transactional")
    assert still_open.allowed
    assert still_open.rule == rule  # the state closes before the federal window does
    # New York has no such rule: 20:30 is inside the federal window.
    assert check_window("+12125550143", at_local(NY, 2025, 6, 3, 20, 30), "transactional").allowed


def test_texas_opens_at_nine_and_at_noon_on_sundays() -> None:
    central = "America/Chicago"
    monday_early = check_window("+15125550143", at_local(central, 2025, 6, 2, 8, 30), "transactional")
    assert (monday_early.reason, monday_early.rule) == ("state_window_tx", "state:TX")
    assert monday_early.next_allowed == at_local(central, 2025, 6, 2, 9, 0)
    sunday_morning = check_window("+15125550143", at_local(central, 2025, 6, 8, 10, 0), "transactional")
    assert sunday_morning.reason == "state_window_tx"
    assert sunday_morning.next_allowed == at_local(central, 2025, 6, 8, 12, 0)
    assert check_window("+15125550143", at_local(central, 2025, 6, 8, 12, 0), "transactional").allowed


def test_france_marketing_never_on_sundays_or_public_holidays() -> None:
    paris = "Europe/Paris"
    every_day = WindowPolicy.parse("07:00-23:00", "mon-sun")
    sunday = check_window("+33612345678", at_local(paris, 2025, 6, 8, 12, 0), "promotional", every_day)
    assert (sunday.reason, sunday.rule) == ("quiet_day_fr", "country:FR")
    bastille_day = check_window("+33612345678", at_local(paris, 2025, 7, 14, 12, 0), "promotional", every_day)
    assert bastille_day.reason == "public_holiday_fr"
    assert bastille_day.next_allowed == at_local(paris, 2025, 7, 15, 8, 0)
    easter_monday = check_window(
        "+33612345678", at_local(paris, 2025, 4, 21, 12, 0), "promotional", every_day
    )
    assert easter_monday.reason == "public_holiday_fr"
    late = check_window("+33612345678", at_local(paris, 2025, 6, 10, 22, 0), "promotional", every_day)
    assert (late.reason, late.rule) == ("country_window_fr", "country:FR")
    # Transactional messages are not marketing: no French rule applies.
    assert check_window("+33612345678", at_local(paris, 2025, 6, 8, 23, 0), "transactional").allowed


def test_business_reasons() -> None:
    promotional = DEFAULT_POLICIES["promotional"]
    early = check_window("+12125550143", at_local(NY, 2025, 6, 3, 8, 30), "promotional")
    assert (early.reason, early.rule) == ("outside_window", "business")
    assert early.next_allowed == at_local(NY, 2025, 6, 3, 9, 0)
    saturday = check_window("+12125550143", at_local(NY, 2025, 6, 7, 12, 0), "promotional")
    assert (saturday.reason, saturday.rule) == ("excluded_day", "business")
    assert saturday.next_allowed == at_local(NY, 2025, 6, 9, 9, 0)
    july_fourth = WindowPolicy.parse(excluded_dates=["2025-07-04"], base=promotional)
    holiday = check_window("+12125550143", at_local(NY, 2025, 7, 4, 12, 0), "promotional", july_fourth)
    assert (holiday.reason, holiday.rule) == ("excluded_date", "business")
    assert holiday.next_allowed == at_local(NY, 2025, 7, 7, 9, 0)
    open_now = check_window("+12125550143", at_local(NY, 2025, 6, 3, 12, 0), "promotional")
    assert (open_now.allowed, open_now.rule) == (True, "business")
    assert open_now.allowed_until == at_local(NY, 2025, 6, 3, 20, 0)


def test_unknown_zone_and_zones_that_never_overlap() -> None:
    nowhere = decide(Regions(country="US"), datetime(2025, 6, 3, 15, tzinfo=UTC), "transactional")
    assert (nowhere.allowed, nowhere.reason, nowhere.next_allowed) == (False, "unknown_time_zone", None)
    # Twelve or thirteen hours apart: 09:00-20:00 in one is never 09:00-20:00 in the other.
    apart = Regions(country="US", zones=("America/New_York", "Asia/Shanghai"))
    decision = decide(apart, datetime(2025, 6, 3, 15, tzinfo=UTC), "promotional")
    assert (decision.allowed, decision.reason, decision.rule, decision.next_allowed) == (
        False,
        "no_common_window",
        "zones",
        None,
    )


def test_dates_closed_past_the_horizon_are_not_blamed_on_the_zones() -> None:
    fortnight = [f"2025-06-{day:02d}" for day in range(3, 20)]
    closed = WindowPolicy.parse(excluded_dates=fortnight, base=DEFAULT_POLICIES["promotional"])
    decision = check_window("+12083205555", datetime(2025, 6, 3, 18, tzinfo=UTC), "promotional", closed)
    assert (decision.allowed, decision.reason, decision.next_allowed) == (False, "excluded_date", None)


def test_nothing_restricts_a_transactional_text_outside_the_us_and_france() -> None:
    decision = check_window("+16135550123", datetime(2025, 6, 3, 7, tzinfo=UTC), "transactional")
    assert (decision.allowed, decision.rule, decision.allowed_until) == (True, "none", None)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_window("+12125550143", datetime(2025, 6, 3, 12), "promotional")


# --- Policy parsing ----------------------------------------------------------------------------------


def test_parse_window_and_days() -> None:
    policy = WindowPolicy.parse("9:00-20:00", "mon,wed,fri")
    assert (policy.start, policy.end, policy.days) == (time(9), time(20), frozenset({0, 2, 4}))
    assert WindowPolicy.parse("00:00-24:00").end_minute == 24 * 60
    assert parse_days("fri-mon") == frozenset({4, 5, 6, 0})
    assert parse_days("Weekdays") == frozenset(range(5))
    assert parse_days("mon-sun") == frozenset(range(7))


def test_parse_keeps_unspecified_parts_from_the_base() -> None:
    base = DEFAULT_POLICIES["promotional"]
    only_days = WindowPolicy.parse(None, "mon-sun", base=base)
    assert (only_days.start, only_days.end, only_days.days) == (base.start, base.end, frozenset(range(7)))
    only_hours = WindowPolicy.parse("10:00-18:00", None, base=base)
    assert (only_hours.start, only_hours.days) == (time(10), base.days)


@pytest.mark.parametrize(
    ("window", "days", "message"),
    [
        ("25:00-26:00", None, "does not exist"),
        ("09:00-24:30", None, "does not exist"),
        ("20:00-09:00", None, "cannot cross midnight"),
        ("09:00-09:00", None, "cannot cross midnight"),
        ("nine to five", None, "HH:MM-HH:MM"),
        (None, "funday", "unknown day"),
        (None, "mon-xyz", "unknown day"),
        (None, " , ", "no days"),
    ],
)
def test_parse_rejects_nonsense_with_a_clear_message(
    window: str | None, days: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        WindowPolicy.parse(window, days)


def test_parse_rejects_bad_excluded_dates() -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        WindowPolicy.parse(excluded_dates=["4th of July"])


@given(days=st.frozensets(st.integers(min_value=0, max_value=6), min_size=1))
def test_day_descriptions_read_back(days: frozenset[int]) -> None:
    assert parse_days(describe_days(days)) == days


def test_easter_matches_known_dates() -> None:
    easter = pytest.importorskip("dateutil.easter")
    for year in (1818, 1943, 2024, 2025, 2026, 2027, 2285):
        assert easter_sunday(year) == easter.easter(year)


@given(year=st.integers(min_value=1583, max_value=4099))
def test_easter_is_a_spring_sunday(year: int) -> None:
    sunday = easter_sunday(year)
    assert sunday.weekday() == 6
    assert date(year, 3, 22) <= sunday <= date(year, 4, 25)


def test_french_holidays_include_fixed_and_movable_ones() -> None:
    holidays = public_holidays("FR", 2026)
    assert {date(2026, 1, 1), date(2026, 7, 14), date(2026, 12, 25)} <= holidays
    assert {
        date(2026, 4, 6),
        date(2026, 5, 14),
        date(2026, 5, 25),
    } <= holidays  # Easter Mon, Ascension, Whit Mon
    assert len(holidays) == 11


# --- CLI ------------------------------------------------------------------------------------------------


def run_when(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main(["when", *argv]) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


def test_cli_when_refused_prints_reason_and_next_time(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_when(
        capsys, "+1 305 555 0143", "--at", "2025-06-03T20:30:00-04:00", "--class", "transactional"
    )
    assert result["allowed"] is False
    assert (result["reason"], result["rule"]) == ("state_window_fl", "state:FL")
    assert result["next_allowed"] == "2025-06-04T12:00:00+00:00"
    assert result["next_allowed_local"] == {NY: "2025-06-04T08:00:00-04:00"}
    assert result["states"] == ["FL"]
    assert result["zones"] == [NY]
    assert "5550143" not in str(result["number"])


def test_cli_when_business_window_replaces_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    saturday_noon = "2025-06-07T16:00:00Z"
    assert run_when(capsys, "+12125550143", "--at", saturday_noon)["reason"] == "excluded_day"
    widened = run_when(
        capsys, "+12125550143", "--at", saturday_noon, "--window", "08:00-21:00", "--days", "mon-sun"
    )
    assert widened["allowed"] is True
    assert widened["next_allowed"] is None
    # Legal rules stay on top of any business window.
    night = run_when(capsys, "+12125550143", "--at", "2025-06-07T23:30:00-04:00", "--window", "00:00-24:00")
    assert (night["allowed"], night["rule"]) == (False, "federal")


def test_cli_when_zone_override(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_when(
        capsys, "+12125550143", "--at", "2025-06-03T13:30:00Z", "--zone", "America/Los_Angeles", "--class",
        "transactional",
    )  # fmt: skip
    assert result["zones"] == ["America/Los_Angeles"]
    assert result["allowed"] is False  # 06:30 in Los Angeles, 09:30 in New York


def test_cli_when_defaults_to_the_clock(capsys: pytest.CaptureFixture[str]) -> None:
    clock.set_source(lambda: datetime(2025, 6, 7, 16, tzinfo=UTC))
    try:
        result = run_when(capsys, "+12125550143")
    finally:
        clock.reset()
    assert result["at"] == "2025-06-07T16:00:00+00:00"
    assert result["reason"] == "excluded_day"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["+1212"], "not a valid number"),
        (["+12125550143", "--at", "tomorrow"], "not an ISO 8601 time"),
        (["+12125550143", "--at", "2025-06-03T12:00:00"], "needs a UTC offset"),
        (["+12125550143", "--window", "9-5"], "HH:MM-HH:MM"),
        (["+12125550143", "--days", "someday"], "unknown day"),
        (["+12125550143", "--zone", "Mars/Olympus"], "unknown time zone"),
        (["+12125550143", "--exclude", "July 4"], "YYYY-MM-DD"),
    ],
)
def test_cli_when_rejects_bad_input(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["when", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
