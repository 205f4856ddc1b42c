"""CLI subcommands. Each module defines `register(subparsers)` and sets `func` on its parsers.

A command's `func(args) -> int` returns the exit code and raises CommandError for a clear,
one-line failure message.
"""

import json
import sys
from typing import Any


class CommandError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
