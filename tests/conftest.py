"""Shared fixtures: the local runtime on a virtual clock, and helpers to read its state."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.e2e.helpers")  # its assertion helpers report like test asserts

from consentry_local.runtime import LocalRuntime  # noqa: E402 - after the rewrite registration

#: Tuesday 24 Nov 2026, 10:00 in New York: inside every daytime window.
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LocalRuntime]:
    local = LocalRuntime(tmp_path, start=START)
    local.start()
    try:
        yield local
    finally:
        local.stop()
