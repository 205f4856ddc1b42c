"""The end-to-end campaign benchmark at 200 contacts: it runs, and its numbers add up.

`python -m benchmarks.campaign_e2e --recipients 10000` (and 100000) is what RESULTS.md reports;
this proves the script works and that what it counts is the system's work only.
"""

import contextlib
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from benchmarks import campaign_e2e


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("campaign") / "campaign.json"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = campaign_e2e.main(["--recipients", "200", "--json", str(out)])
    assert code == 0, printed.getvalue()
    return printed.getvalue(), json.loads(out.read_text(encoding="utf-8"))


def test_every_audience_member_ends_sent_suppressed_or_refused(outcome: tuple[str, dict[str, Any]]) -> None:
    report, values = outcome
    assert values["audience"] > 0
    assert values["sent"] > 0
    ended = (
        values["sent"]
        + values["send_unknown"]
        + sum(values["suppressed"].values())
        + sum(values["send_failed"].values())
    )
    assert ended == values["audience"]
    assert values["pending"] == 0
    assert values["delivered"] + values["delivery_failed"] + values["delivery_unknown"] == values["sent"]
    assert values["carrier_accepted"] == values["sent"] + values["send_unknown"]
    assert "OK:" in report
    assert "sent messages per second" in report


def test_only_the_campaign_functions_requests_are_counted(outcome: tuple[str, dict[str, Any]]) -> None:
    _, values = outcome
    requests = values["requests"]
    assert values["derived"]["total_requests"] > 0
    # One reservation per message (a retried chunk may add one), one status write per receipt.
    sender = values["requests_by_function"]["SenderFunction"]
    assert values["sent"] <= sender["dynamodb.UpdateItem ContactsTable"] <= values["sent"] * 1.05
    receipts = values["requests_by_function"]["ReceiptsFunction"]
    assert receipts["dynamodb.UpdateItem MessagesTable"] == values["sent"]
    assert set(values["requests_by_function"]) == {"FanoutFunction", "SenderFunction", "ReceiptsFunction"}
    # The runtime's polling and deletes (Lambda's event source mapping), its setup and the
    # seeding are not the system's requests.
    for harness in (
        "sqs.ReceiveMessage",
        "sqs.DeleteMessage",
        "dynamodb.CreateTable",
        "sqs.GetQueueAttributes",
    ):
        assert not any(api.startswith(harness) for api in requests), harness
    assert requests.get("dynamodb.BatchWriteItem ContactsTable", 0) == 0
    assert values["invocations"]["SenderFunction"] >= 2
    assert values["derived"]["requests_per_sent_message"] > 2  # reservation + receipt at least


def test_the_sender_chunk_memory_is_measured(outcome: tuple[str, dict[str, Any]]) -> None:
    _, values = outcome
    memory = values["memory"]
    assert memory["recipients"] == 100
    assert memory["outcome"]["recipients"] == 300  # warm-up, RSS and traced chunks, all sent
    assert memory["outcome"]["sent"] == 300
    assert 0 < memory["tracemalloc_peak_bytes"] < 200 * 2**20
    assert memory["rss_after_bytes"] > 0


def test_growth_table_compares_two_runs(outcome: tuple[str, dict[str, Any]]) -> None:
    _, values = outcome
    bigger = {**values, "contacts": 2000, "wall_seconds": values["wall_seconds"] * 10}
    table = campaign_e2e.compare(values, bigger)
    assert table.splitlines()[0] == "| figure | 200 contacts | 2,000 contacts | ratio |"
    wall = next(line for line in table.splitlines() if line.startswith("| wall time (s) |"))
    assert wall.endswith("| 10.00 |")
    assert "| AWS requests per sent message |" in table


def test_numbers_that_do_not_add_up_fail_the_run(outcome: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    _, values = outcome
    result = campaign_e2e.from_json(values)
    log = [{"to": f"+1555000{index:04d}"} for index in range(result.handed_over)]
    campaign_e2e.check(result, log, [])  # as measured: consistent
    with pytest.raises(AssertionError, match="audience"):
        campaign_e2e.check(replace(result, sent=result.sent - 1), log[:-1], [])
    with pytest.raises(AssertionError, match="final receipt"):
        campaign_e2e.check(replace(result, pending=1), log, [])
    with pytest.raises(AssertionError, match="twice"):
        campaign_e2e.check(result, [*log[:-1], log[0]], [])
    with pytest.raises(AssertionError, match="no AWS request"):
        campaign_e2e.check(replace(result, requests={}), log, [])


def test_floor_rows_account_for_every_request(outcome: tuple[str, dict[str, Any]]) -> None:
    _, values = outcome
    rows = campaign_e2e.from_json(values).floor_rows()
    *parts, (total_name, total, floor) = rows
    assert total_name == "total incl. provider call"
    assert sum(measured for _, measured, _ in parts) == pytest.approx(total)
    assert dict((what, measured) for what, measured, _ in parts)[
        "reservation write (sender: ContactsTable UpdateItem)"
    ] == pytest.approx(1.0, abs=0.05)
    assert floor == pytest.approx(3.02)
