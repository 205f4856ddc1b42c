"""The sender: one chunk of a campaign's recipients, from the gate to the provider, exactly once.

Per chunk: the campaign (paused: park the chunk until the resume; cancelled: suppress), a
chunk already completed is skipped; one strongly consistent BatchGetItem for its contacts.
Per recipient, in order:

  gate (domain/gate.py) -> render -> opt-out footer (promotional) -> smart encoding -> segments
  -> a token of the rate budget (services/rate.py) -> the reservation (store/sends.py: one
  conditional write re-checking consent, caps and the send key) -> the provider -> the record.

A reservation refused because the contact changed since the read re-runs the gate on the
contact as it is now (a STOP that committed before the reservation always wins). Every
recipient ends in exactly one terminal state, counted in the chunk result that is written once:
sent, suppressed.<reason>, failed.<reason> or unknown (the provider may have taken it: never
resent for promotional messages). A recipient outside its window whose window opens before the
deadline is not suppressed: it is parked in a new chunk released when the window opens.

Retries: a provider that keeps throttling, a crash or the end of the invocation's time leaves
the chunk for SQS to deliver again. The retry recognises its own earlier work by the entry the
reservation left on the contact (same send key, same chunk id) and the message record of the
deterministic message id: recorded ones are counted as recorded, never sent again; a reservation
without a record whose lease has expired is ambiguous (promotional: unknown; transactional: sent
again); one within the lease belongs to an attempt still running, so the chunk waits.
"""

import importlib
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from consentry import clock
from consentry.config import settings
from consentry.domain import gate
from consentry.domain.campaign import Campaign, Status
from consentry.domain.caps import CapRule, Caps
from consentry.domain.chunks import SendChunk
from consentry.domain.contact import Contact
from consentry.domain.encoding import SegmentInfo, analyze, ensure_opt_out_instructions, smart_encode
from consentry.domain.messages import MessageClass
from consentry.domain.phone import mask
from consentry.domain.templates import MessageTemplate
from consentry.providers.backoff import backoff_delay
from consentry.providers.base import ErrorKind, OutboundSms, ProviderError, SmsProvider
from consentry.providers.errors import NUMBER_DEAD_REASONS, FailureReason
from consentry.providers.registry import provider_from_environment
from consentry.services.rate import RateLimiter, budgets
from consentry.services.reports import emit_chunk_metrics
from consentry.store import campaigns as campaign_store
from consentry.store import sends
from consentry.store.sends import MessageRecord

logger = Logger(child=True)

#: A reservation without a message record younger than this may belong to a sender still
#: running (SenderFunction's Timeout is 120 s): the chunk waits instead of judging it.
IN_FLIGHT_SECONDS = 150
#: Stop taking new recipients with less invocation time than this left; SQS delivers the rest.
TIME_MARGIN_SECONDS = 15.0
#: When the chunk comes back after the provider kept throttling, or after a lease, in seconds.
THROTTLED_RETRY_SECONDS = 20
#: Provider attempts per message while it throttles (each waits a backoff and takes a new token).
SEND_ATTEMPTS = 6
#: Re-reads of one contact whose reservation keeps losing to concurrent writers.
RESERVE_ATTEMPTS = 5

MISSING_ATTRIBUTE = "missing_attribute"
TOO_MANY_SEGMENTS = "too_many_segments"
CAMPAIGN_NOT_FOUND = "campaign_not_found"
CAMPAIGN_CANCELLED = "campaign_cancelled"
CONTENTION = "contention"
_CANCELLED = gate.GateDecision(allowed=False, reason=CAMPAIGN_CANCELLED)

SUPPRESSED = "suppressed."
FAILED = "failed."
DEFERRED = "deferred"


def deployment_caps() -> Caps:
    """The caps configured for the deployment (template parameters PromotionalCap*)."""
    config = settings()
    promotional = (
        CapRule.per_days(config.promotional_cap_count, config.promotional_cap_days)
        if config.promotional_cap_count
        else None
    )
    return Caps(promotional=promotional)


def retention_for(send: gate.SendContext, contact: Contact) -> timedelta:
    """How long the contact's `sends` entries are needed: for every cap window (and a day at least)."""
    keep = max(send.caps.longest_window(), timedelta(days=1))
    own = contact.frequency_cap or {}
    days = own.get("days")
    if isinstance(days, int) and days > 0:
        keep = max(keep, timedelta(days=days))
    return keep


# --- composing the text --------------------------------------------------------------------


@dataclass(frozen=True)
class Composed:
    text: str
    info: SegmentInfo


@dataclass(frozen=True)
class Refusal:
    reason: str
    detail: str | None = None


def _preference_url(phone: str) -> str | None:
    """The preference-center link for {preferences_url}, when the deployment serves one."""
    try:
        module = importlib.import_module("consentry.services.preferences")
    except ImportError:
        return None
    builder: Callable[[str], str | None] | None = getattr(module, "preference_url_for", None)
    if builder is None:
        return None
    try:
        return builder(phone)
    except Exception as exc:  # an unsignable link: the recipient is suppressed with a reason
        logger.warning("preference link unavailable", extra={"error": type(exc).__name__})
        return None


def compose(
    template: MessageTemplate,
    contact: Contact,
    *,
    message_class: MessageClass,
    max_segments: int,
    extra_attributes: Mapping[str, object] | None = None,
) -> Composed | Refusal:
    """Render for the contact, add the opt-out footer to promotional texts, encode, count segments."""
    system = {"brand": settings().brand_name}
    if "preferences_url" in template.placeholders():
        url = _preference_url(contact.phone)
        if url:
            system["preferences_url"] = url
    attributes: Mapping[str, object] = (
        {**contact.attributes, **extra_attributes} if extra_attributes else contact.attributes
    )
    rendered = template.render(attributes, system=system)
    if rendered.text is None:
        return Refusal(MISSING_ATTRIBUTE, f"placeholder {{{rendered.missing}}}")
    text = rendered.text
    if message_class == "promotional":
        text = ensure_opt_out_instructions(text)
    if settings().smart_encoding:
        text = smart_encode(text)
    info = analyze(text)
    if info.segments > max_segments:
        return Refusal(TOO_MANY_SEGMENTS, f"{info.segments} segments, limit {max_segments}")
    return Composed(text=text, info=info)


# --- the provider call ---------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    outcome: Literal["sent", "throttled", "failed", "unknown", "refused"]
    provider_message_id: str | None = None
    error: ProviderError | None = None
    refusal: gate.GateDecision | None = None  # "refused": the gate said no before a retry
    interrupted: Exception | None = None  # "throttled": the rate or the gate failed before a retry

    @property
    def reason(self) -> str:
        return self.error.reason if self.error is not None else ""


def deliver(
    provider: SmsProvider,
    limiter: RateLimiter,
    sms: OutboundSms,
    recheck: Callable[[], gate.GateDecision] | None = None,
) -> Delivery:
    """Send within the rate; while the provider throttles, back off and take a fresh token each try.

    The caller took the first token. A token is only good for its own second, so a retry after a
    backoff sleep takes a new one: throttling slows the sender down and never exceeds the budget.
    Time passes while backing off, so `recheck` (the gate at the new time) runs before each retry:
    a window that closed meanwhile stops the message. If taking the token or the recheck fails
    (an AWS error), the message has not gone out: it comes back as "throttled" with the error.
    """
    for attempt in range(SEND_ATTEMPTS):
        if attempt:
            clock.sleep(backoff_delay(attempt - 1))
            try:
                limiter.acquire()
                decision = recheck() if recheck is not None else None
            except Exception as exc:
                return Delivery("throttled", interrupted=exc)
            if decision is not None and not decision.allowed:
                limiter.refund()
                return Delivery("refused", refusal=decision)
        started = clock.now()
        try:
            result = provider.send(sms)
        except ProviderError as exc:
            limiter.observe((clock.now() - started).total_seconds())
            if exc.kind is ErrorKind.THROTTLED:
                limiter.throttled()
                continue
            return Delivery("failed" if exc.kind is ErrorKind.PERMANENT else "unknown", error=exc)
        limiter.observe((clock.now() - started).total_seconds())
        return Delivery("sent", provider_message_id=result.provider_message_id)
    return Delivery("throttled")


def undeliverable_mark(error: ProviderError | None, now: datetime) -> dict[str, Any] | None:
    """The contact's `undeliverable` attribute when a send error says the number is dead."""
    if error is None or error.reason not in {reason.value for reason in NUMBER_DEAD_REASONS}:
        return None
    return {"reason": error.reason, "at": now.isoformat(), "source": "send", "code": error.code}


# --- one chunk -----------------------------------------------------------------------------


@dataclass
class ChunkResult:
    outcome: Literal["completed", "already_completed", "parked", "retry"]
    counts: Counter[str] = field(default_factory=Counter)
    retry_after_seconds: int | None = None
    detail: str | None = None

    @property
    def terminal(self) -> int:
        return sum(
            count
            for name, count in self.counts.items()
            if name in ("sent", "unknown") or name.startswith((SUPPRESSED, FAILED))
        )


class _StopChunk(Exception):
    """Leave the rest of the chunk for SQS to deliver again after `delay` seconds."""

    def __init__(self, delay: int, why: str) -> None:
        super().__init__(why)
        self.delay = delay
        self.why = why


def _never_late() -> float:
    return math.inf


@cache
def _parsed_template(source: str) -> MessageTemplate:
    return MessageTemplate.parse(source)


def process_chunk(chunk: SendChunk, *, time_left: Callable[[], float] = _never_late) -> ChunkResult:
    """Send one chunk (module docstring). `time_left`: seconds the invocation still has."""
    if sends.chunk_completed(chunk.campaign_id, chunk.chunk_id):
        return ChunkResult("already_completed")
    record = campaign_store.get(chunk.campaign_id)
    if record is None:
        counts = Counter({SUPPRESSED + CAMPAIGN_NOT_FOUND: len(chunk.recipients)})
        return _complete(chunk, counts)
    campaign = record.campaign
    if campaign.status is Status.PAUSED:
        # The resume releases every parked chunk that is due (store/fanout.py).
        park(campaign.campaign_id, chunk, clock.now())
        logger.info("campaign paused: chunk parked", extra=_chunk_log(chunk))
        return ChunkResult("parked")
    return _ChunkRun(chunk, campaign, time_left).run()


def _complete(chunk: SendChunk, counts: Counter[str]) -> ChunkResult:
    result = ChunkResult("completed", counts)
    first = sends.complete_chunk(
        chunk.campaign_id, chunk.chunk_id, counts, recipients=result.terminal, now=clock.now()
    )
    if not first:
        # Another attempt at this chunk recorded its result first; only that one counts.
        return ChunkResult("already_completed", counts)
    emit_chunk_metrics(counts)  # once per chunk, with the result that counts
    logger.info("chunk completed", extra={**_chunk_log(chunk), "counts": dict(counts)})
    return result


def _chunk_log(chunk: SendChunk) -> dict[str, Any]:
    return {"campaign_id": chunk.campaign_id, "chunk_id": chunk.chunk_id, "recipients": len(chunk.recipients)}


class _ChunkRun:
    def __init__(self, chunk: SendChunk, campaign: Campaign, time_left: Callable[[], float]) -> None:
        self.chunk = chunk
        self.campaign = campaign
        self.time_left = time_left
        self.send = gate.send_context_for(
            campaign, caps=deployment_caps(), repermission_days=settings().repermission_days
        ).model_copy(update={"send_key": chunk.send_key})  # one send per recipient per run (chunks.py)
        self.template = _parsed_template(campaign.template)
        self.provider = provider_from_environment()
        self.limiter = RateLimiter(budgets(campaign.campaign_id, campaign.messages_per_second))
        self.counts: Counter[str] = Counter()
        self.records: list[MessageRecord] = []
        self.deferred: dict[datetime, list[str]] = {}
        self.remaining = len(chunk.recipients)

    # -- the chunk ------------------------------------------------------------------------
    def run(self) -> ChunkResult:
        try:
            self._run_recipients()
        except _StopChunk as stop:
            self._flush()
            logger.info(
                "chunk left for a retry",
                extra={**_chunk_log(self.chunk), "why": stop.why, "retry_after": stop.delay},
            )
            return ChunkResult("retry", self.counts, retry_after_seconds=stop.delay, detail=stop.why)
        except Exception:
            # What went out is recorded before the error reaches SQS, so the retry counts it.
            self._flush()
            raise
        finally:
            self._close_limiter()
        self._flush()
        self._park_deferred()
        return _complete(self.chunk, self.counts)

    def _close_limiter(self) -> None:
        try:
            self.limiter.close()
        except ClientError as exc:
            # Giving unused tokens back only lets other senders use the rest of this second; the
            # chunk's records and result matter more than that, so this never stops them.
            logger.warning(
                "unused rate tokens not given back",
                extra={**_chunk_log(self.chunk), "error": exc.response["Error"]["Code"]},
            )

    def _run_recipients(self) -> None:
        contacts = sends.read_contacts(self.chunk.recipients)
        key = self.send.send_key
        ours = {
            phone: entry
            for phone, contact in contacts.items()
            if (entry := contact.sends.get(key)) is not None and entry.get("chunk_id") == self.chunk.chunk_id
        }
        records = (
            sends.message_records(str(entry.get("message_id")) for entry in ours.values()) if ours else {}
        )
        now = clock.now().timestamp()
        for entry in ours.values():
            unrecorded = str(entry.get("message_id")) not in records and entry.get("state") != sends.FAILED
            if unrecorded and now - float(entry.get("at", 0)) < IN_FLIGHT_SECONDS:
                # Reserved moments ago and not recorded: another attempt may be sending right now.
                raise _StopChunk(IN_FLIGHT_SECONDS, "another attempt may still be sending this chunk")
        for phone in self.chunk.recipients:
            if self.time_left() < TIME_MARGIN_SECONDS:
                raise _StopChunk(0, "out of time")
            contact = contacts.get(phone)
            entry = ours.get(phone)
            renew = False
            if entry is not None and contact is not None:
                renew = self._recover(contact, entry, records.get(str(entry.get("message_id"))))
            if entry is None or renew:
                if self.campaign.status is Status.CANCELLED:
                    self._refused(phone, _CANCELLED, clock.now(), renew=renew)
                else:
                    self._send_to(phone, contact, renew=renew)
            self.remaining -= 1

    # -- an earlier attempt's recipients ----------------------------------------------------
    def _recover(self, contact: Contact, entry: Mapping[str, Any], record: MessageRecord | None) -> bool:
        """Count what an earlier attempt did for this recipient; True when it must be sent again."""
        if record is not None:
            self._count_record(record)
            return False
        if entry.get("state") == sends.FAILED:
            self.counts[FAILED + FailureReason.UNKNOWN.value] += 1
            return False
        if self.send.message_class == "transactional":
            return True
        # Reserved, no record, the lease is over: the sender died around the provider call.
        self._record_unknown(contact, entry)
        return False

    def _count_record(self, record: MessageRecord) -> None:
        if record.state == "sent":
            self.counts["sent"] += 1
            self.counts["segments"] += record.segments
        elif record.state == "failed":
            self.counts[FAILED + (record.reason or FailureReason.UNKNOWN.value)] += 1
        else:
            self.counts["unknown"] += 1
            self.counts["segments"] += record.segments

    def _record_unknown(self, contact: Contact, entry: Mapping[str, Any]) -> None:
        at = datetime.fromtimestamp(float(entry.get("at", 0)), tz=UTC)
        self.records.append(
            MessageRecord(
                message_id=str(entry["message_id"]),
                phone=contact.phone,
                kind="campaign",
                campaign_id=self.campaign.campaign_id,
                topic=self.send.topic,
                message_class=self.send.message_class,
                state="unknown",
                status="unknown",
                sent_at=at,
                segments=0,
                encoding="",
                body="",
                reason="sender_interrupted",
            )
        )
        self.counts["unknown"] += 1
        logger.warning(
            "reservation without a record: counted unknown, not resent",
            extra={**_chunk_log(self.chunk), "phone": mask(contact.phone)},
        )
        self._flush_if_full()

    # -- one recipient --------------------------------------------------------------------
    def _send_to(self, phone: str, contact: Contact | None, *, renew: bool) -> None:
        message_id = sends.campaign_message_id(self.send.send_key, phone)
        for _attempt in range(RESERVE_ATTEMPTS):
            now = clock.now()
            decision = self._gate(contact, now, renew)
            if not decision.allowed:
                self._refused(phone, decision, now, renew=renew)
                return
            assert contact is not None
            composed = compose(
                self.template,
                contact,
                message_class=self.send.message_class,
                max_segments=self.campaign.max_segments,
            )
            if isinstance(composed, Refusal):
                self._suppress(composed.reason)
                return
            waits = self.limiter.waits
            self.limiter.acquire(self.remaining)
            if self.limiter.waits != waits:
                # Waiting for the rate moved the clock: the window is judged at the send time.
                now = clock.now()
                decision = self._gate(contact, now, renew)
                if not decision.allowed:
                    self.limiter.refund()
                    self._refused(phone, decision, now, renew=renew)
                    return
            entry = sends.send_entry(
                at=now,
                topic=self.send.topic,
                message_class=self.send.message_class,
                message_id=message_id,
                chunk_id=self.chunk.chunk_id,
            )
            reservation = sends.reserve(
                contact,
                self.send.send_key,
                entry,
                keep=retention_for(self.send, contact),
                now=now,
                renew=renew,
            )
            if reservation.reserved:
                self._deliver(contact, composed, message_id, renew=renew)
                return
            self.limiter.refund()
            contact = reservation.current  # as it is now: the gate decides again on it
            mine = contact.sends.get(self.send.send_key) if contact is not None else None
            if mine is not None and mine.get("chunk_id") == self.chunk.chunk_id:
                # A redelivered copy of this very chunk is sending right now: let it finish and
                # count; this copy comes back after the lease and counts from its records.
                raise _StopChunk(IN_FLIGHT_SECONDS, "another attempt is sending this chunk")
        # Concurrent writers kept changing this contact: let the retry try again later.
        raise _StopChunk(THROTTLED_RETRY_SECONDS, CONTENTION)

    def _gate(self, contact: Contact | None, now: datetime, renew: bool) -> gate.GateDecision:
        if renew and contact is not None:
            # Our own earlier reservation is not a duplicate of itself.
            others = {k: v for k, v in contact.sends.items() if k != self.send.send_key}
            contact = contact.model_copy(update={"sends": others})
        return gate.evaluate(contact, self.send, now)

    def _refused(self, phone: str, decision: gate.GateDecision, now: datetime, *, renew: bool) -> None:
        if renew:
            # The earlier attempt may have gone out, and now the gate says no: never send, count unknown.
            self.counts["unknown"] += 1
            return
        release_at = decision.next_allowed
        deadline = self.send.deadline
        if decision.is_window and release_at is not None and (deadline is None or release_at < deadline):
            self.deferred.setdefault(_ceil_minute(release_at), []).append(phone)
            self.counts[DEFERRED] += 1
            return
        self._suppress(decision.reason or "refused")

    def _suppress(self, reason: str) -> None:
        self.counts[SUPPRESSED + reason] += 1

    def _deliver(self, contact: Contact, composed: Composed, message_id: str, *, renew: bool) -> None:
        sms = OutboundSms(
            message_id=message_id,
            to_number=contact.phone,
            body=composed.text,
            message_class=self.send.message_class,
            campaign_id=self.campaign.campaign_id,
        )
        delivery = deliver(
            self.provider, self.limiter, sms, recheck=lambda: self._gate(contact, clock.now(), renew=True)
        )
        if delivery.outcome in ("throttled", "refused"):
            # Certainly not sent: give the reservation back.
            sends.release(contact.phone, self.send.send_key, message_id)
            if delivery.interrupted is not None:
                raise delivery.interrupted
            if delivery.refusal is not None:
                self._refused(contact.phone, delivery.refusal, clock.now(), renew=False)
                return
            raise _StopChunk(THROTTLED_RETRY_SECONDS, "provider kept throttling")
        sent_at = clock.now()
        state: sends.MessageState = (
            "sent"
            if delivery.outcome == "sent"
            else ("failed" if delivery.outcome == "failed" else "unknown")
        )
        if delivery.outcome == "failed":
            self.counts[FAILED + (delivery.reason or FailureReason.UNKNOWN.value)] += 1
            logger.warning(
                "send refused by the provider",
                extra={**_chunk_log(self.chunk), "phone": mask(contact.phone), "reason": delivery.reason},
            )
        elif delivery.outcome == "unknown":
            self.counts["unknown"] += 1
            self.counts["segments"] += composed.info.segments
        else:
            self.counts["sent"] += 1
            self.counts["segments"] += composed.info.segments
        self.records.append(
            MessageRecord(
                message_id=message_id,
                phone=contact.phone,
                kind="campaign",
                campaign_id=self.campaign.campaign_id,
                topic=self.send.topic,
                message_class=self.send.message_class,
                state=state,
                status=state,  # the delivery status starts where the send ended; receipts raise it
                provider_message_id=delivery.provider_message_id,
                error_code=delivery.error.code if delivery.error is not None else None,
                reason=delivery.reason or None,
                sent_at=sent_at,
                segments=composed.info.segments,
                encoding=composed.info.encoding,
                body=composed.text,
            )
        )
        if delivery.outcome == "failed":
            # After the record is queued: should this write fail, the record still goes out
            # (run() flushes before the error reaches SQS) and the retry counts it as failed.
            mark = undeliverable_mark(delivery.error, sent_at)
            sends.mark_failed(contact.phone, self.send.send_key, message_id, undeliverable=mark)
        self._flush_if_full()

    # -- records and parking ----------------------------------------------------------------
    def _flush_if_full(self) -> None:
        if len(self.records) >= sends.BATCH_WRITE_LIMIT:
            self._flush()

    def _flush(self) -> None:
        if self.records:
            sends.put_message_records(self.records)
            self.records = []

    def _park_deferred(self) -> None:
        for release_at, phones in sorted(self.deferred.items()):
            parked = SendChunk(
                campaign_id=self.chunk.campaign_id,
                chunk_id=deferred_chunk_id(self.chunk.chunk_id, release_at),
                recipients=tuple(phones),
            )
            park_until(self.chunk.campaign_id, parked, release_at)
            logger.info(
                "recipients outside their window parked",
                extra={**_chunk_log(parked), "release_at": release_at.isoformat()},
            )


def _ceil_minute(instant: datetime) -> datetime:
    floored = instant.astimezone(UTC).replace(second=0, microsecond=0)
    return floored if floored == instant else floored + timedelta(minutes=1)


def deferred_chunk_id(chunk_id: str, release_at: datetime) -> str:
    """The id of the chunk a chunk's deferred recipients go on: the same for a retried chunk."""
    return f"{chunk_id}~{int(release_at.timestamp())}"


# --- parking (store/fanout.py keeps parked chunks; a release schedule wakes them) -------------


def park(campaign_id: str, chunk: SendChunk, release_at: datetime) -> None:
    from consentry.store import fanout

    fanout.park(campaign_id, chunk, release_at)


def park_until(campaign_id: str, chunk: SendChunk, release_at: datetime) -> None:
    """Park the chunk and make sure a release schedule fires at `release_at` (or soon, if that is near)."""
    from consentry.services import scheduling
    from consentry.store import fanout

    fanout.park(campaign_id, chunk, release_at)
    fire_at = max(release_at, clock.now() + scheduling.MIN_LEAD)
    expression, timezone = scheduling.at_expression(fire_at)
    fanout.create_release_schedule(
        campaign_id, scheduling.release_schedule_name(campaign_id, release_at), expression, timezone
    )
