"""What a batch of consent changes owes the bus and the counters is settled once per batch.

Each committed change still yields its ConsentChanged event and its weekly program counts; the
consent consumers send them ten events to a PutEvents and one counter write per batch, also for
a batch in which a record failed after its change was committed.
"""

import json
from collections import Counter
from typing import Any

import pytest

from consentry.domain.report import PROGRAM_ID, consent_deltas
from consentry.providers.base import ErrorKind, ProviderError
from consentry.store import counters, events
from consentry.store.aws import client
from consentry_local.runtime import LocalRuntime

PHONES = [f"+1212201{index:04d}" for index in range(12)]


def _observe_bus(runtime: LocalRuntime) -> str:
    sqs, bus = runtime.client("sqs"), runtime.stack.physical["EventBus"]["Ref"]
    queue_url: str = sqs.create_queue(QueueName="bus-observer")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rules = runtime.client("events")
    rules.put_rule(
        Name="consent", EventBusName=bus, EventPattern=json.dumps({"detail-type": ["ConsentChanged"]})
    )
    rules.put_targets(Rule="consent", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    return queue_url


def _published(runtime: LocalRuntime, queue_url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while (
        messages := runtime.client("sqs")
        .receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        .get("Messages", [])
    ):
        for message in messages:
            found.append(json.loads(message["Body"])["detail"])
            runtime.client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def _counting(requests: Counter[str]) -> Any:
    def count(model: Any, params: dict[str, Any], **_: Any) -> None:
        body = params.get("body") or b"{}"
        table = (
            json.loads(body).get("TableName", "") if model.service_model.service_name == "dynamodb" else ""
        )
        requests[f"{model.name} {table}".strip()] += 1

    return count


@pytest.fixture
def requests(runtime: LocalRuntime) -> Any:
    counted: Counter[str] = Counter()
    hook = _counting(counted)
    for service in ("events", "dynamodb"):
        client(service).meta.events.register("before-call", hook)
    yield counted
    for service in ("events", "dynamodb"):
        client(service).meta.events.unregister("before-call", hook)


def test_a_batch_of_opt_ins_publishes_ten_events_a_request_and_counts_once(
    runtime: LocalRuntime, requests: Counter[str]
) -> None:
    queue_url = _observe_bus(runtime)
    for phone in PHONES:
        runtime.text_in(phone, "ALERTS")
    runtime.run_until_idle()

    published = _published(runtime, queue_url)
    assert sorted(detail["phone"] for detail in published) == PHONES
    assert all(detail["kind"] == "opt_in" for detail in published)
    # twelve hand-offs arrive in batches of at most ten: at most one PutEvents per batch of ten
    assert requests["PutEvents"] == 2
    program_writes = sum(
        count for name, count in requests.items() if name.startswith("UpdateItem") and "Campaigns" in name
    )
    assert program_writes == 2
    opted_in = consent_deltas("opt_in", runtime.clock.now())
    totals = counters.totals(PROGRAM_ID)
    assert all(totals.get(name) == len(PHONES) for name in opted_in)


def test_changes_committed_in_a_batch_whose_replies_failed_are_still_published(runtime: LocalRuntime) -> None:
    queue_url = _observe_bus(runtime)
    throttled = ProviderError(ErrorKind.THROTTLED, "ThrottlingException", "throttled")
    runtime.simulator.injected_errors.extend([throttled] * 40)  # every welcome is refused for a while
    for phone in PHONES[:3]:
        runtime.text_in(phone, "ALERTS")
    runtime.run_until_idle()
    published = _published(runtime, queue_url)
    assert sorted(detail["phone"] for detail in published) == PHONES[:3]  # once each, retries or not


def test_publishing_many_sends_ten_a_request_in_order(runtime: LocalRuntime, requests: Counter[str]) -> None:
    queue_url = _observe_bus(runtime)
    events.publish_many([("ConsentChanged", {"phone": f"+1{index}"}) for index in range(23)])
    assert requests["PutEvents"] == 3
    assert sorted(int(detail["phone"][2:]) for detail in _published(runtime, queue_url)) == list(range(23))


class RefusingBus:
    """Answers PutEvents as EventBridge does when it refuses some entries: per entry."""

    def __init__(self, refusals: list[set[int]]) -> None:
        self.refusals = refusals  # per request: which entries (by position) are refused
        self.sent: list[list[str]] = []

    def put_events(self, Entries: list[dict[str, str]]) -> dict[str, Any]:
        refused = self.refusals[len(self.sent)] if len(self.sent) < len(self.refusals) else set()
        self.sent.append([json.loads(entry["Detail"])["phone"] for entry in Entries])
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}
            if index in refused
            else {"EventId": "e"}
            for index in range(len(Entries))
        ]
        return {"FailedEntryCount": len(refused), "Entries": results}


def test_entries_the_bus_refuses_are_sent_again_alone(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = RefusingBus([{1}, set()])
    monkeypatch.setattr(events, "client", lambda _service: bus)
    events.publish_many([("ConsentChanged", {"phone": phone}) for phone in ("+1", "+2", "+3")])
    assert bus.sent == [["+1", "+2", "+3"], ["+2"]]


def test_entries_the_bus_keeps_refusing_are_reported(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = RefusingBus([{0}] * events.ATTEMPTS)
    monkeypatch.setattr(events, "client", lambda _service: bus)
    with pytest.raises(
        RuntimeError, match=r"EventBridge refused 1 event\(s\) \(ConsentChanged\): InternalFailure"
    ):
        events.publish_many([("ConsentChanged", {"phone": "+1"}), ("ConsentChanged", {"phone": "+2"})])
    assert bus.sent == [["+1", "+2"], ["+1"], ["+1"]]
