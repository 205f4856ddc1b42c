"""What sending writes: reservations on contact items, message records, chunk results, rate counters.

Reservation (CONTACTS_TABLE, the contact item; attribute names as in store/contacts.py)
  sends.<send key> = {at (epoch s), topic, message_class, message_id, state, attempt, chunk_id?}
  One conditional UpdateItem per recipient reserves a send:
    SET sends = <the map read, pruned to `keep`, plus the new entry>, version = version + 1
    IF  version = <version read> AND NOT opted_out = true AND topics.<topic>.status = active
        AND attribute_not_exists(sends.<send key>)
  Every consent change bumps `version` (store/contacts.py), so a STOP committed after the
  sender's read makes the reservation fail; the failed write returns the item as it is now
  (ReturnValuesOnConditionCheckFailure) and the sender evaluates the gate again on it. A STOP
  that commits before the reservation always wins. Bumping `version` here too makes two
  campaigns racing for the same contact serialise, so caps counted on the read hold.
  States on the contact: "reserved" (written by the reservation and left so: whether it went out
  is the message record's business, which saves a write per message), "failed" (the provider
  refused it for good). A reservation that certainly did not go out (throttled) is removed.
  A "reserved" entry without a message record after the sender's lease means the sender died
  between the provider call and the record: the send is ambiguous.
  `attempt` is random per reservation write. The SDK repeats a request whose answer was lost
  (a timeout, a 5xx, a throttle reported after the fact), so a reservation that landed can come
  back as a failed condition on its own entry: the entry's `attempt` tells that write (reserved)
  from another copy of the same chunk that reserved first (not ours to send).

Message records (MESSAGES_TABLE, pk MSG#<message id>, sk MSG; store/messages.py lists the table)
  message_id, phone, kind (campaign|transactional), campaign_id?, idempotency_key?, topic,
  message_class, state (sent|failed|unknown: the send's outcome, final), status (delivery status:
  starts "sent", then receipts raise it monotonically), provider_message_id?, error_code?,
  reason?, sent_at and created_at (ISO, equal; the by_phone index sorts on created_at),
  segments, encoding, body, expires_at (TTL).
  Campaign records are written with BatchWriteItem (25 per request) at most 25 sends after the
  provider accepted them (and when the chunk ends), so a delivery receipt can arrive before its
  record exists. Receipts never create the record (this batch write would overwrite it): a young
  one is refused so its event is retried (services/receipts.py ReceiptBeforeRecord), an old one
  is kept as an ORPHAN# item (store/messages.py).

Chunk results (CAMPAIGNS_TABLE, pk CAMPAIGN#<campaign id>, sk CHUNK#<chunk id>)
  counts (M: sent, unknown, segments, suppressed.<reason>, failed.<reason>, deferred), recipients
  (N: recipients that reached a terminal state in this chunk), completed_at (ISO), attempt (S:
  random per write, so a transaction the SDK sent again after it landed is known as this one).
  Written once, with attribute_not_exists (in one transaction with the ADD of `recipients` to
  the chunk's run item, store/fanout.py RUN#), when every recipient of the chunk has a terminal
  state (deferred ones were parked as a new chunk, which has its own result). That single
  conditional put is what makes the campaign's send counts exactly-once: a retried or
  redelivered chunk recounts its recipients from the reservations and message records, and
  whichever attempt writes the result first is the only one counted. `chunk_totals` sums them.

Rate counters (CAMPAIGNS_TABLE, pk RATE#<scope>, sk <epoch second>; scope: the origination
identity)
  used (N: sends of that second), campaign:<id> (N: that campaign's sends of that second),
  expires_at (TTL, an hour later). Senders take tokens in blocks with one conditional ADD on
  every counter that applies (used + n <= limit AND campaign:<id> + n <= its limit): one write
  per block of messages, not one per message.
"""

import hashlib
import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from consentry import clock
from consentry.config import settings
from consentry.domain import caps
from consentry.domain.chunks import run_of_chunk
from consentry.domain.contact import Contact
from consentry.domain.messages import MessageClass
from consentry.store import codec
from consentry.store import fanout as fanout_store
from consentry.store.aws import client
from consentry.store.contacts import record_from_item

#: DynamoDB's limits per BatchGetItem and BatchWriteItem request.
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
#: Attempts at a batch's unprocessed remainder before giving up (the caller's retry covers it).
BATCH_ATTEMPTS = 8
RATE_ITEM_SECONDS = 3600

RESERVED = "reserved"
FAILED = "failed"

MessageState = Literal["sent", "failed", "unknown"]


class IncompleteBatch(Exception):
    """DynamoDB kept returning unprocessed items: the caller retries the whole unit of work."""


def _conditional_failed(exc: ClientError) -> bool:
    return bool(exc.response["Error"]["Code"] == "ConditionalCheckFailedException")


def _returned_item(exc: ClientError) -> dict[str, Any] | None:
    """The item a failed conditional write returned (ReturnValuesOnConditionCheckFailure=ALL_OLD)."""
    response: Mapping[str, Any] = exc.response
    item = response.get("Item")
    return item if isinstance(item, dict) else None


def _backoff(attempt: int) -> None:
    clock.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))


#: Errors that say DynamoDB did not apply the request (it refused it for its rate).
THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)


def throttled(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] in THROTTLING_CODES


# --- message ids ---------------------------------------------------------------------------


def campaign_message_id(campaign_id: str, phone: str) -> str:
    """The one message id a campaign can have for a number: a retried chunk finds its record."""
    return "m_" + hashlib.sha256(f"{campaign_id}\n{phone}".encode()).hexdigest()[:32]


def keyed_message_id(idempotency_key: str) -> str:
    """The message id of a transactional send, from the caller's idempotency key."""
    return "t_" + hashlib.sha256(f"idempotency\n{idempotency_key}".encode()).hexdigest()[:32]


# --- contacts ------------------------------------------------------------------------------


def read_contacts(phones: Sequence[str]) -> dict[str, Contact]:
    """Strongly consistent reads of up to 100 contacts in one BatchGetItem (more only for leftovers)."""
    if len(phones) > BATCH_GET_LIMIT:
        raise ValueError(f"at most {BATCH_GET_LIMIT} contacts per read")
    table = settings().contacts_table
    found: dict[str, Contact] = {}
    request: dict[str, Any] = {
        table: {"Keys": [{"phone": {"S": phone}} for phone in dict.fromkeys(phones)], "ConsistentRead": True}
    }
    for attempt in range(BATCH_ATTEMPTS):
        if not request:
            return found
        if attempt:
            _backoff(attempt)
        response = client("dynamodb").batch_get_item(RequestItems=request)
        for item in response.get("Responses", {}).get(table, []):
            contact = record_from_item(codec.from_item(item))
            found[contact.phone] = contact
        request = response.get("UnprocessedKeys") or {}
    if request:
        raise IncompleteBatch("contacts left unread after retries")
    return found


class Reservation(BaseModel):
    """The outcome of a reservation write: reserved, or the contact as it is now (None: gone)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    reserved: bool
    current: Contact | None = None


def send_entry(
    *,
    at: datetime,
    topic: str,
    message_class: MessageClass,
    message_id: str,
    chunk_id: str | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "at": int(at.timestamp()),
        "topic": topic,
        "message_class": message_class,
        "message_id": message_id,
        "state": RESERVED,
        "attempt": uuid.uuid4().hex[:16],  # tells this write from any other (module doc)
    }
    if chunk_id is not None:
        entry["chunk_id"] = chunk_id
    return entry


def reserve(
    contact: Contact,
    send_key: str,
    entry: Mapping[str, Any],
    *,
    keep: timedelta,
    now: datetime,
    renew: bool = False,
) -> Reservation:
    """Reserve `send_key` on the contact read as `contact`, if nothing changed since (module doc).

    `renew` re-reserves the caller's own earlier entry (same message id) instead of requiring
    none: a transactional send whose first attempt's outcome is unknown may go again.
    """
    sends = caps.prune(contact.sends, now, keep)
    sends[send_key] = dict(entry)
    names = {
        "#sends": "sends",
        "#version": "version",
        "#opted_out": "opted_out",
        "#topics": "topics",
        "#topic": str(entry["topic"]),
        "#status": "status",
        "#key": send_key,
    }
    values: dict[str, Any] = {
        ":sends": codec.to_value(sends),
        ":next": {"N": str(contact.version + 1)},
        ":true": {"BOOL": True},
        ":active": {"S": "active"},
    }
    if contact.version:
        version_condition = "#version = :read"
        values[":read"] = {"N": str(contact.version)}
    else:
        version_condition = "attribute_not_exists(#version)"
    if renew:
        names["#message_id"] = "message_id"
        values[":message_id"] = {"S": str(entry["message_id"])}
        own_condition = "#sends.#key.#message_id = :message_id"
    else:
        own_condition = "attribute_not_exists(#sends.#key)"
    try:
        client("dynamodb").update_item(
            TableName=settings().contacts_table,
            Key={"phone": {"S": contact.phone}},
            UpdateExpression="SET #sends = :sends, #version = :next",
            ConditionExpression=(
                f"attribute_exists(phone) AND {version_condition} AND NOT #opted_out = :true"
                f" AND #topics.#topic.#status = :active AND {own_condition}"
            ),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if not _conditional_failed(exc):
            raise
        item = _returned_item(exc)
        current = record_from_item(codec.from_item(item)) if item else None
        if current is not None and _own_entry(current.sends.get(send_key), entry):
            # This very write landed and the SDK sent it again (the first answer was lost).
            return Reservation(reserved=True)
        return Reservation(reserved=False, current=current)
    return Reservation(reserved=True)


def _own_entry(found: Mapping[str, Any] | None, written: Mapping[str, Any]) -> bool:
    return (
        found is not None
        and "attempt" in written
        and found.get("attempt") == written["attempt"]
        and found.get("message_id") == written["message_id"]
    )


def _update_own_entry(
    phone: str, send_key: str, message_id: str, update: str, values: dict[str, Any]
) -> bool:
    """Change our own entry (guarded by its message id), bumping the version so that a writer who
    read the contact before cannot put the old entry back with its whole-map rewrite.

    Throttling that outlasted the SDK's retries is retried here: the provider's answer is already
    known, and leaving the entry "reserved" would make a retried chunk count it as ambiguous.
    """
    for attempt in range(BATCH_ATTEMPTS):
        try:
            return _write_own_entry(phone, send_key, message_id, update, values)
        except ClientError as exc:
            if not throttled(exc) or attempt == BATCH_ATTEMPTS - 1:
                raise
            _backoff(attempt)
    return False  # not reached: the last attempt returns or raises


def _write_own_entry(phone: str, send_key: str, message_id: str, update: str, values: dict[str, Any]) -> bool:
    try:
        client("dynamodb").update_item(
            TableName=settings().contacts_table,
            Key={"phone": {"S": phone}},
            UpdateExpression=update + " ADD #version :one",
            ConditionExpression="#sends.#key.#message_id = :message_id",
            ExpressionAttributeNames={
                "#sends": "sends",
                "#key": send_key,
                "#message_id": "message_id",
                "#version": "version",
                **({"#state": "state"} if ":state" in values else {}),
                **({"#undeliverable": "undeliverable"} if ":undeliverable" in values else {}),
            },
            ExpressionAttributeValues={":message_id": {"S": message_id}, ":one": {"N": "1"}, **values},
        )
    except ClientError as exc:
        if _conditional_failed(exc):
            return False
        raise
    return True


def release(phone: str, send_key: str, message_id: str) -> bool:
    """Give a reservation back: the provider certainly did not take the message."""
    return _update_own_entry(phone, send_key, message_id, "REMOVE #sends.#key", {})


def mark_failed(
    phone: str, send_key: str, message_id: str, *, undeliverable: Mapping[str, Any] | None = None
) -> bool:
    """The provider refused the send for good; with `undeliverable` the number is marked dead too."""
    values: dict[str, Any] = {":state": {"S": FAILED}}
    update = "SET #sends.#key.#state = :state"
    if undeliverable is not None:
        values[":undeliverable"] = codec.to_value(dict(undeliverable))
        update += ", #undeliverable = :undeliverable"
    return _update_own_entry(phone, send_key, message_id, update, values)


# --- message records -----------------------------------------------------------------------


class MessageRecord(BaseModel):
    """One outbound campaign or transactional message (layout in the module docstring)."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    phone: str
    kind: Literal["campaign", "transactional"]
    topic: str
    message_class: MessageClass
    state: MessageState
    status: str
    sent_at: datetime
    segments: int
    encoding: str
    body: str
    campaign_id: str | None = None
    idempotency_key: str | None = None
    provider_message_id: str | None = None
    error_code: str | None = None
    reason: str | None = None

    def to_item(self) -> dict[str, Any]:
        values = self.model_dump(mode="json")
        values["created_at"] = values["sent_at"]
        values["expires_at"] = int(
            (self.sent_at + timedelta(days=settings().conversation_retention_days)).timestamp()
        )
        return {"pk": {"S": f"MSG#{self.message_id}"}, "sk": {"S": "MSG"}, **codec.to_item(values)}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> "MessageRecord":
        values = codec.from_item(item)
        return cls.model_validate({name: values[name] for name in cls.model_fields if name in values})


def put_message_records(records: Sequence[MessageRecord]) -> None:
    """Write records with BatchWriteItem, 25 per request, retrying what DynamoDB left unprocessed."""
    table = settings().messages_table
    for start in range(0, len(records), BATCH_WRITE_LIMIT):
        pending: list[dict[str, Any]] = [
            {"PutRequest": {"Item": record.to_item()}}
            for record in records[start : start + BATCH_WRITE_LIMIT]
        ]
        for attempt in range(BATCH_ATTEMPTS):
            if attempt:
                _backoff(attempt)
            response = client("dynamodb").batch_write_item(RequestItems={table: pending})
            pending = (response.get("UnprocessedItems") or {}).get(table, [])
            if not pending:
                break
        if pending:
            raise IncompleteBatch(f"{len(pending)} message records left unwritten after retries")


def put_message_record(record: MessageRecord) -> None:
    client("dynamodb").put_item(TableName=settings().messages_table, Item=record.to_item())


def message_records(message_ids: Iterable[str]) -> dict[str, MessageRecord]:
    """Strongly consistent reads of message records by id (100 per request)."""
    table = settings().messages_table
    ids = list(dict.fromkeys(message_ids))
    found: dict[str, MessageRecord] = {}
    for start in range(0, len(ids), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table: {
                "Keys": [
                    {"pk": {"S": f"MSG#{mid}"}, "sk": {"S": "MSG"}}
                    for mid in ids[start : start + BATCH_GET_LIMIT]
                ],
                "ConsistentRead": True,
            }
        }
        for attempt in range(BATCH_ATTEMPTS):
            if not request:
                break
            if attempt:
                _backoff(attempt)
            response = client("dynamodb").batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                record = MessageRecord.from_item(item)
                found[record.message_id] = record
            request = response.get("UnprocessedKeys") or {}
        if request:
            raise IncompleteBatch("message records left unread after retries")
    return found


def message_record(message_id: str) -> MessageRecord | None:
    response = client("dynamodb").get_item(
        TableName=settings().messages_table,
        Key={"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": "MSG"}},
        ConsistentRead=True,
    )
    item = response.get("Item")
    return MessageRecord.from_item(item) if item else None


# --- chunk results ---------------------------------------------------------------------------


def _chunk_key(campaign_id: str, chunk_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"CAMPAIGN#{campaign_id}"}, "sk": {"S": f"CHUNK#{chunk_id}"}}


def chunk_completed(campaign_id: str, chunk_id: str) -> bool:
    response = client("dynamodb").get_item(
        TableName=settings().campaigns_table,
        Key=_chunk_key(campaign_id, chunk_id),
        ConsistentRead=True,
        ProjectionExpression="pk",
    )
    return "Item" in response


def _chunk_attempt(campaign_id: str, chunk_id: str) -> str | None:
    response = client("dynamodb").get_item(
        TableName=settings().campaigns_table,
        Key=_chunk_key(campaign_id, chunk_id),
        ConsistentRead=True,
        ProjectionExpression="attempt",
    )
    value = response.get("Item", {}).get("attempt", {}).get("S")
    return value if isinstance(value, str) else None


def complete_chunk(
    campaign_id: str, chunk_id: str, counts: Mapping[str, int], *, recipients: int, now: datetime
) -> bool:
    """Record the chunk's result once. False if an earlier attempt already did (count nothing)."""
    item = {
        **_chunk_key(campaign_id, chunk_id),
        **codec.to_item(
            {
                "counts": {name: value for name, value in counts.items() if value},
                "recipients": recipients,
                "completed_at": now.isoformat(),
                "attempt": uuid.uuid4().hex[:16],
            }
        ),
    }
    put = {
        "TableName": settings().campaigns_table,
        "Item": item,
        "ConditionExpression": "attribute_not_exists(pk)",
    }
    # The same transaction counts the chunk's terminal recipients on its run (store/fanout.py
    # RUN#): exactly once, so the run's completion check can trust the tally.
    done = fanout_store.run_done_update(campaign_id, run_of_chunk(chunk_id), recipients)
    for attempt in range(BATCH_ATTEMPTS):
        try:
            client("dynamodb").transact_write_items(TransactItems=[{"Put": put}, {"Update": done}])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = fanout_store.cancellation_reasons(exc)
            if reasons and reasons[0] == "ConditionalCheckFailed":
                # Ours if this very transaction landed and the SDK sent it again (answer lost).
                return _chunk_attempt(campaign_id, chunk_id) == str(item["attempt"]["S"])
            if "TransactionConflict" not in reasons or attempt == BATCH_ATTEMPTS - 1:
                raise
            _backoff(attempt)  # another chunk of the run was counted at the same moment
            continue
        return True
    return False  # not reached: the last attempt returns or raises


def chunk_totals(campaign_id: str) -> dict[str, int]:
    """The campaign's send-side counts: the sum of its chunk results."""
    totals: dict[str, int] = {}
    request: dict[str, Any] = {
        "TableName": settings().campaigns_table,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :chunk)",
        "ExpressionAttributeValues": {":pk": {"S": f"CAMPAIGN#{campaign_id}"}, ":chunk": {"S": "CHUNK#"}},
        "ProjectionExpression": "#counts, recipients",
        "ExpressionAttributeNames": {"#counts": "counts"},
        "ConsistentRead": True,
    }
    while True:
        page = client("dynamodb").query(**request)
        for item in page.get("Items", []):
            values = codec.from_item(item)
            for name, value in values.get("counts", {}).items():
                totals[name] = totals.get(name, 0) + int(value)
            totals["recipients"] = totals.get("recipients", 0) + int(values.get("recipients", 0))
        if "LastEvaluatedKey" not in page:
            return totals
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- rate counters ---------------------------------------------------------------------------


def _rate_key(scope: str, second: int) -> dict[str, Any]:
    return {"pk": {"S": f"RATE#{scope}"}, "sk": {"S": str(second)}}


def take_tokens(scope: str, second: int, wanted: int, limits: Mapping[str, int]) -> int:
    """Take up to `wanted` sends of one second from every counter in `limits` (attribute -> limit,
    all on the scope's item for that second); returns how many were granted (0..wanted).

    One conditional ADD for the whole block and every counter (the origination identity's
    `used`, and a campaign's own, say); when fewer are left, the failed write returns the item,
    so one more write takes what is left.
    """
    if wanted < 1 or not limits or min(limits.values()) < 1:
        return 0
    counters = list(limits.items())
    names = {f"#c{index}": name for index, (name, _limit) in enumerate(counters)}
    ask = min(wanted, *limits.values())
    for _attempt in range(3):
        values: dict[str, Any] = {":n": {"N": str(ask)}, ":expires": {"N": str(second + RATE_ITEM_SECONDS)}}
        conditions = []
        for index, (_name, limit) in enumerate(counters):
            values[f":room{index}"] = {"N": str(limit - ask)}
            conditions.append(f"(attribute_not_exists(#c{index}) OR #c{index} <= :room{index})")
        try:
            client("dynamodb").update_item(
                TableName=settings().campaigns_table,
                Key=_rate_key(scope, second),
                UpdateExpression="ADD "
                + ", ".join(f"{alias} :n" for alias in names)
                + " SET expires_at = if_not_exists(expires_at, :expires)",
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            item = _returned_item(exc) or {}
            left = [limit - int((item.get(name) or {}).get("N", limit)) for name, limit in counters]
            ask = min(wanted, *left)
            if ask < 1:
                return 0
            continue
        return ask
    return 0


def give_back_tokens(scope: str, second: int, count: int, counters: Iterable[str]) -> None:
    """Return tokens taken but not used, so concurrent senders can use this second's budget."""
    names = {f"#c{index}": name for index, name in enumerate(counters)}
    if count < 1 or not names:
        return
    client("dynamodb").update_item(
        TableName=settings().campaigns_table,
        Key=_rate_key(scope, second),
        UpdateExpression="ADD " + ", ".join(f"{alias} :n" for alias in names),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues={":n": {"N": str(-count)}},
    )


# --- the send queue --------------------------------------------------------------------------


def delay_message(queue_url: str, receipt_handle: str, seconds: int) -> None:
    """Make a received message visible again after `seconds` (the rest of a chunk, later)."""
    client("sqs").change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=max(0, min(seconds, 43_200))
    )
