"""The report's arithmetic: histogram percentiles, funnel and rates, counter deltas, attribution, weeks."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain import report
from consentry.domain.report import (
    ATTRIBUTION_HOURS,
    TTD_EDGES_MS,
    attributed_campaign,
    bucket_label,
    campaign_report,
    consent_deltas,
    format_duration,
    format_percent,
    format_usd,
    histogram,
    percentile,
    program_report,
    receipt_deltas,
    ttd_bucket,
    week_of,
)

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday of ISO week 48


# --- histogram -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("milliseconds", "bucket"),
    [
        (0, "ttd_ms_le.1000"),
        (1000, "ttd_ms_le.1000"),
        (1000.5, "ttd_ms_le.2000"),
        (4_500, "ttd_ms_le.5000"),
        (86_400_000, "ttd_ms_le.86400000"),
        (86_400_001, "ttd_ms_le.inf"),
    ],
)
def test_a_delivery_lands_in_the_bucket_whose_upper_edge_covers_it(milliseconds: float, bucket: str) -> None:
    assert ttd_bucket(milliseconds) == bucket


def test_percentiles_interpolate_inside_the_bucket() -> None:
    # 100 deliveries: 50 within 1 s, 40 in (1 s, 2 s], 10 in (2 s, 5 s].
    buckets = histogram({"ttd_ms_le.1000": 50, "ttd_ms_le.2000": 40, "ttd_ms_le.5000": 10})
    assert percentile(buckets, 0.5) == pytest.approx(1000)
    assert percentile(buckets, 0.7) == pytest.approx(1500)  # 20 of the 40 between 1 s and 2 s
    assert percentile(buckets, 0.95) == pytest.approx(3500)  # half of the last 10, between 2 s and 5 s
    assert percentile(buckets, 1.0) == pytest.approx(5000)


def test_percentile_of_nothing_is_unknown_and_of_the_open_bucket_its_lower_edge() -> None:
    assert percentile(histogram({}), 0.5) is None
    only_slow = histogram({"ttd_ms_le.inf": 3})
    assert percentile(only_slow, 0.5) == TTD_EDGES_MS[-1]
    with pytest.raises(ValueError, match="outside"):
        percentile(only_slow, 1.5)


@given(
    st.lists(
        st.integers(min_value=0, max_value=50), min_size=len(TTD_EDGES_MS) + 1, max_size=len(TTD_EDGES_MS) + 1
    ),
    st.floats(min_value=0, max_value=1),
    st.floats(min_value=0, max_value=1),
)
def test_percentiles_are_monotonic_and_bounded(counts: list[int], first: float, second: float) -> None:
    edges: list[int | None] = [*TTD_EDGES_MS, None]
    buckets = list(zip(edges, counts, strict=True))
    low, high = sorted((first, second))
    p_low, p_high = percentile(buckets, low), percentile(buckets, high)
    if sum(counts) == 0:
        assert p_low is None
        assert p_high is None
        return
    assert p_low is not None
    assert p_high is not None
    assert 0 <= p_low <= p_high <= TTD_EDGES_MS[-1]


# --- the campaign report ------------------------------------------------------------------------


def test_the_report_combines_send_side_and_receipt_side_counts() -> None:
    chunk_counts = {
        "sent": 90,
        "unknown": 2,
        "segments": 120,
        "suppressed.outside_window": 3,
        "suppressed.frequency_cap": 1,
        "failed.invalid": 4,
        "recipients": 100,
    }
    campaign_counts = {
        "audience": 104,
        "suppressed.not_subscribed": 4,  # fan-out's own
        "suppressed.frequency_cap": 1,
        "delivered": 80,
        "failed.unreachable": 5,
        "failed.blocked": 2,
        "delivery_unknown": 1,
        "ttd_ms_le.5000": 60,
        "ttd_ms_le.10000": 20,
        "cost_micros": 885_000,
        "opt_outs": 2,
        "opt_outs_after_h.0": 1,
        "opt_outs_after_h.5": 1,
        "numbers_suppressed": 3,
    }
    built = campaign_report(
        campaign_id="cmp_1",
        campaign={"name": "Black Friday", "topic": "deals", "status": "completed"},
        audience=104,
        chunk_counts=chunk_counts,
        campaign_counts=campaign_counts,
        generated_at=NOW,
    )
    assert (built.audience, built.sent, built.send_unknown, built.delivered) == (104, 90, 2, 80)
    assert built.suppressed.by_reason == {"not_subscribed": 4, "frequency_cap": 2, "outside_window": 3}
    assert built.suppressed.total == 9
    assert built.send_failed.by_reason == {"invalid": 4}
    assert built.delivery_failed.by_reason == {"unreachable": 5, "blocked": 2}
    assert built.pending == 92 - 80 - 7 - 1
    assert built.delivered_rate == pytest.approx(80 / 92)
    assert built.time_to_deliver.p50_ms == pytest.approx(2000 + 3000 * 40 / 60)
    assert built.opt_outs.attributed == 2
    assert built.opt_outs.rate == pytest.approx(2 / 80)
    assert built.opt_outs.by_hour[0] == 1
    assert built.opt_outs.by_hour[5] == 1
    assert len(built.opt_outs.by_hour) == ATTRIBUTION_HOURS
    assert built.cost.usd == pytest.approx(0.885)
    assert built.cost.per_delivered_usd == pytest.approx(0.885 / 80)
    assert (built.name, built.topic, built.status) == ("Black Friday", "deals", "completed")


def test_an_empty_campaign_reports_zeros_and_unknown_rates() -> None:
    built = campaign_report(
        campaign_id="cmp_2",
        campaign=None,
        audience=None,
        chunk_counts={},
        campaign_counts={},
        generated_at=NOW,
    )
    assert built.sent == built.delivered == built.pending == 0
    assert built.delivered_rate is None
    assert built.opt_outs.rate is None
    assert built.cost.per_delivered_usd is None
    assert built.time_to_deliver.p50_ms is None
    assert built.audience is None


def test_deliveries_of_ambiguous_sends_never_push_the_rate_above_one() -> None:
    built = campaign_report(
        campaign_id="cmp_3",
        campaign=None,
        audience=5,
        chunk_counts={"sent": 3},
        campaign_counts={"delivered": 4},  # one "unknown" send did go out
        generated_at=NOW,
    )
    assert built.delivered_rate == 1.0
    assert built.pending == 0


# --- what receipts and consent changes add --------------------------------------------------------


def test_a_delivery_counts_once_with_its_time_to_deliver_week_and_price() -> None:
    deltas = receipt_deltas(
        status="delivered",
        previous_status="sent",
        reason=None,
        occurred_at=NOW,
        sent_at=NOW - timedelta(seconds=4.5),
        price_micros=8830,
    )
    assert deltas == {
        "delivered": 1,
        "week.2026-W48.delivered": 1,
        "ttd_ms_le.5000": 1,
        "cost_micros": 8830,
    }


def test_a_delivery_after_the_providers_unknown_takes_it_back_and_is_not_charged_twice() -> None:
    deltas = receipt_deltas(
        status="delivered",
        previous_status="unknown",
        reason=None,
        occurred_at=NOW,
        sent_at=None,
        price_micros=8830,
    )
    assert deltas == {"delivered": 1, "week.2026-W48.delivered": 1, "delivery_unknown": -1}


def test_failures_count_by_reason_and_a_clock_skewed_delivery_is_instant() -> None:
    failed = receipt_deltas(
        status="failed",
        previous_status="sent",
        reason="unreachable",
        occurred_at=NOW,
        sent_at=NOW,
        price_micros=None,
    )
    assert failed == {"failed.unreachable": 1}
    no_reason = receipt_deltas(
        status="failed", previous_status=None, reason=None, occurred_at=NOW, sent_at=None, price_micros=None
    )
    assert no_reason == {"failed.unknown": 1}
    early = receipt_deltas(
        status="delivered",
        previous_status="sent",
        reason=None,
        occurred_at=NOW,
        sent_at=NOW + timedelta(seconds=2),  # the carrier's clock is behind ours
        price_micros=None,
    )
    assert early["ttd_ms_le.1000"] == 1


def test_intermediate_statuses_count_nothing() -> None:
    for status in ("queued", "sent"):
        assert (
            receipt_deltas(
                status=status,
                previous_status=None,
                reason=None,
                occurred_at=NOW,
                sent_at=None,
                price_micros=5,
            )
            == {}
        )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("opt_in", {"week.2026-W48.opt_in": 1}),
        ("confirm", {"week.2026-W48.opt_in": 1, "week.2026-W48.opt_in_confirm": 1}),
        ("request_confirmation", {"week.2026-W48.opt_in_request": 1}),
        ("opt_out", {"week.2026-W48.opt_out": 1}),
        ("something_else", {}),
    ],
)
def test_consent_changes_feed_weekly_counters(kind: str, expected: dict[str, int]) -> None:
    assert consent_deltas(kind, NOW) == expected


# --- attribution ---------------------------------------------------------------------------------


def _send(hours_before: float, topic: str = "deals", state: str = "reserved") -> dict[str, object]:
    return {"at": int((NOW - timedelta(hours=hours_before)).timestamp()), "topic": topic, "state": state}


def test_a_stop_is_blamed_on_the_most_recent_campaign_received_within_72_hours() -> None:
    sends = {
        "cmp_old": _send(80),
        "cmp_monday": _send(30),
        "cmp_today": _send(2.5),
        "order-1234": _send(1, topic="alerts"),  # a transactional send key, not a campaign
    }
    blamed = attributed_campaign(sends, scope="all", opted_out_at=NOW, campaign_prefix="cmp_")
    assert blamed is not None
    assert blamed.campaign_id == "cmp_today"
    assert blamed.hours_after == pytest.approx(2.5)
    assert report.opt_out_hour_bucket(blamed.hours_after) == "opt_outs_after_h.2"


def test_nothing_is_blamed_outside_the_window_on_failed_sends_or_on_other_topics() -> None:
    assert (
        attributed_campaign({"cmp_a": _send(72.1)}, scope="all", opted_out_at=NOW, campaign_prefix="cmp_")
        is None
    )
    assert (
        attributed_campaign(
            {"cmp_a": _send(1, state="failed")}, scope="all", opted_out_at=NOW, campaign_prefix="cmp_"
        )
        is None
    )
    assert (
        attributed_campaign(
            {"cmp_a": _send(1, state="released")}, scope="all", opted_out_at=NOW, campaign_prefix="cmp_"
        )
        is None
    )
    assert (
        attributed_campaign(
            {"cmp_a": _send(1, topic="alerts")}, scope="deals", opted_out_at=NOW, campaign_prefix="cmp_"
        )
        is None
    )
    assert (
        attributed_campaign({"cmp_a": _send(-1)}, scope="all", opted_out_at=NOW, campaign_prefix="cmp_")
        is None
    )
    assert (
        attributed_campaign({"cmp_a": {"at": "soon"}}, scope="all", opted_out_at=NOW, campaign_prefix="cmp_")
        is None
    )
    topic = attributed_campaign({"cmp_a": _send(70)}, scope="deals", opted_out_at=NOW, campaign_prefix="cmp_")
    assert topic is not None
    assert topic.campaign_id == "cmp_a"
    assert report.opt_out_hour_bucket(71.9) == "opt_outs_after_h.71"


# --- the program, week by week -------------------------------------------------------------------


def test_program_weeks_are_continuous_and_deliveries_come_from_the_campaigns() -> None:
    program_counts = {
        "week.2026-W47.opt_in": 10,
        "week.2026-W47.opt_in_request": 4,
        "week.2026-W47.opt_in_confirm": 3,
        "week.2026-W48.opt_out": 2,
        "week.2026-W48.opt_in": 1,
        "week.2026-W30.opt_in": 99,  # outside the range asked for
    }
    campaigns = [{"week.2026-W48.delivered": 150, "delivered": 150}, {"week.2026-W48.delivered": 50}]
    built = program_report(program_counts, campaigns, NOW, weeks=3)
    assert [week.week for week in built.weeks] == ["2026-W46", "2026-W47", "2026-W48"]
    w46, w47, w48 = built.weeks
    assert (w46.opt_ins, w46.opt_outs, w46.opt_out_rate) == (0, 0, None)
    assert (w47.opt_ins, w47.opt_in_requests, w47.opt_in_confirmations) == (10, 4, 3)
    assert w47.confirmation_rate == pytest.approx(0.75)
    assert (w48.opt_outs, w48.delivered, w48.net) == (2, 200, -1)
    assert w48.opt_out_rate == pytest.approx(0.01)
    assert (built.totals.opt_ins, built.totals.opt_outs, built.totals.delivered) == (11, 2, 200)
    with pytest.raises(ValueError, match="at least 1"):
        program_report({}, [], NOW, weeks=0)


def test_iso_weeks_start_on_monday_and_cross_years() -> None:
    assert week_of(datetime(2026, 11, 23, tzinfo=UTC)) == "2026-W48"  # Monday
    assert week_of(datetime(2026, 11, 22, tzinfo=UTC)) == "2026-W47"  # Sunday
    assert week_of(datetime(2027, 1, 1, tzinfo=UTC)) == "2026-W53"


# --- formatting ------------------------------------------------------------------------------------


def test_numbers_read_naturally() -> None:
    assert format_duration(None) == "—"
    assert format_duration(450) == "450 ms"
    assert format_duration(4000) == "4 s"
    assert format_duration(4500) == "4.5 s"
    assert format_duration(150_000) == "2.5 min"
    assert format_duration(86_400_000) == "24 h"
    assert format_percent(0.95543) == "95.5%"
    assert format_percent(None) == "—"
    assert format_usd(0.00883) == "$0.0088"
    assert format_usd(1234.5) == "$1,234.50"
    assert bucket_label(2000, 1000) == "≤ 2 s"
    assert bucket_label(None, 86_400_000) == "> 24 h"
