"""`consentry consent history PHONE` and `consentry consent verify PHONE`."""

import argparse
from typing import Any

from consentry.admin_client import add_api_argument, admin_client
from consentry.commands import CommandError, print_json
from consentry.domain.phone import InvalidPhoneNumber, normalize


def register(subparsers: Any) -> None:
    consent = subparsers.add_parser("consent", help="a contact's consent ledger")
    actions = consent.add_subparsers(dest="action", required=True, metavar="ACTION")
    history = actions.add_parser("history", help="print every consent change with its evidence")
    history.add_argument("phone")
    history.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    add_api_argument(history)
    history.set_defaults(func=_history)
    verify = actions.add_parser("verify", help="check the hash chain; exit 1 at the first broken link")
    verify.add_argument("phone")
    add_api_argument(verify)
    verify.set_defaults(func=_verify)


def _fetch(args: argparse.Namespace) -> dict[str, Any]:
    try:
        phone = normalize(args.phone)
    except InvalidPhoneNumber as exc:
        raise CommandError(str(exc)) from exc
    response = admin_client(args.api).request("GET", f"/contacts/{phone}/consent")
    if response.status == 404:
        raise CommandError(f"no consent record for {phone}")
    if not response.ok:
        raise CommandError(f"admin API answered {response.status}: {response.body[:200]}")
    result: dict[str, Any] = response.json()
    return result


def _history(args: argparse.Namespace) -> int:
    record = _fetch(args)
    if args.json:
        print_json(record)
        return 0
    print(f"{'seq':>4}  {'event time':<26} {'kind':<21} {'scope':<8} {'outcome':<16} evidence")
    for entry in record["ledger"]:
        evidence = entry["evidence"]
        text = f" {evidence['text']!r}" if evidence.get("text") else ""
        print(
            f"{entry['seq']:>4}  {entry['event_time']:<26} {entry['kind']:<21} {entry['scope']:<8} "
            f"{entry['outcome']:<16} {evidence['source']}:{evidence['reference']}{text}"
        )
    return 0


def _verify(args: argparse.Namespace) -> int:
    chain = _fetch(args)["chain"]
    print_json(chain)
    return 0 if chain["ok"] else 1
