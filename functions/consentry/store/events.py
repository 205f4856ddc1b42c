"""Publishing domain events on the stack's EventBridge bus (source "consentry")."""

import json
from collections.abc import Mapping
from typing import Any

from consentry.config import settings
from consentry.store.aws import client

SOURCE = "consentry"


def publish(detail_type: str, detail: Mapping[str, Any]) -> None:
    """One event; raises if EventBridge did not take it, so the caller's retry covers it."""
    response = client("events").put_events(
        Entries=[
            {
                "Source": SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, default=str),
                "EventBusName": settings().event_bus_name,
            }
        ]
    )
    if response.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge refused {detail_type}: {response['Entries'][0].get('ErrorCode')}")
