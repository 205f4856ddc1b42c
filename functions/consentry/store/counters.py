"""Campaign counters, sharded so no single item is updated once per message.

Each writer adds a whole batch's deltas to one item with one UpdateItem; readers sum the items.
Layout in CAMPAIGNS_TABLE, pk CAMPAIGN#<id>:
  sk COUNTER#<shard>           `add`: one of SHARDS items, chosen at random per write
  sk COUNTER#w.<writer id>     `add_once`: the item of one writer (a Lambda instance: one thread
                               of one process), with `writer_seq` (N), that writer's last write
Counter names are flat strings, e.g. "sent", "delivered", "suppressed.outside_window",
"failed.unreachable", "segments", "cost_micros"; each is a top-level number attribute of the
item (ADD creates it), so no item needs to exist beforehand.

A write DynamoDB refused for its rate (throttling that outlasted the SDK's retries) is tried
again here: a refused write did not land, and losing it would lose counts for good, because a
retried receipt finds its status already set and counts nothing.

`add_once` also survives the SDK sending a write again after it landed (its answer lost to a
timeout or a 5xx): the writer's item takes sequence numbers in order only, so the second copy
fails its condition instead of adding twice. Receipts count with it; the price is one counter
item per writer instance that touched the campaign (tens to hundreds), summed by `totals`.
"""

import random
import threading
import uuid
from collections import Counter
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from consentry import clock
from consentry.config import settings
from consentry.store.aws import client

SHARDS = 16
#: Tries of one counter write that DynamoDB keeps refusing for its rate.
ATTEMPTS = 6
THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
WRITER_SEQ = "writer_seq"
NOT_COUNTERS = frozenset({"pk", "sk", WRITER_SEQ})


class _Writer(threading.local):
    def __init__(self) -> None:
        self.id = uuid.uuid4().hex[:16]
        self.seq = 0


_writer = _Writer()


def add(campaign_id: str, deltas: Mapping[str, int]) -> None:
    """Add `deltas` (whole numbers) to the campaign's counters in one write (on a random shard)."""
    changes = _changes(deltas)
    if changes:
        _update(campaign_id, changes, once=False)


def add_once(campaign_id: str, deltas: Mapping[str, int]) -> None:
    """Like `add`, but on this writer's own item, so a write the SDK repeats counts once."""
    changes = _changes(deltas)
    if changes:
        _update(campaign_id, changes, once=True)


def _changes(deltas: Mapping[str, int]) -> dict[str, int]:
    return {name: value for name, value in deltas.items() if value}


def _update(campaign_id: str, changes: Mapping[str, int], *, once: bool) -> None:
    names = {f"#c{index}": name for index, name in enumerate(changes)}
    values: dict[str, Any] = {f":c{index}": {"N": str(value)} for index, value in enumerate(changes.values())}
    update = "ADD " + ", ".join(f"{alias} {alias.replace('#', ':')}" for alias in names)
    extra: dict[str, Any] = {}
    if once:
        _writer.seq += 1
        names["#seq"] = WRITER_SEQ
        values[":seq"] = {"N": str(_writer.seq)}
        update += " SET #seq = :seq"
        extra["ConditionExpression"] = "attribute_not_exists(#seq) OR #seq < :seq"
    for attempt in range(ATTEMPTS):
        shard = f"w.{_writer.id}" if once else f"{random.randrange(SHARDS):02d}"
        try:
            client("dynamodb").update_item(
                TableName=settings().campaigns_table,
                Key={"pk": {"S": f"CAMPAIGN#{campaign_id}"}, "sk": {"S": f"COUNTER#{shard}"}},
                UpdateExpression=update,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                **extra,
            )
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if once and code == "ConditionalCheckFailedException":
                return  # only this writer writes its item: our write is already there
            if code not in THROTTLING_CODES or attempt == ATTEMPTS - 1:
                raise
            clock.sleep(random.uniform(0, min(2.0, 0.1 * 2**attempt)))
            continue
        return


def totals(campaign_id: str) -> dict[str, int]:
    request: dict[str, Any] = {
        "TableName": settings().campaigns_table,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :counter)",
        "ExpressionAttributeValues": {":pk": {"S": f"CAMPAIGN#{campaign_id}"}, ":counter": {"S": "COUNTER#"}},
        "ConsistentRead": True,
    }
    summed: Counter[str] = Counter()
    while True:
        response = client("dynamodb").query(**request)
        for item in response.get("Items", []):
            for name, value in item.items():
                if "N" in value and name not in NOT_COUNTERS:
                    summed[name] += int(value["N"])
        if "LastEvaluatedKey" not in response:
            return dict(summed)
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
