"""What a campaign did, from its counters: pure aggregation, no AWS.

Counts come from two places that never overlap:

* chunk results, written once per send chunk by the sender (`chunk_counts`): sent, unknown
  (the provider call may or may not have gone out), segments, suppressed.<reason> (the send-time
  gate), failed.<reason> (the provider refused the send);
* the campaign's sharded counters (`campaign_counts`): the fan-out's audience and its
  suppressed.<reason>, and what receipts add once per status transition: delivered,
  failed.<reason> (sent but not delivered), delivery_unknown, ttd_ms_le.<edge> (time-to-deliver
  histogram), cost_micros, week.<week>.delivered, numbers_suppressed, carrier_opt_outs,
  unmatched_receipts, and the consent hook's opt_outs and opt_outs_after_h.<hour>.

Time to deliver is kept as a histogram with fixed bucket edges so that any number of receipt
writers can add to it without coordination; p50/p95 are interpolated inside the bucket, the
same way Prometheus estimates quantiles, and are therefore estimates within one bucket.
"""

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from consentry.domain.chunks import campaign_of_send_key

#: Upper bucket edges (milliseconds) of the time-to-deliver histogram; the last bucket is open.
TTD_EDGES_MS: tuple[int, ...] = (
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    1_800_000,
    3_600_000,
    21_600_000,
    86_400_000,
)
TTD_PREFIX = "ttd_ms_le."
TTD_OPEN = "inf"
#: A STOP counts against a campaign when it arrives within this many hours of its message.
ATTRIBUTION_HOURS = 72
OPT_OUT_HOUR_PREFIX = "opt_outs_after_h."
PROGRAM_ID = "program"  # pseudo campaign whose counters hold the program's weekly consent numbers
WEEK_PREFIX = "week."

SUPPRESSED_PREFIX = "suppressed."
FAILED_PREFIX = "failed."


def ttd_bucket(milliseconds: float) -> str:
    """The histogram counter that one delivery taking `milliseconds` adds to."""
    for edge in TTD_EDGES_MS:
        if milliseconds <= edge:
            return f"{TTD_PREFIX}{edge}"
    return f"{TTD_PREFIX}{TTD_OPEN}"


def histogram(counters: Mapping[str, int]) -> list[tuple[int | None, int]]:
    """(upper edge ms or None for the open bucket, count) for every bucket, in order."""
    buckets: list[tuple[int | None, int]] = [
        (edge, max(0, counters.get(f"{TTD_PREFIX}{edge}", 0))) for edge in TTD_EDGES_MS
    ]
    buckets.append((None, max(0, counters.get(f"{TTD_PREFIX}{TTD_OPEN}", 0))))
    return buckets


def percentile(buckets: Sequence[tuple[int | None, int]], quantile: float) -> float | None:
    """The `quantile` (0..1) of a histogram, interpolated linearly inside its bucket.

    None without observations. An answer in the open last bucket is its lower edge: we only
    know that those deliveries took longer than that.
    """
    if not 0 <= quantile <= 1:
        raise ValueError(f"quantile {quantile} outside 0..1")
    total = sum(count for _edge, count in buckets)
    if total == 0:
        return None
    rank = quantile * total
    seen = 0
    lower = 0
    for edge, count in buckets:
        if count and seen + count >= rank:
            if edge is None:
                return float(lower)
            return lower + (edge - lower) * max(0.0, rank - seen) / count
        seen += count
        if edge is not None:
            lower = edge
    return float(lower)


def opt_out_hour_bucket(hours_after: float) -> str:
    return f"{OPT_OUT_HOUR_PREFIX}{min(ATTRIBUTION_HOURS - 1, max(0, math.floor(hours_after)))}"


def week_of(moment: datetime | date) -> str:
    """ISO week label, e.g. 2026-W48 (weeks start on Monday)."""
    year, week, _day = moment.isocalendar()
    return f"{year}-W{week:02d}"


def week_counter(moment: datetime, name: str) -> str:
    return f"{WEEK_PREFIX}{week_of(moment)}.{name}"


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


def _by_prefix(counters: Mapping[str, int], prefix: str) -> dict[str, int]:
    found = {
        name[len(prefix) :]: value for name, value in counters.items() if name.startswith(prefix) and value
    }
    return dict(sorted(found.items(), key=lambda pair: (-pair[1], pair[0])))


class Breakdown(BaseModel):
    model_config = ConfigDict(frozen=True)

    total: int
    by_reason: dict[str, int]

    @classmethod
    def of(cls, counters: Mapping[str, int], prefix: str) -> "Breakdown":
        by_reason = _by_prefix(counters, prefix)
        return cls(total=sum(by_reason.values()), by_reason=by_reason)


class Bucket(BaseModel):
    model_config = ConfigDict(frozen=True)

    le_ms: int | None  # upper edge; None for the open last bucket
    count: int


class TimeToDeliver(BaseModel):
    model_config = ConfigDict(frozen=True)

    p50_ms: float | None
    p95_ms: float | None
    histogram: list[Bucket]


class OptOuts(BaseModel):
    model_config = ConfigDict(frozen=True)

    attributed: int
    rate: float | None  # attributed / delivered
    window_hours: int
    by_hour: list[int]  # opt-outs n..n+1 hours after the campaign's message arrived


class Cost(BaseModel):
    model_config = ConfigDict(frozen=True)

    micros: int
    usd: float
    per_delivered_usd: float | None


class CampaignReport(BaseModel):
    """The report of one campaign (what the admin API returns and the CLI/HTML render)."""

    model_config = ConfigDict(frozen=True)

    campaign_id: str
    name: str | None
    topic: str | None
    status: str | None
    generated_at: datetime
    audience: int | None
    suppressed: Breakdown
    send_failed: Breakdown  # the provider refused the send
    send_unknown: int  # the provider call may have gone out; never resent automatically
    sent: int
    delivered: int
    delivery_failed: Breakdown  # sent, then reported undelivered
    delivery_unknown: int  # the provider never got a final word from the carrier
    pending: int  # sent, no final receipt yet
    delivered_rate: float | None  # delivered / messages handed to the provider
    time_to_deliver: TimeToDeliver
    opt_outs: OptOuts
    segments: int
    cost: Cost
    numbers_suppressed: int  # numbers marked undeliverable by this campaign's receipts
    carrier_opt_outs: int
    unmatched_receipts: int


def campaign_report(
    *,
    campaign_id: str,
    campaign: Mapping[str, Any] | None,
    audience: int | None,
    chunk_counts: Mapping[str, int],
    campaign_counts: Mapping[str, int],
    generated_at: datetime,
) -> CampaignReport:
    """Combine the send-side and receipt-side counts of one campaign."""
    sent = max(0, chunk_counts.get("sent", 0))
    send_unknown = max(0, chunk_counts.get("unknown", 0))
    delivered = max(0, campaign_counts.get("delivered", 0))
    delivery_failed = Breakdown.of(campaign_counts, FAILED_PREFIX)
    delivery_unknown = max(0, campaign_counts.get("delivery_unknown", 0))
    handed_over = sent + send_unknown
    buckets = histogram(campaign_counts)
    opt_outs = max(0, campaign_counts.get("opt_outs", 0))
    cost_micros = max(0, campaign_counts.get("cost_micros", 0))
    suppressed = Counter(_by_prefix(campaign_counts, SUPPRESSED_PREFIX))  # at fan-out
    suppressed.update(_by_prefix(chunk_counts, SUPPRESSED_PREFIX))  # at send time
    if audience is None and "audience" in campaign_counts:
        audience = max(0, campaign_counts["audience"])
    return CampaignReport(
        campaign_id=campaign_id,
        name=_text(campaign, "name"),
        topic=_text(campaign, "topic"),
        status=_text(campaign, "status"),
        generated_at=generated_at,
        audience=audience,
        suppressed=Breakdown.of({SUPPRESSED_PREFIX + k: v for k, v in suppressed.items()}, SUPPRESSED_PREFIX),
        send_failed=Breakdown.of(chunk_counts, FAILED_PREFIX),
        send_unknown=send_unknown,
        sent=sent,
        delivered=delivered,
        delivery_failed=delivery_failed,
        delivery_unknown=delivery_unknown,
        pending=max(0, handed_over - delivered - delivery_failed.total - delivery_unknown),
        delivered_rate=rate(delivered, max(handed_over, delivered)),
        time_to_deliver=TimeToDeliver(
            p50_ms=percentile(buckets, 0.5),
            p95_ms=percentile(buckets, 0.95),
            histogram=[Bucket(le_ms=edge, count=count) for edge, count in buckets],
        ),
        opt_outs=OptOuts(
            attributed=opt_outs,
            rate=rate(opt_outs, delivered),
            window_hours=ATTRIBUTION_HOURS,
            by_hour=[
                max(0, campaign_counts.get(f"{OPT_OUT_HOUR_PREFIX}{hour}", 0))
                for hour in range(ATTRIBUTION_HOURS)
            ],
        ),
        segments=max(0, chunk_counts.get("segments", 0)),
        cost=Cost(
            micros=cost_micros,
            usd=cost_micros / 1_000_000,
            per_delivered_usd=cost_micros / 1_000_000 / delivered if delivered else None,
        ),
        numbers_suppressed=max(0, campaign_counts.get("numbers_suppressed", 0)),
        carrier_opt_outs=max(0, campaign_counts.get("carrier_opt_outs", 0)),
        unmatched_receipts=max(0, campaign_counts.get("unmatched_receipts", 0)),
    )


def _text(values: Mapping[str, Any] | None, key: str) -> str | None:
    value = values.get(key) if values else None
    return str(value) if value is not None else None


# --- the whole program, per week ---------------------------------------------------------------


class ProgramWeek(BaseModel):
    model_config = ConfigDict(frozen=True)

    week: str
    opt_ins: int  # opt-ins that took effect (topic keyword, START, YES, form, import)
    opt_outs: int  # opt-outs that took effect (any scope, any channel)
    net: int  # opt_ins - opt_outs
    opt_in_requests: int  # double opt-ins started ("Reply YES to confirm" sent)
    opt_in_confirmations: int  # YES to a pending double opt-in
    confirmation_rate: float | None  # confirmations / requests of the week
    delivered: int  # campaign messages delivered
    opt_out_rate: float | None  # opt-outs / campaign messages delivered


class ProgramReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    generated_at: datetime
    weeks: list[ProgramWeek]
    totals: ProgramWeek


#: Program counter names (after "week.<label>.") and the ProgramWeek field they fill.
PROGRAM_COUNTERS = {
    "opt_in": "opt_ins",
    "opt_out": "opt_outs",
    "opt_in_request": "opt_in_requests",
    "opt_in_confirm": "opt_in_confirmations",
}
DELIVERED_WEEK = "delivered"


def weekly_counts(counters: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """{week label: {counter name: value}} from counters named week.<label>.<name>."""
    weeks: dict[str, dict[str, int]] = {}
    for name, value in counters.items():
        if not name.startswith(WEEK_PREFIX):
            continue
        label, _, counter = name[len(WEEK_PREFIX) :].partition(".")
        if label and counter:
            weeks.setdefault(label, {})[counter] = weeks.get(label, {}).get(counter, 0) + value
    return weeks


def _program_week(label: str, counts: Mapping[str, int]) -> ProgramWeek:
    values = {field: max(0, counts.get(counter, 0)) for counter, field in PROGRAM_COUNTERS.items()}
    delivered = max(0, counts.get(DELIVERED_WEEK, 0))
    return ProgramWeek(
        week=label,
        net=values["opt_ins"] - values["opt_outs"],
        confirmation_rate=rate(values["opt_in_confirmations"], values["opt_in_requests"]),
        delivered=delivered,
        opt_out_rate=rate(values["opt_outs"], delivered),
        **values,
    )


def last_weeks(until: datetime, count: int) -> list[str]:
    """ISO week labels of the `count` weeks ending with the one holding `until`, oldest first."""
    return [week_of(until - timedelta(weeks=back)) for back in range(count - 1, -1, -1)]


def program_report(
    program_counts: Mapping[str, int],
    campaign_counts: Sequence[Mapping[str, int]],
    generated_at: datetime,
    weeks: int,
) -> ProgramReport:
    """The last `weeks` ISO weeks (zeros where nothing happened); deliveries per week are summed
    over the campaigns' counters."""
    if weeks < 1:
        raise ValueError("weeks must be at least 1")
    counted = weekly_counts(program_counts)
    for counts in campaign_counts:
        for label, values in weekly_counts(counts).items():
            if DELIVERED_WEEK in values:
                week = counted.setdefault(label, {})
                week[DELIVERED_WEEK] = week.get(DELIVERED_WEEK, 0) + values[DELIVERED_WEEK]
    labels = last_weeks(generated_at, weeks)
    rows = [_program_week(label, counted.get(label, {})) for label in labels]
    summed: dict[str, int] = {}
    for label in labels:
        for name, value in counted.get(label, {}).items():
            summed[name] = summed.get(name, 0) + value
    return ProgramReport(generated_at=generated_at, weeks=rows, totals=_program_week("total", summed))


# --- what one event adds to the counters ------------------------------------------------------


def receipt_deltas(
    *,
    status: str,
    previous_status: str | None,
    reason: str | None,
    occurred_at: datetime,
    sent_at: datetime | None,
    price_micros: int | None,
) -> dict[str, int]:
    """Counter changes for a message whose delivery status just moved to `status`.

    Called once per transition that actually happened, so duplicates never count twice.
    """
    deltas: dict[str, int] = {}
    final = status in ("delivered", "failed")
    if final and previous_status == "unknown":
        deltas["delivery_unknown"] = -1  # the provider's "no news" turned into news
    if status == "delivered":
        deltas["delivered"] = 1
        deltas[week_counter(occurred_at, DELIVERED_WEEK)] = 1
        if sent_at is not None:
            elapsed_ms = max(0.0, (occurred_at - sent_at).total_seconds() * 1000)
            deltas[ttd_bucket(elapsed_ms)] = 1
    elif status == "failed":
        deltas[f"{FAILED_PREFIX}{reason or 'unknown'}"] = 1
    elif status == "unknown":
        deltas["delivery_unknown"] = 1
    if price_micros and (final or status == "unknown") and previous_status != "unknown":
        deltas["cost_micros"] = price_micros  # once per message: its first final-ish report
    return deltas


#: Consent change kinds (domain.consent.ChangeKind values) -> weekly program counters they add to.
CONSENT_COUNTERS: dict[str, tuple[str, ...]] = {
    "opt_in": ("opt_in",),
    "confirm": ("opt_in", "opt_in_confirm"),
    "request_confirmation": ("opt_in_request",),
    "opt_out": ("opt_out",),
}


def consent_deltas(kind: str, event_time: datetime) -> dict[str, int]:
    """Weekly program counters for one consent change that took effect."""
    return {week_counter(event_time, name): 1 for name in CONSENT_COUNTERS.get(kind, ())}


#: Send entries on a contact that never reached the handset: refused, or released unsent.
NOT_SENT_STATES = frozenset({"failed", "released"})


class Attribution(BaseModel):
    model_config = ConfigDict(frozen=True)

    campaign_id: str
    hours_after: float


def attributed_campaign(
    sends: Mapping[str, Mapping[str, Any]],
    *,
    scope: str,
    opted_out_at: datetime,
    campaign_prefix: str,
) -> Attribution | None:
    """The campaign an opt-out is blamed on: the most recent one whose message the contact got
    within ATTRIBUTION_HOURS before opting out, on the opted-out topic (or any, for a global STOP).

    `sends` is the contact's sends map (send key -> {at epoch s, topic, state, ...}); keys of
    campaigns start with `campaign_prefix`, the rest are transactional idempotency keys.
    """
    cutoff = opted_out_at.timestamp()
    best: tuple[float, str] | None = None
    for key, send in sends.items():
        if not key.startswith(campaign_prefix) or send.get("state") in NOT_SENT_STATES:
            continue
        at = send.get("at")
        if isinstance(at, bool) or not isinstance(at, int | float):
            continue
        if not cutoff - ATTRIBUTION_HOURS * 3600 <= at <= cutoff:
            continue
        if scope != "all" and send.get("topic") != scope:
            continue
        if best is None or at > best[0]:
            best = (float(at), key)
    if best is None:
        return None
    # A recurring campaign's send keys name the run too: "<campaign id>.<run id>".
    return Attribution(campaign_id=campaign_of_send_key(best[1]), hours_after=(cutoff - best[0]) / 3600)


# --- how numbers read ----------------------------------------------------------------------------


def format_count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def format_percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def format_duration(milliseconds: float | None) -> str:
    """12 ms, 3.4 s, 2.5 min, 1.2 h."""
    if milliseconds is None:
        return "—"
    if milliseconds < 1_000:
        return f"{milliseconds:.0f} ms"
    if milliseconds < 60_000:
        return f"{_short(milliseconds / 1_000)} s"
    if milliseconds < 3_600_000:
        return f"{_short(milliseconds / 60_000)} min"
    return f"{_short(milliseconds / 3_600_000)} h"


def _short(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def format_usd(value: float | None) -> str:
    if value is None:
        return "—"
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


def bucket_label(le_ms: int | None, previous_ms: int | None) -> str:
    """A histogram bucket as a reader sees it: "≤ 2 s", "> 1 day"."""
    if le_ms is None:
        return f"> {format_duration(previous_ms)}" if previous_ms is not None else "all"
    return f"≤ {format_duration(le_ms)}"
