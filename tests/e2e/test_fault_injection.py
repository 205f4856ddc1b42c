"""The whole story keeps its promises when the carrier misbehaves.

The demo's chapters run at a small size while the carrier throttles and times out (a timed-out
send went out; only its answer was lost). The same invariants the demo checks against the
carrier's log must hold. AWS faults are tested one request at a time in test_sender_aws_faults.py
and test_inbound_aws_faults.py (throttled, answer lost, retries spent); the story under a share
of throttled DynamoDB and SQS requests is benchmarks/fault_story.py, because the SDK's adaptive
retries pace it in real time (minutes per run).
"""

from pathlib import Path

from consentry_local import demo
from consentry_local.faults import run_story


def failures(checks: list[demo.Check]) -> list[str]:
    return [f"{check.claim} ({check.detail})" for check in checks if not check.holds]


def test_the_story_keeps_its_promises_when_the_carrier_throttles_and_times_out(tmp_path: Path) -> None:
    checks = run_story(tmp_path, subscribers=40, carrier_faults=True)
    assert checks
    assert not failures(checks), failures(checks)
