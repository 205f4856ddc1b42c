"""Durable hand-offs between functions."""

from pydantic import BaseModel

from consentry.store.aws import client


def send(queue_url: str, message: BaseModel) -> str:
    response = client("sqs").send_message(QueueUrl=queue_url, MessageBody=message.model_dump_json())
    return str(response["MessageId"])
