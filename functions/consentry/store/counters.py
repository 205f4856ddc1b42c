"""Campaign counters, sharded so no single item is updated once per message.

Each writer adds a whole batch's deltas to one randomly chosen shard with one UpdateItem;
readers sum the shards. Layout in CAMPAIGNS_TABLE: pk CAMPAIGN#<id>, sk COUNTER#<shard>.
Counter names are flat strings, e.g. "sent", "delivered", "suppressed.outside_window",
"failed.unreachable", "segments", "cost_micros"; each is a top-level number attribute of the
shard item (ADD creates it), so no shard needs to exist beforehand.

A write DynamoDB refused for its rate (throttling that outlasted the SDK's retries) is tried
again here, on another shard: a refused write did not land, and losing it would lose counts for
good, because a retried receipt finds its status already set and counts nothing.
"""

import random
from collections import Counter
from collections.abc import Mapping

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
KEY_ATTRIBUTES = frozenset({"pk", "sk"})


def add(campaign_id: str, deltas: Mapping[str, int]) -> None:
    """Add `deltas` (whole numbers) to the campaign's counters in one write."""
    changes = {name: value for name, value in deltas.items() if value}
    if not changes:
        return
    names = {f"#c{index}": name for index, name in enumerate(changes)}
    values = {f":c{index}": {"N": str(value)} for index, value in enumerate(changes.values())}
    update = "ADD " + ", ".join(f"{alias} {alias.replace('#', ':')}" for alias in names)
    for attempt in range(ATTEMPTS):
        shard = f"COUNTER#{random.randrange(SHARDS):02d}"
        try:
            client("dynamodb").update_item(
                TableName=settings().campaigns_table,
                Key={"pk": {"S": f"CAMPAIGN#{campaign_id}"}, "sk": {"S": shard}},
                UpdateExpression=update,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in THROTTLING_CODES or attempt == ATTEMPTS - 1:
                raise
            clock.sleep(random.uniform(0, min(2.0, 0.1 * 2**attempt)))
            continue
        return


def totals(campaign_id: str) -> dict[str, int]:
    response = client("dynamodb").query(
        TableName=settings().campaigns_table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :counter)",
        ExpressionAttributeValues={":pk": {"S": f"CAMPAIGN#{campaign_id}"}, ":counter": {"S": "COUNTER#"}},
        ConsistentRead=True,
    )
    summed: Counter[str] = Counter()
    for item in response.get("Items", []):
        for name, value in item.items():
            if "N" in value and name not in KEY_ATTRIBUTES:
                summed[name] += int(value["N"])
    return dict(summed)
