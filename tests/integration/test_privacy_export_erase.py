"""Export holds everything held; erasure leaves only a salted hash and a redacted, verifiable ledger.

A contact is built through the real flows (keyword opt-ins, double opt-in, HELP, another
text, an import, a campaign send record); then every table is scanned for the number, so
nothing written by any module can be missed by the export or survive the erasure.
"""

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from consentry.domain.consent import ChangeKind, ConsentChange, Evidence
from consentry.domain.ledger import LedgerEntry, verify
from consentry.domain.phone import salted_hash
from consentry.services.consent import commit_change
from consentry.store import codec, messages, privacy
from consentry_local.runtime import LocalRuntime
from tests.e2e.helpers import contact, ledger

PHONE = "+13055550123"
NATIONAL = "3055550123"
OTHER_TEXT = "when does the sale end?"
SALT = "local-suppression-salt"  # CONSENTRY_LOCAL_SUPPRESSION_SALT of the local runtime


def build_contact(runtime: LocalRuntime) -> None:
    for body in ("ALERTS", "DEALS", "YES", "HELP", OTHER_TEXT):
        runtime.text_in(PHONE, body)
        runtime.run_until_idle()
        runtime.advance(60)
    response = runtime.http(
        "POST",
        "/v1/contacts/import",
        body=json.dumps(
            {
                "batch": "crm-1",
                "rows": [{"line": 2, "row": {"phone": PHONE, "attributes": {"first_name": "Ana"}}}],
            }
        ),
    )
    assert response.status == 200, response.body
    # What the sender writes for a campaign send: the reservation on the contact, the message record.
    messages.record_outbound(
        message_id="cmp-1-0001",
        phone=PHONE,
        body="Ana, 20% off today",
        kind="campaign",
        now=runtime.clock.now(),
    )
    runtime.client("dynamodb").update_item(
        TableName=runtime.table_name("ContactsTable"),
        Key={"phone": {"S": PHONE}},
        UpdateExpression="SET sends = :sends",
        ExpressionAttributeValues={
            ":sends": codec.to_value(
                {
                    "cmp-1": {
                        "at": 1795453291,
                        "topic": "deals",
                        "message_class": "promotional",
                        "state": "reserved",
                    }
                }
            )
        },
    )


def items_mentioning(runtime: LocalRuntime, *needles: str) -> dict[str, list[dict[str, Any]]]:
    """Every item in every table whose stored form contains one of `needles`."""
    dynamodb = runtime.client("dynamodb")
    found: dict[str, list[dict[str, Any]]] = {}
    for table in dynamodb.list_tables()["TableNames"]:
        for item in dynamodb.scan(TableName=table)["Items"]:
            if any(needle in json.dumps(item) for needle in needles):
                found.setdefault(table.removeprefix("consentry-local-"), []).append(codec.from_item(item))
    return found


def get(runtime: LocalRuntime, path: str) -> tuple[int, Any]:
    response = runtime.http("GET", path)
    return response.status, json.loads(response.body)


def delete(runtime: LocalRuntime, phone: str = PHONE) -> tuple[int, Any]:
    response = runtime.http("DELETE", f"/v1/contacts/{phone}")
    return response.status, json.loads(response.body)


def test_export_holds_every_item_that_mentions_the_number(runtime: LocalRuntime) -> None:
    build_contact(runtime)
    status, exported = get(runtime, f"/v1/contacts/{PHONE}/export")
    assert status == 200, exported

    held = items_mentioning(runtime, PHONE)
    assert set(held) == {"ContactsTable", "LedgerTable", "MessagesTable"}
    assert held["ContactsTable"] == [exported["profile"]]
    assert exported["profile"]["attributes"] == {"first_name": "Ana"}
    ledger_items = sorted(held["LedgerTable"], key=lambda item: item["seq"])
    assert [LedgerEntry.model_validate(item).model_dump(mode="json") for item in ledger_items] == exported[
        "ledger"
    ]
    assert exported["ledger_chain"]["ok"] is True
    message_items = exported["messages"] + exported["inbound_texts"] + exported["auto_reply_counters"]
    key = lambda item: (item["pk"], item["sk"])  # noqa: E731
    assert sorted(held["MessagesTable"], key=key) == sorted(message_items, key=key)

    assert [text["body"] for text in exported["inbound_texts"]] == [
        "ALERTS",
        "DEALS",
        "YES",
        "HELP",
        OTHER_TEXT,
    ]
    assert len(exported["messages"]) == 5  # 2 welcomes, the YES request, the HELP answer, the campaign
    assert exported["campaign_sends"] == {
        "cmp-1": {"at": 1795453291, "topic": "deals", "message_class": "promotional", "state": "reserved"}
    }
    assert exported["consent"]["topics"]["deals"]["status"] == "active"
    assert exported["suppression"] == {"erased": False, "erased_at": None, "erasures": 0}


def test_show_gives_the_profile_and_consent_and_404_for_strangers(runtime: LocalRuntime) -> None:
    build_contact(runtime)
    status, shown = get(runtime, f"/v1/contacts/{PHONE}")
    assert status == 200
    assert shown["subscribed"] == ["alerts", "deals"]
    assert shown["attributes"] == {"first_name": "Ana"}
    assert get(runtime, "/v1/contacts/+12125550199")[0] == 404
    assert get(runtime, "/v1/contacts/+12125550199/export")[0] == 404
    assert get(runtime, "/v1/contacts/not-a-number/export")[0] == 400


def test_erasure_leaves_only_the_salted_hash_and_a_redacted_verifiable_ledger(runtime: LocalRuntime) -> None:
    build_contact(runtime)
    original = ledger(PHONE)
    status, report = delete(runtime)
    assert status == 200, report
    assert report["contact_deleted"] is True
    assert report["messages_deleted"] == 5
    assert report["inbound_texts_deleted"] == 5
    assert report["ledger_entries_redacted"] == len(original) == 3
    assert report["ledger_chain"] == {"ok": True, "entries": 3, "first_broken_seq": None, "problem": None}

    assert items_mentioning(runtime, PHONE, NATIONAL, OTHER_TEXT, "Ana") == {}
    hashed = salted_hash(PHONE, SALT)
    listed = items_mentioning(runtime, hashed)
    assert set(listed) == {"SuppressionTable", "LedgerTable"}
    (suppressed,) = listed["SuppressionTable"]
    assert suppressed["erasures"] == 1
    assert "pending_ledger_key" not in suppressed
    (partition,) = suppressed["ledger_keys"]
    kept = privacy.erased_ledger(partition)
    assert verify(kept).ok
    assert [(e.seq, e.kind, e.scope, e.outcome, e.event_time, e.hash) for e in kept] == [
        (e.seq, e.kind, e.scope, e.outcome, e.event_time, e.hash) for e in original
    ]
    assert all(e.phone is None and e.evidence is None and e.digest_salt is None for e in kept)

    status, exported = get(runtime, f"/v1/contacts/{PHONE}/export")
    assert status == 200
    assert exported["profile"] is None
    assert exported["ledger"] == exported["messages"] == exported["inbound_texts"] == []
    assert exported["suppression"]["erased"] is True


def test_erasing_again_keeps_the_first_erasure_time_and_unknown_numbers_are_404(
    runtime: LocalRuntime,
) -> None:
    build_contact(runtime)
    first = delete(runtime)[1]
    runtime.advance(3600)
    status, again = delete(runtime)
    assert status == 200
    assert again["already_erased"] is True
    assert again["erased_at"] == first["erased_at"]
    assert again["ledger_chain"]["ok"] is True
    status, answer = delete(runtime, "+12125550199")
    assert status == 404
    assert "never erased" in answer["error"]


def test_an_erasure_that_failed_half_way_completes_when_run_again(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_contact(runtime)
    entries = len(ledger(PHONE))
    real_delete = privacy.delete_message_items
    calls = {"n": 0}

    def fail_once(items: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("throttled for good")
        return real_delete(items)

    monkeypatch.setattr(privacy, "delete_message_items", fail_once)
    assert delete(runtime)[0] == 502  # the ledger was moved, the messages were not
    assert ledger(PHONE) == []
    assert contact(PHONE) is not None
    status, report = delete(runtime)
    assert status == 200, report
    assert report["ledger_chain"]["ok"] is True
    assert items_mentioning(runtime, PHONE) == {}
    (suppressed,) = items_mentioning(runtime, salted_hash(PHONE, SALT))["SuppressionTable"]
    assert len(suppressed["ledger_keys"]) == 1  # both attempts used the same partition
    assert len(privacy.erased_ledger(suppressed["ledger_keys"][0])) == entries


def test_a_consent_change_committed_during_erasure_is_erased_too(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_contact(runtime)
    entries = len(ledger(PHONE))
    real_delete = privacy.delete_message_items
    raced = {"done": False}

    def stop_arrives_meanwhile(items: Any) -> int:
        if not raced["done"]:
            raced["done"] = True
            commit_change(
                PHONE,
                ConsentChange(
                    kind=ChangeKind.OPT_OUT,
                    scope="all",
                    event_time=runtime.clock.now(),
                    evidence=Evidence(source="sms", reference="eum:racing-stop", text="STOP"),
                ),
            )
        return real_delete(items)

    monkeypatch.setattr(privacy, "delete_message_items", stop_arrives_meanwhile)
    status, report = delete(runtime)
    assert status == 200, report
    assert report["ledger_entries_redacted"] == entries + 1
    assert report["ledger_chain"] == {
        "ok": True,
        "entries": entries + 1,
        "first_broken_seq": None,
        "problem": None,
    }
    assert items_mentioning(runtime, PHONE) == {}


def test_reimport_after_erasure_needs_consent_given_after_it(runtime: LocalRuntime) -> None:
    build_contact(runtime)
    delete(runtime)
    runtime.advance(3600)
    erased_at = runtime.clock.now() - timedelta(hours=1)
    deals = {"status": "active", "source": "web form", "disclosure_version": "v4"}
    rows = [
        {"line": 2, "row": {"phone": PHONE, "consents": {"deals": {**deals, "at": "2026-10-01T12:00:00Z"}}}},
        {"line": 3, "row": {"phone": PHONE, "attributes": {"first_name": "Ana"}}},
    ]
    response = runtime.http(
        "POST", "/v1/contacts/import", body=json.dumps({"batch": "old-crm", "rows": rows})
    )
    report = json.loads(response.body)
    assert [(r["line"], r["reason"]) for r in report["refused"]] == [(2, "erased"), (3, "erased")]
    assert contact(PHONE) is None

    fresh_at = (erased_at + timedelta(minutes=30)).isoformat()
    fresh = [{"line": 2, "row": {"phone": PHONE, "consents": {"deals": {**deals, "at": fresh_at}}}}]
    response = runtime.http(
        "POST", "/v1/contacts/import", body=json.dumps({"batch": "new-form", "rows": fresh})
    )
    report = json.loads(response.body)
    assert (report["imported"], report["refused"]) == (1, [])
    record = contact(PHONE)
    assert record is not None
    assert record.consent.is_subscribed("deals")
    assert [e.seq for e in ledger(PHONE)] == [1]
    assert verify(ledger(PHONE)).ok


def test_message_and_conversation_records_expire_by_ttl(runtime: LocalRuntime) -> None:
    build_contact(runtime)
    retention = timedelta(days=90)  # CONVERSATION_RETENTION_DAYS default in template.yaml
    items = items_mentioning(runtime, PHONE)["MessagesTable"]
    assert {item["pk"].split("#")[0] for item in items} == {"CONV", "MSG", "AUTOREPLY"}
    for item in items:
        assert "expires_at" in item, item["pk"]
        if item["pk"].startswith(("CONV#", "MSG#")):
            written = item.get("received_at") or item["created_at"]
            expected = (datetime.fromisoformat(written) + retention).timestamp()
            assert abs(item["expires_at"] - expected) < 5, item["pk"]
    ttl = runtime.client("dynamodb").describe_time_to_live(TableName=runtime.table_name("MessagesTable"))
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
