"""Keyword flows through the local runtime: double opt-in, topic vs global STOP, ordering, the ledger."""

import json
from datetime import timedelta

import pytest

from consentry import admin_client, cli
from consentry.domain.handoff import Handoff
from consentry.domain.messages import InboundMessage
from consentry_local.runtime import LocalRuntime
from tests.e2e.helpers import RuntimeAdminClient, contact, ledger, sent_to

PHONE = "+13055550123"


def last_json_line(output: str) -> dict[str, object]:
    """The CLI's answer; metrics the in-process handlers flushed may precede it on stdout."""
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def texts(runtime: LocalRuntime) -> list[str]:
    return [entry["body"] for entry in sent_to(runtime, PHONE)]


def say(runtime: LocalRuntime, body: str, wait: float = 60) -> None:
    runtime.text_in(PHONE, body)
    runtime.run_until_idle()
    runtime.advance(wait)


def test_double_opt_in_sends_nothing_promotional_before_yes(runtime: LocalRuntime) -> None:
    say(runtime, "DEALS")
    record = contact(PHONE)
    assert record is not None
    assert not record.consent.is_subscribed("deals")
    assert record.consent.topics["deals"].status == "pending"
    assert len(texts(runtime)) == 1
    assert "Reply YES" in texts(runtime)[0]

    say(runtime, "yes!")
    record = contact(PHONE)
    assert record is not None
    assert record.consent.is_subscribed("deals")
    welcome = texts(runtime)[1]
    for element in (
        "Consentry Demo",
        "up to 4 msgs/month",
        "Msg & data rates may apply",
        "HELP",
        "STOP",
        "Terms:",
    ):
        assert element in welcome

    say(runtime, "YES")  # nothing pending any more: no reply, no change
    assert len(texts(runtime)) == 2
    assert [e.outcome for e in ledger(PHONE)] == ["applied", "applied", "nothing_pending"]


def test_double_opt_in_expires(runtime: LocalRuntime) -> None:
    say(runtime, "DEALS", wait=49 * 3600)
    say(runtime, "YES")
    record = contact(PHONE)
    assert record is not None
    assert not record.consent.is_subscribed("deals")
    assert len(texts(runtime)) == 1


def test_topic_stop_keeps_other_topics_and_global_stop_ends_all(runtime: LocalRuntime) -> None:
    say(runtime, "ALERTS")
    say(runtime, "DEALS")
    say(runtime, "YES")
    say(runtime, "STOP DEALS")
    record = contact(PHONE)
    assert record is not None
    assert not record.consent.opted_out
    assert not record.consent.is_subscribed("deals")
    assert record.consent.is_subscribed("alerts")
    assert "unsubscribed from deals and offers" in texts(runtime)[-1]
    assert PHONE not in runtime.simulator.carrier_opted_out  # only a global STOP is mirrored

    say(runtime, "stop please")
    record = contact(PHONE)
    assert record is not None
    assert record.consent.opted_out
    assert not record.consent.is_subscribed("alerts")
    assert "START" in texts(runtime)[-1]


def test_start_after_stop_resubscribes(runtime: LocalRuntime) -> None:
    say(runtime, "ALERTS")
    say(runtime, "STOP")
    say(runtime, "START")
    record = contact(PHONE)
    assert record is not None
    assert not record.consent.opted_out
    assert record.consent.is_subscribed("alerts")
    assert "subscribed again" in texts(runtime)[-1]
    assert [e.kind for e in ledger(PHONE)] == ["opt_in", "opt_out", "opt_in"]


def _handoff(intent: str, body: str, sid: str, seconds: int) -> Handoff:
    from tests.conftest import START

    inbound = InboundMessage(
        provider="eum",
        provider_message_id=sid,
        from_number=PHONE,
        to_number="+12025550100",
        body=body,
        received_at=START + timedelta(seconds=seconds),
    )
    return Handoff(inbound=inbound, intent=intent, scope="all", matched=body)


def _queue(runtime: LocalRuntime, queue: str, handoff: Handoff) -> None:
    runtime.client("sqs").send_message(
        QueueUrl=runtime.queue_url(queue), MessageBody=handoff.model_dump_json()
    )


@pytest.mark.parametrize(("stop_at", "start_at", "opted_out"), [(10, 20, False), (20, 10, True)])
def test_reordered_handoffs_end_in_the_state_of_the_later_event(
    runtime: LocalRuntime, stop_at: int, start_at: int, opted_out: bool
) -> None:
    # START is processed first whatever its time: the STOP hand-off arrives late.
    _queue(runtime, "OptInQueue", _handoff("opt_in", "START", "in-start", start_at))
    runtime.run_until_idle()
    _queue(runtime, "StopQueue", _handoff("opt_out", "STOP", "in-stop", stop_at))
    runtime.run_until_idle()
    record = contact(PHONE)
    assert record is not None
    assert record.consent.opted_out is opted_out
    assert len(ledger(PHONE)) == 2  # the older one is recorded, not applied


def test_duplicated_handoff_is_applied_and_confirmed_once(runtime: LocalRuntime) -> None:
    handoff = _handoff("opt_out", "STOP", "in-dup", 5)
    _queue(runtime, "StopQueue", handoff)
    _queue(runtime, "StopQueue", handoff)
    runtime.run_until_idle()
    assert len(ledger(PHONE)) == 1
    assert len(texts(runtime)) == 1


def test_loop_guard_caps_automatic_replies_per_hour(runtime: LocalRuntime) -> None:
    for _ in range(12):
        say(runtime, "HELP", wait=60)
    assert len(texts(runtime)) == 5  # AUTO_REPLY_LIMIT_PER_HOUR default
    runtime.advance(3600)
    say(runtime, "HELP")
    assert len(texts(runtime)) == 6


def test_carrier_handled_stop_is_recorded_without_a_second_confirmation(runtime: LocalRuntime) -> None:
    payload = runtime.simulator.inbound_payload(PHONE, "STOP")
    payload["destinationNumber"] = "+18885550100"  # US toll-free: the carrier answered STOP itself
    runtime.publish("InboundSmsTopic", payload)
    runtime.run_until_idle()
    record = contact(PHONE)
    assert record is not None
    assert record.consent.opted_out
    assert ledger(PHONE)[0].evidence["source"] == "carrier"
    assert texts(runtime) == []


def test_ledger_verify_finds_a_tampered_entry(
    runtime: LocalRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    say(runtime, "ALERTS")
    say(runtime, "STOP")
    say(runtime, "START")
    admin_client.use_client(lambda _url: RuntimeAdminClient(runtime))
    try:
        assert cli.main(["consent", "verify", PHONE]) == 0
        assert last_json_line(capsys.readouterr().out)["ok"] is True
        table = runtime.table_name("LedgerTable")
        dynamodb = runtime.client("dynamodb")
        item = dynamodb.get_item(TableName=table, Key={"phone": {"S": PHONE}, "seq": {"N": "2"}})["Item"]
        item["event_time"] = {"S": "2026-11-20T00:00:00+00:00"}  # backdate the STOP
        dynamodb.put_item(TableName=table, Item=item)
        assert cli.main(["consent", "verify", PHONE]) == 1
        chain = last_json_line(capsys.readouterr().out)
        assert chain["first_broken_seq"] == 2
        assert cli.main(["consent", "history", PHONE]) == 0
        history = capsys.readouterr().out
        assert "opt_out" in history
        assert "sms:eum:" in history
    finally:
        admin_client.use_client(None)


def test_other_texts_and_consent_changes_are_published_on_the_bus(runtime: LocalRuntime) -> None:
    events = runtime.client("events")
    sqs = runtime.client("sqs")
    queue_url = sqs.create_queue(QueueName="bus-observer")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bus = runtime.stack.physical["EventBus"]["Ref"]
    events.put_rule(Name="all", EventBusName=bus, EventPattern=json.dumps({"source": ["consentry"]}))
    events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])

    say(runtime, "what time do you open tomorrow?")
    say(runtime, "ALERTS")
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    detail_types = sorted(json.loads(m["Body"])["detail-type"] for m in received)
    assert detail_types == ["ConsentChanged", "InboundMessage"]
