"""`consentry` command line: every module in consentry.commands adds its own subcommands."""

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from consentry import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="consentry", description="Consent-first SMS messaging backend")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except commands.CommandError as exc:
        print(f"consentry: error: {exc}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
