"""Campaigns end to end on the local runtime: the admin API and the CLI, subscribers who came in
by keyword (DEALS, YES) or by a recorded opt-in, previews that match them, schedules that
EventBridge Scheduler (emulated) fires at the fan-out, and every status change.

START is Tuesday 2026-11-24 15:00 UTC: 10:00 in New York and Toronto, 07:00 in Los Angeles.
"""

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from consentry import admin_client, cli
from consentry.config import settings
from consentry.domain.consent import ChangeKind, ConsentChange, Evidence
from consentry.services import consent
from consentry.store import aws, codec
from consentry_local.runtime import HttpResponse, LocalRuntime
from tests.conftest import START
from tests.e2e.helpers import RuntimeAdminClient, sent_to

ANA = "+12125550142"  # New York, subscribed by keyword: DEALS then YES
BEN = "+12125550143"  # New York, no {store}: the template cannot be rendered for him
CARA = "+13105550123"  # Los Angeles: 07:00 at START
DAN = "+12125550144"  # New York, owns a cat: outside the audience
EVE = "+12125550145"  # New York, texted DEALS but never YES: not subscribed
FAY = "+12125550146"  # New York, subscribed, then STOP
GIL = "+14165550123"  # Toronto: Canadian price
HAL = "+12125550147"  # New York, alerts only: the one recipient of the campaign that really fires

FERRET_OWNERS = {"attribute": "pets", "op": "contains", "value": "ferret"}
TEMPLATE = "Hi {first_name|there}! Ferret treats are 20% off at {store}."


def opt_in(phone: str, topic: str = "deals") -> None:
    consent.commit_change(
        phone,
        ConsentChange(
            kind=ChangeKind.OPT_IN,
            scope=topic,
            event_time=START - timedelta(days=2),
            evidence=Evidence(source="web", reference=f"form-{phone}-{topic}", text="Yes, text me deals"),
        ),
    )


def set_attributes(phone: str, **attributes: Any) -> None:
    # Profile attributes as store/contacts.py lays them out (an import would write them).
    aws.client("dynamodb").update_item(
        TableName=settings().contacts_table,
        Key={"phone": {"S": phone}},
        UpdateExpression="SET attributes = :attributes",
        ExpressionAttributeValues={":attributes": codec.to_value(attributes)},
    )


def seed(runtime: LocalRuntime) -> None:
    runtime.text_in(ANA, "DEALS")
    runtime.run_until_idle()
    runtime.advance(30)
    runtime.text_in(ANA, "YES")
    runtime.text_in(EVE, "DEALS")
    runtime.run_until_idle()
    for phone in (BEN, CARA, DAN, FAY, GIL):
        opt_in(phone)
    opt_in(HAL, "alerts")
    runtime.text_in(FAY, "STOP")
    runtime.run_until_idle()
    set_attributes(ANA, first_name="Ana", pets=["ferret"], store="Soho")
    set_attributes(BEN, pets=["ferret", "dog"])
    set_attributes(CARA, first_name="Cara", pets=["ferret"], store="Venice")
    set_attributes(DAN, first_name="Dan", pets=["cat"], store="Soho")
    set_attributes(EVE, pets=["ferret"], store="Soho")
    set_attributes(FAY, pets=["ferret"], store="Soho")
    set_attributes(GIL, first_name="Gil", pets=["ferret"], store="Queen St")
    set_attributes(HAL, first_name="Hal")


def call(runtime: LocalRuntime, method: str, path: str, body: Any = None) -> HttpResponse:
    payload = json.dumps(body) if body is not None else ""
    return runtime.http(method, "/v1" + path, body=payload, headers={"Content-Type": "application/json"})


def create(runtime: LocalRuntime, **spec: Any) -> dict[str, Any]:
    values = {
        "name": "Ferret treats",
        "topic": "deals",
        "template": TEMPLATE,
        "audience": FERRET_OWNERS,
        **spec,
    }
    response = call(runtime, "POST", "/campaigns", values)
    assert response.status == 201, response.body
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    """One seeded stack for the module (seeding by keyword takes seconds): every test makes its own
    campaigns and none changes a contact, so they do not depend on each other or on order."""
    local = LocalRuntime(tmp_path_factory.mktemp("campaigns"), start=START)
    local.start()
    try:
        seed(local)
        yield local
    finally:
        local.stop()


@pytest.fixture
def cli_api(seeded: LocalRuntime) -> Iterator[None]:
    admin_client.use_client(lambda _url: RuntimeAdminClient(seeded))
    try:
        yield
    finally:
        admin_client.use_client(None)


def test_preview_matches_the_seeded_subscribers(seeded: LocalRuntime) -> None:
    campaign = create(seeded)
    assert campaign["status"] == "draft"
    assert campaign["message_class"] == "promotional"
    sent_before = len(seeded.simulator.log_entries())

    report = call(seeded, "POST", f"/campaigns/{campaign['campaign_id']}/preview").json()
    assert report["timing"] == "now"
    assert report["audience"] == 4  # Ana, Ben, Cara, Gil
    assert report["would_send"] == 2  # Ana and Gil
    assert report["suppressed"] == {"missing_attribute:store": 1, "window:federal_window": 1}
    assert sorted(sample["text"] for sample in report["samples"]) == [
        "Hi Ana! Ferret treats are 20% off at Soho.\nReply STOP to opt out",
        "Hi Gil! Ferret treats are 20% off at Queen St.\nReply STOP to opt out",
    ]
    assert {sample["to"] for sample in report["samples"]} == {"+1********42", "+1********23"}
    assert report["encoding"] == "GSM-7"
    assert report["segments"]["total"] == 2
    assert report["estimated_cost"] == {
        "total": 0.01162,
        "by_country": {
            "CA": {"recipients": 1, "segments": 1, "price_per_segment": 0.00581, "cost": 0.00581},
            "US": {"recipients": 1, "segments": 1, "price_per_segment": 0.00581, "cost": 0.00581},
        },
    }
    assert len(seeded.simulator.log_entries()) == sent_before  # a dry run sends nothing


def test_preview_at_a_time_and_for_one_number(seeded: LocalRuntime) -> None:
    campaign_id = create(seeded)["campaign_id"]
    night = call(seeded, "POST", f"/campaigns/{campaign_id}/preview?at=2026-11-25T04:00:00Z").json()
    assert night["would_send"] == 0
    assert sum(night["suppressed"].values()) == 4
    assert all(reason.startswith("window:") or reason.startswith("missing") for reason in night["suppressed"])

    cara = call(seeded, "POST", f"/campaigns/{campaign_id}/preview?phone=%2B13105550123").json()["recipient"]
    assert cara["in_audience"] is True
    assert cara["reason"] == "window:federal_window"
    assert cara["next_allowed"] == "2026-11-24T17:00:00+00:00"  # 09:00 in LA: the promotional window
    fay = call(seeded, "POST", f"/campaigns/{campaign_id}/preview?phone=%2B12125550146").json()["recipient"]
    assert (fay["in_audience"], fay["reason"]) == (False, "opted_out")
    eve = call(seeded, "POST", f"/campaigns/{campaign_id}/preview?phone=%2B12125550145").json()["recipient"]
    assert (eve["in_audience"], eve["reason"]) == (False, "pending_confirmation")


def test_local_time_campaign_reaches_each_zone_at_ten(seeded: LocalRuntime) -> None:
    schedule = {"kind": "local_time", "local_time": "10:00", "date": "2026-11-25"}
    campaign_id = create(seeded, schedule=schedule)["campaign_id"]
    report = call(seeded, "POST", f"/campaigns/{campaign_id}/preview").json()
    assert report["timing"] == "local_time"
    assert report["would_send"] == 3  # Cara too: 10:00 in Los Angeles
    scheduled = call(seeded, "POST", f"/campaigns/{campaign_id}/schedule")
    assert scheduled.status == 200, scheduled.body
    # The first audience zone to reach 10:00 is New York's (Toronto shares it): 15:00 UTC.
    assert scheduled.json()["trigger"]["expression"] == "at(2026-11-25T15:00:00)"


def test_status_changes_and_their_refusals(seeded: LocalRuntime) -> None:
    at = (START + timedelta(days=1)).isoformat()
    campaign_id = create(seeded)["campaign_id"]
    base = f"/campaigns/{campaign_id}"

    refused = call(seeded, "POST", f"{base}/pause")
    assert refused.status == 409
    assert refused.json()["error"] == (
        "cannot move a campaign from draft to paused: from draft it can go to cancelled, scheduled"
    )
    scheduled = call(seeded, "POST", f"{base}/schedule", {"kind": "once", "at": at})
    assert scheduled.status == 200, scheduled.body
    assert scheduled.json()["status"] == "scheduled"
    assert scheduled.json()["trigger"]["name"] == f"campaign-{campaign_id}"

    paused = call(seeded, "POST", f"{base}/pause")
    assert (paused.status, paused.json()["status"], paused.json()["paused_from"]) == (
        200,
        "paused",
        "scheduled",
    )
    assert call(seeded, "POST", f"{base}/pause").status == 409
    assert call(seeded, "POST", f"{base}/schedule").status == 409
    resumed = call(seeded, "POST", f"{base}/resume")
    assert (resumed.status, resumed.json()["status"]) == (200, "scheduled")
    cancelled = call(seeded, "POST", f"{base}/cancel")
    assert (cancelled.status, cancelled.json()["status"], cancelled.json()["trigger"]) == (
        200,
        "cancelled",
        None,
    )
    for action in ("resume", "pause", "cancel", "schedule"):
        response = call(seeded, "POST", f"{base}/{action}")
        assert response.status == 409, action
        assert "cancelled is final" in response.json()["error"] or "only a paused" in response.json()["error"]

    shown = call(seeded, "GET", base).json()
    assert (shown["status"], shown["version"]) == ("cancelled", 5)
    scheduler = seeded.client("scheduler")
    names = [s["Name"] for s in scheduler.list_schedules(GroupName=settings().schedule_group)["Schedules"]]
    assert f"campaign-{campaign_id}" not in names


def test_bad_requests_say_why(seeded: LocalRuntime) -> None:
    runtime = seeded
    empty = call(runtime, "POST", "/campaigns", {})
    assert empty.status == 422
    assert {tuple(d["loc"]) for d in empty.json()["detail"]} == {
        ("body", "name"),
        ("body", "topic"),
        ("body", "template"),
    }

    unknown_topic = call(runtime, "POST", "/campaigns", {"name": "x", "topic": "ferrets", "template": "hi"})
    assert unknown_topic.status == 400
    assert (
        unknown_topic.json()["error"] == "topic 'ferrets' is not in the program; its topics are alerts, deals"
    )

    code = call(
        runtime, "POST", "/campaigns", {"name": "x", "topic": "deals", "template": "Hi {user.__class__}"}
    )
    assert code.status == 422
    assert "attribute access ('.') is not allowed" in code.json()["error"]

    too_long = call(runtime, "POST", "/campaigns", {"name": "x", "topic": "deals", "template": "ж" * 300})
    assert too_long.status == 400
    assert too_long.json()["error"].startswith("template: template needs 5 segments")

    past = call(
        runtime,
        "POST",
        "/campaigns",
        {
            "name": "x",
            "topic": "deals",
            "template": "hi",
            "schedule": {"kind": "once", "at": "2026-11-24T14:00:00Z"},
        },
    )
    assert (past.status, past.json()["error"]) == (400, "schedule: the scheduled time has already passed")

    filter_op = call(
        runtime,
        "POST",
        "/campaigns",
        {
            "name": "x",
            "topic": "deals",
            "template": "hi",
            "audience": {"attribute": "pets", "op": "like", "value": 1},
        },
    )
    assert filter_op.status == 422
    assert "op one of" in filter_op.json()["error"]

    not_json = runtime.http(
        "POST", "/v1/campaigns", body="{name", headers={"Content-Type": "application/json"}
    )
    assert (not_json.status, not_json.json()["error"]) == (422, "body: JSON decode error")

    campaign_id = create(runtime)["campaign_id"]
    no_at = call(runtime, "POST", f"/campaigns/{campaign_id}/schedule", {"kind": "once"})
    assert no_at.status == 422
    assert "a once schedule needs at" in no_at.json()["error"]
    bad_cron = call(
        runtime, "POST", f"/campaigns/{campaign_id}/schedule", {"kind": "recurring", "cron": "0 10 * * *"}
    )
    assert bad_cron.status == 422
    assert "cron" in bad_cron.json()["error"]
    no_schedule = call(runtime, "POST", f"/campaigns/{campaign_id}/schedule")
    assert no_schedule.status == 400
    naive = call(runtime, "POST", f"/campaigns/{campaign_id}/preview?at=2026-11-25T10:00:00")
    assert (naive.status, naive.json()["error"]) == (
        400,
        "at needs a UTC offset or Z, e.g. 2026-11-24T10:00:00-05:00",
    )

    for method, path in (("GET", "/campaigns/cmp_missing"), ("POST", "/campaigns/cmp_missing/pause")):
        missing = call(runtime, method, path)
        assert (missing.status, missing.json()["error"]) == (404, "no campaign cmp_missing")
    assert call(runtime, "GET", "/campaigns?status=finished").status == 422
    assert call(runtime, "GET", "/campaigns?next=garbage").status == 400


def test_the_trigger_fires_the_fanout_and_deletes_itself(seeded: LocalRuntime) -> None:
    # Transactional, to Hal alone: the other tests' subscribers receive nothing (no cap is used up).
    at = seeded.clock.now() + timedelta(minutes=5)
    campaign = create(
        seeded,
        topic="alerts",
        template="Hi {first_name|there}, your order shipped.",
        audience=None,
        schedule={"kind": "once", "at": at.isoformat()},
    )
    campaign_id = campaign["campaign_id"]
    assert campaign["message_class"] == "transactional"
    assert call(seeded, "POST", f"/campaigns/{campaign_id}/schedule").status == 200
    seeded.run_until_idle(max_virtual=timedelta(minutes=15))

    assert any(i.function == "FanoutFunction" and i.ok for i in seeded.invocations)
    shown = call(seeded, "GET", f"/campaigns/{campaign_id}").json()
    # Hal's chunk was its run's last: the campaign completed (services/fanout.py check_run).
    assert shown["status"] == "completed"
    assert shown["run"]["completed_at"] is not None
    assert shown["run"]["progress"]["done"] == shown["run"]["progress"]["chunked"] == 1
    scheduler = seeded.client("scheduler")
    names = [s["Name"] for s in scheduler.list_schedules(GroupName=settings().schedule_group)["Schedules"]]
    assert f"campaign-{campaign_id}" not in names  # one-off: deleted after firing
    assert [entry["body"] for entry in sent_to(seeded, HAL)] == ["Hi Hal, your order shipped."]
    assert not any("order shipped" in entry["body"] for entry in sent_to(seeded, ANA))

    # Completed is final (pause and resume while running: tests/integration/test_campaign_runs.py).
    refused = call(seeded, "POST", f"/campaigns/{campaign_id}/pause")
    assert (refused.status, refused.json()["error"]) == (
        409,
        "cannot move a campaign from completed to paused: completed is final",
    )
    seeded.run_until_idle(max_virtual=timedelta(minutes=5))
    assert len(sent_to(seeded, HAL)) == 1  # nothing is sent twice


def test_the_cli_drives_a_campaign(
    seeded: LocalRuntime, cli_api: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "ferrets.json"
    spec.write_text(
        json.dumps(
            {"name": "Ferret treats", "topic": "deals", "template": TEMPLATE, "audience": FERRET_OWNERS}
        )
    )
    assert cli.main(["campaign", "create", "--file", str(spec), "--json"]) == 0
    campaign_id = json.loads(capsys.readouterr().out)["campaign_id"]

    assert cli.main(["campaign", "preview", campaign_id]) == 0
    table = capsys.readouterr().out
    assert "audience     4" in table
    assert "would send   2" in table
    assert "missing_attribute:store" in table

    assert cli.main(["campaign", "pause", campaign_id]) == 2
    assert capsys.readouterr().err == (
        "consentry: error: 409: cannot move a campaign from draft to paused: "
        "from draft it can go to cancelled, scheduled\n"
    )
    assert cli.main(["campaign", "schedule", campaign_id, "--at", "2026-11-25T15:00:00Z"]) == 0
    assert "at(2026-11-25T15:00:00)" in capsys.readouterr().out
    assert cli.main(["campaign", "pause", campaign_id]) == 0
    assert "paused (paused from scheduled)" in capsys.readouterr().out
    assert cli.main(["campaign", "list", "--status", "paused"]) == 0
    assert campaign_id in capsys.readouterr().out
    assert cli.main(["campaign", "cancel", campaign_id]) == 0
    assert cli.main(["campaign", "show", campaign_id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["status"] == "cancelled"
    assert cli.main(["campaign", "show", "cmp_missing"]) == 2
    assert capsys.readouterr().err == "consentry: error: 404: no campaign cmp_missing\n"
