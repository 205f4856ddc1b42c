"""Contacts and privacy: import with proof of consent, export (GDPR Art. 15), erasure (Art. 17).

Import: each row is validated (domain/imports.py) and applied as one transaction -- its consent
changes with their ledger entries and its profile attributes -- or refused with a reason. The
evidence reference `import:<batch>:<line>:<topic>` makes a re-import of the same file change
nothing: the consent domain recognises references it has seen, and a reference that has aged
out of that memory is found in the ledger before anything is recorded twice.

Erasure keeps the number's salted hash on the suppression list first, so that an erasure that
fails half-way still blocks re-imports, then moves the ledger (redacted), deletes messages and
conversation, and deletes the contact item last, only if it did not change meanwhile.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field

from consentry import clock
from consentry.domain.consent import ContactConsent, Outcome, apply_change
from consentry.domain.imports import ContactImport, RefusalReason, RowRefusal, validate_row
from consentry.domain.ledger import GENESIS, ChainCheck, LedgerEntry, make_entry, verify
from consentry.domain.phone import mask
from consentry.services.program import current_program
from consentry.store import contacts, privacy, suppression
from consentry.store.contacts import ContactRecord

logger = Logger(child=True)

MAX_ATTEMPTS = 5
MAX_ERASE_ROUNDS = 5


# --- import ----------------------------------------------------------------------------------------


class RowResult(StrEnum):
    IMPORTED = "imported"  # created or changed
    UNCHANGED = "unchanged"  # already as the row says (a re-import)


class ImportReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    batch: str
    rows: int
    imported: int
    unchanged: int
    refused: list[RowRefusal] = Field(default_factory=list)


def import_rows(batch_id: str, rows: Sequence[tuple[int, object]]) -> ImportReport:
    """Validate and apply rows of one batch (a page of a file); refused rows are reported, not raised."""
    program = current_program()
    now = clock.now()
    refused: list[RowRefusal] = []
    valid: list[ContactImport] = []
    for line, data in rows:
        result = validate_row(line, data, program=program, now=now)
        if isinstance(result, RowRefusal):
            refused.append(result)
        else:
            valid.append(result)
    erased = suppression.erased_numbers(row.phone for row in valid)
    admitted: list[ContactImport] = []
    for row in valid:
        refusal = row.refusal_after_erasure(erased[row.phone]) if row.phone in erased else None
        if refusal is None:
            admitted.append(row)
        else:
            refused.append(refusal)
    records = contacts.load_many(row.phone for row in admitted)
    written: set[str] = set()  # numbers this page changed: a later row for one reads it again
    imported = unchanged = 0
    for row in admitted:
        fresh = row.phone not in written
        outcome = _apply_row(batch_id, row, records.get(row.phone) if fresh else None, fresh=fresh, now=now)
        if isinstance(outcome, RowRefusal):
            refused.append(outcome)
        elif outcome is RowResult.IMPORTED:
            imported += 1
            written.add(row.phone)
        else:
            unchanged += 1
    refused.sort(key=lambda refusal: refusal.line)
    logger.info(
        "contacts imported",
        extra={
            "batch": batch_id,
            "rows": len(rows),
            "imported": imported,
            "unchanged": unchanged,
            "refused": len(refused),
        },
    )
    return ImportReport(
        batch=batch_id, rows=len(rows), imported=imported, unchanged=unchanged, refused=refused
    )


def _apply_row(
    batch_id: str, row: ContactImport, record: ContactRecord | None, *, fresh: bool, now: datetime
) -> RowResult | RowRefusal:
    reload = not fresh
    for _attempt in range(MAX_ATTEMPTS):
        if reload:
            record = contacts.load(row.phone)
        reload = True
        state = record.consent if record else ContactConsent(phone=row.phone)
        seq = record.ledger_seq if record else 0
        head = record.ledger_head if record else GENESIS
        entries: list[LedgerEntry] = []
        recorded_before: set[str] | None = None
        seen = 0
        for change in row.changes(batch_id):
            decision = apply_change(state, change)
            if decision.outcome is Outcome.DUPLICATE:
                seen += 1
                continue
            if decision.outcome is Outcome.STALE:
                # Older than what we hold: normally recorded as evidence, but not if this very
                # row was imported before and has only aged out of the contact's recent memory.
                if recorded_before is None:
                    recorded_before = _import_references(row.phone)
                if change.evidence.reference in recorded_before:
                    seen += 1
                    continue
            seq += 1
            entry = make_entry(
                phone=row.phone,
                seq=seq,
                prev_hash=head,
                recorded_at=now,
                event_time=change.event_time,
                kind=change.kind.value,
                scope=change.scope,
                outcome=decision.outcome.value,
                evidence=change.evidence.model_dump(mode="json"),
            )
            entries.append(entry)
            head = entry.hash
            state = decision.state
        attributes = {**(record.attributes if record else {}), **row.attributes}
        time_zone = row.time_zone or (record.time_zone if record else None)
        already_applied = bool(row.consents) and seen == len(row.consents)
        profile_same = (
            record is not None and attributes == record.attributes and time_zone == record.time_zone
        )
        if not entries and (already_applied or profile_same):
            return RowResult.UNCHANGED
        try:
            contacts.commit_import(
                record, state, entries, attributes=attributes, time_zone=time_zone, now=now
            )
        except contacts.ConcurrentUpdate:
            logger.info("import row raced another writer, reading again", extra={"phone": mask(row.phone)})
            continue
        return RowResult.IMPORTED
    return RowRefusal(
        line=row.line, reason=RefusalReason.CONFLICT, detail="the contact kept changing; import the row again"
    )


def _import_references(phone: str) -> set[str]:
    return {
        str(entry.evidence.get("reference"))
        for entry in contacts.ledger_entries(phone)
        if entry.evidence is not None and entry.evidence.get("source") == "import"
    }


# --- read ------------------------------------------------------------------------------------------


def contact_summary(phone: str) -> dict[str, Any] | None:
    record = contacts.load(phone)
    if record is None:
        return None
    return {
        "phone": phone,
        "attributes": record.attributes,
        "time_zone": record.time_zone,
        "consent": record.consent.model_dump(mode="json", exclude={"recent_evidence"}),
        "subscribed": sorted(topic for topic in record.consent.topics if record.consent.is_subscribed(topic)),
        "undeliverable": record.undeliverable,
        "frequency_cap": record.frequency_cap,
        "paused_until": record.paused_until.isoformat() if record.paused_until else None,
    }


def export(phone: str) -> dict[str, Any] | None:
    """Everything held about `phone` (GDPR Art. 15); None when nothing at all is held."""
    item = privacy.contact_item(phone)
    record = contacts.record_from_item(item) if item else None
    entries = sorted(contacts.ledger_entries(phone), key=lambda entry: entry.seq)
    outbound = privacy.messages_to(phone)
    inbound = privacy.conversation(phone)
    counters = privacy.auto_reply_counters(phone)
    erasure = suppression.entry(suppression.phone_hash(phone))
    if not (item or entries or outbound or inbound or counters or erasure):
        return None
    return {
        "phone": phone,
        "exported_at": clock.now().isoformat(),
        "profile": item,
        "consent": record.consent.model_dump(mode="json") if record else None,
        "ledger": [entry.model_dump(mode="json") for entry in entries],
        "ledger_chain": verify(entries).model_dump(mode="json"),
        "messages": outbound,
        "inbound_texts": inbound,
        "auto_reply_counters": counters,
        "campaign_sends": record.sends if record else {},
        "suppression": {
            "erased": erasure is not None,
            "erased_at": erasure.get("erased_at") if erasure else None,
            "erasures": erasure.get("erasures", 0) if erasure else 0,
        },
    }


# --- erasure ---------------------------------------------------------------------------------------


class ErasureReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    erased_at: datetime
    already_erased: bool
    contact_deleted: bool
    messages_deleted: int
    inbound_texts_deleted: int
    auto_reply_counters_deleted: int
    ledger_entries_redacted: int
    ledger_chain: ChainCheck


class NothingHeld(Exception):
    """Nothing is held about the number and it was never erased."""


def erase(phone: str) -> ErasureReport:
    """Erase everything about `phone` but the salted hash and the redacted consent ledger.

    Safe to run again after a failure part-way: each step finds what is left. Raises
    NothingHeld when nothing is held and the number was never erased.
    """
    hashed = suppression.phone_hash(phone)
    listed = suppression.entry(hashed)
    item = privacy.contact_item(phone)
    held = (
        item is not None
        or bool(contacts.ledger_entries(phone))
        or bool(privacy.messages_to(phone))
        or bool(privacy.conversation(phone))
        or bool(privacy.auto_reply_counters(phone))
    )
    if not held:
        if listed is None:
            raise NothingHeld(mask(phone))
        if "pending_ledger_key" not in listed:
            # Erased before and nothing new since: keep the original erasure time, which is
            # what fresh consent in a later import is measured against.
            return _already_erased(listed)
    now = clock.now()
    partition = suppression.begin_erasure(hashed, now)
    moved = messages = inbound = counters = 0
    deleted = False
    for _round in range(MAX_ERASE_ROUNDS):
        moved += privacy.move_ledger_redacted(phone, partition, now)
        messages += privacy.delete_message_items(privacy.messages_to(phone))
        inbound += privacy.delete_message_items(privacy.conversation(phone))
        counters += privacy.delete_message_items(privacy.auto_reply_counters(phone))
        if privacy.delete_contact(phone, item):
            deleted = deleted or item is not None
            break
        # A consent change or a send touched the contact meanwhile: erase what it added too.
        item = privacy.contact_item(phone)
    else:
        raise contacts.ConcurrentUpdate(f"contact {mask(phone)} kept changing during erasure")
    suppression.finish_erasure(hashed, partition)
    chain = verify(privacy.erased_ledger(partition))
    logger.info(
        "contact erased",
        extra={
            "phone": mask(phone),
            "ledger_entries": moved,
            "messages": messages,
            "inbound": inbound,
            "chain_ok": chain.ok,
        },
    )
    return ErasureReport(
        erased_at=now,
        already_erased=False,
        contact_deleted=deleted,
        messages_deleted=messages,
        inbound_texts_deleted=inbound,
        auto_reply_counters_deleted=counters,
        ledger_entries_redacted=moved,
        ledger_chain=chain,
    )


def _already_erased(listed: Mapping[str, Any]) -> ErasureReport:
    keys = listed.get("ledger_keys") or []
    entries = privacy.erased_ledger(str(keys[-1])) if keys else []
    return ErasureReport(
        erased_at=datetime.fromisoformat(str(listed["erased_at"])),
        already_erased=True,
        contact_deleted=False,
        messages_deleted=0,
        inbound_texts_deleted=0,
        auto_reply_counters_deleted=0,
        ledger_entries_redacted=0,
        ledger_chain=verify(entries),
    )


def as_rows(lines: Sequence[Mapping[str, Any]]) -> list[tuple[int, object]]:
    """API page entries {"line": n, "row": {...}} as (line, row) pairs."""
    return [(int(entry["line"]), entry["row"]) for entry in lines]
