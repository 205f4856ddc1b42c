"""Faults for the local runtime's stories: AWS throttling ahead of the emulator, carrier trouble.

`run_story` plays the demo's chapters at a small size with the faults switched on and returns the
demo's checks, so tests and benchmarks hold the story to the same invariants under faults.
"""

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

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
        body = json.dumps({"__type": code, "message": "injected fault"}).encode()
        raw = _RawBody(body)
        headers = HTTPHeaders()
        headers["x-amzn-ErrorType"] = code
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, 400, headers, raw)


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
        session.events.register_first("before-send", aws_faults)  # type: ignore[arg-type]
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
            session.events.unregister("before-send", aws_faults)  # type: ignore[arg-type]
        runtime.stop()
