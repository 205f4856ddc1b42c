"""Fan-out state in CAMPAIGNS_TABLE, the contacts scan, and the fan-out's queue and schedule calls.

Item layouts owned here (pk `CAMPAIGN#<campaign id>`):

  sk `FANOUT#<segment>` (the single run) or `FANOUT#<run id>#<segment>` (a recurring run)
                          one per parallel scan segment of a campaign run, written at start
    segment, total_segments  N   which Segment of TotalSegments this item tracks
    as_of                    S   ISO instant the run started: every bucket is computed against
                                 it, so a retried page yields the same buckets and chunk ids
    page                     N   pages done = the number of the next page to scan
    last_key                 M   the Scan's LastEvaluatedKey after `page` pages (absent at the
                                 start and once done)
    done                     BOOL the segment has scanned its last page (or was stopped)
    stopped                  S   why it stopped early ("cancelled", "completed"); absent normally
    scanned                  N   contacts read by the Scan (ScannedCount)
    audience                 N   subscribers of the topic matching the audience filter
    enqueued, parked         N   recipients put on the send queue now / parked for later
    chunks                   N   send chunks produced (enqueued or parked)
    suppressed.<reason>      N   audience members dropped at fan-out, by reason code
    updated_at               S   ISO time of the last checkpoint
  Every checkpoint is conditional on `page`, so a retried or duplicated page is counted once;
  the same transaction adds the page's deltas to the campaign counters (store/counters.py
  layout), so the report's `audience` and `suppressed.*` counters are exact under retries
  (they add up over every run of a recurring campaign), and to the run item below.

  sk `RUN#<run id>` (`RUN#once` for the single run)   a run's exactly-once tallies
    total_segments  N   SET by every checkpoint of the run
    segments_done   N   ADD 1 by the checkpoint of a segment's last page (not by a stopped one)
    chunked         N   ADD the recipients each checkpointed page put into chunks
    done            N   ADD a chunk's terminal recipients, in the transaction that writes its
                        CHUNK# result (store/sends.py complete_chunk), so each chunk counts once
  Created by the first of those updates. The run is complete (domain/campaign.run_complete)
  when segments_done = total_segments, done = chunked and none of its chunks is parked.

  sk `PARKED#<release ISO>#<chunk id>`   a send chunk waiting for its release instant
    release_at  S   ISO UTC instant (also in the key, so a range query finds the due ones)
    chunk       S   the SendChunk JSON body, as it will be put on the send queue
    chunk_id    S
    expires_at  N   TTL (epoch seconds): a chunk never released (cancelled campaign) goes away
  Release ISO strings have one fixed format (`YYYY-MM-DDTHH:MM:SSZ`), so key order is time order.

Release schedules (EventBridge Scheduler, group SCHEDULE_GROUP): one one-off `at()` schedule per
campaign and release minute, named `release-<campaign id>-<epoch seconds>`, invoking the fan-out
function with {"action": "release", "campaign_id": id}, deleted by Scheduler after it runs.
"""

import json
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from consentry import clock
from consentry.config import settings
from consentry.domain.campaign import RunProgress
from consentry.domain.chunks import SINGLE_RUN, SendChunk, run_of_chunk
from consentry.store import codec
from consentry.store.aws import client
from consentry.store.campaigns import CampaignRecord, campaign_key
from consentry.store.campaigns import record_from_item as campaign_record_from_item
from consentry.store.contacts import ContactRecord, record_from_item
from consentry.store.counters import SHARDS as COUNTER_SHARDS

FANOUT_PREFIX = "FANOUT#"
PARKED_PREFIX = "PARKED#"
RUN_PREFIX = "RUN#"
SINGLE_RUN_LABEL = "once"
#: DynamoDB's BatchWriteItem limit, and SQS's SendMessageBatch limit.
BATCH_WRITE_LIMIT = 25
SQS_BATCH_LIMIT = 10
#: Parked chunks released per query (10 SendMessageBatch calls, 4 BatchWriteItem deletes).
RELEASE_PAGE = 100
#: A parked chunk nobody released (campaign cancelled meanwhile) expires this long after its time.
PARKED_RETENTION = timedelta(days=30)
#: Retries of the part of a batch that AWS reports unprocessed/failed before giving up (raising).
BATCH_RETRIES = 5

_COUNT_FIELDS = ("scanned", "audience", "enqueued", "parked", "chunks")
_SUPPRESSED = "suppressed."


class FanoutStoreError(Exception):
    """AWS kept refusing part of a batch; the caller's invocation fails and is retried."""


def _campaign_pk(campaign_id: str) -> str:
    return f"CAMPAIGN#{campaign_id}"


def _iso(instant: datetime) -> str:
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- progress items --------------------------------------------------------------------------


class FanoutProgress(BaseModel):
    """One segment's checkpoint."""

    model_config = ConfigDict(frozen=True)

    campaign_id: str
    segment: int = Field(ge=0)
    total_segments: int = Field(ge=1)
    as_of: datetime
    run_id: str = SINGLE_RUN
    page: int = 0
    last_key: dict[str, Any] | None = None  # DynamoDB-typed, as Scan returned it
    done: bool = False
    stopped: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)  # scanned, audience, ..., suppressed.<reason>


@dataclass(frozen=True)
class PageDeltas:
    """What one page adds to its segment's counts (and to the campaign counters)."""

    scanned: int = 0
    audience: int = 0
    enqueued: int = 0
    parked: int = 0
    chunks: int = 0
    suppressed: Mapping[str, int] = field(default_factory=dict)

    def as_counts(self) -> dict[str, int]:
        counts = {name: getattr(self, name) for name in _COUNT_FIELDS}
        counts.update({_SUPPRESSED + reason: number for reason, number in self.suppressed.items()})
        return {name: number for name, number in counts.items() if number}

    def campaign_counters(self) -> dict[str, int]:
        """The deltas the campaign report reads: its audience and the fan-out's suppressions."""
        counters = {"audience": self.audience}
        counters.update({_SUPPRESSED + reason: number for reason, number in self.suppressed.items()})
        return {name: number for name, number in counters.items() if number}


def _fanout_prefix(run_id: str) -> str:
    return f"{FANOUT_PREFIX}{run_id}#" if run_id else FANOUT_PREFIX


def _progress_key(campaign_id: str, segment: int, run_id: str = SINGLE_RUN) -> dict[str, Any]:
    return {"pk": {"S": _campaign_pk(campaign_id)}, "sk": {"S": f"{_fanout_prefix(run_id)}{segment}"}}


def _run_of_sk(sk: str) -> str:
    run, separator, _segment = sk.removeprefix(FANOUT_PREFIX).rpartition("#")
    return run if separator else SINGLE_RUN


def _progress_from_item(item: Mapping[str, Any]) -> FanoutProgress:
    last_key = item.get("last_key")
    values = codec.from_item({name: value for name, value in item.items() if name != "last_key"})
    counts = {
        name: int(value)
        for name, value in values.items()
        if name in _COUNT_FIELDS or name.startswith(_SUPPRESSED)
    }
    return FanoutProgress(
        campaign_id=values["pk"].removeprefix("CAMPAIGN#"),
        segment=values["segment"],
        total_segments=values["total_segments"],
        as_of=_parse_iso(values["as_of"]),
        run_id=_run_of_sk(values["sk"]),
        page=values.get("page", 0),
        last_key=last_key["M"] if last_key else None,
        done=values.get("done", False),
        stopped=values.get("stopped"),
        counts=counts,
    )


def begin(
    campaign_id: str, total_segments: int, as_of: datetime, run_id: str = SINGLE_RUN
) -> tuple[list[FanoutProgress], bool]:
    """Create the run's segment items in one transaction; (progress, True if this call created them).

    When they exist already (a retried or duplicated start) nothing is overwritten: the
    existing items, with their original `as_of`, are returned.
    """
    if not 1 <= total_segments <= 100:
        raise ValueError("total_segments must be 1-100 (one transaction creates them all)")
    now = _iso(clock.now())
    puts = [
        {
            "Put": {
                "TableName": settings().campaigns_table,
                "Item": {
                    **_progress_key(campaign_id, segment, run_id),
                    "segment": {"N": str(segment)},
                    "total_segments": {"N": str(total_segments)},
                    "as_of": {"S": _iso(as_of)},
                    "page": {"N": "0"},
                    "done": {"BOOL": False},
                    "updated_at": {"S": now},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        for segment in range(total_segments)
    ]
    try:
        client("dynamodb").transact_write_items(TransactItems=puts)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        existing = segments(campaign_id, run_id)
        if not existing:
            raise  # cancelled for another reason (conflicting transaction): let the caller retry
        return existing, False
    return [
        FanoutProgress(
            campaign_id=campaign_id,
            segment=segment,
            total_segments=total_segments,
            as_of=as_of,
            run_id=run_id,
        )
        for segment in range(total_segments)
    ], True


def load(campaign_id: str, segment: int, run_id: str = SINGLE_RUN) -> FanoutProgress | None:
    response = client("dynamodb").get_item(
        TableName=settings().campaigns_table,
        Key=_progress_key(campaign_id, segment, run_id),
        ConsistentRead=True,
    )
    item = response.get("Item")
    return _progress_from_item(item) if item else None


def load_with_campaign(
    campaign_id: str, segment: int, run_id: str = SINGLE_RUN
) -> tuple[FanoutProgress | None, CampaignRecord | None]:
    """The segment's checkpoint and the campaign, in one strongly consistent BatchGetItem."""
    table = settings().campaigns_table
    progress_key = _progress_key(campaign_id, segment, run_id)
    keys = [progress_key, campaign_key(campaign_id)]
    found: list[dict[str, Any]] = []
    dynamodb = client("dynamodb")
    request: dict[str, Any] = {table: {"Keys": keys, "ConsistentRead": True}}
    for attempt in range(BATCH_RETRIES + 1):
        response = dynamodb.batch_get_item(RequestItems=request)
        found.extend(response.get("Responses", {}).get(table, []))
        request = response.get("UnprocessedKeys") or {}
        if not request:
            break
        if attempt == BATCH_RETRIES:
            raise FanoutStoreError("the segment checkpoint and campaign stayed unprocessed")
        clock.sleep(min(0.05 * 2**attempt, 2.0))
    progress: FanoutProgress | None = None
    campaign: CampaignRecord | None = None
    for item in found:
        if item["sk"] == progress_key["sk"]:
            progress = _progress_from_item(item)
        else:
            campaign = campaign_record_from_item(item)
    return progress, campaign


def segments(campaign_id: str, run_id: str | None = SINGLE_RUN) -> list[FanoutProgress]:
    """Every segment item of one run of the campaign (None: of every run), by run and segment."""
    prefix = FANOUT_PREFIX if run_id is None else _fanout_prefix(run_id)
    found = [
        _progress_from_item(item)
        for item in _query_prefix(campaign_id, prefix, consistent=True)
        if "segment" in item and (run_id is None or _run_of_sk(item["sk"]["S"]) == run_id)
    ]
    return sorted(found, key=lambda progress: (progress.run_id, progress.segment))


def audience_total(campaign_id: str) -> int:
    """Audience counted by the fan-out so far, over every run (exact under retries)."""
    return sum(progress.counts.get("audience", 0) for progress in segments(campaign_id, None))


def totals(campaign_id: str) -> dict[str, int]:
    """All fan-out counts summed over segments of every run (scanned, audience, enqueued, ...)."""
    summed: dict[str, int] = {}
    for progress in segments(campaign_id, None):
        for name, number in progress.counts.items():
            summed[name] = summed.get(name, 0) + number
    return summed


def _counter_update(campaign_id: str, deltas: Mapping[str, int]) -> dict[str, Any]:
    """An ADD to one random counter shard, as store/counters.py lays them out (COUNTER#<shard>)."""
    names = {f"#c{index}": name for index, name in enumerate(deltas)}
    values = {f":c{index}": {"N": str(number)} for index, number in enumerate(deltas.values())}
    return {
        "TableName": settings().campaigns_table,
        "Key": {
            "pk": {"S": _campaign_pk(campaign_id)},
            "sk": {"S": f"COUNTER#{random.randrange(COUNTER_SHARDS):02d}"},
        },
        "UpdateExpression": "ADD " + ", ".join(f"{alias} {alias.replace('#', ':')}" for alias in names),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def checkpoint(
    progress: FanoutProgress,
    *,
    next_key: Mapping[str, Any] | None,
    deltas: PageDeltas,
    done: bool,
    stopped: str | None = None,
) -> bool:
    """Record page `progress.page` as done (and its counts) unless someone already did.

    Returns False when the item had moved on: another invocation processed this page (a
    duplicated work item), so this one must stop. One request: an UpdateItem, or a transaction
    with the campaign counters when the page changes them.
    """
    counts = deltas.as_counts()
    names: dict[str, str] = {"#page": "page", "#done": "done", "#updated": "updated_at", "#key": "last_key"}
    values: dict[str, Any] = {
        ":page": {"N": str(progress.page)},
        ":next": {"N": str(progress.page + 1)},
        ":done": {"BOOL": done},
        ":updated": {"S": _iso(clock.now())},
    }
    sets = ["#page = :next", "#done = :done", "#updated = :updated"]
    removes: list[str] = []
    if next_key is not None and not done:
        sets.append("#key = :key")
        values[":key"] = {"M": dict(next_key)}
    else:
        removes.append("#key")
    if stopped is not None:
        names["#stopped"] = "stopped"
        values[":stopped"] = {"S": stopped}
        sets.append("#stopped = :stopped")
    adds = []
    for index, (name, number) in enumerate(counts.items()):
        names[f"#n{index}"] = name
        values[f":n{index}"] = {"N": str(number)}
        adds.append(f"#n{index} :n{index}")
    expression = "SET " + ", ".join(sets)
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    if adds:
        expression += " ADD " + ", ".join(adds)
    update = {
        "TableName": settings().campaigns_table,
        "Key": _progress_key(progress.campaign_id, progress.segment, progress.run_id),
        "UpdateExpression": expression,
        "ConditionExpression": "#page = :page",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
    others: list[dict[str, Any]] = []
    counters = deltas.campaign_counters()
    if counters:
        others.append({"Update": _counter_update(progress.campaign_id, counters)})
    finished = done and stopped is None
    if deltas.enqueued or deltas.parked or finished:
        others.append({"Update": _run_tally_update(progress, deltas.enqueued + deltas.parked, finished)})
    dynamodb = client("dynamodb")
    for attempt in range(BATCH_RETRIES + 1):
        try:
            if others:
                dynamodb.transact_write_items(TransactItems=[{"Update": update}, *others])
            else:
                dynamodb.update_item(**update)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "ConditionalCheckFailedException":
                return False
            if code != "TransactionCanceledException":
                raise
            reasons = cancellation_reasons(exc)
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False
            if "TransactionConflict" not in reasons or attempt == BATCH_RETRIES:
                raise
            # A sender counted a chunk on the run item at the same moment: try again.
            clock.sleep(min(0.05 * 2**attempt, 2.0))
            continue
        return True
    return False  # not reached: the last attempt returns or raises


def cancellation_reasons(exc: ClientError) -> list[str | None]:
    """Why each item of a cancelled transaction failed (None: it did not), in item order."""
    reasons = exc.response.get("CancellationReasons") or []
    if reasons:
        return [
            str(reason["Code"]) if reason.get("Code") not in (None, "None") else None for reason in reasons
        ]
    # moto puts the reasons only in the message: "... [ConditionalCheckFailed, None]"
    message = str(exc.response["Error"].get("Message", ""))
    listed = message[message.rfind("[") + 1 : message.rfind("]")] if "[" in message else ""
    return [None if part.strip() in ("", "None") else part.strip() for part in listed.split(",")]


# --- runs ------------------------------------------------------------------------------------


def _run_key(campaign_id: str, run_id: str) -> dict[str, Any]:
    label = run_id or SINGLE_RUN_LABEL
    return {"pk": {"S": _campaign_pk(campaign_id)}, "sk": {"S": f"{RUN_PREFIX}{label}"}}


def _run_tally_update(progress: FanoutProgress, chunked: int, finished: bool) -> dict[str, Any]:
    adds = "#chunked :chunked" + (", #segments_done :one" if finished else "")
    values: dict[str, Any] = {
        ":chunked": {"N": str(chunked)},
        ":total": {"N": str(progress.total_segments)},
    }
    names = {"#chunked": "chunked", "#total": "total_segments"}
    if finished:
        values[":one"] = {"N": "1"}
        names["#segments_done"] = "segments_done"
    return {
        "TableName": settings().campaigns_table,
        "Key": _run_key(progress.campaign_id, progress.run_id),
        "UpdateExpression": f"SET #total = :total ADD {adds}",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def run_done_update(campaign_id: str, run_id: str, recipients: int) -> dict[str, Any]:
    """The run item's part of a chunk result's transaction: its terminal recipients count once."""
    return {
        "TableName": settings().campaigns_table,
        "Key": _run_key(campaign_id, run_id),
        "UpdateExpression": "ADD #done :done",
        "ExpressionAttributeNames": {"#done": "done"},
        "ExpressionAttributeValues": {":done": {"N": str(recipients)}},
    }


def run_progress(campaign_id: str, run_id: str) -> RunProgress:
    """The run's tallies (all zero before anything was counted)."""
    response = client("dynamodb").get_item(
        TableName=settings().campaigns_table, Key=_run_key(campaign_id, run_id), ConsistentRead=True
    )
    values = codec.from_item(response.get("Item") or {})
    return RunProgress(
        run_id=run_id,
        total_segments=values.get("total_segments"),
        segments_done=values.get("segments_done", 0),
        chunked=values.get("chunked", 0),
        done=values.get("done", 0),
    )


def parked_in_run(campaign_id: str, run_id: str) -> int:
    """How many chunks of the run are parked (reads only the chunk ids)."""
    request: dict[str, Any] = {
        "TableName": settings().campaigns_table,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {
            ":pk": {"S": _campaign_pk(campaign_id)},
            ":prefix": {"S": PARKED_PREFIX},
        },
        "ProjectionExpression": "chunk_id",
        "ConsistentRead": True,
    }
    found = 0
    while True:
        page = client("dynamodb").query(**request)
        found += sum(1 for item in page.get("Items", []) if run_of_chunk(item["chunk_id"]["S"]) == run_id)
        if "LastEvaluatedKey" not in page:
            return found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- the contacts scan -----------------------------------------------------------------------


@dataclass(frozen=True)
class ContactPage:
    contacts: list[ContactRecord]
    last_key: dict[str, Any] | None
    scanned: int


def scan_contacts(
    *,
    topic: str,
    attributes: Iterable[str],
    segment: int,
    total_segments: int,
    start_key: Mapping[str, Any] | None,
    limit: int,
) -> ContactPage:
    """One page of a parallel Scan over CONTACTS_TABLE: active subscribers of `topic`.

    Reads only what fan-out needs (the topic's consent entry, the filter's attributes, the time
    zone). The filter on the server only saves transfer; the caller decides with the domain rules.
    """
    names = {
        "#phone": "phone",
        "#opted_out": "opted_out",
        "#changed": "opted_out_changed_at",
        "#topics": "topics",
        "#topic": topic,
        "#status": "status",
        "#tz": "time_zone",
    }
    projection = ["#phone", "#opted_out", "#changed", "#topics.#topic", "#tz"]
    for index, attribute in enumerate(sorted(set(attributes))):
        names["#attributes"] = "attributes"
        names[f"#a{index}"] = attribute
        projection.append(f"#attributes.#a{index}")
    request: dict[str, Any] = {
        "TableName": settings().contacts_table,
        "Segment": segment,
        "TotalSegments": total_segments,
        "Limit": limit,
        "ProjectionExpression": ", ".join(projection),
        "FilterExpression": "#topics.#topic.#status = :active AND "
        "(attribute_not_exists(#opted_out) OR #opted_out = :false)",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {":active": {"S": "active"}, ":false": {"BOOL": False}},
    }
    if start_key:
        request["ExclusiveStartKey"] = dict(start_key)
    response = client("dynamodb").scan(**request)
    contacts = [record_from_item(codec.from_item(item)) for item in response.get("Items", [])]
    return ContactPage(
        contacts=contacts,
        last_key=response.get("LastEvaluatedKey"),
        scanned=int(response.get("ScannedCount", 0)),
    )


# --- parked chunks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ParkedChunk:
    key: dict[str, Any]
    release_at: datetime
    chunk: SendChunk


def _parked_item(campaign_id: str, chunk: SendChunk, release_at: datetime) -> dict[str, Any]:
    release = _iso(release_at)
    return {
        "pk": {"S": _campaign_pk(campaign_id)},
        "sk": {"S": f"{PARKED_PREFIX}{release}#{chunk.chunk_id}"},
        "release_at": {"S": release},
        "chunk_id": {"S": chunk.chunk_id},
        "chunk": {"S": chunk.model_dump_json()},
        "expires_at": {"N": str(int((release_at + PARKED_RETENTION).timestamp()))},
    }


def park(campaign_id: str, chunk: SendChunk, release_at: datetime) -> None:
    """Keep `chunk` until `release_at` (the sender parks the chunks of a paused campaign with it).

    Parking the same chunk for the same instant twice is harmless (same key). Nothing wakes a
    parked chunk by itself: a release schedule or the campaign's resume calls the release.
    """
    if chunk.campaign_id != campaign_id:
        raise ValueError("the chunk belongs to another campaign")
    client("dynamodb").put_item(
        TableName=settings().campaigns_table, Item=_parked_item(campaign_id, chunk, release_at)
    )


def park_all(campaign_id: str, parked: Sequence[tuple[SendChunk, datetime]]) -> None:
    """Park many chunks with BatchWriteItem (25 per request)."""
    requests = [{"PutRequest": {"Item": _parked_item(campaign_id, chunk, at)}} for chunk, at in parked]
    _batch_write(requests)


def delete_parked(keys: Sequence[Mapping[str, Any]]) -> None:
    _batch_write([{"DeleteRequest": {"Key": dict(key)}} for key in keys])


def _batch_write(requests: Sequence[dict[str, Any]]) -> None:
    table = settings().campaigns_table
    dynamodb = client("dynamodb")
    for start in range(0, len(requests), BATCH_WRITE_LIMIT):
        pending = list(requests[start : start + BATCH_WRITE_LIMIT])
        for attempt in range(BATCH_RETRIES + 1):
            response = dynamodb.batch_write_item(RequestItems={table: pending})
            pending = response.get("UnprocessedItems", {}).get(table, [])
            if not pending:
                break
            if attempt == BATCH_RETRIES:
                raise FanoutStoreError(f"{len(pending)} parked-chunk writes stayed unprocessed")
            clock.sleep(min(0.05 * 2**attempt, 2.0))


def due_parked(campaign_id: str, now: datetime, limit: int = RELEASE_PAGE) -> list[ParkedChunk]:
    """Parked chunks whose release instant is at or before `now`, earliest first (up to `limit`)."""
    response = client("dynamodb").query(
        TableName=settings().campaigns_table,
        KeyConditionExpression="pk = :pk AND sk BETWEEN :low AND :high",
        ExpressionAttributeValues={
            ":pk": {"S": _campaign_pk(campaign_id)},
            ":low": {"S": PARKED_PREFIX},
            ":high": {"S": f"{PARKED_PREFIX}{_iso(now)}#\uffff"},
        },
        ConsistentRead=True,
        Limit=limit,
    )
    return [_parked_from_item(item) for item in response.get("Items", [])]


def all_parked(campaign_id: str) -> list[ParkedChunk]:
    return [_parked_from_item(item) for item in _query_prefix(campaign_id, PARKED_PREFIX, consistent=True)]


def _parked_from_item(item: Mapping[str, Any]) -> ParkedChunk:
    return ParkedChunk(
        key={"pk": item["pk"], "sk": item["sk"]},
        release_at=_parse_iso(item["release_at"]["S"]),
        chunk=SendChunk.model_validate_json(item["chunk"]["S"]),
    )


def _query_prefix(campaign_id: str, prefix: str, *, consistent: bool) -> Iterator[dict[str, Any]]:
    request: dict[str, Any] = {
        "TableName": settings().campaigns_table,
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": {"S": _campaign_pk(campaign_id)}, ":prefix": {"S": prefix}},
        "ConsistentRead": consistent,
    }
    while True:
        page = client("dynamodb").query(**request)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- queues ----------------------------------------------------------------------------------


def send_bodies(queue_url: str, bodies: Sequence[str]) -> None:
    """Put message bodies on a queue with SendMessageBatch (10 per request), retrying failed entries.

    Raises FanoutStoreError when some entries keep failing; what was sent stays sent, and the
    caller's retry sends it again (the consumers recognise a repeated chunk or work item).
    """
    sqs = client("sqs")
    for start in range(0, len(bodies), SQS_BATCH_LIMIT):
        entries = [
            {"Id": str(index), "MessageBody": body}
            for index, body in enumerate(bodies[start : start + SQS_BATCH_LIMIT])
        ]
        for attempt in range(BATCH_RETRIES + 1):
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            failed = {entry["Id"] for entry in response.get("Failed", [])}
            if not failed:
                break
            sender_faults = [entry for entry in response.get("Failed", []) if entry.get("SenderFault")]
            if sender_faults or attempt == BATCH_RETRIES:
                detail = "; ".join(
                    f"{entry['Code']}: {entry.get('Message', '')}" for entry in response["Failed"]
                )
                raise FanoutStoreError(f"{len(failed)} messages not accepted by the queue: {detail}")
            entries = [entry for entry in entries if entry["Id"] in failed]
            clock.sleep(min(0.05 * 2**attempt, 2.0))


def send_chunks(chunks: Sequence[SendChunk]) -> None:
    send_bodies(settings().send_queue_url, [chunk.model_dump_json() for chunk in chunks])


# --- release schedules -----------------------------------------------------------------------


def create_release_schedule(campaign_id: str, name: str, expression: str, timezone: str | None) -> bool:
    """Create the one-off schedule `name` that makes fan-out release the campaign's due chunks.

    Returns False when it exists already (another page or segment created it, and it has not
    fired yet: Scheduler deletes it after it runs). Create-only on purpose: re-putting a
    schedule that exists could move it.
    """
    config = settings()
    request: dict[str, Any] = {
        "Name": name,
        "GroupName": config.schedule_group,
        "ScheduleExpression": expression,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "ActionAfterCompletion": "DELETE",
        "Description": f"Release parked chunks of Consentry campaign {campaign_id}",
        "Target": {
            "Arn": config.fanout_function_arn,
            "RoleArn": config.scheduler_role_arn,
            "Input": json.dumps({"action": "release", "campaign_id": campaign_id}),
        },
    }
    if timezone is not None:
        request["ScheduleExpressionTimezone"] = timezone
    try:
        client("scheduler").create_schedule(**request)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConflictException":
            return False
        raise
    return True
