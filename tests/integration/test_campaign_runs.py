"""Campaign runs on moto (the local runtime's resources): every firing of a recurring campaign is its
own run, a duplicated chunk sends once, and a run completes its campaign exactly once.

Campaigns are stored directly (no start schedule exists, so nothing fires by itself); starts are
the fan-out's own calls with the scheduled time Scheduler would pass; chunks go through the
sender function's handler, which is what runs the completion check after each chunk.
"""

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from benchmarks.fanout import contact_item, seed
from botocore.exceptions import ClientError

from consentry.domain.campaign import Campaign, Status
from consentry.domain.chunks import SINGLE_RUN, SendChunk, run_id_for
from consentry.domain.schedule import Schedule
from consentry.providers.base import ErrorKind, ProviderError
from consentry.services import campaigns as campaign_service
from consentry.services import fanout
from consentry.services.fanout import SegmentWork
from consentry.store import campaigns as campaign_store
from consentry.store import contacts, counters, sends
from consentry.store import fanout as fanout_store
from consentry.store.campaigns import CampaignRecord
from consentry_local import events
from consentry_local.runtime import LocalRuntime
from consentry_local.template import load_template

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in New York
SEGMENTS = 2
DAILY = Schedule(kind="recurring", cron="cron(0 10 * * ? *)", timezone="America/New_York")


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalRuntime]:
    runtime = LocalRuntime(tmp_path, start=START, parameters={"FanoutSegments": str(SEGMENTS)})
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()


def numbers(area: str, count: int) -> list[str]:
    return [f"+1{area}201{n:04d}" for n in range(count)]


def add_subscribers(runtime: LocalRuntime, phones: list[str], topic: str) -> None:
    items = [contact_item(phone, topics={topic: "active"}) for phone in phones]
    seed(runtime.client("dynamodb"), runtime.table_name("ContactsTable"), items)


def store_campaign(campaign_id: str, **overrides: Any) -> Campaign:
    values: dict[str, Any] = {
        "campaign_id": campaign_id,
        "name": "Daily update",
        "topic": "alerts",
        "template": "Your daily update from Consentry",
        "message_class": "transactional",
        "status": Status.SCHEDULED,
        "schedule": DAILY,
        "messages_per_second": 50,
        "created_at": START - timedelta(days=1),
        "updated_at": START - timedelta(days=1),
    }
    values.update(overrides)
    campaign = Campaign.model_validate(values)
    campaign_store.create(CampaignRecord(campaign=campaign))
    return campaign


def record(campaign_id: str) -> CampaignRecord:
    found = campaign_store.get(campaign_id)
    assert found is not None
    return found


def sends_per_number(runtime: LocalRuntime, campaign_id: str) -> Counter[str]:
    return Counter(
        entry["to"] for entry in runtime.simulator.log_entries() if entry.get("campaign_id") == campaign_id
    )


def run_fanout(runtime: LocalRuntime) -> None:
    """Deliver every fan-out work item to the service (as SQS would, one by one)."""
    sqs = runtime.client("sqs")
    url = runtime.queue_url("FanoutQueue")
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            fanout.run_segment(SegmentWork.model_validate_json(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def take_chunks(runtime: LocalRuntime) -> list[SendChunk]:
    """Every chunk on the send queue, removed from it (sorted by chunk id)."""
    sqs = runtime.client("sqs")
    url = runtime.queue_url("SendQueue")
    chunks: list[SendChunk] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            chunks.append(SendChunk.model_validate_json(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return sorted(chunks, key=lambda chunk: chunk.chunk_id)


def deliver(runtime: LocalRuntime, chunk: SendChunk, attempt: int = 1) -> dict[str, Any]:
    """One SQS delivery of `chunk` to the sender function."""
    message = {
        "MessageId": f"{chunk.chunk_id}-{attempt}",
        "ReceiptHandle": f"handle-{chunk.chunk_id}-{attempt}",
        "Body": chunk.model_dump_json(),
        "Attributes": {"ApproximateReceiveCount": str(attempt)},
    }
    queue_arn = runtime.stack.physical["SendQueue"]["Arn"]
    response: dict[str, Any] = runtime.invoke(
        "SenderFunction", events.sqs_event([message], queue_arn, runtime.stack.region)
    )
    return response


# --- every firing is its own run ----------------------------------------------------------------


def test_two_firings_of_a_recurring_campaign_send_twice_each_recipient_once_per_run(
    local: LocalRuntime,
) -> None:
    phones = numbers("212", 12)
    add_subscribers(local, phones, "alerts")
    campaign = store_campaign("cmp_daily")
    first_run = run_id_for(START)

    started = fanout.start(campaign.campaign_id, START)
    assert started.run_id == first_run
    assert started.new_run
    local.run_until_idle(max_virtual=timedelta(minutes=30))

    assert sends_per_number(local, campaign.campaign_id) == dict.fromkeys(phones, 1)
    after_first = record(campaign.campaign_id)
    assert after_first.campaign.status is Status.SCHEDULED  # waits for the next firing
    assert after_first.run is not None
    assert after_first.run.run_id == first_run
    assert after_first.run.scheduled_at == START
    assert after_first.run.completed_at is not None

    # Scheduler retries the first firing late: that run already ran.
    late = fanout.start(campaign.campaign_id, START)
    assert late.skipped == f"run {first_run} already ran"
    assert record(campaign.campaign_id).campaign.version == after_first.campaign.version

    next_day = START + timedelta(days=1)
    local.clock.advance_to(next_day)
    second = fanout.start(campaign.campaign_id, next_day)
    assert second.run_id == run_id_for(next_day)
    assert second.new_run
    # The second run's chunks are delivered twice each (SQS is at-least-once).
    run_fanout(local)
    chunks = take_chunks(local)
    assert chunks
    assert all(chunk.run_id == second.run_id for chunk in chunks)
    for chunk in chunks + chunks:
        deliver(local, chunk)
    local.run_until_idle(max_virtual=timedelta(minutes=30))

    assert sends_per_number(local, campaign.campaign_id) == dict.fromkeys(phones, 2)
    after_second = record(campaign.campaign_id)
    assert after_second.campaign.status is Status.SCHEDULED
    assert after_second.run is not None
    assert after_second.run.run_id == second.run_id
    assert after_second.run.completed_at is not None

    # One reservation per run on each contact, and one message record per run.
    stored = contacts.load(phones[0])
    assert stored is not None
    keys = {key for key in stored.sends if key.startswith(campaign.campaign_id)}
    assert keys == {f"cmp_daily.{first_run}", f"cmp_daily.{second.run_id}"}
    message_ids = {str(stored.sends[key]["message_id"]) for key in keys}
    assert len(message_ids) == 2
    assert all(sends.message_record(message_id) is not None for message_id in message_ids)

    # Per run: exact tallies; per campaign: the report's counters add up over the runs.
    for run_id in (first_run, second.run_id):
        progress = fanout_store.run_progress(campaign.campaign_id, run_id)
        assert (progress.chunked, progress.done, progress.segments_done) == (12, 12, SEGMENTS)
        assert fanout.finished(campaign.campaign_id, run_id)
    assert sends.chunk_totals(campaign.campaign_id)["sent"] == 24
    assert counters.totals(campaign.campaign_id)["audience"] == 24
    assert fanout_store.audience_total(campaign.campaign_id) == 24


def test_a_firing_while_the_previous_run_still_goes_begins_its_own_run(local: LocalRuntime) -> None:
    phones = numbers("212", 3)
    add_subscribers(local, phones, "alerts")
    campaign = store_campaign("cmp_overlap")
    fanout.start(campaign.campaign_id, START)
    run_fanout(local)
    stale_chunks = take_chunks(local)  # run 1's chunks are still waiting

    later = START + timedelta(hours=1)
    local.clock.advance_to(later)
    overlapping = fanout.start(campaign.campaign_id, later)
    assert overlapping.new_run
    assert record(campaign.campaign_id).campaign.status is Status.RUNNING
    local.run_until_idle(max_virtual=timedelta(minutes=30))
    after = record(campaign.campaign_id)
    assert after.campaign.status is Status.SCHEDULED
    assert after.run is not None
    assert after.run.run_id == overlapping.run_id
    # Run 1's late chunks find the campaign waiting for its next firing: nothing more goes out.
    for chunk in stale_chunks:
        deliver(local, chunk)
    assert sends_per_number(local, campaign.campaign_id) == dict.fromkeys(phones, 1)
    assert record(campaign.campaign_id).campaign.version == after.campaign.version


# --- completion -----------------------------------------------------------------------------------


class Crash(Exception):
    pass


def test_a_one_off_campaign_completes_once_after_its_last_chunk_even_when_that_chunk_is_retried(
    local: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    phones = numbers("212", 30) + numbers("718", 30)
    add_subscribers(local, phones, "alerts")
    campaign = store_campaign("cmp_once", schedule=Schedule(kind="once", at=START))
    assert fanout.start(campaign.campaign_id).run_id == SINGLE_RUN
    run_fanout(local)
    chunks = take_chunks(local)
    assert len(chunks) == SEGMENTS  # one per segment (fewer than 100 each)

    completions: list[Status] = []
    complete_run = campaign_service.complete_run

    def counting(campaign_id: str, run_id: str) -> CampaignRecord | None:
        moved = complete_run(campaign_id, run_id)
        if moved is not None:
            completions.append(moved.campaign.status)
        return moved

    monkeypatch.setattr(campaign_service, "complete_run", counting)

    *others, last = chunks
    for chunk in others:
        deliver(local, chunk)
    assert record(campaign.campaign_id).campaign.status is Status.RUNNING  # one chunk to go

    # The last chunk's result is written, then its invocation dies before the check.
    check = fanout.chunk_finished

    def dies(chunk: SendChunk) -> bool:
        raise Crash("killed after the chunk result, before the completion check")

    monkeypatch.setattr(fanout, "chunk_finished", dies)
    failed = deliver(local, last)
    assert failed["batchItemFailures"]  # SQS will deliver it again
    assert record(campaign.campaign_id).campaign.status is Status.RUNNING
    monkeypatch.setattr(fanout, "chunk_finished", check)

    deliver(local, last, attempt=2)  # the retry finds its result recorded, and checks
    assert completions == [Status.COMPLETED]
    done = record(campaign.campaign_id)
    assert done.campaign.status is Status.COMPLETED
    assert done.run is not None
    assert done.run.completed_at is not None

    for attempt in (3, 4):  # more duplicates: nothing moves again
        deliver(local, last, attempt=attempt)
    fanout.release(campaign.campaign_id)
    assert completions == [Status.COMPLETED]
    assert record(campaign.campaign_id).campaign.version == done.campaign.version
    assert sends_per_number(local, campaign.campaign_id) == dict.fromkeys(phones, 1)
    progress = fanout_store.run_progress(campaign.campaign_id, SINGLE_RUN)
    assert (progress.chunked, progress.done) == (60, 60)


def test_an_empty_audience_completes_when_the_fanout_finishes(local: LocalRuntime) -> None:
    add_subscribers(local, numbers("212", 5), "deals")  # nobody on the campaign's topic
    campaign = store_campaign("cmp_nobody", schedule=Schedule(kind="once", at=START))
    fanout.start(campaign.campaign_id)
    run_fanout(local)
    assert take_chunks(local) == []
    assert record(campaign.campaign_id).campaign.status is Status.COMPLETED


def test_a_parked_bucket_holds_completion_until_it_is_released_and_sent(local: LocalRuntime) -> None:
    east, hawaii = numbers("212", 4), numbers("808", 4)  # Honolulu opens at 09:00 = 19:00 UTC
    add_subscribers(local, east + hawaii, "deals")
    campaign = store_campaign(
        "cmp_zones",
        topic="deals",
        message_class="promotional",
        template="Hi, 20% off today",
        schedule=Schedule(kind="once", at=START),
    )
    fanout.start(campaign.campaign_id)
    local.run_until_idle(max_virtual=timedelta(minutes=30))
    assert sends_per_number(local, campaign.campaign_id) == dict.fromkeys(east, 1)
    assert record(campaign.campaign_id).campaign.status is Status.RUNNING  # Hawaii is parked
    assert fanout_store.parked_in_run(campaign.campaign_id, SINGLE_RUN) >= 1

    local.run_until_idle(max_virtual=timedelta(hours=5))
    assert sends_per_number(local, campaign.campaign_id) == dict.fromkeys(east + hawaii, 1)
    assert record(campaign.campaign_id).campaign.status is Status.COMPLETED
    assert fanout_store.parked_in_run(campaign.campaign_id, SINGLE_RUN) == 0


def test_pause_and_cancel_win_over_completion(local: LocalRuntime) -> None:
    phones = numbers("212", 6)
    add_subscribers(local, phones, "alerts")

    paused = store_campaign("cmp_paused", schedule=Schedule(kind="once", at=START))
    fanout.start(paused.campaign_id)
    run_fanout(local)
    chunks = take_chunks(local)
    campaign_service.pause(paused.campaign_id)
    for chunk in chunks:
        assert deliver(local, chunk) == {"batchItemFailures": []}  # parked until the resume
    assert record(paused.campaign_id).campaign.status is Status.PAUSED
    campaign_service.resume(paused.campaign_id)
    local.run_until_idle(max_virtual=timedelta(minutes=30))  # the release schedule, then the sender
    assert record(paused.campaign_id).campaign.status is Status.COMPLETED
    group = local.stack.physical["ScheduleGroup"]["Ref"]
    left = [s["Name"] for s in local.client("scheduler").list_schedules(GroupName=group)["Schedules"]]
    assert not [name for name in left if name.startswith(f"release-{paused.campaign_id}-")]  # fired, gone
    assert sends_per_number(local, paused.campaign_id) == dict.fromkeys(phones, 1)

    cancelled = store_campaign("cmp_cancelled", schedule=Schedule(kind="once", at=START))
    fanout.start(cancelled.campaign_id)
    run_fanout(local)
    chunks = take_chunks(local)
    campaign_service.cancel(cancelled.campaign_id)
    for chunk in chunks:
        deliver(local, chunk)
    assert record(cancelled.campaign_id).campaign.status is Status.CANCELLED
    assert sends_per_number(local, cancelled.campaign_id) == {}
    progress = fanout_store.run_progress(cancelled.campaign_id, SINGLE_RUN)
    assert progress.done == progress.chunked == len(phones)  # every recipient terminal, still cancelled


def test_recurring_start_schedules_ask_scheduler_for_the_firing_time(local: LocalRuntime) -> None:
    campaign = store_campaign("cmp_cron", status=Status.DRAFT)
    campaign_service.schedule(campaign.campaign_id)
    found = local.client("scheduler").get_schedule(
        Name=f"campaign-{campaign.campaign_id}", GroupName=local.stack.physical["ScheduleGroup"]["Ref"]
    )
    assert json.loads(found["Target"]["Input"]) == {
        "action": "start",
        "campaign_id": campaign.campaign_id,
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }


class RacingDynamoDB:
    """DynamoDB whose first transaction loses to another one on the run item (TransactionConflict)."""

    def __init__(self, dynamodb: Any) -> None:
        self.dynamodb = dynamodb
        self.attempts: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dynamodb, name)

    def transact_write_items(self, **request: Any) -> Any:
        self.attempts.append(request)
        if len(self.attempts) == 1:
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                    "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
                },
                "TransactWriteItems",
            )
        return self.dynamodb.transact_write_items(**request)


def test_a_chunk_result_is_counted_on_its_run_once_even_when_its_transaction_races(
    local: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = run_id_for(START)
    chunk_id = f"{run_id}.0-0-now-0"
    racing = RacingDynamoDB(sends.client("dynamodb"))
    attempts = racing.attempts
    monkeypatch.setattr(sends, "client", lambda _service: racing)
    assert sends.complete_chunk("cmp_race", chunk_id, {"sent": 3}, recipients=3, now=START)
    assert len(attempts) == 2
    assert not sends.complete_chunk("cmp_race", chunk_id, {"sent": 3}, recipients=3, now=START)  # a retry
    progress = fanout_store.run_progress("cmp_race", run_id)
    assert progress.done == 3
    assert fanout_store.run_progress("cmp_race", SINGLE_RUN).done == 0  # other runs untouched


def test_a_checkpoint_racing_a_chunk_result_on_the_run_item_is_retried(
    local: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    phones = numbers("212", 8)
    add_subscribers(local, phones, "alerts")
    campaign = store_campaign("cmp_checkpoint", schedule=Schedule(kind="once", at=START))
    fanout.start(campaign.campaign_id)
    aws_client = fanout_store.client
    racing = RacingDynamoDB(aws_client("dynamodb"))
    monkeypatch.setattr(
        fanout_store, "client", lambda service: racing if service == "dynamodb" else aws_client(service)
    )
    run_fanout(local)
    assert len(racing.attempts) >= 2  # the lost transaction was tried again
    progress = fanout_store.run_progress(campaign.campaign_id, SINGLE_RUN)
    assert (progress.chunked, progress.segments_done) == (len(phones), SEGMENTS)  # counted once
    assert fanout_store.audience_total(campaign.campaign_id) == len(phones)


# --- dead-lettered chunks -------------------------------------------------------------------------


def test_a_chunk_that_ends_in_the_dlq_counts_its_unfinished_recipients_and_the_run_completes(
    local: LocalRuntime,
) -> None:
    phones = numbers("212", 4)
    add_subscribers(local, phones, "alerts")
    campaign = store_campaign("cmp_dlq", schedule=Schedule(kind="once", at=START), messages_per_second=1)
    throttle = ProviderError(ErrorKind.THROTTLED, "429", "throttled")
    # The carrier throttles the first message for good: every backoff of every delivery of the chunk.
    local.simulator.injected_errors.extend([throttle] * 6 * fanout.SEND_QUEUE_MAX_RECEIVES)
    fanout.start(campaign.campaign_id)
    run_fanout(local)
    chunk, *others = take_chunks(local)
    for attempt in range(1, fanout.SEND_QUEUE_MAX_RECEIVES):
        deliver(local, chunk, attempt)
        assert sends.chunk_totals(chunk.campaign_id) == {}  # SQS will try again
    failed = deliver(local, chunk, fanout.SEND_QUEUE_MAX_RECEIVES)  # the last one: on to SendDLQ
    assert failed["batchItemFailures"]
    totals = sends.chunk_totals(campaign.campaign_id)
    assert totals == {"failed.dead_lettered": len(chunk.recipients), "recipients": len(chunk.recipients)}
    assert record(campaign.campaign_id).campaign.status is Status.RUNNING  # the other chunks to go

    for other in others:
        deliver(local, other)
    assert record(campaign.campaign_id).campaign.status is Status.COMPLETED
    sent = len(phones) - len(chunk.recipients)
    assert sends.chunk_totals(campaign.campaign_id)["sent"] == sent
    # Redriven from the DLQ later, the dead-lettered chunk is a completed one: nothing is sent.
    deliver(local, chunk, 1)
    assert sum(sends_per_number(local, campaign.campaign_id).values()) == sent
    assert sends.chunk_totals(campaign.campaign_id)["failed.dead_lettered"] == len(chunk.recipients)


def test_a_chunk_that_crashes_on_its_last_delivery_keeps_what_went_out(
    local: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    phones = numbers("212", 5)
    add_subscribers(local, phones, "alerts")
    campaign = store_campaign("cmp_crash", schedule=Schedule(kind="once", at=START))
    fanout.start(campaign.campaign_id)
    run_fanout(local)
    chunk, *others = take_chunks(local)
    complete_chunk = sends.complete_chunk

    def crash_once(*args: Any, **kwargs: Any) -> bool:
        monkeypatch.setattr(sends, "complete_chunk", complete_chunk)
        raise Crash("the sender dies after its sends, before the chunk result")

    monkeypatch.setattr(sends, "complete_chunk", crash_once)
    failed = deliver(local, chunk, fanout.SEND_QUEUE_MAX_RECEIVES)  # its last delivery
    assert failed["batchItemFailures"]
    assert sends_per_number(local, campaign.campaign_id) == dict.fromkeys(chunk.recipients, 1)
    # The crashing attempt counted nothing: the message records say who was sent, once.
    totals = sends.chunk_totals(campaign.campaign_id)
    assert totals["sent"] == totals["recipients"] == len(chunk.recipients)
    assert "failed.dead_lettered" not in totals
    assert not fanout.chunk_dead_lettered(chunk, None, "again")  # the result is written once
    for other in others:
        deliver(local, other)
    assert record(campaign.campaign_id).campaign.status is Status.COMPLETED
    progress = fanout_store.run_progress(campaign.campaign_id, SINGLE_RUN)
    assert progress.done == progress.chunked == len(phones)


def test_the_dead_letter_threshold_is_the_send_queue_redrive_policy() -> None:
    template = load_template()
    policy = template["Resources"]["SendQueue"]["Properties"]["RedrivePolicy"]
    assert policy["maxReceiveCount"] == fanout.SEND_QUEUE_MAX_RECEIVES
