"""Faults for the local runtime's stories: AWS throttling ahead of the emulator, carrier trouble.

`run_story` plays the demo's chapters at a small size with the faults switched on and returns the
demo's checks, so tests and benchmarks hold the story to the same invariants under faults.
"""

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ClientError

from consentry.providers.base import ErrorKind, ProviderError
from consentry.providers.simulator import SimulatorConfig
from consentry_local import demo
from consentry_local.moto_speedups import WIRE_ONLY
from consentry_local.runtime import LocalRuntime

#: Where a throttled request is pointed while the emulator's own before-send handler runs: moto
#: passes over an address it does not serve, so the request never reaches a backend.
_NOWHERE = "http://throttled.invalid/"
_DYNAMODB_THROTTLE = "ProvisionedThroughputExceededException"


class AwsThrottling:
    """Answers a share of DynamoDB and SQS requests with a throttling error, deterministically.

    Throttled (the default): the emulator never sees the request, as with DynamoDB's and SQS's
    own throttling, and the SDK's retries absorb most. botocore calls every before-send handler
    and keeps the first answer, so the emulator's handler runs after this one anyway: the
    request is pointed nowhere for it and given its address back by `restore` (registered last).

    `lost_answers`: the emulator applies the request and its answer is replaced by the throttling
    error, as when a timeout or a 5xx loses the answer to a write that landed: the SDK sends the
    same request again. A harder fault: every non-idempotent write shows whether it copes.
    """

    def __init__(self, share: float, seed: int, *, lost_answers: bool = False) -> None:
        self.share = share
        self.random = random.Random(seed)
        self.lost_answers = lost_answers
        self.injected = 0
        self._addresses: dict[int, str] = {}

    def register(self, events: Any) -> None:
        events.register_first("before-call", self.over_the_wire)
        events.register_first("before-send", self)
        events.register_last("before-send", self.restore)

    def unregister(self, events: Any) -> None:
        events.unregister("before-call", self.over_the_wire)
        events.unregister("before-send", self)
        events.unregister("before-send", self.restore)

    @staticmethod
    def over_the_wire(context: dict[str, Any], **_: Any) -> None:
        """Faults happen on the way to the service and back, where the SDK retries: requests are
        sent, not answered by the in-process runtime's direct path, while these are installed."""
        context[WIRE_ONLY] = True

    def _chosen(self, target: str, request: Any) -> bool:
        return target.startswith(("DynamoDB_", "AmazonSQS")) and self.random.random() < self.share

    def restore(self, request: Any, **_: Any) -> None:
        address = self._addresses.pop(id(request), None)
        if address is not None:
            request.url = address  # the SDK's retry sends this same request object again

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else str(target)
        if not self._chosen(target, request):
            return None
        self.injected += 1
        address = request.url
        if not self.lost_answers:
            self._addresses[id(request)] = address
            request.url = _NOWHERE
        code = _DYNAMODB_THROTTLE if target.startswith("DynamoDB") else "ThrottlingException"
        body = json.dumps({"__type": code, "message": "injected fault"}).encode()
        raw = _RawBody(body)
        headers = HTTPHeaders()
        headers["x-amzn-ErrorType"] = code
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return AWSResponse(address, 400, headers, raw)


class ThrottleOnce(AwsThrottling):
    """Throttles exactly the `nth` request that `matches` (operation name, decoded JSON body).

    Register it on one client (`client.meta.events`) or a session. With `lost_answers` the
    request is applied and only its answer is lost, so the SDK sends the same request again.
    """

    def __init__(
        self, matches: Callable[[str, dict[str, Any]], bool], *, nth: int = 1, lost_answers: bool = False
    ) -> None:
        super().__init__(share=1.0, seed=0, lost_answers=lost_answers)
        self.matches = matches
        self.nth = nth
        self.seen = 0

    def _chosen(self, target: str, request: Any) -> bool:
        if not target.startswith(("DynamoDB_", "AmazonSQS")):
            return False
        body = request.body
        try:
            decoded = json.loads(body.decode() if isinstance(body, bytes) else body or "{}")
        except ValueError:
            return False
        if not self.matches(target.rpartition(".")[2], decoded if isinstance(decoded, dict) else {}):
            return False
        self.seen += 1
        return self.seen == self.nth


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
        # Around moto's own handler (see AwsThrottling). The functions' clients are created after
        # this, on their first call.
        aws_faults.register(session.events)
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
        verify_counts(story, report)
        return story.checks
    finally:
        if aws_faults is not None:
            aws_faults.unregister(session.events)
        runtime.stop()


def verify_counts(story: demo.Story, report: dict[str, Any]) -> None:
    """What the demo's checks leave implicit: every audience member in exactly one terminal state,
    and receipts never counted beyond the messages handed over (the report floors `pending` at 0)."""
    audience = int(report.get("audience") or 0)
    handed_over = int(report.get("sent", 0)) + int(report.get("send_unknown", 0))
    terminal = handed_over + _total(report, "suppressed") + _total(report, "send_failed")
    story.check(
        "every audience member ends in exactly one terminal state",
        terminal == audience,
        f"audience {audience}, terminal {terminal}",
    )
    receipted = int(report.get("delivered", 0)) + _total(report, "delivery_failed")
    receipted += int(report.get("delivery_unknown", 0))
    story.check(
        "receipts counted once: delivered + failed + unknown + pending = handed over",
        receipted + int(report.get("pending", 0)) == handed_over,
        f"receipted {receipted}, pending {report.get('pending')}, handed over {handed_over}",
    )


def _total(report: dict[str, Any], name: str) -> int:
    value = report.get(name) or {}
    return int(value.get("total", 0)) if isinstance(value, dict) else 0


class FailOnce:
    """Raises a throttling error for exactly the `nth` call that `matches` (operation, parameters),
    before the SDK sends anything: what the caller sees once the SDK's own retries are spent.

    Register with `register(client.meta.events)` (or a session's events).
    """

    def __init__(self, matches: Callable[[str, dict[str, Any]], bool], *, nth: int = 1) -> None:
        self.matches = matches
        self.nth = nth
        self.seen = 0
        self.injected = 0

    def register(self, events: Any) -> None:
        events.register_first("before-parameter-build", self)

    def unregister(self, events: Any) -> None:
        events.unregister("before-parameter-build", self)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if not self.matches(model.name, params):
            return
        self.seen += 1
        if self.seen != self.nth:
            return
        self.injected += 1
        code = "ThrottlingException" if model.service_model.service_name == "sqs" else _DYNAMODB_THROTTLE
        raise ClientError({"Error": {"Code": code, "Message": "injected fault"}}, model.name)
