"""`consentry campaign ...`: the requests it builds from flags, its output, and one-line errors."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consentry import admin_client, cli
from consentry.admin_client import AdminResponse

CAMPAIGN = {
    "campaign_id": "cmp_abc",
    "name": "Ferret treats",
    "topic": "deals",
    "message_class": "promotional",
    "template": "Hi {first_name|there}",
    "status": "scheduled",
    "paused_from": None,
    "version": 2,
    "trigger": {"name": "campaign-cmp_abc", "expression": "at(2026-12-01T15:00:00)", "timezone": "UTC"},
}


class RecordingClient:
    def __init__(self, responses: list[AdminResponse]) -> None:
        self.responses = responses
        self.requests: list[dict[str, Any]] = []

    def request(
        self, method: str, path: str, *, body: Any = None, query: Any = None, **_: Any
    ) -> AdminResponse:
        self.requests.append({"method": method, "path": path, "body": body, "query": query})
        return self.responses.pop(0)


@pytest.fixture
def api() -> Iterator[RecordingClient]:
    client = RecordingClient([])
    admin_client.use_client(lambda _url: client)
    try:
        yield client
    finally:
        admin_client.use_client(None)


def ok(body: Any, status: int = 200) -> AdminResponse:
    return AdminResponse(status, json.dumps(body))


def test_create_from_flags_builds_the_spec(api: RecordingClient, capsys: pytest.CaptureFixture[str]) -> None:
    api.responses.append(ok(CAMPAIGN, 201))
    code = cli.main(
        [
            "campaign",
            "create",
            "--name",
            "Ferret treats",
            "--topic",
            "deals",
            "--template",
            "Hi {first_name|there}",
            "--filter",
            '{"attribute": "pets", "op": "contains", "value": "ferret"}',
            "--local-time",
            "10:00",
            "--date",
            "2026-12-01",
            "--window",
            "09:00-18:00",
            "--days",
            "mon-fri",
            "--mps",
            "20",
        ]
    )
    assert code == 0
    assert api.requests == [
        {
            "method": "POST",
            "path": "/campaigns",
            "query": None,
            "body": {
                "name": "Ferret treats",
                "topic": "deals",
                "template": "Hi {first_name|there}",
                "messages_per_second": 20,
                "audience": {"attribute": "pets", "op": "contains", "value": "ferret"},
                "schedule": {"kind": "local_time", "local_time": "10:00", "date": "2026-12-01"},
                "window": {"start": "09:00", "end": "18:00", "days": "mon-fri"},
            },
        }
    ]
    out = capsys.readouterr().out
    assert "cmp_abc" in out
    assert "at(2026-12-01T15:00:00)" in out


def test_create_from_a_file(api: RecordingClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = {
        "name": "Alerts",
        "topic": "alerts",
        "template": "Shipped",
        "schedule": {"kind": "once", "at": "2026-12-01T15:00:00Z"},
    }
    path = tmp_path / "campaign.json"
    path.write_text(json.dumps(spec))
    api.responses.append(ok(CAMPAIGN, 201))
    assert cli.main(["campaign", "create", "--file", str(path), "--json"]) == 0
    assert api.requests[0]["body"] == spec
    assert json.loads(capsys.readouterr().out) == CAMPAIGN


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--name", "x", "--topic", "deals"], "create needs --file, or --template"),
        (["--file", "x.json", "--name", "x"], "give --file or the spec flags"),
        (
            [
                "--name",
                "x",
                "--topic",
                "t",
                "--template",
                "y",
                "--at",
                "2026-12-01T15:00:00Z",
                "--cron",
                "cron(0 1 * * ? *)",
            ],
            "give one of --at, --cron, --local-time, not --at and --cron",
        ),
        (
            ["--name", "x", "--topic", "t", "--template", "y", "--local-time", "10:00"],
            "--local-time needs --date",
        ),
        (
            ["--name", "x", "--topic", "t", "--template", "y", "--date", "2026-12-01"],
            "--date goes with --local-time",
        ),
        (["--name", "x", "--topic", "t", "--template", "y", "--filter", "{pets"], "--filter is not JSON"),
        (["--name", "x", "--topic", "t", "--template", "y", "--window", "9-17:00x"], None),
        (["--name", "x", "--topic", "t", "--template", "y", "--days", "mon"], "--days goes with --window"),
        (["--file", "/nonexistent/campaign.json"], "cannot read /nonexistent/campaign.json"),
    ],
)
def test_bad_flags_fail_with_one_line_and_exit_2(
    api: RecordingClient, capsys: pytest.CaptureFixture[str], argv: list[str], message: str | None
) -> None:
    if message is None:
        # Passed through: the API judges the window and answers with the reason.
        api.responses.append(
            ok({"statusCode": 422, "error": "window.start: '9' is not a 24-hour HH:MM time"}, 422)
        )
        message = "422: window.start: '9' is not a 24-hour HH:MM time"
    assert cli.main(["campaign", "create", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_api_refusals_become_one_line(api: RecordingClient, capsys: pytest.CaptureFixture[str]) -> None:
    api.responses.append(
        ok({"error": "cannot move a campaign from cancelled to paused: cancelled is final"}, 409)
    )
    assert cli.main(["campaign", "pause", "cmp_abc"]) == 2
    assert capsys.readouterr().err == (
        "consentry: error: 409: cannot move a campaign from cancelled to paused: cancelled is final\n"
    )
    api.responses.append(AdminResponse(502, "<html>\nBad gateway\n</html>"))
    assert cli.main(["campaign", "show", "cmp_abc"]) == 2
    assert capsys.readouterr().err == "consentry: error: 502: <html> Bad gateway </html>\n"


def test_unreachable_api_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing listens on port 9 of localhost.
    assert cli.main(["campaign", "list", "--api", "http://127.0.0.1:9/v1"]) == 2
    assert capsys.readouterr().err.startswith("consentry: error: cannot reach the admin API")


def test_transitions_post_to_their_route(api: RecordingClient) -> None:
    for action in ("pause", "resume", "cancel"):
        api.responses.append(ok(CAMPAIGN))
        assert cli.main(["campaign", action, "cmp_abc", "--json"]) == 0
    assert [(r["method"], r["path"]) for r in api.requests] == [
        ("POST", "/campaigns/cmp_abc/pause"),
        ("POST", "/campaigns/cmp_abc/resume"),
        ("POST", "/campaigns/cmp_abc/cancel"),
    ]


def test_schedule_sends_the_schedule_or_nothing(api: RecordingClient) -> None:
    api.responses.extend([ok(CAMPAIGN), ok(CAMPAIGN)])
    assert cli.main(["campaign", "schedule", "cmp_abc", "--json"]) == 0
    assert (
        cli.main(
            [
                "campaign",
                "schedule",
                "cmp_abc",
                "--cron",
                "cron(0 10 ? * MON *)",
                "--timezone",
                "America/Chicago",
            ]
        )
        == 0
    )
    assert [r["body"] for r in api.requests] == [
        None,
        {"kind": "recurring", "cron": "cron(0 10 ? * MON *)", "timezone": "America/Chicago"},
    ]


def test_list_follows_pages_up_to_the_limit(api: RecordingClient, capsys: pytest.CaptureFixture[str]) -> None:
    second = {**CAMPAIGN, "campaign_id": "cmp_def", "status": "draft", "trigger": None}
    api.responses.extend(
        [ok({"campaigns": [CAMPAIGN], "next": "tok"}), ok({"campaigns": [second], "next": "more"})]
    )
    assert cli.main(["campaign", "list", "--status", "scheduled", "--limit", "2"]) == 0
    assert [r["query"] for r in api.requests] == [
        {"limit": "2", "status": "scheduled"},
        {"limit": "1", "status": "scheduled", "next": "tok"},
    ]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[1].startswith("cmp_abc")
    assert lines[2].startswith("cmp_def")


def test_preview_table(api: RecordingClient, capsys: pytest.CaptureFixture[str]) -> None:
    report = {
        "campaign_id": "cmp_abc",
        "topic": "deals",
        "message_class": "promotional",
        "timing": "at",
        "evaluated_at": "2026-12-01T15:00:00+00:00",
        "audience": 3,
        "would_send": 2,
        "suppressed": {"window:federal_window": 1},
        "samples": [
            {
                "to": "+1********42",
                "text": "Hi Ana\nReply STOP to opt out",
                "encoding": "GSM-7",
                "segments": 1,
            }
        ],
        "encoding": "GSM-7",
        "segments": {"max": 1, "max_rendered": 1, "worst_case": 1, "total": 2},
        "estimated_cost": {
            "total": 0.01162,
            "by_country": {
                "US": {"recipients": 2, "segments": 2, "price_per_segment": 0.00581, "cost": 0.01162}
            },
        },
        "recipient": {
            "phone": "+1********23",
            "in_audience": True,
            "would_send": False,
            "reason": "window:federal_window",
        },
    }
    api.responses.append(ok(report))
    assert (
        cli.main(
            ["campaign", "preview", "cmp_abc", "--at", "2026-12-01T15:00:00+00:00", "--phone", "+13105550123"]
        )
        == 0
    )
    assert api.requests[0]["query"] == {"at": "2026-12-01T15:00:00+00:00", "phone": "+13105550123"}
    out = capsys.readouterr().out
    assert "would send   2" in out
    assert "suppressed        1  window:federal_window" in out
    assert "sample       +1********42: Hi Ana Reply STOP to opt out" in out
    assert "recipient    +1********23: suppressed: window:federal_window" in out
    assert "0.0116" in out
