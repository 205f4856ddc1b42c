"""Fan-out on moto (through the local runtime's resources): resumable, exactly once, deferred buckets.

The service is driven directly, work item by work item, so faults can be injected between a
page's chunks going out and its checkpoint (the worst moment to die).
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from benchmarks.fanout import benchmark_campaign, contact_item, read_send_queue, seed
from pydantic import ValidationError

from consentry.domain.campaign import Campaign, Status
from consentry.domain.chunks import SendChunk
from consentry.services import campaigns as campaign_service
from consentry.services import fanout
from consentry.services.fanout import SegmentWork, UnknownRun
from consentry.store import campaigns as campaign_store
from consentry.store import counters
from consentry.store import fanout as fanout_store
from consentry.store.campaigns import CampaignRecord
from consentry_local import events
from consentry_local.runtime import LocalRuntime

#: Tuesday 24 Nov 2026, 06:00 in New York.
SIX_AM_NEW_YORK = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
SEGMENTS = 4
PAGE = 10  # contacts per Scan page: many pages from few contacts


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 24, hour, minute, tzinfo=UTC)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalRuntime]:
    runtime = LocalRuntime(tmp_path, start=SIX_AM_NEW_YORK, parameters={"FanoutSegments": str(SEGMENTS)})
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()


def numbers(area: str, count: int, offset: int = 0) -> list[str]:
    return [f"+1{area}{2_000_000 + offset + n:07d}" for n in range(count)]


def add_contacts(runtime: LocalRuntime, phones: list[str], status: str = "active", **extra: Any) -> None:
    items = [contact_item(phone, topics={"deals": status}, **extra) for phone in phones]
    seed(runtime.client("dynamodb"), runtime.table_name("ContactsTable"), items)


def new_campaign(campaign_id: str = "cmp_fanout", **overrides: Any) -> Campaign:
    campaign = benchmark_campaign(campaign_id, audience=None, **overrides)
    campaign_store.create(CampaignRecord(campaign=campaign))
    return campaign


def take_work(runtime: LocalRuntime) -> list[SegmentWork]:
    """Everything on the fan-out queue (removed from it), as work items."""
    sqs = runtime.client("sqs")
    url = runtime.queue_url("FanoutQueue")
    work: list[SegmentWork] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            work.append(SegmentWork.model_validate_json(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return sorted(work, key=lambda item: item.segment)


def run_all(runtime: LocalRuntime, work: list[SegmentWork]) -> None:
    for item in work:
        fanout.run_segment(item, page_size=PAGE)


def parked_releases(campaign_id: str) -> dict[datetime, int]:
    found: dict[datetime, int] = {}
    for parked in fanout_store.all_parked(campaign_id):
        found[parked.release_at] = found.get(parked.release_at, 0) + len(parked.chunk.recipients)
    return found


class Crash(Exception):
    pass


# --- killed mid-way and retried ----------------------------------------------------------------


def test_a_fanout_killed_mid_way_and_retried_yields_every_recipient_exactly_once(local: LocalRuntime) -> None:
    local.clock.advance_to(at(15))  # 10:00 New York: the east goes now, the west is parked
    east, west = numbers("212", 120), numbers("310", 90)
    add_contacts(local, east + west)
    add_contacts(local, numbers("312", 30, offset=500), status="revoked")  # not subscribed
    campaign = new_campaign()

    fanout.start(campaign.campaign_id)
    work = take_work(local)
    assert [item.segment for item in work] == list(range(SEGMENTS))

    def die_on_second_page(page: int) -> None:
        if page == 1:
            raise Crash("killed after the chunks went out, before the checkpoint")

    crashed = 0
    for item in work:
        try:
            fanout.run_segment(item, page_size=PAGE, after_dispatch=die_on_second_page)
        except Crash:
            crashed += 1
    assert crashed >= SEGMENTS - 1  # with ~50 subscribers per segment nearly all have a 2nd page
    assert not fanout.finished(campaign.campaign_id)

    run_all(local, work)  # SQS redelivers each work item: it resumes from its checkpoint
    run_all(local, work)  # and a duplicate delivery after the end does nothing
    assert fanout.finished(campaign.campaign_id)

    local.clock.advance_to(at(18))
    assert fanout.release(campaign.campaign_id) > 0

    chunks = read_send_queue(local)
    by_id: dict[str, SendChunk] = {}
    for chunk in chunks:
        # A re-sent chunk is recognisable: same id, same recipients.
        assert by_id.setdefault(chunk.chunk_id, chunk) == chunk
    recipients = [phone for chunk in by_id.values() for phone in chunk.recipients]
    assert sorted(recipients) == sorted(east + west)  # every recipient, exactly once
    assert len(chunks) > len(by_id)  # the crashed pages really were sent twice

    # Counted once per page, however often pages ran.
    assert fanout.audience_total(campaign.campaign_id) == len(east + west)
    assert counters.totals(campaign.campaign_id)["audience"] == len(east + west)
    totals = fanout_store.totals(campaign.campaign_id)
    assert totals["scanned"] == len(east + west) + 30
    assert totals["enqueued"] + totals["parked"] == len(east + west)


def test_a_duplicated_work_item_stops_at_the_checkpoint_it_loses(local: LocalRuntime) -> None:
    local.clock.advance_to(at(15))
    add_contacts(local, numbers("212", 80))
    campaign = new_campaign()
    fanout.start(campaign.campaign_id)
    work = take_work(local)[0]
    results: list[fanout.SegmentResult] = []

    def twin_runs_first(page: int) -> None:
        if page == 0 and not results:
            results.append(fanout.run_segment(work, page_size=PAGE))  # the twin finishes the segment

    lost = fanout.run_segment(work, page_size=PAGE, after_dispatch=twin_runs_first)
    assert lost.lost_race
    assert lost.pages == 0
    assert results[0].done
    progress = fanout_store.load(campaign.campaign_id, work.segment)
    assert progress is not None
    assert progress.done
    # The twin counted every page once; the loser added nothing.
    assert progress.counts.get("audience", 0) == progress.counts.get("enqueued", 0)


def test_an_invocation_running_out_of_time_hands_its_segment_over(local: LocalRuntime) -> None:
    local.clock.advance_to(at(15))
    add_contacts(local, numbers("212", 80))
    campaign = new_campaign()
    fanout.start(campaign.campaign_id)
    work = take_work(local)
    first = fanout.run_segment(work[0], page_size=PAGE, time_left=lambda: 30.0)
    assert first.handed_over
    assert first.pages == 1
    continuation = take_work(local)
    assert continuation == [work[0]]
    rest = fanout.run_segment(continuation[0], page_size=PAGE)
    assert rest.done
    progress = fanout_store.load(campaign.campaign_id, work[0].segment)
    assert progress is not None
    assert progress.page == rest.pages + 1


# --- deferred buckets and release schedules --------------------------------------------------


def test_parked_buckets_get_one_release_schedule_per_minute_with_its_at_expression(
    local: LocalRuntime,
) -> None:
    add_contacts(local, numbers("212", 40) + numbers("310", 40) + numbers("808", 40))
    campaign = new_campaign()
    fanout.start(campaign.campaign_id)
    run_all(local, take_work(local))

    assert read_send_queue(local) == []  # 06:00 in New York: nobody's window is open
    assert parked_releases(campaign.campaign_id) == {at(14): 40, at(17): 40, at(19): 40}

    scheduler = local.client("scheduler")
    group = local.stack.physical["ScheduleGroup"]["Ref"]
    names = sorted(s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"])
    assert names == [f"release-{campaign.campaign_id}-{int(at(hour).timestamp())}" for hour in (14, 17, 19)]
    for name, hour in zip(names, (14, 17, 19), strict=True):
        schedule = scheduler.get_schedule(Name=name, GroupName=group)
        assert schedule["ScheduleExpression"] == f"at(2026-11-24T{hour}:00:00)"
        assert schedule["ScheduleExpressionTimezone"] == "UTC"
        assert schedule["ActionAfterCompletion"] == "DELETE"
        assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
        target = schedule["Target"]
        assert target["Arn"] == local.function_arn("FanoutFunction")
        assert target["RoleArn"] == local.stack.physical["SchedulerRole"]["Arn"]
        assert json.loads(target["Input"]) == {"action": "release", "campaign_id": campaign.campaign_id}


def test_release_enqueues_only_what_is_due_and_deletes_it(local: LocalRuntime) -> None:
    add_contacts(local, numbers("212", 30) + numbers("310", 20))
    campaign = new_campaign()
    fanout.start(campaign.campaign_id)
    run_all(local, take_work(local))

    local.clock.advance_to(at(14))
    assert fanout.release(campaign.campaign_id) >= 1
    enqueued = [phone for chunk in read_send_queue(local) for phone in chunk.recipients]
    assert sorted(enqueued) == numbers("212", 30)
    assert parked_releases(campaign.campaign_id) == {at(17): 20}
    assert fanout.release(campaign.campaign_id) == 0  # nothing else due yet


def test_a_paused_campaign_keeps_its_chunks_parked_until_resumed(local: LocalRuntime) -> None:
    add_contacts(local, numbers("212", 30))
    campaign = new_campaign()
    fanout.start(campaign.campaign_id)
    run_all(local, take_work(local))
    campaign_service.pause(campaign.campaign_id)

    local.clock.advance_to(at(14))
    assert fanout.release(campaign.campaign_id) == 0
    assert parked_releases(campaign.campaign_id) == {at(14): 30}

    campaign_service.resume(campaign.campaign_id)
    assert fanout.release(campaign.campaign_id) >= 1
    assert sorted(p for chunk in read_send_queue(local) for p in chunk.recipients) == numbers("212", 30)


def test_a_run_started_while_paused_parks_even_the_open_zones(local: LocalRuntime) -> None:
    local.clock.advance_to(at(15))
    add_contacts(local, numbers("212", 20) + numbers("310", 20))
    campaign = new_campaign(status=Status.PAUSED)
    fanout.start(campaign.campaign_id)
    run_all(local, take_work(local))
    assert read_send_queue(local) == []
    assert parked_releases(campaign.campaign_id) == {at(15): 20, at(17): 20}


def test_a_cancelled_campaign_stops_scanning_and_drops_its_parked_chunks(local: LocalRuntime) -> None:
    add_contacts(local, numbers("212", 60))
    campaign = new_campaign()
    fanout.start(campaign.campaign_id)
    work = take_work(local)

    def cancel_after_first_page(page: int) -> None:
        if page == 0:
            campaign_service.cancel(campaign.campaign_id)

    stopped = fanout.run_segment(work[0], page_size=PAGE, after_dispatch=cancel_after_first_page)
    assert stopped.stopped == "cancelled"
    assert stopped.pages == 1
    assert fanout.run_segment(work[1], page_size=PAGE).stopped == "cancelled"

    local.clock.advance_to(at(14))
    assert fanout.release(campaign.campaign_id) == 0
    assert fanout_store.all_parked(campaign.campaign_id) == []
    assert read_send_queue(local) == []


def test_recipients_with_no_window_before_the_deadline_are_counted_as_suppressed(local: LocalRuntime) -> None:
    add_contacts(local, numbers("212", 15) + numbers("808", 25))
    campaign = new_campaign(deadline=at(18))
    fanout.start(campaign.campaign_id)
    run_all(local, take_work(local))
    assert parked_releases(campaign.campaign_id) == {at(14): 15}
    assert counters.totals(campaign.campaign_id)["suppressed.no_window_before_deadline"] == 25
    assert fanout.audience_total(campaign.campaign_id) == 40


def test_the_sender_can_park_a_chunk_and_the_release_sends_it_back(local: LocalRuntime) -> None:
    campaign = new_campaign(status=Status.RUNNING)
    chunk = SendChunk(campaign_id=campaign.campaign_id, chunk_id="0-0-now-0", recipients=("+12122000000",))
    fanout.park(campaign.campaign_id, chunk, at(11, 30))
    fanout.park(campaign.campaign_id, chunk, at(11, 30))  # parked twice: still one
    with pytest.raises(ValueError, match="another campaign"):
        fanout.park("cmp_other", chunk, at(11, 30))
    assert fanout.release_due(campaign.campaign_id, at(11, 29)) == 0
    assert fanout.release_due(campaign.campaign_id, at(11, 30)) == 1
    assert read_send_queue(local) == [chunk]


# --- start and the handler ------------------------------------------------------------------


def test_start_marks_the_campaign_running_and_a_repeated_start_keeps_the_run(local: LocalRuntime) -> None:
    campaign = new_campaign()
    first = fanout.start(campaign.campaign_id)
    assert first.new_run
    assert first.segments_queued == SEGMENTS
    stored = campaign_store.get(campaign.campaign_id)
    assert stored is not None
    assert stored.campaign.status is Status.RUNNING

    local.clock.advance(3600)
    again = fanout.start(campaign.campaign_id)  # Scheduler retried the start an hour later
    assert not again.new_run
    assert again.segments_queued == SEGMENTS
    assert {progress.as_of for progress in fanout_store.segments(campaign.campaign_id)} == {SIX_AM_NEW_YORK}

    # Campaigns that must not run are left alone, and an unknown one is not an error.
    take_work(local)
    for status in (Status.DRAFT, Status.CANCELLED, Status.COMPLETED):
        idle = new_campaign(f"cmp_{status}", status=status)
        assert fanout.start(idle.campaign_id).skipped == f"campaign is {status}"
        assert fanout_store.segments(idle.campaign_id) == []
    assert fanout.start("cmp_missing").skipped == "unknown campaign"
    assert take_work(local) == []
    # A work item of a run that was never started goes to the DLQ with its cause.
    with pytest.raises(UnknownRun):
        fanout.run_segment(SegmentWork(campaign_id="cmp_missing", segment=0, total_segments=SEGMENTS))


def test_the_handler_runs_work_items_reports_bad_ones_and_releases(local: LocalRuntime) -> None:
    add_contacts(local, numbers("212", 12))
    campaign = new_campaign()
    local.invoke("FanoutFunction", {"action": "start", "campaign_id": campaign.campaign_id})
    work = take_work(local)
    garbled = {"MessageId": "garbled", "ReceiptHandle": "r", "Body": '{"action": "segment", "segment": "x"}'}
    orphan = {
        "MessageId": "orphan",
        "ReceiptHandle": "r",
        "Body": SegmentWork(campaign_id="cmp_missing", segment=0, total_segments=4).model_dump_json(),
    }
    good = [
        {"MessageId": f"good-{item.segment}", "ReceiptHandle": "r", "Body": item.model_dump_json()}
        for item in work
    ]
    event = events.sqs_event(
        [*good, garbled, orphan], local.stack.physical["FanoutQueue"]["Arn"], local.stack.region
    )
    result = local.invoke("FanoutFunction", event)
    assert sorted(item["itemIdentifier"] for item in result["batchItemFailures"]) == ["garbled", "orphan"]
    assert fanout.finished(campaign.campaign_id)

    with pytest.raises(ValidationError):
        local.invoke("FanoutFunction", {"action": "launch", "campaign_id": campaign.campaign_id})

    parked_chunks = len(fanout_store.all_parked(campaign.campaign_id))
    local.clock.advance_to(at(14) + timedelta(seconds=5))
    released = local.invoke("FanoutFunction", {"action": "release", "campaign_id": campaign.campaign_id})
    assert released == {"campaign_id": campaign.campaign_id, "released": parked_chunks}
    assert sorted(p for chunk in read_send_queue(local) for p in chunk.recipients) == numbers("212", 12)
