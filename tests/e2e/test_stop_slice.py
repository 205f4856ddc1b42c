"""The vertical slice: an inbound STOP from provider webhook to committed opt-out and one confirmation."""

import base64
import hashlib
import hmac
import json
from urllib.parse import urlencode

from consentry_local.runtime import LocalRuntime
from tests.e2e.helpers import contact, conversation, ledger, sent_to, table_items

PHONE = "+12125550142"


def test_end_user_messaging_stop_commits_opt_out_and_confirms_once(runtime: LocalRuntime) -> None:
    payload = runtime.text_in(PHONE, "STOP")
    runtime.run_until_idle()

    record = contact(PHONE)
    assert record is not None
    assert record.consent.opted_out
    entries = ledger(PHONE)
    assert [e.kind for e in entries] == ["opt_out"]
    assert entries[0].evidence["reference"] == f"eum:{payload['inboundMessageId']}"
    assert entries[0].evidence["text"] == "STOP"
    replies = sent_to(runtime, PHONE)
    assert len(replies) == 1
    assert "unsubscribed" in replies[0]["body"]
    assert "START" in replies[0]["body"]
    assert [item["intent"] for item in conversation(PHONE)] == ["opt_out"]
    assert PHONE in runtime.simulator.carrier_opted_out  # mirrored at the provider: a second lock


def test_redelivered_webhook_changes_nothing_and_sends_nothing(runtime: LocalRuntime) -> None:
    payload = runtime.text_in(PHONE, "STOP")
    runtime.run_until_idle()
    runtime.publish("InboundSmsTopic", payload)  # SNS delivers the same notification again
    runtime.run_until_idle()

    assert len(ledger(PHONE)) == 1
    assert len(sent_to(runtime, PHONE)) == 1
    assert len(conversation(PHONE)) == 1


def test_repeated_stop_while_opted_out_sends_no_second_confirmation(runtime: LocalRuntime) -> None:
    runtime.text_in(PHONE, "STOP")
    runtime.run_until_idle()
    runtime.advance(60)
    runtime.text_in(PHONE, "STOP")
    runtime.run_until_idle()

    assert [e.outcome for e in ledger(PHONE)] == ["applied", "unchanged"]
    assert len(sent_to(runtime, PHONE)) == 1


def _twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    # Computed independently of the production code: URL + each name and value, sorted by name.
    data = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _twilio_params(body: str, sid: str = "SM" + "a" * 32) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "AccountSid": "AC" + "b" * 32,
        "From": PHONE,
        "To": "+12025550100",
        "Body": body,
    }


def test_twilio_stop_with_valid_signature_is_committed(runtime: LocalRuntime) -> None:
    params = _twilio_params("Stop")
    url = f"{runtime.base_url}/webhooks/twilio/inbound"
    signature = _twilio_signature("local-twilio-auth-token", url, params)
    response = runtime.http(
        "POST",
        "/v1/webhooks/twilio/inbound",
        body=urlencode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )
    assert response.status == 200, response.body
    assert "<Response" in response.body
    runtime.run_until_idle()
    record = contact(PHONE)
    assert record is not None
    assert record.consent.opted_out
    assert len(sent_to(runtime, PHONE)) == 1


def test_forged_twilio_webhook_is_refused_and_stores_nothing(runtime: LocalRuntime) -> None:
    params = _twilio_params("STOP")
    forged = _twilio_signature("not-the-token", f"{runtime.base_url}/webhooks/twilio/inbound", params)
    response = runtime.http(
        "POST",
        "/v1/webhooks/twilio/inbound",
        body=urlencode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": forged},
    )
    assert response.status == 403
    runtime.run_until_idle()
    assert contact(PHONE) is None
    assert table_items(runtime, "MessagesTable") == []
    assert runtime.simulator.log_entries() == []


def test_malformed_and_invalid_webhooks_get_400_with_reason(runtime: LocalRuntime) -> None:
    url = f"{runtime.base_url}/webhooks/twilio/inbound"
    for params in (
        {"MessageSid": "SM1", "To": "+12025550100", "Body": "STOP"},  # no From
        {**_twilio_params("STOP"), "From": "not a number"},
    ):
        response = runtime.http(
            "POST",
            "/v1/webhooks/twilio/inbound",
            body=urlencode(params),
            headers={"X-Twilio-Signature": _twilio_signature("local-twilio-auth-token", url, params)},
        )
        assert response.status == 400, response.body
        assert json.loads(response.body)["error"]
    runtime.run_until_idle()
    assert table_items(runtime, "ContactsTable") == []
    assert table_items(runtime, "MessagesTable") == []


def test_unprocessable_sns_notification_lands_in_the_dead_letter_queue_with_its_cause(
    runtime: LocalRuntime,
) -> None:
    runtime.publish("InboundSmsTopic", {"messageBody": "STOP"})  # no numbers, no id
    runtime.run_until_idle()
    dead = runtime.dead_letters("InboundDLQ")
    assert len(dead) == 1
    assert dead[0]["MessageAttributes"]["ErrorMessage"]["StringValue"]
    assert json.loads(dead[0]["Body"])["Records"][0]["Sns"]["Message"] == json.dumps({"messageBody": "STOP"})
    assert table_items(runtime, "ContactsTable") == []


def test_consumer_failure_is_retried_then_dead_lettered_never_dropped(runtime: LocalRuntime) -> None:
    runtime.client("sqs").send_message(
        QueueUrl=runtime.queue_url("StopQueue"), MessageBody='{"not": "a handoff"}'
    )
    runtime.run_until_idle()
    stop_attempts = [i for i in runtime.invocations if i.function == "StopFunction"]
    assert len(stop_attempts) == 5  # maxReceiveCount in template.yaml
    dead = runtime.dead_letters("StopDLQ")
    assert [m["Body"] for m in dead] == ['{"not": "a handoff"}']
    assert runtime.queue_depth("StopQueue") == 0


def test_confirmation_throttled_beyond_backoff_is_sent_once_on_the_retry(runtime: LocalRuntime) -> None:
    from consentry.providers.base import ErrorKind, ProviderError

    throttle = ProviderError(ErrorKind.THROTTLED, "ThrottlingException", "throttled")
    runtime.simulator.injected_errors.extend([throttle] * 6)  # every backoff attempt of the first delivery
    runtime.text_in(PHONE, "STOP")
    runtime.run_until_idle()

    stop_invocations = [i for i in runtime.invocations if i.function == "StopFunction"]
    assert len(stop_invocations) == 2  # the hand-off failed once, came back after the visibility timeout
    assert len(ledger(PHONE)) == 1
    assert len(sent_to(runtime, PHONE)) == 1
    assert runtime.dead_letters("StopDLQ") == []
