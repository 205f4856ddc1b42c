"""The sender's DynamoDB writes against moto: reservations, rate tokens, chunk results, records."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consentry import clock
from consentry.domain.chunks import SendChunk
from consentry.services import sender
from consentry.services.rate import Budget, RateLimiter
from consentry.store import contacts, sends
from consentry.store.sends import MessageRecord
from consentry_local.runtime import LocalRuntime
from tests.e2e.test_sender_support import numbers, running_campaign, stop, subscribe

PHONE = "+12122010007"


def entry(key_at: datetime, message_id: str = "m_1", **extra: Any) -> dict[str, Any]:
    return sends.send_entry(
        at=key_at, topic="deals", message_class="promotional", message_id=message_id, **extra
    )


def load(phone: str = PHONE) -> Any:
    record = contacts.load(phone)
    assert record is not None
    return record


# --- reservations ----------------------------------------------------------------------------------


def test_a_reservation_is_written_once_and_bumps_the_version(runtime: LocalRuntime) -> None:
    subscribe([PHONE])
    before = load()
    now = clock.now()
    first = sends.reserve(before, "cmp_a", entry(now), keep=timedelta(days=7), now=now)
    assert first.reserved
    after = load()
    assert after.version == before.version + 1
    assert after.sends["cmp_a"]["state"] == "reserved"

    # the same read again: refused, and the failed write hands back the contact as it is now
    again = sends.reserve(before, "cmp_a", entry(now), keep=timedelta(days=7), now=now)
    assert not again.reserved
    assert again.current == after
    # on the fresh read the key exists: still refused (the gate calls it a duplicate)
    assert not sends.reserve(after, "cmp_a", entry(now), keep=timedelta(days=7), now=now).reserved


def test_a_stop_committed_after_the_read_makes_the_reservation_fail(runtime: LocalRuntime) -> None:
    subscribe([PHONE])
    read = load()
    stop(PHONE)
    now = clock.now()
    refused = sends.reserve(read, "cmp_a", entry(now), keep=timedelta(days=7), now=now)
    assert not refused.reserved
    assert refused.current is not None
    assert refused.current.consent.opted_out
    assert "cmp_a" not in load().sends


def test_a_fresh_read_of_an_opted_out_or_unsubscribed_contact_is_not_reserved(runtime: LocalRuntime) -> None:
    # The version matches, and the write's own conditions still refuse: belt and braces.
    subscribe([PHONE])
    stop(PHONE)
    now = clock.now()
    assert not sends.reserve(load(), "cmp_a", entry(now), keep=timedelta(days=7), now=now).reserved
    other = "+12122010008"
    subscribe([other], "alerts")
    assert not sends.reserve(load(other), "cmp_b", entry(now), keep=timedelta(days=7), now=now).reserved
    assert "cmp_b" not in load(other).sends


def test_a_reservation_prunes_sends_older_than_the_windows(runtime: LocalRuntime) -> None:
    subscribe([PHONE])
    now = clock.now()
    sends.reserve(
        load(),
        "idem:old",
        {**entry(now - timedelta(days=9)), "topic": "deals"},
        keep=timedelta(days=30),
        now=now,
    )
    sends.reserve(
        load(), "cmp_old", entry(now - timedelta(days=9), chunk_id="c"), keep=timedelta(days=30), now=now
    )
    assert set(load().sends) == {"idem:old", "cmp_old"}
    sends.reserve(load(), "cmp_new", entry(now), keep=timedelta(days=7), now=now)
    # the transactional key is past the 7-day window; the campaign key is kept 35 days
    assert set(load().sends) == {"cmp_old", "cmp_new"}


def test_release_and_mark_failed_touch_only_their_own_entry(runtime: LocalRuntime) -> None:
    subscribe([PHONE])
    now = clock.now()
    sends.reserve(load(), "cmp_a", entry(now, "m_a"), keep=timedelta(days=7), now=now)
    sends.reserve(load(), "cmp_b", entry(now, "m_b"), keep=timedelta(days=7), now=now)
    version = load().version
    assert not sends.release(PHONE, "cmp_a", "m_other")  # not ours
    assert sends.release(PHONE, "cmp_a", "m_a")
    assert "cmp_a" not in load().sends
    assert load().version == version + 1  # a writer who read before cannot put it back
    assert sends.mark_failed(
        PHONE, "cmp_b", "m_b", undeliverable={"reason": "invalid", "at": now.isoformat()}
    )
    record = load()
    assert record.sends["cmp_b"]["state"] == "failed"
    assert record.undeliverable == {"reason": "invalid", "at": now.isoformat()}


def test_contacts_of_a_chunk_are_read_in_one_request(runtime: LocalRuntime) -> None:
    phones = numbers(100)
    subscribe(phones[:60])
    calls: list[str] = []

    def count(**kwargs: Any) -> None:
        calls.append(kwargs["event_name"])

    from consentry.store.aws import client

    dynamodb = client("dynamodb")
    dynamodb.meta.events.register("before-call.dynamodb.BatchGetItem", count)
    try:
        found = sends.read_contacts(phones)
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.BatchGetItem", count)
    assert len(calls) == 1
    assert set(found) == set(phones[:60])
    with pytest.raises(ValueError, match="at most 100"):
        sends.read_contacts([*phones, "+12122019999"])


# --- rate tokens ------------------------------------------------------------------------------------


def test_tokens_are_granted_up_to_the_limit_then_partly_then_not(runtime: LocalRuntime) -> None:
    second = int(clock.now().timestamp())
    limits = {"used": 10}
    assert sends.take_tokens("test", second, 6, limits) == 6
    assert sends.take_tokens("test", second, 6, limits) == 4  # only 4 left: one more write takes them
    assert sends.take_tokens("test", second, 1, limits) == 0
    sends.give_back_tokens("test", second, 2, limits)
    assert sends.take_tokens("test", second, 5, limits) == 2
    assert sends.take_tokens("test", second + 1, 20, limits) == 10  # a new second, capped at the limit


def test_a_slower_campaigns_counter_and_the_identitys_are_taken_in_one_write(runtime: LocalRuntime) -> None:
    second = int(clock.now().timestamp())
    slow = {"used": 10, "campaign:slow": 3}
    fast = {"used": 10}
    assert sends.take_tokens("one-item", second, 5, slow) == 3  # the campaign's 3 bind
    assert sends.take_tokens("one-item", second, 5, slow) == 0
    assert sends.take_tokens("one-item", second, 9, fast) == 7  # the identity has 7 left for others
    assert sends.take_tokens("one-item", second, 1, fast) == 0
    item = runtime.client("dynamodb").get_item(
        TableName=runtime.table_name("CampaignsTable"),
        Key={"pk": {"S": "RATE#one-item"}, "sk": {"S": str(second)}},
    )["Item"]
    assert item["used"] == {"N": "10"}
    assert item["campaign:slow"] == {"N": "3"}
    assert int(item["expires_at"]["N"]) > second


def test_the_limiter_waits_for_the_next_second_and_slows_down_after_a_throttle(runtime: LocalRuntime) -> None:
    limiter = RateLimiter(Budget("limiter-test", {"used": 4}))
    start = clock.now().timestamp()
    for _ in range(10):
        limiter.acquire(pending=10)
    assert clock.now().timestamp() - start >= 2  # 4 + 4 + 2
    assert limiter.waits == 2
    # the provider throttles the third send of a second: nothing more in it, then 2, 3, 4 ... a second
    limiter = RateLimiter(Budget("limiter-test-2", {"used": 10}))
    for _ in range(3):
        limiter.acquire(pending=50)
    limiter.throttled()
    per_second: dict[int, int] = {}
    for _ in range(20):
        limiter.acquire(pending=50)
        second = int(clock.now().timestamp())
        per_second[second] = per_second.get(second, 0) + 1
    assert list(per_second.values()) == [2, 3, 4, 5, 6]


def test_a_send_that_would_end_in_the_next_second_waits_for_it_but_a_slow_provider_still_sends(
    runtime: LocalRuntime,
) -> None:
    runtime.clock.advance_to(runtime.clock.now().replace(microsecond=800_000))
    limiter = RateLimiter(Budget("late-test", {"used": 10}))
    limiter.observe(0.3)  # 0.2 s left in this second: a 0.3 s call would land in the next one
    before = int(clock.now().timestamp())
    limiter.acquire(pending=5)
    assert int(clock.now().timestamp()) == before + 1
    assert clock.now().microsecond == 0

    slow = RateLimiter(Budget("slow-test", {"used": 10}))
    slow.observe(2.5)  # no second could ever fit such a call: it is not held back for ever
    runtime.clock.advance_to(runtime.clock.now().replace(microsecond=900_000))
    started = clock.now()
    for _ in range(5):
        slow.acquire(pending=5)
    assert clock.now() == started


# --- chunk results and message records --------------------------------------------------------------


def test_a_chunk_result_is_written_once_and_summed_per_campaign(runtime: LocalRuntime) -> None:
    now = clock.now()
    assert not sends.chunk_completed("cmp_x", "c0")
    assert sends.complete_chunk("cmp_x", "c0", {"sent": 3, "suppressed.opted_out": 1}, recipients=4, now=now)
    assert not sends.complete_chunk("cmp_x", "c0", {"sent": 4}, recipients=4, now=now)
    assert sends.complete_chunk("cmp_x", "c1", {"sent": 2, "deferred": 1}, recipients=2, now=now)
    assert sends.chunk_completed("cmp_x", "c0")
    assert sends.chunk_totals("cmp_x") == {
        "sent": 5,
        "suppressed.opted_out": 1,
        "deferred": 1,
        "recipients": 6,
    }


def test_message_records_are_batched_and_read_back(runtime: LocalRuntime) -> None:
    now = clock.now()
    records = [
        MessageRecord(
            message_id=f"m_{index}",
            phone=PHONE,
            kind="campaign",
            campaign_id="cmp_x",
            topic="deals",
            message_class="promotional",
            state="sent",
            status="sent",
            sent_at=now,
            segments=1,
            encoding="GSM-7",
            body="Hi",
        )
        for index in range(60)
    ]
    sends.put_message_records(records)
    found = sends.message_records(f"m_{index}" for index in range(0, 70, 2))
    assert set(found) == {f"m_{index}" for index in range(0, 60, 2)}
    item = runtime.client("dynamodb").get_item(
        TableName=runtime.table_name("MessagesTable"), Key={"pk": {"S": "MSG#m_0"}, "sk": {"S": "MSG"}}
    )["Item"]
    assert item["created_at"] == item["sent_at"]  # the by_phone index sorts on created_at
    assert int(item["expires_at"]["N"]) > now.timestamp()


# --- the sender's retries ------------------------------------------------------------------------------


def test_out_of_time_the_chunk_is_left_for_a_retry_that_finishes_it(runtime: LocalRuntime) -> None:
    phones = numbers(6)
    subscribe(phones)
    running_campaign("cmp_time")
    chunk = SendChunk(campaign_id="cmp_time", chunk_id="c0", recipients=tuple(phones))
    budget = iter([100.0, 100.0, 100.0, 1.0])
    first = sender.process_chunk(chunk, time_left=lambda: next(budget, 1.0))
    assert first.outcome == "retry"
    assert first.retry_after_seconds == 0
    assert first.counts["sent"] == 3
    assert not sends.chunk_completed("cmp_time", "c0")
    second = sender.process_chunk(chunk)
    assert second.outcome == "completed"
    assert second.counts["sent"] == 6  # three recounted from their records, three sent now
    assert len(runtime.simulator.log_entries()) == 6
    assert sender.process_chunk(chunk).outcome == "already_completed"


def test_a_reservation_without_a_record_inside_the_lease_makes_the_chunk_wait(runtime: LocalRuntime) -> None:
    phones = numbers(2)
    subscribe(phones)
    running_campaign("cmp_lease")
    now = clock.now()
    message_id = sends.campaign_message_id("cmp_lease", phones[0])
    sends.reserve(
        load(phones[0]), "cmp_lease", entry(now, message_id, chunk_id="c0"), keep=timedelta(days=7), now=now
    )
    chunk = SendChunk(campaign_id="cmp_lease", chunk_id="c0", recipients=tuple(phones))
    waiting = sender.process_chunk(chunk)
    assert waiting.outcome == "retry"
    assert waiting.retry_after_seconds == sender.IN_FLIGHT_SECONDS
    assert runtime.simulator.log_entries() == []
    runtime.clock.advance(sender.IN_FLIGHT_SECONDS)
    done = sender.process_chunk(chunk)
    assert done.outcome == "completed"
    assert done.counts == {"unknown": 1, "sent": 1, "segments": 1}  # promotional: never resent
    assert [entry["to"] for entry in runtime.simulator.log_entries()] == [phones[1]]


def test_a_transactional_campaigns_unrecorded_send_goes_again_after_the_lease(runtime: LocalRuntime) -> None:
    phones = numbers(1)
    subscribe(phones, "alerts")
    running_campaign(
        "cmp_alerts", topic="alerts", message_class="transactional", template="Your account changed"
    )
    now = clock.now()
    message_id = sends.campaign_message_id("cmp_alerts", phones[0])
    reservation = sends.send_entry(
        at=now, topic="alerts", message_class="transactional", message_id=message_id, chunk_id="c0"
    )
    sends.reserve(load(phones[0]), "cmp_alerts", reservation, keep=timedelta(days=7), now=now)
    runtime.clock.advance(sender.IN_FLIGHT_SECONDS)
    done = sender.process_chunk(SendChunk(campaign_id="cmp_alerts", chunk_id="c0", recipients=tuple(phones)))
    assert done.counts["sent"] == 1
    assert [entry["message_id"] for entry in runtime.simulator.log_entries()] == [message_id]


def test_deferred_recipients_go_to_a_chunk_id_derived_from_the_release_time() -> None:
    at = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert sender.deferred_chunk_id("3-0-now-1", at) == f"3-0-now-1~{int(at.timestamp())}"
