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
  created_at, updated_at S  ISO times

A consent change is one DynamoDB transaction: the contact's consent fields, guarded by its
version, and the next ledger entry, which may only be created once. A concurrent writer
makes the transaction fail and the caller re-reads; nothing is half-written.
"""

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from consentry.config import settings
from consentry.domain.consent import ContactConsent, TopicConsent
from consentry.domain.contact import Contact
from consentry.domain.ledger import GENESIS, LedgerEntry
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
            raise ConcurrentUpdate(consent.phone) from exc
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
