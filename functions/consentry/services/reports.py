"""Reports read from counters: one campaign, and the program week by week.

A campaign report costs a handful of queries whatever the campaign's size: the campaign item,
its chunk results (one item per 100 recipients), its sharded counters and the fan-out
checkpoints. The program report reads the program's weekly counters and each campaign's
counters for the deliveries of each week.
"""

from collections.abc import Mapping

from aws_lambda_powertools.metrics import MetricUnit

from consentry import clock
from consentry.domain import report
from consentry.observability import metrics
from consentry.store import campaigns as campaign_store
from consentry.store import counters, fanout, sends

#: The program report reads the counters of at most this many campaigns (newest first).
MAX_PROGRAM_CAMPAIGNS = 500


def campaign_report(campaign_id: str) -> report.CampaignReport | None:
    """The campaign's report, or None if nothing is known about that id."""
    record = campaign_store.get(campaign_id)
    chunk_counts = sends.chunk_totals(campaign_id)
    campaign_counts = counters.totals(campaign_id)
    if record is None and not chunk_counts and not campaign_counts:
        return None
    segments = fanout.segments(campaign_id)
    audience = fanout.audience_total(campaign_id) if segments else None
    return report.campaign_report(
        campaign_id=campaign_id,
        campaign=record.campaign.model_dump(mode="json") if record is not None else None,
        audience=audience,
        chunk_counts=chunk_counts,
        campaign_counts=campaign_counts,
        generated_at=clock.now(),
    )


def program_report(weeks: int) -> report.ProgramReport:
    """Opt-ins, opt-outs and deliveries of the last `weeks` ISO weeks."""
    campaign_counts: list[dict[str, int]] = []
    token: str | None = None
    while len(campaign_counts) < MAX_PROGRAM_CAMPAIGNS:
        page, token = campaign_store.list_campaigns(limit=100, page_token=token)
        campaign_counts.extend(counters.totals(record.campaign.campaign_id) for record in page)
        if token is None:
            break
    return report.program_report(
        counters.totals(report.PROGRAM_ID), campaign_counts[:MAX_PROGRAM_CAMPAIGNS], clock.now(), weeks
    )


def emit_chunk_metrics(counts: Mapping[str, int]) -> None:
    """EMF metrics for one completed send chunk (the sender calls this with its chunk result):
    Sent, SendFailed(_<reason>), SendUnknown, Suppressed(_<reason>), Segments."""
    for name, value in counts.items():
        if value <= 0:
            continue
        if name == "sent":
            metrics.add_metric(name="Sent", unit=MetricUnit.Count, value=value)
        elif name == "unknown":
            metrics.add_metric(name="SendUnknown", unit=MetricUnit.Count, value=value)
        elif name == "segments":
            metrics.add_metric(name="Segments", unit=MetricUnit.Count, value=value)
        elif name.startswith(report.FAILED_PREFIX):
            metrics.add_metric(name="SendFailed", unit=MetricUnit.Count, value=value)
            reason = name[len(report.FAILED_PREFIX) :]
            metrics.add_metric(name=f"SendFailed_{reason}", unit=MetricUnit.Count, value=value)
        elif name.startswith(report.SUPPRESSED_PREFIX):
            metrics.add_metric(name="Suppressed", unit=MetricUnit.Count, value=value)
            reason = name[len(report.SUPPRESSED_PREFIX) :]
            metrics.add_metric(name=f"Suppressed_{reason}", unit=MetricUnit.Count, value=value)
