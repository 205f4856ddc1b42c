"""The in-process runtime's direct answers are the answers moto gives over botocore's HTTP path.

Each scenario runs twice on a fresh emulator: once the way any moto user's client works (botocore
serialises, moto parses, moto serialises, botocore parses) and every update walks moto's whole
validator, once with the runtime's direct path (DynamoDB handed botocore's validated parameters;
SQS and EventBridge handed botocore's serialised request without the HTTP machinery) and its
plain-update shortcut. Every answer and every error (code, message, modeled fields such as a
failed condition's item or a transaction's cancellation reasons) must be the same, and the
shortcut run must really have taken the shortcuts.
"""

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from consentry_local import moto_speedups

Outcome = tuple[Any, ...]
Scenario = Callable[[Any], list[Outcome]]

KEY = {"pk": {"S": "a"}, "sk": {"S": "1"}}
VOLATILE = ("ResponseMetadata", "MessageId", "ReceiptHandle", "EventId")
VOLATILE_ATTRIBUTES = ("SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId")


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _stable(item)
            for key, item in value.items()
            if key not in VOLATILE and key not in VOLATILE_ATTRIBUTES
        }
    if isinstance(value, list):
        return [_stable(item) for item in value]
    return value


class Recorder:
    def __init__(self, session: boto3.Session) -> None:
        self.session = session
        self.outcomes: list[Outcome] = []

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name="us-east-1")  # type: ignore[call-overload]

    def __call__(self, client: Any, operation: str, **parameters: Any) -> Any:
        try:
            answer = getattr(client, operation)(**parameters)
        except ClientError as error:
            self.outcomes.append(
                (operation, "error", type(error).__name__, str(error), _stable(error.response))
            )
            return None
        except Exception as crash:  # moto lets some invalid requests crash: so must the direct path
            self.outcomes.append((operation, "crashed", type(crash).__name__, str(crash)))
            return None
        self.outcomes.append((operation, "ok", _stable(answer)))
        return answer


def _run(scenario: Callable[[Recorder], None], *, direct: bool) -> list[Outcome]:
    with mock_aws():
        moto_speedups.install_routing()
        moto_speedups.install_update_expression_cache()
        moto_speedups.install_condition_lexing_cache()
        moto_speedups.install_condition_check_cache()
        moto_speedups.install_plain_update_shortcut()
        moto_speedups.install_item_size_shortcut()
        moto_speedups.install_direct_answers()
        moto_speedups.answer_directly(direct)
        try:
            recorder = Recorder(boto3.Session())
            scenario(recorder)
        finally:
            moto_speedups.answer_directly(False)
        return recorder.outcomes


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often each shortcut answered; the reference run has them off."""
    counts = {"dynamodb": 0, "dispatched": 0, "planned": 0}
    originals = {
        "dynamodb": moto_speedups._answer_dynamodb,
        "dispatched": moto_speedups._answer_dispatched,
    }
    for name, original in originals.items():

        def counting(*args: Any, _name: str = name, _original: Any = original) -> Any:
            counts[_name] += 1
            return _original(*args)

        monkeypatch.setattr(moto_speedups, f"_answer_{name}", counting)
    execute = moto_speedups._PlannedUpdate.execute

    def counting_execute(self: Any) -> None:
        counts["planned"] += 1
        execute(self)

    monkeypatch.setattr(moto_speedups._PlannedUpdate, "execute", counting_execute)
    return counts


def _compare(scenario: Callable[[Recorder], None], monkeypatch: pytest.MonkeyPatch) -> list[Outcome]:
    with monkeypatch.context() as reference:
        reference.setattr(moto_speedups, "REPLACEMENTS_ON", False)
        expected = _run(scenario, direct=False)
    moto_speedups._shape_checked.clear()  # the shortcut run learns the shapes itself
    moto_speedups._checked_conditions.clear()
    actual = _run(scenario, direct=True)
    assert len(actual) == len(expected)
    for want, got in zip(expected, actual, strict=True):
        assert got == want
    return actual


# -- DynamoDB ------------------------------------------------------------------------------------
def _table(call: Recorder) -> Any:
    client = call.client("dynamodb")
    client.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def _items_and_errors(call: Recorder) -> None:
    db = _table(call)
    item = {
        **KEY,
        "n": {"N": "5"},
        "b": {"B": b"\x00\xffbin"},
        "ss": {"SS": ["x", "y"]},
        "bs": {"BS": [b"a"]},
        "m": {"M": {"l": {"L": [{"N": "1"}, {"NULL": True}, {"BOOL": False}]}}},
    }
    call(db, "put_item", TableName="t", Item=item)
    call(db, "put_item", TableName="t", Item=item, ConditionExpression="attribute_not_exists(pk)")
    call(
        db,
        "put_item",
        TableName="t",
        Item=item,
        ConditionExpression="attribute_not_exists(pk)",
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )
    call(db, "put_item", TableName="t", Item=item, ReturnValues="ALL_OLD")
    call(db, "put_item", TableName="t", Item={**KEY, "g": {"S": ""}})
    for width in (40_000, 40_500):  # ten attributes: just under, then just over moto's item size limit
        wide = {f"a{index}": {"S": "x" * width} for index in range(10)}
        call(db, "put_item", TableName="t", Item={"pk": {"S": "wide"}, "sk": {"S": str(width)}, **wide})
    call(db, "get_item", TableName="t", Key=KEY)
    call(
        db,
        "get_item",
        TableName="t",
        Key=KEY,
        ProjectionExpression="#n, b",
        ExpressionAttributeNames={"#n": "n"},
    )
    call(db, "get_item", TableName="t", Key={"pk": {"S": "none"}, "sk": {"S": "1"}})
    call(db, "get_item", TableName="missing", Key=KEY)
    call(db, "get_item", TableName="t", Key={"pk": {"S": ""}, "sk": {"S": "1"}})
    for index in range(5):
        call(
            db,
            "put_item",
            TableName="t",
            Item={"pk": {"S": "q"}, "sk": {"S": f"{index:03d}"}, "v": {"N": str(index)}},
        )
    call(
        db,
        "query",
        TableName="t",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "q"}},
        Limit=2,
    )
    call(
        db,
        "query",
        TableName="t",
        KeyConditionExpression="pk = :p AND sk > :s",
        FilterExpression="v > :v",
        ExpressionAttributeValues={":p": {"S": "q"}, ":s": {"S": "000"}, ":v": {"N": "2"}},
        ScanIndexForward=False,
    )
    call(
        db,
        "query",
        TableName="t",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "q"}},
        ExclusiveStartKey={"pk": {"S": "q"}, "sk": {"S": "001"}},
        Select="COUNT",
    )
    for index in range(6):
        grouped = {"pk": {"S": f"g{index}"}, "sk": {"S": f"{index % 4}"}, "g": {"S": f"group-{index % 2}"}}
        call(db, "put_item", TableName="t", Item=grouped)
    for group, forward in (("group-0", True), ("group-1", False), ("nobody", True)):
        call(
            db,
            "query",
            TableName="t",
            IndexName="by-g",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": group}},
            ScanIndexForward=forward,
            Limit=2,
        )
    call(db, "scan", TableName="t", Limit=3)
    call(db, "scan", TableName="t", FilterExpression="attribute_exists(v)", ReturnConsumedCapacity="TOTAL")
    call(
        db,
        "batch_get_item",
        RequestItems={
            "t": {"Keys": [{"pk": {"S": "q"}, "sk": {"S": "001"}}, {"pk": {"S": "q"}, "sk": {"S": "404"}}]}
        },
    )
    call(
        db,
        "batch_write_item",
        RequestItems={
            "t": [
                {"PutRequest": {"Item": {"pk": {"S": "w"}, "sk": {"S": "1"}}}},
                {"DeleteRequest": {"Key": {"pk": {"S": "q"}, "sk": {"S": "000"}}}},
            ]
        },
    )
    call(
        db,
        "batch_write_item",
        RequestItems={"t": [{"PutRequest": {"Item": {"pk": {"S": "w"}, "sk": {"S": "1"}}}}] * 2},
    )
    tx_put = {
        "TableName": "t",
        "Item": {"pk": {"S": "tx"}, "sk": {"S": "1"}},
        "ConditionExpression": "attribute_not_exists(pk)",
    }
    add_one = {
        "TableName": "t",
        "Key": KEY,
        "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    call(db, "transact_write_items", TransactItems=[{"Put": tx_put}, {"Update": add_one}])
    call(
        db,
        "transact_write_items",
        TransactItems=[
            {"Put": {**tx_put, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            {"ConditionCheck": {"TableName": "t", "Key": KEY, "ConditionExpression": "attribute_exists(pk)"}},
        ],
    )
    call(
        db,
        "transact_write_items",
        TransactItems=[{"Put": {"TableName": "t", "Item": {"pk": {"S": "tx"}, "sk": {"S": "2"}}}}] * 2,
    )
    call(
        db,
        "transact_get_items",
        TransactItems=[
            {"Get": {"TableName": "t", "Key": {"pk": {"S": "tx"}, "sk": {"S": "1"}}}},
            {"Get": {"TableName": "t", "Key": {"pk": {"S": "no"}, "sk": {"S": "1"}}}},
        ],
    )
    call(db, "delete_item", TableName="t", Key=KEY, ReturnValues="ALL_OLD")
    call(db, "delete_item", TableName="t", Key=KEY, ConditionExpression="attribute_exists(pk)")
    call(db, "scan", TableName="t")


def test_dynamodb_items_and_errors_are_answered_as_over_http(
    monkeypatch: pytest.MonkeyPatch, counted: dict[str, int]
) -> None:
    outcomes = _compare(_items_and_errors, monkeypatch)
    assert counted["dynamodb"] == len(outcomes)
    errors = {outcome[4]["Error"]["Code"] for outcome in outcomes if outcome[1] == "error"}
    assert {
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
        "ResourceNotFoundException",
        "ValidationException",
    } <= errors
    assert any("maximum allowed size" in outcome[3] for outcome in outcomes if outcome[1] == "error")
    failed_condition = next(o for o in outcomes if o[0] == "put_item" and o[1] == "error" and "Item" in o[4])
    assert failed_condition[4]["Item"]["b"] == {
        "B": b"\x00\xffbin"
    }  # the modeled field, parsed as botocore does


# -- updates -------------------------------------------------------------------------------------
def _updates(call: Recorder) -> None:
    db = _table(call)

    def update(
        expression: str,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        key: dict[str, Any] = KEY,
        **extra: Any,
    ) -> None:
        parameters: dict[str, Any] = {
            "TableName": "t",
            "Key": key,
            "UpdateExpression": expression,
            "ReturnValues": "ALL_NEW",
            **extra,
        }
        if names:
            parameters["ExpressionAttributeNames"] = names
        if values:
            parameters["ExpressionAttributeValues"] = values
        call(db, "update_item", **parameters)

    one = {":one": {"N": "1"}}
    for round_ in range(3):  # the first round teaches the shapes; later rounds take the shortcut
        update("ADD n :one SET #e = :e", {"#e": "expires"}, {**one, ":e": {"N": "17"}})
        update("ADD n :d", None, {":d": {"N": "1.50"}})
        update("ADD n :d", None, {":d": {"N": "-0.5"}})
        update(
            "SET #s = :s, b = :b, m = :m REMOVE gone, #x",
            {"#s": "status", "#x": "x"},
            {":s": {"S": "ok"}, ":b": {"B": b"\x00"}, ":m": {"M": {"a": {"L": [{"N": "1"}]}}}},
        )
        update("SET x = :x", None, {":x": {"SS": ["a", "b"]}})
        update("ADD x :y", None, {":y": {"SS": ["c"]}})  # a set: moto's executor
        update("ADD #status :one", {"#status": "status"}, one)  # onto a string: moto's error
        update("SET g = :g", None, {":g": {"N": "1"}})  # an index key of the wrong type
        update("SET g = :g", None, {":g": {"S": ""}})
        update("SET sk = :g", None, {":g": {"S": "z"}})  # a table key
        update("SET #a = :v", {"#a": "a", "#unused": "u"}, {":v": {"S": "v"}})
        update("SET #a = :v", {"#a": "a"}, {":w": {"S": "v"}})
        update("SET #a = :v", {"#b": "a"}, {":v": {"S": "v"}})
        update("SET big = :v", None, {":v": {"S": "x" * 410_000}})
        update("ADD counter :n SET seq = :s", None, {":n": {"N": "3"}, ":s": {"N": "1"}})  # a reserved word
        update(
            "ADD hits :n SET seq = :s",
            None,
            {":n": {"N": "3"}, ":s": {"N": str(round_)}},
            key={"pk": {"S": "new"}, "sk": {"S": str(round_)}},
        )
        update(
            "SET v = :v",
            None,
            {":v": {"N": "2"}},
            ConditionExpression="attribute_not_exists(v) OR v < :v",
            key={"pk": {"S": "c"}, "sk": {"S": "1"}},
        )
        update(
            "SET #s = :s, #b = if_not_exists(#s, :none), c = if_not_exists(c, :e)",
            {"#s": "st", "#b": "before"},
            {":s": {"S": f"s{round_}"}, ":none": {"S": "none"}, ":e": {"N": "5"}},
        )
        update("SET d = if_not_exists(#x, :e)", {"#y": "absent"}, {":e": {"N": "5"}})
        update(
            "ADD #c0 :n SET expires_at = if_not_exists(expires_at, :e)",
            {"#c0": "c0"},
            {":n": {"N": "2"}, ":e": {"N": str(100 + round_)}},
        )
        update("REMOVE n")
        conditional = {"key": {"pk": {"S": "c"}, "sk": {"S": "2"}}}
        update("SET v = :v", None, {":v": {"N": "3"}}, ConditionExpression="#m = :v", **conditional)
        update("SET v = :v", {"#m": "v"}, {":v": {"N": "3"}}, ConditionExpression="#m <> :w", **conditional)
        update("SET v = :v", None, {":v": {"N": "3"}}, ConditionExpression="v <<>> :v", **conditional)
        between = "attribute_not_exists(v) OR v BETWEEN :v AND :top"
        update(
            "SET v = :v",
            None,
            {":v": {"N": "3"}, ":top": {"NULL": True}},
            ConditionExpression=between,
            **conditional,
        )
        update(
            "SET v = :v",
            None,
            {":v": {"N": "3"}, ":top": {"N": "9"}},
            ConditionExpression=between,
            **conditional,
        )
        update(
            "ADD n :one",
            None,
            one,
            ConditionExpression="attribute_not_exists(n)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    for returned in ("UPDATED_OLD", "UPDATED_NEW", "ALL_OLD", "NONE"):
        for _ in range(2):
            call(
                db,
                "update_item",
                TableName="t",
                Key=KEY,
                UpdateExpression="ADD n :one SET q = :q",
                ExpressionAttributeValues={**one, ":q": {"S": returned}},
                ReturnValues=returned,
            )
    for text in ("1", "2"):
        call(
            db,
            "transact_write_items",
            TransactItems=[
                {
                    "Update": {
                        "TableName": "t",
                        "Key": KEY,
                        "UpdateExpression": "SET tx = :t ADD n :one",
                        "ExpressionAttributeValues": {":t": {"S": text}, **one},
                    }
                }
            ],
        )
    call(db, "scan", TableName="t")


def test_plain_updates_change_items_exactly_as_moto_does(
    monkeypatch: pytest.MonkeyPatch, counted: dict[str, int]
) -> None:
    outcomes = _compare(_updates, monkeypatch)
    assert counted["planned"] > 20  # the later rounds' plain updates took the shortcut
    assert sum(1 for outcome in outcomes if outcome[1] == "error") >= 3 * 9


# -- SQS and EventBridge ----------------------------------------------------------------------------
def _queues_and_events(call: Recorder) -> None:
    sqs, bus = call.client("sqs"), call.client("events")
    queue = sqs.create_queue(QueueName="q")["QueueUrl"]
    fifo = sqs.create_queue(QueueName="f.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    attributes = {
        "a": {"DataType": "String", "StringValue": "x"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00"},
    }
    call(sqs, "send_message", QueueUrl=queue, MessageBody="hello", MessageAttributes=attributes)
    call(sqs, "send_message", QueueUrl=queue + "-missing", MessageBody="x")
    call(sqs, "send_message", QueueUrl=fifo, MessageBody="x")
    call(sqs, "send_message_batch", QueueUrl=queue, Entries=[{"Id": "1", "MessageBody": "a"}] * 2)
    call(
        sqs,
        "receive_message",
        QueueUrl=queue,
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    call(sqs, "receive_message", QueueUrl=queue, MaxNumberOfMessages=11)
    call(sqs, "delete_message_batch", QueueUrl=queue, Entries=[{"Id": "1", "ReceiptHandle": "bogus"}])
    call(sqs, "change_message_visibility", QueueUrl=queue, ReceiptHandle="bogus", VisibilityTimeout=0)
    call(
        sqs, "get_queue_attributes", QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )
    bus.create_event_bus(Name="bus")
    call(
        bus,
        "put_events",
        Entries=[
            {
                "EventBusName": "bus",
                "Source": "consentry",
                "DetailType": "ConsentChanged",
                "Detail": json.dumps({"a": 1}),
            },
            {"EventBusName": "missing", "Source": "x", "DetailType": "y", "Detail": "{}"},
            {"Source": "x", "DetailType": "y", "Detail": "not json"},
        ],
    )


def test_sqs_and_eventbridge_requests_are_answered_as_over_http(
    monkeypatch: pytest.MonkeyPatch, counted: dict[str, int]
) -> None:
    outcomes = _compare(_queues_and_events, monkeypatch)
    assert counted["dispatched"] == len(outcomes) + 3  # and the two queues and the bus created
    assert {outcome[4]["Error"]["Code"] for outcome in outcomes if outcome[1] == "error"} >= {
        "AWS.SimpleQueueService.NonExistentQueue",
        "MissingParameter",
    }
