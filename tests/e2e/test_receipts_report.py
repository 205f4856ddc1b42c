"""A campaign end to end on the local runtime, then its report: subscribers opt in by keyword,
the campaign goes out through the carrier simulator, receipts come back over SNS (one number is
dead), one recipient texts STOP after receiving it, and the report, the CLI and the program's
weekly numbers all say so."""

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from consentry import admin_client, cli
from consentry.providers.base import OutboundSms
from consentry_local.runtime import LocalRuntime
from tests.conftest import START
from tests.e2e.helpers import RuntimeAdminClient, contact, sent_to

PEOPLE = [f"+1212555{index:04d}" for index in range(150, 157)]
DEAD = PEOPLE[0]
QUITTER = PEOPLE[1]
TEMPLATE = "Consentry Demo: 20% off everything today with code FALL20."


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalRuntime, str]]:
    """The whole story once (it takes a few seconds); the tests read what it left behind."""
    runtime = LocalRuntime(tmp_path_factory.mktemp("story"), start=START)
    runtime.start()
    try:
        for phone in PEOPLE:
            runtime.text_in(phone, "DEALS")
        runtime.run_until_idle()
        runtime.advance(60)
        for phone in PEOPLE:
            runtime.text_in(phone, "YES")
        runtime.run_until_idle()
        runtime.simulator.dead_numbers.add(DEAD)
        runtime.simulator.reply_script = _quitter_replies_stop
        created = _call(
            runtime,
            "POST",
            "/campaigns",
            {
                "name": "Fall sale",
                "topic": "deals",
                "template": TEMPLATE,
                "schedule": {"kind": "once", "at": (START + timedelta(minutes=30)).isoformat()},
            },
        )
        campaign_id = created["campaign_id"]
        _call(runtime, "POST", f"/campaigns/{campaign_id}/schedule")
        runtime.run_until_idle(max_virtual=timedelta(hours=2))
        yield runtime, campaign_id
    finally:
        runtime.stop()


def _quitter_replies_stop(sms: OutboundSms) -> str | None:
    return "STOP" if sms.to_number == QUITTER and sms.campaign_id else None


def _call(runtime: LocalRuntime, method: str, path: str, body: Any = None) -> Any:
    response = runtime.http(
        method,
        "/v1" + path,
        body=json.dumps(body) if body is not None else "",
        headers={"Content-Type": "application/json"},
    )
    assert response.status < 300, response.body
    return response.json()


@pytest.fixture
def cli_api(story: tuple[LocalRuntime, str]) -> Iterator[None]:
    admin_client.use_client(lambda _url: RuntimeAdminClient(story[0]))
    try:
        yield
    finally:
        admin_client.use_client(None)


def test_the_report_counts_what_happened(story: tuple[LocalRuntime, str]) -> None:
    runtime, campaign_id = story
    report = _call(runtime, "GET", f"/campaigns/{campaign_id}/report")
    campaign_messages = [
        entry for entry in runtime.simulator.log_entries() if entry["campaign_id"] == campaign_id
    ]
    assert len(campaign_messages) == len(PEOPLE)

    assert report["campaign_id"] == campaign_id
    assert (report["name"], report["topic"]) == ("Fall sale", "deals")
    assert report["audience"] == len(PEOPLE)
    assert report["sent"] == len(PEOPLE)
    assert report["delivered"] == len(PEOPLE) - 1
    assert report["delivery_failed"] == {"total": 1, "by_reason": {"invalid": 1}}
    assert report["pending"] == 0
    assert report["delivered_rate"] == pytest.approx((len(PEOPLE) - 1) / len(PEOPLE))
    assert report["numbers_suppressed"] == 1
    assert report["opt_outs"]["attributed"] == 1
    assert report["opt_outs"]["rate"] == pytest.approx(1 / (len(PEOPLE) - 1))
    assert sum(report["opt_outs"]["by_hour"]) == 1
    assert report["segments"] == len(PEOPLE)
    assert report["cost"]["micros"] == len(PEOPLE) * (5810 + 3020)  # the simulator's price + carrier fee
    # The simulator delivers 2-20 s after the send; the histogram estimate stays inside that range.
    p50, p95 = report["time_to_deliver"]["p50_ms"], report["time_to_deliver"]["p95_ms"]
    assert 1_000 <= p50 <= p95 <= 20_000
    assert sum(bucket["count"] for bucket in report["time_to_deliver"]["histogram"]) == len(PEOPLE) - 1


def test_the_dead_number_is_suppressed_and_the_quitter_heard_once_more(
    story: tuple[LocalRuntime, str],
) -> None:
    runtime, _campaign_id = story
    dead = contact(DEAD)
    assert dead is not None
    assert dead.undeliverable is not None
    assert dead.undeliverable["reason"] == "invalid"
    # The next campaign, a week later (past the weekly cap): the gate refuses the dead number.
    later = _call(
        runtime, "POST", "/campaigns", {"name": "Next week", "topic": "deals", "template": TEMPLATE}
    )
    query = urlencode({"phone": DEAD, "at": (START + timedelta(days=8)).isoformat()})
    preview = _call(runtime, "POST", f"/campaigns/{later['campaign_id']}/preview?{query}")
    assert preview["recipient"]["reason"] == "undeliverable"
    assert preview["recipient"]["would_send"] is False
    quitter = contact(QUITTER)
    assert quitter is not None
    assert quitter.consent.opted_out
    assert "unsubscribed" in sent_to(runtime, QUITTER)[-1]["body"]  # the one confirmation


def test_the_cli_prints_the_table_json_and_page(
    story: tuple[LocalRuntime, str], cli_api: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime, campaign_id = story
    page = tmp_path / "report.html"
    assert cli.main(["report", campaign_id, "--html", str(page)]) == 0
    table = capsys.readouterr().out
    rows = {line[:34].rstrip(): line[34:].split() for line in table.splitlines()}
    assert rows["audience"] == [str(len(PEOPLE))]
    assert rows["sent"][0] == str(len(PEOPLE))
    assert rows["delivered"][:2] == [str(len(PEOPLE) - 1), f"{100 * (len(PEOPLE) - 1) / len(PEOPLE):.1f}%"]
    assert rows["opt-outs within 72 h"][:2] == ["1", f"{100 / (len(PEOPLE) - 1):.2f}%"]
    assert rows["not delivered"] == ["1"]
    assert rows["  invalid"] == ["1"]
    assert rows["numbers marked undeliverable"] == ["1"]
    assert rows["segments"] == [str(len(PEOPLE))]
    assert rows["cost"][0] == f"${len(PEOPLE) * 0.00883:.4f}"
    assert rows["time to deliver p50"][1] == "s"
    assert f"web page written to {page}" in table
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

    assert cli.main(["report", campaign_id, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    served = _call(runtime, "GET", f"/campaigns/{campaign_id}/report")
    printed.pop("generated_at")
    served.pop("generated_at")
    assert printed == served


def test_the_program_report_counts_the_week(
    story: tuple[LocalRuntime, str], cli_api: None, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime, _campaign_id = story
    program = _call(runtime, "GET", "/reports/program?weeks=2")
    assert [week["week"] for week in program["weeks"]] == ["2026-W47", "2026-W48"]
    week = program["weeks"][-1]
    assert (week["opt_in_requests"], week["opt_in_confirmations"], week["opt_ins"]) == (7, 7, 7)
    assert (week["opt_outs"], week["delivered"], week["net"]) == (1, 6, 6)
    assert week["opt_out_rate"] == pytest.approx(1 / 6)
    assert week["confirmation_rate"] == 1.0

    assert cli.main(["report", "--list", "--weeks", "2"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == [
        "week", "opt-ins", "opt-outs", "net", "delivered", "opt-out", "rate", "DOI", "asked", "confirmed",
        "confirm", "rate",
    ]  # fmt: skip
    assert table[3].split() == ["2026-W48", "7", "1", "+6", "6", "16.67%", "7", "7", "100.0%"]


def test_cli_refusals_are_one_line(cli_api: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "cmp_nope"]) == 2
    assert capsys.readouterr().err == "consentry: error: 404: no campaign cmp_nope\n"
    assert cli.main(["report"]) == 2
    assert "give a CAMPAIGN id" in capsys.readouterr().err
    assert cli.main(["report", "--list", "--weeks", "0"]) == 2
    assert "--weeks must be 1-104" in capsys.readouterr().err
    assert cli.main(["report", "x", "--list"]) == 2
    assert "--list shows the whole program" in capsys.readouterr().err
