"""`consentry report CAMPAIGN`: what a campaign did; `consentry report --list`: the program per week.

Both read the admin API (GET /campaigns/{id}/report, GET /reports/program); `--html FILE`
renders the campaign report as a self-contained page from the same JSON.
"""

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from consentry.admin_client import AdminResponse, add_api_argument, admin_client
from consentry.commands import CommandError, print_json
from consentry.domain.report import (
    Breakdown,
    CampaignReport,
    ProgramReport,
    ProgramWeek,
    format_count,
    format_duration,
    format_percent,
    format_usd,
)
from consentry.domain.report_html import render_campaign_report

MAX_WEEKS = 104


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "report",
        help="a campaign's report, or the program's opt-ins and opt-outs per week",
        description=(
            "Print what a campaign did: audience, sent, delivered rate, time to deliver (p50/p95), "
            "failures and suppressions by reason, opt-outs within 72 hours of receiving it, segments "
            "and cost. With --list, opt-in and opt-out numbers and rates per week for the whole program."
        ),
    )
    parser.add_argument("campaign_id", metavar="CAMPAIGN", nargs="?", help="the campaign id")
    parser.add_argument("--list", action="store_true", help="the whole program, week by week")
    parser.add_argument(
        "--weeks", type=int, default=12, help=f"with --list: how many weeks, ending this week (1-{MAX_WEEKS})"
    )
    parser.add_argument("--html", type=Path, metavar="FILE", help="also write the report as a web page")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_api_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.list:
        if args.campaign_id or args.html:
            raise CommandError("--list shows the whole program: give no CAMPAIGN and no --html")
        if not 1 <= args.weeks <= MAX_WEEKS:
            raise CommandError(f"--weeks must be 1-{MAX_WEEKS}")
        program = _parse(ProgramReport, _get(args, "/reports/program", {"weeks": str(args.weeks)}))
        if args.json:
            print_json(program.model_dump(mode="json"))
        else:
            print(program_table(program))
        return 0
    if not args.campaign_id:
        raise CommandError("give a CAMPAIGN id, or --list for the whole program")
    report = _parse(CampaignReport, _get(args, f"/campaigns/{args.campaign_id}/report", None))
    if args.html:
        try:
            args.html.write_text(render_campaign_report(report), encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {args.html}: {exc.strerror or exc}") from exc
    if args.json:
        print_json(report.model_dump(mode="json"))
    else:
        print(campaign_table(report))
        if args.html:
            print(f"\nweb page written to {args.html}")
    return 0


def _get(args: argparse.Namespace, path: str, query: dict[str, str] | None) -> Any:
    try:
        response = admin_client(args.api).request("GET", path, query=query)
    except OSError as exc:  # urllib's URLError and connection errors
        raise CommandError(f"cannot reach the admin API: {getattr(exc, 'reason', exc)}") from exc
    if not response.ok:
        raise CommandError(_refusal(response))
    try:
        return response.json()
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"the admin API answered {response.status} with something that is not JSON"
        ) from exc


def _refusal(response: AdminResponse) -> str:
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = None
    reason = body.get("error") or body.get("message") if isinstance(body, dict) else None
    return (
        f"{response.status}: {' '.join(str(reason).split())}"
        if reason
        else f"admin API answered {response.status}"
    )


def _parse[T: (CampaignReport, ProgramReport)](model: type[T], payload: Any) -> T:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise CommandError(
            f"the admin API answered with a report this CLI cannot read: {exc.errors()[0]['msg']}"
        ) from exc


# --- text tables ---------------------------------------------------------------------------------

_LABEL = 34


def _line(label: str, value: str, note: str = "") -> str:
    text = f"{label:<{_LABEL}}{value:>10}"
    return f"{text}   {note}" if note else text


def _reasons(label: str, breakdown: Breakdown) -> list[str]:
    lines = [_line(label, format_count(breakdown.total))]
    lines.extend(_line(f"  {reason}", format_count(count)) for reason, count in breakdown.by_reason.items())
    return lines


def campaign_table(report: CampaignReport) -> str:
    ttd = report.time_to_deliver
    heading = f"{report.name or report.campaign_id} ({report.campaign_id})"
    facts = " · ".join(
        part
        for part in (
            f"topic {report.topic}" if report.topic else "",
            f"status {report.status}" if report.status else "",
            f"as of {report.generated_at.isoformat(timespec='seconds')}",
        )
        if part
    )
    lines = [
        heading,
        facts,
        "-" * (_LABEL + 10),
        _line("audience", format_count(report.audience)),
        _line("sent", format_count(report.sent), "accepted by the provider"),
        _line(
            "delivered",
            format_count(report.delivered),
            f"{format_percent(report.delivered_rate)} of messages handed over",
        ),
        _line("time to deliver p50", format_duration(ttd.p50_ms)),
        _line("time to deliver p95", format_duration(ttd.p95_ms)),
        _line(
            f"opt-outs within {report.opt_outs.window_hours} h",
            format_count(report.opt_outs.attributed),
            f"{format_percent(report.opt_outs.rate, 2)} of delivered",
        ),
        _line("segments", format_count(report.segments)),
        _line(
            "cost",
            format_usd(report.cost.usd),
            f"{format_usd(report.cost.per_delivered_usd)} per delivered",
        ),
        "",
        *_reasons("suppressed before sending", report.suppressed),
        *_reasons("refused by the provider", report.send_failed),
        *_reasons("not delivered", report.delivery_failed),
        "",
        _line("provider outcome unknown", format_count(report.send_unknown), "never resent"),
        _line("awaiting a final report", format_count(report.pending)),
        _line("no final report from carrier", format_count(report.delivery_unknown)),
        _line("numbers marked undeliverable", format_count(report.numbers_suppressed)),
        _line("opted out at the carrier", format_count(report.carrier_opt_outs)),
        _line("receipts for unknown messages", format_count(report.unmatched_receipts)),
    ]
    return "\n".join(lines)


_PROGRAM_COLUMNS = (
    ("week", 9),
    ("opt-ins", 8),
    ("opt-outs", 9),
    ("net", 7),
    ("delivered", 10),
    ("opt-out rate", 13),
    ("DOI asked", 10),
    ("confirmed", 10),
    ("confirm rate", 13),
)


def _program_row(week: ProgramWeek) -> str:
    cells = (
        week.week,
        format_count(week.opt_ins),
        format_count(week.opt_outs),
        f"{week.net:+,}",
        format_count(week.delivered),
        format_percent(week.opt_out_rate, 2),
        format_count(week.opt_in_requests),
        format_count(week.opt_in_confirmations),
        format_percent(week.confirmation_rate),
    )
    first, *rest = zip(cells, _PROGRAM_COLUMNS, strict=True)
    return f"{first[0]:<{first[1][1]}}" + "".join(f"{cell:>{width}}" for cell, (_name, width) in rest)


def program_table(program: ProgramReport) -> str:
    header = f"{_PROGRAM_COLUMNS[0][0]:<{_PROGRAM_COLUMNS[0][1]}}" + "".join(
        f"{name:>{width}}" for name, width in _PROGRAM_COLUMNS[1:]
    )
    rule = "-" * len(header)
    lines = [
        header,
        rule,
        *(_program_row(week) for week in program.weeks),
        rule,
        _program_row(program.totals),
    ]
    lines.append(
        "\nopt-out rate: opt-outs per campaign message delivered that week; "
        "confirm rate: double opt-ins (DOI) confirmed with YES per one asked."
    )
    return "\n".join(lines)
