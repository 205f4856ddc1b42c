"""Transactional sends end to end: POST /messages and `consentry send` through the local runtime."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from consentry import admin_client
from consentry.cli import main
from consentry.providers.base import ErrorKind, ProviderError
from consentry.store import sends
from consentry_local.runtime import LocalRuntime
from tests.e2e.helpers import RuntimeAdminClient, contact
from tests.e2e.test_sender_support import stop, subscribe

PHONE = "+12122010042"
OTHER = "+12122010043"


def post(runtime: LocalRuntime, **body: Any) -> Any:
    request = {
        "to": PHONE,
        "topic": "alerts",
        "idempotency_key": "order-1042",
        "body": "Order 1042 shipped.",
        **body,
    }
    return runtime.http(
        "POST", "/v1/messages", body=json.dumps(request), headers={"Content-Type": "application/json"}
    )


def texts_to(runtime: LocalRuntime, phone: str = PHONE) -> list[str]:
    return [entry["body"] for entry in runtime.simulator.log_entries() if entry["to"] == phone]


def test_a_subscriber_gets_the_message_once_and_a_repeat_returns_the_first_result(
    runtime: LocalRuntime,
) -> None:
    subscribe([PHONE], "alerts")
    first = post(runtime)
    assert first.status == 201, first.body
    result = first.json()
    assert result["state"] == "sent"
    assert result["repeated"] is False
    assert result["provider_message_id"].startswith("sim-")
    assert result["to"] != PHONE  # masked
    assert texts_to(runtime) == ["Order 1042 shipped."]  # transactional: no opt-out footer added

    again = post(runtime)
    assert again.status == 200
    assert again.json() == {**result, "repeated": True}
    assert len(texts_to(runtime)) == 1

    shown = runtime.http("GET", f"/v1/messages/{result['message_id']}")
    assert shown.status == 200
    assert shown.json()["state"] == "sent"
    assert "body" not in shown.json()
    assert runtime.http("GET", "/v1/messages/t_nothing").status == 404


def test_the_delivery_receipt_raises_the_status(runtime: LocalRuntime) -> None:
    subscribe([PHONE], "alerts")
    message_id = post(runtime).json()["message_id"]
    runtime.run_until_idle(max_virtual=timedelta(minutes=5))
    record = sends.message_record(message_id)
    assert record is not None
    assert record.status == "delivered"


def test_the_same_key_for_another_recipient_is_a_conflict(runtime: LocalRuntime) -> None:
    subscribe([PHONE, OTHER], "alerts")
    assert post(runtime).status == 201
    conflict = post(runtime, to=OTHER)
    assert conflict.status == 409
    assert "idempotency_key" in conflict.json()["error"]
    assert texts_to(runtime, OTHER) == []


@pytest.mark.parametrize(
    ("setup", "reason"),
    [("nothing", "no_consent"), ("stopped", "opted_out"), ("deals only", "no_consent")],
)
def test_the_gate_refuses_with_its_reason_and_records_nothing(
    runtime: LocalRuntime, setup: str, reason: str
) -> None:
    if setup == "stopped":
        subscribe([PHONE], "alerts")
        stop(PHONE)
    elif setup == "deals only":
        subscribe([PHONE], "deals")
    refused = post(runtime)
    assert refused.status == 422
    assert refused.json()["reason"] == reason
    assert texts_to(runtime) == []
    assert sends.message_record(sends.keyed_message_id("order-1042")) is None


def test_at_night_it_says_when_and_the_same_key_works_in_the_morning(tmp_path: Path) -> None:
    night = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # 02:00 in New York
    with LocalRuntime(tmp_path, start=night) as runtime:
        subscribe([PHONE], "alerts")
        refused = post(runtime)
        assert refused.status == 422
        assert refused.json()["reason"] == "window:federal_window"
        assert refused.json()["next_allowed"] == "2026-11-24T13:00:00+00:00"  # 08:00 local
        runtime.clock.advance_to(datetime(2026, 11, 24, 13, 0, tzinfo=UTC))
        assert post(runtime).status == 201
        assert len(texts_to(runtime)) == 1


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"topic": "deals"}, 400, "promotional"),
        ({"topic": "parcels"}, 400, "unknown topic"),
        ({"to": "12"}, 400, "phone number"),
        ({"template": "Hi {name"}, 422, "exactly one"),
        ({"idempotency_key": ""}, 422, "idempotency_key"),
        ({"reply_options": {"11": "confirm"}}, 422, "reply_options"),
    ],
)
def test_bad_requests_get_a_clear_reason(
    runtime: LocalRuntime, body: dict[str, Any], status: int, fragment: str
) -> None:
    subscribe([PHONE], "alerts")
    response = post(runtime, **body)
    assert response.status == status, response.body
    assert fragment in response.json()["error"]
    assert texts_to(runtime) == []


def test_a_template_is_rendered_with_the_requests_attributes(runtime: LocalRuntime) -> None:
    subscribe([PHONE], "alerts")
    response = post(
        runtime,
        body=None,
        template="Hi {first_name|there}, see you {when}.",
        attributes={"when": "Tue 10:00"},
    )
    assert response.status == 201, response.body
    assert texts_to(runtime) == ["Hi there, see you Tue 10:00."]
    missing = post(runtime, body=None, template="Your code is {code}", idempotency_key="code-1")
    assert missing.status == 422
    assert missing.json()["reason"] == "missing_attribute"


def test_a_dead_number_fails_and_is_marked_undeliverable(runtime: LocalRuntime) -> None:
    subscribe([PHONE], "alerts")
    runtime.simulator.invalid_numbers.add(PHONE)
    failed = post(runtime)
    assert failed.status == 201
    assert failed.json()["state"] == "failed"
    assert failed.json()["reason"] == "invalid"
    record = contact(PHONE)
    assert record is not None
    assert record.undeliverable is not None
    next_one = post(runtime, idempotency_key="order-1043")
    assert next_one.status == 422
    assert next_one.json()["reason"] == "undeliverable"


def test_a_provider_that_keeps_throttling_gets_503_and_the_same_key_sends_later(
    runtime: LocalRuntime,
) -> None:
    subscribe([PHONE], "alerts")
    runtime.simulator.injected_errors.extend(
        ProviderError(ErrorKind.THROTTLED, "ThrottlingException", "throttled") for _ in range(6)
    )
    busy = post(runtime)
    assert busy.status == 503
    assert busy.headers["Retry-After"] == "5"
    assert texts_to(runtime) == []
    runtime.advance(5)
    assert post(runtime).status == 201
    assert len(texts_to(runtime)) == 1


@pytest.fixture
def bus_observer(runtime: LocalRuntime) -> Any:
    events, sqs = runtime.client("events"), runtime.client("sqs")
    queue_url = sqs.create_queue(QueueName="reply-observer")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bus = runtime.stack.physical["EventBus"]["Ref"]
    pattern = {"source": ["consentry"], "detail-type": ["ReplyMatched"]}
    events.put_rule(Name="replies", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="replies", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])

    def received() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(message["Body"])["detail"] for message in messages]

    return received


def test_a_one_digit_reply_is_matched_to_the_reminder_and_published(
    runtime: LocalRuntime, bus_observer: Any
) -> None:
    subscribe([PHONE], "alerts")
    reminder = post(
        runtime,
        body="Reminder: dentist tomorrow 10:00. Reply 1 to confirm, 2 to cancel.",
        idempotency_key="appt-77",
        reply_options={"1": "confirm", "2": "cancel"},
    )
    assert reminder.status == 201
    assert reminder.json()["reply_options"] == {"1": "confirm", "2": "cancel"}
    runtime.advance(600)
    runtime.text_in(PHONE, " 2. ")
    runtime.run_until_idle()
    matched = bus_observer()
    assert len(matched) == 1
    assert matched[0]["message_id"] == reminder.json()["message_id"]
    assert matched[0]["option"] == "2"
    assert matched[0]["action"] == "cancel"
    assert matched[0]["from"] == PHONE

    runtime.text_in(OTHER, "1")  # no reminder for this number
    runtime.text_in(PHONE, "3")  # not an option
    runtime.text_in(PHONE, "1 please call me")  # not a one-digit reply
    runtime.run_until_idle()
    assert bus_observer() == []


def test_reply_options_expire_after_48_hours(runtime: LocalRuntime, bus_observer: Any) -> None:
    subscribe([PHONE], "alerts")
    post(runtime, idempotency_key="appt-78", reply_options={"1": "confirm"})
    runtime.clock.advance(48 * 3600 + 1)
    runtime.text_in(PHONE, "1")
    runtime.run_until_idle()
    assert bus_observer() == []


def test_consentry_send_cli_sends_once_and_prints_the_result(
    runtime: LocalRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    subscribe([PHONE], "alerts")
    admin_client.use_client(lambda _url: RuntimeAdminClient(runtime))
    try:
        arguments = [
            "send", "--to", "(212) 201-0042", "--topic", "alerts", "--idempotency-key", "ship-9",
            "--template", "Hi {first_name|there}, order {order} shipped.", "--attr", "order=9",
        ]  # fmt: skip
        assert main(arguments) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed["state"] == "sent"
        assert main(arguments) == 0
        assert json.loads(capsys.readouterr().out)["repeated"] is True
        assert texts_to(runtime) == ["Hi there, order 9 shipped."]

        assert (
            main(["send", "--to", OTHER, "--topic", "alerts", "--idempotency-key", "x", "--body", "Hi"]) == 2
        )
        error = capsys.readouterr().err
        assert error.startswith("consentry: error: not sent (422)")
        assert "no_consent" in error
        assert (
            main(
                [
                    "send",
                    "--to",
                    PHONE,
                    "--topic",
                    "alerts",
                    "--idempotency-key",
                    "y",
                    "--body",
                    "Hi",
                    "--attr",
                    "a=1",
                ]
            )
            == 2
        )
        assert "--attr goes with --template" in capsys.readouterr().err
    finally:
        admin_client.use_client(None)
