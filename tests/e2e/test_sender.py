"""The sender end to end on the local runtime: chunks on the send queue, the simulator, virtual time."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from consentry import clock
from consentry.domain.campaign import Status
from consentry.domain.consent import ChangeKind, ConsentChange, Evidence
from consentry.services import fanout
from consentry.services.consent import commit_change
from consentry.store import campaigns as campaign_store
from consentry.store import sends
from consentry_local.runtime import LocalRuntime
from tests.e2e.helpers import contact
from tests.e2e.test_sender_support import (
    chunk_totals,
    numbers,
    put_chunk,
    running_campaign,
    sends_per_number,
    stop,
    subscribe,
    terminal_total,
)


def sender_runs(runtime: LocalRuntime) -> list[Any]:
    return [invocation for invocation in runtime.invocations if invocation.function == "SenderFunction"]


# --- every recipient ends in one terminal state ------------------------------------------------


def test_each_recipient_ends_in_exactly_one_terminal_state_and_the_counts_add_up(
    runtime: LocalRuntime,
) -> None:
    phones = numbers(10)
    subscribed, opted_out, pending, dead, ambiguous = phones[:5], phones[5], phones[6], phones[7], phones[8]
    # phones[9] never subscribed
    subscribe([*subscribed, opted_out, dead, ambiguous])
    stop(opted_out)
    commit_change(
        pending,
        ConsentChange(
            kind=ChangeKind.REQUEST_CONFIRMATION,
            scope="deals",
            event_time=clock.now() - timedelta(hours=1),
            evidence=Evidence(source="sms", reference="deals-keyword"),
        ),
    )
    runtime.simulator.invalid_numbers.add(dead)
    runtime.simulator.timeouts.add(ambiguous)
    running_campaign("cmp_mix")
    put_chunk(runtime, "cmp_mix", "c0", phones)
    runtime.run_until_idle(max_virtual=timedelta(minutes=10))

    totals = chunk_totals("cmp_mix")
    assert totals["sent"] == 5
    assert totals["suppressed.opted_out"] == 1
    assert totals["suppressed.pending_confirmation"] == 1
    assert totals["suppressed.no_consent"] == 1
    assert totals["failed.invalid"] == 1
    assert totals["unknown"] == 1
    assert totals["recipients"] == terminal_total(totals) == len(phones)
    per_number = sends_per_number(runtime, "cmp_mix")
    assert set(per_number) == {*subscribed, ambiguous}  # the timeout went out; nothing else did
    assert max(per_number.values()) == 1
    # the number the carrier called invalid is suppressed from now on
    dead_contact = contact(dead)
    assert dead_contact is not None
    assert dead_contact.undeliverable is not None
    assert dead_contact.undeliverable["reason"] == "invalid"
    # message records: the sent ones carry the provider id and the opt-out footer went out
    record = sends.message_record(sends.campaign_message_id("cmp_mix", subscribed[0]))
    assert record is not None
    assert record.state == "sent"
    assert record.provider_message_id
    assert record.body.endswith("Reply STOP to opt out")
    unknown = sends.message_record(sends.campaign_message_id("cmp_mix", ambiguous))
    assert unknown is not None
    assert unknown.state == "unknown"


def test_a_redelivered_chunk_is_skipped_and_another_chunk_is_a_duplicate(runtime: LocalRuntime) -> None:
    phones = numbers(3)
    subscribe(phones)
    running_campaign("cmp_twice")
    put_chunk(runtime, "cmp_twice", "c0", phones)
    put_chunk(runtime, "cmp_twice", "c0", phones)  # SQS delivers at least once
    put_chunk(runtime, "cmp_twice", "c1", phones[:1])  # the same number in another chunk
    runtime.run_until_idle(max_virtual=timedelta(minutes=10))

    assert sends_per_number(runtime, "cmp_twice") == dict.fromkeys(phones, 1)
    totals = chunk_totals("cmp_twice")
    assert totals["sent"] == 3
    assert totals["suppressed.duplicate"] == 1
    assert totals["recipients"] == 4  # c0 counted once, c1 once


def test_a_missing_attribute_or_too_many_segments_is_suppressed_with_its_reason(
    runtime: LocalRuntime,
) -> None:
    phones = numbers(4)
    subscribe(phones)
    running_campaign("cmp_code", template="Your code is {code}")
    running_campaign("cmp_long", template="Sale " * 200, max_segments=2)
    put_chunk(runtime, "cmp_code", "c0", phones[:2])
    put_chunk(runtime, "cmp_long", "c0", phones[2:])
    runtime.run_until_idle(max_virtual=timedelta(minutes=10))

    assert chunk_totals("cmp_code")["suppressed.missing_attribute"] == 2
    assert chunk_totals("cmp_long")["suppressed.too_many_segments"] == 2
    assert runtime.simulator.log_entries() == []


# --- the window ----------------------------------------------------------------------------------


def test_a_chunk_at_two_in_the_morning_sends_nothing_until_the_window_opens(tmp_path: Path) -> None:
    night = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # Tuesday 02:00 in New York
    opens = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 09:00, the promotional business window
    with LocalRuntime(tmp_path, start=night) as runtime:
        phones = numbers(5)
        subscribe(phones)
        running_campaign("cmp_night")
        put_chunk(runtime, "cmp_night", "c0", phones)
        runtime.run_until_idle(max_virtual=timedelta(hours=1))
        assert runtime.simulator.log_entries() == []
        assert chunk_totals("cmp_night") == {"deferred": 5, "recipients": 0}

        runtime.run_until_idle(max_virtual=timedelta(hours=12))
        log = runtime.simulator.log_entries()
        assert sorted(entry["to"] for entry in log) == phones
        assert min(datetime.fromisoformat(entry["ts"]) for entry in log) >= opens
        totals = chunk_totals("cmp_night")
        assert totals["sent"] == 5
        assert totals["recipients"] == 5


def test_a_window_that_only_opens_after_the_deadline_suppresses(tmp_path: Path) -> None:
    night = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    with LocalRuntime(tmp_path, start=night) as runtime:
        phones = numbers(2)
        subscribe(phones)
        running_campaign("cmp_short", deadline=night + timedelta(hours=3))
        put_chunk(runtime, "cmp_short", "c0", phones)
        runtime.run_until_idle(max_virtual=timedelta(hours=12))
        assert runtime.simulator.log_entries() == []
        assert chunk_totals("cmp_short") == {"suppressed.window:federal_window": 2, "recipients": 2}


# --- a STOP between the read and the reservation ---------------------------------------------------


def test_a_stop_committed_after_the_read_and_before_the_reservation_wins(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    phones = numbers(6)
    target = phones[3]
    subscribe(phones)
    real_reserve = sends.reserve
    raced: list[str] = []

    def stop_first(contact: Any, *args: Any, **kwargs: Any) -> sends.Reservation:
        if contact.phone == target and not raced:
            stop(target, "race")  # commits after the sender's batch read of this contact
            raced.append(target)
        return real_reserve(contact, *args, **kwargs)

    monkeypatch.setattr(sends, "reserve", stop_first)
    running_campaign("cmp_race")
    put_chunk(runtime, "cmp_race", "c0", phones)
    runtime.run_until_idle(max_virtual=timedelta(minutes=10))

    assert raced == [target]
    assert target not in sends_per_number(runtime)
    totals = chunk_totals("cmp_race")
    assert totals["suppressed.opted_out"] == 1
    assert totals["sent"] == 5
    stopped = contact(target)
    assert stopped is not None
    assert "cmp_race" not in stopped.sends


# --- crashes and retries ---------------------------------------------------------------------------


@pytest.mark.parametrize("records_lost", [False, True], ids=["records flushed", "records lost too"])
def test_a_chunk_retried_after_a_crash_half_way_sends_no_duplicate_and_counts_add_up(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch, records_lost: bool
) -> None:
    phones = numbers(15)
    subscribe(phones)
    simulator = runtime.simulator
    real_send = simulator.send
    calls = {"n": 0}

    def crash_on_the_sixth(sms: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 6:
            raise RuntimeError("the sender died half-way")
        return real_send(sms)

    monkeypatch.setattr(simulator, "send", crash_on_the_sixth)
    if records_lost:
        real_put = sends.put_message_records
        lost = {"done": False}

        def lose_once(records: Any) -> None:
            if not lost["done"]:
                lost["done"] = True
                raise RuntimeError("killed before the records were written")
            real_put(records)

        monkeypatch.setattr(sends, "put_message_records", lose_once)
    running_campaign("cmp_crash")
    put_chunk(runtime, "cmp_crash", "c0", phones)
    runtime.run_until_idle(max_virtual=timedelta(minutes=30))

    assert len(sender_runs(runtime)) == 2  # the crashed attempt, and SQS's redelivery after 360 s
    per_number = sends_per_number(runtime, "cmp_crash")
    assert max(per_number.values()) == 1
    assert len(per_number) == 14  # the sixth never reached the carrier
    totals = chunk_totals("cmp_crash")
    assert totals["recipients"] == terminal_total(totals) == 15
    if records_lost:
        # nothing tells the retry whether the first six went out: unknown, never sent again
        assert totals == {"sent": 9, "unknown": 6, "segments": 9, "recipients": 15}
    else:
        assert totals == {"sent": 14, "unknown": 1, "segments": 14, "recipients": 15}


# --- paused and cancelled campaigns ------------------------------------------------------------------


def test_a_paused_campaigns_chunk_waits_parked_until_it_runs_again(runtime: LocalRuntime) -> None:
    phones = numbers(3)
    subscribe(phones)
    campaign = running_campaign("cmp_paused")
    record = campaign_store.load("cmp_paused")
    paused = record.campaign.model_copy(update={"status": Status.PAUSED, "version": campaign.version + 1})
    campaign_store.save(record.model_copy(update={"campaign": paused}), expected_version=campaign.version)
    put_chunk(runtime, "cmp_paused", "c0", phones)
    runtime.run_until_idle(max_virtual=timedelta(minutes=10))
    assert runtime.simulator.log_entries() == []
    assert [parked.chunk.chunk_id for parked in fanout.store.all_parked("cmp_paused")] == ["c0"]

    running = paused.model_copy(update={"status": Status.RUNNING, "version": paused.version + 1})
    campaign_store.save(record.model_copy(update={"campaign": running}), expected_version=paused.version)
    assert fanout.release("cmp_paused") == 1
    runtime.run_until_idle(max_virtual=timedelta(minutes=10))
    assert sends_per_number(runtime) == dict.fromkeys(phones, 1)


def test_a_cancelled_campaigns_chunk_is_suppressed(runtime: LocalRuntime) -> None:
    phones = numbers(3)
    subscribe(phones)
    campaign = running_campaign("cmp_cancel")
    record = campaign_store.load("cmp_cancel")
    cancelled = campaign.model_copy(update={"status": Status.CANCELLED, "version": campaign.version + 1})
    campaign_store.save(record.model_copy(update={"campaign": cancelled}), expected_version=campaign.version)
    put_chunk(runtime, "cmp_cancel", "c0", phones)
    runtime.run_until_idle(max_virtual=timedelta(minutes=10))
    assert runtime.simulator.log_entries() == []
    assert chunk_totals("cmp_cancel") == {"suppressed.campaign_cancelled": 3, "recipients": 3}


def test_a_body_that_is_not_a_chunk_ends_in_the_dead_letter_queue(runtime: LocalRuntime) -> None:
    runtime.client("sqs").send_message(
        QueueUrl=runtime.queue_url("SendQueue"), MessageBody='{"campaign_id": 1}'
    )
    runtime.run_until_idle(max_virtual=timedelta(hours=2))
    assert [message["Body"] for message in runtime.dead_letters("SendDLQ")] == ['{"campaign_id": 1}']
