"""The demo story under AWS throttling, repeated: how often every invariant holds.

    .venv/bin/python -m benchmarks.fault_story [--runs 10] [--share 0.05] [--seed 0] [--lost-answers]

Each run throttles a share of the functions' DynamoDB and SQS requests before the emulator sees
them (the SDK's retries absorb most), plays the story at a small size, and checks the demo's
invariants against the carrier simulator's log, plus every audience member in exactly one
terminal state and receipts counted once. With --lost-answers the emulator applies the request
and its answer is lost instead (the SDK sends the same request again, as after a timeout).
"""

import argparse
import tempfile
from pathlib import Path

from consentry_local.faults import AwsThrottling, run_story


def main() -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.fault_story")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--share", type=float, default=0.05, help="share of requests throttled")
    parser.add_argument("--subscribers", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0, help="seed of the first run")
    parser.add_argument("--lost-answers", action="store_true", help="apply the request, lose its answer")
    args = parser.parse_args()
    holding = 0
    for run in range(args.seed, args.seed + args.runs):
        throttling = AwsThrottling(share=args.share, seed=run, lost_answers=args.lost_answers)
        try:
            checks = run_story(Path(tempfile.mkdtemp()), args.subscribers, aws_faults=throttling)
        except RuntimeError as exc:  # an admin API call of the story answered an error
            broken = [f"story stopped: {exc}"]
        else:
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
