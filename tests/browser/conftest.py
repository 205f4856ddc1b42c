"""Headless Chromium for the browser tests. Missing Chromium is a failure, never a skip:
`make test` installs Debian's chromium package first."""

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_SECONDS = 90

Chromium = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    found = shutil.which("chromium") or (str(DEBIAN_CHROMIUM) if DEBIAN_CHROMIUM.exists() else None)
    if found is None:
        pytest.fail(
            "the browser tests need headless Chromium at /usr/bin/chromium: "
            "install Debian's package (apt-get install -y chromium), as `make test` does",
            pytrace=False,
        )
    return Path(found)


@pytest.fixture(scope="module")
def chromium(chromium_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Chromium:
    """Run headless Chromium on a page with the given extra flags; a fresh profile per module."""
    profile = tmp_path_factory.mktemp("chromium-profile")

    def run(url: str, *flags: str) -> subprocess.CompletedProcess[str]:
        command = [
            str(chromium_path),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *flags,
            url,
        ]
        result = subprocess.run(  # noqa: S603 - a fixed binary and our own arguments
            command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
        if result.returncode != 0:
            pytest.fail(f"chromium exited {result.returncode}: {result.stderr[-2000:]}", pytrace=False)
        return result

    return run
