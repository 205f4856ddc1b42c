"""`consentry demo`: the whole story on the local embedded runtime."""

import argparse
from typing import Any

from consentry.commands import CommandError


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="run the end-to-end story on the local runtime")
    demo.add_argument("--subscribers", type=int, help="simulated subscribers (default 1,000)")
    demo.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    try:
        from consentry_local.demo import main
    except ImportError as exc:
        raise CommandError(f"the local runtime is not installed ({exc}); install consentry[local]") from exc
    return main([] if args.subscribers is None else ["--subscribers", str(args.subscribers)])
