"""The one source of "now" for every module.

Lambda uses the wall clock; the local runtime swaps in a controllable clock so that
scenarios spanning hours run in seconds. Domain code takes `now` as an argument;
handlers and services ask this module.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime

_source: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    return _source()


def set_source(source: Callable[[], datetime]) -> None:
    global _source
    _source = source


def reset() -> None:
    set_source(lambda: datetime.now(UTC))


_sleeper: Callable[[float], object] = time.sleep


def sleep(seconds: float) -> None:
    """Wait; in the local runtime the virtual clock moves instead of the process sleeping."""
    _sleeper(seconds)


def set_sleeper(sleeper: Callable[[float], object] | None) -> None:
    global _sleeper
    _sleeper = sleeper or time.sleep
