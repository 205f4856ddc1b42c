"""The erasure suppression list (SUPPRESSION_TABLE, key `phone_hash`).

Item attributes:
  phone_hash          S   salted SHA-256 of the E.164 number (domain.phone.salted_hash); never the number
  erased_at           S   ISO time of the latest erasure
  erasures            N   how many times the number was erased
  ledger_keys         L   LedgerTable partition keys holding the redacted ledger of each erasure
  pending_ledger_key  S   the partition the erasure in progress moves the ledger to (retries reuse it)

The salt is a secret (SUPPRESSION_SALT_PARAM): without it the hashes cannot be matched against
a list of numbers, and the same salt must stay in place for the list to keep matching.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from consentry import clock
from consentry.config import settings
from consentry.domain.phone import salted_hash
from consentry.providers.signatures import load_secret
from consentry.store import codec
from consentry.store.aws import client

BATCH_GET_LIMIT = 100
MAX_BATCH_ATTEMPTS = 8


def phone_hash(phone: str) -> str:
    return salted_hash(phone, load_secret(settings().suppression_salt_param))


def begin_erasure(hashed: str, at: datetime) -> str:
    """Put the number on the list as of `at`; returns the ledger partition for this erasure.

    A retried erasure that did not finish gets the partition its first attempt chose, so a
    ledger moved in several transactions ends up in one place.
    """
    proposed = f"ERASED#{hashed}#{at.strftime('%Y%m%dT%H%M%S%fZ')}"
    response = client("dynamodb").update_item(
        TableName=settings().suppression_table,
        Key={"phone_hash": {"S": hashed}},
        UpdateExpression="SET erased_at = :at, pending_ledger_key = if_not_exists(pending_ledger_key, :key)",
        ExpressionAttributeValues={":at": {"S": at.isoformat()}, ":key": {"S": proposed}},
        ReturnValues="ALL_NEW",
    )
    return str(response["Attributes"]["pending_ledger_key"]["S"])


def finish_erasure(hashed: str, ledger_key: str) -> None:
    """Close the erasure: count it and remember where its redacted ledger lives (once)."""
    try:
        client("dynamodb").update_item(
            TableName=settings().suppression_table,
            Key={"phone_hash": {"S": hashed}},
            UpdateExpression=(
                "SET ledger_keys = list_append(if_not_exists(ledger_keys, :empty), :key_list) "
                "ADD erasures :one REMOVE pending_ledger_key"
            ),
            ConditionExpression="pending_ledger_key = :key",
            ExpressionAttributeValues={
                ":key": {"S": ledger_key},
                ":key_list": {"L": [{"S": ledger_key}]},
                ":empty": {"L": []},
                ":one": {"N": "1"},
            },
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        # Already finished by an earlier attempt: nothing to record twice.


def entry(hashed: str) -> dict[str, Any] | None:
    response = client("dynamodb").get_item(
        TableName=settings().suppression_table, Key={"phone_hash": {"S": hashed}}, ConsistentRead=True
    )
    item = response.get("Item")
    return codec.from_item(item) if item else None


def erased_at(phone: str) -> datetime | None:
    found = entry(phone_hash(phone))
    return datetime.fromisoformat(found["erased_at"]) if found else None


def erased_numbers(phones: Iterable[str]) -> dict[str, datetime]:
    """Which of `phones` are on the list, and since when (BatchGetItem, 100 keys a request)."""
    by_hash = {phone_hash(phone): phone for phone in set(phones)}
    found: dict[str, datetime] = {}
    hashes = list(by_hash)
    dynamodb = client("dynamodb")
    table = settings().suppression_table
    for start in range(0, len(hashes), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table: {
                "Keys": [{"phone_hash": {"S": hashed}} for hashed in hashes[start : start + BATCH_GET_LIMIT]],
                "ConsistentRead": True,
                "ProjectionExpression": "phone_hash, erased_at",
            }
        }
        for attempt in range(MAX_BATCH_ATTEMPTS):
            response = dynamodb.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                decoded = codec.from_item(item)
                found[by_hash[decoded["phone_hash"]]] = datetime.fromisoformat(decoded["erased_at"])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            clock.sleep(min(0.05 * 2**attempt, 2.0))  # throttled: back off before asking again
        else:
            raise RuntimeError("suppression list lookups stayed throttled; the import page is retried")
    return found
