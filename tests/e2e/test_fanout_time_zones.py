"""A campaign across time zones on the local runtime: nothing is enqueued before each zone's window.

Contacts in New York, Los Angeles and Honolulu; the campaign is created and scheduled through
the admin API to start at 06:00 New York time on a Tuesday. EventBridge Scheduler (emulated on
the virtual clock) fires the start, the fan-out parks every bucket, and the release schedules
it created put each zone's chunks on the send queue when its promotional window (09:00 local)
opens: 14:00, 17:00 and 19:00 UTC.
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from benchmarks.fanout import contact_item, seed

from consentry.domain.chunks import SendChunk
from consentry.store import aws as store_aws
from consentry.store import counters
from consentry_local.runtime import LocalRuntime

BEFORE_DAWN = datetime(2026, 11, 24, 10, 50, tzinfo=UTC)  # Tuesday 05:50 in New York
SIX_AM_NEW_YORK = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
ZONES = {
    "New York": ("212", datetime(2026, 11, 24, 14, 0, tzinfo=UTC)),
    "Los Angeles": ("310", datetime(2026, 11, 24, 17, 0, tzinfo=UTC)),
    "Honolulu": ("808", datetime(2026, 11, 24, 19, 0, tzinfo=UTC)),
}
PER_ZONE = 3


def phones(area: str) -> list[str]:
    return [f"+1{area}{2_000_000 + n:07d}" for n in range(PER_ZONE)]


class SendQueueTap:
    """Records every SendMessageBatch to the send queue with the virtual time it happened at."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime
        self.queue_url = runtime.queue_url("SendQueue")
        self.enqueued: list[tuple[datetime, SendChunk]] = []

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        if params.get("QueueUrl") != self.queue_url:
            return
        now = self.runtime.clock.now()
        for entry in params["Entries"]:
            self.enqueued.append((now, SendChunk.model_validate_json(entry["MessageBody"])))

    def recipients(self) -> dict[str, datetime]:
        """Recipient -> the first time a chunk holding it was enqueued."""
        first: dict[str, datetime] = {}
        for when, chunk in self.enqueued:
            for phone in chunk.recipients:
                first.setdefault(phone, when)
        return first


@pytest.fixture
def tapped(tmp_path: Path) -> Iterator[tuple[LocalRuntime, SendQueueTap]]:
    runtime = LocalRuntime(tmp_path, start=BEFORE_DAWN)
    runtime.start()
    tap = SendQueueTap(runtime)
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("provide-client-params.sqs.SendMessageBatch", tap)
    store_aws.reset()  # clients made from now on carry the tap
    try:
        yield runtime, tap
    finally:
        session.events.unregister("provide-client-params.sqs.SendMessageBatch", tap)
        runtime.stop()


def call(runtime: LocalRuntime, method: str, path: str, body: Any = None) -> Any:
    response = runtime.http(
        method,
        "/v1" + path,
        body=json.dumps(body) if body is not None else "",
        headers={"Content-Type": "application/json"},
    )
    assert response.status < 300, response.body
    return response.json()


def test_each_zone_is_enqueued_when_its_window_opens_and_not_before(
    tapped: tuple[LocalRuntime, SendQueueTap],
) -> None:
    runtime, tap = tapped
    everyone = [phone for area, _ in ZONES.values() for phone in phones(area)]
    seed(
        runtime.client("dynamodb"),
        runtime.table_name("ContactsTable"),
        [
            contact_item(phone, topics={"deals": "active"}, attributes={"first_name": "Sam"})
            for phone in everyone
        ],
    )
    created = call(
        runtime,
        "POST",
        "/campaigns",
        {
            "name": "Coast to coast",
            "topic": "deals",
            "template": "Hi {first_name|there}, 20% off today",
            "schedule": {"kind": "once", "at": SIX_AM_NEW_YORK.isoformat()},
        },
    )
    campaign_id = created["campaign_id"]
    call(runtime, "POST", f"/campaigns/{campaign_id}/schedule")

    # Through the start at 06:00 and up to a minute before New York's window: nothing enqueued.
    runtime.advance((ZONES["New York"][1] - timedelta(minutes=1) - runtime.clock.now()).total_seconds())
    assert any(invocation.function == "FanoutFunction" for invocation in runtime.invocations)
    assert call(runtime, "GET", f"/campaigns/{campaign_id}")["status"] == "running"
    assert tap.enqueued == []

    for zone, (area, opens) in ZONES.items():
        runtime.advance((opens - timedelta(seconds=1) - runtime.clock.now()).total_seconds())
        assert not set(phones(area)) & set(tap.recipients()), f"{zone} enqueued before its window"
        runtime.advance(2)
        first = tap.recipients()
        assert {phone: first.get(phone) for phone in phones(area)} == dict.fromkeys(phones(area), opens), zone

    # Every recipient enqueued once (by distinct chunk), none left parked, nothing polled per recipient.
    distinct = {chunk.chunk_id: chunk for _, chunk in tap.enqueued}
    assert sorted(phone for chunk in distinct.values() for phone in chunk.recipients) == sorted(everyone)
    fanout_calls = [
        invocation for invocation in runtime.invocations if invocation.function == "FanoutFunction"
    ]
    starts_and_segments_and_releases = 1 + 8 + len(ZONES)
    assert len(fanout_calls) == starts_and_segments_and_releases
    assert counters.totals(campaign_id)["audience"] == len(everyone)
    # If the sender ran meanwhile, it sent nobody before their window either.
    opening = {phone: opens for area, opens in ZONES.values() for phone in phones(area)}
    for entry in runtime.simulator.log_entries():
        if entry["campaign_id"] == campaign_id:
            assert datetime.fromisoformat(entry["ts"]) >= opening[entry["to"]]
