"""The behaviour every SmsProvider must show, run against each one.

Use: in a provider's test module,

    class TestMyProviderContract(ProviderContract):
        def make_provider(self) -> SmsProvider: ...
        ... implement every abstract harness method ...

pytest makes a fresh instance per test, so a harness may keep its fakes on `self`
(create them in `make_provider`, which each test calls exactly once, first).
The base class is not named Test*, so it is only collected through subclasses.
Examples: TestEumContract in test_provider_eum.py, TestTwilioContract in test_provider_twilio.py.
"""

from abc import ABC, abstractmethod
from typing import Literal

import pytest

from consentry.domain.messages import DeliveryReceipt, DeliveryStatus, InboundMessage
from consentry.domain.phone import normalize
from consentry.providers.base import ErrorKind, OutboundSms, ProviderError, SmsProvider
from consentry.providers.errors import NUMBER_DEAD_REASONS

Failure = Literal["throttled", "permanent", "carrier_opt_out", "ambiguous"]
ReceiptOutcomeName = Literal["delivered", "permanent_failure"]

CUSTOMER = "+14255550182"
OUR_NUMBER = "+12065550152"

EXPECTED_KIND: dict[Failure, ErrorKind] = {
    "throttled": ErrorKind.THROTTLED,
    "permanent": ErrorKind.PERMANENT,
    "carrier_opt_out": ErrorKind.PERMANENT,
    "ambiguous": ErrorKind.AMBIGUOUS,
}


def outbound(*, campaign_id: str | None = "cmp-spring", message_id: str = "msg-0001") -> OutboundSms:
    return OutboundSms(
        message_id=message_id,
        to_number=CUSTOMER,
        body="Spring sale: 20% off today. Reply STOP to opt out",
        message_class="promotional",
        campaign_id=campaign_id,
    )


class ProviderContract(ABC):
    # --- harness: each provider's test module implements these ---------------------------------

    @abstractmethod
    def make_provider(self) -> SmsProvider:
        """A provider wired to fakes; called once per test, before anything else."""

    @abstractmethod
    def script_success(self, sms: OutboundSms) -> str:
        """Make the next send of `sms` succeed; return the provider message id it will report."""

    @abstractmethod
    def script_failure(self, sms: OutboundSms, failure: Failure) -> None:
        """Make the next send of `sms` fail the way `failure` names.

        throttled: the provider refused for now; permanent: the number is invalid;
        carrier_opt_out: the recipient opted out at the provider; ambiguous: the request may
        have gone out (timeout after sending, 5xx).
        """

    @abstractmethod
    def carried_ids(self) -> dict[str, str | None]:
        """Our ids as the last send handed them to the provider: {"message_id", "campaign_id"}."""

    @abstractmethod
    def inbound_payload(
        self, *, provider_message_id: str, from_number: str, to_number: str, body: str
    ) -> object:
        """What the provider delivers for one inbound text."""

    @abstractmethod
    def parse_inbound(self, payload: object) -> InboundMessage: ...

    @abstractmethod
    def receipt_payload(
        self, *, provider_message_id: str, sms: OutboundSms, outcome: ReceiptOutcomeName
    ) -> object:
        """What the provider reports for `sms`: delivered, or failed because the number is dead."""

    @abstractmethod
    def parse_receipt(self, payload: object) -> DeliveryReceipt: ...

    def payload_provider_name(self, provider: SmsProvider) -> str:
        """The `provider` field parsed payloads carry; a simulator speaking another provider's
        wire format (End User Messaging JSON, say) overrides this with that provider's name."""
        return provider.name

    def finish(self) -> None:  # noqa: B027 - optional hook
        """Check the fakes were used up (optional)."""

    def teardown_method(self) -> None:
        self.finish()

    # --- the contract ----------------------------------------------------------------------------

    def test_send_returns_the_provider_id_and_carries_our_ids(self) -> None:
        provider = self.make_provider()
        sms = outbound()
        expected_id = self.script_success(sms)
        result = provider.send(sms)
        assert result.provider_message_id == expected_id
        assert self.carried_ids() == {"message_id": sms.message_id, "campaign_id": sms.campaign_id}

    def test_send_without_campaign_carries_only_the_message_id(self) -> None:
        provider = self.make_provider()
        sms = outbound(campaign_id=None, message_id="msg-transactional-7")
        self.script_success(sms)
        provider.send(sms)
        assert self.carried_ids() == {"message_id": "msg-transactional-7", "campaign_id": None}

    def test_consecutive_sends_get_their_own_ids(self) -> None:
        provider = self.make_provider()
        first, second = outbound(message_id="msg-a"), outbound(message_id="msg-b")
        first_id = self.script_success(first)
        assert provider.send(first).provider_message_id == first_id
        second_id = self.script_success(second)
        assert provider.send(second).provider_message_id == second_id
        assert self.carried_ids()["message_id"] == "msg-b"

    @pytest.mark.parametrize("failure", ["throttled", "permanent", "carrier_opt_out", "ambiguous"])
    def test_failures_are_classified(self, failure: Failure) -> None:
        provider = self.make_provider()
        sms = outbound()
        self.script_failure(sms, failure)
        with pytest.raises(ProviderError) as raised:
            provider.send(sms)
        assert raised.value.kind is EXPECTED_KIND[failure]
        assert raised.value.carrier_opt_out is (failure == "carrier_opt_out")
        assert raised.value.code
        # Reasons are normalised tokens: never the provider's text, which can quote the number.
        assert CUSTOMER not in str(raised.value)

    def test_a_failure_does_not_poison_the_next_send(self) -> None:
        provider = self.make_provider()
        sms = outbound()
        self.script_failure(sms, "throttled")
        with pytest.raises(ProviderError):
            provider.send(sms)
        expected_id = self.script_success(sms)
        assert provider.send(sms).provider_message_id == expected_id

    def test_inbound_is_normalised(self) -> None:
        provider = self.make_provider()
        payload = self.inbound_payload(
            provider_message_id="in-42", from_number=CUSTOMER, to_number=OUR_NUMBER, body="Stop sending these"
        )
        message = self.parse_inbound(payload)
        assert message.provider == self.payload_provider_name(provider)
        assert message.provider_message_id == "in-42"
        assert message.from_number == normalize(CUSTOMER)
        assert message.to_number == normalize(OUR_NUMBER)
        assert message.body == "Stop sending these"
        assert message.received_at.tzinfo is not None

    def test_delivered_receipt_finds_our_message(self) -> None:
        provider = self.make_provider()
        sms = outbound()
        receipt = self.parse_receipt(
            self.receipt_payload(provider_message_id="prov-9", sms=sms, outcome="delivered")
        )
        assert receipt.provider == self.payload_provider_name(provider)
        assert receipt.provider_message_id == "prov-9"
        assert receipt.message_id == sms.message_id
        assert receipt.campaign_id == sms.campaign_id
        assert receipt.status is DeliveryStatus.DELIVERED
        assert not receipt.permanent
        assert receipt.reason is None

    def test_dead_number_receipt_is_a_permanent_failure(self) -> None:
        self.make_provider()
        sms = outbound(campaign_id=None)
        receipt = self.parse_receipt(
            self.receipt_payload(provider_message_id="prov-10", sms=sms, outcome="permanent_failure")
        )
        assert receipt.status is DeliveryStatus.FAILED
        assert receipt.permanent
        assert receipt.reason in NUMBER_DEAD_REASONS
        assert receipt.message_id == sms.message_id
        assert receipt.campaign_id is None
        assert receipt.error_code
