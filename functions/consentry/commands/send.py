"""`consentry send`: one transactional text through the admin API (POST /messages).

    consentry send --to +12125550142 --topic alerts --idempotency-key order-1042-shipped \\
        --body "Your order 1042 has shipped."
    consentry send --to +12125550142 --topic alerts --idempotency-key appt-77-reminder \\
        --template "Hi {first_name|there}, see you {when}. Reply 1 to confirm, 2 to cancel." \\
        --attr "when=tomorrow at 10:00" --reply-option 1=confirm --reply-option 2=cancel

Prints the result as JSON. The same --idempotency-key again prints the first result and sends
nothing. A refusal (not subscribed, outside the window, ...) is one line on stderr, exit code 2.
"""

import argparse
from typing import Any

from consentry.admin_client import add_api_argument, admin_client
from consentry.commands import CommandError, print_json


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "send",
        help="send one transactional text (reminder, order update, billing notice)",
        description="Send one transactional text through the same consent, window and rate checks as "
        "campaigns. The idempotency key makes a repeat send nothing.",
    )
    parser.add_argument("--to", required=True, help="the recipient, E.164 or US national format")
    parser.add_argument("--topic", required=True, help="a transactional topic of the program, e.g. alerts")
    text = parser.add_mutually_exclusive_group(required=True)
    text.add_argument("--body", help="the text, sent as written")
    text.add_argument("--template", help="a template with {attribute|fallback} placeholders")
    parser.add_argument(
        "--attr", action="append", default=[], metavar="NAME=VALUE", help="a template value (repeatable)"
    )
    parser.add_argument("--idempotency-key", required=True, help="a key of yours; a repeat sends nothing")
    parser.add_argument(
        "--reply-option",
        action="append",
        default=[],
        metavar="DIGIT=ACTION",
        help="a one-digit reply to match to this message, e.g. 1=confirm (repeatable)",
    )
    parser.add_argument("--max-segments", type=int, help="refuse a text longer than this (default 3)")
    add_api_argument(parser)
    parser.set_defaults(func=run)


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, separator, content = value.partition("=")
        if not separator or not name.strip():
            raise CommandError(f"{flag} {value!r} is not NAME=VALUE")
        pairs[name.strip()] = content
    return pairs


def request_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"to": args.to, "topic": args.topic, "idempotency_key": args.idempotency_key}
    if args.body is not None:
        if args.attr:
            raise CommandError("--attr goes with --template (a --body is sent as written)")
        body["body"] = args.body
    else:
        body["template"] = args.template
        body["attributes"] = _pairs(args.attr, "--attr")
    if args.reply_option:
        body["reply_options"] = _pairs(args.reply_option, "--reply-option")
    if args.max_segments is not None:
        body["max_segments"] = args.max_segments
    return body


def run(args: argparse.Namespace) -> int:
    response = admin_client(args.api).request("POST", "/messages", body=request_body(args))
    payload = response.json() if response.body else None
    if not response.ok:
        error = payload.get("error") if isinstance(payload, dict) else None
        raise CommandError(
            f"not sent ({response.status}): {error or response.body.strip() or 'no reason given'}"
        )
    print_json(payload)
    return 0
