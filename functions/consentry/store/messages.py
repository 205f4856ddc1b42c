"""MESSAGES_TABLE items (pk/sk, TTL on `expires_at`): conversation log, outbound messages,
and the per-number auto-reply counters.

Layouts:
  CONV#<phone>       / <received iso>#<provider id>   inbound text with its classification
  MSG#<message id>   / MSG                            one outbound message and its status
  AUTOREPLY#<phone>  / <hour bucket>                  automatic replies sent in that hour
  ORPHAN#<provider>:<provider id> / RECEIPT#<status>  a receipt for no message we know (TTL)
  AWAIT#<phone>      / <message id>                   a reminder waiting for a one-digit reply:
                                                      options M {"1": "confirm", ...}, topic,
                                                      sent_at (ISO), expires_at (TTL, 48 h)

Campaign and transactional sends write their MSG# items through store/sends.py, which lists
the attributes they carry (kind, campaign_id, idempotency_key, topic, state, segments, ...).

Receipts add to MSG# items: status (queued < sent < unknown < delivered|failed, only ever
raised), status_at (event time ISO), status_reason, status_error_code, receipt_id,
receipt_provider, receipt_updated_at, delivered_at, status_before (the status the last raise
replaced) and receipt_attempt (random per status write: when the SDK sends a write that landed
again, its failed condition shows our own attempt, so the raise is still ours to count once).
"""

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from botocore.exceptions import ClientError

from consentry.config import settings
from consentry.domain.messages import DeliveryReceipt, DeliveryStatus, InboundMessage
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


def record_outbound(
    *, message_id: str, phone: str, body: str, kind: str, now: datetime, claim: bool = False
) -> bool:
    """Record an outbound message as pending, or as sending when `claim`ed for sending right away
    (one write instead of two). False if it was recorded before."""
    item = {
        "pk": f"MSG#{message_id}",
        "sk": "MSG",
        "message_id": message_id,
        "phone": phone,
        "body": body,
        "kind": kind,
        "state": (OutboundState.SENDING if claim else OutboundState.PENDING).value,
        "created_at": now.isoformat(),
        "expires_at": _expiry(now),
    }
    return _put_new(item)


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


# --- delivery receipts -------------------------------------------------------------------------

#: The order a message's delivery status moves in. A receipt only ever raises it (a late "sent"
#: never overwrites "delivered"); delivered and failed are final. "unknown" is the provider giving
#: up on a final carrier report, which a late final report may still replace.
STATUS_RANK: dict[DeliveryStatus, int] = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.UNKNOWN: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.FAILED: 3,
}


class StatusChange(StrEnum):
    APPLIED = "applied"  # the status moved forward
    STALE = "stale"  # a duplicate, or older news than what the message already has
    UNKNOWN_MESSAGE = "unknown_message"  # no MSG# item with that id


def record_delivery_status(
    receipt: DeliveryReceipt, *, now: datetime
) -> tuple[StatusChange, dict[str, Any] | None]:
    """Move the message's status forward to the receipt's, in one conditional write.

    Returns what happened and the message item as it was before (None if there is none), so
    the caller needs no read: sent_at, phone and campaign_id come back with the write.
    """
    if not receipt.message_id:
        return StatusChange.UNKNOWN_MESSAGE, None
    fields: dict[str, Any] = {
        "status": receipt.status.value,
        "status_at": receipt.occurred_at.isoformat(),
        "receipt_id": receipt.provider_message_id,
        "receipt_provider": receipt.provider,
        "receipt_updated_at": now.isoformat(),
    }
    if receipt.reason:
        fields["status_reason"] = receipt.reason
    if receipt.error_code:
        fields["status_error_code"] = receipt.error_code
    if receipt.status is DeliveryStatus.DELIVERED:
        fields["delivered_at"] = receipt.occurred_at.isoformat()
    lower = [status for status, rank in STATUS_RANK.items() if rank < STATUS_RANK[receipt.status]]
    allowed = "attribute_not_exists(#status)"
    if lower:
        allowed += f" OR #status IN ({', '.join(f':lower{index}' for index in range(len(lower)))})"
    fields["receipt_attempt"] = attempt = uuid.uuid4().hex[:16]
    values = {f":{key}": codec.to_value(value) for key, value in fields.items()}
    values.update({f":lower{index}": {"S": status.value} for index, status in enumerate(lower)})
    values[":no_status"] = {"S": ""}
    try:
        response = client("dynamodb").update_item(
            TableName=settings().messages_table,
            Key={"pk": {"S": f"MSG#{receipt.message_id}"}, "sk": {"S": "MSG"}},
            UpdateExpression="SET "
            + ", ".join(f"#{key} = :{key}" for key in fields)
            + ", #status_before = if_not_exists(#status, :no_status)",
            ConditionExpression=f"attribute_exists(pk) AND ({allowed})",
            ExpressionAttributeNames={
                **{f"#{key}": key for key in fields},
                "#status_before": "status_before",
            },
            ExpressionAttributeValues=values,
            ReturnValues="ALL_OLD",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        # ReturnValuesOnConditionCheckFailure puts the item here (not in botocore's typed shape).
        item: Mapping[str, Any] | None = cast(Mapping[str, Any], exc.response).get("Item")
        if not item:
            return StatusChange.UNKNOWN_MESSAGE, None
        found = codec.from_item(item)
        if found.get("receipt_attempt") == attempt:
            # This very write landed and the SDK sent it again (its answer was lost): applied,
            # and the message as it was before is the one our write replaced.
            return StatusChange.APPLIED, {**found, "status": found.get("status_before") or None}
        return StatusChange.STALE, found
    return StatusChange.APPLIED, codec.from_item(response.get("Attributes", {}))


def record_orphan_receipt(receipt: DeliveryReceipt, *, now: datetime) -> bool:
    """Keep a receipt for a message we do not know (expires with the conversation retention).

    True the first time this provider message reports this status; a duplicate is not kept twice.
    """
    item = {
        "pk": f"ORPHAN#{receipt.provider}:{receipt.provider_message_id}",
        "sk": f"RECEIPT#{receipt.status.value}",
        "provider": receipt.provider,
        "provider_message_id": receipt.provider_message_id,
        "message_id": receipt.message_id,
        "campaign_id": receipt.campaign_id,
        "status": receipt.status.value,
        "status_reason": receipt.reason,
        "status_error_code": receipt.error_code,
        "occurred_at": receipt.occurred_at.isoformat(),
        "received_at": now.isoformat(),
        "to_number": receipt.to_number,
        "expires_at": _expiry(now),
    }
    return _put_new(item)


def orphan_receipts(provider: str, provider_message_id: str) -> list[dict[str, Any]]:
    response = client("dynamodb").query(
        TableName=settings().messages_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"ORPHAN#{provider}:{provider_message_id}"}},
        ConsistentRead=True,
    )
    return [codec.from_item(item) for item in response.get("Items", [])]


def recent_outbound(phone: str, limit: int) -> list[dict[str, Any]]:
    """The newest outbound messages to `phone` (index by_phone, newest first; eventually consistent)."""
    response = client("dynamodb").query(
        TableName=settings().messages_table,
        IndexName="by_phone",
        KeyConditionExpression="phone = :phone",
        ExpressionAttributeValues={":phone": {"S": phone}},
        ScanIndexForward=False,
        Limit=limit,
    )
    items = [codec.from_item(item) for item in response.get("Items", [])]
    return [item for item in items if str(item.get("pk", "")).startswith("MSG#")]


# --- replies awaited by transactional messages -------------------------------------------------

#: How long a reminder's reply options stay open.
AWAIT_REPLY_HOURS = 48


def await_reply(
    phone: str, message_id: str, *, topic: str, options: Mapping[str, str], sent_at: datetime
) -> None:
    """Remember that `message_id` asked `phone` for a one-digit reply (options: digit -> action)."""
    item = {
        "pk": f"AWAIT#{phone}",
        "sk": message_id,
        "message_id": message_id,
        "topic": topic,
        "options": dict(options),
        "sent_at": sent_at.isoformat(),
        "expires_at": int((sent_at + timedelta(hours=AWAIT_REPLY_HOURS)).timestamp()),
    }
    client("dynamodb").put_item(TableName=settings().messages_table, Item=codec.to_item(item))


def awaited_replies(phone: str, now: datetime) -> list[dict[str, Any]]:
    """The reply options still open for `phone`, newest first (TTL deletes late, so expiry is checked)."""
    response = client("dynamodb").query(
        TableName=settings().messages_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"AWAIT#{phone}"}},
        ConsistentRead=True,
    )
    items = [codec.from_item(item) for item in response.get("Items", [])]
    open_items = [item for item in items if int(item.get("expires_at", 0)) > now.timestamp()]
    return sorted(open_items, key=lambda item: str(item.get("sent_at", "")), reverse=True)


def _put_new(item: dict[str, Any]) -> bool:
    """Write `item` unless its key exists; False when it did (an earlier delivery wrote it).

    `put_attempt` (random per call) tells this write, sent again by the SDK after it landed (its
    answer lost), from an earlier delivery's: the first is still ours (True).
    """
    attempt = uuid.uuid4().hex[:16]
    try:
        client("dynamodb").put_item(
            TableName=settings().messages_table,
            Item=codec.to_item({**item, "put_attempt": attempt}),
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            found: Mapping[str, Any] = cast(Mapping[str, Any], exc.response).get("Item") or {}
            return bool(found.get("put_attempt", {}).get("S") == attempt)
        raise
    return True
