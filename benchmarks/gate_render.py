"""Sender benchmark: gate + render CPU per recipient, and AWS requests per sent message.

    .venv/bin/python -m benchmarks.gate_render --recipients 3000

1. Pure CPU (no AWS): for a population spread over eight US time zones, the send-time gate
   (consent, window, caps, send key, number, campaign) and the text (render, opt-out footer,
   smart encoding, segment count), timed with process_time, best of three rounds.
2. The sender on the local runtime: the population seeded, a running campaign, its recipients
   on the send queue in chunks of 100, each chunk delivered to SenderFunction as the SQS event
   source would. AWS requests are counted with botocore hooks (before-parameter-build: once per
   call, with its parameters, so DynamoDB calls are split by table) only inside the
   sender's invocations, by API and table, and divided by the messages sent. The provider call
   (End User Messaging SendTextMessage) is one more request per message; the local carrier
   simulator is not an AWS API, so it is listed, not counted.
"""

import argparse
import logging
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from benchmarks.fanout import BENCH_START, phone_number, population, seed
from consentry.domain import gate
from consentry.domain.campaign import Campaign, Status
from consentry.domain.chunks import CHUNK_SIZE, SendChunk
from consentry.domain.contact import Contact
from consentry.domain.encoding import analyze, ensure_opt_out_instructions, smart_encode
from consentry.domain.templates import MessageTemplate
from consentry.providers.simulator import SimulatorConfig
from consentry.store import aws as store_aws
from consentry.store import codec
from consentry.store.campaigns import CampaignRecord
from consentry.store.campaigns import create as create_campaign
from consentry.store.contacts import record_from_item
from consentry_local import events
from consentry_local.runtime import LocalRuntime

#: Tuesday 19:30 UTC: 14:30 in New York, 09:30 in Honolulu and Adak, so every zone of the
#: population is inside the promotional window (09:00-20:00) and nobody is deferred.
SEND_AT = datetime(2026, 11, 24, 19, 30, tzinfo=UTC)
TEMPLATE = "Hi {first_name|there}, 20% off treats today at {brand} \u2013 show this text in store"
#: The design's floor: one reservation write per message, reads and queue calls batched, plus
#: one rate-counter write per block of tokens (a block is at most a second's budget).
BATCHED_SLACK = 0.15


def max_ratio_for(rate: int, campaign_rate: int) -> float:
    return 1 + BATCHED_SLACK + 1 / min(rate, campaign_rate)


def benchmark_campaign(campaign_id: str = "cmp_sender_bench", messages_per_second: int = 10) -> Campaign:
    return Campaign(
        campaign_id=campaign_id,
        name="Sender benchmark",
        topic="deals",
        template=TEMPLATE,
        message_class="promotional",
        status=Status.RUNNING,
        messages_per_second=messages_per_second,
        created_at=BENCH_START - timedelta(days=1),
        updated_at=BENCH_START - timedelta(days=1),
    )


# --- 1. pure CPU --------------------------------------------------------------------------------


def contacts(count: int) -> list[Contact]:
    found = []
    for index, item in enumerate(population(count)):
        contact = record_from_item(codec.from_item(item))
        if index % 10 == 0:  # some have had a promotional text this week: the cap refuses them
            sent_at = int((BENCH_START - timedelta(days=2)).timestamp())
            entry = {
                "at": sent_at,
                "topic": "deals",
                "message_class": "promotional",
                "message_id": "m",
                "state": "reserved",
            }
            contact = contact.model_copy(update={"sends": {"cmp_earlier": entry}})
        found.append(contact)
    return found


def text_for(template: MessageTemplate, contact: Contact) -> int:
    rendered = template.render(contact.attributes, system={"brand": "Consentry Demo"})
    if rendered.text is None:
        return 0
    return analyze(smart_encode(ensure_opt_out_instructions(rendered.text))).segments


def cpu_per_recipient(population_size: int, rounds: int = 3) -> dict[str, Any]:
    people = contacts(population_size)
    send = gate.send_context_for(benchmark_campaign(), repermission_days=365)
    template = MessageTemplate.parse(TEMPLATE)
    at = SEND_AT
    reasons: Counter[str] = Counter()
    for contact in people:  # warm the window caches once, as a warm Lambda has them
        reasons[gate.evaluate(contact, send, at).reason or "allowed"] += 1

    def timed(work: Any) -> float:
        best = float("inf")
        for _ in range(rounds):
            began = time.process_time()
            for contact in people:
                work(contact)
            best = min(best, time.process_time() - began)
        return best / len(people) * 1e6

    gate_us = timed(lambda contact: gate.evaluate(contact, send, at))
    text_us = timed(lambda contact: text_for(template, contact))
    both_us = timed(
        lambda contact: text_for(template, contact) if gate.evaluate(contact, send, at).allowed else None
    )
    return {
        "recipients": len(people),
        "gate_us": gate_us,
        "text_us": text_us,
        "both_us": both_us,
        "reasons": reasons,
    }


# --- 2. AWS requests per sent message ------------------------------------------------------------


class TableCounter:
    """Counts AWS calls by API and, for DynamoDB, by table, while `active`."""

    def __init__(self, tables: dict[str, str]) -> None:
        self.tables = {physical: logical for logical, physical in tables.items()}
        self.counts: Counter[str] = Counter()
        self.active = False

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        # before-parameter-build: once per API call (before retries), with the call's own parameters
        if not self.active:
            return
        api = f"{model.service_model.service_name}.{model.name}"
        table = params.get("TableName")
        if table is None and isinstance(params.get("RequestItems"), dict):
            table = next(iter(params["RequestItems"]), None)
        self.counts[f"{api} {self.tables.get(table, '')}".strip()] += 1


def requests_per_message(recipients: int, workdir: Path, *, rate: int, campaign_rate: int) -> dict[str, Any]:
    fast = SimulatorConfig(log_path=workdir / "simulator.jsonl", messages_per_second=100_000)
    runtime = LocalRuntime(
        workdir, start=SEND_AT, parameters={"MessagesPerSecond": str(rate)}, simulator=fast
    )
    runtime.start()
    try:
        dynamodb = runtime.client("dynamodb")
        seed(dynamodb, runtime.table_name("ContactsTable"), population(recipients))
        campaign = benchmark_campaign(messages_per_second=campaign_rate)
        create_campaign(CampaignRecord(campaign=campaign))
        phones = [phone_number(index) for index in range(recipients)]
        sqs = runtime.client("sqs")
        queue_url = runtime.queue_url("SendQueue")
        for start in range(0, len(phones), CHUNK_SIZE):
            chunk = SendChunk(
                campaign_id=campaign.campaign_id,
                chunk_id=f"bench-{start // CHUNK_SIZE}",
                recipients=tuple(phones[start : start + CHUNK_SIZE]),
            )
            sqs.send_message(QueueUrl=queue_url, MessageBody=chunk.model_dump_json())

        tables = {
            logical: runtime.table_name(logical) for logical in runtime.stack.of_type("AWS::DynamoDB::Table")
        }
        counter = TableCounter(tables)
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-parameter-build", counter)
        store_aws.reset()  # clients made before would not carry the hook
        queue_arn = runtime.stack.physical["SendQueue"]["Arn"]
        invocations = 0
        began = time.perf_counter()
        try:
            while True:
                messages = sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=1, VisibilityTimeout=900, AttributeNames=["All"]
                ).get("Messages", [])
                if not messages:
                    break
                event = events.sqs_event(messages, queue_arn, runtime.stack.region)
                counter.active = True
                try:
                    result = runtime.invoke("SenderFunction", event)
                finally:
                    counter.active = False
                if result.get("batchItemFailures"):
                    raise RuntimeError(f"a chunk failed: {result}")
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
                invocations += 1
        finally:
            boto3.DEFAULT_SESSION.events.unregister("before-parameter-build", counter)
            store_aws.reset()
        seconds = time.perf_counter() - began

        from consentry.store import sends

        totals = sends.chunk_totals(campaign.campaign_id)
        sent = totals.get("sent", 0)
        log = runtime.simulator.log_entries()
        if len(log) != sent or len({entry["to"] for entry in log}) != sent:
            raise AssertionError(f"the carrier saw {len(log)} sends for {sent} counted as sent")
        if totals.get("recipients") != recipients:
            raise AssertionError(f"{totals.get('recipients')} terminal states for {recipients} recipients")
        return {
            "recipients": recipients,
            "sent": sent,
            "totals": totals,
            "requests": dict(counter.counts),
            "invocations": invocations,
            "seconds": seconds,
            "max_per_second": runtime.simulator.max_per_second(),
            "rate": rate,
            "campaign_rate": campaign_rate,
        }
    finally:
        runtime.stop()


# --- the run ---------------------------------------------------------------------------------------


def report(cpu: dict[str, Any], aws: dict[str, Any]) -> tuple[str, float]:
    sent = max(aws["sent"], 1)
    total = sum(aws["requests"].values())
    lines = [
        "gate + render, pure CPU (process time per recipient, best of 3)",
        f"  recipients                     {cpu['recipients']:>10,}",
        f"  gate                           {cpu['gate_us']:>10.1f} us",
        f"  render + footer + encoding     {cpu['text_us']:>10.1f} us",
        f"  gate, then text if allowed     {cpu['both_us']:>10.1f} us",
        "  decisions                      " + ", ".join(f"{k} {v}" for k, v in cpu["reasons"].most_common()),
        "",
        "sender on the local runtime (AWS requests inside SenderFunction, per sent message)",
        f"  recipients / sent              {aws['recipients']:>10,} / {aws['sent']:,}",
        f"  chunk invocations              {aws['invocations']:>10,}",
        f"  rate: deployment / campaign    {aws['rate']:>10,} / {aws['campaign_rate']:,} per second"
        f" (carrier saw at most {aws['max_per_second']:,} in a second)",
        f"  wall time                      {aws['seconds']:>10.1f} s (in-process moto)",
        "  send-side counts               "
        + ", ".join(f"{k} {v}" for k, v in sorted(aws["totals"].items()) if k != "recipients"),
        f"  {'API':<44} {'requests':>9} {'per message':>12}",
    ]
    for api, count in sorted(aws["requests"].items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"  {api:<44} {count:>9,} {count / sent:>12.4f}")
    lines.append(f"  {'total AWS requests':<44} {total:>9,} {total / sent:>12.4f}")
    lines.append(f"  {'+ provider SendTextMessage (simulated here)':<44} {aws['sent']:>9,} {1:>12.4f}")
    return "\n".join(lines), total / sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gate_render", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--recipients", type=int, default=3000, help="campaign recipients on the runtime (default 3000)"
    )
    parser.add_argument(
        "--population", type=int, default=20_000, help="contacts for the CPU part (default 20000)"
    )
    parser.add_argument(
        "--rate", type=int, default=20, help="the deployment's MessagesPerSecond (default 20)"
    )
    parser.add_argument(
        "--campaign-rate", type=int, default=10, help="the campaign's messages_per_second (default 10)"
    )
    parser.add_argument(
        "--max-ratio",
        type=float,
        help=f"fail above this many AWS requests per sent message (default 1 + {BATCHED_SLACK} + 1/rate)",
    )
    args = parser.parse_args(argv)
    if args.recipients < 1 or args.population < 1:
        parser.error("--recipients and --population must be at least 1")
    cpu = cpu_per_recipient(args.population)
    saved = os.environ.get("POWERTOOLS_METRICS_DISABLED")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    try:
        with tempfile.TemporaryDirectory() as scratch, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            from consentry.observability import logger

            level = logger.log_level
            logger.setLevel(logging.WARNING)
            try:
                aws = requests_per_message(
                    args.recipients, Path(scratch), rate=args.rate, campaign_rate=args.campaign_rate
                )
            finally:
                logger.setLevel(level)
    finally:
        if saved is None:
            os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)
        else:
            os.environ["POWERTOOLS_METRICS_DISABLED"] = saved
    text, ratio = report(cpu, aws)
    print(text)
    limit = args.max_ratio if args.max_ratio is not None else max_ratio_for(args.rate, args.campaign_rate)
    if ratio > limit:
        print(f"FAIL: {ratio:.4f} AWS requests per sent message > {limit:.4f}", file=sys.stderr)
        return 1
    print(f"OK: {ratio:.4f} <= {limit:.4f} AWS requests per sent message (plus the provider call)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
