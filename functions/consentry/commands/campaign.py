"""`consentry campaign create|preview|schedule|pause|resume|cancel|show|list` through the admin API.

    consentry campaign create --file ferrets.json
    consentry campaign create --name "Ferret treats" --topic deals \\
        --template "Hi {first_name|there}, 20% off ferret treats" \\
        --filter '{"attribute": "pets", "op": "contains", "value": "ferret"}' \\
        --local-time 10:00 --date 2026-12-01
    consentry campaign preview cmp_... [--at 2026-12-01T10:00:00-05:00] [--phone +12125550142]
    consentry campaign schedule cmp_... [--at ISO | --cron "cron(0 10 ? * MON *)" | --local-time T --date D]
    consentry campaign pause|resume|cancel|show cmp_...
    consentry campaign list [--status running]

Each prints a compact table, or the API's JSON with --json. Any refusal is one line on
stderr and exit code 2.
"""

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from consentry.admin_client import AdminResponse, add_api_argument, admin_client
from consentry.commands import CommandError, print_json

STATUSES = ("draft", "scheduled", "running", "paused", "completed", "cancelled")


def register(subparsers: Any) -> None:
    campaign = subparsers.add_parser(
        "campaign", help="define, preview, schedule, pause, resume and cancel campaigns"
    )
    actions = campaign.add_subparsers(dest="action", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="create a draft campaign from --file or flags")
    create.add_argument("--file", type=Path, help="a campaign spec as JSON (name, topic, template, ...)")
    create.add_argument("--name")
    create.add_argument("--topic", help="a topic id of the program, e.g. deals")
    create.add_argument("--template", help="message text; {attribute|fallback} placeholders")
    create.add_argument("--filter", dest="audience", metavar="JSON", help="audience filter as JSON")
    create.add_argument("--deadline", help="ISO time after which nothing is sent")
    create.add_argument("--window", help="business window HH:MM-HH:MM in the recipient's local time")
    create.add_argument("--days", help="business days for the window, e.g. mon-fri")
    create.add_argument("--mps", type=int, dest="messages_per_second", help="messages per second limit")
    create.add_argument("--max-segments", type=int, help="refuse templates longer than this (default 3)")
    _schedule_arguments(create)
    _common(create, _create)

    for name, help_text in (
        ("show", "one campaign"),
        ("pause", "pause a scheduled or running campaign"),
        ("resume", "resume a paused campaign"),
        ("cancel", "cancel a campaign for good"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("campaign_id", metavar="ID")
        _common(action, _show if name == "show" else _transition)

    listing = actions.add_parser("list", help="campaigns, newest first")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    _common(listing, _list)

    preview = actions.add_parser("preview", help="dry run: audience, suppressions, samples, cost")
    preview.add_argument("campaign_id", metavar="ID")
    preview.add_argument("--at", help="evaluate at this ISO time (default: its scheduled start, or now)")
    preview.add_argument("--phone", help="also explain the decision for this number")
    _common(preview, _preview)

    schedule = actions.add_parser("schedule", help="schedule (or reschedule) a campaign")
    schedule.add_argument("campaign_id", metavar="ID")
    _schedule_arguments(schedule)
    _common(schedule, _schedule)


def _schedule_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("schedule (one of --at, --cron, --local-time)")
    group.add_argument("--at", help="one-off: ISO time with an offset, e.g. 2026-12-01T15:00:00Z")
    group.add_argument("--cron", help='recurring: EventBridge cron, e.g. "cron(0 10 ? * MON *)"')
    group.add_argument("--timezone", help="IANA zone of --cron (default UTC) or of an --at without offset")
    group.add_argument("--local-time", help="HH:MM in each recipient's own time zone, on --date")
    group.add_argument("--date", help="YYYY-MM-DD for --local-time")


def _common(parser: argparse.ArgumentParser, func: Any) -> None:
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    add_api_argument(parser)
    parser.set_defaults(func=func)


# --- building requests -----------------------------------------------------------------------


def _schedule_from(args: argparse.Namespace) -> dict[str, Any] | None:
    given = [
        flag
        for flag, value in (("--at", args.at), ("--cron", args.cron), ("--local-time", args.local_time))
        if value
    ]
    if len(given) > 1:
        raise CommandError(f"give one of --at, --cron, --local-time, not {' and '.join(given)}")
    if args.date and not args.local_time:
        raise CommandError("--date goes with --local-time")
    if args.at:
        return {"kind": "once", "at": args.at, **({"timezone": args.timezone} if args.timezone else {})}
    if args.cron:
        return {
            "kind": "recurring",
            "cron": args.cron,
            **({"timezone": args.timezone} if args.timezone else {}),
        }
    if args.local_time:
        if not args.date:
            raise CommandError("--local-time needs --date YYYY-MM-DD")
        if args.timezone:
            raise CommandError("--local-time is each recipient's own time; it takes no --timezone")
        return {"kind": "local_time", "local_time": args.local_time, "date": args.date}
    if args.timezone:
        raise CommandError("--timezone goes with --at or --cron")
    return None


def _window_from(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.window is None:
        if args.days is not None:
            raise CommandError("--days goes with --window")
        return None
    start, separator, end = args.window.partition("-")
    if not separator:
        raise CommandError(f"--window {args.window!r} is not HH:MM-HH:MM")
    return {"start": start.strip(), "end": end.strip(), **({"days": args.days} if args.days else {})}


def _spec_from_file(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(loaded, dict):
        raise CommandError(f"{path} must hold a JSON object (a campaign spec)")
    return loaded


def _spec_from(args: argparse.Namespace) -> dict[str, Any]:
    flags = {
        "name": args.name,
        "topic": args.topic,
        "template": args.template,
        "deadline": args.deadline,
        "messages_per_second": args.messages_per_second,
        "max_segments": args.max_segments,
    }
    schedule = _schedule_from(args)
    window = _window_from(args)
    if args.file is not None:
        extra = [name for name, value in flags.items() if value is not None]
        if extra or args.audience or schedule or window:
            raise CommandError("give --file or the spec flags (--name, --topic, ...), not both")
        return _spec_from_file(args.file)
    missing = [f"--{name}" for name in ("name", "topic", "template") if flags[name] is None]
    if missing:
        raise CommandError(f"create needs --file, or {', '.join(missing)}")
    spec: dict[str, Any] = {name: value for name, value in flags.items() if value is not None}
    if args.audience is not None:
        try:
            spec["audience"] = json.loads(args.audience)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--filter is not JSON: {exc.msg} at column {exc.colno}") from exc
    if schedule is not None:
        spec["schedule"] = schedule
    if window is not None:
        spec["window"] = window
    return spec


# --- talking to the API ----------------------------------------------------------------------


def _call(
    args: argparse.Namespace,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: Mapping[str, str] | None = None,
) -> Any:
    try:
        response = admin_client(args.api).request(method, path, body=body, query=query)
    except OSError as exc:  # urllib's URLError and connection errors
        raise CommandError(f"cannot reach the admin API: {getattr(exc, 'reason', exc)}") from exc
    if not response.ok:
        raise CommandError(_refusal(response))
    return response.json()


def _refusal(response: AdminResponse) -> str:
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        reason = body.get("error") or body.get("message")
        if reason:
            return f"{response.status}: {' '.join(str(reason).split())}"
    return f"{response.status}: {' '.join(response.body[:200].split()) or 'no reason given'}"


# --- output ----------------------------------------------------------------------------------


def _trigger_text(campaign: Mapping[str, Any]) -> str:
    trigger = campaign.get("trigger")
    if not trigger:
        return "-"
    zone = trigger.get("timezone")
    return str(trigger["expression"]) + (f" {zone}" if zone and zone != "UTC" else "")


def run_text(campaign: Mapping[str, Any]) -> str:
    """The run going on or the last one: '<run id> started ..., completed ... (done/chunked)'."""
    run = campaign.get("run")
    if not run:
        return "-"
    parts = [run["run_id"]] if run.get("run_id") else []
    if run.get("started_at"):
        parts.append(f"started {run['started_at']}")
    parts.append(f"completed {run['completed_at']}" if run.get("completed_at") else "in progress")
    progress = run.get("progress")
    if progress:
        parts.append(f"({progress['done']} of {progress['chunked']} recipients done)")
    return " ".join(parts)


def _print_campaign(campaign: Mapping[str, Any]) -> None:
    rows = [
        ("id", campaign["campaign_id"]),
        ("name", campaign["name"]),
        (
            "status",
            campaign["status"]
            + (f" (paused from {campaign['paused_from']})" if campaign.get("paused_from") else ""),
        ),
        ("topic", f"{campaign['topic']} ({campaign['message_class']})"),
        ("trigger", _trigger_text(campaign)),
        ("run", run_text(campaign)),
        ("version", str(campaign["version"])),
        ("template", " ".join(campaign["template"].split())),
    ]
    for label, value in rows:
        print(f"{label:<9} {value}")


def _output(args: argparse.Namespace, campaign: Mapping[str, Any]) -> int:
    if args.json:
        print_json(campaign)
    else:
        _print_campaign(campaign)
    return 0


def _create(args: argparse.Namespace) -> int:
    campaign = _call(args, "POST", "/campaigns", body=_spec_from(args))
    return _output(args, campaign)


def _show(args: argparse.Namespace) -> int:
    campaign = _call(args, "GET", f"/campaigns/{args.campaign_id}")
    return _output(args, campaign)


def _transition(args: argparse.Namespace) -> int:
    campaign = _call(args, "POST", f"/campaigns/{args.campaign_id}/{args.action}")
    return _output(args, campaign)


def _schedule(args: argparse.Namespace) -> int:
    campaign = _call(args, "POST", f"/campaigns/{args.campaign_id}/schedule", body=_schedule_from(args))
    return _output(args, campaign)


def _list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        raise CommandError("--limit must be 1-1000")
    found: list[dict[str, Any]] = []
    token: str | None = None
    while len(found) < args.limit:
        query = {"limit": str(min(100, args.limit - len(found)))}
        if args.status:
            query["status"] = args.status
        if token:
            query["next"] = token
        page = _call(args, "GET", "/campaigns", query=query)
        found.extend(page["campaigns"])
        token = page.get("next")
        if not token:
            break
    if args.json:
        print_json({"campaigns": found})
        return 0
    print(f"{'id':<28} {'status':<10} {'topic':<12} {'trigger':<28} name")
    for campaign in found:
        print(
            f"{campaign['campaign_id']:<28} {campaign['status']:<10} {campaign['topic']:<12} "
            f"{_trigger_text(campaign):<28} {campaign['name']}"
        )
    return 0


def _preview(args: argparse.Namespace) -> int:
    query = {name: value for name, value in (("at", args.at), ("phone", args.phone)) if value}
    report = _call(args, "POST", f"/campaigns/{args.campaign_id}/preview", query=query or None)
    if args.json:
        print_json(report)
        return 0
    when = report.get("evaluated_at") or "each recipient's local send time"
    print(f"campaign     {report['campaign_id']} ({report['topic']}, {report['message_class']})")
    print(f"evaluated at {when} ({report['timing']})")
    print(f"audience     {report['audience']}")
    print(f"would send   {report['would_send']}")
    for reason, count in report["suppressed"].items():
        print(f"suppressed   {count:>6}  {reason}")
    segments = report["segments"]
    print(f"encoding     {report['encoding']}, up to {segments['max']} segment(s)", end="")
    print(f" (worst case {segments['worst_case']})")
    cost = report["estimated_cost"]
    print(f"est. cost    {cost['total']:.4f} for {segments['total']} segment(s)")
    for country, line in cost["by_country"].items():
        counts = f"{line['recipients']:>6} recipients  {line['segments']:>6} segments"
        print(f"  {country:<4} {counts}  {line['cost']:.4f}")
    for sample in report["samples"]:
        text = " ".join(sample["text"].split())
        print(f"sample       {sample['to']}: {text}")
    recipient = report.get("recipient")
    if recipient:
        verdict = "would send" if recipient["would_send"] else f"suppressed: {recipient['reason']}"
        print(f"recipient    {recipient['phone']}: {verdict}")
    return 0
