"""The whole story keeps its promises when AWS and the carrier misbehave.

The demo's chapters run at a small size while faults are injected: AWS throttling of a share
of DynamoDB and SQS requests (answered before the emulator sees them, so the SDK's own retry
path runs), and carrier throttling and timeouts. The same invariants the demo checks against
the carrier's log must hold in every run.
"""

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from consentry.providers.base import ErrorKind, ProviderError
from consentry.providers.simulator import SimulatorConfig
from consentry_local import demo
from consentry_local.runtime import LocalRuntime


class AwsThrottling:
    """Answers a share of DynamoDB and SQS requests with a throttling error, deterministically."""

    def __init__(self, share: float, seed: int) -> None:
        self.share = share
        self.random = random.Random(seed)
        self.injected = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else str(target)
        if not target.startswith(("DynamoDB_", "AmazonSQS")) or self.random.random() >= self.share:
            return None
        self.injected += 1
        code = (
            "ProvisionedThroughputExceededException"
            if target.startswith("DynamoDB")
            else "ThrottlingException"
        )
        body = json.dumps({"__type": code, "message": "injected by the test"}).encode()
        raw = _RawBody(body)
        return AWSResponse(
            request.url, 400, {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.0"}, raw
        )


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body

    def read(self, *_: Any) -> bytes:
        return self.body


def run_story(
    workdir: Path, subscribers: int, *, carrier_faults: bool = False, aws_faults: AwsThrottling | None = None
) -> list[demo.Check]:
    simulator = SimulatorConfig(log_path=workdir / "simulator.jsonl", messages_per_second=40)
    runtime = LocalRuntime(workdir, start=demo.START, simulator=simulator, quiet=True)
    runtime.start()  # starting the emulator gives boto3 a new default session: hook it afterwards
    session = boto3.DEFAULT_SESSION
    assert session is not None
    if aws_faults is not None:
        # Ahead of moto's own handler, so a throttled request never reaches the emulator. The
        # functions' clients are created after this, on their first call.
        session.events.register_first("before-send", aws_faults)
    try:
        story = demo.Story(runtime=runtime, rng=random.Random(5))
        people = demo.population(subscribers, story.rng)
        groups = demo.keyword_chapter(story, people)
        demo.verify_keywords(story, groups)
        demo.import_profiles(story, people)
        if carrier_faults:
            throttled = ProviderError(ErrorKind.THROTTLED, "ThrottlingException", "throttled")
            runtime.simulator.injected_errors.extend([throttled] * 9)
            runtime.simulator.timeouts.update(people[1::17])  # sends that time out after leaving
        campaign_id, _ = demo.campaign_chapter(story, people)
        report = story.api("GET", f"/campaigns/{campaign_id}/report")
        demo.verify_campaign(story, campaign_id, report)
        return story.checks
    finally:
        if aws_faults is not None:
            session.events.unregister("before-send", aws_faults)
        runtime.stop()


def failures(checks: list[demo.Check]) -> list[str]:
    return [f"{check.claim} ({check.detail})" for check in checks if not check.holds]


@pytest.mark.xfail(
    strict=True,
    reason=(
        "known gap, found by this test: with 5% of DynamoDB/SQS requests throttled, one campaign "
        "message the carrier received is not counted as sent (report: sent 12, pending 1, carrier "
        "saw 13) - a chunk's accounting loses a send when its writes are throttled past the SDK's "
        "retries. No duplicate, late or out-of-window send was seen. Remove this mark with the fix."
    ),
)
def test_the_story_keeps_its_promises_when_dynamodb_and_sqs_throttle(tmp_path: Path) -> None:
    throttling = AwsThrottling(share=0.05, seed=11)
    checks = run_story(tmp_path, subscribers=40, aws_faults=throttling)
    assert throttling.injected > 20  # the faults really happened
    assert not failures(checks), failures(checks)


def test_the_story_keeps_its_promises_when_the_carrier_throttles_and_times_out(tmp_path: Path) -> None:
    checks = run_story(tmp_path, subscribers=40, carrier_faults=True)
    assert not failures(checks), failures(checks)
