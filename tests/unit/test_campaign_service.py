"""The campaign service's decisions, with the store, Scheduler and contacts replaced by fakes.

What is checked here: which Scheduler calls each change makes and with what, how statuses move
(including resume going back to where the pause found it), races resolved on a fresh read,
and the preview's arithmetic (audience, suppression reasons, per-zone timing, segments, cost).
"""

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from consentry import clock, config
from consentry.domain.campaign import CampaignSpec, CampaignSpecError, IllegalTransition, Status
from consentry.domain.consent import ContactConsent, TopicConsent, TopicStatus
from consentry.domain.contact import Contact
from consentry.domain.program import load_program
from consentry.domain.schedule import Schedule, local_instant
from consentry.services import campaigns as service
from consentry.services import scheduling as real_scheduling
from consentry.store.campaigns import CampaignNotFound, CampaignRecord, VersionConflict

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday, 10:00 in New York, 07:00 in Los Angeles
TOPICS = (
    '[{"id":"deals","keyword":"DEALS","message_class":"promotional","frequency":"up to 4 msgs/month",'
    '"description":"deals and offers","double_opt_in":true},'
    '{"id":"alerts","keyword":"ALERTS","message_class":"transactional","frequency":"up to 10 msgs/month",'
    '"description":"account and order alerts","double_opt_in":false}]'
)
PROGRAM = load_program(
    brand="Ferret Co",
    support_contact="help@example.com",
    terms_url="https://example.com/terms",
    privacy_url="https://example.com/privacy",
    topics_json=TOPICS,
)
#: Settings without a default; none of them is read by the code under test (its AWS is faked).
REQUIRED_SETTINGS = {
    field.alias: "unused"
    for field in config.Settings.model_fields.values()
    if field.alias and field.is_required()
}
ENVIRONMENT = {
    "BRAND_NAME": "Ferret Co",
    "PRICE_PER_SEGMENT": '{"US": 0.00581, "CA": 0.00581, "default": 0.05}',
    "SMART_ENCODING": "true",
    "PUBLIC_BASE_URL": "",
    "PROMOTIONAL_CAP_COUNT": "1",
    "PROMOTIONAL_CAP_DAYS": "7",
    "REPERMISSION_DAYS": "365",
}

NEW_YORK = "+12125550142"
NEW_YORK_2 = "+12125550143"
LOS_ANGELES = "+13105550123"
TORONTO = "+14165550123"
PARIS = "+33612345678"


class FakeStore:
    """In-memory campaign META items with the real store's version rule."""

    def __init__(self) -> None:
        self.records: dict[str, CampaignRecord] = {}
        self.saves = 0
        # Called before a save is checked: lets a test change the campaign "concurrently".
        self.before_save: list[Callable[[], None]] = []

    def create(self, record: CampaignRecord) -> None:
        if record.campaign.campaign_id in self.records:
            raise VersionConflict(record.campaign.campaign_id, 0)
        self.records[record.campaign.campaign_id] = record

    def get(self, campaign_id: str, *, consistent: bool = True) -> CampaignRecord | None:
        return self.records.get(campaign_id)

    def load(self, campaign_id: str) -> CampaignRecord:
        record = self.records.get(campaign_id)
        if record is None:
            raise CampaignNotFound(campaign_id)
        return record

    def save(self, record: CampaignRecord, *, expected_version: int) -> None:
        if self.before_save:
            self.before_save.pop(0)()
        assert record.campaign.version == expected_version + 1
        current = self.records[record.campaign.campaign_id]
        if current.campaign.version != expected_version:
            raise VersionConflict(record.campaign.campaign_id, expected_version)
        self.saves += 1
        self.records[record.campaign.campaign_id] = record

    def overwrite(self, campaign_id: str, **changes: Any) -> None:
        """Another writer's change: bumps the version like every real write."""
        record = self.records[campaign_id]
        campaign = record.campaign.model_copy(update={**changes, "version": record.campaign.version + 1})
        self.records[campaign_id] = record.model_copy(update={"campaign": campaign})


class FakeScheduler:
    """Records Scheduler calls; the pure helpers (names, expressions) are the real ones."""

    MIN_LEAD = real_scheduling.MIN_LEAD
    at_expression = staticmethod(real_scheduling.at_expression)
    expression_instant = staticmethod(real_scheduling.expression_instant)

    def __init__(self) -> None:
        self.schedules: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []

    def put_start_schedule(
        self,
        campaign_id: str,
        expression: str,
        timezone: str | None,
        *,
        end_date: datetime | None = None,
    ) -> real_scheduling.PutResult:
        name = real_scheduling.campaign_schedule_name(campaign_id)
        self.calls.append(("put", name))
        self.schedules[name] = {
            "expression": expression,
            "timezone": timezone,
            "enabled": True,
            "end_date": end_date,
            "action": "start",
        }
        return real_scheduling.PutResult(name=name, expression=expression, timezone=timezone)

    def put_release_schedule(self, campaign_id: str, now: datetime) -> str:
        name = real_scheduling.release_schedule_name(campaign_id, now + real_scheduling.RELEASE_DELAY)
        self.calls.append(("release", name))
        expression, timezone = real_scheduling.at_expression(now + real_scheduling.RELEASE_DELAY)
        self.schedules[name] = {
            "expression": expression,
            "timezone": timezone,
            "enabled": True,
            "action": "release",
        }
        return name

    def set_enabled(self, name: str, enabled: bool, now: datetime) -> real_scheduling.PutResult | None:
        self.calls.append(("enable" if enabled else "disable", name))
        schedule = self.schedules.get(name)
        if schedule is None:
            return None
        schedule["enabled"] = enabled
        instant = real_scheduling.expression_instant(schedule["expression"], schedule["timezone"])
        if enabled and instant is not None and instant < now + self.MIN_LEAD:
            schedule["expression"], schedule["timezone"] = real_scheduling.at_expression(now + self.MIN_LEAD)
        return real_scheduling.PutResult(
            name=name, expression=schedule["expression"], timezone=schedule["timezone"]
        )

    def delete(self, name: str) -> bool:
        self.calls.append(("delete", name))
        return self.schedules.pop(name, None) is not None

    def get(self, name: str) -> dict[str, Any] | None:
        return self.schedules.get(name)


class FakeSubscribers:
    def __init__(self) -> None:
        self.contacts: list[Contact] = []
        self.scans = 0

    def scan_topic_subscribers(self, topic_id: str, **_: Any) -> Iterator[Contact]:
        self.scans += 1
        yield from self.contacts


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    store, scheduler, subscribers = FakeStore(), FakeScheduler(), FakeSubscribers()
    monkeypatch.setattr(service, "store", store)
    monkeypatch.setattr(service, "scheduling", scheduler)
    monkeypatch.setattr(service, "subscribers", subscribers)
    monkeypatch.setattr(service, "current_program", lambda: PROGRAM)
    for name, value in {**REQUIRED_SETTINGS, **ENVIRONMENT}.items():
        monkeypatch.setenv(name, value)
    config.settings.cache_clear()
    clock.set_source(lambda: NOW)
    try:
        yield SimpleNamespace(store=store, scheduler=scheduler, subscribers=subscribers)
    finally:
        clock.reset()
        monkeypatch.undo()
        config.settings.cache_clear()


def subscriber(
    phone: str,
    topic: str = "deals",
    *,
    attributes: dict[str, Any] | None = None,
    status: TopicStatus = TopicStatus.ACTIVE,
    opted_out: bool = False,
    **fields: Any,
) -> Contact:
    consent = ContactConsent(
        phone=phone,
        opted_out=opted_out,
        topics={topic: TopicConsent(status=status, changed_at=NOW - timedelta(days=30), source="sms")},
    )
    return Contact(consent=consent, attributes=attributes or {}, **fields)


def spec(**overrides: Any) -> CampaignSpec:
    values: dict[str, Any] = {
        "name": "Ferret treats",
        "topic": "deals",
        "template": "Hi {first_name|there}, 20% off",
    }
    values.update(overrides)
    return CampaignSpec.model_validate(values)


def once(at: datetime) -> Schedule:
    return Schedule(kind="once", at=at)


# --- create ----------------------------------------------------------------------------------


def test_create_copies_the_message_class_from_the_topic(world: SimpleNamespace) -> None:
    record = service.create(spec(topic="alerts", template="Your order shipped"))
    assert record.campaign.message_class == "transactional"
    assert record.campaign.status is Status.DRAFT
    assert world.store.records[record.campaign.campaign_id] == record


def test_create_refuses_a_topic_the_program_does_not_have(world: SimpleNamespace) -> None:
    with pytest.raises(
        service.UnknownTopic, match="'ferrets' is not in the program; its topics are alerts, deals"
    ):
        service.create(spec(topic="ferrets"))
    assert world.store.records == {}


def test_promotional_segments_count_the_opt_out_footer(world: SimpleNamespace) -> None:
    # 150 GSM-7 characters fit one segment alone; with "\nReply STOP to opt out" they need two.
    text = "A" * 150
    assert service.create(spec(topic="alerts", template=text, max_segments=1))
    with pytest.raises(CampaignSpecError, match="template: template needs 2 segments"):
        service.create(spec(template=text, max_segments=1))


def test_create_refuses_a_schedule_in_the_past(world: SimpleNamespace) -> None:
    with pytest.raises(CampaignSpecError, match="schedule"):
        service.create(spec(schedule=once(NOW - timedelta(minutes=5))))


# --- schedule --------------------------------------------------------------------------------


def test_schedule_a_draft_puts_one_start_schedule(world: SimpleNamespace) -> None:
    created = service.create(spec(schedule=once(NOW + timedelta(days=1))))
    campaign_id = created.campaign.campaign_id
    record = service.schedule(campaign_id)
    assert record.campaign.status is Status.SCHEDULED
    assert record.campaign.version == 2
    name = f"campaign-{campaign_id}"
    assert record.trigger is not None
    assert record.trigger.name == name
    assert world.scheduler.schedules[name]["expression"] == "at(2026-11-25T15:00:00)"
    assert world.scheduler.schedules[name]["timezone"] == "UTC"


def test_schedule_without_any_schedule_is_refused_before_any_call(world: SimpleNamespace) -> None:
    campaign_id = service.create(spec()).campaign.campaign_id
    with pytest.raises(service.MissingSchedule):
        service.schedule(campaign_id)
    assert world.scheduler.calls == []
    assert world.store.records[campaign_id].campaign.status is Status.DRAFT


def test_recurring_schedule_keeps_cron_and_zone_and_ends_at_the_deadline(world: SimpleNamespace) -> None:
    deadline = NOW + timedelta(days=60)
    campaign_id = service.create(spec(deadline=deadline)).campaign.campaign_id
    cron = Schedule(kind="recurring", cron="cron(0 10 ? * MON *)", timezone="America/Chicago")
    record = service.schedule(campaign_id, cron)
    put = world.scheduler.schedules[f"campaign-{campaign_id}"]
    assert (put["expression"], put["timezone"], put["end_date"]) == (
        "cron(0 10 ? * MON *)",
        "America/Chicago",
        deadline,
    )
    assert record.campaign.schedule == cron


def test_reschedule_replaces_the_trigger_and_bumps_the_version(world: SimpleNamespace) -> None:
    campaign_id = service.create(spec(schedule=once(NOW + timedelta(days=1)))).campaign.campaign_id
    service.schedule(campaign_id)
    record = service.schedule(campaign_id, once(NOW + timedelta(days=2)))
    assert record.campaign.status is Status.SCHEDULED
    assert record.campaign.version == 3
    assert world.scheduler.schedules[f"campaign-{campaign_id}"]["expression"] == "at(2026-11-26T15:00:00)"
    assert len(world.scheduler.schedules) == 1


def test_local_time_triggers_at_the_first_audience_zone(world: SimpleNamespace) -> None:
    world.subscribers.contacts = [
        subscriber(LOS_ANGELES, attributes={"pets": ["ferret"]}),
        subscriber(NEW_YORK, attributes={"pets": ["cat"]}),  # filtered out: its zone must not count
    ]
    ferrets = {"attribute": "pets", "op": "contains", "value": "ferret"}
    local = Schedule(kind="local_time", local_time=time(10, 0), date=date(2026, 11, 25))
    campaign_id = service.create(spec(audience=ferrets, schedule=local)).campaign.campaign_id
    service.schedule(campaign_id)
    expected = local_instant(datetime(2026, 11, 25, 10, 0), "America/Los_Angeles")
    assert world.scheduler.schedules[f"campaign-{campaign_id}"]["expression"] == (
        f"at({expected:%Y-%m-%dT%H:%M:%S})"
    )

    world.subscribers.contacts.append(subscriber(NEW_YORK_2, attributes={"pets": ["ferret", "dog"]}))
    service.schedule(campaign_id)
    new_york = local_instant(datetime(2026, 11, 25, 10, 0), "America/New_York")
    assert (
        world.scheduler.schedules[f"campaign-{campaign_id}"]["expression"]
        == f"at({new_york:%Y-%m-%dT%H:%M:%S})"
    )


def test_local_time_already_past_in_some_zones_starts_a_minute_from_now(world: SimpleNamespace) -> None:
    world.subscribers.contacts = [subscriber(NEW_YORK), subscriber(LOS_ANGELES)]
    local = Schedule(kind="local_time", local_time=time(9, 0), date=NOW.date())  # 09:00 NY has passed
    campaign_id = service.create(spec(schedule=local)).campaign.campaign_id
    service.schedule(campaign_id)
    assert world.scheduler.schedules[f"campaign-{campaign_id}"]["expression"] == "at(2026-11-24T15:01:00)"


def test_local_time_without_subscribers_uses_the_earliest_zone_on_earth(world: SimpleNamespace) -> None:
    local = Schedule(kind="local_time", local_time=time(10, 0), date=date(2026, 11, 26))
    campaign_id = service.create(spec(schedule=local)).campaign.campaign_id
    service.schedule(campaign_id)
    # 10:00 at UTC+14 is 20:00 UTC the day before.
    assert world.scheduler.schedules[f"campaign-{campaign_id}"]["expression"] == "at(2026-11-25T20:00:00)"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (Status.RUNNING, "it has already started"),
        (Status.PAUSED, "it is paused"),
        (Status.COMPLETED, "completed is final"),
        (Status.CANCELLED, "cancelled is final"),
    ],
)
def test_schedule_is_refused_once_the_campaign_left_draft_and_scheduled(
    world: SimpleNamespace, status: Status, reason: str
) -> None:
    campaign_id = service.create(spec(schedule=once(NOW + timedelta(days=1)))).campaign.campaign_id
    world.store.overwrite(campaign_id, status=status)
    with pytest.raises(IllegalTransition, match=reason):
        service.schedule(campaign_id)
    assert world.scheduler.calls == []


def test_schedule_that_would_end_after_the_deadline_is_refused(world: SimpleNamespace) -> None:
    campaign_id = service.create(spec(deadline=NOW + timedelta(hours=2))).campaign.campaign_id
    with pytest.raises(CampaignSpecError, match="deadline"):
        service.schedule(campaign_id, once(NOW + timedelta(hours=3)))


# --- pause, resume, cancel -------------------------------------------------------------------


def scheduled_campaign(world: SimpleNamespace) -> str:
    campaign_id: str = service.create(spec(schedule=once(NOW + timedelta(days=1)))).campaign.campaign_id
    service.schedule(campaign_id)
    world.scheduler.calls.clear()
    return campaign_id


def test_pause_before_start_disables_the_trigger_and_resume_enables_it(world: SimpleNamespace) -> None:
    campaign_id = scheduled_campaign(world)
    name = f"campaign-{campaign_id}"
    paused = service.pause(campaign_id)
    assert paused.campaign.status is Status.PAUSED
    assert paused.paused_from is Status.SCHEDULED
    assert world.scheduler.schedules[name]["enabled"] is False

    resumed = service.resume(campaign_id)
    assert resumed.campaign.status is Status.SCHEDULED
    assert resumed.paused_from is None
    assert world.scheduler.schedules[name]["enabled"] is True
    assert world.scheduler.calls == [("disable", name), ("enable", name)]  # no release: nothing was parked


def test_resume_after_the_start_instant_passed_starts_a_minute_later(world: SimpleNamespace) -> None:
    campaign_id = scheduled_campaign(world)
    service.pause(campaign_id)
    later = NOW + timedelta(days=2)
    clock.set_source(lambda: later)
    resumed = service.resume(campaign_id)
    assert resumed.trigger is not None
    assert resumed.trigger.expression == "at(2026-11-26T15:01:00)"


def test_resume_of_a_started_campaign_releases_parked_chunks(world: SimpleNamespace) -> None:
    campaign_id = scheduled_campaign(world)
    service.set_status(campaign_id, Status.RUNNING)  # the trigger fired: fan-out started it
    world.scheduler.schedules.clear()  # one-off schedules delete themselves after firing
    paused = service.pause(campaign_id)
    assert paused.paused_from is Status.RUNNING
    resumed = service.resume(campaign_id)
    assert resumed.campaign.status is Status.RUNNING
    release = f"release-{campaign_id}-{int((NOW + timedelta(minutes=1)).timestamp())}"
    assert world.scheduler.schedules[release] == {
        "expression": "at(2026-11-24T15:01:00)",
        "timezone": "UTC",
        "enabled": True,
        "action": "release",
    }


def test_resume_of_a_running_recurring_campaign_reenables_its_cron(world: SimpleNamespace) -> None:
    campaign_id = service.create(spec()).campaign.campaign_id
    service.schedule(campaign_id, Schedule(kind="recurring", cron="cron(0 15 ? * TUE *)"))
    service.set_status(campaign_id, Status.RUNNING)
    service.pause(campaign_id)
    assert world.scheduler.schedules[f"campaign-{campaign_id}"]["enabled"] is False
    service.resume(campaign_id)
    assert world.scheduler.schedules[f"campaign-{campaign_id}"]["enabled"] is True
    assert any(kind == "release" for kind, _ in world.scheduler.calls)


@pytest.mark.parametrize("status", [Status.DRAFT, Status.SCHEDULED, Status.RUNNING, Status.CANCELLED])
def test_only_a_paused_campaign_resumes(world: SimpleNamespace, status: Status) -> None:
    campaign_id = scheduled_campaign(world)
    world.store.overwrite(campaign_id, status=status)
    with pytest.raises(IllegalTransition, match="only a paused campaign can be resumed"):
        service.resume(campaign_id)
    assert world.scheduler.calls == []


def test_pause_of_a_draft_is_refused(world: SimpleNamespace) -> None:
    campaign_id = service.create(spec()).campaign.campaign_id
    with pytest.raises(IllegalTransition, match="from draft it can go to cancelled, scheduled"):
        service.pause(campaign_id)


def test_cancel_deletes_the_trigger_once_and_is_final(world: SimpleNamespace) -> None:
    campaign_id = scheduled_campaign(world)
    cancelled = service.cancel(campaign_id)
    assert cancelled.campaign.status is Status.CANCELLED
    assert cancelled.trigger is None
    assert world.scheduler.schedules == {}
    with pytest.raises(IllegalTransition, match="cancelled is final"):
        service.cancel(campaign_id)
    with pytest.raises(IllegalTransition):
        service.pause(campaign_id)
    assert world.scheduler.calls == [("delete", f"campaign-{campaign_id}")]


def test_unknown_campaign(world: SimpleNamespace) -> None:
    with pytest.raises(CampaignNotFound):
        service.pause("cmp_nope")


# --- races -----------------------------------------------------------------------------------


def test_a_pause_that_loses_to_a_cancel_reports_the_cancel(world: SimpleNamespace) -> None:
    campaign_id = scheduled_campaign(world)
    world.store.before_save.append(lambda: world.store.overwrite(campaign_id, status=Status.CANCELLED))
    with pytest.raises(IllegalTransition, match="cancelled is final"):
        service.pause(campaign_id)
    assert world.store.records[campaign_id].campaign.status is Status.CANCELLED


def test_a_cancel_that_loses_to_a_pause_is_applied_on_the_fresh_state(world: SimpleNamespace) -> None:
    campaign_id = scheduled_campaign(world)
    world.store.before_save.append(lambda: world.store.overwrite(campaign_id, status=Status.PAUSED))
    record = service.cancel(campaign_id)
    assert record.campaign.status is Status.CANCELLED
    assert record.campaign.version == 4  # created 1, scheduled 2, paused by the other writer 3


def test_a_schedule_that_loses_to_a_cancel_leaves_no_trigger_behind(world: SimpleNamespace) -> None:
    campaign_id = service.create(spec(schedule=once(NOW + timedelta(days=1)))).campaign.campaign_id
    world.store.before_save.append(lambda: world.store.overwrite(campaign_id, status=Status.CANCELLED))
    with pytest.raises(IllegalTransition, match="cancelled is final"):
        service.schedule(campaign_id)
    assert world.scheduler.schedules == {}


def test_endless_conflicts_give_up_with_a_clear_error(world: SimpleNamespace) -> None:
    campaign_id = scheduled_campaign(world)
    world.store.before_save.extend(
        [lambda: world.store.overwrite(campaign_id, name="edited")] * service.MAX_ATTEMPTS
    )
    with pytest.raises(service.ConcurrentChange, match="kept changing"):
        service.pause(campaign_id)
    assert world.store.records[campaign_id].campaign.status is Status.SCHEDULED


# --- preview ---------------------------------------------------------------------------------


def draft(world: SimpleNamespace, **overrides: Any) -> str:
    campaign_id: str = service.create(spec(**overrides)).campaign.campaign_id
    return campaign_id


def test_preview_counts_the_audience_and_suppressions_by_reason(world: SimpleNamespace) -> None:
    world.subscribers.contacts = [
        subscriber(NEW_YORK, attributes={"first_name": "Ana", "pets": ["ferret"]}),
        subscriber(NEW_YORK_2, attributes={"pets": ["ferret"]}),  # no first name: the template's fallback
        subscriber("+12125550144", attributes={"pets": ["ferret"]}, undeliverable={"reason": "unreachable"}),
        subscriber("+12125550145", attributes={"pets": ["cat"]}),  # not in the audience
        subscriber(
            "+12125550146", attributes={"pets": ["ferret"]}, status=TopicStatus.PENDING
        ),  # not subscribed
        subscriber("+12125550147", attributes={"pets": ["ferret"]}, opted_out=True),  # not subscribed
        subscriber(LOS_ANGELES, attributes={"pets": ["ferret"]}),  # 07:00 there
    ]
    campaign_id = draft(world, audience={"attribute": "pets", "op": "contains", "value": "ferret"})
    report = service.preview(campaign_id)
    assert report["timing"] == "now"
    assert report["evaluated_at"] == NOW.isoformat()
    assert report["audience"] == 4
    assert report["would_send"] == 2
    # Los Angeles at 07:00 is before the federal 08:00: the first refusing rule names it.
    assert report["suppressed"] == {"undeliverable": 1, "window:federal_window": 1}
    texts = sorted(sample["text"] for sample in report["samples"])
    assert texts == ["Hi Ana, 20% off\nReply STOP to opt out", "Hi there, 20% off\nReply STOP to opt out"]
    assert {sample["to"] for sample in report["samples"]} == {"+1********42", "+1********43"}


def test_preview_suppresses_a_missing_attribute_without_fallback(world: SimpleNamespace) -> None:
    world.subscribers.contacts = [
        subscriber(NEW_YORK, attributes={"store": "Soho"}),
        subscriber(NEW_YORK_2, attributes={}),
    ]
    report = service.preview(draft(world, template="Treats at {store} today"))
    assert report["would_send"] == 1
    assert report["suppressed"] == {"missing_attribute:store": 1}


def test_preview_cost_is_segments_times_the_price_of_each_country(world: SimpleNamespace) -> None:
    world.subscribers.contacts = [
        subscriber(NEW_YORK),
        subscriber(NEW_YORK_2),
        subscriber(TORONTO),
        subscriber(PARIS, time_zone="Europe/Paris"),
    ]
    # UCS-2 (the emoji), 2 segments each once the opt-out footer is added.
    template = "🐾 " + "Fresh ferret treats are in stock. " * 2
    report = service.preview(draft(world, template=template), at=datetime(2026, 11, 24, 16, 0, tzinfo=UTC))
    assert report["timing"] == "at"
    assert report["would_send"] == 4, report["suppressed"]
    assert report["encoding"] == "UCS-2"
    assert report["segments"]["max"] == 2
    assert report["segments"]["total"] == 8
    cost = report["estimated_cost"]
    assert cost["by_country"]["US"] == {
        "recipients": 2,
        "segments": 4,
        "price_per_segment": 0.00581,
        "cost": 0.02324,
    }
    assert cost["by_country"]["CA"]["cost"] == 0.01162
    assert cost["by_country"]["FR"] == {
        "recipients": 1,
        "segments": 2,
        "price_per_segment": 0.05,
        "cost": 0.1,
    }
    assert cost["total"] == pytest.approx(0.02324 + 0.01162 + 0.1)


def test_preview_keeps_five_samples(world: SimpleNamespace) -> None:
    world.subscribers.contacts = [subscriber(f"+1212555{index:04d}") for index in range(150, 160)]
    report = service.preview(draft(world))
    assert report["would_send"] == 10
    assert len(report["samples"]) == 5
    assert all("*" in sample["to"] for sample in report["samples"])


def test_preview_at_night_suppresses_everyone_by_window(world: SimpleNamespace) -> None:
    world.subscribers.contacts = [subscriber(NEW_YORK), subscriber(LOS_ANGELES)]
    report = service.preview(draft(world), at=datetime(2026, 11, 25, 4, 0, tzinfo=UTC))  # 23:00 NY
    assert report["would_send"] == 0
    assert all(reason.startswith("window:") for reason in report["suppressed"])
    assert sum(report["suppressed"].values()) == 2


def test_preview_of_a_one_off_evaluates_at_its_start(world: SimpleNamespace) -> None:
    world.subscribers.contacts = [subscriber(NEW_YORK)]
    night = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    report = service.preview(draft(world, schedule=once(night)))
    assert (report["timing"], report["evaluated_at"]) == ("scheduled", night.isoformat())
    assert report["would_send"] == 0


def test_preview_of_a_local_time_campaign_evaluates_each_recipient_at_its_own_time(
    world: SimpleNamespace,
) -> None:
    world.subscribers.contacts = [subscriber(NEW_YORK), subscriber(LOS_ANGELES)]
    local = Schedule(kind="local_time", local_time=time(10, 0), date=date(2026, 11, 25))
    report = service.preview(draft(world, schedule=local))
    # At any single instant one of them would be outside 09:00-20:00; at 10:00 local both are in.
    assert report["timing"] == "local_time"
    assert report["evaluated_at"] is None
    assert report["would_send"] == 2


def test_preview_explains_one_number(world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    contacts = {
        NEW_YORK: subscriber(NEW_YORK, attributes={"pets": ["cat"]}),
        LOS_ANGELES: subscriber(LOS_ANGELES),
    }
    monkeypatch.setattr(service.contacts, "load", contacts.get)
    world.subscribers.contacts = list(contacts.values())
    campaign_id = draft(world)
    la = service.preview(campaign_id, phone="(310) 555-0123")["recipient"]
    assert la["phone"] == "+1********23"
    assert la["in_audience"] is True
    assert la["would_send"] is False
    assert la["reason"].startswith("window:")
    assert la["next_allowed"] == "2026-11-24T17:00:00+00:00"  # 09:00 in Los Angeles
    nobody = service.preview(campaign_id, phone="+12125550199")["recipient"]
    assert nobody == {
        "phone": "+1********99",
        "in_audience": False,
        "would_send": False,
        "reason": "no_consent",
    }
    filtered = draft(world, audience={"attribute": "pets", "op": "contains", "value": "ferret"})
    ny = service.preview(filtered, phone=NEW_YORK)["recipient"]
    assert (ny["in_audience"], ny["reason"]) == (False, "audience_filter")


def test_preview_sends_and_writes_nothing(world: SimpleNamespace) -> None:
    world.subscribers.contacts = [subscriber(NEW_YORK)]
    campaign_id = draft(world)
    before = world.store.records[campaign_id]
    service.preview(campaign_id)
    assert world.store.records[campaign_id] == before
    assert world.store.saves == 0
    assert world.scheduler.calls == []


def test_preview_counts_a_text_longer_than_the_campaign_allows(world: SimpleNamespace) -> None:
    world.subscribers.contacts = [
        subscriber(NEW_YORK, attributes={"store": "Soho"}),
        subscriber(NEW_YORK_2, attributes={"store": "S" * 400}),  # an attribute no worst case foresaw
    ]
    report = service.preview(draft(world, template="Treats at {store}", max_segments=2))
    assert report["would_send"] == 1
    assert report["suppressed"] == {"too_many_segments": 1}


def test_preview_counts_segments_after_smart_encoding(
    world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.subscribers.contacts = [subscriber(NEW_YORK)]
    campaign_id = draft(world, template="It\u2019s ferret day \u2014 treats 20% off")
    assert service.preview(campaign_id)["encoding"] == "GSM-7"
    monkeypatch.setenv("SMART_ENCODING", "false")
    config.settings.cache_clear()
    assert service.preview(campaign_id)["encoding"] == "UCS-2"


def test_preview_shows_a_stand_in_preference_link_never_a_real_one(
    world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://sms.example.com")
    config.settings.cache_clear()
    world.subscribers.contacts = [subscriber(NEW_YORK)]
    report = service.preview(draft(world, template="Deals! Manage texts: {preferences_url}"))
    assert report["would_send"] == 1
    link = report["samples"][0]["text"].split("Manage texts: ")[1].split()[0]
    assert link.startswith("https://sms.example.com/preferences?t=")
    assert set(link.split("t=")[1]) == {"X"}


def test_preview_applies_the_deployment_caps_and_consent_age(world: SimpleNamespace) -> None:
    yesterday = int((NOW - timedelta(days=1)).timestamp())
    recent_send = {"at": yesterday, "topic": "deals", "message_class": "promotional", "state": "sent"}
    old = subscriber(NEW_YORK_2)
    old_consent = old.consent.model_copy(
        update={
            "topics": {
                "deals": TopicConsent(
                    status=TopicStatus.ACTIVE, changed_at=NOW - timedelta(days=400), source="sms"
                )
            }
        }
    )
    world.subscribers.contacts = [
        subscriber(NEW_YORK, sends={"cmp_other": recent_send}),
        old.model_copy(update={"consent": old_consent}),
    ]
    report = service.preview(draft(world))
    assert report["suppressed"] == {"cap_global": 1, "consent_too_old": 1}
