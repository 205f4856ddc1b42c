"""Helpers shared by the sender's end-to-end tests (no tests here): subscribers, campaigns, chunks."""

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from consentry import clock
from consentry.domain.campaign import Campaign, Status
from consentry.domain.chunks import SendChunk
from consentry.domain.consent import ChangeKind, ConsentChange, Evidence
from consentry.services.consent import commit_change
from consentry.store import campaigns as campaign_store
from consentry.store import sends
from consentry_local.runtime import LocalRuntime


def numbers(count: int, prefix: str = "+1212201") -> list[str]:
    """Valid New York numbers (area code 212: one zone, the federal window)."""
    return [f"{prefix}{index:04d}" for index in range(count)]


def subscribe(phones: Iterable[str], topic: str = "deals", *, days_ago: int = 1) -> None:
    for phone in phones:
        commit_change(
            phone,
            ConsentChange(
                kind=ChangeKind.OPT_IN,
                scope=topic,
                event_time=clock.now() - timedelta(days=days_ago),
                evidence=Evidence(source="import", reference=f"seed:{phone}:{topic}"),
            ),
        )


def stop(phone: str, reference: str = "stop") -> None:
    commit_change(
        phone,
        ConsentChange(
            kind=ChangeKind.OPT_OUT,
            scope="all",
            event_time=clock.now(),
            evidence=Evidence(source="sms", reference=f"{reference}:{phone}", text="STOP"),
        ),
    )


def running_campaign(campaign_id: str = "cmp_test", **fields: Any) -> Campaign:
    now = clock.now()
    values: dict[str, Any] = {
        "name": "Test campaign",
        "topic": "deals",
        "template": "Hi {first_name|there}, 20% off today at Consentry Demo",
        "message_class": "promotional",
        "messages_per_second": 20,
        **fields,
    }
    campaign = Campaign(
        campaign_id=campaign_id, status=Status.RUNNING, created_at=now, updated_at=now, **values
    )
    campaign_store.create(campaign_store.CampaignRecord(campaign=campaign))
    return campaign


def put_chunk(runtime: LocalRuntime, campaign_id: str, chunk_id: str, phones: Sequence[str]) -> SendChunk:
    chunk = SendChunk(campaign_id=campaign_id, chunk_id=chunk_id, recipients=tuple(phones))
    runtime.client("sqs").send_message(
        QueueUrl=runtime.queue_url("SendQueue"), MessageBody=chunk.model_dump_json()
    )
    return chunk


def sends_per_number(runtime: LocalRuntime, campaign_id: str | None = None) -> Counter[str]:
    return Counter(
        entry["to"]
        for entry in runtime.simulator.log_entries()
        if campaign_id is None or entry.get("campaign_id") == campaign_id
    )


def terminal_total(counts: dict[str, int]) -> int:
    return sum(
        value
        for name, value in counts.items()
        if name in ("sent", "unknown") or name.startswith(("suppressed.", "failed."))
    )


def chunk_totals(campaign_id: str) -> dict[str, int]:
    return sends.chunk_totals(campaign_id)
