"""MESSAGES_TABLE items (pk/sk, TTL on `expires_at`): conversation log, outbound messages,
and the per-number auto-reply counters.

Layouts:
  CONV#<phone>       / <received iso>#<provider id>   inbound text with its classification
  MSG#<message id>   / MSG                            one outbound message and its status
  AUTOREPLY#<phone>  / <hour bucket>                  automatic replies sent in that hour
"""

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from consentry.config import settings
from consentry.domain.messages import InboundMessage
from consentry.store import codec
from consentry.store.aws import client


class OutboundState(StrEnum):
    PENDING = "pending"  # recorded, not yet handed to the provider
    SENDING = "sending"  # reserved by a sender; the provider call may have happened
    SENT = "sent"
    FAILED = "failed"


def _expiry(now: datetime) -> int:
    return int((now + timedelta(days=settings().conversation_retention_days)).timestamp())


def log_inbound(message: InboundMessage, *, intent: str, scope: str | None, matched: str | None) -> None:
    item = {
        "pk": f"CONV#{message.from_number}",
        "sk": f"{message.received_at.isoformat()}#{message.provider_message_id}",
        "kind": "inbound",
        "provider": message.provider,
        "provider_message_id": message.provider_message_id,
        "to_number": message.to_number,
        "body": message.body,
        "intent": intent,
        "scope": scope,
        "matched": matched,
        "received_at": message.received_at.isoformat(),
        "expires_at": _expiry(message.received_at),
    }
    client("dynamodb").put_item(TableName=settings().messages_table, Item=codec.to_item(item))


def record_outbound(*, message_id: str, phone: str, body: str, kind: str, now: datetime) -> bool:
    """Record an outbound message as pending. False if it was recorded before."""
    item = {
        "pk": f"MSG#{message_id}",
        "sk": "MSG",
        "message_id": message_id,
        "phone": phone,
        "body": body,
        "kind": kind,
        "state": OutboundState.PENDING.value,
        "created_at": now.isoformat(),
        "expires_at": _expiry(now),
    }
    try:
        client("dynamodb").put_item(
            TableName=settings().messages_table,
            Item=codec.to_item(item),
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def reserve_outbound(message_id: str) -> bool:
    """Move pending -> sending. Only one caller wins; a loser must not call the provider."""
    return _transition(message_id, OutboundState.PENDING, OutboundState.SENDING, {})


def finish_outbound(message_id: str, state: OutboundState, **details: Any) -> None:
    _transition(message_id, OutboundState.SENDING, state, details)


def release_outbound(message_id: str) -> None:
    """The provider certainly did not take it (throttled): let a retry send it."""
    _transition(message_id, OutboundState.SENDING, OutboundState.PENDING, {})


def _transition(
    message_id: str, expected: OutboundState, new: OutboundState, details: dict[str, Any]
) -> bool:
    fields = {"state": new.value, **details}
    try:
        client("dynamodb").update_item(
            TableName=settings().messages_table,
            Key={"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": "MSG"}},
            UpdateExpression="SET " + ", ".join(f"#{key} = :{key}" for key in fields),
            ConditionExpression="#state = :expected",
            ExpressionAttributeNames={f"#{key}": key for key in fields},
            ExpressionAttributeValues={
                ":expected": {"S": expected.value},
                **{f":{key}": codec.to_value(value) for key, value in fields.items()},
            },
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def outbound(message_id: str) -> dict[str, Any] | None:
    response = client("dynamodb").get_item(
        TableName=settings().messages_table,
        Key={"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": "MSG"}},
        ConsistentRead=True,
    )
    item = response.get("Item")
    return codec.from_item(item) if item else None


def take_auto_reply_slot(phone: str, now: datetime, limit: int) -> bool:
    """Count one automatic reply to `phone` in this hour; False once the hour's limit is reached."""
    bucket = now.strftime("%Y-%m-%dT%H")
    try:
        client("dynamodb").update_item(
            TableName=settings().messages_table,
            Key={"pk": {"S": f"AUTOREPLY#{phone}"}, "sk": {"S": bucket}},
            UpdateExpression="ADD replies :one SET expires_at = :expires",
            ConditionExpression="attribute_not_exists(replies) OR replies < :limit",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":limit": {"N": str(limit)},
                ":expires": {"N": str(int((now + timedelta(days=2)).timestamp()))},
            },
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def conversation(phone: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": settings().messages_table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"CONV#{phone}"}},
    }
    while True:
        page = client("dynamodb").query(**kwargs)
        items.extend(codec.from_item(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
