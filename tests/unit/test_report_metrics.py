"""The EMF metrics a completed send chunk produces (what the dashboard and alarms read)."""

from collections.abc import Iterator

import pytest

from consentry.observability import metrics
from consentry.services.reports import emit_chunk_metrics


@pytest.fixture
def emitted() -> Iterator[None]:
    saved = metrics.namespace
    metrics.namespace = "Consentry"
    metrics.clear_metrics()
    try:
        yield
    finally:
        metrics.clear_metrics()
        metrics.namespace = saved


def test_chunk_counts_become_metrics_by_reason(emitted: None) -> None:
    emit_chunk_metrics(
        {
            "sent": 90,
            "unknown": 1,
            "segments": 120,
            "suppressed.outside_window": 3,
            "suppressed.frequency_cap": 2,
            "failed.invalid": 4,
            "deferred": 7,  # parked for later: not a terminal state, no metric
            "recipients": 100,
            "failed.unreachable": 0,
        }
    )
    blob = metrics.serialize_metric_set()
    names = {entry["Name"] for entry in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {
        "Sent",
        "SendUnknown",
        "Segments",
        "Suppressed",
        "Suppressed_outside_window",
        "Suppressed_frequency_cap",
        "SendFailed",
        "SendFailed_invalid",
    }
    assert blob["Sent"] == [90.0]
    assert blob["Suppressed"] == [3.0, 2.0]  # one value per reason; CloudWatch sums them
    assert blob["SendFailed_invalid"] == [4.0]
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Consentry"
