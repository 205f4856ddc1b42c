"""Delivery receipts through the real paths (event destination topic -> ReceiptsQueue, signed Twilio
callbacks) on moto:
monotonic status, duplicates, reordering, unknown messages, each provider's vocabulary, dead numbers,
carrier opt-outs, counters."""

import base64
import hashlib
import hmac
import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from consentry import clock
from consentry.domain.consent import ChangeKind, ConsentChange, Evidence
from consentry.domain.messages import DeliveryReceipt, DeliveryStatus
from consentry.services.consent import commit_change
from consentry.services.receipts import ReceiptBeforeRecord, ReceiptInput, process_receipts
from consentry.store import codec, counters, messages
from consentry_local.runtime import LocalRuntime
from tests.conftest import START
from tests.e2e.helpers import contact, ledger, sent_to

TWILIO_TOKEN = "local-twilio-auth-token"
_numbering = itertools.count()

# One runtime for the module (starting one costs seconds); each test has its own number,
# campaign and message ids, so tests see only their own records and counters.
PHONE = ""
CAMPAIGN = ""


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    local = LocalRuntime(tmp_path_factory.mktemp("receipts"), start=START)
    local.start()
    # These tests apply receipts one at a time, in the order they publish them: no batching
    # window here (test_receipts_queue.py covers batches and the window).
    for source in local.queue_sources:
        if source.function == "ReceiptsFunction":
            source.batching_window = 0
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def runtime(shared: LocalRuntime) -> LocalRuntime:
    global PHONE, CAMPAIGN
    number = next(_numbering)
    PHONE = f"+121255501{number:02d}"
    CAMPAIGN = f"cmp_receipts_{number}"
    return shared


def deliver(runtime: LocalRuntime, event: dict[str, Any] | str) -> None:
    """End User Messaging publishes `event`; the receipts function takes it from its queue."""
    runtime.publish("DeliveryEventsTopic", event)
    runtime.pump_queues()


def mid(name: str) -> str:
    """This test's message id for `name`."""
    return f"{CAMPAIGN}-{name}"


def put_message(
    runtime: LocalRuntime,
    name: str,
    *,
    sent_at: datetime | None = None,
    created_at: datetime | None = None,
) -> None:
    """A message record as the sender writes it (store/sends.py layout)."""
    sent = sent_at or clock.now()
    message_id = mid(name)
    item: dict[str, Any] = {
        "pk": f"MSG#{message_id}",
        "sk": "MSG",
        "message_id": message_id,
        "phone": PHONE,
        "kind": "campaign",
        "campaign_id": CAMPAIGN,
        "topic": "deals",
        "message_class": "promotional",
        "state": "sent",
        "status": "sent",
        "provider_message_id": f"prov-{message_id}",
        "sent_at": sent.isoformat(),
        "created_at": (created_at or sent).isoformat(),
        "segments": 1,
        "encoding": "GSM-7",
        "expires_at": int((sent + timedelta(days=90)).timestamp()),
    }
    runtime.client("dynamodb").put_item(
        TableName=runtime.table_name("MessagesTable"), Item=codec.to_item(item)
    )


def message(name: str) -> dict[str, Any]:
    found = messages.outbound(mid(name))
    assert found is not None
    return found


def eum_event(
    name: str | None,
    event_type: str,
    *,
    at: datetime,
    is_final: bool = True,
    with_campaign: bool = True,
    price: float | None = 0.00581,
    provider_id: str | None = None,
) -> dict[str, Any]:
    """An End User Messaging event-destination record, shaped like the service documents it."""
    message_id = mid(name) if name else None
    context = {}
    if message_id:
        context["message_id"] = message_id
    if with_campaign:
        context["campaign_id"] = CAMPAIGN
    event: dict[str, Any] = {
        "eventType": event_type,
        "eventVersion": "1.0",
        "eventTimestamp": int(at.timestamp() * 1000),
        "isFinal": is_final,
        "originationPhoneNumber": "+12025550100",
        "destinationPhoneNumber": PHONE,
        "messageId": provider_id or f"prov-{message_id}",
        "messageRequestTimestamp": int(at.timestamp() * 1000) - 3000,
        "messageEncoding": "GSM",
        "messageType": "PROMOTIONAL",
        "messageStatus": event_type.removeprefix("TEXT_"),
        "context": context,
        "totalMessageParts": 1,
    }
    if price is not None:
        event["totalMessagePrice"] = price
        event["totalCarrierFee"] = 0.00302
    return event


def twilio_status(
    runtime: LocalRuntime,
    name: str | None,
    status: str,
    *,
    error_code: str | None = None,
    token: str = TWILIO_TOKEN,
    sid: str | None = None,
) -> Any:
    message_id = mid(name) if name else None
    query = f"?mid={message_id}&cid={CAMPAIGN}" if message_id else ""
    params = {
        "MessageSid": sid or "SM" + hashlib.sha256(str(message_id).encode()).hexdigest()[:32],
        "AccountSid": "AC" + "b" * 32,
        "MessageStatus": status,
        "To": PHONE,
        "From": "+12025550100",
        "ApiVersion": "2010-04-01",
    }
    if error_code:
        params["ErrorCode"] = error_code
    url = f"{runtime.base_url}/webhooks/twilio/status{query}"
    signed = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    signature = base64.b64encode(hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()).decode()
    return runtime.http(
        "POST",
        f"/v1/webhooks/twilio/status{query}",
        body=urlencode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )


def subscribed() -> None:
    phone = PHONE
    commit_change(
        phone,
        ConsentChange(
            kind=ChangeKind.OPT_IN,
            scope="deals",
            event_time=clock.now() - timedelta(days=1),
            evidence=Evidence(source="import", reference=f"seed:{phone}"),
        ),
    )


def receipt_counts() -> dict[str, int]:
    return {name: value for name, value in counters.totals(CAMPAIGN).items() if value}


# --- order, duplicates, unknown messages -----------------------------------------------------------


def test_a_late_sent_never_overwrites_delivered_and_counts_once(runtime: LocalRuntime) -> None:
    now = clock.now()
    put_message(runtime, "m1", sent_at=now - timedelta(seconds=4))
    deliver(runtime, eum_event("m1", "TEXT_DELIVERED", at=now))
    deliver(
        runtime,
        eum_event("m1", "TEXT_SUCCESSFUL", at=now - timedelta(seconds=2), is_final=False),
    )
    deliver(runtime, eum_event("m1", "TEXT_PENDING", at=now - timedelta(seconds=3)))

    stored = message("m1")
    assert stored["status"] == "delivered"
    assert stored["delivered_at"] == now.replace(microsecond=0).isoformat()
    assert receipt_counts() == {
        "delivered": 1,
        "week.2026-W48.delivered": 1,
        "ttd_ms_le.5000": 1,
        "cost_micros": 8830,
    }


def test_duplicate_receipts_change_and_count_nothing(runtime: LocalRuntime) -> None:
    put_message(runtime, "m2")
    event = eum_event("m2", "TEXT_DELIVERED", at=clock.now() + timedelta(seconds=3))
    for _ in range(3):
        deliver(runtime, event)
    assert receipt_counts()["delivered"] == 1
    outcome = process_receipts(
        [ReceiptInput(_receipt("m2", DeliveryStatus.DELIVERED))] * 2, retry_unrecorded=True
    )
    assert outcome == {"stale": 2}
    assert receipt_counts()["delivered"] == 1


def test_a_final_word_after_the_providers_unknown_replaces_it(runtime: LocalRuntime) -> None:
    put_message(runtime, "m3")
    now = clock.now()
    deliver(runtime, eum_event("m3", "TEXT_UNKNOWN", at=now + timedelta(hours=72)))
    assert message("m3")["status"] == "unknown"
    assert receipt_counts()["delivery_unknown"] == 1
    deliver(runtime, eum_event("m3", "TEXT_DELIVERED", at=now + timedelta(hours=73)))
    assert message("m3")["status"] == "delivered"
    counts = receipt_counts()
    assert counts.get("delivery_unknown", 0) == 0
    assert counts["delivered"] == 1
    assert counts["cost_micros"] == 8830  # charged once, with the first final-ish report
    assert counts["ttd_ms_le.inf"] == 1


def test_a_failure_never_overwrites_a_delivery(runtime: LocalRuntime) -> None:
    put_message(runtime, "m4")
    deliver(runtime, eum_event("m4", "TEXT_DELIVERED", at=clock.now()))
    deliver(runtime, eum_event("m4", "TEXT_UNREACHABLE", at=clock.now()))
    assert message("m4")["status"] == "delivered"
    assert "failed.unreachable" not in receipt_counts()


def _receipt(name: str, status: DeliveryStatus, *, at: datetime | None = None) -> DeliveryReceipt:
    return DeliveryReceipt(
        provider="eum",
        provider_message_id=f"prov-{mid(name)}",
        message_id=mid(name),
        campaign_id=CAMPAIGN,
        status=status,
        occurred_at=at or clock.now(),
    )


def test_an_old_receipt_for_an_unknown_message_is_kept_counted_once_and_harmless(
    runtime: LocalRuntime,
) -> None:
    old = clock.now() - timedelta(hours=2)
    event = eum_event("never-sent", "TEXT_DELIVERED", at=old)
    deliver(runtime, event)
    deliver(runtime, event)

    orphans = messages.orphan_receipts("eum", f"prov-{mid('never-sent')}")
    assert [(o["status"], o["message_id"], o["campaign_id"]) for o in orphans] == [
        ("delivered", mid("never-sent"), CAMPAIGN)
    ]
    assert receipt_counts() == {"unmatched_receipts": 1}
    assert messages.outbound(mid("never-sent")) is None  # no record is invented
    assert not any(CAMPAIGN in m["Body"] for m in runtime.dead_letters("ReceiptsDLQ"))


def test_a_receipt_that_lost_our_id_is_an_orphan_too(runtime: LocalRuntime) -> None:
    deliver(
        runtime,
        eum_event(None, "TEXT_DELIVERED", at=clock.now(), with_campaign=False, provider_id=f"p-{CAMPAIGN}"),
    )
    assert [o["status"] for o in messages.orphan_receipts("eum", f"p-{CAMPAIGN}")] == ["delivered"]


def test_a_young_receipt_ahead_of_its_record_is_retried_then_applied(runtime: LocalRuntime) -> None:
    receipt = _receipt("m5", DeliveryStatus.DELIVERED)
    with pytest.raises(ReceiptBeforeRecord, match="retry later"):
        process_receipts([ReceiptInput(receipt)], retry_unrecorded=True)
    assert messages.orphan_receipts("eum", f"prov-{mid('m5')}") == []
    put_message(runtime, "m5", sent_at=clock.now() - timedelta(seconds=1))  # the sender's batch lands
    assert process_receipts([ReceiptInput(receipt)], retry_unrecorded=True) == {"applied": 1}
    assert message("m5")["status"] == "delivered"


def test_a_young_receipt_whose_record_never_comes_is_retried_alone_then_kept_as_an_orphan(
    runtime: LocalRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    deliver(runtime, eum_event("m6", "TEXT_DELIVERED", at=clock.now()))
    assert messages.orphan_receipts("eum", f"prov-{mid('m6')}") == []  # not yet: retried first
    runtime.advance(15 * 60)  # the queue's tries, 180 s apart, outlast the record's grace (10 min)
    assert [o["status"] for o in messages.orphan_receipts("eum", f"prov-{mid('m6')}")] == ["delivered"]
    assert receipt_counts() == {"unmatched_receipts": 1}
    assert not any(mid("m6") in m["Body"] for m in runtime.dead_letters("ReceiptsDLQ"))
    causes = [
        cause for cause in refusals(caplog).values() if f"no record yet of message {mid('m6')}" in cause
    ]
    assert len(causes) == 1  # one record, refused at 0, 3, 6 and 9 minutes under the same id
    tries = [r for r in caplog.records if getattr(r, "cause", "").startswith("ReceiptBeforeRecord")]
    assert len(tries) == 4


def refusals(caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """SQS message id -> why the receipts function did not apply it (its log lines)."""
    return {
        record.sqs_message_id: record.cause
        for record in caplog.records
        if record.getMessage() == "receipt not applied; retried alone"
    }


def test_an_unreadable_event_goes_to_the_dlq_with_its_cause_logged_and_other_channels_are_ignored(
    runtime: LocalRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    deliver(runtime, "not json at all " + CAMPAIGN)
    deliver(runtime, {"eventType": "TEXT_DELIVERED", "messageId": f"p1-{CAMPAIGN}"})  # no timestamp
    deliver(runtime, {"eventType": "VOICE_COMPLETED", "messageId": f"p2-{CAMPAIGN}"})
    runtime.advance(20 * 60)  # five tries, 180 s apart, then the queue's redrive
    dead = {m["MessageId"]: m["Body"] for m in runtime.dead_letters("ReceiptsDLQ") if CAMPAIGN in m["Body"]}
    unreadable = json.dumps({"eventType": "TEXT_DELIVERED", "messageId": f"p1-{CAMPAIGN}"})
    assert sorted(dead.values()) == sorted(["not json at all " + CAMPAIGN, unreadable])
    causes = {message_id: cause for message_id, cause in refusals(caplog).items() if message_id in dead}
    assert len(causes) == 2  # SQS keeps the id in the DLQ: the log line names the dead letter
    assert any("message is not JSON" in cause for cause in causes.values())
    assert any("eventTimestamp" in cause for cause in causes.values())


# --- each provider's vocabulary ------------------------------------------------------------------

#: End User Messaging event types -> (status stored on the message, reason) per its documentation.
EUM_VOCABULARY = [
    ("TEXT_DELIVERED", "delivered", None),
    ("TEXT_INVALID", "failed", "invalid"),
    ("TEXT_INVALID_MESSAGE", "failed", "invalid_message"),
    ("TEXT_UNREACHABLE", "failed", "unreachable"),
    ("TEXT_CARRIER_UNREACHABLE", "failed", "carrier_unreachable"),
    ("TEXT_BLOCKED", "failed", "blocked"),
    ("TEXT_CARRIER_BLOCKED", "failed", "carrier_blocked"),
    ("TEXT_SPAM", "failed", "spam"),
    ("TEXT_TTL_EXPIRED", "failed", "ttl_expired"),
    ("TEXT_UNKNOWN", "unknown", "unknown"),
    ("TEXT_SOMETHING_NEW", "unknown", "unknown"),
    ("TEXT_QUEUED", "sent", None),  # lower than what the record already says: no change
    ("TEXT_PENDING", "sent", None),
]


@pytest.mark.parametrize(("event_type", "status", "reason"), EUM_VOCABULARY)
def test_end_user_messaging_event_types(
    runtime: LocalRuntime, event_type: str, status: str, reason: str | None
) -> None:
    put_message(runtime, "mv")
    deliver(runtime, eum_event("mv", event_type, at=clock.now()))
    stored = message("mv")
    assert stored["status"] == status
    assert stored.get("status_reason") == reason
    counts = receipt_counts()
    if status == "failed":
        assert counts[f"failed.{reason}"] == 1
    if status == "sent":
        assert counts == {}


def test_successful_is_delivered_only_when_final(runtime: LocalRuntime) -> None:
    put_message(runtime, "mf")
    deliver(runtime, eum_event("mf", "TEXT_SUCCESSFUL", at=clock.now(), is_final=False))
    assert message("mf")["status"] == "sent"
    deliver(runtime, eum_event("mf", "TEXT_SUCCESSFUL", at=clock.now(), is_final=True))
    assert message("mf")["status"] == "delivered"


#: Twilio MessageStatus (+ ErrorCode) -> (status stored, reason).
TWILIO_VOCABULARY = [
    ("queued", None, "sent", None),
    ("sending", None, "sent", None),
    ("sent", None, "sent", None),
    ("delivered", None, "delivered", None),
    ("read", None, "delivered", None),
    ("undelivered", "30003", "failed", "unreachable"),
    ("undelivered", "30005", "failed", "invalid"),
    ("undelivered", "30006", "failed", "landline"),
    ("undelivered", "30007", "failed", "filtered"),
    ("failed", "30008", "failed", "unknown"),
    ("failed", None, "failed", "unknown"),
    ("canceled", None, "failed", "canceled"),
]


@pytest.mark.parametrize(("twilio", "error_code", "status", "reason"), TWILIO_VOCABULARY)
def test_twilio_statuses(
    runtime: LocalRuntime, twilio: str, error_code: str | None, status: str, reason: str | None
) -> None:
    subscribed()
    put_message(runtime, "mt")
    response = twilio_status(runtime, "mt", twilio, error_code=error_code)
    assert response.status == 200, response.body
    stored = message("mt")
    assert stored["status"] == status
    assert stored.get("status_reason") == reason
    if status != "sent":  # "sent" is where the record starts: nothing moved
        assert stored["receipt_provider"] == "twilio"


def test_twilio_callbacks_need_a_valid_signature(runtime: LocalRuntime) -> None:
    put_message(runtime, "ms")
    forged = twilio_status(runtime, "ms", "undelivered", error_code="30005", token="not-the-token")
    assert forged.status == 403
    assert forged.json() == {"error": "missing or invalid X-Twilio-Signature"}
    assert message("ms")["status"] == "sent"
    unsigned = runtime.http(
        "POST",
        "/v1/webhooks/twilio/status?mid=ms",
        body="MessageSid=SM1&MessageStatus=delivered",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert unsigned.status == 403
    assert message("ms")["status"] == "sent"


def test_a_twilio_callback_for_an_unknown_message_is_kept(runtime: LocalRuntime) -> None:
    sid = "SM" + hashlib.sha256(CAMPAIGN.encode()).hexdigest()[:32]
    response = twilio_status(runtime, "nobody", "delivered", sid=sid)
    assert response.status == 200
    assert response.json() == {"unmatched": 1}
    assert [o["status"] for o in messages.orphan_receipts("twilio", sid)] == ["delivered"]


def test_a_malformed_twilio_callback_is_refused_with_the_reason(runtime: LocalRuntime) -> None:
    response = twilio_status(runtime, "mx", "")
    assert response.status == 400
    assert "MessageStatus" in response.json()["error"]


# --- consequences ------------------------------------------------------------------------------


def test_an_invalid_number_is_marked_undeliverable_once(runtime: LocalRuntime) -> None:
    subscribed()
    put_message(runtime, "md1")
    put_message(runtime, "md2")
    deliver(runtime, eum_event("md1", "TEXT_INVALID", at=clock.now()))
    deliver(runtime, eum_event("md2", "TEXT_INVALID", at=clock.now() + timedelta(minutes=1)))
    record = contact(PHONE)
    assert record is not None
    assert record.undeliverable == {
        "reason": "invalid",
        "at": clock.now().replace(microsecond=0).isoformat(),
        "receipt": f"eum:prov-{mid('md1')}",
    }
    assert receipt_counts()["numbers_suppressed"] == 1


def test_a_landline_reported_by_twilio_is_marked_undeliverable(runtime: LocalRuntime) -> None:
    subscribed()
    put_message(runtime, "ml")
    assert twilio_status(runtime, "ml", "undelivered", error_code="30006").status == 200
    record = contact(PHONE)
    assert record is not None
    assert record.undeliverable is not None
    assert record.undeliverable["reason"] == "landline"


def test_unreachable_marks_the_number_only_after_the_threshold_in_a_row(runtime: LocalRuntime) -> None:
    subscribed()
    start = clock.now()
    for index in range(5):
        put_message(runtime, f"mu{index}", created_at=start + timedelta(minutes=index))

    def report(index: int, event_type: str) -> None:
        at = start + timedelta(minutes=index, seconds=10)
        deliver(runtime, eum_event(f"mu{index}", event_type, at=at))

    report(0, "TEXT_UNREACHABLE")
    report(1, "TEXT_UNREACHABLE")
    report(2, "TEXT_DELIVERED")  # the handset came back: the streak starts again
    report(3, "TEXT_UNREACHABLE")
    report(4, "TEXT_UNREACHABLE")
    record = contact(PHONE)
    assert record is not None
    assert record.undeliverable is None
    put_message(runtime, "mu5", created_at=start + timedelta(minutes=5))
    report(5, "TEXT_UNREACHABLE")  # the third in a row (default threshold 3)
    record = contact(PHONE)
    assert record is not None
    assert record.undeliverable is not None
    assert record.undeliverable["reason"] == "unreachable"
    assert record.undeliverable["receipt"] == f"eum:prov-{mid('mu5')}"


def test_carrier_unreachable_and_blocked_never_mark_the_number(runtime: LocalRuntime) -> None:
    subscribed()
    for index, event_type in enumerate(["TEXT_CARRIER_UNREACHABLE", "TEXT_BLOCKED", "TEXT_SPAM"] * 2):
        put_message(runtime, f"mc{index}", created_at=clock.now() + timedelta(minutes=index))
        deliver(runtime, eum_event(f"mc{index}", event_type, at=clock.now()))
    record = contact(PHONE)
    assert record is not None
    assert record.undeliverable is None


def test_a_carrier_opt_out_becomes_a_ledger_entry_without_a_confirmation(runtime: LocalRuntime) -> None:
    subscribed()
    put_message(runtime, "mo")
    sid = "SM" + hashlib.sha256(CAMPAIGN.encode()).hexdigest()[:32]
    response = twilio_status(runtime, "mo", "failed", error_code="21610", sid=sid)
    assert response.status == 200, response.body

    record = contact(PHONE)
    assert record is not None
    assert record.consent.opted_out
    entries = ledger(PHONE)
    assert [entry.kind for entry in entries] == ["opt_in", "opt_out"]
    evidence = entries[-1].evidence
    assert evidence["source"] == "receipt"
    assert evidence["reference"] == sid
    assert evidence["detail"]["error_code"] == "21610"
    assert sent_to(runtime, PHONE) == []  # the carrier already answered; we send nothing
    assert receipt_counts()["carrier_opt_outs"] == 1
    assert counters.totals("program")["week.2026-W48.opt_out"] >= 1
    assert "opt_outs" not in receipt_counts()  # not blamed on the campaign whose send it refused

    # The same report again (Twilio or SNS redelivery) records nothing twice.
    assert twilio_status(runtime, "mo", "failed", error_code="21610", sid=sid).status == 200
    assert len(ledger(PHONE)) == 2
    assert receipt_counts()["carrier_opt_outs"] == 1


def test_eum_opted_out_event_is_a_carrier_opt_out(runtime: LocalRuntime) -> None:
    subscribed()
    put_message(runtime, "me")
    deliver(runtime, eum_event("me", "TEXT_OPTED_OUT", at=clock.now()))
    record = contact(PHONE)
    assert record is not None
    assert record.consent.opted_out
    assert ledger(PHONE)[-1].evidence["reference"] == f"prov-{mid('me')}"


def test_receipts_of_auto_replies_update_their_records_without_campaign_counts(runtime: LocalRuntime) -> None:
    messages.record_outbound(
        message_id=mid("r-1"), phone=PHONE, body="Thanks", kind="help_reply", now=clock.now()
    )
    deliver(runtime, eum_event("r-1", "TEXT_DELIVERED", at=clock.now(), with_campaign=False))
    assert message("r-1")["status"] == "delivered"
    assert counters.totals(CAMPAIGN) == {}


def test_the_price_is_read_from_the_event_when_present(runtime: LocalRuntime) -> None:
    put_message(runtime, "mp1")
    put_message(runtime, "mp2")
    deliver(runtime, eum_event("mp1", "TEXT_DELIVERED", at=clock.now(), price=0.0457))
    deliver(runtime, eum_event("mp2", "TEXT_DELIVERED", at=clock.now(), price=None))
    assert receipt_counts()["cost_micros"] == 45_700 + 3_020


def test_the_event_body_is_never_logged_with_the_number(
    runtime: LocalRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    put_message(runtime, "mlog")
    deliver(runtime, json.dumps(eum_event("mlog", "TEXT_INVALID", at=clock.now())))
    subscribed()
    deliver(
        runtime,
        json.dumps(eum_event("unknown-x", "TEXT_DELIVERED", at=clock.now() - timedelta(hours=1))),
    )
    output = capsys.readouterr()
    assert PHONE not in output.out + output.err
