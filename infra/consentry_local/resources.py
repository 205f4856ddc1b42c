"""Create one template resource in the emulator and return its attribute values (Ref, Arn, ...)."""

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from consentry_local.runtime import LocalRuntime


def create_resource(runtime: "LocalRuntime", logical_id: str, resource: dict[str, Any]) -> dict[str, str]:
    stack = runtime.stack
    kind = resource["Type"]
    props = stack.resolve(resource.get("Properties", {}))  # KeyError when a dependency is missing
    name = f"{stack.name}-{logical_id}"
    arn_prefix = f"{stack.region}:{stack.account}"
    if kind == "AWS::DynamoDB::Table":
        return _table(runtime, name, props)
    if kind == "AWS::SQS::Queue":
        return _queue(runtime, name, props)
    if kind == "AWS::SNS::Topic":
        arn = runtime.client("sns").create_topic(Name=name)["TopicArn"]
        return {"Ref": arn, "TopicArn": arn, "TopicName": name}
    if kind == "AWS::Events::EventBus":
        arn = runtime.client("events").create_event_bus(Name=name)["EventBusArn"]
        return {"Ref": name, "Name": name, "Arn": arn}
    if kind == "AWS::Scheduler::ScheduleGroup":
        arn = runtime.client("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
        return {"Ref": name, "Arn": arn}
    if kind == "AWS::Serverless::Function":
        function_name = props.get("FunctionName") or name
        return {"Ref": function_name, "Arn": f"arn:aws:lambda:{arn_prefix}:function:{function_name}"}
    if kind == "AWS::IAM::Role":
        return {"Ref": name, "Arn": f"arn:aws:iam::{stack.account}:role/{name}"}
    if kind == "AWS::KMS::Key":
        key = runtime.client("kms").create_key(Description=props.get("Description", name))["KeyMetadata"]
        return {"Ref": key["KeyId"], "Arn": key["Arn"], "KeyId": key["KeyId"]}
    if kind == "AWS::SecretsManager::Secret":
        secret = runtime.client("secretsmanager").create_secret(
            Name=name, SecretString=props.get("SecretString") or "local-secret-" + logical_id
        )
        return {"Ref": secret["ARN"], "Id": secret["ARN"]}
    # Alarms, dashboards, policies, subscriptions, APIs: nothing to emulate, only a name.
    return {"Ref": name, "Arn": f"arn:aws:local:{arn_prefix}:{name}"}


def _table(runtime: "LocalRuntime", name: str, props: dict[str, Any]) -> dict[str, str]:
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    dynamodb = runtime.client("dynamodb")
    table = dynamodb.create_table(**request)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return {"Ref": name, "Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn", "")}


def _queue(runtime: "LocalRuntime", name: str, props: dict[str, Any]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for key in (
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
    ):
        if key in props:
            attributes[key] = str(props[key])
    if "RedrivePolicy" in props:
        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    sqs = runtime.client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Ref": url, "QueueUrl": url, "Arn": arn, "QueueName": name}
