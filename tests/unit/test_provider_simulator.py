"""The carrier simulator passes the same contract as the real providers, plus its own promises."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consentry import clock
from consentry.domain.messages import DeliveryReceipt, InboundMessage
from consentry.providers.base import ErrorKind, OutboundSms, ProviderError, SmsProvider
from consentry.providers.eum import parse_eum_event, parse_eum_inbound
from consentry.providers.simulator import CarrierSimulator, SimulatorConfig
from tests.unit.provider_contract import Failure, ProviderContract, ReceiptOutcomeName, outbound

NOW = datetime(2026, 11, 24, 15, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock() -> object:
    clock.set_source(lambda: NOW)
    yield
    clock.reset()


class TestSimulatorContract(ProviderContract):
    def make_provider(self) -> SmsProvider:
        import tempfile

        self.simulator = CarrierSimulator(SimulatorConfig(log_path=Path(tempfile.mkdtemp()) / "log.jsonl"))
        return self.simulator

    def script_success(self, sms: OutboundSms) -> str:
        self.simulator.config.messages_per_second = 20
        for numbers in (
            self.simulator.invalid_numbers,
            self.simulator.carrier_opted_out,
            self.simulator.timeouts,
        ):
            numbers.discard(sms.to_number)
        return self.simulator.next_provider_id()

    def script_failure(self, sms: OutboundSms, failure: Failure) -> None:
        if failure == "throttled":
            self.simulator.config.messages_per_second = 0
        elif failure == "permanent":
            self.simulator.invalid_numbers.add(sms.to_number)
        elif failure == "carrier_opt_out":
            self.simulator.carrier_opted_out.add(sms.to_number)
        else:
            self.simulator.timeouts.add(sms.to_number)

    def carried_ids(self) -> dict[str, str | None]:
        last = self.simulator.log_entries()[-1]
        return {"message_id": last["message_id"], "campaign_id": last["campaign_id"]}

    def inbound_payload(
        self, *, provider_message_id: str, from_number: str, to_number: str, body: str
    ) -> object:
        payload = self.simulator.inbound_payload(from_number, body, message_id=provider_message_id)
        payload["destinationNumber"] = to_number
        return payload

    def parse_inbound(self, payload: object) -> InboundMessage:
        return parse_eum_inbound(payload)  # type: ignore[arg-type]

    def receipt_payload(
        self, *, provider_message_id: str, sms: OutboundSms, outcome: ReceiptOutcomeName
    ) -> object:
        event_type = "TEXT_DELIVERED" if outcome == "delivered" else "TEXT_INVALID"
        return self.simulator.delivery_event(sms, provider_message_id, event_type, sent=NOW, at=NOW)

    def parse_receipt(self, payload: object) -> DeliveryReceipt:
        return parse_eum_event(payload)  # type: ignore[arg-type]

    def payload_provider_name(self, provider: SmsProvider) -> str:
        return "eum"  # the simulator speaks End User Messaging's wire format


def _simulator(tmp_path: Path, **config: object) -> CarrierSimulator:
    return CarrierSimulator(SimulatorConfig(log_path=tmp_path / "log.jsonl", **config))  # type: ignore[arg-type]


def test_rate_limit_refuses_the_excess_within_a_second_and_measures_it(tmp_path: Path) -> None:
    simulator = _simulator(tmp_path, messages_per_second=3)
    for index in range(3):
        simulator.send(outbound(message_id=f"m{index}"))
    with pytest.raises(ProviderError) as refused:
        simulator.send(outbound(message_id="m3"))
    assert refused.value.kind is ErrorKind.THROTTLED
    assert simulator.max_per_second() == 3
    assert simulator.rejected == 1
    clock.set_source(lambda: NOW + timedelta(seconds=1))
    simulator.send(outbound(message_id="m4"))
    assert len(simulator.log_entries()) == 4


def test_receipts_come_back_after_the_delay_and_failures_follow_the_share(tmp_path: Path) -> None:
    simulator = _simulator(tmp_path, failure_share=1.0, delivery_delay_seconds=(5.0, 5.0))
    simulator.send(outbound())
    assert simulator.due_events(NOW) == []
    (event,) = simulator.due_events(NOW + timedelta(seconds=5))
    receipt = parse_eum_event(event.payload)
    assert receipt.status == "failed"
    assert receipt.message_id == "msg-0001"


def test_scripted_replies_arrive_as_inbound_texts(tmp_path: Path) -> None:
    simulator = _simulator(tmp_path, reply_delay_seconds=(10.0, 10.0))
    simulator.reply_script = lambda sms: "STOP" if sms.message_class == "promotional" else None
    simulator.send(outbound())
    events = simulator.due_events(NOW + timedelta(seconds=60))
    replies = [parse_eum_inbound(e.payload) for e in events if e.kind == "inbound"]
    assert [(r.from_number, r.body) for r in replies] == [("+14255550182", "STOP")]


def test_the_log_records_every_accepted_send_with_our_id(tmp_path: Path) -> None:
    simulator = _simulator(tmp_path)
    simulator.send(outbound(message_id="ours-1"))
    (entry,) = simulator.log_entries()
    assert entry["message_id"] == "ours-1"
    assert entry["to"] == "+14255550182"
    assert entry["ts"] == NOW.isoformat()
    assert entry["body"].startswith("Spring sale")
