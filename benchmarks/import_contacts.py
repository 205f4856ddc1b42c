"""Contact import throughput on the local runtime (in-process moto), through the real path.

    python benchmarks/import_contacts.py --rows 100000 [--page-size 500] [--workdir DIR]

Generates a CSV of valid US numbers with attributes and consent evidence (1% of rows lack
the evidence promotional consent needs, so the refusal path is exercised too), then runs
`consentry contacts import` against the local runtime's admin API, in pages, exactly as an
operator would, and then imports the same file again (every row must come back unchanged).
Prints one JSON line: rows, seconds and rows/second for both runs.

The emulator is the bottleneck here (moto parses and validates every request in Python);
on AWS each page of 500 rows is one Lambda invocation of ~500 small transactions.
"""

import argparse
import contextlib
import io
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import phonenumbers

from consentry import admin_client, cli
from consentry_local.admin import RuntimeAdminClient
from consentry_local.runtime import LocalRuntime

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
AREA_CODES = (212, 305, 312, 415, 617, 713, 206, 303, 404, 503)
HEADER = (
    "phone,first_name,city,tier,consent.deals,consent.deals.at,consent.deals.source,"
    "consent.deals.disclosure_version,consent.alerts,consent.alerts.at\n"
)


def numbers(count: int, rng: random.Random) -> list[str]:
    found: set[str] = set()
    while len(found) < count:
        candidate = f"+1{rng.choice(AREA_CODES)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
        if candidate not in found and phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
            found.add(candidate)
    return sorted(found)


def write_csv(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for index, phone in enumerate(numbers(rows, rng)):
            evidence = (
                ",web form,deals-v3" if index % 100 else ",,"
            )  # 1%: promotional consent without evidence
            day = 1 + index % 28
            handle.write(
                f"{phone},Name{index},City{index % 50},{rng.choice(('gold', 'silver', 'bronze'))},"
                f"yes,2026-10-{day:02d}T12:00:00Z{evidence},yes,2026-10-{day:02d}T12:00:00Z\n"
            )


def timed_import(source: Path, page_size: int) -> tuple[float, dict[str, Any]]:
    stdout = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(["contacts", "import", str(source), "--page-size", str(page_size)])
    elapsed = time.perf_counter() - started
    if code not in (0, 1):
        raise SystemExit(f"import failed with exit code {code}")
    summary: dict[str, Any] = json.loads(stdout.getvalue().strip().splitlines()[-1])
    return elapsed, summary


def run(rows: int, workdir: Path, page_size: int = 500, *, reimport: bool = True) -> dict[str, Any]:
    source = workdir / "contacts.csv"
    write_csv(source, rows)
    runtime = LocalRuntime(workdir, start=START)
    runtime.start()
    admin_client.use_client(lambda _url: RuntimeAdminClient(runtime))
    try:
        first_seconds, first = timed_import(source, page_size)
        if reimport:
            second_seconds, second = timed_import(source, page_size)
    finally:
        admin_client.use_client(None)
        runtime.stop()
    result = {
        "rows": rows,
        "page_size": page_size,
        "imported": first["imported"],
        "refused": first["refused"],
        "seconds": round(first_seconds, 2),
        "rows_per_second": round(rows / first_seconds, 1),
    }
    if not reimport:
        return result
    return {
        **result,
        "reimport_unchanged": second["unchanged"],
        "reimport_imported": second["imported"],
        "reimport_seconds": round(second_seconds, 2),
        "reimport_rows_per_second": round(rows / second_seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--workdir", type=Path, help="keep the generated file and simulator log here")
    args = parser.parse_args(argv)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = run(args.rows, args.workdir, args.page_size)
    else:
        with tempfile.TemporaryDirectory() as directory:
            result = run(args.rows, Path(directory), args.page_size)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
