"""Fan-out planning without AWS: placing recipients by window, bucketing, chunking, chunk ids."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from consentry.domain.audience import AudienceFilter
from consentry.domain.campaign import Campaign, SendWindow, Status
from consentry.domain.chunks import CHUNK_SIZE
from consentry.domain.consent import ContactConsent, TopicConsent, TopicStatus
from consentry.domain.contact import Contact
from consentry.domain.regions import regions_for
from consentry.domain.schedule import Schedule
from consentry.domain.window import decide
from consentry.services.fanout import (
    EVENT_ADAPTER,
    INVALID_NUMBER,
    NO_WINDOW_BEFORE_DEADLINE,
    NOW_BUCKET,
    PagePlan,
    Placement,
    ReleaseEvent,
    SegmentWork,
    StartEvent,
    Targeting,
    bucket_label,
    chunk_id,
    chunk_plan,
    plan_page,
)

#: Tuesday 24 Nov 2026, 06:00 in New York (EST, UTC-5).
SIX_AM_NEW_YORK = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
NEW_YORK = "+12125550101"
LOS_ANGELES = "+13105550101"
HONOLULU = "+18085550101"
TOLL_FREE = "+18002001234"


def campaign(**overrides: object) -> Campaign:
    values: dict[str, object] = {
        "campaign_id": "cmp_unit",
        "name": "Winter deals",
        "topic": "deals",
        "template": "Deals today",
        "message_class": "promotional",
        "status": Status.RUNNING,
        "created_at": SIX_AM_NEW_YORK - timedelta(days=1),
        "updated_at": SIX_AM_NEW_YORK - timedelta(days=1),
    }
    values.update(overrides)
    return Campaign.model_validate(values)


def contact(
    phone: str,
    *,
    topic_status: TopicStatus = TopicStatus.ACTIVE,
    opted_out: bool = False,
    time_zone: str | None = None,
    **attributes: object,
) -> Contact:
    consent = ContactConsent(
        phone=phone,
        opted_out=opted_out,
        topics={
            "deals": TopicConsent(
                status=topic_status, changed_at=SIX_AM_NEW_YORK - timedelta(days=30), source="sms"
            )
        },
    )
    return Contact(consent=consent, attributes=dict(attributes), time_zone=time_zone)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 24, hour, minute, tzinfo=UTC)


# --- placing one recipient -------------------------------------------------------------------


def test_each_zone_is_released_when_its_promotional_window_opens() -> None:
    targeting = Targeting(campaign(), SIX_AM_NEW_YORK)
    # Promotional default: 09:00-20:00 on weekdays, recipient's local time.
    assert targeting.place(contact(NEW_YORK)) == Placement(release_at=at(14))
    assert targeting.place(contact(LOS_ANGELES)) == Placement(release_at=at(17))
    assert targeting.place(contact(HONOLULU)) == Placement(release_at=at(19))


def test_a_recipient_whose_window_is_open_goes_now() -> None:
    targeting = Targeting(campaign(), at(15))  # 10:00 in New York
    assert targeting.place(contact(NEW_YORK)) == Placement(release_at=None)
    assert targeting.place(contact(LOS_ANGELES)) == Placement(release_at=at(17))


def test_the_contacts_own_time_zone_overrides_the_numbers() -> None:
    targeting = Targeting(campaign(), SIX_AM_NEW_YORK)
    moved = contact(NEW_YORK, time_zone="Pacific/Honolulu")
    assert targeting.place(moved) == Placement(release_at=at(19))


def test_an_unknown_stored_zone_falls_back_to_the_numbers_zones() -> None:
    targeting = Targeting(campaign(), SIX_AM_NEW_YORK)
    assert targeting.place(contact(NEW_YORK, time_zone="Mars/Olympus_Mons")) == Placement(release_at=at(14))


def test_the_business_window_narrows_the_opening() -> None:
    window = SendWindow(start=time(11, 30), end=time(17), days="mon-fri")
    targeting = Targeting(campaign(window=window), SIX_AM_NEW_YORK)
    assert targeting.place(contact(NEW_YORK)) == Placement(release_at=at(16, 30))


def test_transactional_messages_follow_only_the_legal_rules() -> None:
    targeting = Targeting(campaign(message_class="transactional", topic="deals"), SIX_AM_NEW_YORK)
    # Federal 08:00-21:00 local.
    assert targeting.place(contact(NEW_YORK)) == Placement(release_at=at(13))


def test_no_window_before_the_deadline_is_a_suppression() -> None:
    targeting = Targeting(campaign(deadline=at(18)), SIX_AM_NEW_YORK)
    assert targeting.place(contact(NEW_YORK)) == Placement(release_at=at(14))
    assert targeting.place(contact(LOS_ANGELES)) == Placement(release_at=at(17))
    assert targeting.place(contact(HONOLULU)) == Placement(suppressed=NO_WINDOW_BEFORE_DEADLINE)


def test_a_number_spread_over_many_zones_waits_for_their_common_window() -> None:
    # Toll-free numbers may be anywhere from Newfoundland to Guam: every zone must be open.
    assert Targeting(campaign(), SIX_AM_NEW_YORK).place(contact(TOLL_FREE)) == Placement(release_at=at(23))
    early_deadline = Targeting(campaign(deadline=at(22)), SIX_AM_NEW_YORK)
    assert early_deadline.place(contact(TOLL_FREE)) == Placement(suppressed=NO_WINDOW_BEFORE_DEADLINE)


def test_an_invalid_stored_number_is_suppressed_not_raised() -> None:
    targeting = Targeting(campaign(), SIX_AM_NEW_YORK)
    assert targeting.place(contact("+1212555")) == Placement(suppressed=INVALID_NUMBER)


def test_friday_evening_waits_for_monday() -> None:
    friday_evening = datetime(2026, 11, 27, 23, 0, tzinfo=UTC)  # 18:00 Friday New York
    targeting = Targeting(campaign(), friday_evening)
    # 18:00 is still open on Friday in New York...
    assert targeting.place(contact(NEW_YORK)) == Placement(release_at=None)
    late = Targeting(campaign(), datetime(2026, 11, 28, 2, 0, tzinfo=UTC))  # 21:00 Friday
    # ...at 21:00 it is closed until Monday 09:00 EST.
    assert late.place(contact(NEW_YORK)) == Placement(release_at=datetime(2026, 11, 30, 14, 0, tzinfo=UTC))


def test_local_time_schedules_wait_for_each_zones_local_time() -> None:
    local = Schedule(kind="local_time", local_time=time(10, 15), date=date(2026, 11, 24))
    targeting = Targeting(campaign(schedule=local), SIX_AM_NEW_YORK)
    assert targeting.place(contact(NEW_YORK)) == Placement(release_at=at(15, 15))
    assert targeting.place(contact(LOS_ANGELES)) == Placement(release_at=at(18, 15))
    assert targeting.place(contact(HONOLULU)) == Placement(release_at=at(20, 15))


def test_a_local_time_before_the_window_waits_for_the_window() -> None:
    local = Schedule(kind="local_time", local_time=time(7, 0), date=date(2026, 11, 24))
    targeting = Targeting(campaign(schedule=local), SIX_AM_NEW_YORK)
    assert targeting.place(contact(NEW_YORK)) == Placement(release_at=at(14))


def test_instants_are_rounded_up_to_whole_minutes() -> None:
    # A DST gap lands window openings on whole seconds at worst; buckets are whole minutes.
    targeting = Targeting(campaign(), datetime(2026, 11, 24, 11, 0, 30, tzinfo=UTC))
    placement = targeting.place(contact(NEW_YORK))
    assert placement.release_at is not None
    assert placement.release_at.second == 0


ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "Europe/Paris",
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    as_of=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(ZONES),
    message_class=st.sampled_from(["promotional", "transactional"]),
)
def test_release_is_the_first_minute_the_gate_allows(as_of: datetime, zone: str, message_class: str) -> None:
    """Across zones and DST changes: fan-out releases exactly when the send-time gate opens."""
    targeting = Targeting(campaign(message_class=message_class), as_of)
    placement = targeting.place(contact(NEW_YORK, time_zone=zone))
    regions = regions_for(NEW_YORK, (zone,))
    assert placement.suppressed is None
    if placement.release_at is None:
        assert decide(regions, as_of, message_class).allowed  # type: ignore[arg-type]
        return
    assert placement.release_at > as_of
    assert decide(regions, placement.release_at, message_class).allowed  # type: ignore[arg-type]
    a_minute_before = placement.release_at - timedelta(minutes=1)
    if a_minute_before > as_of:
        assert not decide(regions, a_minute_before, message_class).allowed  # type: ignore[arg-type]


# --- pages, buckets, chunks ------------------------------------------------------------------


def test_plan_keeps_subscribers_matching_the_filter_and_counts_suppressions() -> None:
    ferrets = AudienceFilter.model_validate({"attribute": "pets", "op": "contains", "value": "ferret"})
    targeting = Targeting(campaign(audience=ferrets, deadline=at(18)), SIX_AM_NEW_YORK)
    contacts = [
        contact("+12125550001", pets=["ferret"]),
        contact("+12125550002", pets=["cat"]),  # filtered out: not audience
        contact("+12125550003", pets=["ferret"], opted_out=True),  # not subscribed
        contact("+12125550004", pets=["ferret"], topic_status=TopicStatus.PENDING),
        contact("+13105550005", pets=["Ferret"]),
        contact("+18085550006", pets=["ferret"]),  # Honolulu opens after the deadline
    ]
    plan = plan_page(contacts, targeting)
    assert plan.audience == 3
    assert plan.buckets == {at(14): ["+12125550001"], at(17): ["+13105550005"]}
    assert plan.suppressed == {NO_WINDOW_BEFORE_DEADLINE: 1}


def test_chunks_hold_at_most_100_recipients_with_ids_by_segment_page_bucket_and_index() -> None:
    later = at(17)
    plan = PagePlan(
        buckets={
            None: [f"+1212555{n:04d}" for n in range(250)],
            later: [f"+1310555{n:04d}" for n in range(3)],
        }
    )
    chunks = chunk_plan("cmp_unit", 3, 7, plan)
    ids = [chunk.chunk_id for chunk, _ in chunks]
    assert ids == ["3-7-now-0", "3-7-now-1", "3-7-now-2", f"3-7-{int(later.timestamp())}-0"]
    assert [len(chunk.recipients) for chunk, _ in chunks] == [100, 100, 50, 3]
    assert [release for _, release in chunks] == [None, None, None, later]
    assert all(chunk.campaign_id == "cmp_unit" for chunk, _ in chunks)


def test_bucket_labels_and_chunk_ids_are_stable_text() -> None:
    assert bucket_label(None) == NOW_BUCKET
    assert bucket_label(at(14)) == str(int(at(14).timestamp()))
    assert chunk_id(0, 12, "now", 4) == "0-12-now-4"


phones = st.integers(min_value=0, max_value=9_999_999).map(lambda n: f"+1212{n:07d}")


@settings(max_examples=60, deadline=None)
@given(
    buckets=st.dictionaries(
        st.one_of(
            st.none(), st.integers(min_value=1, max_value=48).map(lambda h: at(0) + timedelta(hours=h))
        ),
        st.lists(phones, min_size=1, max_size=350, unique=True),
        max_size=4,
    ),
    segment=st.integers(min_value=0, max_value=99),
    page=st.integers(min_value=0, max_value=10_000),
)
def test_chunking_partitions_the_page_and_is_deterministic(
    buckets: dict[datetime | None, list[str]], segment: int, page: int
) -> None:
    plan = PagePlan(buckets=buckets)
    chunks = chunk_plan("cmp_unit", segment, page, plan)
    # Every recipient of every bucket lands in exactly one chunk of that bucket.
    for release, members in buckets.items():
        placed = [phone for chunk, at_ in chunks if at_ == release for phone in chunk.recipients]
        assert sorted(placed) == sorted(members)
    assert all(1 <= len(chunk.recipients) <= CHUNK_SIZE for chunk, _ in chunks)
    ids = [chunk.chunk_id for chunk, _ in chunks]
    assert len(set(ids)) == len(ids)
    # A retried page (recipients read in another order) yields the very same chunks.
    shuffled = PagePlan(
        buckets={release: list(reversed(members)) for release, members in reversed(buckets.items())}
    )
    assert sorted(chunk_plan("cmp_unit", segment, page, shuffled), key=lambda c: c[0].chunk_id) == sorted(
        chunks, key=lambda c: c[0].chunk_id
    )


# --- events ----------------------------------------------------------------------------------


def test_events_parse_by_action() -> None:
    assert EVENT_ADAPTER.validate_python({"action": "start", "campaign_id": "cmp_1"}) == StartEvent(
        action="start", campaign_id="cmp_1"
    )
    assert isinstance(
        EVENT_ADAPTER.validate_python({"action": "release", "campaign_id": "cmp_1"}), ReleaseEvent
    )
    work = EVENT_ADAPTER.validate_python(
        {"action": "segment", "campaign_id": "c", "segment": 2, "total_segments": 8}
    )
    assert work == SegmentWork(campaign_id="c", segment=2, total_segments=8)


@pytest.mark.parametrize(
    "event",
    [
        {"action": "explode", "campaign_id": "cmp_1"},
        {"action": "start"},
        {"action": "segment", "campaign_id": "c", "segment": 8, "total_segments": 0},
        {"action": "segment", "campaign_id": "c", "segment": -1, "total_segments": 8},
        {},
    ],
)
def test_malformed_events_are_refused_with_a_reason(event: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        EVENT_ADAPTER.validate_python(event)
