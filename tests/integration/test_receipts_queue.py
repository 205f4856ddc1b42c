"""Receipts through their SQS buffer: DeliveryEventsTopic -> ReceiptsQueue (raw delivery) ->
ReceiptsFunction in batches. A batch costs one status write per receipt and one counter write per
campaign it touched; a record that fails (unreadable, throttled) is retried alone; a batch
delivered again changes and counts nothing. Requests are counted with a botocore hook."""

import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from consentry import clock
from consentry.domain.messages import DeliveryStatus
from consentry.providers.base import OutboundSms
from consentry.store import aws as store_aws
from consentry.store import codec, counters, messages
from consentry_local import events as local_events
from consentry_local.runtime import LocalRuntime, QueueSource
from consentry_local.template import load_template
from tests.conftest import START

RESOURCES: dict[str, dict[str, Any]] = load_template()["Resources"]
_numbering = itertools.count()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    local = LocalRuntime(tmp_path_factory.mktemp("receipts-queue"), start=START)
    local.start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def runtime(shared: LocalRuntime) -> Iterator[LocalRuntime]:
    yield shared
    shared.run_until_idle(max_virtual=timedelta(minutes=30))  # nothing of one test leaks into the next


class Writes:
    """UpdateItem requests the functions make, by table (botocore `provide-client-params`)."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.campaigns = runtime.table_name("CampaignsTable")
        self.messages = runtime.table_name("MessagesTable")
        self.requests: list[dict[str, Any]] = []
        #: message id -> ClientError to raise once on its status write (a throttle outlasting the SDK)
        self.refuse_once: dict[str, ClientError] = {}

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(params)
        key = params["Key"]["pk"]["S"].removeprefix("MSG#")
        if params["TableName"] == self.messages and key in self.refuse_once:
            raise self.refuse_once.pop(key)

    def to(self, table: str) -> list[dict[str, Any]]:
        return [request for request in self.requests if request["TableName"] == table]

    def counter_items(self) -> list[tuple[str, str]]:
        return [(r["Key"]["pk"]["S"], r["Key"]["sk"]["S"]) for r in self.to(self.campaigns)]


@pytest.fixture
def writes(runtime: LocalRuntime) -> Iterator[Writes]:
    counting = Writes(runtime)
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
    events.register("provide-client-params.dynamodb.UpdateItem", counting)
    store_aws.reset()  # cached clients keep the handlers they were made with
    try:
        yield counting
    finally:
        events.unregister("provide-client-params.dynamodb.UpdateItem", counting)
        store_aws.reset()


def receipts_source(runtime: LocalRuntime) -> QueueSource:
    return next(source for source in runtime.queue_sources if source.function == "ReceiptsFunction")


def campaign() -> str:
    return f"cmp_rq_{next(_numbering)}"


def put_message(runtime: LocalRuntime, campaign_id: str, index: int, *, sent_at: datetime) -> str:
    """A campaign message record as the sender writes it (store/sends.py layout)."""
    message_id = f"{campaign_id}-m{index}"
    item = {
        "pk": f"MSG#{message_id}",
        "sk": "MSG",
        "message_id": message_id,
        "phone": phone(campaign_id, index),
        "kind": "campaign",
        "campaign_id": campaign_id,
        "topic": "deals",
        "message_class": "promotional",
        "state": "sent",
        "status": "sent",
        "provider_message_id": f"prov-{message_id}",
        "sent_at": sent_at.isoformat(),
        "created_at": sent_at.isoformat(),
        "segments": 1,
        "encoding": "GSM-7",
        "expires_at": int((sent_at + timedelta(days=90)).timestamp()),
    }
    runtime.client("dynamodb").put_item(
        TableName=runtime.table_name("MessagesTable"), Item=codec.to_item(item)
    )
    return message_id


def phone(campaign_id: str, index: int) -> str:
    return f"+1646555{(sum(map(ord, campaign_id)) * 7 + index) % 10_000:04d}"


def delivered(campaign_id: str, index: int, *, at: datetime) -> dict[str, Any]:
    """End User Messaging's event-destination record for a delivered message."""
    message_id = f"{campaign_id}-m{index}"
    return {
        "eventType": "TEXT_DELIVERED",
        "eventVersion": "1.0",
        "eventTimestamp": int(at.timestamp() * 1000),
        "isFinal": True,
        "originationPhoneNumber": "+12025550100",
        "destinationPhoneNumber": phone(campaign_id, index),
        "messageId": f"prov-{message_id}",
        "messageStatus": "DELIVERED",
        "context": {"message_id": message_id, "campaign_id": campaign_id},
        "totalMessagePrice": 0.00581,
        "totalCarrierFee": 0.00302,
    }


def status(message_id: str) -> str:
    record = messages.outbound(message_id)
    assert record is not None
    return str(record["status"])


def receipt_batches(runtime: LocalRuntime) -> int:
    return sum(1 for invocation in runtime.invocations if invocation.function == "ReceiptsFunction")


# --- the template --------------------------------------------------------------------------------


def test_the_topic_feeds_the_queue_raw_and_only_the_topic_may() -> None:
    subscription = RESOURCES["DeliveryEventsToReceiptsQueue"]["Properties"]
    assert subscription == {
        "TopicArn": {"Ref": "DeliveryEventsTopic"},
        "Protocol": "sqs",
        "Endpoint": {"Fn::GetAtt": ["ReceiptsQueue", "Arn"]},
        "RawMessageDelivery": True,
    }
    policy = RESOURCES["ReceiptsQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "ReceiptsQueue"}]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "DeliveryEventsTopic"}}}
    queue = RESOURCES["ReceiptsQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ReceiptsDLQ", "Arn"]}
    assert queue["VisibilityTimeout"] * queue["RedrivePolicy"]["maxReceiveCount"] > 10 * 60  # RECORD_GRACE


def test_the_function_takes_batches_of_100_and_reports_failed_records() -> None:
    function = RESOURCES["ReceiptsFunction"]["Properties"]
    sources = {name: event["Type"] for name, event in function["Events"].items()}
    assert sorted(sources.values()) == ["Api", "SQS"]  # the topic no longer invokes it one receipt at a time
    [queue_event] = [e["Properties"] for e in function["Events"].values() if e["Type"] == "SQS"]
    assert queue_event["Queue"] == {"Fn::GetAtt": ["ReceiptsQueue", "Arn"]}
    assert queue_event["BatchSize"] == 100
    assert 0 < queue_event["MaximumBatchingWindowInSeconds"] <= 10
    assert queue_event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "DeadLetterQueue" not in function  # the queue's redrive is the dead-letter path now


# --- batching ------------------------------------------------------------------------------------


def test_a_batch_makes_one_status_write_per_receipt_and_one_counter_write_per_campaign(
    runtime: LocalRuntime, writes: Writes
) -> None:
    first, second = campaign(), campaign()
    sent = clock.now()
    for index in range(40):
        put_message(runtime, first, index, sent_at=sent)
    for index in range(20):
        put_message(runtime, second, index, sent_at=sent)
    batches_before = receipt_batches(runtime)
    for index in range(40):
        runtime.publish("DeliveryEventsTopic", delivered(first, index, at=sent + timedelta(seconds=3)))
        if index < 20:
            runtime.publish("DeliveryEventsTopic", delivered(second, index, at=sent + timedelta(seconds=3)))
    runtime.pump_queues()
    assert receipt_batches(runtime) == batches_before  # 60 < 100: the batch waits for its window
    runtime.advance(receipts_source(runtime).batching_window)

    assert receipt_batches(runtime) - batches_before == 1
    assert len(writes.to(writes.messages)) == 60
    assert sorted(pk for pk, _ in writes.counter_items()) == [f"CAMPAIGN#{first}", f"CAMPAIGN#{second}"]
    assert counters.totals(first)["delivered"] == 40
    assert counters.totals(second)["delivered"] == 20


def test_a_full_batch_goes_at_once_and_the_rest_after_the_window(
    runtime: LocalRuntime, writes: Writes
) -> None:
    cid = campaign()
    sent = clock.now()
    for index in range(130):
        put_message(runtime, cid, index, sent_at=sent)
        runtime.publish("DeliveryEventsTopic", delivered(cid, index, at=sent + timedelta(seconds=2)))
    batches_before = receipt_batches(runtime)
    runtime.pump_queues()
    assert receipt_batches(runtime) - batches_before == 1  # 100 received: no waiting
    assert counters.totals(cid)["delivered"] == 100
    runtime.advance(receipts_source(runtime).batching_window)
    assert receipt_batches(runtime) - batches_before == 2
    assert counters.totals(cid)["delivered"] == 130
    assert len(writes.counter_items()) == 2


# --- failures ------------------------------------------------------------------------------------


def _sqs_event(runtime: LocalRuntime, bodies: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The event Lambda's poller would build from the queue for these bodies."""
    url = runtime.queue_url("ReceiptsQueue")
    sqs = runtime.client("sqs")
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    received: list[dict[str, Any]] = []
    while len(received) < len(bodies):
        received += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600)[
            "Messages"
        ]
    for message in received:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    by_body = {message["Body"]: message for message in received}
    ordered = [by_body[body] for body in bodies]
    event = local_events.sqs_event(ordered, receipts_source(runtime).queue_arn, runtime.stack.region)
    return event, [message["MessageId"] for message in ordered]


def test_a_malformed_record_is_a_batch_item_failure_while_the_others_are_applied(
    runtime: LocalRuntime, writes: Writes
) -> None:
    cid = campaign()
    sent = clock.now()
    for index in range(3):
        put_message(runtime, cid, index, sent_at=sent)
    good = [json.dumps(delivered(cid, index, at=sent + timedelta(seconds=2))) for index in range(3)]
    bodies = [good[0], "{not json " + cid, good[1], json.dumps({"eventType": "TEXT_DELIVERED"}), good[2]]
    event, ids = _sqs_event(runtime, bodies)

    result = runtime.invoke("ReceiptsFunction", event)

    assert result == {"batchItemFailures": [{"itemIdentifier": ids[1]}, {"itemIdentifier": ids[3]}]}
    assert [status(f"{cid}-m{index}") for index in range(3)] == ["delivered"] * 3
    assert counters.totals(cid)["delivered"] == 3
    assert len(writes.counter_items()) == 1


def test_a_throttled_status_write_retries_only_its_record(runtime: LocalRuntime, writes: Writes) -> None:
    cid = campaign()
    sent = clock.now()
    ids = [put_message(runtime, cid, index, sent_at=sent) for index in range(5)]
    writes.refuse_once[ids[2]] = ClientError(
        {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "rate exceeded"}},
        "UpdateItem",
    )
    batches_before = receipt_batches(runtime)
    for index in range(5):
        runtime.publish("DeliveryEventsTopic", delivered(cid, index, at=sent + timedelta(seconds=2)))
    runtime.advance(receipts_source(runtime).batching_window)

    assert [status(i) for i in ids] == ["delivered"] * 2 + ["sent"] + ["delivered"] * 2
    assert counters.totals(cid)["delivered"] == 4
    status_writes_before = len(writes.to(writes.messages))

    runtime.advance(receipts_source(runtime).visibility_timeout + receipts_source(runtime).batching_window)

    assert status(ids[2]) == "delivered"
    assert len(writes.to(writes.messages)) - status_writes_before == 1  # only the refused record came back
    assert receipt_batches(runtime) - batches_before == 2
    assert counters.totals(cid)["delivered"] == 5
    assert not any(cid in m["Body"] for m in runtime.dead_letters("ReceiptsDLQ"))


def test_a_batch_delivered_again_changes_and_counts_nothing(
    runtime: LocalRuntime, writes: Writes, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = campaign()
    sent = clock.now()
    ids = [put_message(runtime, cid, index, sent_at=sent) for index in range(8)]
    seen: list[dict[str, Any]] = []
    invoke = runtime.invoke

    def recording(function: str, event: dict[str, Any]) -> Any:
        if function == "ReceiptsFunction":
            seen.append(event)
        return invoke(function, event)

    monkeypatch.setattr(runtime, "invoke", recording)
    for index in range(8):
        runtime.publish("DeliveryEventsTopic", delivered(cid, index, at=sent + timedelta(seconds=2)))
    runtime.advance(receipts_source(runtime).batching_window)
    [batch] = seen
    totals = counters.totals(cid)
    records = [messages.outbound(i) for i in ids]
    writes.requests.clear()

    # The same batch again, as Lambda delivers it when an invocation's answer was lost, and the
    # same events again through the topic (SNS and SQS deliver at least once).
    assert runtime.invoke("ReceiptsFunction", batch) == {"batchItemFailures": []}
    for index in range(8):
        runtime.publish("DeliveryEventsTopic", delivered(cid, index, at=sent + timedelta(seconds=2)))
    runtime.advance(receipts_source(runtime).batching_window)

    assert len(seen) == 3
    assert counters.totals(cid) == totals
    assert [messages.outbound(i) for i in ids] == records
    assert writes.counter_items() == []  # nothing changed, so nothing to count


# --- end to end ----------------------------------------------------------------------------------


def test_simulator_receipts_reach_the_function_through_topic_and_queue(
    runtime: LocalRuntime, writes: Writes
) -> None:
    """The carrier simulator's receipts (2-20 s after each send) arrive in a few batches."""
    cid = campaign()
    batches_before = receipt_batches(runtime)
    ids = []
    for second in range(3):
        for index in range(second * 10, second * 10 + 10):
            ids.append(put_message(runtime, cid, index, sent_at=clock.now()))
            runtime.simulator.send(
                OutboundSms(
                    message_id=ids[-1],
                    to_number=phone(cid, index),
                    body="Consentry Demo: hello. Reply STOP to opt out.",
                    message_class="promotional",
                    campaign_id=cid,
                )
            )
        runtime.advance(1)
    runtime.run_until_idle(max_virtual=timedelta(minutes=5))

    assert {status(i) for i in ids} == {DeliveryStatus.DELIVERED.value}
    assert counters.totals(cid)["delivered"] == 30
    batches = receipt_batches(runtime) - batches_before
    assert 1 <= batches <= 6  # receipts spread over ~20 s, gathered by a 5 s window
    assert len(writes.to(writes.messages)) == 30
    assert len(writes.counter_items()) == batches
    assert runtime.queue_depth("ReceiptsQueue") == 0
