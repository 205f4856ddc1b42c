"""The STOP latency benchmark at a small size: every STOP is committed, and the figures are sane."""

import json
from pathlib import Path

import pytest
from benchmarks import stop_latency


def test_every_stop_is_committed_and_timed(tmp_path: Path) -> None:
    result = stop_latency.measure(tmp_path, subscribers=30, stops=5)
    assert result["stops"] == 5
    assert 0 < result["p50_ms"] <= result["p95_ms"] <= result["max_ms"]
    # Local processing of one STOP is milliseconds of emulated requests, far below a second.
    assert result["max_ms"] < 1000


def test_the_command_prints_json_and_refuses_impossible_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert stop_latency.main(["--subscribers", "20", "--stops", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["stops"] == 4
    with pytest.raises(SystemExit):
        stop_latency.main(["--subscribers", "3", "--stops", "4"])
