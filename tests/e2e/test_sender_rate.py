"""The sender's rate and its races: the budget per second across invocations, sequential and
concurrent, provider throttling, and STOPs racing concurrent senders."""

import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.core.botocore_stubber import BotocoreStubber

from consentry import clock
from consentry.providers.base import ErrorKind, ProviderError
from consentry.providers.simulator import SimulatorConfig
from consentry.store import contacts as contact_store
from consentry.store import sends
from consentry_local import events
from consentry_local.runtime import HIDDEN_FOR_EVER, LocalRuntime
from tests.conftest import START
from tests.e2e.test_sender_support import (
    chunk_totals,
    numbers,
    put_chunk,
    running_campaign,
    sends_per_number,
    stop,
    subscribe,
    terminal_total,
)

RATE = 5


@pytest.fixture
def fast_carrier(tmp_path: Path) -> Iterator[LocalRuntime]:
    """A deployment allowed 5 messages per second, and a carrier that would take 100.

    The runtime delivers chunks one invocation at a time here; the concurrent tests below run
    their invocations on threads in discrete virtual time themselves (ConcurrentSenders).
    """
    local = LocalRuntime(
        tmp_path,
        start=START,
        parameters={"MessagesPerSecond": str(RATE)},
        simulator=SimulatorConfig(log_path=tmp_path / "simulator.jsonl", messages_per_second=100),
        concurrency={"SenderFunction": 1},
    )
    local.start()
    try:
        yield local
    finally:
        local.stop()


def sender_runs(runtime: LocalRuntime) -> list[Any]:
    return [invocation for invocation in runtime.invocations if invocation.function == "SenderFunction"]


def per_second(runtime: LocalRuntime) -> dict[int, int]:
    counts: dict[int, int] = {}
    for entry in runtime.simulator.log_entries():
        second = int(datetime.fromisoformat(entry["ts"]).timestamp())
        counts[second] = counts.get(second, 0) + 1
    return counts


# --- one invocation after another --------------------------------------------------------------


def test_chunks_one_after_another_share_the_per_second_budget(fast_carrier: LocalRuntime) -> None:
    phones = numbers(24)
    subscribe(phones)
    running_campaign("cmp_rate", messages_per_second=20)  # the deployment's 5 per second wins
    for index in range(3):
        # 8 per chunk: each chunk after the first starts in a second the previous one used
        put_chunk(fast_carrier, "cmp_rate", f"c{index}", phones[index * 8 : (index + 1) * 8])
    fast_carrier.run_until_idle(max_virtual=timedelta(minutes=10))

    assert sends_per_number(fast_carrier) == dict.fromkeys(phones, 1)
    assert max(per_second(fast_carrier).values()) == RATE
    assert fast_carrier.simulator.max_per_second() == RATE
    assert len(per_second(fast_carrier)) == 24 // RATE + 1


def test_a_campaign_rate_below_the_deployments_is_kept(fast_carrier: LocalRuntime) -> None:
    phones = numbers(6)
    subscribe(phones)
    running_campaign("cmp_slow", messages_per_second=2)
    put_chunk(fast_carrier, "cmp_slow", "c0", phones)
    fast_carrier.run_until_idle(max_virtual=timedelta(minutes=10))
    assert len(sends_per_number(fast_carrier)) == 6
    assert fast_carrier.simulator.max_per_second() == 2


# --- provider throttling -----------------------------------------------------------------------


def test_a_carrier_slower_than_the_configured_rate_slows_the_sender_down(tmp_path: Path) -> None:
    slow = SimulatorConfig(log_path=tmp_path / "simulator.jsonl", messages_per_second=3)
    with LocalRuntime(tmp_path, start=START, simulator=slow) as runtime:  # the deployment allows 20
        phones = numbers(12)
        subscribe(phones)
        running_campaign("cmp_throttled", messages_per_second=20)
        put_chunk(runtime, "cmp_throttled", "c0", phones)
        runtime.run_until_idle(max_virtual=timedelta(minutes=10))

        assert runtime.simulator.rejected > 0  # the carrier did throttle
        assert runtime.simulator.max_per_second() <= 3
        assert sends_per_number(runtime) == dict.fromkeys(phones, 1)
        totals = chunk_totals("cmp_throttled")
        assert totals["sent"] == 12
        assert not [name for name in totals if name.startswith("failed.")]
        assert len(sender_runs(runtime)) == 1  # backing off was enough: no retry needed


def test_throttling_that_outlasts_the_backoff_leaves_the_chunk_for_a_retry(runtime: LocalRuntime) -> None:
    phones = numbers(5)
    subscribe(phones)
    runtime.simulator.injected_errors.extend(
        ProviderError(ErrorKind.THROTTLED, "ThrottlingException", "throttled") for _ in range(8)
    )
    running_campaign("cmp_retry")
    put_chunk(runtime, "cmp_retry", "c0", phones)
    runtime.run_until_idle(max_virtual=timedelta(minutes=10))

    runs = sender_runs(runtime)
    assert len(runs) == 2  # the first gave up after its backoff, SQS delivered the rest again
    assert sends_per_number(runtime) == dict.fromkeys(phones, 1)
    assert chunk_totals("cmp_retry") == {"sent": 5, "segments": 5, "recipients": 5}
    assert runtime.dead_letters("SendDLQ") == []


# --- true concurrency --------------------------------------------------------------------------


class ConcurrentSenders:
    """Sender invocations on threads over one local runtime, in discrete virtual time.

    Every AWS call runs under one lock, because DynamoDB applies each request atomically and
    moto in-process does not. The virtual clock moves only when every participating thread
    waits in clock.sleep, and then to the earliest wake-up: each thread's work takes no
    virtual time, which is what the virtual clock means for a single thread too.
    """

    def __init__(self, runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runtime = runtime
        self.condition = threading.Condition()
        self.running: set[int] = set()
        self.sleeping: dict[int, datetime] = {}
        self.starting = 0
        self.errors: list[BaseException] = []
        aws_lock = threading.RLock()
        original = BotocoreStubber.__call__

        def atomic(stubber: BotocoreStubber, *args: Any, **kwargs: Any) -> Any:
            with aws_lock:
                return original(stubber, *args, **kwargs)

        monkeypatch.setattr(BotocoreStubber, "__call__", atomic)
        monkeypatch.setattr(clock, "_sleeper", self.sleep)

    def sleep(self, seconds: float) -> None:
        me = threading.get_ident()
        with self.condition:
            if me not in self.running:
                self.runtime.clock.advance(seconds)
                return
            self.sleeping[me] = self.runtime.clock.now() + timedelta(seconds=seconds)
            self._advance()
            while me in self.sleeping:
                self.condition.wait()

    def _advance(self) -> None:
        while not self.starting and self.running and len(self.sleeping) == len(self.running):
            target = min(self.sleeping.values())
            self.runtime.clock.advance_to(target)
            for ident, wake in list(self.sleeping.items()):
                if wake <= target:
                    del self.sleeping[ident]
            self.condition.notify_all()

    def run(self, bodies: list[Callable[[], object]]) -> None:
        def participant(body: Callable[[], object]) -> None:
            me = threading.get_ident()
            with self.condition:
                self.running.add(me)
                self.starting -= 1
            try:
                body()
            except BaseException as exc:
                self.errors.append(exc)
            finally:
                with self.condition:
                    self.running.discard(me)
                    self._advance()

        self.starting = len(bodies)
        threads = [threading.Thread(target=participant, args=(body,)) for body in bodies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a sender thread hung"
        assert not self.errors, self.errors

    def sender_bodies(self, *, retries_allowed: bool = False) -> list[Callable[[], object]]:
        """One Lambda invocation per chunk waiting on the send queue, as SQS would fan them out."""
        runtime = self.runtime
        queue_url = runtime.queue_url("SendQueue")
        source = next(source for source in runtime.queue_sources if source.function == "SenderFunction")
        bodies: list[Callable[[], object]] = []
        while True:
            messages = (
                runtime.client("sqs")
                .receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, VisibilityTimeout=HIDDEN_FOR_EVER)
                .get("Messages", [])
            )
            if not messages:
                return bodies
            event = events.sqs_event(messages, source.queue_arn, runtime.stack.region)
            bodies.append(lambda event=event: self._invoke(event, retries_allowed))

    def _invoke(self, event: dict[str, Any], retries_allowed: bool) -> None:
        result = self.runtime.invoke("SenderFunction", event)
        # A chunk left for a retry made its message visible again later (ChangeMessageVisibility).
        assert retries_allowed or result == {"batchItemFailures": []}, result


def test_concurrent_senders_never_exceed_the_rate_together(
    fast_carrier: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    phones = numbers(40)
    subscribe(phones)
    running_campaign("cmp_parallel", messages_per_second=20)
    for index in range(4):
        put_chunk(fast_carrier, "cmp_parallel", f"c{index}", phones[index * 10 : (index + 1) * 10])
    harness = ConcurrentSenders(fast_carrier, monkeypatch)
    bodies = harness.sender_bodies()
    assert len(bodies) == 4
    harness.run(bodies)

    assert sends_per_number(fast_carrier) == dict.fromkeys(phones, 1)
    assert fast_carrier.simulator.max_per_second() == RATE
    assert chunk_totals("cmp_parallel")["recipients"] == 40


def test_a_stop_racing_concurrent_senders_is_never_followed_by_a_send(
    fast_carrier: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    phones = numbers(40)
    subscribe(phones)
    running_campaign("cmp_stop_race", messages_per_second=20)
    for index in range(4):
        put_chunk(fast_carrier, "cmp_stop_race", f"c{index}", phones[index * 10 : (index + 1) * 10])
    harness = ConcurrentSenders(fast_carrier, monkeypatch)
    bodies = harness.sender_bodies()

    # One order of events across threads: reservations, committed STOPs, provider calls.
    order = itertools.count()
    order_lock = threading.Lock()
    reserved_at: dict[str, int] = {}
    stopped_at: dict[str, int] = {}
    sent_at: dict[str, list[int]] = {}
    real_reserve, real_commit, real_send = (
        sends.reserve,
        contact_store.commit_consent,
        fast_carrier.simulator.send,
    )

    def reserve(contact: Any, *args: Any, **kwargs: Any) -> sends.Reservation:
        result = real_reserve(contact, *args, **kwargs)
        if result.reserved:
            with order_lock:
                reserved_at[contact.phone] = next(order)
        return result

    def commit_consent(before: Any, consent: Any, entry: Any) -> None:
        real_commit(before, consent, entry)
        if consent.opted_out:
            with order_lock:
                stopped_at[consent.phone] = next(order)

    def send(sms: Any) -> Any:
        with order_lock:
            sent_at.setdefault(sms.to_number, []).append(next(order))
        return real_send(sms)

    monkeypatch.setattr(sends, "reserve", reserve)
    monkeypatch.setattr(contact_store, "commit_consent", commit_consent)
    monkeypatch.setattr(fast_carrier.simulator, "send", send)

    def stopper() -> None:
        # Once the campaign is well under way, everyone not texted yet replies STOP, one by one.
        while fast_carrier.simulator.accepted < 12:
            clock.sleep(0.05)
        for phone in phones:
            if phone not in sent_at:
                stop(phone, "race")
                clock.sleep(0.01)

    harness.run([*bodies, stopper])

    assert stopped_at, "the stopper never ran"
    for phone, stop_order in stopped_at.items():
        for send_order in sent_at.get(phone, []):
            # A send to a number that replied STOP is only allowed from a reservation committed
            # before the STOP (the STOP lost the race fairly): never from one after it.
            assert reserved_at[phone] < stop_order, phone
            assert send_order > reserved_at[phone]
    never_sent = [phone for phone in stopped_at if phone not in sent_at]
    assert never_sent  # most STOPs won
    totals = chunk_totals("cmp_stop_race")
    assert totals["recipients"] == terminal_total(totals) == 40
    assert totals["sent"] + totals["suppressed.opted_out"] == 40
    assert totals["suppressed.opted_out"] == len(never_sent)
    assert max(sends_per_number(fast_carrier).values()) == 1


def test_a_chunk_delivered_twice_at_the_same_time_sends_each_number_once(
    fast_carrier: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    phones = numbers(12)
    subscribe(phones)
    running_campaign("cmp_twin", messages_per_second=20)
    put_chunk(fast_carrier, "cmp_twin", "c0", phones)
    put_chunk(fast_carrier, "cmp_twin", "c0", phones)  # SQS at-least-once: two copies, two senders
    harness = ConcurrentSenders(fast_carrier, monkeypatch)
    harness.run(harness.sender_bodies(retries_allowed=True))
    fast_carrier.run_until_idle(max_virtual=timedelta(minutes=30))  # a copy that stepped aside returns

    assert sends_per_number(fast_carrier) == dict.fromkeys(phones, 1)
    totals = chunk_totals("cmp_twin")
    assert totals == {"sent": 12, "segments": 12, "recipients": 12}


# --- the runtime's own concurrency ---------------------------------------------------------------


def test_the_runtimes_concurrent_senders_never_exceed_the_rate_together(tmp_path: Path) -> None:
    """Four sender instances at once, scheduled by the runtime itself on one shared virtual clock."""
    local = LocalRuntime(
        tmp_path,
        start=START,
        parameters={"MessagesPerSecond": str(RATE)},
        simulator=SimulatorConfig(log_path=tmp_path / "simulator.jsonl", messages_per_second=100),
        concurrency={"SenderFunction": 4},
    )
    local.start()
    try:
        phones = numbers(40)
        subscribe(phones)
        running_campaign("cmp_together", messages_per_second=20)
        for index in range(4):
            put_chunk(local, "cmp_together", f"c{index}", phones[index * 10 : (index + 1) * 10])
        local.run_until_idle(max_virtual=timedelta(minutes=10))

        assert sends_per_number(local) == dict.fromkeys(phones, 1)
        assert local.simulator.max_per_second() <= RATE
        assert max(per_second(local).values()) <= RATE
        assert len(sender_runs(local)) >= 4
    finally:
        local.stop()
