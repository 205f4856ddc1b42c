"""How long an inbound STOP takes to become a committed opt-out on the local runtime.

    .venv/bin/python -m benchmarks.stop_latency --subscribers 2000 --stops 200

Subscribers opt in by keyword first (the tables hold their history), then STOPs arrive one at a
time through End User Messaging's SNS notification. Each is timed from the notification to the
moment the contact item reads opted out: the inbound function (webhook verification, duplicate
check, log, hand-off) and the stop consumer (ledger, contact, confirmation) as the runtime runs
them, the emulated AWS requests included. The confirmation's delivery receipt is not part of it.
The design holds this to "well under a second of processing".
"""

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

from consentry.providers.simulator import SimulatorConfig
from consentry.store import contacts
from consentry_local.runtime import LocalRuntime

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def subscriber(index: int) -> str:
    return f"+1212{201 + index // 10_000:03d}{index % 10_000:04d}"


def opted_out(phone: str) -> bool:
    record = contacts.load(phone)
    return record is not None and record.consent.opted_out


def measure(workdir: Path, subscribers: int, stops: int) -> dict[str, float]:
    runtime = LocalRuntime(
        workdir, start=START, simulator=SimulatorConfig(log_path=workdir / "carrier.jsonl")
    )
    runtime.quiet = True
    runtime.start()
    try:
        for index in range(subscribers):
            runtime.text_in(subscriber(index), "ALERTS")
            if index % 40 == 39:
                runtime.run_until_idle()
        runtime.run_until_idle()
        seconds: list[float] = []
        for index in range(0, subscribers, max(1, subscribers // stops))[:stops]:
            phone = subscriber(index)
            started = time.perf_counter()
            runtime.text_in(phone, "STOP")
            while not opted_out(phone):
                if not runtime.step():
                    raise RuntimeError(f"STOP {index} was not committed")
            seconds.append(time.perf_counter() - started)
            runtime.run_until_idle()  # the confirmation's receipt, outside the measurement
    finally:
        runtime.stop()
    ordered = sorted(seconds)
    return {
        "stops": len(ordered),
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))],
        "max_ms": 1000 * ordered[-1],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.stop_latency", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--stops", type=int, default=200)
    args = parser.parse_args(argv)
    if args.stops < 1 or args.subscribers < args.stops:
        parser.error("need 1 <= --stops <= --subscribers")
    logging.getLogger("aws_lambda_powertools").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    result = measure(Path(tempfile.mkdtemp(prefix="consentry-stop-")), args.subscribers, args.stops)
    print(json.dumps({"subscribers": args.subscribers, **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
