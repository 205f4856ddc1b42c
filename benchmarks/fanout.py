"""Fan-out benchmark: seed N contacts in the local runtime, run one campaign's fan-out, measure.

    .venv/bin/python -m benchmarks.fanout --contacts 100000

The contacts are spread over seven US time zones; the campaign starts on a Tuesday at 10:00
New York time, so the eastern zones go to the send queue at once and the western ones are
parked and released by their release schedules (fired here on the virtual clock, as
EventBridge Scheduler would). Reported:

- recipients per second of the fan-out (start + every segment, wall clock, in-process moto:
  the emulator dominates; in AWS the segments also run in parallel);
- AWS requests per recipient by API, counted with botocore `before-call` hooks, only inside
  the fan-out function's invocations (seeding, the SQS event source's polling and the
  scheduler emulator are not the fan-out's cost). The run fails above --max-ratio (0.03).

It also checks the output: every recipient of the audience is in exactly one distinct chunk.
"""

import argparse
import json
import logging
import os
import random
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.counting import RequestCounter
from consentry.domain.audience import AudienceFilter
from consentry.domain.campaign import Campaign, Status
from consentry.domain.chunks import SendChunk
from consentry.domain.schedule import Schedule
from consentry.store import codec
from consentry.store import fanout as fanout_store
from consentry.store.campaigns import CampaignRecord
from consentry.store.campaigns import create as create_campaign
from consentry_local import events
from consentry_local.runtime import LocalRuntime

#: Tuesday 24 Nov 2026, 10:00 in New York: Eastern and Central are inside the promotional
#: window (09:00-20:00), Mountain and westward are not yet.
BENCH_START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
TOPIC = "deals"
MAX_REQUESTS_PER_RECIPIENT = 0.03
AREA_CODES = (
    ("212", "America/New_York"),
    ("617", "America/New_York"),
    ("312", "America/Chicago"),
    ("303", "America/Denver"),
    ("602", "America/Phoenix"),
    ("310", "America/Los_Angeles"),
    ("907", "America/Anchorage"),
    ("808", "Pacific/Honolulu"),
)
PETS = ("ferret", "cat", "dog", "parrot", "rabbit")
BATCH_WRITE_LIMIT = 25
_AT = re.compile(r"^at\((?P<instant>[^)]+)\)$")


# --- contacts --------------------------------------------------------------------------------


def phone_number(index: int) -> str:
    """A valid, distinct US number for each index, cycling through AREA_CODES."""
    area, _zone = AREA_CODES[index % len(AREA_CODES)]
    return f"+1{area}{2_000_000 + index // len(AREA_CODES):07d}"


def contact_item(
    phone: str,
    *,
    topics: Mapping[str, str],
    attributes: Mapping[str, Any] | None = None,
    time_zone: str | None = None,
    opted_out: bool = False,
    consented_at: datetime = BENCH_START - timedelta(days=60),
) -> dict[str, Any]:
    """A contact item in the layout store/contacts.py documents (topic id -> status)."""
    values: dict[str, Any] = {
        "phone": phone,
        "version": 1,
        "opted_out": opted_out,
        "opted_out_changed_at": consented_at.isoformat(),
        "topics": {
            topic: {"status": status, "changed_at": consented_at.isoformat(), "source": "import"}
            for topic, status in topics.items()
        },
        "attributes": dict(attributes or {}),
        "time_zone": time_zone,
        "created_at": consented_at.isoformat(),
        "updated_at": consented_at.isoformat(),
    }
    return codec.to_item(values)


def population(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """`count` contacts: ~90% subscribed to the topic, some opted out, pending or elsewhere."""
    rng = random.Random(seed)
    for index in range(count):
        roll = rng.random()
        if roll < 0.90:
            topics, opted_out = {TOPIC: "active"}, False
        elif roll < 0.94:
            topics, opted_out = {TOPIC: "active"}, True
        elif roll < 0.97:
            topics, opted_out = {TOPIC: "pending"}, False
        else:
            topics, opted_out = {"alerts": "active"}, False
        last_purchase = (BENCH_START - timedelta(days=rng.randrange(0, 400))).date()
        attributes = {
            "first_name": rng.choice(("Ada", "Grace", "Linus", "Margaret")),
            "pets": sorted(rng.sample(PETS, rng.randrange(1, 3))),
            "last_purchase": last_purchase.isoformat(),
        }
        yield contact_item(phone_number(index), topics=topics, attributes=attributes, opted_out=opted_out)


def seed(dynamodb: Any, table: str, items: Iterable[dict[str, Any]]) -> int:
    """BatchWriteItem the items (25 per request, unprocessed ones again); returns how many."""
    written = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        pending = [{"PutRequest": {"Item": item}} for item in batch]
        while pending:
            response = dynamodb.batch_write_item(RequestItems={table: pending})
            pending = response.get("UnprocessedItems", {}).get(table, [])
        batch.clear()

    for item in items:
        batch.append(item)
        written += 1
        if len(batch) == BATCH_WRITE_LIMIT:
            flush()
    if batch:
        flush()
    return written


def benchmark_campaign(campaign_id: str = "cmp_benchmark", **overrides: Any) -> Campaign:
    """A scheduled promotional campaign to customers who bought within a year."""
    values: dict[str, Any] = {
        "campaign_id": campaign_id,
        "name": "Benchmark",
        "topic": TOPIC,
        "template": "Hi {first_name|there}, 20% off treats today",
        "message_class": "promotional",
        "status": Status.SCHEDULED,
        "audience": AudienceFilter.model_validate(
            {"attribute": "last_purchase", "op": "within_days", "value": 365}
        ),
        "schedule": Schedule(kind="once", at=BENCH_START),
        "created_at": BENCH_START - timedelta(days=1),
        "updated_at": BENCH_START - timedelta(days=1),
    }
    values.update(overrides)
    return Campaign.model_validate(values)


# --- driving the fan-out like Lambda and Scheduler would -------------------------------------


def drain_fanout_queue(runtime: LocalRuntime, counter: RequestCounter | None = None) -> int:
    """Deliver every fan-out work item (one per invocation, as the event source mapping does)."""
    queue_url = runtime.queue_url("FanoutQueue")
    queue_arn = runtime.stack.physical["FanoutQueue"]["Arn"]
    sqs = runtime.client("sqs")
    delivered = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=1, VisibilityTimeout=900, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return delivered
        event = events.sqs_event(messages, queue_arn, runtime.stack.region)
        if counter is not None:
            with counter.measuring():
                result = runtime.invoke("FanoutFunction", event)
        else:
            result = runtime.invoke("FanoutFunction", event)
        if result.get("batchItemFailures"):
            raise RuntimeError(f"a fan-out work item failed: {result}")
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        delivered += 1


def release_schedules(runtime: LocalRuntime) -> list[tuple[datetime, str, dict[str, Any]]]:
    """(fire time, name, input) of the release schedules in the stack's group, earliest first."""
    scheduler = runtime.client("scheduler")
    group = runtime.stack.physical["ScheduleGroup"]["Ref"]
    found = []
    for summary in scheduler.list_schedules(GroupName=group).get("Schedules", []):
        if not summary["Name"].startswith("release-"):
            continue
        schedule = scheduler.get_schedule(Name=summary["Name"], GroupName=group)
        match = _AT.match(schedule["ScheduleExpression"])
        assert match is not None, schedule["ScheduleExpression"]
        fire_at = datetime.fromisoformat(match["instant"]).replace(tzinfo=UTC)
        found.append((fire_at, summary["Name"], json.loads(schedule["Target"]["Input"])))
    return sorted(found, key=lambda entry: entry[0])


def fire_release_schedules(runtime: LocalRuntime, counter: RequestCounter | None = None) -> int:
    """Move the clock to each release schedule and invoke its target, as Scheduler would."""
    fired = 0
    group = runtime.stack.physical["ScheduleGroup"]["Ref"]
    for fire_at, name, payload in release_schedules(runtime):
        if fire_at > runtime.clock.now():
            runtime.clock.advance_to(fire_at)
        if counter is not None:
            with counter.measuring():
                runtime.invoke("FanoutFunction", payload)
        else:
            runtime.invoke("FanoutFunction", payload)
        runtime.client("scheduler").delete_schedule(Name=name, GroupName=group)  # ActionAfterCompletion
        fired += 1
    return fired


def read_send_queue(runtime: LocalRuntime) -> list[SendChunk]:
    """Every chunk on the send queue (hidden afterwards, not deleted)."""
    sqs = runtime.client("sqs")
    queue_url = runtime.queue_url("SendQueue")
    chunks: list[SendChunk] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=43_200
        ).get("Messages", [])
        if not messages:
            return chunks
        chunks.extend(SendChunk.model_validate_json(message["Body"]) for message in messages)


# --- the run ---------------------------------------------------------------------------------


@dataclass
class BenchmarkResult:
    contacts: int
    segments: int
    seed_seconds: float
    fanout_seconds: float
    fanout_call_seconds: float  # of fanout_seconds, inside AWS calls (emulator + client (de)serialisation)
    release_seconds: float
    audience: int
    recipients: int  # distinct recipients in distinct chunks on the send queue
    suppressed: dict[str, int]
    chunks: int
    release_schedules: int
    requests: dict[str, int] = field(default_factory=dict)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def requests_per_recipient(self) -> float:
        return self.total_requests / max(self.recipients, 1)

    @property
    def recipients_per_second(self) -> float:
        return self.audience / self.fanout_seconds if self.fanout_seconds else float("inf")

    @property
    def own_seconds(self) -> float:
        """The fan-out's own work: the wall time outside AWS calls."""
        return max(self.fanout_seconds - self.fanout_call_seconds, 1e-9)

    @property
    def own_recipients_per_second(self) -> float:
        return self.audience / self.own_seconds

    def report(self) -> str:
        lines = [
            f"contacts               {self.contacts:>12,}",
            f"segments               {self.segments:>12}",
            f"audience               {self.audience:>12,}",
            f"recipients enqueued    {self.recipients:>12,}  in {self.chunks:,} chunks",
            f"suppressed at fan-out  {sum(self.suppressed.values()):>12,}  {self.suppressed or ''}",
            f"release schedules      {self.release_schedules:>12}",
            f"seeding                {self.seed_seconds:>11.1f}s  (BatchWriteItem, not measured)",
            f"fan-out                {self.fanout_seconds:>11.1f}s"
            f"  -> {self.recipients_per_second:,.0f} recipients/s on the emulator",
            f"  in AWS calls         {self.fanout_call_seconds:>11.1f}s  (moto + botocore (de)serialisation)",
            f"  fan-out's own work   {self.own_seconds:>11.1f}s"
            f"  -> {self.own_recipients_per_second:,.0f} recipients/s of compute",
            f"releases               {self.release_seconds:>11.1f}s",
            f"AWS requests           {self.total_requests:>12,}"
            f"  -> {self.requests_per_recipient:.5f} per recipient",
        ]
        for api, count in sorted(self.requests.items(), key=lambda item: (-item[1], item[0])):
            lines.append(f"  {api:<28} {count:>8,}  {count / max(self.recipients, 1):.5f} per recipient")
        return "\n".join(lines)


def run(
    contacts: int, *, segments: int = 8, workdir: Path | None = None, seed_value: int = 7
) -> BenchmarkResult:
    """Seed, fan out, release, verify; returns the measurements."""
    with tempfile.TemporaryDirectory() as scratch:
        directory = workdir or Path(scratch)
        runtime = LocalRuntime(directory, start=BENCH_START, parameters={"FanoutSegments": str(segments)})
        saved_metrics_flag = os.environ.get("POWERTOOLS_METRICS_DISABLED")
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # no EMF lines per invocation on stdout
        runtime.start()
        # Imported only now: Powertools reads its namespace from the environment the runtime set.
        from consentry.observability import logger

        saved_level = logger.log_level
        try:
            logger.setLevel(logging.WARNING)  # one INFO line per page would dwarf the report
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "No application metrics to publish"
                return _run(runtime, contacts, segments, seed_value)
        finally:
            logger.setLevel(saved_level)
            runtime.stop()
            if saved_metrics_flag is None:
                os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
            else:
                os.environ["POWERTOOLS_METRICS_DISABLED"] = saved_metrics_flag


def _run(runtime: LocalRuntime, contacts: int, segments: int, seed_value: int) -> BenchmarkResult:
    began = time.perf_counter()
    seed(runtime.client("dynamodb"), runtime.table_name("ContactsTable"), population(contacts, seed_value))
    seed_seconds = time.perf_counter() - began
    campaign = benchmark_campaign()
    create_campaign(CampaignRecord(campaign=campaign))

    with RequestCounter() as counter:
        began = time.perf_counter()
        with counter.measuring():
            runtime.invoke("FanoutFunction", {"action": "start", "campaign_id": campaign.campaign_id})
        drain_fanout_queue(runtime, counter)
        fanout_seconds = time.perf_counter() - began
        fanout_call_seconds = counter.seconds_in_calls
        schedules = len(release_schedules(runtime))
        began = time.perf_counter()
        fire_release_schedules(runtime, counter)
        release_seconds = time.perf_counter() - began
        requests = counter.by_api()

    totals = fanout_store.totals(campaign.campaign_id)
    chunks = {chunk.chunk_id: chunk for chunk in read_send_queue(runtime)}
    recipients = [phone for chunk in chunks.values() for phone in chunk.recipients]
    suppressed = {
        name.removeprefix("suppressed."): n for name, n in totals.items() if name.startswith("suppressed.")
    }
    if len(set(recipients)) != len(recipients):
        raise AssertionError("a recipient is in two distinct chunks")
    dropped = sum(suppressed.values())
    if len(recipients) + dropped != totals.get("audience", 0):
        raise AssertionError(
            f"{len(recipients)} enqueued + {dropped} suppressed != audience {totals.get('audience')}"
        )
    if fanout_store.all_parked(campaign.campaign_id):
        raise AssertionError("parked chunks were left after every release schedule fired")
    return BenchmarkResult(
        contacts=contacts,
        segments=segments,
        seed_seconds=seed_seconds,
        fanout_seconds=fanout_seconds,
        fanout_call_seconds=fanout_call_seconds,
        release_seconds=release_seconds,
        audience=totals.get("audience", 0),
        recipients=len(recipients),
        suppressed=suppressed,
        chunks=len(chunks),
        release_schedules=schedules,
        requests=requests,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000, help="contacts to seed (default 100000)")
    parser.add_argument("--segments", type=int, default=8, help="parallel scan segments (default 8)")
    parser.add_argument(
        "--max-ratio",
        type=float,
        default=MAX_REQUESTS_PER_RECIPIENT,
        help=f"fail above this many AWS requests per recipient (default {MAX_REQUESTS_PER_RECIPIENT})",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed of the contact population")
    args = parser.parse_args(argv)
    if args.contacts < 1:
        parser.error("--contacts must be at least 1")
    result = run(args.contacts, segments=args.segments, seed_value=args.seed)
    print(result.report())
    if result.requests_per_recipient > args.max_ratio:
        print(
            f"FAIL: {result.requests_per_recipient:.5f} AWS requests per recipient > {args.max_ratio}",
            file=sys.stderr,
        )
        return 1
    print(f"OK: {result.requests_per_recipient:.5f} <= {args.max_ratio} AWS requests per recipient")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
