"""Contact items (table CONTACTS_TABLE, key `phone`) and their consent + ledger commits.

Contact item attributes (the one description of the layout; other store modules that write
contact items use exactly these names):
  phone                 S   E.164, the key
  version               N   bumped by every conditional write (optimistic concurrency)
  opted_out             BOOL global opt-out
  opted_out_changed_at  S   event time (ISO) of the last global change
  topics                M   topic id -> {status, changed_at, source, pending_until}
  recent_evidence       L   evidence references already applied (duplicate hand-offs)
  ledger_seq, ledger_head   N, S  the consent ledger's last sequence number and hash
  attributes            M   profile attributes for personalisation and audience filters
  time_zone             S   IANA zone overriding the one derived from the number
  undeliverable         M   {reason, at, receipt} once the number is known dead
  sends                 M   send key (campaign id or idempotency key) -> {at (epoch s), topic,
                            message_class, message_id, state}; pruned to the longest cap window
  frequency_cap         M   {count, days}: the contact's own promotional cap (preference center)
  paused_until          S   ISO time until which promotional texts are paused
  checkin_sent_at       S   ISO time the last re-permission check-in text went out (not versioned)
  created_at, updated_at S  ISO times

A consent change is one DynamoDB transaction: the contact's consent fields, guarded by its
version, and the next ledger entry, which may only be created once. A concurrent writer
makes the transaction fail and the caller re-reads; nothing is half-written.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from consentry import clock
from consentry.config import settings
from consentry.domain.consent import ContactConsent, TopicConsent
from consentry.domain.contact import Contact
from consentry.domain.ledger import GENESIS, LedgerEntry
from consentry.domain.phone import mask
from consentry.store import codec
from consentry.store.aws import client


class ConcurrentUpdate(Exception):
    """Somebody else changed the contact between our read and our write: read again."""


#: Kept for readability at call sites that load and commit.
ContactRecord = Contact


def _consent_fields(consent: ContactConsent) -> dict[str, Any]:
    return {
        "opted_out": consent.opted_out,
        "opted_out_changed_at": consent.opted_out_changed_at.isoformat(),
        "topics": {topic_id: topic.model_dump(mode="json") for topic_id, topic in consent.topics.items()},
        "recent_evidence": list(consent.recent_evidence),
    }


def record_from_item(item: dict[str, Any]) -> ContactRecord:
    consent = ContactConsent(
        phone=item["phone"],
        opted_out=item.get("opted_out", False),
        opted_out_changed_at=datetime.fromisoformat(item["opted_out_changed_at"])
        if "opted_out_changed_at" in item
        else ContactConsent(phone=item["phone"]).opted_out_changed_at,
        topics={key: TopicConsent.model_validate(value) for key, value in item.get("topics", {}).items()},
        recent_evidence=tuple(item.get("recent_evidence", ())),
    )
    return ContactRecord(
        consent=consent,
        version=item.get("version", 0),
        ledger_seq=item.get("ledger_seq", 0),
        ledger_head=item.get("ledger_head", GENESIS),
        attributes=item.get("attributes", {}),
        time_zone=item.get("time_zone"),
        undeliverable=item.get("undeliverable"),
        sends=item.get("sends", {}),
        frequency_cap=item.get("frequency_cap"),
        paused_until=datetime.fromisoformat(item["paused_until"]) if item.get("paused_until") else None,
    )


def load(phone: str) -> ContactRecord | None:
    response = client("dynamodb").get_item(
        TableName=settings().contacts_table, Key={"phone": {"S": phone}}, ConsistentRead=True
    )
    item = response.get("Item")
    return record_from_item(codec.from_item(item)) if item else None


def ledger_item(entry: LedgerEntry) -> dict[str, Any]:
    return codec.to_item(entry.model_dump(mode="json"))


def commit_consent(before: ContactRecord | None, consent: ContactConsent, entry: LedgerEntry) -> None:
    """Write the new consent state and its ledger entry atomically, or raise ConcurrentUpdate."""
    fields = _consent_fields(consent)
    fields.update(version=(before.version if before else 0) + 1, ledger_seq=entry.seq, ledger_head=entry.hash)
    names = {f"#{key}": key for key in fields}
    values = {f":{key}": codec.to_value(value) for key, value in fields.items()}
    if before is None:
        condition = "attribute_not_exists(phone)"
    else:
        condition = "#version = :expected_version"
        values[":expected_version"] = {"N": str(before.version)}
    update = {
        "TableName": settings().contacts_table,
        "Key": {"phone": {"S": consent.phone}},
        "UpdateExpression": "SET " + ", ".join(f"#{key} = :{key}" for key in fields),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
    put = {
        "TableName": settings().ledger_table,
        "Item": ledger_item(entry),
        "ConditionExpression": "attribute_not_exists(seq)",
    }
    try:
        client("dynamodb").transact_write_items(TransactItems=[{"Update": update}, {"Put": put}])
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "TransactionCanceledException":
            raise ConcurrentUpdate(mask(consent.phone)) from exc  # exception texts end up in logs
        raise


def set_send_preferences(
    before: ContactRecord, *, frequency_cap: dict[str, int] | None, paused_until: datetime | None
) -> None:
    """Write the contact's own cap and pause (None removes them), guarded by its version.

    Raises ConcurrentUpdate when the contact changed since `before` was read (or is gone).
    """
    sets: dict[str, Any] = {"version": before.version + 1}
    removes: list[str] = []
    for name, value in (
        ("frequency_cap", frequency_cap),
        ("paused_until", paused_until.isoformat() if paused_until else None),
    ):
        if value is None:
            removes.append(name)
        else:
            sets[name] = value
    expression = "SET " + ", ".join(f"#{name} = :{name}" for name in sets)
    if removes:
        expression += " REMOVE " + ", ".join(f"#{name}" for name in removes)
    values = {f":{name}": codec.to_value(value) for name, value in sets.items()}
    if before.version:
        condition = "#version = :expected_version"
        values[":expected_version"] = {"N": str(before.version)}
    else:  # an item written without a version (never by commit_consent)
        condition = "attribute_exists(phone) AND attribute_not_exists(#version)"
    try:
        client("dynamodb").update_item(
            TableName=settings().contacts_table,
            Key={"phone": {"S": before.phone}},
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames={f"#{name}": name for name in [*sets, *removes]},
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise ConcurrentUpdate(mask(before.phone)) from exc
        raise


def mark_checkin_sent(phone: str, at: datetime, *, not_since: datetime) -> bool:
    """Record a check-in at `at` unless one was recorded at or after `not_since`; False if one was.

    Not versioned: it changes no consent or preference, so it must not make a concurrent
    consent or send writer retry.
    """
    try:
        client("dynamodb").update_item(
            TableName=settings().contacts_table,
            Key={"phone": {"S": phone}},
            UpdateExpression="SET checkin_sent_at = :at",
            ConditionExpression="attribute_exists(phone) AND "
            "(attribute_not_exists(checkin_sent_at) OR checkin_sent_at < :not_since)",
            ExpressionAttributeValues={
                ":at": {"S": at.isoformat()},
                ":not_since": {"S": not_since.isoformat()},
            },
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def scan_page(
    start_key: dict[str, Any] | None = None, limit: int = 500
) -> tuple[list[tuple[ContactRecord, datetime | None]], dict[str, Any] | None]:
    """One page of every contact, with its `checkin_sent_at`, and the key to resume after it."""
    kwargs: dict[str, Any] = {"TableName": settings().contacts_table, "Limit": limit}
    if start_key:
        kwargs["ExclusiveStartKey"] = start_key
    page = client("dynamodb").scan(**kwargs)
    found: list[tuple[ContactRecord, datetime | None]] = []
    for raw in page.get("Items", []):
        item = codec.from_item(raw)
        sent = item.get("checkin_sent_at")
        found.append((record_from_item(item), datetime.fromisoformat(sent) if sent else None))
    next_key: dict[str, Any] | None = page.get("LastEvaluatedKey")
    return found, next_key


def load_many(phones: Iterable[str]) -> dict[str, ContactRecord]:
    """Several contacts by number, strongly consistent (BatchGetItem, 100 keys a request)."""
    numbers = sorted(set(phones))
    table = settings().contacts_table
    found: dict[str, ContactRecord] = {}
    for start in range(0, len(numbers), 100):
        request: dict[str, Any] = {
            table: {
                "Keys": [{"phone": {"S": phone}} for phone in numbers[start : start + 100]],
                "ConsistentRead": True,
            }
        }
        for attempt in range(8):
            response = client("dynamodb").batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                record = record_from_item(codec.from_item(item))
                found[record.phone] = record
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            clock.sleep(min(0.05 * 2**attempt, 2.0))  # throttled: back off, then ask for the rest
        else:
            raise RuntimeError("contact reads stayed throttled")
    return found


def commit_import(
    before: ContactRecord | None,
    consent: ContactConsent,
    entries: Sequence[LedgerEntry],
    *,
    attributes: dict[str, Any],
    time_zone: str | None,
    now: datetime,
) -> None:
    """An imported row as one transaction: consent fields, profile (attributes, time_zone) and its
    new ledger entries, guarded by the version like commit_consent. Raises ConcurrentUpdate."""
    fields = _consent_fields(consent)
    fields.update(
        version=(before.version if before else 0) + 1, attributes=attributes, updated_at=now.isoformat()
    )
    if entries:
        fields.update(ledger_seq=entries[-1].seq, ledger_head=entries[-1].hash)
    if time_zone is not None:
        fields["time_zone"] = time_zone
    if before is None:
        fields["created_at"] = now.isoformat()
    contact_write: dict[str, Any]
    if before is None:
        # A new contact is the whole item: a Put, which also spares the emulator parsing a long
        # update expression per row (bulk imports are mostly new contacts).
        contact_write = {
            "Put": {
                "TableName": settings().contacts_table,
                "Item": codec.to_item({"phone": consent.phone, **fields}),
                "ConditionExpression": "attribute_not_exists(phone)",
            }
        }
    else:
        values = {f":{key}": codec.to_value(value) for key, value in fields.items()}
        values[":expected_version"] = {"N": str(before.version)}
        contact_write = {
            "Update": {
                "TableName": settings().contacts_table,
                "Key": {"phone": {"S": consent.phone}},
                "UpdateExpression": "SET " + ", ".join(f"#{key} = :{key}" for key in fields),
                "ConditionExpression": "#version = :expected_version",
                "ExpressionAttributeNames": {f"#{key}": key for key in fields},
                "ExpressionAttributeValues": values,
            }
        }
    puts = [
        {
            "Put": {
                "TableName": settings().ledger_table,
                "Item": ledger_item(entry),
                "ConditionExpression": "attribute_not_exists(seq)",
            }
        }
        for entry in entries
    ]
    try:
        client("dynamodb").transact_write_items(TransactItems=[contact_write, *puts])
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "TransactionCanceledException":
            raise ConcurrentUpdate(mask(consent.phone)) from exc
        raise


def ledger_entries(phone: str) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    kwargs: dict[str, Any] = {
        "TableName": settings().ledger_table,
        "KeyConditionExpression": "phone = :phone",
        "ExpressionAttributeValues": {":phone": {"S": phone}},
        "ConsistentRead": True,
    }
    while True:
        page = client("dynamodb").query(**kwargs)
        entries.extend(LedgerEntry.model_validate(codec.from_item(item)) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return entries
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
