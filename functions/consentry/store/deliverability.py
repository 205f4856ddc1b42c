"""Marking a contact's number undeliverable (contact item attribute `undeliverable`).

The contact layout is described in store/contacts.py; this module writes only `undeliverable`
({reason, at, receipt}), `updated_at` and the `version` every conditional write bumps.
"""

from datetime import datetime

from botocore.exceptions import ClientError

from consentry.config import settings
from consentry.store import codec
from consentry.store.aws import client


def mark_undeliverable(phone: str, *, reason: str, at: datetime, receipt: str, now: datetime) -> bool:
    """Record that `phone` cannot receive texts. True if this call marked it.

    The first verdict is kept (a later one changes nothing), and a number that is not a contact
    is not created as one: there is nobody to suppress.
    """
    marker = {"reason": reason, "at": at.isoformat(), "receipt": receipt}
    try:
        client("dynamodb").update_item(
            TableName=settings().contacts_table,
            Key={"phone": {"S": phone}},
            UpdateExpression="SET undeliverable = :marker, updated_at = :now ADD version :one",
            ConditionExpression="attribute_exists(phone) AND attribute_not_exists(undeliverable)",
            ExpressionAttributeValues={
                ":marker": codec.to_value(marker),
                ":now": {"S": now.isoformat()},
                ":one": {"N": "1"},
            },
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True
