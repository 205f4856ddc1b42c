"""Fixed-window request counters in MESSAGES_TABLE, expired by TTL.

Layout:
  RATE#<scope>#<hashed key>  / <window start, epoch seconds>   `hits` N, `expires_at` N (TTL)

One conditional ADD per request both counts and decides, so concurrent requests cannot
overshoot the limit. Keys (an IP address, a phone number) are stored hashed: the counters
exist to stop abuse, not to keep a record of who asked.
"""

import hashlib
from datetime import datetime

from botocore.exceptions import ClientError

from consentry.config import settings
from consentry.store.aws import client

#: Counters outlive their window by this much so TTL deletion lag never resets one early.
_EXPIRY_SLACK_SECONDS = 3600


def counter_key(scope: str, key: str, window_seconds: int, now: datetime) -> tuple[str, str]:
    """The (pk, sk) of the counter `key` falls in at `now`."""
    digest = hashlib.sha256(f"{scope}:{key}".encode()).hexdigest()[:32]
    window_start = int(now.timestamp()) // window_seconds * window_seconds
    return f"RATE#{scope}#{digest}", str(window_start)


def take(scope: str, key: str, *, limit: int, window_seconds: int, now: datetime) -> bool:
    """Count one hit for `key` in the current window; False (and not counted) once `limit` is reached."""
    if limit < 1 or window_seconds < 1:
        raise ValueError("limit and window must be positive")
    pk, sk = counter_key(scope, key, window_seconds, now)
    expires = int(sk) + window_seconds + _EXPIRY_SLACK_SECONDS
    try:
        client("dynamodb").update_item(
            TableName=settings().messages_table,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            UpdateExpression="ADD hits :one SET expires_at = :expires",
            ConditionExpression="attribute_not_exists(hits) OR hits < :limit",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":limit": {"N": str(limit)},
                ":expires": {"N": str(expires)},
            },
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True
