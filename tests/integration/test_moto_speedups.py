"""The local runtime's emulator shortcuts answer exactly as moto does without them.

Every shortcut keeps something moto would recompute (a parsed expression, the names a response
member may have, a class's methods, a User-Agent) or skips work nobody checks in process (the
signature, an empty poll). These cases are where a kept answer could be wrong if it were keyed
too loosely: the same expression with other names or values, an invalid expression asked twice,
response members that are absent, nested or of every type.
"""

from typing import Any

import pytest
from botocore.exceptions import ClientError

from consentry_local import moto_speedups
from consentry_local.runtime import LocalRuntime

TABLE = "speedups"


@pytest.fixture
def dynamodb(runtime: LocalRuntime) -> Any:
    client = runtime.client("dynamodb")
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def _update(client: Any, key: str, expression: str, **kwargs: Any) -> dict[str, Any]:
    answer: dict[str, Any] = client.update_item(
        TableName=TABLE, Key={"pk": {"S": key}}, UpdateExpression=expression, ReturnValues="ALL_NEW", **kwargs
    )
    return answer["Attributes"]


def test_a_kept_expression_reads_each_requests_own_names_and_values(dynamodb: Any) -> None:
    expression = "SET #field = :value ADD hits :one"
    first = _update(
        dynamodb,
        "a",
        expression,
        ExpressionAttributeNames={"#field": "colour"},
        ExpressionAttributeValues={":value": {"S": "red"}, ":one": {"N": "1"}},
    )
    second = _update(
        dynamodb,
        "a",
        expression,
        ExpressionAttributeNames={"#field": "size"},
        ExpressionAttributeValues={":value": {"N": "7"}, ":one": {"N": "2"}},
    )
    assert first["colour"] == {"S": "red"}
    assert first["hits"] == {"N": "1"}
    assert second == {"pk": {"S": "a"}, "colour": {"S": "red"}, "size": {"N": "7"}, "hits": {"N": "3"}}


def test_an_invalid_expression_is_refused_every_time(dynamodb: Any) -> None:
    for _ in range(2):
        with pytest.raises(ClientError) as overlapping:
            _update(
                dynamodb,
                "b",
                "SET a = :x, a = :y",
                ExpressionAttributeValues={":x": {"S": "1"}, ":y": {"S": "2"}},
            )
        assert overlapping.value.response["Error"]["Code"] == "ValidationException"
    for _ in range(2):
        with pytest.raises(ClientError) as twice:
            _update(dynamodb, "b", "SET a = :x SET b = :x", ExpressionAttributeValues={":x": {"S": "1"}})
        assert twice.value.response["Error"]["Code"] == "ValidationException"


def test_the_same_expression_is_checked_again_when_its_names_make_paths_overlap(dynamodb: Any) -> None:
    expression = "SET #one = :x, #two = :y"
    values = {":x": {"S": "1"}, ":y": {"S": "2"}}
    _update(
        dynamodb,
        "c",
        expression,
        ExpressionAttributeNames={"#one": "a", "#two": "b"},
        ExpressionAttributeValues=values,
    )
    with pytest.raises(ClientError) as overlapping:
        _update(
            dynamodb,
            "c",
            expression,
            ExpressionAttributeNames={"#one": "a", "#two": "a"},
            ExpressionAttributeValues=values,
        )
    assert overlapping.value.response["Error"]["Code"] == "ValidationException"


def test_conditions_and_nested_updates_still_apply(dynamodb: Any) -> None:
    _update(
        dynamodb,
        "d",
        "SET profile = :profile, tags = :tags",
        ExpressionAttributeValues={":profile": {"M": {"name": {"S": "Ana"}}}, ":tags": {"L": []}},
    )
    nested = _update(
        dynamodb,
        "d",
        "SET profile.pet = :pet, tags = list_append(tags, :more) REMOVE gone",
        ExpressionAttributeValues={":pet": {"S": "ferret"}, ":more": {"L": [{"S": "vip"}]}},
    )
    assert nested["profile"] == {"M": {"name": {"S": "Ana"}, "pet": {"S": "ferret"}}}
    assert nested["tags"] == {"L": [{"S": "vip"}]}
    with pytest.raises(ClientError) as refused:
        _update(
            dynamodb,
            "d",
            "SET tags = :tags",
            ConditionExpression="attribute_not_exists(profile)",
            ExpressionAttributeValues={":tags": {"L": []}},
        )
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_responses_carry_every_attribute_type_and_omit_absent_members(dynamodb: Any) -> None:
    item = {
        "pk": {"S": "e"},
        "n": {"N": "1.5"},
        "b": {"B": b"\x00\x01"},
        "flag": {"BOOL": False},
        "nothing": {"NULL": True},
        "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1", "2"]},
        "list": {"L": [{"M": {"deep": {"L": [{"N": "3"}]}}}]},
    }
    dynamodb.put_item(TableName=TABLE, Item=item)
    answer = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "e"}}, ConsistentRead=True)
    got = answer["Item"]
    assert {**got, "ss": {"SS": sorted(got["ss"]["SS"])}, "ns": {"NS": sorted(got["ns"]["NS"])}} == item
    assert "ConsumedCapacity" not in answer
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "missing"}})


def test_queues_are_polled_only_when_a_message_is_visible(runtime: LocalRuntime) -> None:
    sqs = runtime.client("sqs")
    url = sqs.create_queue(QueueName="speedups")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert moto_speedups.visible_messages(arn) == 0
    sqs.send_message(
        QueueUrl=url,
        MessageBody="hello",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "greeting"}},
    )
    assert moto_speedups.visible_messages(arn) == 1
    received = sqs.receive_message(QueueUrl=url, VisibilityTimeout=600, MessageAttributeNames=["All"])
    [message] = received["Messages"]
    assert message["Body"] == "hello"
    assert message["MessageAttributes"]["kind"]["StringValue"] == "greeting"
    assert moto_speedups.visible_messages(arn) == 0  # in flight is not visible


def test_sns_delivers_into_a_subscribed_queue_what_a_consumer_then_receives(runtime: LocalRuntime) -> None:
    sqs = runtime.client("sqs")
    url = sqs.create_queue(QueueName="delivered")["QueueUrl"]
    moto_speedups.deliver_to_queue(url, '{"eventType": "TEXT_DELIVERED"}')
    received = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])
    [message] = received["Messages"]
    assert message["Body"] == '{"eventType": "TEXT_DELIVERED"}'
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"


def test_a_query_reads_its_partition_in_order_and_pages_through_it(runtime: LocalRuntime) -> None:
    client = runtime.client("dynamodb")
    client.create_table(
        TableName="ranged",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "owner", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_owner",
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for partition in ("a", "b"):
        for index in (3, 1, 2, 0):
            client.put_item(
                TableName="ranged",
                Item={"pk": {"S": partition}, "sk": {"S": f"k{index}"}, "owner": {"S": f"o{index % 2}"}},
            )

    def keys(**kwargs: Any) -> tuple[list[str], Any]:
        page = client.query(TableName="ranged", **kwargs)
        return [f"{item['pk']['S']}{item['sk']['S']}" for item in page["Items"]], page.get("LastEvaluatedKey")

    condition = {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "b"}}}
    assert keys(**condition)[0] == ["bk0", "bk1", "bk2", "bk3"]
    assert keys(**condition, ScanIndexForward=False)[0] == ["bk3", "bk2", "bk1", "bk0"]
    first, start = keys(**condition, Limit=3)
    rest, end = keys(**condition, Limit=3, ExclusiveStartKey=start)
    assert (first, rest, end) == (["bk0", "bk1", "bk2"], ["bk3"], None)
    assert keys(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={":pk": {"S": "a"}, ":prefix": {"S": "k1"}},
    )[0] == ["ak1"]
    assert keys(**{**condition, "ExpressionAttributeValues": {":pk": {"S": "none"}}})[0] == []
    by_owner = keys(
        IndexName="by_owner",
        KeyConditionExpression="owner = :o",
        ExpressionAttributeValues={":o": {"S": "o1"}},
    )[0]
    assert sorted(by_owner) == ["ak1", "ak3", "bk1", "bk3"]


def test_a_message_past_its_queues_retention_is_not_received(runtime: LocalRuntime) -> None:
    from moto.sqs.models import sqs_backends

    sqs = runtime.client("sqs")
    queues = sqs_backends[runtime.stack.account][runtime.stack.region].queues
    for name, age_ms in (("kept", 59_000), ("expired", 61_000)):
        url = sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=name)
        [message] = queues[name].messages
        message.sent_timestamp -= age_ms  # as if sent that long ago; the queue keeps messages 60 s
        received = sqs.receive_message(QueueUrl=url).get("Messages", [])
        assert [message["Body"] for message in received] == ([] if name == "expired" else [name])
