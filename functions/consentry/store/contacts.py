"""Contact items (table CONTACTS_TABLE, key `phone`) and their consent + ledger commits.

A consent change is one DynamoDB transaction: the contact's consent fields, guarded by its
version, and the next ledger entry, which may only be created once. A concurrent writer
makes the transaction fail and the caller re-reads; nothing is half-written.
"""

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from consentry.config import settings
from consentry.domain.consent import ContactConsent, TopicConsent
from consentry.domain.ledger import GENESIS, LedgerEntry
from consentry.store import codec
from consentry.store.aws import client


class ConcurrentUpdate(Exception):
    """Somebody else changed the contact between our read and our write: read again."""


class ContactRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    consent: ContactConsent
    version: int = 0
    ledger_seq: int = 0
    ledger_head: str = GENESIS
    attributes: dict[str, Any] = {}
    time_zone: str | None = None


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
