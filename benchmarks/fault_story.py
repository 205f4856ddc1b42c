"""The demo story under AWS throttling, repeated: how often every invariant holds.

    .venv/bin/python -m benchmarks.fault_story --runs 5 --share 0.05

Each run throttles a share of the functions' DynamoDB and SQS requests before the emulator sees
them (the SDK's retries absorb most), plays the story at a small size, and checks the demo's
invariants against the carrier simulator's log.
"""

import argparse
import tempfile
from pathlib import Path

from consentry_local.faults import AwsThrottling, run_story


def main() -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.fault_story")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--share", type=float, default=0.05, help="share of requests throttled")
    parser.add_argument("--subscribers", type=int, default=40)
    args = parser.parse_args()
    holding = 0
    for run in range(args.runs):
        throttling = AwsThrottling(share=args.share, seed=run)
        checks = run_story(Path(tempfile.mkdtemp()), args.subscribers, aws_faults=throttling)
        broken = [f"{check.claim} ({check.detail})" for check in checks if not check.holds]
        holding += not broken
        print(
            f"run {run}: {throttling.injected} throttles injected; "
            + ("all invariants hold" if not broken else "; ".join(broken))
        )
    print(f"{holding}/{args.runs} runs held every invariant")
    return 0 if holding == args.runs else 1


if __name__ == "__main__":
    raise SystemExit(main())
