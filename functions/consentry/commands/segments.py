"""`consentry segments`: encoding and segment count of each line read from stdin."""

import argparse
import sys

from consentry.commands import print_json
from consentry.domain.encoding import analyze, ensure_opt_out_instructions, smart_encode


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "segments",
        help="count SMS segments of messages read from stdin",
        description="Read one message per line from stdin; print one JSON line per message with its "
        "encoding (GSM-7 or UCS-2), segments and units (septets or UTF-16 code units).",
    )
    parser.add_argument(
        "--smart", action="store_true", help="replace look-alikes (curly quotes, dashes...) first"
    )
    parser.add_argument(
        "--promotional",
        action="store_true",
        help="append the opt-out footer when a message lacks opt-out wording",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for line in sys.stdin:
        text = line.rstrip("\r\n")
        if args.promotional and text.strip():
            text = ensure_opt_out_instructions(text)
        if args.smart:
            text = smart_encode(text)
        info = analyze(text)
        print_json({"text": text, **info.model_dump(mode="json")})
    return 0
