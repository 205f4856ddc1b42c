"""Campaign META items in CAMPAIGNS_TABLE, version-guarded writes, and the campaign listing.

Layout (pk `CAMPAIGN#<id>`; this module owns only sk `META`. Other sk prefixes under the same
pk belong to other modules: COUNTER# (store/counters.py), CHUNK#, FANOUT#, PARKED#):

  pk          S   CAMPAIGN#<campaign id>
  sk          S   META
  <field>         every field of domain.campaign.Campaign as its JSON value (model_dump(mode="json"),
                  None fields absent): campaign_id, name, topic, template, audience (M), schedule (M),
                  window (M), caps (M), deadline, messages_per_second, max_segments, message_class,
                  status, created_at, updated_at (ISO strings) and version (N)
  version     N   optimistic-locking counter: every write is conditioned on the version it read
  paused_from S   the status the campaign had when it was paused (resume goes back to it)
  trigger     M   {name, expression, timezone}: the EventBridge Scheduler schedule that starts it
  run         M   domain.campaign.CampaignRun as JSON {run_id, scheduled_at?, started_at,
                  completed_at?}: the run going on, or the last one (set by the fan-out's start
                  and its completion check, with the status, in the same version-guarded write)
  list_pk     S   "CAMPAIGNS" (key of the sparse `campaign_list` index: only META items carry it)
  list_sk     S   "<created_at ISO>#<campaign id>" (newest last)

Updates SET the fields above and REMOVE the ones that became empty, so attributes other
modules keep on the META item survive a status change.
"""

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from consentry.config import settings
from consentry.domain.campaign import Campaign, CampaignRun, Status
from consentry.store import codec
from consentry.store.aws import client

META = "META"
LIST_INDEX = "campaign_list"
LIST_PARTITION = "CAMPAIGNS"
MAX_LIST_LIMIT = 100

_CAMPAIGN_FIELDS = tuple(Campaign.model_fields)
_STORE_FIELDS = ("paused_from", "trigger", "run")


class CampaignNotFound(LookupError):
    def __init__(self, campaign_id: str) -> None:
        self.campaign_id = campaign_id
        super().__init__(f"no campaign {campaign_id}")


class VersionConflict(Exception):
    """Somebody else changed the campaign since it was read: read it again."""

    def __init__(self, campaign_id: str, expected_version: int) -> None:
        self.campaign_id = campaign_id
        self.expected_version = expected_version
        super().__init__(f"campaign {campaign_id} is no longer at version {expected_version}")


class InvalidPageToken(ValueError):
    pass


class Trigger(BaseModel):
    """The Scheduler schedule that starts a campaign, as it was last put."""

    model_config = ConfigDict(frozen=True)

    name: str
    expression: str
    timezone: str | None = None


class CampaignRecord(BaseModel):
    """A stored campaign and what the store keeps about it besides the domain model."""

    model_config = ConfigDict(frozen=True)

    campaign: Campaign
    paused_from: Status | None = None
    trigger: Trigger | None = None
    run: CampaignRun | None = None


def campaign_key(campaign_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"CAMPAIGN#{campaign_id}"}, "sk": {"S": META}}


def _list_sort_key(campaign: Campaign) -> str:
    return f"{campaign.created_at.isoformat()}#{campaign.campaign_id}"


def _stored_values(record: CampaignRecord) -> dict[str, Any]:
    values: dict[str, Any] = dict(record.campaign.model_dump(mode="json"))
    values["paused_from"] = record.paused_from.value if record.paused_from is not None else None
    values["trigger"] = record.trigger.model_dump(mode="json") if record.trigger is not None else None
    values["run"] = record.run.model_dump(mode="json", exclude_none=True) if record.run is not None else None
    return values


def record_from_item(item: Mapping[str, Any]) -> CampaignRecord:
    values = codec.from_item(item)
    campaign = Campaign.model_validate({name: values[name] for name in _CAMPAIGN_FIELDS if name in values})
    return CampaignRecord(
        campaign=campaign,
        paused_from=values.get("paused_from"),
        trigger=values.get("trigger"),
        run=values.get("run"),
    )


def create(record: CampaignRecord) -> None:
    """Store a new campaign; VersionConflict if its id is already taken."""
    campaign = record.campaign
    item = {
        **campaign_key(campaign.campaign_id),
        **codec.to_item(_stored_values(record)),
        "list_pk": {"S": LIST_PARTITION},
        "list_sk": {"S": _list_sort_key(campaign)},
    }
    try:
        client("dynamodb").put_item(
            TableName=settings().campaigns_table,
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            if _is_ours(exc, record):
                return
            raise VersionConflict(campaign.campaign_id, 0) from exc
        raise


def _is_ours(refused: ClientError, record: CampaignRecord) -> bool:
    """Whether a refused write was refused because of itself: the SDK sends a request again when
    it loses the answer to one that landed, and the repeat finds exactly what it was to write."""
    stored: Mapping[str, Any] | None = refused.response.get("Item")  # type: ignore[assignment]
    return bool(stored) and _stored_values(record_from_item(stored or {})) == _stored_values(record)


def get(campaign_id: str, *, consistent: bool = True) -> CampaignRecord | None:
    response = client("dynamodb").get_item(
        TableName=settings().campaigns_table, Key=campaign_key(campaign_id), ConsistentRead=consistent
    )
    item = response.get("Item")
    return record_from_item(item) if item else None


def load(campaign_id: str) -> CampaignRecord:
    """The campaign, or CampaignNotFound."""
    record = get(campaign_id)
    if record is None:
        raise CampaignNotFound(campaign_id)
    return record


def save(record: CampaignRecord, *, expected_version: int) -> None:
    """Write `record` if the stored campaign is still at `expected_version`, else VersionConflict.

    The record must carry the next version (domain `transition` bumps it), so every reader
    can tell the two states apart.
    """
    campaign = record.campaign
    if campaign.version != expected_version + 1:
        raise ValueError(
            f"a campaign saved over version {expected_version} must be version {expected_version + 1}"
        )
    values = _stored_values(record)
    present = {name: value for name, value in values.items() if value is not None}
    absent = [name for name, value in values.items() if value is None]
    names = {f"#{name}": name for name in values}
    expression_values = {f":{name}": codec.to_value(value) for name, value in present.items()}
    expression_values[":expected_version"] = {"N": str(expected_version)}
    update = "SET " + ", ".join(f"#{name} = :{name}" for name in present)
    if absent:
        update += " REMOVE " + ", ".join(f"#{name}" for name in absent)
    try:
        client("dynamodb").update_item(
            TableName=settings().campaigns_table,
            Key=campaign_key(campaign.campaign_id),
            UpdateExpression=update,
            ConditionExpression="attribute_exists(pk) AND #version = :expected_version",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=expression_values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            if _is_ours(exc, record):
                return
            raise VersionConflict(campaign.campaign_id, expected_version) from exc
        raise


def _encode_token(key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def _decode_token(token: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPageToken("the page token is not one this API returned") from exc
    if not isinstance(key, dict) or set(key) != {"pk", "sk", "list_pk", "list_sk"}:
        raise InvalidPageToken("the page token is not one this API returned")
    return key


def list_campaigns(
    *, status: Status | None = None, limit: int = 50, page_token: str | None = None
) -> tuple[list[CampaignRecord], str | None]:
    """Campaigns newest first, one page at a time; the token continues where the page ended.

    With a status filter a page can hold fewer than `limit` campaigns (DynamoDB filters after
    reading); keep following the token until it is None.
    """
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValueError(f"limit must be 1-{MAX_LIST_LIMIT}")
    request: dict[str, Any] = {
        "TableName": settings().campaigns_table,
        "IndexName": LIST_INDEX,
        "KeyConditionExpression": "list_pk = :partition",
        "ExpressionAttributeValues": {":partition": {"S": LIST_PARTITION}},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if status is not None:
        request["FilterExpression"] = "#status = :status"
        request["ExpressionAttributeNames"] = {"#status": "status"}
        request["ExpressionAttributeValues"][":status"] = {"S": Status(status).value}
    if page_token is not None:
        request["ExclusiveStartKey"] = _decode_token(page_token)
    response = client("dynamodb").query(**request)
    records = [record_from_item(item) for item in response.get("Items", [])]
    last = response.get("LastEvaluatedKey")
    return records, (_encode_token(last) if last else None)
