"""Campaign store and schedules on moto: what EventBridge Scheduler holds after each change,
version-guarded writes, and the listing index.

The stack is the one template.yaml declares (the local runtime creates it in moto), so the
group, role and fan-out ARN checked here are the deployment's own wiring.
"""

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from consentry.config import settings
from consentry.domain.campaign import CampaignSpec, Status, transition
from consentry.domain.consent import ChangeKind, ConsentChange, Evidence
from consentry.domain.schedule import Schedule, local_instant
from consentry.services import campaigns as service
from consentry.services import consent
from consentry.store import aws, codec, counters
from consentry.store import campaigns as store
from consentry.store.campaigns import CampaignRecord, InvalidPageToken, VersionConflict
from consentry_local.runtime import LocalRuntime
from tests.conftest import START

FANOUT_ARN = "arn:aws:lambda:us-east-1:123456789012:function:consentry-local-fanout"
ROLE_ARN = "arn:aws:iam::123456789012:role/consentry-local-SchedulerRole"


def subscribe(phone: str, topic: str = "deals", *, attributes: dict[str, Any] | None = None) -> None:
    consent.commit_change(
        phone,
        ConsentChange(
            kind=ChangeKind.OPT_IN,
            scope=topic,
            event_time=START - timedelta(days=1),
            evidence=Evidence(source="import", reference=f"import-{phone}-{topic}"),
        ),
    )
    if attributes is not None:
        set_attributes(phone, attributes)


def set_attributes(phone: str, attributes: dict[str, Any]) -> None:
    # Profile attributes as store/contacts.py lays them out (an import would write them).
    aws.client("dynamodb").update_item(
        TableName=settings().contacts_table,
        Key={"phone": {"S": phone}},
        UpdateExpression="SET attributes = :attributes",
        ExpressionAttributeValues={":attributes": codec.to_value(attributes)},
    )


def schedule_in_scheduler(runtime: LocalRuntime, name: str) -> dict[str, Any] | None:
    scheduler = runtime.client("scheduler")
    try:
        found: dict[str, Any] = scheduler.get_schedule(Name=name, GroupName=settings().schedule_group)
    except scheduler.exceptions.ResourceNotFoundException:
        return None
    return found


def new_campaign(**overrides: Any) -> str:
    values: dict[str, Any] = {"name": "Ferret treats", "topic": "deals", "template": "Hi {first_name|there}"}
    values.update(overrides)
    return service.create(CampaignSpec.model_validate(values)).campaign.campaign_id


def test_one_off_schedule_targets_the_fanout_through_the_scheduler_role(runtime: LocalRuntime) -> None:
    at = START + timedelta(days=1, hours=2)
    campaign_id = new_campaign(schedule={"kind": "once", "at": at.isoformat()})
    service.schedule(campaign_id)

    found = schedule_in_scheduler(runtime, f"campaign-{campaign_id}")
    assert found is not None
    assert settings().schedule_group == runtime.stack.physical["ScheduleGroup"]["Ref"]
    assert found["GroupName"] == settings().schedule_group
    assert found["ScheduleExpression"] == "at(2026-11-25T17:00:00)"
    assert found["ScheduleExpressionTimezone"] == "UTC"
    assert found["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert found["ActionAfterCompletion"] == "DELETE"
    assert found["State"] == "ENABLED"
    assert found["Target"]["Arn"] == FANOUT_ARN
    assert found["Target"]["RoleArn"] == ROLE_ARN
    assert json.loads(found["Target"]["Input"]) == {"action": "start", "campaign_id": campaign_id}


def test_recurring_schedule_keeps_its_cron_zone_and_stops_at_the_deadline(runtime: LocalRuntime) -> None:
    deadline = START + timedelta(days=30)
    campaign_id = new_campaign(deadline=deadline.isoformat())
    service.schedule(
        campaign_id, Schedule(kind="recurring", cron="cron(0 10 ? * MON *)", timezone="America/New_York")
    )
    found = schedule_in_scheduler(runtime, f"campaign-{campaign_id}")
    assert found is not None
    assert found["ScheduleExpression"] == "cron(0 10 ? * MON *)"
    assert found["ScheduleExpressionTimezone"] == "America/New_York"
    assert found["ActionAfterCompletion"] == "NONE"
    assert found["EndDate"] == deadline


def test_local_time_schedule_fires_at_the_first_subscriber_zone(runtime: LocalRuntime) -> None:
    subscribe("+13105550123", attributes={"pets": ["ferret"]})  # Los Angeles
    subscribe("+13125550100", attributes={"pets": ["ferret"]})  # Chicago
    subscribe("+12125550142", attributes={"pets": ["cat"]})  # New York, not in the audience
    subscribe("+16175550111", "alerts", attributes={"pets": ["ferret"]})  # Boston, other topic
    campaign_id = new_campaign(
        audience={"attribute": "pets", "op": "contains", "value": "ferret"},
        schedule={"kind": "local_time", "local_time": "10:00", "date": "2026-11-27"},
    )
    record = service.schedule(campaign_id)
    chicago = local_instant(datetime(2026, 11, 27, 10, 0), "America/Chicago")
    assert record.trigger is not None
    assert record.trigger.expression == f"at({chicago:%Y-%m-%dT%H:%M:%S})"
    found = schedule_in_scheduler(runtime, f"campaign-{campaign_id}")
    assert found is not None
    assert found["ScheduleExpression"] == record.trigger.expression


def test_pause_disables_resume_enables_cancel_deletes(runtime: LocalRuntime) -> None:
    campaign_id = new_campaign(schedule={"kind": "once", "at": (START + timedelta(days=1)).isoformat()})
    service.schedule(campaign_id)
    name = f"campaign-{campaign_id}"

    service.pause(campaign_id)
    paused = schedule_in_scheduler(runtime, name)
    assert paused is not None
    assert paused["State"] == "DISABLED"
    assert paused["ScheduleExpression"] == "at(2026-11-25T15:00:00)"
    assert paused["Target"]["RoleArn"] == ROLE_ARN

    service.resume(campaign_id)
    resumed = schedule_in_scheduler(runtime, name)
    assert resumed is not None
    assert resumed["State"] == "ENABLED"
    assert json.loads(resumed["Target"]["Input"]) == {"action": "start", "campaign_id": campaign_id}

    service.cancel(campaign_id)
    assert schedule_in_scheduler(runtime, name) is None
    assert store.load(campaign_id).campaign.status is Status.CANCELLED


def test_resume_of_a_running_campaign_schedules_a_release(runtime: LocalRuntime) -> None:
    campaign_id = new_campaign(schedule={"kind": "once", "at": (START + timedelta(hours=1)).isoformat()})
    service.schedule(campaign_id)
    service.set_status(campaign_id, Status.RUNNING)
    service.pause(campaign_id)
    service.resume(campaign_id)
    release_at = START + timedelta(minutes=1)
    found = schedule_in_scheduler(runtime, f"release-{campaign_id}-{int(release_at.timestamp())}")
    assert found is not None
    assert found["ScheduleExpression"] == "at(2026-11-24T15:01:00)"
    assert found["ActionAfterCompletion"] == "DELETE"
    assert found["Target"]["Arn"] == FANOUT_ARN
    assert json.loads(found["Target"]["Input"]) == {"action": "release", "campaign_id": campaign_id}


def test_scheduler_failure_changes_nothing(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    campaign_id = new_campaign(schedule={"kind": "once", "at": (START + timedelta(days=1)).isoformat()})
    scheduler = aws.client("scheduler")

    def refuse(**_: Any) -> None:
        error = {
            "Error": {"Code": "AccessDeniedException", "Message": "not authorized to perform iam:PassRole"}
        }
        raise ClientError(error, "CreateSchedule")

    monkeypatch.setattr(scheduler, "create_schedule", refuse)
    with pytest.raises(
        service.scheduling.SchedulerFailure, match=r"could not create campaign-.*AccessDenied"
    ):
        service.schedule(campaign_id)
    record = store.load(campaign_id)
    assert record.campaign.status is Status.DRAFT
    assert record.trigger is None
    monkeypatch.undo()
    assert service.schedule(campaign_id).campaign.status is Status.SCHEDULED  # the retry just works


# --- the store -------------------------------------------------------------------------------


def test_a_stale_write_is_refused(runtime: LocalRuntime) -> None:
    campaign_id = new_campaign(schedule={"kind": "once", "at": (START + timedelta(days=1)).isoformat()})
    first = store.load(campaign_id)
    second = store.load(campaign_id)
    now = START + timedelta(seconds=5)
    store.save(
        first.model_copy(update={"campaign": transition(first.campaign, Status.SCHEDULED, now)}),
        expected_version=1,
    )
    with pytest.raises(VersionConflict):
        store.save(
            second.model_copy(update={"campaign": transition(second.campaign, Status.CANCELLED, now)}),
            expected_version=1,
        )
    assert store.load(campaign_id).campaign.status is Status.SCHEDULED
    with pytest.raises(ValueError, match="must be version 2"):
        store.save(second, expected_version=1)  # not bumped


def test_create_never_overwrites_an_existing_campaign(runtime: LocalRuntime) -> None:
    campaign_id = new_campaign()
    record = store.load(campaign_id)
    with pytest.raises(VersionConflict):
        store.create(
            record.model_copy(update={"campaign": record.campaign.model_copy(update={"name": "other"})})
        )
    assert store.load(campaign_id).campaign.name == "Ferret treats"


def test_status_changes_keep_attributes_other_modules_store_on_the_item(runtime: LocalRuntime) -> None:
    campaign_id = new_campaign(schedule={"kind": "once", "at": (START + timedelta(days=1)).isoformat()})
    dynamodb = runtime.client("dynamodb")
    table = settings().campaigns_table
    dynamodb.update_item(
        TableName=table,
        Key=store.campaign_key(campaign_id),
        UpdateExpression="SET other_module = :v",
        ExpressionAttributeValues={":v": {"S": "kept"}},
    )
    service.schedule(campaign_id)
    service.pause(campaign_id)
    item = dynamodb.get_item(TableName=table, Key=store.campaign_key(campaign_id))["Item"]
    assert item["other_module"] == {"S": "kept"}
    assert item["paused_from"] == {"S": "scheduled"}
    service.resume(campaign_id)
    item = dynamodb.get_item(TableName=table, Key=store.campaign_key(campaign_id))["Item"]
    assert "paused_from" not in item  # removed, not left stale
    assert item["version"] == {"N": "4"}


def test_round_trip_keeps_every_field(runtime: LocalRuntime) -> None:
    spec = {
        "name": "Everything",
        "topic": "deals",
        "template": "Hi {first_name|there} {{literal}}",
        "audience": {
            "all": [
                {"attribute": "pets", "op": "contains", "value": "ferret"},
                {"attribute": "spend", "op": "gte", "value": 12.5},
                {"not": {"attribute": "vip", "op": "equals", "value": True}},
            ]
        },
        "schedule": {"kind": "local_time", "local_time": "10:30", "date": "2026-12-01"},
        "window": {"start": "10:00", "end": "18:00", "days": "mon-fri"},
        "caps": {"max_per_days": {"count": 2, "days": 7}},
        "deadline": "2026-12-02T00:00:00Z",
        "messages_per_second": 25,
        "max_segments": 2,
    }
    campaign_id = new_campaign(**spec)
    stored = store.load(campaign_id).campaign
    assert stored.model_dump(include=set(spec)) == CampaignSpec.model_validate(spec).model_dump()
    assert stored.schedule == Schedule(kind="local_time", local_time=time(10, 30), date=date(2026, 12, 1))


def test_listing_is_newest_first_paged_and_filtered(runtime: LocalRuntime) -> None:
    ids = []
    for index in range(5):
        runtime.clock.advance(60)
        ids.append(new_campaign(name=f"c{index}"))
    service.schedule(ids[1], Schedule(kind="once", at=START + timedelta(days=1)))
    first, token = store.list_campaigns(limit=2)
    assert [r.campaign.campaign_id for r in first] == [ids[4], ids[3]]
    assert token is not None
    second, token = store.list_campaigns(limit=2, page_token=token)
    third, token = store.list_campaigns(limit=2, page_token=token)
    assert [r.campaign.campaign_id for r in second + third] == [ids[2], ids[1], ids[0]]
    scheduled: list[CampaignRecord] = []
    token = None
    while True:
        page, token = store.list_campaigns(status=Status.SCHEDULED, limit=2, page_token=token)
        scheduled.extend(page)
        if token is None:
            break
    assert [r.campaign.campaign_id for r in scheduled] == [ids[1]]
    with pytest.raises(InvalidPageToken):
        store.list_campaigns(page_token="bm90IGEgdG9rZW4=")


def test_counter_and_other_items_under_the_campaign_stay_out_of_the_listing(runtime: LocalRuntime) -> None:
    campaign_id = new_campaign()
    counters.add(campaign_id, {"sent": 3})
    records, _ = store.list_campaigns()
    assert [r.campaign.campaign_id for r in records] == [campaign_id]
    assert records[0].campaign.created_at == START.astimezone(UTC)
