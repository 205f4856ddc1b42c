"""Contact import through the admin API: refusals per row, atomic rows, idempotent re-import."""

import json
from datetime import timedelta
from typing import Any

from consentry.domain.consent import ChangeKind, ConsentChange, Evidence, TopicStatus
from consentry.domain.ledger import verify
from consentry.services.consent import commit_change
from consentry_local.runtime import LocalRuntime
from tests.e2e.helpers import contact, ledger, table_items

PHONE = "+12125550142"
OTHER = "+13125550143"
DEALS = {
    "status": "active",
    "at": "2026-10-01T12:00:00Z",
    "source": "checkout form",
    "disclosure_version": "v3",
}


def post(runtime: LocalRuntime, body: Any) -> tuple[int, dict[str, Any]]:
    payload = body if isinstance(body, str) else json.dumps(body)
    response = runtime.http(
        "POST", "/v1/contacts/import", body=payload, headers={"Content-Type": "application/json"}
    )
    return response.status, json.loads(response.body) if response.body else {}


def page(*rows: dict[str, Any], batch: str = "batch-1", first_line: int = 2) -> dict[str, Any]:
    return {"batch": batch, "rows": [{"line": first_line + i, "row": row} for i, row in enumerate(rows)]}


def test_valid_rows_are_imported_with_evidence_and_refused_rows_reported(runtime: LocalRuntime) -> None:
    status, report = post(
        runtime,
        page(
            {
                "phone": "(212) 555-0142",
                "time_zone": "America/Chicago",
                "attributes": {"first_name": "Ana", "orders": 3},
                "consents": {"deals": DEALS, "alerts": {"at": "2026-10-01T12:00:00Z"}},
            },
            {"phone": "not a phone"},
            {"phone": OTHER, "consents": {"deals": {"status": "active", "at": "2026-10-01T12:00:00Z"}}},
            {"phone": OTHER, "consents": {"newsletter": DEALS}},
        ),
    )
    assert status == 200, report
    assert (report["rows"], report["imported"], report["unchanged"]) == (4, 1, 0)
    assert [(r["line"], r["reason"]) for r in report["refused"]] == [
        (3, "invalid_phone"),
        (4, "missing_evidence"),
        (5, "unknown_topic"),
    ]
    record = contact(PHONE)
    assert record is not None
    assert record.attributes == {"first_name": "Ana", "orders": 3}
    assert record.time_zone == "America/Chicago"
    assert record.consent.is_subscribed("deals")
    assert record.consent.is_subscribed("alerts")
    entries = ledger(PHONE)
    assert verify(entries).ok
    assert sorted(e.evidence["reference"] for e in entries if e.evidence) == [
        "import:batch-1:2:alerts",
        "import:batch-1:2:deals",
    ]
    deals_entry = next(e for e in entries if e.scope == "deals")
    assert deals_entry.evidence is not None
    assert deals_entry.evidence["detail"]["collected_via"] == "checkout form"
    assert deals_entry.evidence["detail"]["disclosure_version"] == "v3"
    assert contact(OTHER) is None  # refused rows write nothing


def test_reimporting_the_same_page_changes_nothing(runtime: LocalRuntime) -> None:
    rows = page({"phone": PHONE, "attributes": {"tier": "gold"}, "consents": {"deals": DEALS}})
    assert post(runtime, rows)[1]["imported"] == 1
    before = contact(PHONE)
    table_before = table_items(runtime, "LedgerTable")
    status, report = post(runtime, rows)
    assert status == 200
    assert (report["imported"], report["unchanged"], report["refused"]) == (0, 1, [])
    assert contact(PHONE) == before
    assert table_items(runtime, "LedgerTable") == table_before


def test_reimport_after_the_reference_aged_out_of_recent_memory_still_changes_nothing(
    runtime: LocalRuntime,
) -> None:
    rows = page({"phone": PHONE, "consents": {"alerts": {"at": "2026-10-01T12:00:00Z"}}})
    post(runtime, rows)
    for n in range(30):  # more later changes than the contact remembers evidence for
        commit_change(
            PHONE,
            ConsentChange(
                kind=ChangeKind.OPT_IN if n % 2 else ChangeKind.OPT_OUT,
                scope="alerts",
                event_time=runtime.clock.now() - timedelta(hours=30 - n),
                evidence=Evidence(source="api", reference=f"api:{n}"),
            ),
        )
    entries_before = len(ledger(PHONE))
    status, report = post(runtime, rows)
    assert status == 200
    assert report["unchanged"] == 1
    assert len(ledger(PHONE)) == entries_before


def test_a_row_older_than_what_the_contact_holds_is_kept_as_stale_evidence_and_changes_nothing(
    runtime: LocalRuntime,
) -> None:
    post(runtime, page({"phone": PHONE, "consents": {"alerts": {"at": "2026-10-05T12:00:00Z"}}}))
    status, report = post(
        runtime,
        page(
            {"phone": PHONE, "consents": {"alerts": {"status": "revoked", "at": "2026-10-01T12:00:00Z"}}},
            batch="b2",
        ),
    )
    assert (status, report["imported"]) == (200, 1)
    record = contact(PHONE)
    assert record is not None
    assert record.consent.is_subscribed("alerts")
    assert [(e.kind, e.outcome) for e in ledger(PHONE)] == [("opt_in", "applied"), ("opt_out", "stale")]
    assert verify(ledger(PHONE)).ok


def test_an_import_dated_before_a_stop_does_not_undo_the_stop(runtime: LocalRuntime) -> None:
    runtime.text_in(PHONE, "STOP")
    runtime.run_until_idle()
    status, _report = post(runtime, page({"phone": PHONE, "consents": {"deals": DEALS}}))
    assert status == 200
    record = contact(PHONE)
    assert record is not None
    assert record.consent.opted_out
    assert not record.consent.is_subscribed("deals")
    assert verify(ledger(PHONE)).ok


def test_the_same_number_twice_in_a_page_merges_in_order(runtime: LocalRuntime) -> None:
    status, report = post(
        runtime,
        page(
            {"phone": PHONE, "attributes": {"first_name": "Ana"}, "consents": {"deals": DEALS}},
            {
                "phone": PHONE,
                "attributes": {"city": "Chicago"},
                "consents": {"deals": {"status": "revoked", "at": "2026-10-05T12:00:00Z"}},
            },
        ),
    )
    assert (status, report["imported"], report["refused"]) == (200, 2, [])
    record = contact(PHONE)
    assert record is not None
    assert record.attributes == {"first_name": "Ana", "city": "Chicago"}
    assert record.consent.topics["deals"].status is TopicStatus.REVOKED
    assert [e.seq for e in ledger(PHONE)] == [1, 2]
    assert verify(ledger(PHONE)).ok


def test_a_row_is_one_unit_when_its_ledger_write_fails_nothing_is_written(runtime: LocalRuntime) -> None:
    # A ledger entry already sits where the row's first entry must go: every attempt's
    # transaction is cancelled, so neither the contact nor the attributes may appear.
    runtime.client("dynamodb").put_item(
        TableName=runtime.table_name("LedgerTable"), Item={"phone": {"S": PHONE}, "seq": {"N": "1"}}
    )
    status, report = post(
        runtime, page({"phone": PHONE, "attributes": {"a": "b"}, "consents": {"deals": DEALS}})
    )
    assert status == 200
    assert [(r["line"], r["reason"]) for r in report["refused"]] == [(2, "conflict")]
    assert contact(PHONE) is None
    assert len(table_items(runtime, "LedgerTable")) == 1


def test_a_row_that_is_not_an_object_is_refused_alone(runtime: LocalRuntime) -> None:
    status, report = post(
        runtime, {"batch": "b", "rows": [{"line": 2, "row": [1]}, {"line": 3, "row": {"phone": PHONE}}]}
    )
    assert status == 200
    assert [(r["line"], r["reason"]) for r in report["refused"]] == [(2, "malformed")]
    assert report["imported"] == 1


def test_500_rows_fit_one_request(runtime: LocalRuntime) -> None:
    rows = [
        {"phone": f"+1212555{n:04d}", "consents": {"alerts": {"at": "2026-10-01T12:00:00Z"}}}
        for n in range(500)
    ]
    status, report = post(runtime, page(*rows))
    assert status == 200
    assert report["imported"] + len(report["refused"]) == 500
    assert all(r["reason"] == "invalid_phone" for r in report["refused"])
