"""A campaign report as one self-contained HTML page: inline CSS and SVG charts, no scripts,
no fonts, no external assets, so it opens anywhere (mail attachment, file://, offline).

Every number shown carries `data-metric="<name>"` and its raw value in `data-value`, so the
page can be checked against the JSON report it was rendered from.
"""

from collections.abc import Iterable
from html import escape

from consentry.domain.report import (
    Breakdown,
    CampaignReport,
    bucket_label,
    format_count,
    format_duration,
    format_percent,
    format_usd,
)

_CSS = """
:root { --ink: #1d2433; --muted: #5b6475; --line: #d9dee7; --good: #1f7a4d; --bad: #b3261e;
        --accent: #2f5bd3; --warn: #b26a00; --paper: #ffffff; --wash: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: var(--wash); }
main { max-width: 1040px; margin: 0 auto; padding: 28px 20px 48px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0; color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px;
         margin: 22px 0; }
.card { background: var(--paper); border: 1px solid var(--line); border-radius: 10px; padding: 14px; }
.card .label { color: var(--muted); font-size: 13px; }
.card .value { font-size: 24px; font-weight: 650; margin-top: 2px; }
.card .sub { color: var(--muted); font-size: 13px; }
section { background: var(--paper); border: 1px solid var(--line); border-radius: 10px;
          padding: 16px 18px; margin-top: 16px; }
section h2 { margin: 0 0 10px; font-size: 18px; }
section p.note { margin: 8px 0 0; color: var(--muted); font-size: 13px; }
svg { display: block; width: 100%; height: auto; }
svg text { font: 12px system-ui, sans-serif; fill: var(--ink); }
svg .axis { stroke: var(--line); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 16px; }
.empty { color: var(--muted); font-style: italic; }
"""

_FUNNEL_COLORS = ("#2f5bd3", "#6b8de3", "#1f7a4d")
_CHART_WIDTH = 960


def _metric(name: str, raw: object, shown: str, tag: str = "span", css: str = "") -> str:
    value = "" if raw is None else str(raw)
    klass = f' class="{css}"' if css else ""
    return f'<{tag}{klass} data-metric="{escape(name)}" data-value="{escape(value)}">{escape(shown)}</{tag}>'


def _card(label: str, metric: str, raw: object, shown: str, sub: str = "") -> str:
    return (
        f'<div class="card"><div class="label">{escape(label)}</div>'
        f'<div class="value">{_metric(metric, raw, shown)}</div>'
        f'<div class="sub">{sub}</div></div>'
    )


def _funnel(report: CampaignReport) -> str:
    handed_over = report.sent + report.send_unknown
    stages = [
        ("Audience", "funnel.audience", report.audience or 0),
        ("Handed to the provider", "funnel.handed_over", handed_over),
        ("Delivered", "funnel.delivered", report.delivered),
    ]
    top = max([value for _label, _name, value in stages] + [1])
    bar_height, gap, label_width = 34, 14, 200
    usable = _CHART_WIDTH - label_width - 90
    height = len(stages) * (bar_height + gap) + gap
    parts = [
        f'<svg viewBox="0 0 {_CHART_WIDTH} {height}" role="img" aria-label="Delivery funnel" '
        'data-chart="funnel">'
    ]
    for index, (label, name, value) in enumerate(stages):
        y = gap + index * (bar_height + gap)
        width = max(2.0, usable * value / top) if value else 0.0
        parts.append(f'<text x="0" y="{y + bar_height / 2 + 4}">{escape(label)}</text>')
        parts.append(
            f'<rect x="{label_width}" y="{y}" width="{width:.1f}" height="{bar_height}" rx="4" '
            f'fill="{_FUNNEL_COLORS[index]}" data-bar="{escape(name)}" data-value="{value}"></rect>'
        )
        parts.append(
            f'<text x="{label_width + width + 8:.1f}" y="{y + bar_height / 2 + 4}" '
            f'data-metric="{escape(name)}" data-value="{value}">{escape(format_count(value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _histogram(report: CampaignReport) -> str:
    buckets = report.time_to_deliver.histogram
    counts = [bucket.count for bucket in buckets]
    if not any(counts):
        return '<p class="empty">No deliveries reported yet.</p>'
    top = max(counts)
    chart_height, base, left = 200, 230, 40
    slot = (_CHART_WIDTH - left - 10) / len(buckets)
    parts = [
        f'<svg viewBox="0 0 {_CHART_WIDTH} 290" role="img" aria-label="Time to deliver distribution" '
        'data-chart="ttd">',
        f'<line class="axis" x1="{left}" y1="{base}" x2="{_CHART_WIDTH - 10}" y2="{base}"></line>',
    ]
    previous: int | None = None
    for index, bucket in enumerate(buckets):
        x = left + index * slot
        height = chart_height * bucket.count / top if bucket.count else 0.0
        label = bucket_label(bucket.le_ms, previous)
        parts.append(
            f'<rect x="{x + 3:.1f}" y="{base - height:.1f}" width="{slot - 6:.1f}" height="{height:.1f}" '
            f'fill="#2f5bd3" data-bar="ttd" data-le="{bucket.le_ms if bucket.le_ms is not None else "inf"}" '
            f'data-value="{bucket.count}"><title>{escape(label)}: {bucket.count}</title></rect>'
        )
        if bucket.count:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{base - height - 5:.1f}" text-anchor="middle">'
                f"{escape(format_count(bucket.count))}</text>"
            )
        parts.append(
            f'<text x="{x + slot / 2:.1f}" y="{base + 16}" text-anchor="middle" '
            f'font-size="10">{escape(label)}</text>'
        )
        previous = bucket.le_ms
    parts.append("</svg>")
    return "".join(parts)


def _opt_outs_chart(report: CampaignReport) -> str:
    by_hour = report.opt_outs.by_hour
    if not any(by_hour):
        return '<p class="empty">No opt-outs attributed to this campaign.</p>'
    top = max(by_hour)
    chart_height, base, left = 160, 190, 40
    slot = (_CHART_WIDTH - left - 10) / len(by_hour)
    parts = [
        f'<svg viewBox="0 0 {_CHART_WIDTH} 230" role="img" aria-label="Opt-outs by hours after receipt" '
        'data-chart="opt_outs">',
        f'<line class="axis" x1="{left}" y1="{base}" x2="{_CHART_WIDTH - 10}" y2="{base}"></line>',
    ]
    for hour, count in enumerate(by_hour):
        x = left + hour * slot
        height = chart_height * count / top if count else 0.0
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{base - height:.1f}" width="{max(1.0, slot - 2):.1f}" '
            f'height="{height:.1f}" fill="#b3261e" data-bar="opt_outs" data-hour="{hour}" '
            f'data-value="{count}"><title>{hour}-{hour + 1} h: {count}</title></rect>'
        )
        if hour % 12 == 0:
            parts.append(f'<text x="{x:.1f}" y="{base + 16}" font-size="10">{hour} h</text>')
    parts.append(f'<text x="{_CHART_WIDTH - 40}" y="{base + 16}" font-size="10">72 h</text>')
    parts.append("</svg>")
    return "".join(parts)


def _reasons_table(title: str, prefix: str, breakdown: Breakdown, denominator: int) -> str:
    if not breakdown.by_reason:
        rows = '<tr><td colspan="3" class="empty">none</td></tr>'
    else:
        rows = "".join(
            f"<tr><td>{escape(reason.replace('_', ' '))}</td>"
            f"{_metric(f'{prefix}.{reason}', count, format_count(count), 'td', 'num')}"
            f'<td class="num">{escape(format_percent(_share(count, denominator)))}</td></tr>'
            for reason, count in breakdown.by_reason.items()
        )
    return (
        f"<div><h3>{escape(title)} "
        f"({_metric(f'{prefix}.total', breakdown.total, format_count(breakdown.total))})</h3>"
        f'<table><thead><tr><th>reason</th><th class="num">count</th><th class="num">share</th></tr>'
        f"</thead><tbody>{rows}</tbody></table></div>"
    )


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _details(rows: Iterable[tuple[str, str, object, str]]) -> str:
    body = "".join(
        f"<tr><td>{escape(label)}</td>{_metric(name, raw, shown, 'td', 'num')}</tr>"
        for label, name, raw, shown in rows
    )
    return f"<table><tbody>{body}</tbody></table>"


def render_campaign_report(report: CampaignReport) -> str:
    """The whole page."""
    title = report.name or report.campaign_id
    ttd = report.time_to_deliver
    handed_over = report.sent + report.send_unknown
    subtitle = " · ".join(
        part
        for part in (
            f"campaign {report.campaign_id}",
            f"topic {report.topic}" if report.topic else "",
            f"status {report.status}" if report.status else "",
            f"report of {report.generated_at.strftime('%Y-%m-%d %H:%M %Z')}",
        )
        if part
    )
    cards = [
        _card(
            "Audience",
            "audience",
            report.audience,
            format_count(report.audience),
            "matched the topic and filter",
        ),
        _card("Sent", "sent", report.sent, format_count(report.sent), "accepted by the provider"),
        _card(
            "Delivered",
            "delivered",
            report.delivered,
            format_count(report.delivered),
            _metric("delivered_rate", report.delivered_rate, format_percent(report.delivered_rate))
            + " of messages handed over",
        ),
        _card(
            "Time to deliver p50",
            "ttd.p50_ms",
            ttd.p50_ms,
            format_duration(ttd.p50_ms),
            "p95 " + _metric("ttd.p95_ms", ttd.p95_ms, format_duration(ttd.p95_ms)),
        ),
        _card(
            "Opt-outs (72 h)",
            "opt_outs.attributed",
            report.opt_outs.attributed,
            format_count(report.opt_outs.attributed),
            _metric("opt_outs.rate", report.opt_outs.rate, format_percent(report.opt_outs.rate, 2))
            + " of delivered",
        ),
        _card(
            "Cost",
            "cost.usd",
            report.cost.usd,
            format_usd(report.cost.usd),
            _metric("segments", report.segments, format_count(report.segments)) + " segments",
        ),
    ]
    details = _details(
        [
            (
                "Handed to the provider (sent + outcome unknown)",
                "handed_over",
                handed_over,
                format_count(handed_over),
            ),
            (
                "Provider outcome unknown (never resent)",
                "send_unknown",
                report.send_unknown,
                format_count(report.send_unknown),
            ),
            ("Awaiting a final delivery report", "pending", report.pending, format_count(report.pending)),
            (
                "No final report from the carrier",
                "delivery_unknown",
                report.delivery_unknown,
                format_count(report.delivery_unknown),
            ),
            (
                "Numbers marked undeliverable",
                "numbers_suppressed",
                report.numbers_suppressed,
                format_count(report.numbers_suppressed),
            ),
            (
                "Opted out at the carrier",
                "carrier_opt_outs",
                report.carrier_opt_outs,
                format_count(report.carrier_opt_outs),
            ),
            (
                "Receipts for unknown messages",
                "unmatched_receipts",
                report.unmatched_receipts,
                format_count(report.unmatched_receipts),
            ),
            (
                "Cost per delivered message",
                "cost.per_delivered_usd",
                report.cost.per_delivered_usd,
                format_usd(report.cost.per_delivered_usd),
            ),
        ]
    )
    audience = report.audience or 0
    return "".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)} - campaign report</title>",
            f"<style>{_CSS}</style></head><body><main>",
            f'<header><h1 data-field="name">{escape(title)}</h1><p>{escape(subtitle)}</p></header>',
            f'<div class="cards">{"".join(cards)}</div>',
            "<section><h2>Delivery funnel</h2>",
            _funnel(report),
            '<p class="note">Audience: subscribers of the topic matching the filter when the campaign ran. '
            "Handed to the provider: sent, plus sends whose outcome was unknown (never resent).</p>",
            "</section>",
            "<section><h2>Time to deliver</h2>",
            _histogram(report),
            '<p class="note">From the send to the carrier\'s delivery report. Percentiles are estimated '
            "within the histogram's buckets.</p></section>",
            "<section><h2>Opt-outs over time</h2>",
            _opt_outs_chart(report),
            f'<p class="note">STOPs within {report.opt_outs.window_hours} hours of receiving this '
            "campaign's message, by hours after it was sent.</p></section>",
            '<section><h2>Where recipients dropped out</h2><div class="grid2">',
            _reasons_table("Suppressed before sending", "suppressed", report.suppressed, audience),
            _reasons_table(
                "Refused by the provider", "send_failed", report.send_failed, handed_over or audience
            ),
            _reasons_table("Not delivered", "delivery_failed", report.delivery_failed, handed_over),
            "</div></section>",
            f"<section><h2>Details</h2>{details}</section>",
            "</main></body></html>",
        ]
    )
