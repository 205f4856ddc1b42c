"""A whole promotional campaign, end to end on the local runtime: throughput, requests, memory.

    .venv/bin/python -m benchmarks.campaign_e2e --recipients 10000 --json campaign-10k.json
    .venv/bin/python -m benchmarks.campaign_e2e --compare campaign-10k.json campaign-100k.json

Contacts over eight US time zones (benchmarks/fanout.py's population: ~90% with committed
promotional consent to "deals", some opted out, pending or on another topic) are written
straight into ContactsTable with BatchWriteItem (not measured). The campaign is then created and
scheduled through the admin API for 10:00 New York time, and the runtime runs on its virtual
clock - Scheduler fires the start, the fan-out scans and parks the western zones until their
window opens, SenderFunction takes the send queue (the template's ScalingConfig: 10 chunks at
once), the carrier simulator accepts at the deployment's rate, fails a share and sends receipts
back through DeliveryEventsTopic (and, as the template wires it, ReceiptsQueue) to
ReceiptsFunction - until every recipient is terminal: sent with a final receipt, suppressed, or
refused by the provider. Reported:

1. wall time of that run, sent messages per second and recipients (audience) per second;
2. AWS requests by function, API and table, counted with botocore hooks (benchmarks/counting.py)
   only inside the invocations of FanoutFunction, SenderFunction and ReceiptsFunction (the
   runtime's own SQS polling, deletes and scheduler emulation are Lambda's and Scheduler's, not
   the system's), per sent message, against the design's floor: one reservation write, one
   provider call and one receipt write per message, reads and queue calls ~1/100;
3. peak memory of SenderFunction handling one SQS record with a 100-recipient chunk, warm
   (tracemalloc peak above the allocations before the call; it includes the in-process
   emulator's allocations for the chunk's requests), and the process RSS around it.

The run fails if the counts do not add up: sent + unknown + suppressed + refused must equal the
audience, nothing may be pending, and the carrier's log must hold exactly the messages counted.
"""

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from benchmarks.counting import RequestCounter
from benchmarks.fanout import BENCH_START, TOPIC, contact_item, population, seed
from consentry.domain.campaign import Campaign, Status
from consentry.domain.chunks import CHUNK_SIZE, SendChunk
from consentry.providers.simulator import SimulatorConfig
from consentry.store.campaigns import CampaignRecord
from consentry.store.campaigns import create as store_campaign
from consentry_local import events
from consentry_local.runtime import LocalRuntime

CAMPAIGN_FUNCTIONS = ("FanoutFunction", "SenderFunction", "ReceiptsFunction")
TEMPLATE = "Hi {first_name|there}, 20% off treats today at {brand}"
AUDIENCE = {"attribute": "last_purchase", "op": "within_days", "value": 365}
#: The design's floor per delivered campaign message (DESIGN.md "Numbers the design is held to").
#: Per message: one reservation write, one provider call, one receipt write (the rows named in
#: floor_rows), and then these, "batched to ~1/100": writes the design does not name have no floor.
FLOOR_REST = {
    "reads (GetItem, BatchGetItem, Query, Scan)": 0.01,
    "queue calls (SQS)": 0.01,
    "other writes (counters, rate, records, schedules)": 0.0,
}
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})
MEMORY_AREA = "+1808"  # Honolulu numbers for the memory chunks: open at the instant chosen below
MEMORY_SEND_HOUR_UTC = 21  # 16:00 New York ... 11:00 Honolulu: every US zone inside its window
_TABLE = "benchmarks.campaign_e2e.table"
_STARTED = "benchmarks.campaign_e2e.started"


# --- counting, per function invocation and thread ------------------------------------------------


class InvocationCounter(RequestCounter):
    """RequestCounter whose calls count only on a thread that is inside a function invocation.

    The runtime runs up to ten sender instances on threads, and between their invocations it
    polls and deletes SQS messages itself (the event source mapping's work): a process-wide
    "measuring" flag would count those too. DynamoDB calls are split by logical table.
    """

    def __init__(self, tables: dict[str, str]) -> None:
        super().__init__()
        self.tables = {physical: logical for logical, physical in tables.items()}
        self.detailed: Counter[tuple[str, str]] = Counter()  # (function, "api table") -> calls
        self._local = threading.local()
        self._lock = threading.Lock()
        self.enabled = True

    def install(self) -> "InvocationCounter":
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-parameter-build", self._note_table)
        super().install()  # resets the cached clients: new ones carry both hooks
        return self

    def __enter__(self) -> "InvocationCounter":
        return self.install()

    def uninstall(self) -> None:
        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.unregister("before-parameter-build", self._note_table)
        super().uninstall()

    @contextmanager
    def invocation(self, function: str) -> Iterator[None]:
        stack: list[str] = self._local.__dict__.setdefault("functions", [])
        stack.append(function)
        try:
            yield
        finally:
            stack.pop()

    def _function(self) -> str | None:
        stack: list[str] = self._local.__dict__.get("functions", [])
        return stack[-1] if stack and self.enabled else None

    def _note_table(self, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
        table = params.get("TableName")
        if table is None and isinstance(params.get("RequestItems"), dict):
            table = next(iter(params["RequestItems"]), None)
        if table is None and isinstance(params.get("TransactItems"), list) and params["TransactItems"]:
            first: Any = next(iter(params["TransactItems"][0].values()), {})
            table = first.get("TableName") if isinstance(first, dict) else None
        if context is not None and table is not None:
            context[_TABLE] = self.tables.get(table, table)

    def _count(self, model: Any, context: dict[str, Any] | None = None, **_: Any) -> None:
        function = self._function()
        if function is None:
            return
        api = f"{model.service_model.service_name}.{model.name}"
        table = (context or {}).get(_TABLE)
        with self._lock:
            self.counts[api] += 1
            self.detailed[(function, f"{api} {table}" if table else api)] += 1
        if context is not None:
            context[_STARTED] = time.perf_counter()

    def _finish(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        started = context.pop(_STARTED, None) if context is not None else None
        if started is not None:
            with self._lock:
                self.seconds_in_calls += time.perf_counter() - started

    def of(self, functions: tuple[str, ...]) -> dict[str, int]:
        """Calls by "api table" summed over `functions`, most first."""
        found: Counter[str] = Counter()
        for (function, api), count in self.detailed.items():
            if function in functions:
                found[api] += count
        return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))

    def by_function(self) -> dict[str, dict[str, int]]:
        found: dict[str, Counter[str]] = {}
        for (function, api), count in self.detailed.items():
            found.setdefault(function, Counter())[api] += count
        return {
            function: dict(sorted(apis.items(), key=lambda item: (-item[1], item[0])))
            for function, apis in sorted(found.items())
        }


def count_invocations(runtime: LocalRuntime, counter: InvocationCounter) -> None:
    """Every invocation the runtime makes (API, SQS, SNS, Scheduler) counts for its function."""
    original = runtime.invoke

    def invoke(function: str, event: dict[str, Any]) -> Any:
        with counter.invocation(function):
            return original(function, event)

    runtime.invoke = invoke  # type: ignore[method-assign]


# --- results -------------------------------------------------------------------------------------


@dataclass
class Memory:
    recipients: int
    tracemalloc_peak_bytes: int  # above what was allocated before the call
    tracemalloc_retained_bytes: int  # still allocated after it (caches, the emulator's new items)
    rss_before_bytes: int
    rss_after_bytes: int
    max_rss_bytes: int  # the process's high-water mark after the call (getrusage)
    outcome: dict[str, Any] = field(default_factory=dict)

    @property
    def rss_delta_bytes(self) -> int:
        return self.rss_after_bytes - self.rss_before_bytes


@dataclass
class CampaignResult:
    contacts: int
    rate: int
    campaign_rate: int
    failure_share: float
    seed_seconds: float
    wall_seconds: float
    cpu_seconds: float
    virtual_seconds: float
    seconds_in_aws_calls: float  # summed over threads: the emulator's share, can exceed wall time
    audience: int
    sent: int
    send_unknown: int
    suppressed: dict[str, int]
    send_failed: dict[str, int]
    delivered: int
    delivery_failed: int
    delivery_unknown: int
    pending: int
    carrier_accepted: int
    carrier_throttled: int
    invocations: dict[str, int]
    requests: dict[str, int]  # "api table" -> calls in the campaign's three functions
    requests_by_function: dict[str, dict[str, int]]
    memory: Memory | None = None
    machine: dict[str, Any] = field(default_factory=dict)

    # -- derived figures ---------------------------------------------------------------------
    @property
    def terminal(self) -> int:
        return self.sent + self.send_unknown + sum(self.suppressed.values()) + sum(self.send_failed.values())

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def provider_calls(self) -> int:
        return self.carrier_accepted + self.carrier_throttled

    @property
    def handed_over(self) -> int:
        return self.sent + self.send_unknown

    def per_message(self, count: float) -> float:
        return count / max(self.sent, 1)

    @property
    def messages_per_second(self) -> float:
        return self.sent / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def recipients_per_second(self) -> float:
        return self.audience / self.wall_seconds if self.wall_seconds else 0.0

    def floor_rows(self) -> list[tuple[str, float, float]]:
        """(what, measured per sent message, floor): the design's named parts, then the rest by kind."""
        named: Counter[tuple[str, str]] = Counter()
        sender = self.requests_by_function.get("SenderFunction", {})
        named[("SenderFunction", "dynamodb.UpdateItem ContactsTable")] = sender.get(
            "dynamodb.UpdateItem ContactsTable", 0
        )
        for api, count in self.requests_by_function.get("ReceiptsFunction", {}).items():
            if api in ("dynamodb.UpdateItem MessagesTable", "dynamodb.PutItem MessagesTable"):
                named[("ReceiptsFunction", api)] = count
        kinds: Counter[str] = Counter()
        for function, apis in self.requests_by_function.items():
            for api, count in apis.items():
                left = count - named[(function, api)]
                operation = api.split()[0].split(".")[1]
                if api.startswith("sqs."):
                    kinds["queue calls (SQS)"] += left
                elif operation in READ_OPERATIONS:
                    kinds["reads (GetItem, BatchGetItem, Query, Scan)"] += left
                else:
                    kinds["other writes (counters, rate, records, schedules)"] += left
        reservation = named[("SenderFunction", "dynamodb.UpdateItem ContactsTable")]
        receipt_writes = sum(
            count for (function, _), count in named.items() if function == "ReceiptsFunction"
        )
        rows = [
            ("reservation write (sender: ContactsTable UpdateItem)", self.per_message(reservation), 1.0),
            ("provider call (SendTextMessage, incl. throttled)", self.per_message(self.provider_calls), 1.0),
            ("receipt write (receipts: MessagesTable status)", self.per_message(receipt_writes), 1.0),
        ]
        for kind, floor in FLOOR_REST.items():
            rows.append((kind, self.per_message(kinds[kind]), floor))
        rows.append(
            (
                "total incl. provider call",
                self.per_message(self.total_requests + self.provider_calls),
                3.0 + sum(FLOOR_REST.values()),
            )
        )
        return rows

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["derived"] = {
            "messages_per_second": self.messages_per_second,
            "recipients_per_second": self.recipients_per_second,
            "total_requests": self.total_requests,
            "requests_per_sent_message": self.per_message(self.total_requests),
            "floor": [{"what": w, "per_message": m, "floor": f} for w, m, f in self.floor_rows()],
            "terminal": self.terminal,
        }
        return values

    def report(self) -> str:
        lines = [
            f"contacts seeded            {self.contacts:>12,}"
            f"  in {self.seed_seconds:.1f}s (BatchWriteItem, not measured)",
            f"rate deployment / campaign {self.rate:>12,} / {self.campaign_rate:,} per second;"
            f" carrier failure share {self.failure_share:.0%}",
            f"audience                   {self.audience:>12,}",
            f"  sent                     {self.sent:>12,}  (+ {self.send_unknown:,} unknown)",
            f"  suppressed               {sum(self.suppressed.values()):>12,}  {self.suppressed or ''}",
            f"  refused by provider      {sum(self.send_failed.values()):>12,}  {self.send_failed or ''}",
            f"  delivered / failed / ?   {self.delivered:>12,} / {self.delivery_failed:,}"
            f" / {self.delivery_unknown:,}  pending {self.pending:,}",
            f"carrier accepted           {self.carrier_accepted:>12,}"
            f"  (throttled {self.carrier_throttled:,})",
            f"wall time                  {self.wall_seconds:>11.1f}s  CPU {self.cpu_seconds:.1f}s,"
            f" virtual {timedelta(seconds=round(self.virtual_seconds))}",
            f"  inside AWS calls (sum)   {self.seconds_in_aws_calls:>11.1f}s  (moto + botocore, all threads)",
            f"sent messages per second   {self.messages_per_second:>12,.1f}  (wall, on the emulator)",
            f"recipients per second      {self.recipients_per_second:>12,.1f}",
            "invocations                "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(self.invocations.items())),
            "",
            f"AWS requests in {', '.join(CAMPAIGN_FUNCTIONS)}, per sent message",
            f"  {'API table':<44} {'requests':>10} {'per message':>12}",
        ]
        for api, count in self.requests.items():
            lines.append(f"  {api:<44} {count:>10,} {self.per_message(count):>12.4f}")
        lines.append(
            f"  {'total AWS requests':<44} {self.total_requests:>10,}"
            f" {self.per_message(self.total_requests):>12.4f}"
        )
        lines.append(
            f"  {'+ provider calls (simulated carrier)':<44} {self.provider_calls:>10,}"
            f" {self.per_message(self.provider_calls):>12.4f}"
        )
        lines += ["", "by function"]
        for function, apis in self.requests_by_function.items():
            total = sum(apis.values())
            lines.append(f"  {function:<28} {total:>10,}  {self.per_message(total):.4f} per sent message")
        lines += ["", f"  {'against the floor':<62} {'measured':>9} {'floor':>7}"]
        for what, measured, floor in self.floor_rows():
            lines.append(f"  {what:<62} {measured:>9.4f} {floor:>7.2f}")
        if self.memory is not None:
            memory = self.memory
            lines += [
                "",
                f"sender, one SQS record with a {memory.recipients}-recipient chunk (warm)",
                f"  tracemalloc peak            {memory.tracemalloc_peak_bytes / 2**20:>9.2f} MiB"
                f"  (retained after: {memory.tracemalloc_retained_bytes / 2**20:.2f} MiB)",
                f"  RSS before / after          {memory.rss_before_bytes / 2**20:>9.1f} / "
                f"{memory.rss_after_bytes / 2**20:.1f} MiB (delta {memory.rss_delta_bytes / 2**20:+.2f} MiB);"
                f" process high-water {memory.max_rss_bytes / 2**20:.0f} MiB",
                "  chunk outcome               " + json.dumps(memory.outcome, sort_keys=True),
            ]
        return "\n".join(lines)


# --- the run -------------------------------------------------------------------------------------


def _api(runtime: LocalRuntime, method: str, path: str, body: Any = None) -> Any:
    response = runtime.http(
        method,
        "/v1" + path,
        body=json.dumps(body) if body is not None else b"",
        headers={"Content-Type": "application/json"},
    )
    if response.status >= 300:
        raise RuntimeError(f"{method} {path} answered {response.status}: {response.body[:300]}")
    return response.json()


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def machine_state() -> dict[str, Any]:
    """When, where, and how busy the machine was (the 1-minute load includes this run)."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "loadavg_1_5_15": [round(value, 2) for value in os.getloadavg()],
        "python": sys.version.split()[0],
        "busy_processes": busy_processes(),
        "tree": source_tree(),
    }


def source_tree() -> str:
    """The commit measured, "-dirty" when the working tree had uncommitted changes."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],  # noqa: S607 - git from PATH, fixed arguments
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return described.stdout.strip()


def busy_processes(minimum_share: float = 0.2) -> list[str]:
    """Other processes using at least `minimum_share` of a core over the last second."""

    def ticks() -> dict[int, tuple[int, str]]:
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                fields = (
                    (entry / "stat").read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()
                )
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            found[int(entry.name)] = (int(fields[11]) + int(fields[12]), command.strip()[:100])
        return found

    before = ticks()
    time.sleep(1.0)
    after = ticks()
    per_second = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (used, command) in after.items():
        if pid in before and (used - before[pid][0]) / per_second >= minimum_share:
            busy.append(f"{(used - before[pid][0]) / per_second:.0%} {command}")
    return sorted(busy, reverse=True)


def run(
    contacts: int,
    *,
    rate: int = 20,
    campaign_rate: int | None = None,
    failure_share: float = 0.02,
    memory_chunk: bool = True,
    workdir: Path | None = None,
    seed_value: int = 7,
) -> CampaignResult:
    with tempfile.TemporaryDirectory() as scratch:
        directory = workdir or Path(scratch)
        simulator = SimulatorConfig(
            log_path=directory / "simulator.jsonl", messages_per_second=rate, failure_share=failure_share
        )
        runtime = LocalRuntime(
            directory,
            start=BENCH_START - timedelta(minutes=10),
            parameters={"MessagesPerSecond": str(rate)},
            simulator=simulator,
            quiet=True,
        )
        runtime.start()
        try:
            # quiet: metrics off and only errors logged. Powertools still prints a metric's values
            # when 100 have piled up (flushing is off, so they do): those EMF lines go nowhere.
            with (
                warnings.catch_warnings(),
                open(os.devnull, "w", encoding="utf-8") as nowhere,
                contextlib.redirect_stdout(nowhere),
            ):
                warnings.simplefilter("ignore", UserWarning)  # "No application metrics to publish"
                return _run(
                    runtime, contacts, rate, campaign_rate or rate, failure_share, memory_chunk, seed_value
                )
        finally:
            runtime.stop()


def _run(
    runtime: LocalRuntime,
    contacts: int,
    rate: int,
    campaign_rate: int,
    failure_share: float,
    memory_chunk: bool,
    seed_value: int,
) -> CampaignResult:
    machine_before = machine_state()
    began = time.perf_counter()
    seed(runtime.client("dynamodb"), runtime.table_name("ContactsTable"), population(contacts, seed_value))
    seed_seconds = time.perf_counter() - began

    tables = {
        logical: runtime.table_name(logical) for logical in runtime.stack.of_type("AWS::DynamoDB::Table")
    }
    with InvocationCounter(tables) as counter:
        count_invocations(runtime, counter)
        created = _api(
            runtime,
            "POST",
            "/campaigns",
            {
                "name": f"Benchmark {contacts}",
                "topic": TOPIC,
                "template": TEMPLATE,
                "audience": AUDIENCE,
                "schedule": {"kind": "once", "at": BENCH_START.isoformat()},
                "messages_per_second": campaign_rate,
            },
        )
        campaign_id = created.get("campaign_id") or created["campaign"]["campaign_id"]
        _api(runtime, "POST", f"/campaigns/{campaign_id}/schedule")
        invoked_before = len(runtime.invocations)
        virtual_start = runtime.clock.now()
        began, cpu_began = time.perf_counter(), time.process_time()
        runtime.run_until_idle(max_virtual=timedelta(days=2), max_steps=100_000_000)
        wall_seconds = time.perf_counter() - began
        cpu_seconds = time.process_time() - cpu_began
        virtual_seconds = (runtime.clock.now() - virtual_start).total_seconds()
        counter.enabled = False  # the report and the checks below are the harness's
        seconds_in_calls = counter.seconds_in_calls
        report = _api(runtime, "GET", f"/campaigns/{campaign_id}/report")
        invocations = Counter(call.function for call in runtime.invocations[invoked_before:])
        failed_invocations = [call for call in runtime.invocations[invoked_before:] if not call.ok]
        requests = counter.of(CAMPAIGN_FUNCTIONS)
        by_function = {
            function: apis
            for function, apis in counter.by_function().items()
            if function in CAMPAIGN_FUNCTIONS
        }

    log = [entry for entry in runtime.simulator.log_entries() if entry.get("campaign_id") == campaign_id]
    result = CampaignResult(
        contacts=contacts,
        rate=rate,
        campaign_rate=campaign_rate,
        failure_share=failure_share,
        seed_seconds=seed_seconds,
        wall_seconds=wall_seconds,
        cpu_seconds=cpu_seconds,
        virtual_seconds=virtual_seconds,
        seconds_in_aws_calls=seconds_in_calls,
        audience=int(report.get("audience") or 0),
        sent=int(report["sent"]),
        send_unknown=int(report["send_unknown"]),
        suppressed=dict(report["suppressed"]["by_reason"]),
        send_failed=dict(report["send_failed"]["by_reason"]),
        delivered=int(report["delivered"]),
        delivery_failed=int(report["delivery_failed"]["total"]),
        delivery_unknown=int(report["delivery_unknown"]),
        pending=int(report["pending"]),
        carrier_accepted=len(log),
        carrier_throttled=runtime.simulator.rejected,
        invocations=dict(sorted(invocations.items())),
        requests=requests,
        requests_by_function=by_function,
    )
    check(result, log, failed_invocations)
    if memory_chunk:
        result.memory = sender_chunk_memory(runtime, first_index=contacts, campaign_rate=campaign_rate)
    result.machine = {"before": machine_before, "after": machine_state()}
    return result


def check(result: CampaignResult, log: list[dict[str, Any]], failed_invocations: list[Any]) -> None:
    """The numbers must add up, or the figures mean nothing."""
    problems = []
    if result.audience <= 0:
        problems.append("the campaign had no audience")
    if result.terminal != result.audience:
        problems.append(
            f"sent + unknown + suppressed + refused = {result.terminal} != audience {result.audience}"
        )
    if result.pending:
        problems.append(f"{result.pending} messages still wait for a final receipt")
    if len(log) != result.handed_over:
        problems.append(f"the carrier logged {len(log)} campaign messages, the report {result.handed_over}")
    if len({entry["to"] for entry in log}) != len(log):
        problems.append("a number received the campaign twice")
    if result.total_requests <= 0:
        problems.append("no AWS request was counted")
    if failed_invocations:
        problems.append(f"{len(failed_invocations)} invocations failed, first: {failed_invocations[0].error}")
    if problems:
        raise AssertionError("; ".join(problems))


# --- memory of one chunk ---------------------------------------------------------------------------


def _memory_phone(index: int) -> str:
    return f"{MEMORY_AREA}{3_000_000 + index:07d}"


def sender_chunk_memory(runtime: LocalRuntime, *, first_index: int, campaign_rate: int) -> Memory:
    """SenderFunction on one SQS record carrying a 100-recipient chunk, after a warm-up chunk.

    The tables still hold the whole campaign (contacts, messages, counters), so the figure is
    taken at the size the run had. Three chunks of fresh Honolulu numbers: the first warms the
    function (imports, clients, the campaign's cached state), the second is measured for RSS
    without tracing, the third under tracemalloc.
    """
    now = runtime.clock.now()
    send_at = now.replace(hour=MEMORY_SEND_HOUR_UTC, minute=0, second=0, microsecond=0)
    if send_at <= now:
        send_at += timedelta(days=1)
    runtime.clock.advance_to(send_at)
    phones = [_memory_phone(first_index + index) for index in range(3 * CHUNK_SIZE)]
    attributes = {"first_name": "Ada", "last_purchase": (send_at - timedelta(days=3)).date().isoformat()}
    seed(
        runtime.client("dynamodb"),
        runtime.table_name("ContactsTable"),
        (contact_item(phone, topics={TOPIC: "active"}, attributes=attributes) for phone in phones),
    )
    campaign = Campaign(
        campaign_id="cmp_memory_probe",
        name="Memory probe",
        topic=TOPIC,
        template=TEMPLATE,
        message_class="promotional",
        status=Status.RUNNING,
        messages_per_second=campaign_rate,
        created_at=send_at - timedelta(hours=1),
        updated_at=send_at - timedelta(hours=1),
    )
    store_campaign(CampaignRecord(campaign=campaign))
    sqs = runtime.client("sqs")
    queue_url = runtime.queue_url("SendQueue")
    queue_arn = runtime.stack.physical["SendQueue"]["Arn"]

    def one_chunk(number: int) -> dict[str, Any]:
        chunk = SendChunk(
            campaign_id=campaign.campaign_id,
            chunk_id=f"memory-{number}",
            recipients=tuple(phones[number * CHUNK_SIZE : (number + 1) * CHUNK_SIZE]),
        )
        sqs.send_message(QueueUrl=queue_url, MessageBody=chunk.model_dump_json())
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=1, VisibilityTimeout=900, AttributeNames=["All"]
        )["Messages"]
        return events.sqs_event(messages, queue_arn, runtime.stack.region)

    def invoke(event: dict[str, Any]) -> None:
        result = runtime.invoke("SenderFunction", event)
        if result.get("batchItemFailures"):
            raise AssertionError(f"the memory probe's chunk failed: {result}")
        receipt = event["Records"][0]["receiptHandle"]
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=receipt)

    invoke(one_chunk(0))  # warm-up
    event = one_chunk(1)
    rss_before = _rss_bytes()
    invoke(event)
    rss_after = _rss_bytes()
    event = one_chunk(2)
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        invoke(event)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    from consentry.store import sends

    return Memory(
        recipients=CHUNK_SIZE,
        tracemalloc_peak_bytes=peak - baseline,
        tracemalloc_retained_bytes=current - baseline,
        rss_before_bytes=rss_before,
        rss_after_bytes=rss_after,
        max_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        outcome=sends.chunk_totals(campaign.campaign_id),
    )


# --- growth between two runs -----------------------------------------------------------------------


def from_json(values: dict[str, Any]) -> CampaignResult:
    """A result back from its --json file (figures are derived again, not read)."""
    fields = {name: values[name] for name in CampaignResult.__dataclass_fields__ if name in values}
    memory = fields.pop("memory", None)
    return CampaignResult(**fields, memory=Memory(**memory) if memory else None)


def _figures(values: dict[str, Any]) -> dict[str, float]:
    result = from_json(values)
    figures = {
        "audience": float(result.audience),
        "sent messages": float(result.sent),
        "wall time (s)": result.wall_seconds,
        "CPU time (s)": result.cpu_seconds,
        "sent messages / s (wall)": result.messages_per_second,
        "recipients / s (wall)": result.recipients_per_second,
        "AWS requests per sent message": result.per_message(result.total_requests),
    }
    for what, measured, _floor in result.floor_rows():
        figures[what] = measured
    for function, apis in result.requests_by_function.items():
        figures[f"{function} requests per sent message"] = result.per_message(sum(apis.values()))
    memory = values.get("memory")
    if memory:
        figures["sender peak memory, 100-recipient chunk (MiB, tracemalloc)"] = (
            memory["tracemalloc_peak_bytes"] / 2**20
        )
        figures["sender RSS delta, 100-recipient chunk (MiB)"] = (
            memory["rss_after_bytes"] - memory["rss_before_bytes"]
        ) / 2**20
        figures["process RSS high-water (MiB)"] = memory["max_rss_bytes"] / 2**20
    return figures


def compare(small: dict[str, Any], large: dict[str, Any]) -> str:
    """A markdown table: each figure at both sizes and how it grew."""
    a, b = _figures(small), _figures(large)
    head = f"| figure | {small['contacts']:,} contacts | {large['contacts']:,} contacts | ratio |"
    lines = [head, "|---|---:|---:|---:|"]
    for name, value in a.items():
        other = b.get(name)
        if other is None:
            continue
        ratio = f"{other / value:.2f}" if value else "-"
        lines.append(f"| {name.strip()} | {_fmt(value)} | {_fmt(other)} | {ratio} |")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    if float(value).is_integer() and abs(value) >= 100:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.campaign_e2e", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--recipients", type=int, default=10_000, help="contacts to seed (default 10000)")
    parser.add_argument(
        "--rate", type=int, default=20, help="the deployment's MessagesPerSecond (default 20)"
    )
    parser.add_argument(
        "--campaign-rate", type=int, help="the campaign's messages_per_second (default: the deployment's)"
    )
    parser.add_argument(
        "--failure-share", type=float, default=0.02, help="share of sends the carrier fails (default 0.02)"
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the sender memory probe")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("SMALL.json", "LARGE.json"),
        help="print the growth table of two runs",
    )
    args = parser.parse_args(argv)
    if args.compare:
        small, large = (json.loads(path.read_text(encoding="utf-8")) for path in args.compare)
        print(compare(small, large))
        return 0
    if args.recipients < 1 or args.rate < 1:
        parser.error("--recipients and --rate must be at least 1")
    try:
        result = run(
            args.recipients,
            rate=args.rate,
            campaign_rate=args.campaign_rate,
            failure_share=args.failure_share,
            memory_chunk=not args.no_memory,
        )
    except AssertionError as problem:
        print(f"FAIL: {problem}", file=sys.stderr)
        return 1
    print(result.report())
    print(f"machine: {json.dumps(result.machine)}")
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    print(
        f"OK: {result.terminal:,} of {result.audience:,} recipients terminal; "
        f"{result.per_message(result.total_requests):.3f} AWS requests per sent message"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
