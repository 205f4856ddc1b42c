import itertools
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from consentry.domain.audience import AudienceFilter
from consentry.domain.campaign import (
    Campaign,
    CampaignSpec,
    CampaignSpecError,
    IllegalTransition,
    SendWindow,
    Status,
    check_spec,
    create_campaign,
    is_terminal,
    transition,
)
from consentry.domain.schedule import Schedule

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)

# Written out from the product rules, independently of the module's table.
ALLOWED = {
    ("draft", "scheduled"),
    ("draft", "cancelled"),
    ("scheduled", "running"),
    ("scheduled", "paused"),
    ("scheduled", "cancelled"),
    ("scheduled", "draft"),
    ("running", "paused"),
    ("running", "completed"),
    ("running", "cancelled"),
    ("paused", "running"),
    ("paused", "scheduled"),
    ("paused", "cancelled"),
}
ALL_PAIRS = list(itertools.product(list(Status), list(Status)))


def spec(**overrides: Any) -> CampaignSpec:
    fields: dict[str, Any] = {
        "name": "Ferret week",
        "topic": "deals",
        "template": "Hi {first_name|there}, ferret treats 20% off at {store}. {brand}",
        "schedule": {"kind": "once", "at": "2026-11-24T15:00:00Z"},
    }
    fields.update(overrides)
    return CampaignSpec.model_validate(fields)


def campaign_in(status: Status, **overrides: Any) -> Campaign:
    return create_campaign(spec(**overrides), "promotional", NOW).model_copy(update={"status": status})


# --- status machine --------------------------------------------------------------------------


@pytest.mark.parametrize(("current", "to"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_every_pair_of_statuses(current: Status, to: Status) -> None:
    campaign = campaign_in(current)
    if (current.value, to.value) in ALLOWED:
        moved = transition(campaign, to, LATER)
        assert moved.status is to
        assert moved.version == campaign.version + 1
        assert moved.updated_at == LATER
        assert moved.created_at == campaign.created_at
        assert moved.campaign_id == campaign.campaign_id
        assert campaign.status is current  # the original is untouched
    else:
        with pytest.raises(IllegalTransition) as caught:
            transition(campaign, to, LATER)
        assert f"from {current} to {to}" in str(caught.value)
        assert (caught.value.current, caught.value.to) == (current, to)


def test_completed_and_cancelled_are_terminal() -> None:
    assert {status for status in Status if is_terminal(status)} == {Status.COMPLETED, Status.CANCELLED}
    with pytest.raises(IllegalTransition, match="completed is final"):
        transition(campaign_in(Status.COMPLETED), Status.RUNNING, LATER)


def test_refusal_lists_where_the_campaign_can_go() -> None:
    with pytest.raises(IllegalTransition, match="from draft it can go to cancelled, scheduled"):
        transition(campaign_in(Status.DRAFT), Status.RUNNING, LATER)


def test_versions_count_every_transition() -> None:
    campaign = campaign_in(Status.DRAFT)
    for step, status in enumerate([Status.SCHEDULED, Status.RUNNING, Status.PAUSED, Status.RUNNING], start=2):
        campaign = transition(campaign, status, LATER)
        assert campaign.version == step


def test_scheduling_needs_a_schedule() -> None:
    campaign = campaign_in(Status.DRAFT, schedule=None)
    with pytest.raises(IllegalTransition, match="no schedule"):
        transition(campaign, Status.SCHEDULED, LATER)
    assert transition(campaign, Status.CANCELLED, LATER).status is Status.CANCELLED


def test_transition_accepts_the_plain_status_string() -> None:
    moved = transition(campaign_in(Status.DRAFT), "scheduled", LATER)  # type: ignore[arg-type]
    assert moved.status is Status.SCHEDULED
    assert Campaign.model_validate_json(moved.model_dump_json()).status is Status.SCHEDULED


def test_transition_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        transition(campaign_in(Status.DRAFT), Status.CANCELLED, datetime(2026, 1, 1))


# --- creating --------------------------------------------------------------------------------


def test_create_campaign_makes_a_draft() -> None:
    campaign = create_campaign(spec(), "promotional", NOW)
    assert campaign.status is Status.DRAFT
    assert campaign.version == 1
    assert campaign.created_at == campaign.updated_at == NOW
    assert campaign.message_class == "promotional"
    assert campaign.messages_per_second == 10
    assert campaign.max_segments == 3
    assert re.fullmatch(r"[A-Za-z0-9_-]+", campaign.campaign_id)


def test_campaign_ids_are_unique_unless_given() -> None:
    ids = {create_campaign(spec(), "promotional", NOW).campaign_id for _ in range(50)}
    assert len(ids) == 50
    assert create_campaign(spec(), "transactional", NOW, campaign_id="spring-1").campaign_id == "spring-1"
    with pytest.raises(ValidationError, match="campaign_id"):
        create_campaign(spec(), "transactional", NOW, campaign_id="no spaces/slashes")


def test_campaign_round_trips_through_json() -> None:
    campaign = create_campaign(
        spec(
            audience={"all": [{"attribute": "pets", "op": "contains", "value": "ferret"}]},
            window={"start": "09:30", "end": "18:00", "days": "mon-fri"},
            caps={"max_per_days": {"count": 1, "days": 7}},
            deadline="2026-11-30T00:00:00Z",
            messages_per_second=50,
        ),
        "promotional",
        NOW,
    )
    dumped = campaign.model_dump(mode="json")
    assert dumped["window"] == {"start": "09:30", "end": "18:00", "days": "mon-fri"}
    assert dumped["audience"] == {"all": [{"attribute": "pets", "op": "contains", "value": "ferret"}]}
    assert Campaign.model_validate(dumped) == campaign
    assert Campaign.model_validate_json(campaign.model_dump_json()) == campaign
    assert isinstance(campaign.audience, AudienceFilter)


def test_stored_campaign_still_loads_after_its_deadline() -> None:
    campaign = create_campaign(spec(deadline="2026-11-30T00:00:00Z"), "promotional", NOW)
    assert Campaign.model_validate_json(campaign.model_dump_json()).deadline == datetime(
        2026, 11, 30, tzinfo=UTC
    )


# --- spec validation (static) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"topic": ""}, "topic"),
        ({"template": ""}, "empty"),
        ({"template": "Hi {0.__class__}"}, "attribute access"),
        ({"template": "Hi {name:>10}"}, "format spec"),
        ({"messages_per_second": 0}, "greater than or equal to 1"),
        ({"messages_per_second": 1001}, "less than or equal to 1000"),
        ({"max_segments": 0}, "max_segments"),
        ({"deadline": "2026-11-30T00:00:00"}, "timezone"),
        ({"colour": "red"}, "Extra inputs"),
        ({"window": {"start": "9:00", "end": "25:00"}}, "HH:MM"),
        ({"window": {"start": "09:60", "end": "10:00"}}, "HH:MM"),
        ({"window": {"start": "20:00", "end": "09:00"}}, "before end"),
        ({"window": {"start": "09:00", "end": "09:00"}}, "before end"),
        ({"window": {"start": "09:00", "end": "17:00", "days": "mon-funday"}}, "unknown day"),
        ({"caps": {"max_per_days": {"count": 0, "days": 7}}}, "count"),
        ({"caps": {"max_per_days": {"count": 1, "days": 0}}}, "days"),
        ({"audience": {"attribute": "pets", "op": "likes", "value": "x"}}, "op one of"),
        ({"schedule": {"kind": "once"}}, "needs at"),
    ],
)
def test_invalid_specs_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        spec(**overrides)
    assert message in str(caught.value)


@pytest.mark.parametrize("rate", [1, 1000])
def test_rate_bounds_are_inclusive(rate: int) -> None:
    assert spec(messages_per_second=rate).messages_per_second == rate


def test_name_is_trimmed() -> None:
    assert spec(name="  Ferret week ").name == "Ferret week"


def test_window_days_and_policy() -> None:
    window = SendWindow.model_validate({"start": "9:30", "end": "17:45", "days": "Fri-Mon"})
    assert window.start == time(9, 30)
    assert window.weekdays == {4, 5, 6, 0}
    policy = window.policy()
    assert (policy.start, policy.end, policy.days) == (time(9, 30), time(17, 45), frozenset({4, 5, 6, 0}))
    assert SendWindow(start=time(8), end=time(20)).weekdays == frozenset(range(7))


# --- spec validation against now -------------------------------------------------------------


def test_valid_spec_passes_and_returns_the_template() -> None:
    template = check_spec(spec(deadline="2026-11-30T00:00:00Z"), NOW)
    assert template.placeholders() == {"first_name", "store", "brand"}


@pytest.mark.parametrize("deadline", [NOW, NOW - timedelta(seconds=1)])
def test_deadline_must_be_in_the_future(deadline: datetime) -> None:
    with pytest.raises(CampaignSpecError, match="not in the future") as caught:
        check_spec(spec(schedule=None, deadline=deadline), NOW)
    assert caught.value.field == "deadline"
    check_spec(spec(schedule=None, deadline=NOW + timedelta(seconds=1)), NOW)


def test_deadline_must_come_after_a_one_off_start() -> None:
    with pytest.raises(CampaignSpecError, match="not after the scheduled start"):
        check_spec(spec(deadline="2026-11-24T15:00:00Z"), NOW)


def test_one_off_start_must_be_in_the_future() -> None:
    with pytest.raises(CampaignSpecError, match="already passed") as caught:
        check_spec(spec(schedule={"kind": "once", "at": NOW.isoformat()}), NOW)
    assert caught.value.field == "schedule"


def test_local_time_schedule_is_fine_while_any_zone_can_still_reach_it() -> None:
    # 10:00 on today's UTC date: long gone at UTC+14, still ahead at UTC-12 (22:00 UTC).
    today = {"kind": "local_time", "local_time": "10:00", "date": NOW.date().isoformat()}
    check_spec(spec(schedule=today), NOW)
    yesterday = {**today, "date": (NOW.date() - timedelta(days=1)).isoformat()}
    with pytest.raises(CampaignSpecError, match="already passed"):
        check_spec(spec(schedule=yesterday), NOW)


def test_recurring_schedule_has_no_start_to_check() -> None:
    check_spec(spec(schedule={"kind": "recurring", "cron": "cron(0 10 ? * MON *)"}, deadline=LATER), NOW)


def test_unknown_placeholders_are_refused_when_attributes_are_known() -> None:
    with pytest.raises(CampaignSpecError, match=r"template: unknown placeholder \{store\}"):
        check_spec(spec(), NOW, known_attributes={"first_name"})
    check_spec(spec(), NOW, known_attributes={"first_name", "store"})


def test_segment_limit_applies_with_a_counter() -> None:
    def one_segment_per_10_chars(text: str) -> int:
        return len(text) // 10 + 1

    with pytest.raises(CampaignSpecError, match="segments"):
        check_spec(spec(max_segments=3), NOW, segment_counter=one_segment_per_10_chars)
    check_spec(spec(max_segments=10, template="Hi {name}"), NOW, segment_counter=one_segment_per_10_chars)


def test_create_campaign_runs_the_time_checks() -> None:
    with pytest.raises(CampaignSpecError):
        create_campaign(spec(deadline=NOW - timedelta(days=1)), "promotional", NOW)


def test_check_spec_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_spec(spec(), datetime(2026, 1, 1))


def test_schedule_is_the_schedule_model() -> None:
    assert spec().schedule == Schedule(kind="once", at=datetime(2026, 11, 24, 15, tzinfo=UTC))
    local = spec(schedule={"kind": "local_time", "local_time": "10:00", "date": "2026-11-24"}).schedule
    assert local is not None
    assert (local.local_time, local.date) == (time(10), date(2026, 11, 24))
