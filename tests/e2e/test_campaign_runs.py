"""Campaign runs end to end on the local runtime: a recurring campaign scheduled through the admin
API, fired twice by the emulated EventBridge Scheduler on the virtual clock, sends to each
subscriber once per firing and waits for the next one; a one-off campaign ends `completed`.
`consentry campaign show` prints the status and the run.
"""

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from benchmarks.fanout import contact_item, seed

from consentry import admin_client
from consentry.cli import main
from consentry.providers.base import ErrorKind, ProviderError
from consentry.services.fanout import SEND_QUEUE_MAX_RECEIVES
from consentry_local.runtime import LocalRuntime
from tests.e2e.helpers import RuntimeAdminClient

PHONES = [f"+1212201{n:04d}" for n in range(5)]
FIRST = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # the runtime starts at 15:00 UTC
SECOND = FIRST + timedelta(hours=1)


def call(runtime: LocalRuntime, method: str, path: str, body: Any = None) -> Any:
    response = runtime.http(
        method,
        "/v1" + path,
        body=json.dumps(body) if body is not None else "",
        headers={"Content-Type": "application/json"},
    )
    assert response.status < 300, response.body
    return response.json()


def subscribe(runtime: LocalRuntime, phones: list[str] = PHONES) -> None:
    items = [contact_item(phone, topics={"alerts": "active"}) for phone in phones]
    seed(runtime.client("dynamodb"), runtime.table_name("ContactsTable"), items)


def sends_per_number(runtime: LocalRuntime, campaign_id: str) -> Counter[str]:
    return Counter(
        entry["to"] for entry in runtime.simulator.log_entries() if entry.get("campaign_id") == campaign_id
    )


def create(runtime: LocalRuntime, schedule: dict[str, Any]) -> str:
    created = call(
        runtime,
        "POST",
        "/campaigns",
        {"name": "Hourly status", "topic": "alerts", "template": "Your order status from Consentry"},
    )
    campaign_id: str = created["campaign_id"]
    scheduled = call(runtime, "POST", f"/campaigns/{campaign_id}/schedule", schedule)
    assert scheduled["status"] == "scheduled"
    assert scheduled["run"] is None
    return campaign_id


def test_a_cron_campaign_fired_twice_sends_once_per_run_and_waits_for_the_next(
    runtime: LocalRuntime, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    starts: list[dict[str, Any]] = []
    invoke = runtime.invoke

    def recording(function: str, event: dict[str, Any]) -> Any:
        if function == "FanoutFunction" and event.get("action") == "start":
            starts.append(event)
        return invoke(function, event)

    monkeypatch.setattr(runtime, "invoke", recording)
    subscribe(runtime)
    runtime.advance(60)  # scheduled after 15:00: the first firing is 16:00
    campaign_id = create(runtime, {"kind": "recurring", "cron": "cron(0 * * * ? *)"})

    runtime.advance((FIRST + timedelta(minutes=30) - runtime.clock.now()).total_seconds())
    assert sends_per_number(runtime, campaign_id) == dict.fromkeys(PHONES, 1)
    first = call(runtime, "GET", f"/campaigns/{campaign_id}")
    assert first["status"] == "scheduled"
    assert first["run"]["run_id"] == "r20261124T160000Z"
    assert first["run"]["completed_at"] is not None

    runtime.advance((SECOND + timedelta(minutes=30) - runtime.clock.now()).total_seconds())
    assert sends_per_number(runtime, campaign_id) == dict.fromkeys(PHONES, 2)  # once per run each
    second = call(runtime, "GET", f"/campaigns/{campaign_id}")
    assert second["status"] == "scheduled"
    assert second["run"]["run_id"] == "r20261124T170000Z"
    assert second["run"]["scheduled_at"] == "2026-11-24T17:00:00Z"
    assert second["run"]["completed_at"] is not None
    assert second["run"]["progress"] == {
        "total_segments": 8,
        "segments_done": 8,
        "chunked": len(PHONES),
        "done": len(PHONES),
    }
    # The campaign's report adds up its runs: two audiences, two sends each, all delivered.
    report = call(runtime, "GET", f"/campaigns/{campaign_id}/report")
    assert (report["status"], report["audience"], report["sent"]) == ("scheduled", 10, 10)
    assert report["delivered"] + report["pending"] == 10

    # Scheduler's context attribute named each run: the firing's due time, substituted in the Input.
    assert [start.get("scheduled_time") for start in starts] == [
        "2026-11-24T16:00:00Z",
        "2026-11-24T17:00:00Z",
    ]

    admin_client.use_client(lambda _url: RuntimeAdminClient(runtime))
    try:
        assert main(["campaign", "show", campaign_id]) == 0
    finally:
        admin_client.use_client(None)
    printed = capsys.readouterr().out
    assert "scheduled" in printed
    assert "r20261124T170000Z started 2026-11-24T17:00" in printed
    assert f"({len(PHONES)} of {len(PHONES)} recipients done)" in printed


def test_a_one_off_campaign_ends_completed(runtime: LocalRuntime) -> None:
    subscribe(runtime)
    campaign_id = create(runtime, {"kind": "once", "at": FIRST.isoformat()})
    runtime.advance((FIRST + timedelta(minutes=30) - runtime.clock.now()).total_seconds())
    assert sends_per_number(runtime, campaign_id) == dict.fromkeys(PHONES, 1)
    shown = call(runtime, "GET", f"/campaigns/{campaign_id}")
    assert shown["status"] == "completed"
    assert shown["run"]["run_id"] == ""
    assert shown["run"]["progress"]["done"] == len(PHONES)
    listed = call(runtime, "GET", "/campaigns?status=completed")
    assert [campaign["campaign_id"] for campaign in listed["campaigns"]] == [campaign_id]


def test_a_chunk_the_carrier_throttles_for_good_ends_in_the_dlq_and_the_campaign_completes(
    runtime: LocalRuntime,
) -> None:
    subscribe(runtime, PHONES[:1])  # one chunk, which meets every throttle
    throttle = ProviderError(ErrorKind.THROTTLED, "ThrottlingException", "throttled")
    runtime.simulator.injected_errors.extend([throttle] * 6 * SEND_QUEUE_MAX_RECEIVES)  # every delivery
    campaign_id = create(runtime, {"kind": "once", "at": FIRST.isoformat()})
    runtime.advance((FIRST + timedelta(hours=1) - runtime.clock.now()).total_seconds())

    dead = [json.loads(message["Body"]) for message in runtime.dead_letters("SendDLQ")]
    assert [chunk["campaign_id"] for chunk in dead] == [campaign_id]
    shown = call(runtime, "GET", f"/campaigns/{campaign_id}")
    assert shown["status"] == "completed"
    report = call(runtime, "GET", f"/campaigns/{campaign_id}/report")
    assert report["send_failed"]["by_reason"] == {"dead_lettered": 1}
    assert report["sent"] == 0
    assert runtime.simulator.injected_errors == []  # every delivery met the carrier's throttling
