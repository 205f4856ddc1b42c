"""Campaigns for the admin API: create, list, preview (dry run), schedule, pause, resume, cancel;
and for the fan-out: a run begins (`begin_run`) and completes (`complete_run`).

Every change reads the campaign, decides with the domain (`transition`, `check_spec`), makes
the idempotent EventBridge Scheduler call it needs, then writes the campaign conditioned on
the version it read. When another admin (or the fan-out) changed it in between, the write
fails and the whole step runs again on the fresh state, so the loser of a race gets the
answer the winner's state implies (e.g. 409 "cancelled is final"), never a lost update.
Scheduler calls come before the write so a failed call leaves the campaign as it was and the
request can simply be repeated.
"""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict

from consentry import clock
from consentry.config import settings
from consentry.domain import gate
from consentry.domain.campaign import (
    Campaign,
    CampaignRun,
    CampaignSpec,
    CampaignSpecError,
    IllegalTransition,
    StartPlan,
    Status,
    check_spec,
    completes_run,
    create_campaign,
    is_terminal,
    plan_start,
    status_after_run,
    transition,
)
from consentry.domain.contact import Contact
from consentry.domain.encoding import SegmentInfo, analyze, ensure_opt_out_instructions, smart_encode
from consentry.domain.messages import MessageClass
from consentry.domain.phone import mask, normalize
from consentry.domain.schedule import Schedule, local_send_instants, scheduler_expression
from consentry.domain.templates import MessageTemplate
from consentry.services import scheduling
from consentry.services.preferences import sample_preference_url
from consentry.services.program import current_program
from consentry.services.sender import TOO_MANY_SEGMENTS, deployment_caps
from consentry.store import campaigns as store
from consentry.store import contacts, subscribers
from consentry.store import fanout as fanout_store
from consentry.store.campaigns import CampaignNotFound, CampaignRecord, Trigger, VersionConflict

logger = Logger(child=True)

MAX_ATTEMPTS = 5
SAMPLE_COUNT = 5
MISSING_ATTRIBUTE_PREFIX = "missing_attribute:"
COST_DECIMALS = Decimal("0.000001")

__all__ = [
    "CampaignNotFound",
    "CampaignSpecError",
    "ConcurrentChange",
    "IllegalTransition",
    "MissingSchedule",
    "UnknownTopic",
]


class UnknownTopic(ValueError):
    def __init__(self, topic: str, known: Iterable[str]) -> None:
        super().__init__(f"topic {topic!r} is not in the program; its topics are {', '.join(sorted(known))}")


class MissingSchedule(ValueError):
    pass


class ConcurrentChange(RuntimeError):
    pass


# --- what every message of a campaign goes through -------------------------------------------


def system_values() -> dict[str, str]:
    """Reserved placeholders for checks and previews: the brand, and a stand-in preference link.

    The stand-in has a real link's length (same segments), but is not one: a real link is a
    credential for its contact and must not appear in a preview.
    """
    values = {"brand": settings().brand_name}
    sample = sample_preference_url()
    if sample:
        values["preferences_url"] = sample
    return values


def final_text(text: str, message_class: MessageClass) -> str:
    """The rendered text as the sender sends it (services/sender.compose): opt-out footer on
    promotional texts, then smart encoding when the deployment enables it."""
    if message_class == "promotional":
        text = ensure_opt_out_instructions(text)
    return smart_encode(text) if settings().smart_encoding else text


def segment_counter(message_class: MessageClass) -> Callable[[str], int]:
    def count(text: str) -> int:
        return analyze(final_text(text, message_class)).segments

    return count


# --- create, read ----------------------------------------------------------------------------


def create(spec: CampaignSpec) -> CampaignRecord:
    """A new draft campaign. Raises UnknownTopic or CampaignSpecError (named field)."""
    program = current_program()
    topic = program.topic(spec.topic)
    if topic is None:
        raise UnknownTopic(spec.topic, (known.id for known in program.topics))
    campaign = create_campaign(
        spec,
        topic.message_class,
        clock.now(),
        segment_counter=segment_counter(topic.message_class),
        system=system_values(),
    )
    record = CampaignRecord(campaign=campaign)
    store.create(record)
    logger.info("campaign created", extra={"campaign_id": campaign.campaign_id, "topic": campaign.topic})
    return record


def show(campaign_id: str) -> CampaignRecord:
    return store.load(campaign_id)


def list_campaigns(
    *, status: Status | None = None, limit: int = 50, page_token: str | None = None
) -> tuple[list[CampaignRecord], str | None]:
    return store.list_campaigns(status=status, limit=limit, page_token=page_token)


def view(record: CampaignRecord, *, with_progress: bool = False) -> dict[str, Any]:
    """The campaign as the API shows it: its fields, how it is triggered, and its run (the one
    going on, or the last one), with the run's tallies when `with_progress` (one more read)."""
    shown: dict[str, Any] = record.campaign.model_dump(mode="json")
    shown["paused_from"] = record.paused_from.value if record.paused_from is not None else None
    shown["trigger"] = record.trigger.model_dump(mode="json") if record.trigger is not None else None
    shown["run"] = None
    if record.run is not None:
        run: dict[str, Any] = record.run.model_dump(mode="json")
        if with_progress:
            progress = fanout_store.run_progress(record.campaign.campaign_id, record.run.run_id)
            run["progress"] = progress.model_dump(mode="json", exclude={"run_id"})
        shown["run"] = run
    return shown


# --- changes ---------------------------------------------------------------------------------


def _change(campaign_id: str, step: Callable[[CampaignRecord, datetime], CampaignRecord]) -> CampaignRecord:
    """Run `step` on the current campaign and save its result, again on a fresh read if raced."""
    for _attempt in range(MAX_ATTEMPTS):
        current = store.load(campaign_id)
        updated = step(current, clock.now())
        if updated is current:
            return current  # the step decided nothing changes: no write
        try:
            store.save(updated, expected_version=current.campaign.version)
        except VersionConflict:
            logger.info("campaign write raced, reading again", extra={"campaign_id": campaign_id})
            continue
        return updated
    raise ConcurrentChange(f"campaign {campaign_id} kept changing; try again")


def set_status(campaign_id: str, to: Status) -> CampaignRecord:
    """Move a campaign along the status machine (fan-out: running, completed)."""

    def step(record: CampaignRecord, now: datetime) -> CampaignRecord:
        return record.model_copy(update={"campaign": transition(record.campaign, to, now)})

    return _change(campaign_id, step)


def begin_run(campaign_id: str, run: CampaignRun) -> tuple[StartPlan, CampaignRecord]:
    """The fan-out's start of `run`: scheduled -> running with the run recorded, a repeated start
    of the run going on (no write), or nothing (domain plan_start says why)."""
    plans: list[StartPlan] = []

    def step(record: CampaignRecord, now: datetime) -> CampaignRecord:
        plan = plan_start(record.campaign, record.run, run.run_id)
        plans.append(plan)
        if plan.action != "begin":
            return record
        campaign = record.campaign
        if campaign.status is Status.SCHEDULED:
            moved = transition(campaign, Status.RUNNING, now)
        else:  # a newer firing while the previous run goes on: same status, new run
            moved = campaign.model_copy(update={"updated_at": now, "version": campaign.version + 1})
        return record.model_copy(update={"campaign": moved, "run": run})

    record = _change(campaign_id, step)
    return plans[-1], record


def complete_run(campaign_id: str, run_id: str) -> CampaignRecord | None:
    """Mark the run completed and move the campaign on (completed, or scheduled for its next
    run). Exactly once: the write is guarded by the version read, and a campaign that is not
    running that run (paused, cancelled, superseded, already moved on) is left alone (None)."""
    decisions: list[bool] = []

    def step(record: CampaignRecord, now: datetime) -> CampaignRecord:
        applies = completes_run(record.campaign, record.run, run_id)
        decisions.append(applies)
        if not applies:
            return record
        moved = transition(record.campaign, status_after_run(record.campaign, now), now)
        run = (record.run or CampaignRun(run_id=run_id)).model_copy(update={"completed_at": now})
        return record.model_copy(update={"campaign": moved, "run": run})

    try:
        after = _change(campaign_id, step)
    except CampaignNotFound:
        return None
    if not decisions[-1]:
        return None
    logger.info(
        "campaign run completed",
        extra={"campaign_id": campaign_id, "run_id": run_id, "status": after.campaign.status},
    )
    return after


def _audience_zones(campaign: Campaign, now: datetime) -> set[str]:
    """The time zones of the recipients the audience filter selects (for local-time triggers)."""
    zones: set[str] = set()
    for contact in subscribers.scan_topic_subscribers(campaign.topic):
        if not contact.consent.is_subscribed(campaign.topic):
            continue
        if campaign.audience is not None and not campaign.audience.matches(contact.attributes, now):
            continue
        regions = gate.regions_of(contact)
        if regions is not None:
            zones.update(regions.zones)
    return zones


def _trigger_expression(campaign: Campaign, schedule: Schedule, now: datetime) -> tuple[str, str | None]:
    if schedule.kind == "local_time":
        # One trigger at the first recipient zone's local time; fan-out defers the later zones.
        zones = _audience_zones(campaign, now)
        expression, timezone = scheduler_expression(schedule, sorted(zones) or None)
    else:
        expression, timezone = scheduler_expression(schedule)
    instant = scheduling.expression_instant(expression, timezone)
    if instant is not None and instant < now + scheduling.MIN_LEAD:
        # Some recipient zones already passed the local time: start as soon as Scheduler can.
        expression, timezone = scheduling.at_expression(now + scheduling.MIN_LEAD)
    return expression, timezone


def _put_start(campaign: Campaign, schedule: Schedule, now: datetime) -> Trigger:
    expression, timezone = _trigger_expression(campaign, schedule, now)
    put = scheduling.put_start_schedule(
        campaign.campaign_id,
        expression,
        timezone,
        end_date=campaign.deadline if schedule.kind == "recurring" else None,
    )
    return Trigger(name=put.name, expression=put.expression, timezone=put.timezone)


def schedule(campaign_id: str, new_schedule: Schedule | None = None) -> CampaignRecord:
    """Schedule a draft (or reschedule a scheduled) campaign with `new_schedule` or its own."""
    put_names: list[str] = []

    def step(record: CampaignRecord, now: datetime) -> CampaignRecord:
        campaign = record.campaign
        if campaign.status not in (Status.DRAFT, Status.SCHEDULED):
            reasons = {
                Status.RUNNING: "it has already started",
                Status.PAUSED: "it is paused; resume it, or cancel it and create a new one",
            }
            reason = reasons.get(campaign.status) or f"{campaign.status} is final"
            raise IllegalTransition(campaign.status, Status.SCHEDULED, reason)
        chosen = new_schedule or campaign.schedule
        if chosen is None:
            raise MissingSchedule("the campaign has no schedule; send one in the request body")
        planned = campaign.model_copy(update={"schedule": chosen})
        check_spec(
            planned, now, segment_counter=segment_counter(campaign.message_class), system=system_values()
        )
        if campaign.status is Status.DRAFT:
            moved = transition(planned, Status.SCHEDULED, now)
        else:
            moved = planned.model_copy(update={"updated_at": now, "version": campaign.version + 1})
        trigger = _put_start(moved, chosen, now)
        put_names.append(trigger.name)
        return record.model_copy(update={"campaign": moved, "trigger": trigger, "paused_from": None})

    try:
        return _change(campaign_id, step)
    except IllegalTransition:
        _drop_orphan_schedule(campaign_id, put_names)
        raise


def _drop_orphan_schedule(campaign_id: str, put_names: list[str]) -> None:
    """A schedule put in an attempt that then lost to a cancel must not outlive the campaign."""
    if not put_names:
        return
    current = store.get(campaign_id)
    if current is None or is_terminal(current.campaign.status):
        for name in set(put_names):
            scheduling.delete(name)


def pause(campaign_id: str) -> CampaignRecord:
    """Hold a scheduled or running campaign: its start schedule is disabled, queued chunks park."""

    def step(record: CampaignRecord, now: datetime) -> CampaignRecord:
        paused = transition(record.campaign, Status.PAUSED, now)
        if record.trigger is not None:
            scheduling.set_enabled(record.trigger.name, False, now)
        return record.model_copy(update={"campaign": paused, "paused_from": record.campaign.status})

    return _change(campaign_id, step)


def resume(campaign_id: str) -> CampaignRecord:
    """Back to where it was paused: running (parked chunks released) or scheduled (trigger re-enabled)."""

    def step(record: CampaignRecord, now: datetime) -> CampaignRecord:
        campaign = record.campaign
        if campaign.status is not Status.PAUSED:
            raise IllegalTransition(campaign.status, Status.RUNNING, "only a paused campaign can be resumed")
        # Paused before it started: back to waiting for its trigger; otherwise it sends again.
        target = Status.SCHEDULED if record.paused_from is Status.SCHEDULED else Status.RUNNING
        trigger = record.trigger
        if target is Status.SCHEDULED:
            enabled = scheduling.set_enabled(trigger.name, True, now) if trigger is not None else None
            if enabled is not None:
                trigger = Trigger(name=enabled.name, expression=enabled.expression, timezone=enabled.timezone)
            elif campaign.schedule is not None:
                trigger = _put_start(campaign, campaign.schedule, now)
            else:
                raise MissingSchedule("the campaign has no schedule to resume; schedule it again")
        else:
            if trigger is not None:
                # A recurring trigger was disabled with the pause; one-off ones are gone after firing.
                scheduling.set_enabled(trigger.name, True, now)
            scheduling.put_release_schedule(campaign.campaign_id, now)
        resumed = transition(campaign, target, now)
        return record.model_copy(update={"campaign": resumed, "paused_from": None, "trigger": trigger})

    return _change(campaign_id, step)


def cancel(campaign_id: str) -> CampaignRecord:
    """Stop for good: the start schedule is deleted; chunks still queued send nothing."""

    def step(record: CampaignRecord, now: datetime) -> CampaignRecord:
        cancelled = transition(record.campaign, Status.CANCELLED, now)  # refuses before any side effect
        if record.trigger is not None:
            scheduling.delete(record.trigger.name)
        return record.model_copy(update={"campaign": cancelled, "paused_from": None, "trigger": None})

    return _change(campaign_id, step)


# --- preview ---------------------------------------------------------------------------------


class Sample(BaseModel):
    model_config = ConfigDict(frozen=True)

    to: str  # masked
    text: str
    encoding: str
    segments: int


class _Tally:
    """Running totals of a preview."""

    def __init__(self, prices: dict[str, Decimal]) -> None:
        self.prices = prices
        self.audience = 0
        self.would_send = 0
        self.suppressed: Counter[str] = Counter()
        self.samples: list[Sample] = []
        self.max_segments = 0
        self.encodings: Counter[str] = Counter()
        self.recipients_by_country: Counter[str] = Counter()
        self.segments_by_country: Counter[str] = Counter()

    def price(self, country: str) -> Decimal:
        return self.prices.get(country, self.prices["default"])

    def send(self, phone: str, country: str, text: str, info: SegmentInfo) -> None:
        self.would_send += 1
        self.max_segments = max(self.max_segments, info.segments)
        self.encodings[info.encoding] += 1
        self.recipients_by_country[country] += 1
        self.segments_by_country[country] += info.segments
        if len(self.samples) < SAMPLE_COUNT:
            self.samples.append(
                Sample(to=mask(phone), text=text, encoding=info.encoding, segments=info.segments)
            )

    def cost(self) -> dict[str, Any]:
        by_country: dict[str, Any] = {}
        total = Decimal(0)
        for country in sorted(self.recipients_by_country):
            price = self.price(country)
            cost = price * self.segments_by_country[country]
            total += cost
            by_country[country] = {
                "recipients": self.recipients_by_country[country],
                "segments": self.segments_by_country[country],
                "price_per_segment": float(price),
                "cost": float(cost.quantize(COST_DECIMALS)),
            }
        return {"total": float(total.quantize(COST_DECIMALS)), "by_country": by_country}


class _Evaluator:
    """Decides one recipient of a campaign the way the sender would, without sending."""

    def __init__(self, campaign: Campaign, at: datetime | None, now: datetime) -> None:
        self.campaign = campaign
        self.at = at
        self.now = now
        self.template: MessageTemplate = campaign.message_template()
        self.system = system_values()
        # The sender's view (deployment caps, re-permission age), as if the campaign were sending:
        # a draft's status must not refuse everyone.
        self.context = gate.send_context_for(
            campaign, caps=deployment_caps(), repermission_days=settings().repermission_days
        ).model_copy(update={"campaign_status": None})
        self._local_instants: dict[tuple[str, ...], datetime] = {}

    def timing(self) -> tuple[str, datetime | None]:
        """How recipients are evaluated: ("at" | "scheduled" | "now", instant) or ("local_time", None)."""
        schedule = self.campaign.schedule
        if self.at is not None:
            return "at", self.at
        if schedule is not None and schedule.kind == "local_time":
            return "local_time", None
        if schedule is not None and schedule.kind == "once":
            first = schedule.first_instant()
            if first is not None and first > self.now:
                return "scheduled", first
        return "now", self.now

    def instant_for(self, contact: Contact) -> datetime:
        """When this recipient would be sent to (see `timing`); local-time campaigns: per zone."""
        mode, instant = self.timing()
        if instant is not None:
            return instant
        schedule = self.campaign.schedule
        assert mode == "local_time"
        assert schedule is not None
        assert schedule.local_time is not None
        assert schedule.date is not None
        regions = gate.regions_of(contact)
        zones = regions.zones if regions is not None else ()
        if zones not in self._local_instants:
            # Every zone of the number has reached the local time: the gate wants all of them open.
            instants = local_send_instants(schedule.local_time, schedule.date, zones)
            first = schedule.first_instant()
            self._local_instants[zones] = max(instants.values()) if instants else (first or self.now)
        return max(self._local_instants[zones], self.now)

    def in_audience(self, contact: Contact, at: datetime) -> bool:
        if not contact.consent.is_subscribed(self.campaign.topic):
            return False
        return self.campaign.audience is None or self.campaign.audience.matches(contact.attributes, at)

    def decide(self, contact: Contact, at: datetime) -> "_Outcome":
        decision = gate.evaluate(contact, self.context, at)
        if not decision.allowed:
            return _Outcome(reason=decision.reason or "refused", decision=decision)
        rendered = self.template.render(contact.attributes, self.system)
        if rendered.text is None:
            return _Outcome(reason=f"{MISSING_ATTRIBUTE_PREFIX}{rendered.missing}", decision=decision)
        text = final_text(rendered.text, self.campaign.message_class)
        info = analyze(text)
        if info.segments > self.campaign.max_segments:
            return _Outcome(reason=TOO_MANY_SEGMENTS, decision=decision)
        regions = gate.regions_of(contact)
        return _Outcome(
            text=text, info=info, country=regions.country if regions is not None else "ZZ", decision=decision
        )


@dataclass(frozen=True)
class _Outcome:
    """One recipient's preview: a refusal reason, or the text that would go and where to."""

    decision: gate.GateDecision
    reason: str | None = None
    text: str | None = None
    info: SegmentInfo | None = None
    country: str = "ZZ"


def preview(campaign_id: str, *, at: datetime | None = None, phone: str | None = None) -> dict[str, Any]:
    """Dry run over the topic's subscribers: who would get it, who not and why, and what it costs."""
    campaign = store.load(campaign_id).campaign
    if at is not None and at.tzinfo is None:
        raise ValueError("at needs a UTC offset, e.g. 2026-11-24T10:00:00-05:00")
    evaluator = _Evaluator(campaign, at, clock.now())
    tally = _Tally(settings().price_per_segment)
    for contact in subscribers.scan_topic_subscribers(campaign.topic):
        instant = evaluator.instant_for(contact)
        if not evaluator.in_audience(contact, instant):
            continue
        tally.audience += 1
        outcome = evaluator.decide(contact, instant)
        if outcome.text is None or outcome.info is None:
            tally.suppressed[outcome.reason or "refused"] += 1
            continue
        tally.send(contact.phone, outcome.country, outcome.text, outcome.info)
    timing, evaluated_at = evaluator.timing()
    worst = analyze(final_text(evaluator.template.worst_case_text(evaluator.system), campaign.message_class))
    encoding = "UCS-2" if tally.encodings["UCS-2"] or worst.encoding == "UCS-2" else "GSM-7"
    report: dict[str, Any] = {
        "campaign_id": campaign.campaign_id,
        "topic": campaign.topic,
        "message_class": campaign.message_class,
        "timing": timing,
        "evaluated_at": _iso(evaluated_at),
        "audience": tally.audience,
        "would_send": tally.would_send,
        "suppressed": dict(sorted(tally.suppressed.items())),
        "samples": [sample.model_dump() for sample in tally.samples],
        "encoding": encoding,
        "segments": {
            "max": max(tally.max_segments, worst.segments),
            "max_rendered": tally.max_segments,
            "worst_case": worst.segments,
            "total": sum(tally.segments_by_country.values()),
        },
        "estimated_cost": tally.cost(),
    }
    if phone is not None:
        report["recipient"] = _explain(evaluator, normalize(phone))
    return report


def _explain(evaluator: _Evaluator, phone: str) -> dict[str, Any]:
    """Why one number would or would not get the campaign."""
    contact = contacts.load(phone)
    explained: dict[str, Any] = {"phone": mask(phone)}
    if contact is None:
        return {**explained, "in_audience": False, "would_send": False, "reason": gate.NO_CONSENT}
    at = evaluator.instant_for(contact)
    explained["at"] = at.isoformat()
    campaign = evaluator.campaign
    if not contact.consent.is_subscribed(campaign.topic):
        decision = gate.evaluate(contact, evaluator.context, at)
        return {**explained, "in_audience": False, "would_send": False, "reason": decision.reason}
    if campaign.audience is not None and not campaign.audience.matches(contact.attributes, at):
        return {**explained, "in_audience": False, "would_send": False, "reason": "audience_filter"}
    outcome = evaluator.decide(contact, at)
    if outcome.text is None or outcome.info is None:
        return {
            **explained,
            "in_audience": True,
            "would_send": False,
            "reason": outcome.reason,
            "detail": outcome.decision.detail,
            "next_allowed": _iso(outcome.decision.next_allowed),
        }
    return {
        **explained,
        "in_audience": True,
        "would_send": True,
        "reason": None,
        "text": outcome.text,
        "encoding": outcome.info.encoding,
        "segments": outcome.info.segments,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
