"""Delivery receipts: move each message's status forward, count what changed, act on dead numbers.

Per receipt there is one conditional write to the message (it returns the message as it was,
so no read is needed); per batch one counter write per campaign, with only the transitions
that actually happened: duplicates and late, out-of-order reports change nothing and count
nothing. Receipts for messages we do not know are kept (ORPHAN# items) and counted, never
fatal. Failures with consequences:

* invalid number or landline: the contact is marked undeliverable at once;
* unreachable: marked once the last `unreachable_suppress_after` final reports in a row for that
  number were all "unreachable" (no delivery between);
* the recipient opted out at the carrier/provider: a global opt-out in our ledger, with the
  receipt as evidence, and no confirmation text (the carrier already answered).

A receipt can overtake its message record (the sender writes records in batches just after the
provider took the messages). A young receipt naming a message we have no record of is therefore
refused with `ReceiptBeforeRecord` where the caller can have it retried (the queue path: that
record alone comes back after the queue's visibility timeout); otherwise, or once it is old, it is
kept as an orphan.

Counting is once per status raise, also when the SDK sends a write again after it landed (the
status write knows its own attempt, store/messages.py; the counter write is `counters.add_once`)
and when DynamoDB throttles the counter write (retried there). Only a crash between the status
write and the counter write loses those counts, rather than doubling them on the retry.
"""

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit

from consentry import clock
from consentry.config import settings
from consentry.domain.campaign import CAMPAIGN_ID_PREFIX
from consentry.domain.consent import ALL, ChangeKind, ConsentChange, Decision, Evidence, Outcome
from consentry.domain.messages import DeliveryReceipt, DeliveryStatus
from consentry.domain.phone import mask
from consentry.domain.report import (
    PROGRAM_ID,
    attributed_campaign,
    consent_deltas,
    opt_out_hour_bucket,
    receipt_deltas,
)
from consentry.observability import metrics
from consentry.providers.errors import FailureReason
from consentry.services.consent import commit_change
from consentry.store import contacts, counters, deliverability, events, messages
from consentry.store.messages import StatusChange

logger = Logger(child=True)

#: Failure reasons that, repeated, say the handset is gone (not the carrier or the content).
UNREACHABLE_REASONS = frozenset({FailureReason.UNREACHABLE.value})
#: How long after its event a receipt may still be ahead of its message record.
RECORD_GRACE = timedelta(minutes=10)


class ReceiptBeforeRecord(Exception):
    """The receipt names a message whose record is not written yet: retry the event later."""


@dataclass(frozen=True)
class ReceiptInput:
    receipt: DeliveryReceipt
    price_micros: int | None = None  # what the provider charged, when the report says


def eum_price_micros(message: str | Mapping[str, Any]) -> int | None:
    """totalMessagePrice + totalCarrierFee of an End User Messaging event, in micro-dollars."""
    try:
        record = json.loads(message) if isinstance(message, str) else message
    except ValueError:
        return None
    if not isinstance(record, Mapping):
        return None
    total = Decimal(0)
    found = False
    for name in ("totalMessagePrice", "totalCarrierFee"):
        value = record.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            continue
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            continue
        if amount.is_finite() and amount >= 0:
            total += amount
            found = True
    return int((total * 1_000_000).to_integral_value()) if found else None


def process_receipts(receipts: Iterable[ReceiptInput], *, retry_unrecorded: bool) -> dict[str, int]:
    """Apply a batch of receipts; returns how many were applied, stale or unmatched.

    `retry_unrecorded`: raise ReceiptBeforeRecord for a young receipt of an unknown message
    (the caller's event will be retried) instead of keeping it as an orphan.
    """
    now = clock.now()
    outcomes: Counter[str] = Counter()
    deltas: defaultdict[str, Counter[str]] = defaultdict(Counter)
    try:
        for item in receipts:
            outcomes[_process_one(item, now, deltas, retry_unrecorded)] += 1
    finally:
        # Whatever was applied is counted, even when a later receipt of the batch failed: the
        # retry finds those statuses already set and would not count them again.
        _count(deltas)
    return dict(outcomes)


@dataclass(frozen=True)
class BatchResult:
    outcomes: dict[str, int]
    #: position in the batch -> why that receipt was not applied (the caller has it retried)
    failures: dict[int, Exception]


def process_each(receipts: Sequence[ReceiptInput], *, retry_unrecorded: bool) -> BatchResult:
    """Like `process_receipts`, but a receipt that fails does not stop the others.

    For a queue's batch: the failed positions are retried alone by the caller, the rest are
    applied, and each campaign's counters still take one write for the whole batch.
    """
    now = clock.now()
    outcomes: Counter[str] = Counter()
    failures: dict[int, Exception] = {}
    deltas: defaultdict[str, Counter[str]] = defaultdict(Counter)
    try:
        for position, item in enumerate(receipts):
            try:
                outcomes[_process_one(item, now, deltas, retry_unrecorded)] += 1
            except Exception as exc:  # any failure is this receipt's alone: it is retried
                failures[position] = exc
    finally:
        _count(deltas)
    return BatchResult(dict(outcomes), failures)


def _count(deltas: Mapping[str, Counter[str]]) -> None:
    for campaign_id, changes in deltas.items():
        counters.add_once(campaign_id, changes)


def _process_one(
    item: ReceiptInput, now: datetime, deltas: defaultdict[str, Counter[str]], retry_unrecorded: bool
) -> str:
    receipt = item.receipt
    metrics.add_metric(name="Receipts", unit=MetricUnit.Count, value=1)
    change, before = messages.record_delivery_status(receipt, now=now)
    if change is StatusChange.UNKNOWN_MESSAGE or before is None:
        if retry_unrecorded and receipt.message_id and now - receipt.occurred_at < RECORD_GRACE:
            metrics.add_metric(name="ReceiptBeforeRecord", unit=MetricUnit.Count, value=1)
            raise ReceiptBeforeRecord(
                f"no record yet of message {receipt.message_id} ({receipt.provider}:"
                f"{receipt.provider_message_id}, {receipt.status.value}); retry later"
            )
        first_time = messages.record_orphan_receipt(receipt, now=now)
        metrics.add_metric(name="ReceiptUnmatched", unit=MetricUnit.Count, value=1)
        if first_time and receipt.campaign_id:
            deltas[receipt.campaign_id]["unmatched_receipts"] += 1
        logger.warning(
            "receipt for an unknown message kept as orphan",
            extra={
                "provider": receipt.provider,
                "provider_message_id": receipt.provider_message_id,
                "has_message_id": receipt.message_id is not None,
                "status": receipt.status,
            },
        )
        return "unmatched"
    campaign_id = _text(before.get("campaign_id")) or receipt.campaign_id  # our record first
    previous = _text(before.get("status"))
    if change is StatusChange.APPLIED:
        changes = receipt_deltas(
            status=receipt.status.value,
            previous_status=previous,
            reason=receipt.reason,
            occurred_at=receipt.occurred_at,
            sent_at=_time(before.get("sent_at")),
            price_micros=item.price_micros,
        )
        if campaign_id:
            deltas[campaign_id].update(changes)
        _emit_status_metrics(receipt, _time(before.get("sent_at")))
    else:
        metrics.add_metric(name="ReceiptStale", unit=MetricUnit.Count, value=1)
    # A repeated failure report runs the consequences again (they are idempotent) in case the
    # first attempt stopped between the status write and them.
    if receipt.status is DeliveryStatus.FAILED and (
        change is StatusChange.APPLIED or previous == DeliveryStatus.FAILED.value
    ):
        phone = _text(before.get("phone")) or receipt.to_number
        campaign_deltas = deltas[campaign_id] if campaign_id else Counter[str]()
        _failure_consequences(receipt, phone, campaign_deltas, now)
    return change.value


def _emit_status_metrics(receipt: DeliveryReceipt, sent_at: datetime | None) -> None:
    if receipt.status is DeliveryStatus.DELIVERED:
        metrics.add_metric(name="Delivered", unit=MetricUnit.Count, value=1)
        if sent_at is not None:
            elapsed = max(0.0, (receipt.occurred_at - sent_at).total_seconds() * 1000)
            metrics.add_metric(name="TimeToDeliver", unit=MetricUnit.Milliseconds, value=elapsed)
    elif receipt.status is DeliveryStatus.FAILED:
        metrics.add_metric(name="DeliveryFailed", unit=MetricUnit.Count, value=1)
        metrics.add_metric(
            name=f"DeliveryFailed_{receipt.reason or 'unknown'}", unit=MetricUnit.Count, value=1
        )
    elif receipt.status is DeliveryStatus.UNKNOWN:
        metrics.add_metric(name="DeliveryUnknown", unit=MetricUnit.Count, value=1)


def _failure_consequences(
    receipt: DeliveryReceipt, phone: str | None, campaign_deltas: Counter[str], now: datetime
) -> None:
    if phone is None:
        logger.warning(
            "failed receipt without a number: no consequence possible",
            extra={"provider_message_id": receipt.provider_message_id, "reason": receipt.reason},
        )
        return
    if receipt.carrier_opt_out and _carrier_opt_out(receipt, phone):
        campaign_deltas["carrier_opt_outs"] += 1
    if receipt.permanent:
        reason = receipt.reason or FailureReason.INVALID.value
        if _mark_dead(phone, reason, receipt, now):
            campaign_deltas["numbers_suppressed"] += 1
    elif receipt.reason in UNREACHABLE_REASONS:
        threshold = settings().unreachable_suppress_after
        if _unreachable_streak(phone, receipt) >= threshold and _mark_dead(
            phone, FailureReason.UNREACHABLE.value, receipt, now
        ):
            campaign_deltas["numbers_suppressed"] += 1


def _unreachable_streak(phone: str, receipt: DeliveryReceipt) -> int:
    """Final reports for `phone`, newest first, that were "unreachable" before the last delivery.

    Messages still in flight, with no final word, or failed for reasons that say nothing about
    the handset (blocked, spam ...) neither count nor break the streak; a delivery breaks it.
    The current message counts even if the index has not caught up with its status yet.
    """
    limit = max(10, 3 * settings().unreachable_suppress_after)
    streak = 1
    for item in messages.recent_outbound(phone, limit):
        if item.get("message_id") == receipt.message_id:
            continue
        status = item.get("status")
        if status == DeliveryStatus.DELIVERED.value:
            break
        if status == DeliveryStatus.FAILED.value and item.get("status_reason") in UNREACHABLE_REASONS:
            streak += 1
    return streak


def _mark_dead(phone: str, reason: str, receipt: DeliveryReceipt, now: datetime) -> bool:
    marked = deliverability.mark_undeliverable(
        phone,
        reason=reason,
        at=receipt.occurred_at,
        receipt=f"{receipt.provider}:{receipt.provider_message_id}",
        now=now,
    )
    if marked:
        metrics.add_metric(name="NumberSuppressed", unit=MetricUnit.Count, value=1)
        logger.info("number marked undeliverable", extra={"phone": mask(phone), "reason": reason})
    return marked


def _carrier_opt_out(receipt: DeliveryReceipt, phone: str) -> bool:
    """The carrier/provider says the recipient opted out: record it as a global opt-out."""
    detail = {"provider": receipt.provider}
    if receipt.error_code:
        detail["error_code"] = receipt.error_code
    if receipt.message_id:
        detail["message_id"] = receipt.message_id
    change = ConsentChange(
        kind=ChangeKind.OPT_OUT,
        scope=ALL,
        event_time=receipt.occurred_at,
        evidence=Evidence(source="receipt", reference=receipt.provider_message_id, detail=detail),
    )
    decision = commit_change(phone, change)
    if decision.outcome is not Outcome.APPLIED:
        return False
    metrics.add_metric(name="CarrierOptOut", unit=MetricUnit.Count, value=1)
    # It is an opt-out of the program, but it happened at the carrier before this message (which
    # is why the message failed), so no campaign is blamed for it.
    record_consent_change(phone, change, decision, attribute=False)
    return True


# --- consent changes in the numbers --------------------------------------------------------------


@dataclass
class _OwedEffects:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def settle(self) -> None:
        if self.events:
            events.publish_many(self.events)
        for campaign_id, deltas in self.counts.items():
            counters.add(campaign_id, deltas)


_owed: ContextVar[_OwedEffects | None] = ContextVar("consentry_owed_consent_effects", default=None)


@contextmanager
def consent_effects_per_batch() -> Iterator[None]:
    """Within, what consent changes owe (below) is gathered and settled once at the end, also when
    the block fails: ten ConsentChanged events a PutEvents and one counter write per campaign for
    a whole batch of hand-offs, instead of one of each per change."""
    owed = _OwedEffects()
    token = _owed.set(owed)
    try:
        yield
    finally:
        _owed.reset(token)
        owed.settle()


def _publish(detail_type: str, detail: dict[str, Any]) -> None:
    owed = _owed.get()
    if owed is None:
        events.publish(detail_type, detail)
    else:
        owed.events.append((detail_type, detail))


def _add_counts(campaign_id: str, deltas: Mapping[str, int]) -> None:
    owed = _owed.get()
    if owed is None:
        counters.add(campaign_id, deltas)
    else:
        owed.counts[campaign_id].update(deltas)


def record_consent_change(
    phone: str, change: ConsentChange, decision: Decision, *, attribute: bool = True
) -> None:
    """What every consent change that took effect owes the rest of the system, whatever caused it
    (a text, a page, a receipt): the ConsentChanged event on the bus, the weekly program numbers
    and, for an opt-out, the campaign it is attributed to (a STOP within 72 hours of receiving
    that campaign's message).
    """
    if decision.outcome is not Outcome.APPLIED:
        return
    _publish(
        "ConsentChanged",
        {
            "phone": phone,
            "kind": change.kind.value,
            "scope": change.scope,
            "topics": list(decision.topics),
            "opted_out": decision.state.opted_out,
            "event_time": change.event_time.isoformat(),
            "evidence": change.evidence.reference,
        },
    )
    _add_counts(PROGRAM_ID, consent_deltas(change.kind.value, change.event_time))
    if not attribute or change.kind is not ChangeKind.OPT_OUT:
        return
    record = contacts.load(phone)
    if record is None:
        return
    blamed = attributed_campaign(
        record.sends, scope=change.scope, opted_out_at=change.event_time, campaign_prefix=CAMPAIGN_ID_PREFIX
    )
    if blamed is None:
        return
    _add_counts(blamed.campaign_id, {"opt_outs": 1, opt_out_hour_bucket(blamed.hours_after): 1})
    metrics.add_metric(name="OptOutAttributed", unit=MetricUnit.Count, value=1)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
