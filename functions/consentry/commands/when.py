"""`consentry when PHONE`: may this number be texted now (or at --at), and if not, when next?

Pure computation on the number and the rules: no AWS access.
"""

import argparse
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from consentry import clock
from consentry.commands import CommandError, print_json
from consentry.domain.messages import MessageClass
from consentry.domain.phone import InvalidPhoneNumber, mask, normalize
from consentry.domain.regions import regions_for
from consentry.domain.window import DEFAULT_POLICIES, WindowPolicy, decide


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "when",
        help="check the send-time window for a number",
        description=(
            "Check whether a number may be texted at a time (legal rules for its country, state and "
            "time zones, plus the business window) and when it may be texted next."
        ),
    )
    parser.add_argument("phone", metavar="PHONE", help="the recipient's number, E.164 or US national format")
    parser.add_argument("--at", help="ISO 8601 time with a UTC offset (default: now)")
    parser.add_argument(
        "--class",
        dest="message_class",
        choices=sorted(DEFAULT_POLICIES),
        default="promotional",
        help="message class; its default business window applies unless --window/--days replace it",
    )
    parser.add_argument("--window", help="business window HH:MM-HH:MM, replacing the class default")
    parser.add_argument("--days", help="business days, e.g. mon-fri, mon-sun or mon,wed,fri")
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="YYYY-MM-DD",
        help="a date never to send on (repeatable)",
    )
    parser.add_argument(
        "--zone", action="append", metavar="IANA", help="the contact's own time zone, replacing derived ones"
    )
    parser.set_defaults(func=run)


def _parse_at(text: str | None) -> datetime:
    if text is None:
        return clock.now()
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise CommandError(f"--at {text!r} is not an ISO 8601 time, e.g. 2025-06-02T14:30:00-04:00") from exc
    if at.tzinfo is None:
        raise CommandError(f"--at {text!r} needs a UTC offset or Z, e.g. 2025-06-02T14:30:00-04:00")
    return at


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def run(args: argparse.Namespace) -> int:
    message_class: MessageClass = args.message_class
    try:
        number = normalize(args.phone)
    except InvalidPhoneNumber as exc:
        raise CommandError(str(exc)) from exc
    at = _parse_at(args.at)
    try:
        policy = WindowPolicy.parse(
            args.window, args.days, args.exclude, base=DEFAULT_POLICIES[message_class]
        )
        regions = regions_for(number, args.zone)
    except ValueError as exc:
        raise CommandError(str(exc).splitlines()[0]) from exc
    decision = decide(regions, at, message_class, policy)
    output: dict[str, Any] = {
        "number": mask(number),
        "country": regions.country,
        "states": list(regions.states),
        "zones": list(regions.zones),
        "class": message_class,
        "policy": policy.describe(),
        "at": at.isoformat(),
        "allowed": decision.allowed,
        "reason": decision.reason,
        "rule": decision.rule,
        "zone": decision.zone,
        "next_allowed": _iso(decision.next_allowed),
        # The same instant on the recipient's clock(s), which is what a person checks it against.
        "next_allowed_local": None
        if decision.next_allowed is None
        else {zone: decision.next_allowed.astimezone(ZoneInfo(zone)).isoformat() for zone in regions.zones},
        "allowed_until": _iso(decision.allowed_until),
    }
    print_json(output)
    return 0
