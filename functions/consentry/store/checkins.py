"""Where the re-permission check-in scan stopped, so the next run resumes there.

Layout (MESSAGES_TABLE):
  CHECKIN#scan / cursor    `start_key` S (the contacts scan's LastEvaluatedKey, DynamoDB JSON),
                           `saved_at` S, `expires_at` N (TTL: a stale cursor is forgotten)
"""

import json
from datetime import datetime, timedelta
from typing import Any

from consentry.config import settings
from consentry.store.aws import client

_KEY = {"pk": {"S": "CHECKIN#scan"}, "sk": {"S": "cursor"}}
CURSOR_KEPT = timedelta(days=7)


def load_cursor() -> dict[str, Any] | None:
    item = (
        client("dynamodb")
        .get_item(TableName=settings().messages_table, Key=_KEY, ConsistentRead=True)
        .get("Item")
    )
    if not item or "start_key" not in item:
        return None
    cursor: dict[str, Any] = json.loads(item["start_key"]["S"])
    return cursor


def save_cursor(start_key: dict[str, Any] | None, now: datetime) -> None:
    """Remember where to resume (None: the scan finished, start from the beginning next time)."""
    if start_key is None:
        client("dynamodb").delete_item(TableName=settings().messages_table, Key=_KEY)
        return
    client("dynamodb").put_item(
        TableName=settings().messages_table,
        Item={
            **_KEY,
            "start_key": {"S": json.dumps(start_key, sort_keys=True)},
            "saved_at": {"S": now.isoformat()},
            "expires_at": {"N": str(int((now + CURSOR_KEPT).timestamp()))},
        },
    )
