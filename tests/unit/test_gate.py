"""The send-time gate: one test per reason code, the design's order, and cap edges with hypothesis."""

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.domain import gate
from consentry.domain.campaign import Campaign, CapOverrides, FrequencyCap, SendWindow, Status
from consentry.domain.caps import CAMPAIGN_KEY_RETENTION, CapRule, Caps, counted_sends, prune
from consentry.domain.consent import ContactConsent, TopicConsent, TopicStatus
from consentry.domain.contact import Contact
from consentry.domain.window import WindowPolicy

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday, 10:00 in New York
NY = "+12122010000"
FL = "+13052010000"  # Miami: Florida's 08:00-20:00 window and its 3-per-24-hours cap
ANCHORAGE = "+19072010000"
PROMO = gate.SendContext(
    topic="deals", message_class="promotional", send_key="cmp_1", campaign_status=Status.RUNNING
)
ALERT = gate.SendContext(topic="alerts", message_class="transactional", send_key="idem:order-7")
NO_GLOBAL_CAP = Caps(promotional=None)


def contact(
    phone: str = NY,
    *,
    topics: dict[str, TopicStatus] | None = None,
    consent_at: datetime = NOW - timedelta(days=30),
    opted_out: bool = False,
    sends: dict[str, dict[str, Any]] | None = None,
    **fields: Any,
) -> Contact:
    statuses = topics if topics is not None else {"deals": TopicStatus.ACTIVE, "alerts": TopicStatus.ACTIVE}
    consent = ContactConsent(
        phone=phone,
        opted_out=opted_out,
        topics={
            topic: TopicConsent(status=status, changed_at=consent_at, source="sms")
            for topic, status in statuses.items()
        },
    )
    return Contact(consent=consent, sends=sends or {}, **fields)


def sent(
    ago: timedelta, topic: str = "deals", message_class: str = "promotional", state: str = "reserved"
) -> dict[str, Any]:
    return {
        "at": int((NOW - ago).timestamp()),
        "topic": topic,
        "message_class": message_class,
        "message_id": "m_x",
        "state": state,
    }


def reason(who: Contact | None, send: gate.SendContext = PROMO, at: datetime = NOW) -> str | None:
    return gate.evaluate(who, send, at).reason


# --- 1. consent -----------------------------------------------------------------------------------


def test_an_active_subscriber_inside_every_window_is_allowed() -> None:
    decision = gate.evaluate(contact(), PROMO, NOW)
    assert decision.allowed
    assert decision.reason is None


def test_global_opt_out_is_refused_whatever_the_topic_says() -> None:
    assert reason(contact(opted_out=True)) == gate.OPTED_OUT
    assert reason(contact(opted_out=True), ALERT) == gate.OPTED_OUT


@pytest.mark.parametrize(
    "topics",
    [{}, {"deals": TopicStatus.REVOKED}, {"alerts": TopicStatus.ACTIVE}],
    ids=["no topics", "revoked", "other topic only"],
)
def test_without_active_consent_for_the_topic_is_refused(topics: dict[str, TopicStatus]) -> None:
    assert reason(contact(topics=topics)) == gate.NO_CONSENT


def test_no_contact_at_all_is_no_consent() -> None:
    assert reason(None) == gate.NO_CONSENT


def test_double_opt_in_not_confirmed_is_pending_confirmation() -> None:
    assert reason(contact(topics={"deals": TopicStatus.PENDING})) == gate.PENDING_CONFIRMATION


# --- 2. window ------------------------------------------------------------------------------------


def test_night_in_new_york_is_refused_with_the_window_reason_and_when_it_opens() -> None:
    night = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # 02:00 in New York
    decision = gate.evaluate(contact(), ALERT, night)
    assert decision.reason == "window:federal_window"
    assert decision.is_window
    assert decision.next_allowed == datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 08:00 local


def test_promotional_default_business_window_refuses_half_past_eight() -> None:
    early = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)  # 08:30 New York: legal, before 09:00
    decision = gate.evaluate(contact(), PROMO, early)
    assert decision.reason == "window:outside_window"
    assert decision.next_allowed == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)


def test_florida_state_window_closes_at_eight_pm() -> None:
    evening = datetime(2026, 11, 25, 1, 30, tzinfo=UTC)  # 20:30 in Miami
    assert reason(contact(FL), ALERT, evening) == "window:state_window_fl"
    assert reason(contact(NY), ALERT, evening) is None  # New York follows the federal 21:00


def test_excluded_days_of_the_business_window_are_refused() -> None:
    saturday = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    assert reason(contact(), PROMO, saturday) == "window:excluded_day"
    weekend_ok = PROMO.model_copy(update={"policy": WindowPolicy.parse("09:00-20:00", "mon-sun")})
    assert reason(contact(), weekend_ok, saturday) is None


def test_a_number_spanning_zones_needs_every_zone_open() -> None:
    # Alaska's area code spans Adak (UTC-10) and Anchorage (UTC-9): 08:30 in Anchorage is 07:30 in Adak.
    at = datetime(2026, 11, 24, 17, 30, tzinfo=UTC)
    decision = gate.evaluate(contact(ANCHORAGE), ALERT, at)
    assert decision.reason == "window:federal_window"
    assert decision.next_allowed == datetime(2026, 11, 24, 18, 0, tzinfo=UTC)


def test_the_contacts_own_time_zone_replaces_the_numbers() -> None:
    at = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)  # 12:00 New York, 09:00 Los Angeles
    moved = contact(time_zone="America/Los_Angeles")
    assert reason(moved, ALERT, at) is None
    early = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 07:00 in Los Angeles
    assert reason(moved, ALERT, early) == "window:federal_window"


def test_a_stored_zone_that_does_not_exist_falls_back_to_the_numbers_zones() -> None:
    assert reason(contact(time_zone="Mars/Olympus_Mons"), ALERT) is None


def test_an_invalid_stored_number_is_refused() -> None:
    assert reason(contact("+1212")) == gate.INVALID_NUMBER


# --- 3. caps --------------------------------------------------------------------------------------


def test_default_promotional_cap_is_one_per_seven_days_across_campaigns() -> None:
    assert reason(contact(sends={"cmp_0": sent(timedelta(days=3))})) == gate.CAP_GLOBAL
    assert reason(contact(sends={"cmp_0": sent(timedelta(days=8))})) is None
    # transactional sends do not count against the promotional cap, and are not capped by it
    assert reason(contact(sends={"idem:a": sent(timedelta(days=1), "alerts", "transactional")})) is None
    assert reason(contact(sends={"cmp_0": sent(timedelta(days=1))}), ALERT) is None


@given(ages=st.lists(st.integers(min_value=0, max_value=14 * 24 * 3600), max_size=6), count=st.integers(1, 4))
@settings(max_examples=200, deadline=None)
def test_a_cap_allows_exactly_while_fewer_sends_fall_in_the_rolling_window(
    ages: list[int], count: int
) -> None:
    rule = CapRule.per_days(count, 7)
    history = {f"prev_{i}": sent(timedelta(seconds=age)) for i, age in enumerate(ages)}
    send = PROMO.model_copy(update={"caps": Caps(promotional=rule, state={})})
    in_window = sum(1 for age in ages if age < 7 * 24 * 3600)
    assert counted_sends(history, NOW, rule.window, message_class="promotional") == in_window
    assert (reason(contact(sends=history), send) is None) == (in_window < count)


def test_cap_window_edge_exactly_seven_days_ago_no_longer_counts() -> None:
    assert reason(contact(sends={"cmp_0": sent(timedelta(days=7))})) is None
    assert reason(contact(sends={"cmp_0": sent(timedelta(days=7) - timedelta(seconds=1))})) == gate.CAP_GLOBAL


def test_sends_known_not_to_have_gone_out_do_not_count() -> None:
    for state in ("failed", "released"):
        assert reason(contact(sends={"cmp_0": sent(timedelta(days=1), state=state)})) is None


def test_an_unreadable_send_time_counts_as_now_never_loosening_a_cap() -> None:
    broken = {"cmp_0": {**sent(timedelta(days=30)), "at": "yesterday"}}
    assert reason(contact(sends=broken)) == gate.CAP_GLOBAL


def test_campaign_cap_counts_sends_on_the_same_topic() -> None:
    campaign_cap = PROMO.model_copy(update={"caps": Caps(promotional=None, topic=CapRule.per_days(2, 30))})
    two = {"cmp_a": sent(timedelta(days=10)), "cmp_b": sent(timedelta(days=20))}
    assert reason(contact(sends=two), campaign_cap) == gate.CAP_TOPIC
    other_topic = {"cmp_a": sent(timedelta(days=10)), "cmp_b": sent(timedelta(days=20), topic="news")}
    assert reason(contact(sends=other_topic), campaign_cap) is None


def test_florida_allows_three_per_24_hours_on_the_same_subject() -> None:
    send = PROMO.model_copy(update={"caps": NO_GLOBAL_CAP})
    three = {f"prev_{i}": sent(timedelta(hours=i + 1)) for i in range(3)}
    assert reason(contact(FL, sends=three), send) == "cap_state_FL"
    assert reason(contact(NY, sends=three), send) is None  # New York has no such cap
    two = {f"prev_{i}": sent(timedelta(hours=i + 1)) for i in range(2)}
    assert reason(contact(FL, sends=two), send) is None
    other_subject = {**two, "prev_9": sent(timedelta(hours=1), topic="news")}
    assert reason(contact(FL, sends=other_subject), send) is None
    day_old = {**two, "prev_9": sent(timedelta(hours=24))}
    assert reason(contact(FL, sends=day_old), send) is None


@pytest.mark.parametrize(("phone", "state"), [("+14052010000", "OK"), ("+14102010000", "MD")])
def test_oklahoma_and_maryland_have_the_same_state_cap(phone: str, state: str) -> None:
    send = PROMO.model_copy(update={"caps": NO_GLOBAL_CAP})
    three = {f"prev_{i}": sent(timedelta(hours=i + 1)) for i in range(3)}
    assert reason(contact(phone, sends=three), send) == f"cap_state_{state}"


def test_the_contacts_own_cap_from_the_preference_center() -> None:
    ten_days = {"cmp_0": sent(timedelta(days=10))}
    assert reason(contact(sends=ten_days)) is None
    assert reason(contact(sends=ten_days, frequency_cap={"count": 1, "days": 30})) == gate.CAP_CONTACT
    # unusable preference data is ignored rather than blocking everything
    assert reason(contact(sends=ten_days, frequency_cap={"count": 0, "days": 30})) is None


# --- 4. idempotency -------------------------------------------------------------------------------


def test_the_same_send_key_never_sends_twice() -> None:
    send = PROMO.model_copy(update={"caps": NO_GLOBAL_CAP})
    assert reason(contact(sends={"cmp_1": sent(timedelta(days=40))}), send) == gate.DUPLICATE
    assert (
        reason(contact(sends={"idem:order-7": sent(timedelta(minutes=1), "alerts")}), ALERT) == gate.DUPLICATE
    )


def test_a_released_reservation_is_not_a_duplicate() -> None:
    send = PROMO.model_copy(update={"caps": NO_GLOBAL_CAP})
    assert reason(contact(sends={"cmp_1": sent(timedelta(minutes=1), state="released")}), send) is None


# --- 5. number and consent age --------------------------------------------------------------------


def test_a_number_marked_undeliverable_is_refused() -> None:
    dead = contact(undeliverable={"reason": "landline", "at": NOW.isoformat()})
    decision = gate.evaluate(dead, ALERT, NOW)
    assert decision.reason == gate.UNDELIVERABLE
    assert decision.detail == "landline"


def test_promotional_consent_older_than_the_repermission_age_is_refused() -> None:
    send = PROMO.model_copy(update={"repermission_days": 365})
    assert reason(contact(consent_at=NOW - timedelta(days=366)), send) == gate.CONSENT_TOO_OLD
    assert reason(contact(consent_at=NOW - timedelta(days=364)), send) is None
    old_alerts = ALERT.model_copy(update={"repermission_days": 365})
    assert reason(contact(consent_at=NOW - timedelta(days=900)), old_alerts) is None


def test_a_contact_pausing_promotions_gets_none_until_then() -> None:
    paused = contact(paused_until=NOW + timedelta(days=3))
    assert reason(paused) == gate.PAUSED
    assert reason(paused, ALERT) is None
    assert reason(contact(paused_until=NOW - timedelta(seconds=1))) is None


# --- 6. campaign ----------------------------------------------------------------------------------


def test_after_the_deadline_nothing_is_sent() -> None:
    assert reason(contact(), PROMO.model_copy(update={"deadline": NOW})) == gate.DEADLINE_PASSED
    assert reason(contact(), PROMO.model_copy(update={"deadline": NOW + timedelta(seconds=1)})) is None


@pytest.mark.parametrize(
    "status", [Status.DRAFT, Status.SCHEDULED, Status.PAUSED, Status.COMPLETED, Status.CANCELLED]
)
def test_only_a_running_campaign_sends(status: Status) -> None:
    assert (
        reason(contact(), PROMO.model_copy(update={"campaign_status": status})) == gate.CAMPAIGN_NOT_RUNNING
    )


# --- order ------------------------------------------------------------------------------------------


def test_checks_run_in_the_designs_order() -> None:
    night = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    everything_wrong = contact(
        opted_out=True,
        sends={"cmp_1": sent(timedelta(hours=1)), "cmp_0": sent(timedelta(days=1))},
        undeliverable={"reason": "invalid"},
        paused_until=NOW + timedelta(days=1),
    )
    late = PROMO.model_copy(
        update={"deadline": night - timedelta(days=1), "campaign_status": Status.COMPLETED}
    )
    assert reason(everything_wrong, late, night) == gate.OPTED_OUT
    subscribed = everything_wrong.model_copy(
        update={"consent": everything_wrong.consent.model_copy(update={"opted_out": False})}
    )
    assert reason(subscribed, late, night) == "window:federal_window"
    assert reason(subscribed, late) == gate.CAP_GLOBAL
    no_cap = late.model_copy(update={"caps": NO_GLOBAL_CAP})
    assert reason(subscribed, no_cap) == gate.DUPLICATE
    other_key = no_cap.model_copy(update={"send_key": "cmp_2"})
    assert reason(subscribed, other_key) == gate.UNDELIVERABLE
    alive = subscribed.model_copy(update={"undeliverable": None})
    assert reason(alive, other_key) == gate.PAUSED
    unpaused = alive.model_copy(update={"paused_until": None})
    assert reason(unpaused, other_key) == gate.DEADLINE_PASSED
    assert reason(unpaused, other_key.model_copy(update={"deadline": None})) == gate.CAMPAIGN_NOT_RUNNING


def test_the_time_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        gate.evaluate(contact(), PROMO, NOW.replace(tzinfo=None))


# --- the campaign's send context --------------------------------------------------------------------


def test_send_context_for_a_campaign_carries_its_window_cap_deadline_and_status() -> None:
    campaign = Campaign(
        campaign_id="cmp_ctx",
        name="Spring sale",
        topic="deals",
        template="Hi {first_name|there}",
        window=SendWindow(start=time(10), end=time(18), days="mon-sat"),
        caps=CapOverrides(max_per_days=FrequencyCap(count=2, days=30)),
        deadline=NOW + timedelta(days=2),
        message_class="promotional",
        status=Status.RUNNING,
        created_at=NOW,
        updated_at=NOW,
    )
    send = gate.send_context_for(campaign, repermission_days=365)
    assert send.send_key == "cmp_ctx"
    assert send.topic == "deals"
    assert send.message_class == "promotional"
    assert send.policy == WindowPolicy.parse("10:00-18:00", "mon-sat")
    assert send.caps.topic == CapRule.per_days(2, 30)
    assert send.caps.promotional == CapRule.per_days(1, 7)
    assert send.deadline == campaign.deadline
    assert send.campaign_status is Status.RUNNING
    assert send.repermission_days == 365
    at_nine_thirty = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)  # inside 09-20, outside the campaign's 10-18
    assert gate.evaluate(contact(), send, at_nine_thirty).reason == "window:outside_window"


# --- pruning the sends map --------------------------------------------------------------------------


def test_prune_keeps_cap_windows_and_campaign_keys_for_their_retention() -> None:
    history = {
        "idem:old": sent(timedelta(days=8), "alerts", "transactional"),
        "idem:new": sent(timedelta(days=6), "alerts", "transactional"),
        "cmp_old": {**sent(timedelta(days=36)), "chunk_id": "c"},
        "cmp_new": {**sent(timedelta(days=30)), "chunk_id": "c"},
    }
    kept = prune(history, NOW, timedelta(days=7))
    assert set(kept) == {"idem:new", "cmp_new"}
    assert timedelta(days=35) == CAMPAIGN_KEY_RETENTION
