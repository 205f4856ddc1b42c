"""The fan-out benchmark at 2,000 contacts: it runs, its output checks out, and the request ratio holds.

At this size a run's fixed requests (per segment: the checkpoint read, one Scan, a release
schedule per time-zone minute...) weigh far more than at 100,000, so the smoke run uses two
segments; `make benchmark` / the README command measures 100,000 contacts with eight.
"""

import pytest
from benchmarks import fanout as benchmark


def test_benchmark_at_2000_contacts_stays_under_the_request_budget(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert benchmark.main(["--contacts", "2000", "--segments", "2"]) == 0
    report = capsys.readouterr().out
    assert "recipients/s" in report
    assert "OK:" in report


def test_requests_are_counted_by_api_and_only_for_the_fanout() -> None:
    result = benchmark.run(300, segments=1)
    assert result.audience > 0
    assert result.recipients + sum(result.suppressed.values()) == result.audience
    assert result.requests["dynamodb.Scan"] == 1  # 300 contacts: one page
    assert result.requests["dynamodb.BatchGetItem"] == 1  # checkpoint and campaign, together
    assert "dynamodb.CreateTable" not in result.requests  # the runtime's setup is not counted
    # Seeding wrote 12 batches of 25 contacts; only parked chunks' writes are the fan-out's.
    assert result.requests.get("dynamodb.BatchWriteItem", 0) < 12
    # What a one-page run costs whatever its size: start, one page, four releases.
    assert result.total_requests <= 30
