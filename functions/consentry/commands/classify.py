"""`consentry classify TEXT...`: how Consentry reads inbound texts (opt-out, opt-in, help, other).

With no TEXT, reads one message per line from stdin and prints one JSON line per input line,
in order, so a file of real replies can be checked in one go.
"""

import argparse
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from consentry.commands import CommandError, print_json
from consentry.domain.keywords import classify


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "classify",
        help="classify inbound texts as opt_out / opt_in / help / other",
        description="Print one JSON object per text. With no TEXT, read one message per line from stdin.",
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="inbound message text")
    parser.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="KEYWORD=TOPIC_ID",
        help="a business topic keyword and the topic it opts into (repeatable), e.g. DEALS=deals",
    )
    parser.set_defaults(func=_classify)


def parse_topics(values: Sequence[str]) -> dict[str, str]:
    """`KEYWORD=topic_id` options as a mapping; a malformed one is a one-line user error."""
    topics: dict[str, str] = {}
    for value in values:
        keyword, separator, topic_id = value.partition("=")
        if not separator or not keyword.strip() or not topic_id.strip():
            raise CommandError(f"--topic expects KEYWORD=topic_id, got {value!r}")
        topics[keyword.strip()] = topic_id.strip()
    return topics


def _stdin_messages() -> Iterable[str]:
    # Only the line ending goes: leading/trailing spaces are part of what the person sent.
    return (line.rstrip("\r\n") for line in sys.stdin)


def _classify(args: argparse.Namespace) -> int:
    topics = parse_topics(args.topic)
    texts: Iterable[str] = args.texts if args.texts else _stdin_messages()
    for text in texts:
        print_json(classify(text, topics).model_dump(mode="json"))
    return 0
