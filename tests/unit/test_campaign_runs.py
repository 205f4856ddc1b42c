"""Campaign runs, pure: run ids, chunk ids and send keys per run, the start plan, completion, status."""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from consentry.domain.campaign import (
    Campaign,
    CampaignRun,
    IllegalTransition,
    RunProgress,
    Status,
    can_transition,
    completes_run,
    plan_start,
    run_complete,
    status_after_run,
    transition,
)
from consentry.domain.chunks import (
    SINGLE_RUN,
    SendChunk,
    campaign_of_send_key,
    is_run_id,
    run_chunk_id,
    run_id_for,
    run_of_chunk,
    send_key_for,
)
from consentry.domain.report import attributed_campaign
from consentry.domain.schedule import Schedule
from consentry.services.fanout import EVENT_ADAPTER, PagePlan, SegmentWork, StartEvent, chunk_plan
from consentry.services.sender import deferred_chunk_id

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
RUN_1 = "r20261124T150000Z"
RUN_2 = "r20261125T150000Z"
DAILY = Schedule(kind="recurring", cron="cron(0 10 * * ? *)", timezone="America/New_York")
ONCE = Schedule(kind="once", at=NOW + timedelta(hours=1))
NEW_YORK = ZoneInfo("America/New_York")


def campaign(status: Status = Status.RUNNING, schedule: Schedule | None = DAILY, **extra: Any) -> Campaign:
    return Campaign(
        campaign_id="cmp_runs",
        name="Runs",
        topic="alerts",
        template="Your update",
        message_class="transactional",
        status=status,
        schedule=schedule,
        created_at=NOW - timedelta(days=1),
        updated_at=NOW - timedelta(days=1),
        **extra,
    )


def run(run_id: str = RUN_1, completed: bool = False) -> CampaignRun:
    return CampaignRun(run_id=run_id, started_at=NOW, completed_at=NOW if completed else None)


# --- ids ----------------------------------------------------------------------------------------


def test_a_run_is_named_after_the_firing_in_utc_whole_seconds() -> None:
    new_york = datetime(2026, 11, 24, 10, 0, 0, 999, tzinfo=UTC).astimezone(NEW_YORK)
    assert run_id_for(new_york) == "r20261124T100000Z"
    assert run_id_for(NOW) == RUN_1
    assert run_id_for(NOW) < run_id_for(NOW + timedelta(days=1)) == RUN_2  # ids sort by firing
    assert is_run_id(RUN_1)
    assert is_run_id(SINGLE_RUN)
    assert not is_run_id("r2026")
    with pytest.raises(ValueError, match="aware"):
        run_id_for(datetime(2026, 11, 24, 15, 0))


def test_chunk_ids_carry_their_run_and_so_do_the_chunks_made_from_them() -> None:
    single = SendChunk(campaign_id="cmp_runs", chunk_id="0-3-now-1", recipients=("+12122010000",))
    assert single.run_id == SINGLE_RUN
    assert single.send_key == "cmp_runs"  # one-off campaigns keep their keys
    recurring = SendChunk(
        campaign_id="cmp_runs", chunk_id=run_chunk_id(RUN_1, "0-3-now-1"), recipients=("+12122010000",)
    )
    assert recurring.chunk_id == f"{RUN_1}.0-3-now-1"
    assert recurring.run_id == RUN_1
    assert recurring.send_key == f"cmp_runs.{RUN_1}"
    # Deferred recipients parked by the sender stay in the run without anyone carrying it.
    deferred = deferred_chunk_id(recurring.chunk_id, NOW + timedelta(hours=3))
    assert run_of_chunk(deferred) == RUN_1
    assert run_of_chunk(deferred_chunk_id(single.chunk_id, NOW)) == SINGLE_RUN
    assert run_of_chunk("not-a-run.0-0-now-0") == SINGLE_RUN
    with pytest.raises(ValueError, match="run id"):
        run_chunk_id("tomorrow", "0-0-now-0")


def test_send_keys_per_run_name_their_campaign() -> None:
    assert send_key_for("cmp_runs", SINGLE_RUN) == "cmp_runs"
    assert send_key_for("cmp_runs", RUN_2) == f"cmp_runs.{RUN_2}"
    for key in ("cmp_runs", f"cmp_runs.{RUN_2}"):
        assert campaign_of_send_key(key) == "cmp_runs"
    sends = {f"cmp_runs.{RUN_2}": {"at": int(NOW.timestamp()), "topic": "alerts", "state": "reserved"}}
    blamed = attributed_campaign(
        sends, scope="all", opted_out_at=NOW + timedelta(hours=2), campaign_prefix="cmp_"
    )
    assert blamed is not None
    assert blamed.campaign_id == "cmp_runs"


def test_chunk_plan_names_chunks_within_the_run() -> None:
    plan = PagePlan(buckets={None: ["+12122010001", "+12122010000"]}, audience=2)
    ((chunk, release_at),) = chunk_plan("cmp_runs", 2, 5, plan, RUN_1)
    assert chunk.chunk_id == f"{RUN_1}.2-5-now-0"
    assert release_at is None
    ((single, _),) = chunk_plan("cmp_runs", 2, 5, plan)
    assert single.chunk_id == "2-5-now-0"


def test_events_carry_the_run() -> None:
    start = EVENT_ADAPTER.validate_python(
        {"action": "start", "campaign_id": "cmp_runs", "scheduled_time": "2026-11-24T15:00:00Z"}
    )
    assert isinstance(start, StartEvent)
    assert start.scheduled_time == NOW
    with pytest.raises(ValidationError):
        # Scheduler did not substitute its context attribute: refused, so it is retried/dead-lettered.
        EVENT_ADAPTER.validate_python(
            {"action": "start", "campaign_id": "cmp_runs", "scheduled_time": "<aws.scheduler.scheduled-time>"}
        )
    work = SegmentWork(campaign_id="cmp_runs", segment=1, total_segments=4, run_id=RUN_1)
    assert SegmentWork.model_validate_json(work.model_dump_json()) == work
    legacy = SegmentWork.model_validate_json('{"campaign_id": "cmp_runs", "segment": 0, "total_segments": 4}')
    assert legacy.run_id == SINGLE_RUN
    with pytest.raises(ValidationError, match="run id"):
        SegmentWork(campaign_id="cmp_runs", segment=0, total_segments=4, run_id="../x")


# --- status machine -------------------------------------------------------------------------------


def test_only_a_recurring_campaign_goes_back_to_scheduled_after_a_run() -> None:
    assert can_transition(Status.RUNNING, Status.SCHEDULED)
    back = transition(campaign(), Status.SCHEDULED, NOW)
    assert back.status is Status.SCHEDULED
    assert back.version == 2
    with pytest.raises(IllegalTransition, match="only a recurring campaign"):
        transition(campaign(schedule=ONCE), Status.SCHEDULED, NOW)
    with pytest.raises(IllegalTransition, match="completed is final"):
        transition(campaign(Status.COMPLETED, schedule=ONCE), Status.SCHEDULED, NOW)


def test_after_a_run_a_recurring_campaign_waits_for_its_next_unless_its_deadline_passed() -> None:
    assert status_after_run(campaign(schedule=ONCE), NOW) is Status.COMPLETED
    local = Schedule(kind="local_time", local_time="10:00", date="2026-11-25")
    assert status_after_run(campaign(schedule=local), NOW) is Status.COMPLETED
    assert status_after_run(campaign(), NOW) is Status.SCHEDULED
    assert status_after_run(campaign(deadline=NOW + timedelta(days=7)), NOW) is Status.SCHEDULED
    assert status_after_run(campaign(deadline=NOW - timedelta(minutes=1)), NOW) is Status.COMPLETED


# --- starting a run -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "current", "run_id", "action"),
    [
        (Status.SCHEDULED, None, RUN_1, "begin"),  # the first firing
        (Status.SCHEDULED, run(RUN_1, completed=True), RUN_2, "begin"),  # the next firing
        (Status.SCHEDULED, run(RUN_1, completed=True), RUN_1, "skip"),  # a late retry of a run that ran
        (Status.SCHEDULED, run(RUN_2, completed=True), RUN_1, "skip"),  # an older firing
        (Status.SCHEDULED, None, SINGLE_RUN, "begin"),  # a one-off's start
        (Status.RUNNING, run(RUN_1), RUN_1, "continue"),  # Scheduler repeated the start
        (Status.PAUSED, run(RUN_1), RUN_1, "continue"),
        (Status.RUNNING, None, SINGLE_RUN, "continue"),  # started before runs were recorded
        (Status.RUNNING, run(RUN_1), RUN_2, "begin"),  # the next firing while run 1 still goes
        (Status.RUNNING, run(RUN_2), RUN_1, "skip"),
        (Status.DRAFT, None, RUN_1, "skip"),
        (Status.CANCELLED, run(RUN_1), RUN_2, "skip"),
        (Status.COMPLETED, run(SINGLE_RUN, completed=True), SINGLE_RUN, "skip"),
    ],
)
def test_plan_start(status: Status, current: CampaignRun | None, run_id: str, action: str) -> None:
    plan = plan_start(campaign(status), current, run_id)
    assert plan.action == action
    if action == "skip":
        assert plan.reason


# --- completing a run -----------------------------------------------------------------------------


def test_a_run_is_complete_when_segments_finished_chunked_recipients_done_nothing_parked() -> None:
    done = RunProgress(run_id=RUN_1, total_segments=4, segments_done=4, chunked=250, done=250)
    assert run_complete(done, parked_chunks=0)
    assert not run_complete(done, parked_chunks=1)
    assert not run_complete(done.model_copy(update={"segments_done": 3}), parked_chunks=0)
    assert not run_complete(done.model_copy(update={"done": 249}), parked_chunks=0)
    assert not run_complete(done.model_copy(update={"total_segments": None}), parked_chunks=0)
    empty = RunProgress(run_id=SINGLE_RUN, total_segments=2, segments_done=2)
    assert run_complete(empty, parked_chunks=0)  # an audience of nobody (or all suppressed at fan-out)
    assert not run_complete(RunProgress(run_id=SINGLE_RUN), parked_chunks=0)  # nothing known yet


@pytest.mark.parametrize(
    ("status", "current", "run_id", "moves"),
    [
        (Status.RUNNING, run(RUN_1), RUN_1, True),
        (Status.RUNNING, None, SINGLE_RUN, True),
        (Status.RUNNING, None, RUN_1, False),
        (Status.PAUSED, run(RUN_1), RUN_1, False),  # a pause wins
        (Status.CANCELLED, run(RUN_1), RUN_1, False),  # a cancel wins
        (Status.RUNNING, run(RUN_2), RUN_1, False),  # superseded by the next firing
        (Status.RUNNING, run(RUN_1, completed=True), RUN_1, False),  # once only
        (Status.SCHEDULED, run(RUN_1, completed=True), RUN_1, False),
        (Status.COMPLETED, run(SINGLE_RUN, completed=True), SINGLE_RUN, False),
    ],
)
def test_completes_run(status: Status, current: CampaignRun | None, run_id: str, moves: bool) -> None:
    assert completes_run(campaign(status), current, run_id) is moves
