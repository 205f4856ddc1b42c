"""Exactly-once accounting when one AWS request of a campaign is throttled or loses its answer.

Each test hits exactly one request of the sender or the receipts function (consentry_local.faults:
ThrottleOnce answers it with a throttle, after the emulator applied it when `lost_answers`, so the
SDK sends the same request again; FailOnce raises a throttle to the caller, as when the SDK's
retries are spent) and checks that every recipient ends in one terminal state, that the counts
match the carrier simulator's log, and that the receipts are counted once each.
"""

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from consentry import clock
from consentry.domain.campaign import Status, transition
from consentry.services.reports import campaign_report
from consentry.store import campaigns as campaign_store
from consentry.store import counters, sends
from consentry.store.aws import client
from consentry_local.faults import FailOnce, ThrottleOnce
from consentry_local.runtime import LocalRuntime
from tests.e2e.helpers import Fault, assert_confirmed_once, assert_stopped_once, faults_on
from tests.e2e.test_sender_support import (
    chunk_totals,
    numbers,
    put_chunk,
    running_campaign,
    sends_per_number,
    subscribe,
    terminal_total,
)

PHONES = numbers(3, prefix="+1212301")


@pytest.fixture
def faults(runtime: LocalRuntime) -> Iterator[Callable[[Fault], Fault]]:
    """Faults on the functions' dynamodb client (the one every function in the process uses)."""
    with faults_on(client("dynamodb").meta.events) as install:
        yield install


def run_campaign(runtime: LocalRuntime, campaign_id: str, *, dead: str | None = None) -> None:
    subscribe(PHONES)
    if dead is not None:
        runtime.simulator.invalid_numbers.add(dead)
    running_campaign(campaign_id)
    put_chunk(runtime, campaign_id, "c0", PHONES)
    runtime.run_until_idle(max_virtual=timedelta(minutes=15))


def reservation(operation: str, params: dict[str, Any]) -> bool:
    expression = str(params.get("UpdateExpression", ""))
    return operation == "UpdateItem" and expression.startswith("SET #sends = :sends")


def chunk_result(operation: str, params: dict[str, Any]) -> bool:
    return operation == "TransactWriteItems"


def marked_failed(operation: str, params: dict[str, Any]) -> bool:
    return operation == "UpdateItem" and ":state" in params.get("ExpressionAttributeValues", {})


def campaign_counter(operation: str, params: dict[str, Any]) -> bool:
    key = params.get("Key", {}).get("sk", {}).get("S", "")
    return operation == "UpdateItem" and str(key).startswith("COUNTER#")


def assert_accounted(runtime: LocalRuntime, campaign_id: str, *, sent: int, failed: int = 0) -> None:
    totals = chunk_totals(campaign_id)
    assert totals.get("sent", 0) == sent
    assert totals.get("unknown", 0) == 0
    assert totals.get("failed.invalid", 0) == failed
    assert totals["recipients"] == terminal_total(totals) == len(PHONES)
    carrier = sends_per_number(runtime, campaign_id)
    assert sum(carrier.values()) == sent  # what the carrier took is exactly what was counted sent
    assert set(carrier.values()) == {1}
    report = campaign_report(campaign_id)
    assert report is not None
    assert report.delivered == sent
    assert report.pending == 0


def test_a_reservation_that_landed_but_lost_its_answer_is_sent_once(
    runtime: LocalRuntime, faults: Callable[[Fault], Fault]
) -> None:
    # The SDK sends the landed reservation again; its condition fails on our own entry. Before,
    # the sender took that entry for another copy of the chunk, stepped aside, and the retry
    # counted the recipient "unknown" although nothing went to the carrier.
    fault = faults(ThrottleOnce(reservation, nth=2, lost_answers=True))
    run_campaign(runtime, "cmp_lost_reservation")
    assert fault.injected == 1
    assert_accounted(runtime, "cmp_lost_reservation", sent=3)


def test_a_chunk_result_that_landed_but_lost_its_answer_is_known_as_ours(
    runtime: LocalRuntime, faults: Callable[[Fault], Fault]
) -> None:
    # The SDK sends the landed transaction again and it is cancelled on the result it wrote. The
    # attempt must still know it recorded the result (it emits the chunk's metrics), and a later
    # copy of the chunk must not.
    fault = faults(ThrottleOnce(chunk_result, lost_answers=True))
    counts = {"sent": 3, "segments": 3}
    assert sends.complete_chunk("cmp_lost_result", "c0", counts, recipients=3, now=clock.now())
    assert fault.injected == 1
    assert not sends.complete_chunk("cmp_lost_result", "c0", counts, recipients=3, now=clock.now())
    assert sends.chunk_totals("cmp_lost_result") == {"sent": 3, "segments": 3, "recipients": 3}


def test_a_chunk_whose_result_lost_its_answer_completes_once(
    runtime: LocalRuntime, faults: Callable[[Fault], Fault]
) -> None:
    fault = faults(ThrottleOnce(chunk_result, lost_answers=True))
    run_campaign(runtime, "cmp_lost_chunk")
    assert fault.injected == 1
    assert_accounted(runtime, "cmp_lost_chunk", sent=3)


def test_a_throttled_write_after_the_provider_refused_a_send_still_counts_it_failed(
    runtime: LocalRuntime, faults: Callable[[Fault], Fault]
) -> None:
    fault = faults(FailOnce(marked_failed))
    run_campaign(runtime, "cmp_throttled_failure", dead=PHONES[1])
    assert fault.injected == 1
    assert_accounted(runtime, "cmp_throttled_failure", sent=2, failed=1)


def test_a_throttled_reservation_is_retried_with_the_chunk_and_sent_once(
    runtime: LocalRuntime, faults: Callable[[Fault], Fault]
) -> None:
    fault = faults(FailOnce(reservation, nth=2))
    run_campaign(runtime, "cmp_throttled_reservation")
    assert fault.injected == 1
    assert_accounted(runtime, "cmp_throttled_reservation", sent=3)


def test_a_throttled_counter_write_of_a_receipt_is_still_counted(
    runtime: LocalRuntime, faults: Callable[[Fault], Fault]
) -> None:
    # The status is written first; had the counter write's error reached the event's retry, that
    # retry would find the status already set and count nothing: pending forever.
    fault = faults(FailOnce(campaign_counter))
    run_campaign(runtime, "cmp_throttled_counter")
    assert fault.injected == 1
    assert_accounted(runtime, "cmp_throttled_counter", sent=3)


def status_write(operation: str, params: dict[str, Any]) -> bool:
    return operation == "UpdateItem" and "#status_at" in params.get("ExpressionAttributeNames", {})


def test_a_receipt_status_write_that_lost_its_answer_is_counted_once(
    runtime: LocalRuntime, faults: Callable[[Fault], Fault]
) -> None:
    # The SDK sends the landed status write again; its condition fails on the status it set.
    # Before, that receipt was taken for a duplicate and never counted: pending forever.
    fault = faults(ThrottleOnce(status_write, nth=2, lost_answers=True))
    run_campaign(runtime, "cmp_lost_status")
    assert fault.injected == 1
    assert_accounted(runtime, "cmp_lost_status", sent=3)


def test_a_receipt_counter_write_that_lost_its_answer_is_counted_once(
    runtime: LocalRuntime, faults: Callable[[Fault], Fault]
) -> None:
    # Before, the repeated ADD counted that receipt twice (delivered 4 of 3 sent).
    fault = faults(ThrottleOnce(campaign_counter, lost_answers=True))
    run_campaign(runtime, "cmp_lost_counter")
    assert fault.injected == 1
    assert_accounted(runtime, "cmp_lost_counter", sent=3)


def test_a_throttled_request_never_reaches_the_emulator(
    runtime: LocalRuntime, faults: Callable[[Fault], Fault]
) -> None:
    # The injector's own promise: botocore hands every request to the emulator's handler too, so
    # a throttle that did not point the request elsewhere was applied and then sent again.
    throttle = faults(ThrottleOnce(campaign_counter))
    counters.add("cmp_injector", {"throttled": 1})
    lost = faults(ThrottleOnce(campaign_counter, lost_answers=True))
    counters.add("cmp_injector", {"lost": 1})
    assert throttle.injected == lost.injected == 1
    assert counters.totals("cmp_injector") == {"throttled": 1, "lost": 2}  # `add` is not replay-safe


def reply_claim(operation: str, params: dict[str, Any]) -> bool:
    return operation == "PutItem" and params.get("Item", {}).get("state", {}).get("S") == "sending"


def test_a_stop_whose_reply_claim_lost_its_answer_is_confirmed_once(
    runtime: LocalRuntime, faults: Callable[[Fault], Fault]
) -> None:
    # Before, the repeated claim found the reply already "sending", took it for an earlier
    # delivery's, and the confirmation never went out.
    subscribe(PHONES[:1])
    fault = faults(ThrottleOnce(reply_claim, lost_answers=True))
    runtime.text_in(PHONES[0], "STOP")
    runtime.run_until_idle(max_virtual=timedelta(minutes=10))
    assert fault.injected == 1
    assert_confirmed_once(runtime, PHONES[0])


def consent_commit(operation: str, params: dict[str, Any]) -> bool:
    tables = {next(iter(item.values()))["TableName"] for item in params.get("TransactItems", [])}
    return operation == "TransactWriteItems" and any("Ledger" in table for table in tables)


def test_a_stop_whose_consent_commit_lost_its_answer_is_applied_once_and_confirmed(
    runtime: LocalRuntime, faults: Callable[[Fault], Fault]
) -> None:
    # Before, the repeated transaction was refused, the retry read the STOP back as a duplicate
    # from elsewhere, and neither the confirmation nor the ConsentChanged event followed.
    subscribe(PHONES[:1])
    fault = faults(ThrottleOnce(consent_commit, lost_answers=True))
    runtime.text_in(PHONES[0], "STOP")
    runtime.run_until_idle(max_virtual=timedelta(minutes=10))
    assert fault.injected == 1
    assert_stopped_once(runtime, PHONES[0])


def campaign_write(operation: str, params: dict[str, Any]) -> bool:
    return operation in ("PutItem", "UpdateItem") and "Campaigns" in str(params.get("TableName"))


def test_campaign_writes_that_lost_their_answers_are_known_as_ours(
    runtime: LocalRuntime, faults: Callable[[Fault], Fault]
) -> None:
    created = faults(ThrottleOnce(campaign_write, lost_answers=True))
    campaign = running_campaign("cmp_lost_create")  # before, the repeat answered "version conflict"
    assert created.injected == 1
    record = campaign_store.load("cmp_lost_create")
    paused = faults(ThrottleOnce(campaign_write, lost_answers=True))
    campaign_store.save(
        campaign_store.CampaignRecord(campaign=transition(campaign, Status.PAUSED, clock.now())),
        expected_version=record.campaign.version,
    )
    assert paused.injected == 1
    assert campaign_store.load("cmp_lost_create").campaign.status is Status.PAUSED
    with pytest.raises(campaign_store.VersionConflict):  # someone else's write is still a conflict
        campaign_store.save(
            campaign_store.CampaignRecord(campaign=transition(campaign, Status.CANCELLED, clock.now())),
            expected_version=record.campaign.version,
        )
