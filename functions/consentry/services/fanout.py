"""Fan-out: a started campaign becomes send chunks on the send queue, bucketed by time zone.

    start    {"action": "start", "campaign_id": id, "scheduled_time"?: ISO}
                                                          (EventBridge Scheduler, the campaign trigger)
      -> the campaign goes running with its run recorded (a recurring campaign's run is named
         after the firing's scheduled time, domain/chunks.py; the others have one run); one
         segment item per parallel Scan segment is written with the run's `as_of` instant, and
         one work item per segment goes to the fan-out queue.
    segment  {"action": "segment", ...}                   (fan-out queue, one per invocation)
      -> page by page: Scan the contacts, keep the topic's subscribers the audience filter
         selects, place each at the instant its send window opens (legal rules, the business
         window, a local-time schedule, the deadline), cut each instant's recipients into
         chunks of 100, enqueue the due ones (SendMessageBatch) and park the later ones with
         ONE release schedule per minute, then checkpoint.
    release  {"action": "release", "campaign_id": id}     (a release schedule, or the resume)
      -> the parked chunks that are due go to the send queue.

Resumable: every page is planned against the run's `as_of`, so a retried page produces the
same chunks with the same ids (`<segment>-<page>-<bucket>-<n>`) and the sender skips a chunk
id it already completed. The checkpoint (LastEvaluatedKey, page, counts) is conditional on the
page number: a page is counted once however often it is processed, and a duplicated work item
stops at its first lost checkpoint. An invocation running out of time hands its segment to a
fresh work item; one that dies is retried from its last checkpoint by SQS.

Nothing polls per recipient: recipients wait either on the send queue or as parked chunks.

Completion: the run item's exactly-once tallies (store/fanout.py RUN#) say when every segment
finished, and every recipient put into a chunk reached a terminal state; with none of the run's
chunks parked, `check_run` moves the campaign on (services/campaigns.complete_run). A chunk
that ends in SendDLQ counts its unfinished recipients as failed.dead_lettered. The check runs
after a segment's last page, after a release, and after each chunk result (the sender handler),
and again when any of those is retried, so a crash between the last write and the check is
picked up by the retry.
"""

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from aws_lambda_powertools import Logger
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from consentry import clock
from consentry.config import settings
from consentry.domain import gate
from consentry.domain.campaign import Campaign, CampaignRun, Status, is_recurring, is_terminal, run_complete
from consentry.domain.chunks import CHUNK_SIZE, SINGLE_RUN, SendChunk, is_run_id, run_chunk_id, run_id_for
from consentry.domain.contact import Contact
from consentry.domain.schedule import local_send_instants
from consentry.domain.window import DEFAULT_HORIZON, DEFAULT_POLICIES, WindowPolicy, schedule_for
from consentry.services import campaigns as campaign_service
from consentry.services import scheduling
from consentry.store import campaigns as campaign_store
from consentry.store import fanout as store
from consentry.store import sends
from consentry.store.fanout import FanoutProgress, PageDeltas

logger = Logger(child=True)

#: Contacts read per Scan request (DynamoDB also stops a page at 1 MB).
PAGE_SIZE = 1000
#: With less time than this left, an invocation hands its segment to a new work item.
HANDOVER_MARGIN_SECONDS = 60.0
#: The chunk-id bucket of recipients whose window is open when the run starts.
NOW_BUCKET = "now"

NO_WINDOW_BEFORE_DEADLINE = "no_window_before_deadline"
UNKNOWN_TIME_ZONE = "unknown_time_zone"
INVALID_NUMBER = gate.INVALID_NUMBER

#: SendQueue's RedrivePolicy maxReceiveCount (template.yaml; a test keeps the two equal): a chunk
#: that fails on this delivery goes to SendDLQ, and its unfinished recipients count as
#: DEAD_LETTERED (`chunk_dead_lettered`).
SEND_QUEUE_MAX_RECEIVES = 5
DEAD_LETTERED = "failed.dead_lettered"
SEGMENTS = "segments"

#: Statuses in which a run keeps going (a paused run parks what it would have enqueued).
ACTIVE_STATUSES = frozenset({Status.RUNNING, Status.PAUSED})

park = store.park  # the sender parks the chunks of a paused campaign with this


# --- events ----------------------------------------------------------------------------------


class StartEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    action: Literal["start"]
    campaign_id: str = Field(min_length=1)
    scheduled_time: AwareDatetime | None = None  # Scheduler's <aws.scheduler.scheduled-time>


class ReleaseEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    action: Literal["release"]
    campaign_id: str = Field(min_length=1)


class SegmentWork(BaseModel):
    """One segment of a run, as a fan-out queue message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["segment"] = "segment"
    campaign_id: str = Field(min_length=1)
    segment: int = Field(ge=0)
    total_segments: int = Field(ge=1, le=100)
    run_id: str = SINGLE_RUN

    @field_validator("run_id")
    @classmethod
    def _known_run(cls, value: str) -> str:
        if not is_run_id(value):
            raise ValueError(f"{value!r} is not a run id")
        return value


FanoutEvent = Annotated[StartEvent | ReleaseEvent | SegmentWork, Field(discriminator="action")]
EVENT_ADAPTER: TypeAdapter[StartEvent | ReleaseEvent | SegmentWork] = TypeAdapter(FanoutEvent)


class UnknownRun(LookupError):
    """A segment work item for a run that was never started: kept in the DLQ for an operator."""


# --- placing recipients (pure) ---------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where one recipient goes: released at `release_at` (None: now), or suppressed with a reason."""

    release_at: datetime | None = None
    suppressed: str | None = None


def _ceil_minute(instant: datetime) -> datetime:
    floored = instant.replace(second=0, microsecond=0)
    return floored if floored == instant else floored + timedelta(minutes=1)


class Targeting:
    """Places the recipients of one campaign run; recipients sharing regions share the answer."""

    def __init__(self, campaign: Campaign, as_of: datetime) -> None:
        if as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        self.campaign = campaign
        self.as_of = as_of.astimezone(UTC)
        self.policy: WindowPolicy = (
            campaign.window.policy()
            if campaign.window is not None
            else DEFAULT_POLICIES[campaign.message_class]
        )
        # Without a deadline the window search stops at the window module's horizon.
        self.deadline = campaign.deadline if campaign.deadline is not None else self.as_of + DEFAULT_HORIZON
        self._placements: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Placement] = {}

    def in_audience(self, contact: Contact) -> bool:
        if not contact.consent.is_subscribed(self.campaign.topic):
            return False
        audience = self.campaign.audience
        return audience is None or audience.matches(contact.attributes, self.as_of)

    def place(self, contact: Contact) -> Placement:
        regions = gate.regions_of(contact)
        if regions is None:
            return Placement(suppressed=INVALID_NUMBER)
        key = (regions.country, regions.states, regions.zones)
        placement = self._placements.get(key)
        if placement is None:
            placement = self._place(*key)
            self._placements[key] = placement
        return placement

    def _earliest(self, zones: tuple[str, ...]) -> datetime:
        """The first instant the schedule wants this recipient: the run start, or its local time."""
        schedule = self.campaign.schedule
        if schedule is None or schedule.kind != "local_time":
            return self.as_of
        assert schedule.local_time is not None
        assert schedule.date is not None
        # A number that may be in several zones gets it once every zone has reached the local time.
        local = max(local_send_instants(schedule.local_time, schedule.date, zones).values())
        return max(local, self.as_of)

    def _place(self, country: str, states: tuple[str, ...], zones: tuple[str, ...]) -> Placement:
        if not zones:
            return Placement(suppressed=UNKNOWN_TIME_ZONE)
        earliest = self._earliest(zones)
        if earliest >= self.deadline:
            return Placement(suppressed=NO_WINDOW_BEFORE_DEADLINE)
        window = schedule_for(country, states, zones, self.campaign.message_class, self.policy)
        opens = window.next_allowed(earliest, horizon=self.deadline - earliest)
        if opens is None:
            return Placement(suppressed=NO_WINDOW_BEFORE_DEADLINE)
        if opens <= self.as_of:
            return Placement()
        return Placement(release_at=_ceil_minute(opens))


def bucket_label(release_at: datetime | None) -> str:
    return NOW_BUCKET if release_at is None else str(int(release_at.timestamp()))


def chunk_id(segment: int, page: int, bucket: str, index: int) -> str:
    return f"{segment}-{page}-{bucket}-{index}"


@dataclass
class PagePlan:
    """One page's recipients by release instant (None = now), and what was dropped and why."""

    buckets: dict[datetime | None, list[str]] = field(default_factory=dict)
    audience: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)


def plan_page(contacts: Iterable[Contact], targeting: Targeting) -> PagePlan:
    plan = PagePlan()
    for contact in contacts:
        if not targeting.in_audience(contact):
            continue
        plan.audience += 1
        placement = targeting.place(contact)
        if placement.suppressed is not None:
            plan.suppressed[placement.suppressed] += 1
            continue
        plan.buckets.setdefault(placement.release_at, []).append(contact.phone)
    return plan


def _bucket_order(bucket: tuple[datetime | None, list[str]]) -> float:
    return bucket[0].timestamp() if bucket[0] is not None else -math.inf


def chunk_plan(
    campaign_id: str, segment: int, page: int, plan: PagePlan, run_id: str = SINGLE_RUN
) -> list[tuple[SendChunk, datetime | None]]:
    """The page's chunks with their release instants; ids depend only on (run, segment, page, bucket, n)."""
    chunks: list[tuple[SendChunk, datetime | None]] = []
    for release_at, phones in sorted(plan.buckets.items(), key=_bucket_order):
        ordered = sorted(phones)
        label = bucket_label(release_at)
        for index, start in enumerate(range(0, len(ordered), CHUNK_SIZE)):
            chunk = SendChunk(
                campaign_id=campaign_id,
                chunk_id=run_chunk_id(run_id, chunk_id(segment, page, label, index)),
                recipients=tuple(ordered[start : start + CHUNK_SIZE]),
            )
            chunks.append((chunk, release_at))
    return chunks


# --- start -----------------------------------------------------------------------------------


class StartResult(BaseModel):
    campaign_id: str
    status: Status | None
    run_id: str = SINGLE_RUN
    segments_queued: int = 0
    new_run: bool = False
    skipped: str | None = None  # why nothing was started


def _work_bodies(progress: Sequence[FanoutProgress]) -> list[str]:
    return [
        SegmentWork(
            campaign_id=item.campaign_id,
            segment=item.segment,
            total_segments=item.total_segments,
            run_id=item.run_id,
        ).model_dump_json()
        for item in progress
        if not item.done
    ]


def run_for(campaign: Campaign, scheduled_time: datetime | None, now: datetime) -> CampaignRun:
    """The run a start event means: one per firing for a recurring campaign, else the single run."""
    if not is_recurring(campaign):
        return CampaignRun(run_id=SINGLE_RUN, started_at=now)
    if scheduled_time is None:
        # A trigger put before runs were named: the minute it fired (Scheduler fires cron on it).
        logger.warning("recurring start without scheduled_time", extra={"campaign_id": campaign.campaign_id})
        scheduled_time = now.replace(second=0, microsecond=0)
    return CampaignRun(run_id=run_id_for(scheduled_time), scheduled_at=scheduled_time, started_at=now)


def start(campaign_id: str, scheduled_time: datetime | None = None) -> StartResult:
    """Begin (or, for a repeated start, continue) the campaign's fan-out run."""
    record = campaign_store.get(campaign_id)
    if record is None:
        logger.warning("start for an unknown campaign", extra={"campaign_id": campaign_id})
        return StartResult(campaign_id=campaign_id, status=None, skipped="unknown campaign")
    now = clock.now()
    run = run_for(record.campaign, scheduled_time, now)
    try:
        plan, record = campaign_service.begin_run(campaign_id, run)
    except campaign_service.CampaignNotFound:
        return StartResult(campaign_id=campaign_id, status=None, skipped="unknown campaign")
    status = record.campaign.status
    if plan.action == "skip":
        logger.warning(
            "start ignored", extra={"campaign_id": campaign_id, "run_id": run.run_id, "why": plan.reason}
        )
        return StartResult(campaign_id=campaign_id, status=status, run_id=run.run_id, skipped=plan.reason)
    if plan.reason:
        logger.warning(
            "run begins over an unfinished one", extra={"campaign_id": campaign_id, "why": plan.reason}
        )
    progress, created = store.begin(campaign_id, settings().fanout_segments, now, run.run_id)
    bodies = _work_bodies(progress)
    store.send_bodies(settings().fanout_queue_url, bodies)
    logger.info(
        "fan-out started" if created else "fan-out start repeated",
        extra={
            "campaign_id": campaign_id,
            "run_id": run.run_id,
            "segments": len(progress),
            "queued": len(bodies),
        },
    )
    return StartResult(
        campaign_id=campaign_id,
        status=status,
        run_id=run.run_id,
        segments_queued=len(bodies),
        new_run=created,
    )


# --- one segment -----------------------------------------------------------------------------


class SegmentResult(BaseModel):
    campaign_id: str
    segment: int
    pages: int = 0  # pages this invocation completed
    done: bool = False
    handed_over: bool = False  # ran low on time and queued a continuation
    lost_race: bool = False  # another invocation checkpointed the same page first
    stopped: str | None = None


PageHook = Callable[[int], None]


def _unbounded_time() -> float:
    return math.inf


def run_segment(
    work: SegmentWork,
    *,
    time_left: Callable[[], float] = _unbounded_time,
    page_size: int = PAGE_SIZE,
    after_dispatch: PageHook | None = None,
) -> SegmentResult:
    """Scan one segment from its checkpoint to its end (or until time runs low).

    `time_left` gives the seconds the invocation has left; `after_dispatch(page)` runs after a
    page's chunks are out and before its checkpoint (tests inject faults there).
    """
    progress, record = store.load_with_campaign(work.campaign_id, work.segment, work.run_id)
    if progress is None:
        raise UnknownRun(
            f"campaign {work.campaign_id} has no fan-out run {work.run_id!r} with segment {work.segment}"
        )
    result = SegmentResult(campaign_id=work.campaign_id, segment=work.segment)
    if progress.done:
        # A repeated work item: the first may have died between its last checkpoint and the check.
        check_run(work.campaign_id, work.run_id)
        return result.model_copy(update={"done": True, "stopped": progress.stopped})
    targeting: Targeting | None = None
    ensured: set[str] = set()
    while True:
        if result.pages:
            # A pause or cancel takes effect from the next page on.
            record = campaign_store.get(work.campaign_id)
        status = record.campaign.status if record is not None else None
        if record is None or status not in ACTIVE_STATUSES:
            reason = str(status) if status is not None else "deleted"
            store.checkpoint(progress, next_key=None, deltas=PageDeltas(), done=True, stopped=reason)
            logger.info(
                "segment stopped",
                extra={"campaign_id": work.campaign_id, "segment": work.segment, "status": reason},
            )
            return result.model_copy(update={"done": True, "stopped": reason})
        if targeting is None:
            targeting = Targeting(record.campaign, progress.as_of)
        audience = record.campaign.audience
        page = store.scan_contacts(
            topic=record.campaign.topic,
            attributes=audience.referenced_attributes() if audience is not None else (),
            segment=progress.segment,
            total_segments=progress.total_segments,
            start_key=progress.last_key,
            limit=page_size,
        )
        plan = plan_page(page.contacts, targeting)
        chunks = chunk_plan(work.campaign_id, progress.segment, progress.page, plan, progress.run_id)
        enqueued, parked = _dispatch(
            work.campaign_id, chunks, progress.as_of, status is Status.PAUSED, ensured
        )
        if after_dispatch is not None:
            after_dispatch(progress.page)
        last_page = page.last_key is None
        deltas = PageDeltas(
            scanned=page.scanned,
            audience=plan.audience,
            enqueued=enqueued,
            parked=parked,
            chunks=len(chunks),
            suppressed=dict(plan.suppressed),
        )
        if not store.checkpoint(progress, next_key=page.last_key, deltas=deltas, done=last_page):
            logger.info(
                "segment page already checkpointed elsewhere; stopping",
                extra={"campaign_id": work.campaign_id, "segment": work.segment, "page": progress.page},
            )
            return result.model_copy(update={"lost_race": True})
        progress = progress.model_copy(
            update={"page": progress.page + 1, "last_key": page.last_key, "done": last_page}
        )
        result = result.model_copy(update={"pages": result.pages + 1, "done": last_page})
        if last_page:
            check_run(work.campaign_id, work.run_id)  # an empty run completes here
            return result
        if time_left() < HANDOVER_MARGIN_SECONDS:
            store.send_bodies(settings().fanout_queue_url, [work.model_dump_json()])
            logger.info(
                "segment handed over", extra={"campaign_id": work.campaign_id, "segment": work.segment}
            )
            return result.model_copy(update={"handed_over": True})


def _dispatch(
    campaign_id: str,
    chunks: Sequence[tuple[SendChunk, datetime | None]],
    as_of: datetime,
    paused: bool,
    ensured: set[str],
) -> tuple[int, int]:
    """Enqueue the due chunks, park the others (and schedule their release); recipients (enqueued, parked)."""
    now = clock.now()
    due: list[SendChunk] = []
    later: list[tuple[SendChunk, datetime]] = []
    for chunk, release_at in chunks:
        if paused:
            # The resume releases everything due; the later buckets keep their own schedules.
            later.append((chunk, release_at or as_of))
        elif release_at is None or release_at <= now:
            due.append(chunk)
        else:
            later.append((chunk, release_at))
    store.send_chunks(due)
    store.park_all(campaign_id, later)
    for release_at in sorted({at for _chunk, at in later if at > now}):
        _ensure_release_schedule(campaign_id, release_at, now, ensured)
    return sum(len(chunk.recipients) for chunk in due), sum(len(chunk.recipients) for chunk, _ in later)


def _ensure_release_schedule(
    campaign_id: str, release_at: datetime, now: datetime, ensured: set[str]
) -> None:
    name = scheduling.release_schedule_name(campaign_id, release_at)
    if name in ensured:
        return
    # Scheduler refuses a one-off instant in the past: one that close fires a little late.
    fire_at = max(release_at, now + scheduling.MIN_LEAD)
    expression, timezone = scheduling.at_expression(fire_at)
    created = store.create_release_schedule(campaign_id, name, expression, timezone)
    ensured.add(name)
    if created:
        logger.info("release schedule created", extra={"campaign_id": campaign_id, "schedule": name})


# --- release ---------------------------------------------------------------------------------


def release_due(campaign_id: str, now: datetime) -> int:
    """Put the campaign's parked chunks due at `now` on the send queue; returns how many.

    A paused campaign keeps its chunks parked (its resume releases them); a cancelled or
    completed one has its parked chunks dropped. Sent chunks are deleted after they are on the
    queue, so a failure in between re-sends them later, which the sender recognises by chunk id.
    """
    record = campaign_store.get(campaign_id)
    if record is None or is_terminal(record.campaign.status):
        dropped = store.all_parked(campaign_id)
        store.delete_parked([parked.key for parked in dropped])
        if dropped:
            logger.info("parked chunks dropped", extra={"campaign_id": campaign_id, "chunks": len(dropped)})
        return 0
    if record.campaign.status is Status.PAUSED:
        logger.info("release while paused: chunks stay parked", extra={"campaign_id": campaign_id})
        return 0
    released = 0
    run_id = record.run.run_id if record.run is not None else SINGLE_RUN
    while True:
        due = store.due_parked(campaign_id, now)
        if not due:
            break
        store.send_chunks([parked.chunk for parked in due])
        store.delete_parked([parked.key for parked in due])
        released += len(due)
        if len(due) < store.RELEASE_PAGE:
            break
        # More to go: a pause or cancel meanwhile stops the release.
        current = campaign_store.get(campaign_id)
        if (
            current is None
            or current.campaign.status is Status.PAUSED
            or is_terminal(current.campaign.status)
        ):
            break
    logger.info("parked chunks released", extra={"campaign_id": campaign_id, "chunks": released})
    # The sender may have finished the released chunks before they were deleted here.
    check_run(campaign_id, run_id)
    return released


def release(campaign_id: str) -> int:
    return release_due(campaign_id, clock.now())


# --- reporting -------------------------------------------------------------------------------


def audience_total(campaign_id: str) -> int:
    """The campaign's audience as counted by its fan-out (exact under retries)."""
    return store.audience_total(campaign_id)


def finished(campaign_id: str, run_id: str = SINGLE_RUN) -> bool:
    """Every segment of the run has scanned its last page."""
    progress = store.segments(campaign_id, run_id)
    return bool(progress) and all(item.done for item in progress)


# --- completion ------------------------------------------------------------------------------


def check_run(campaign_id: str, run_id: str) -> bool:
    """Move the campaign on if run `run_id` is complete; True when this call did it.

    Normally one read (the run's tallies); the parked chunks are looked at only once the tallies
    are complete, and the campaign is written only if it is still running that run.
    """
    progress = store.run_progress(campaign_id, run_id)
    if not run_complete(progress, parked_chunks=0):
        return False
    parked = store.parked_in_run(campaign_id, run_id)
    if not run_complete(progress, parked_chunks=parked):
        return False
    completed = campaign_service.complete_run(campaign_id, run_id)
    return completed is not None


def chunk_finished(chunk: SendChunk) -> bool:
    """After the sender recorded a chunk's result (or found it recorded): is the run complete?"""
    return check_run(chunk.campaign_id, chunk.run_id)


def chunk_dead_lettered(chunk: SendChunk, counted: Mapping[str, int] | None, why: str) -> bool:
    """The chunk's last allowed delivery failed, so SQS moves it to SendDLQ: record its result.

    `counted` is what that last attempt accounted for (the sender recounts earlier attempts'
    recipients from their reservations and records); None when the attempt died without a count:
    then the message records of the chunk's recipients say what went out. Every other recipient
    is terminal as `failed.dead_lettered`. The result is the chunk's one result (store/sends.py),
    so the run can complete, and a copy redriven from the DLQ later is skipped like any completed
    chunk: it sends nothing. True when this call recorded it.
    """
    if counted is None:
        counted = _recorded_outcomes(chunk)
    counts: Counter[str] = Counter(
        {name: number for name, number in counted.items() if _is_terminal(name) or name == SEGMENTS}
    )
    accounted = sum(number for name, number in counts.items() if _is_terminal(name))
    unfinished = max(0, len(chunk.recipients) - accounted)
    if unfinished:
        counts[DEAD_LETTERED] += unfinished
    first = sends.complete_chunk(
        chunk.campaign_id, chunk.chunk_id, counts, recipients=accounted + unfinished, now=clock.now()
    )
    if first:
        logger.error(
            "chunk dead-lettered",
            extra={
                "campaign_id": chunk.campaign_id,
                "chunk_id": chunk.chunk_id,
                "unfinished": unfinished,
                "why": why,
            },
        )
    check_run(chunk.campaign_id, chunk.run_id)
    return first


def _recorded_outcomes(chunk: SendChunk) -> Counter[str]:
    """What the chunk's message records say went out (counted as services/sender.py counts them)."""
    message_ids = [sends.campaign_message_id(chunk.send_key, phone) for phone in chunk.recipients]
    counts: Counter[str] = Counter()
    for record in sends.message_records(message_ids).values():
        if record.state == "failed":
            counts["failed." + (record.reason or "unknown")] += 1
            continue
        counts["sent" if record.state == "sent" else "unknown"] += 1
        counts[SEGMENTS] += record.segments
    return counts


def _is_terminal(count_name: str) -> bool:
    """The chunk-result counts that are recipients in a terminal state (services/sender.py)."""
    return count_name in ("sent", "unknown") or count_name.startswith(("suppressed.", "failed."))
