"""A carrier simulator: the provider of the local runtime and the tests.

It accepts sends like End User Messaging does, enforces a messages-per-second limit
(refusing the excess as a real carrier throttles), fails a configurable share with realistic
event types, and produces what the real world would send back (delivery events and scripted
replies) as End User Messaging JSON, due at a later time of the clock. The local runtime
collects the due ones and pushes them through the real SNS paths.
"""

import heapq
import itertools
import json
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from consentry import clock
from consentry.providers.base import ErrorKind, OutboundSms, ProviderError, SendResult

#: event type -> (message status, is the number itself bad)
FAILURE_EVENTS: dict[str, tuple[str, bool]] = {
    "TEXT_UNREACHABLE": ("UNREACHABLE", False),
    "TEXT_CARRIER_UNREACHABLE": ("CARRIER_UNREACHABLE", False),
    "TEXT_INVALID": ("INVALID", True),
    "TEXT_BLOCKED": ("BLOCKED", False),
    "TEXT_TTL_EXPIRED": ("TTL_EXPIRED", False),
}

ReplyScript = Callable[[OutboundSms], str | None]


@dataclass(order=True)
class SimulatedEvent:
    due: datetime
    seq: int
    kind: Literal["receipt", "inbound"] = field(compare=False)
    payload: dict[str, Any] = field(compare=False)


@dataclass
class SimulatorConfig:
    log_path: Path
    our_number: str = "+12025550100"  # a 10DLC long code: Consentry answers keywords itself
    messages_per_second: int = 20
    delivery_delay_seconds: tuple[float, float] = (2.0, 20.0)
    failure_share: float = 0.0
    failure_events: tuple[str, ...] = ("TEXT_UNREACHABLE", "TEXT_CARRIER_UNREACHABLE", "TEXT_INVALID")
    reply_delay_seconds: tuple[float, float] = (30.0, 300.0)
    seed: int = 7


class CarrierSimulator:
    name = "simulator"

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._random = random.Random(config.seed)
        self._events: list[SimulatedEvent] = []
        self._seq = itertools.count()
        self._per_second: Counter[int] = Counter()
        self.rejected = 0
        self.accepted = 0
        self.reply_script: ReplyScript | None = None
        #: numbers the carrier accepts but cannot deliver to (dead or landline): a TEXT_INVALID receipt
        self.dead_numbers: set[str] = set()
        #: numbers refused at send time, as End User Messaging refuses them
        self.invalid_numbers: set[str] = set()  # ValidationException: not a valid destination
        self.carrier_opted_out: set[str] = set()  # the recipient opted out at the carrier
        #: numbers whose send times out after the request left: logged (it went out), reported ambiguous
        self.timeouts: set[str] = set()
        self._next_id = 1
        #: scripted provider errors for the next sends (tests of throttling and timeouts)
        self.injected_errors: list[ProviderError] = []
        config.log_path.parent.mkdir(parents=True, exist_ok=True)

    # -- the provider interface -----------------------------------------------------------
    def send(self, sms: OutboundSms) -> SendResult:
        now = clock.now()
        with self._lock:
            if self.injected_errors:
                raise self.injected_errors.pop(0)
            if sms.to_number in self.invalid_numbers:
                raise ProviderError(ErrorKind.PERMANENT, "ValidationException", "invalid")
            if sms.to_number in self.carrier_opted_out:
                raise ProviderError(
                    ErrorKind.PERMANENT, "ConflictException", "opted_out", carrier_opt_out=True
                )
            second = int(now.timestamp())
            if self._per_second[second] >= self.config.messages_per_second:
                self.rejected += 1
                raise ProviderError(
                    ErrorKind.THROTTLED, "ThrottlingException", "messages per second exceeded"
                )
            self._per_second[second] += 1
            self.accepted += 1
            provider_id = self.next_provider_id()
            self._next_id += 1
            self._append_log(now, sms, provider_id)
            self._schedule_receipt(now, sms, provider_id)
            if sms.to_number in self.timeouts:
                # The message left and will be reported on; only the answer to us was lost.
                raise ProviderError(ErrorKind.AMBIGUOUS, "ReadTimeoutError", "timeout")
            if self.reply_script is not None and (reply := self.reply_script(sms)) is not None:
                self._schedule_reply(now, sms.to_number, reply, provider_id)
        return SendResult(provider_message_id=provider_id)

    def next_provider_id(self) -> str:
        """The id the next accepted send gets (ids are sequential, so tests can predict them)."""
        return f"sim-{self._next_id:012d}"

    def sync_opt_out(self, phone: str, opted_out: bool) -> bool:
        """Like End User Messaging's opt-out list: sends to a listed number are refused."""
        with self._lock:
            if opted_out:
                self.carrier_opted_out.add(phone)
            else:
                self.carrier_opted_out.discard(phone)
        return True

    # -- what the runtime pulls -------------------------------------------------------------
    def due_events(self, now: datetime) -> list[SimulatedEvent]:
        with self._lock:
            due: list[SimulatedEvent] = []
            while self._events and self._events[0].due <= now:
                due.append(heapq.heappop(self._events))
            return due

    def next_event_time(self) -> datetime | None:
        with self._lock:
            return self._events[0].due if self._events else None

    def inbound_payload(
        self, from_number: str, body: str, *, message_id: str | None = None
    ) -> dict[str, Any]:
        """The SNS message End User Messaging publishes for a two-way inbound text."""
        words = body.strip().split()
        return {
            "originationNumber": from_number,
            "destinationNumber": self.config.our_number,
            "messageKeyword": words[0].upper() if words else "",
            "messageBody": body,
            "inboundMessageId": message_id or str(uuid.UUID(int=self._random.getrandbits(128))),
            "previousPublishedMessageId": "",
        }

    # -- measurements -----------------------------------------------------------------------
    def max_per_second(self) -> int:
        with self._lock:
            return max(self._per_second.values(), default=0)

    def log_entries(self) -> list[dict[str, Any]]:
        if not self.config.log_path.exists():
            return []
        with self.config.log_path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    # -- internals --------------------------------------------------------------------------
    def _append_log(self, now: datetime, sms: OutboundSms, provider_id: str) -> None:
        entry = {
            "ts": now.isoformat(),
            "to": sms.to_number,
            "body": sms.body,
            "message_id": sms.message_id,
            "campaign_id": sms.campaign_id,
            "message_class": sms.message_class,
            "provider_message_id": provider_id,
        }
        with self.config.log_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def _delay(self, bounds: tuple[float, float]) -> timedelta:
        return timedelta(seconds=self._random.uniform(*bounds))

    def _push(self, due: datetime, kind: Literal["receipt", "inbound"], payload: dict[str, Any]) -> None:
        heapq.heappush(self._events, SimulatedEvent(due=due, seq=next(self._seq), kind=kind, payload=payload))

    def _schedule_receipt(self, now: datetime, sms: OutboundSms, provider_id: str) -> None:
        failed = sms.to_number in self.dead_numbers or self._random.random() < self.config.failure_share
        if sms.to_number in self.dead_numbers:
            event_type = "TEXT_INVALID"
        elif failed:
            event_type = self._random.choice(self.config.failure_events)
        else:
            event_type = "TEXT_DELIVERED"
        due = now + self._delay(self.config.delivery_delay_seconds)
        self._push(due, "receipt", self.delivery_event(sms, provider_id, event_type, sent=now, at=due))

    def delivery_event(
        self, sms: OutboundSms, provider_id: str, event_type: str, *, sent: datetime, at: datetime
    ) -> dict[str, Any]:
        """The End User Messaging event-destination record for one message."""
        failed = event_type != "TEXT_DELIVERED"
        status = FAILURE_EVENTS[event_type][0] if failed else "DELIVERED"
        context = {"message_id": sms.message_id}
        if sms.campaign_id:
            context["campaign_id"] = sms.campaign_id
        return {
            "eventType": event_type,
            "eventVersion": "1.0",
            "eventTimestamp": int(at.timestamp() * 1000),
            "isFinal": True,
            "originationPhoneNumber": self.config.our_number,
            "destinationPhoneNumber": sms.to_number,
            "isoCountryCode": "US",
            "messageId": provider_id,
            "messageRequestTimestamp": int(sent.timestamp() * 1000),
            "messageEncoding": "GSM",
            "messageType": sms.message_class.upper(),
            "messageStatus": status,
            "messageStatusDescription": "Message has been accepted by phone" if not failed else event_type,
            "totalMessageParts": 1,
            "totalMessagePrice": 0.00581,
            "totalCarrierFee": 0.00302,
            "context": context,
        }

    def _schedule_reply(self, now: datetime, from_number: str, body: str, in_reply_to: str) -> None:
        payload = self.inbound_payload(from_number, body)
        payload["previousPublishedMessageId"] = in_reply_to
        self._push(now + self._delay(self.config.reply_delay_seconds), "inbound", payload)


_installed: CarrierSimulator | None = None


def install(simulator: CarrierSimulator | None) -> None:
    global _installed
    _installed = simulator


def get_simulator() -> CarrierSimulator:
    if _installed is None:
        raise RuntimeError(
            "no carrier simulator installed: the simulator provider exists only in the local runtime"
        )
    return _installed
