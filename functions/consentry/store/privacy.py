"""What GDPR export and erasure read and remove, across the tables that hold a person's data.

- CONTACTS_TABLE: the contact item (layout in store/contacts.py), read whole for an export.
- MESSAGES_TABLE (layouts in store/messages.py): every item carrying `phone` (outbound MSG#
  records, found through the `by_phone` index), the conversation log `CONV#<phone>` and the
  auto-reply counters `AUTOREPLY#<phone>`.
- LEDGER_TABLE: the consent ledger. Erasure moves each entry, redacted (domain/ledger.py:
  phone, evidence and digest salt removed, hash and digests kept), from the number's partition
  to `ERASED#<salted hash>#<erasure>` (store/suppression.py), one transaction per 50 entries
  (a put and a delete each), so an entry is never lost nor left in both places.
"""

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from consentry import clock
from consentry.config import settings
from consentry.domain.ledger import PERSONAL_FIELDS, LedgerEntry
from consentry.store import codec
from consentry.store.aws import client
from consentry.store.contacts import ledger_entries, ledger_item

BATCH_WRITE_LIMIT = 25
MAX_BATCH_ATTEMPTS = 8
#: Entries moved per transaction: a put and a delete each, within DynamoDB's 100 actions.
LEDGER_MOVE_CHUNK = 50


def contact_item(phone: str) -> dict[str, Any] | None:
    """The contact item as stored, every attribute (an export must show all of it)."""
    response = client("dynamodb").get_item(
        TableName=settings().contacts_table, Key={"phone": {"S": phone}}, ConsistentRead=True
    )
    item = response.get("Item")
    return codec.from_item(item) if item else None


def delete_contact(phone: str, as_read: dict[str, Any] | None) -> bool:
    """Delete the contact item if it is still as read (None: still absent); False if it changed."""
    kwargs: dict[str, Any] = {"TableName": settings().contacts_table, "Key": {"phone": {"S": phone}}}
    if as_read is None:
        kwargs["ConditionExpression"] = "attribute_not_exists(phone)"
    elif "version" in as_read:
        kwargs["ConditionExpression"] = "#version = :version"
        kwargs["ExpressionAttributeNames"] = {"#version": "version"}
        kwargs["ExpressionAttributeValues"] = {":version": {"N": str(as_read["version"])}}
    else:  # an item no versioned writer has touched yet
        kwargs["ConditionExpression"] = "attribute_exists(phone) AND attribute_not_exists(#version)"
        kwargs["ExpressionAttributeNames"] = {"#version": "version"}
    try:
        client("dynamodb").delete_item(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


# --- messages ---------------------------------------------------------------------------------------


def _query(**kwargs: Any) -> Iterator[dict[str, Any]]:
    while True:
        page = client("dynamodb").query(TableName=settings().messages_table, **kwargs)
        yield from (codec.from_item(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def messages_to(phone: str) -> list[dict[str, Any]]:
    """Every MESSAGES_TABLE item that carries `phone` (outbound messages), oldest first."""
    return list(
        _query(
            IndexName="by_phone",
            KeyConditionExpression="phone = :phone",
            ExpressionAttributeValues={":phone": {"S": phone}},
        )
    )


def conversation(phone: str) -> list[dict[str, Any]]:
    return list(
        _query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"CONV#{phone}"}},
            ConsistentRead=True,
        )
    )


def auto_reply_counters(phone: str) -> list[dict[str, Any]]:
    return list(
        _query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"AUTOREPLY#{phone}"}},
            ConsistentRead=True,
        )
    )


def delete_message_items(items: Iterable[dict[str, Any]]) -> int:
    """Delete MESSAGES_TABLE items by their pk/sk (BatchWriteItem, 25 a request)."""
    keys = [{"pk": {"S": str(item["pk"])}, "sk": {"S": str(item["sk"])}} for item in items]
    table = settings().messages_table
    dynamodb = client("dynamodb")
    for start in range(0, len(keys), BATCH_WRITE_LIMIT):
        request: dict[str, Any] = {
            table: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + BATCH_WRITE_LIMIT]]
        }
        for attempt in range(MAX_BATCH_ATTEMPTS):
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            if not request:
                break
            clock.sleep(min(0.05 * 2**attempt, 2.0))
        else:
            raise RuntimeError("message deletions stayed throttled; the erasure can be run again")
    return len(keys)


# --- ledger -----------------------------------------------------------------------------------------


def redacted_ledger_item(entry: LedgerEntry, partition: str) -> dict[str, Any]:
    if not entry.redacted:
        raise ValueError("only redacted entries leave the number's partition")
    return {**ledger_item(entry), "phone": {"S": partition}}


def move_ledger_redacted(phone: str, partition: str, at: datetime) -> int:
    """Move the number's ledger, redacted, to `partition`; returns how many entries moved."""
    entries = sorted(ledger_entries(phone), key=lambda entry: entry.seq)
    table = settings().ledger_table
    for start in range(0, len(entries), LEDGER_MOVE_CHUNK):
        actions: list[dict[str, Any]] = []
        for entry in entries[start : start + LEDGER_MOVE_CHUNK]:
            actions.append(
                {
                    "Put": {
                        "TableName": table,
                        "Item": redacted_ledger_item(entry.redact(at), partition),
                        "ConditionExpression": "attribute_not_exists(seq)",
                    }
                }
            )
            actions.append(
                {
                    "Delete": {
                        "TableName": table,
                        "Key": {"phone": {"S": phone}, "seq": {"N": str(entry.seq)}},
                        "ConditionExpression": "attribute_exists(seq)",
                    }
                }
            )
        client("dynamodb").transact_write_items(TransactItems=actions)
    return len(entries)


def erased_ledger(partition: str) -> list[LedgerEntry]:
    """The redacted ledger kept after an erasure, in order."""
    entries: list[LedgerEntry] = []
    kwargs: dict[str, Any] = {
        "TableName": settings().ledger_table,
        "KeyConditionExpression": "phone = :partition",
        "ExpressionAttributeValues": {":partition": {"S": partition}},
        "ConsistentRead": True,
    }
    while True:
        page = client("dynamodb").query(**kwargs)
        for item in page.get("Items", []):
            decoded = codec.from_item(item)
            decoded.update(dict.fromkeys(PERSONAL_FIELDS))  # the key is the erasure's partition, not a phone
            entries.append(LedgerEntry.model_validate(decoded))
        if "LastEvaluatedKey" not in page:
            return entries
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
