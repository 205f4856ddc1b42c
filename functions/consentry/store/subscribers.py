"""Reading a topic's subscribers from the contacts table, page by page (campaign preview, scheduling).

The contact item layout is described in store/contacts.py; this module only filters on it:
`topics.<topic>.status = active` and no global `opted_out`. The filter runs in DynamoDB so
non-subscribers never cross the wire; callers still decide on the decoded record, which is
the authority (the filter is an optimisation, not the consent check).
"""

from collections.abc import Iterator
from typing import Any

from consentry.config import settings
from consentry.domain.consent import TopicStatus
from consentry.store import codec
from consentry.store.aws import client
from consentry.store.contacts import ContactRecord, record_from_item


def scan_topic_subscribers(
    topic_id: str, *, segment: int | None = None, total_segments: int | None = None
) -> Iterator[ContactRecord]:
    """Every contact subscribed to `topic_id` (a parallel-scan segment of them, if given)."""
    request: dict[str, Any] = {
        "TableName": settings().contacts_table,
        "FilterExpression": "topics.#topic.#status = :active AND NOT opted_out = :true",
        "ExpressionAttributeNames": {"#topic": topic_id, "#status": "status"},
        "ExpressionAttributeValues": {":active": {"S": TopicStatus.ACTIVE.value}, ":true": {"BOOL": True}},
    }
    if total_segments is not None:
        request.update(Segment=segment or 0, TotalSegments=total_segments)
    while True:
        page = client("dynamodb").scan(**request)
        for item in page.get("Items", []):
            yield record_from_item(codec.from_item(item))
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
