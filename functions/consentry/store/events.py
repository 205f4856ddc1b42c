"""Publishing domain events on the stack's EventBridge bus (source "consentry")."""

import json
from collections.abc import Mapping, Sequence
from typing import Any

from consentry import clock
from consentry.config import settings
from consentry.store.aws import client

SOURCE = "consentry"
#: PutEvents takes at most ten entries a request.
ENTRIES_PER_REQUEST = 10
#: Sends of the entries EventBridge refused in a request (it answers per entry).
ATTEMPTS = 3


def publish(detail_type: str, detail: Mapping[str, Any]) -> None:
    """One event; raises if EventBridge did not take it, so the caller's retry covers it."""
    publish_many([(detail_type, detail)])


def publish_many(batch: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Events in order, ten a request. Entries EventBridge refused are sent again; raises if some
    still are after ATTEMPTS sends."""
    entries = [
        {
            "Source": SOURCE,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, default=str),
            "EventBusName": settings().event_bus_name,
        }
        for detail_type, detail in batch
    ]
    for start in range(0, len(entries), ENTRIES_PER_REQUEST):
        _put(entries[start : start + ENTRIES_PER_REQUEST])


def _put(entries: list[dict[str, str]]) -> None:
    for attempt in range(ATTEMPTS):
        if attempt:
            clock.sleep(0.1 * 2**attempt)
        response = client("events").put_events(Entries=entries)
        if not response.get("FailedEntryCount"):
            return
        refused = [
            (entry, result)
            for entry, result in zip(entries, response["Entries"], strict=True)
            if result.get("ErrorCode")
        ]
        entries = [entry for entry, _ in refused]
    codes = sorted({str(result.get("ErrorCode")) for _, result in refused})
    kinds = sorted({entry["DetailType"] for entry in entries})
    raise RuntimeError(
        f"EventBridge refused {len(entries)} event(s) ({', '.join(kinds)}): {', '.join(codes)}"
    )
