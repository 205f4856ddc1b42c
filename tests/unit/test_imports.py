"""Import rows: every refusal path, both file formats, and what a valid row turns into."""

from datetime import UTC, datetime, timedelta

import pytest

from consentry.domain.consent import ChangeKind
from consentry.domain.imports import (
    ContactImport,
    ImportFileError,
    RefusalReason,
    RowRefusal,
    detect_format,
    parse_csv,
    parse_jsonl,
    validate_row,
)
from consentry.domain.program import Program, Topic

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
PROGRAM = Program(
    brand="Acme",
    support_contact="help@acme.test",
    terms_url="https://acme.test/terms",
    privacy_url="https://acme.test/privacy",
    topics=(
        Topic(
            id="deals",
            keyword="DEALS",
            message_class="promotional",
            frequency="up to 4 msgs/month",
            description="deals",
        ),
        Topic(
            id="alerts",
            keyword="ALERTS",
            message_class="transactional",
            frequency="up to 10 msgs/month",
            description="alerts",
        ),
    ),
)
DEALS_EVIDENCE = {
    "status": "active",
    "at": "2026-10-01T12:00:00Z",
    "source": "checkout web form",
    "disclosure_version": "deals-v3",
}


def _validate(row: object, line: int = 2) -> ContactImport | RowRefusal:
    return validate_row(line, row, program=PROGRAM, now=NOW)


def _refusal(row: object) -> RowRefusal:
    result = _validate(row)
    assert isinstance(result, RowRefusal), result
    assert result.line == 2
    return result


def test_a_complete_row_is_normalised_and_turned_into_consent_changes_with_evidence() -> None:
    result = _validate(
        {
            "phone": "(212) 555-0142",
            "time_zone": "America/New_York",
            "attributes": {"first_name": "Ana", "orders": 3, "vip": True, "score": 4.5, "pets": ["cat"]},
            "consents": {
                "deals": {**DEALS_EVIDENCE, "disclosure": "Yes, text me deals. Msg & data rates may apply."},
                "alerts": {"status": "revoked", "at": "2026-10-02T08:00:00-04:00"},
            },
        }
    )
    assert isinstance(result, ContactImport)
    assert result.phone == "+12125550142"
    assert result.attributes == {"first_name": "Ana", "orders": 3, "vip": True, "score": 4.5, "pets": ["cat"]}
    changes = {change.scope: change for change in result.changes("b1")}
    assert changes["deals"].kind is ChangeKind.OPT_IN
    assert changes["deals"].event_time == datetime(2026, 10, 1, 12, tzinfo=UTC)
    assert changes["deals"].evidence.source == "import"
    assert changes["deals"].evidence.reference == "import:b1:2:deals"
    assert changes["deals"].evidence.text == "Yes, text me deals. Msg & data rates may apply."
    assert changes["deals"].evidence.detail == {
        "batch": "b1",
        "line": "2",
        "collected_via": "checkout web form",
        "disclosure_version": "deals-v3",
    }
    assert changes["alerts"].kind is ChangeKind.OPT_OUT
    assert changes["alerts"].evidence.reference == "import:b1:2:alerts"


def test_transactional_consent_needs_only_its_time() -> None:
    result = _validate({"phone": "+12125550142", "consents": {"alerts": {"at": "2026-10-01T12:00:00Z"}}})
    assert isinstance(result, ContactImport)
    assert [c.status for c in result.consents] == ["active"]


@pytest.mark.parametrize(
    ("consent", "missing"),
    [
        ({"status": "active", "at": "2026-10-01T12:00:00Z", "disclosure_version": "v3"}, "source missing"),
        (
            {"status": "active", "at": "2026-10-01T12:00:00Z", "source": "form"},
            "disclosure or disclosure_version missing",
        ),
        ({"status": "active", "at": "2026-10-01T12:00:00Z"}, "source and disclosure or disclosure_version"),
    ],
)
def test_promotional_consent_without_evidence_is_refused(consent: dict[str, str], missing: str) -> None:
    refusal = _refusal({"phone": "+12125550142", "consents": {"deals": consent}})
    assert refusal.reason is RefusalReason.MISSING_EVIDENCE
    assert missing in refusal.detail
    assert "deals" in refusal.detail


def test_consent_without_a_time_is_refused() -> None:
    refusal = _refusal({"phone": "+12125550142", "consents": {"alerts": {"status": "active"}}})
    assert refusal.reason is RefusalReason.MISSING_EVIDENCE


def test_a_revocation_of_a_promotional_topic_needs_no_disclosure() -> None:
    result = _validate(
        {"phone": "+12125550142", "consents": {"deals": {"status": "revoked", "at": "2026-10-01T12:00:00Z"}}}
    )
    assert isinstance(result, ContactImport)


@pytest.mark.parametrize(
    ("row", "reason", "detail"),
    [
        ({"phone": "not a number"}, RefusalReason.INVALID_PHONE, "not parseable"),
        ({"phone": "+1 212 555 014"}, RefusalReason.INVALID_PHONE, "not a valid number"),
        ({"phone": ""}, RefusalReason.INVALID_PHONE, "empty"),
        (
            {"phone": "+12125550142", "consents": {"dealz": DEALS_EVIDENCE}},
            RefusalReason.UNKNOWN_TOPIC,
            "dealz",
        ),
        ({"phone": "+12125550142", "emial": "x"}, RefusalReason.INVALID_FIELD, "emial: unknown field"),
        ({"phone": 12125550142}, RefusalReason.INVALID_FIELD, "phone"),
        ({"phone": "+12125550142", "time_zone": "Mars/Olympus"}, RefusalReason.INVALID_FIELD, "time_zone"),
        (
            {"phone": "+12125550142", "attributes": {"first name": "x"}},
            RefusalReason.INVALID_FIELD,
            "attribute",
        ),
        (
            {"phone": "+12125550142", "attributes": {"nested": {"a": 1}}},
            RefusalReason.INVALID_FIELD,
            "nested",
        ),
        ({"phone": "+12125550142", "attributes": {"bio": "x" * 1001}}, RefusalReason.INVALID_FIELD, "bio"),
        (
            {"phone": "+12125550142", "attributes": {f"a{i}": i for i in range(51)}},
            RefusalReason.INVALID_FIELD,
            "more than 50",
        ),
        (
            {"phone": "+12125550142", "consents": {"deals": {**DEALS_EVIDENCE, "status": "maybe"}}},
            RefusalReason.INVALID_FIELD,
            "consents.deals.status",
        ),
        (
            {"phone": "+12125550142", "consents": {"deals": {**DEALS_EVIDENCE, "at": "yesterday"}}},
            RefusalReason.INVALID_FIELD,
            "consents.deals.at",
        ),
        (
            {"phone": "+12125550142", "consents": {"deals": {**DEALS_EVIDENCE, "at": "2026-10-01T12:00:00"}}},
            RefusalReason.INVALID_FIELD,
            "no time zone",
        ),
        (
            {
                "phone": "+12125550142",
                "consents": {"deals": {**DEALS_EVIDENCE, "at": "2026-11-25T12:00:00Z"}},
            },
            RefusalReason.FUTURE_CONSENT,
            "future",
        ),
        ("just text", RefusalReason.MALFORMED, "not an object"),
    ],
)
def test_each_refusal_names_its_reason_and_never_echoes_the_number(
    row: object, reason: RefusalReason, detail: str
) -> None:
    refusal = _refusal(row)
    assert refusal.reason is reason
    assert detail in refusal.detail
    assert "2125550142" not in refusal.detail


def test_national_numbers_are_read_in_the_default_region() -> None:
    result = validate_row(3, {"phone": "020 7946 0958"}, program=PROGRAM, now=NOW, default_region="GB")
    assert isinstance(result, ContactImport)
    assert result.phone == "+442079460958"


def test_an_erased_number_needs_every_consent_dated_after_the_erasure() -> None:
    erased_at = datetime(2026, 10, 15, tzinfo=UTC)
    fresh = {**DEALS_EVIDENCE, "at": "2026-11-01T12:00:00Z"}
    old = _validate({"phone": "+12125550142", "consents": {"deals": DEALS_EVIDENCE}})
    new = _validate({"phone": "+12125550142", "consents": {"deals": fresh}})
    mixed = _validate(
        {"phone": "+12125550142", "consents": {"deals": fresh, "alerts": {"at": "2026-10-01T12:00:00Z"}}}
    )
    bare = _validate({"phone": "+12125550142", "attributes": {"first_name": "Ana"}})
    revoked_only = _validate(
        {"phone": "+12125550142", "consents": {"alerts": {"status": "revoked", "at": "2026-11-01T12:00:00Z"}}}
    )
    assert isinstance(new, ContactImport)
    assert new.refusal_after_erasure(erased_at) is None
    for row in (old, mixed, bare, revoked_only):
        assert isinstance(row, ContactImport)
        refusal = row.refusal_after_erasure(erased_at)
        assert refusal is not None
        assert refusal.reason is RefusalReason.ERASED
    assert isinstance(mixed, ContactImport)
    refusal = mixed.refusal_after_erasure(erased_at)
    assert refusal is not None
    assert "alerts" in refusal.detail


# --- files -----------------------------------------------------------------------------------------


def test_jsonl_lines_keep_their_numbers_and_unreadable_lines_are_reported() -> None:
    text = '{"phone": "+12125550142"}\n\n{"phone": \n[1, 2]\n{"phone": "+12125550143"}\n'
    rows = list(parse_jsonl(text))
    assert [line for line, _ in rows] == [1, 3, 4, 5]
    assert rows[0][1] == {"phone": "+12125550142"}
    assert isinstance(rows[1][1], RowRefusal)
    assert rows[1][1].reason is RefusalReason.MALFORMED
    assert isinstance(rows[2][1], RowRefusal)
    assert rows[3][1] == {"phone": "+12125550143"}


def test_csv_columns_map_to_the_row_shape() -> None:
    text = (
        "\ufeffphone,first_name,time_zone,consent.deals,consent.deals.at,consent.deals.source,"
        "consent.deals.disclosure_version,consent.alerts,consent.alerts.at\n"
        '(212) 555-0142,"Ana, Maria",America/New_York,yes,2026-10-01T12:00:00Z,web form,v3,,\n'
        "+12125550143,,,,,,,no,2026-10-01T12:00:00Z\n"
    )
    rows = list(parse_csv(text))
    assert [line for line, _ in rows] == [2, 3]
    first = _validate(rows[0][1])
    assert isinstance(first, ContactImport)
    assert first.attributes == {"first_name": "Ana, Maria"}
    assert first.time_zone == "America/New_York"
    assert [(c.topic, c.status, c.source, c.disclosure_version) for c in first.consents] == [
        ("deals", "active", "web form", "v3")
    ]
    second = _validate(rows[1][1], line=3)
    assert isinstance(second, ContactImport)
    assert [(c.topic, c.status) for c in second.consents] == [("alerts", "revoked")]


def test_csv_line_numbers_count_physical_lines_of_multi_line_cells() -> None:
    text = 'phone,note\n+12125550142,"two\nlines"\n+12125550143,x,extra\n'
    rows = list(parse_csv(text))
    assert [line for line, _ in rows] == [2, 4]
    assert isinstance(rows[1][1], RowRefusal)
    assert "3 cells" in rows[1][1].detail


@pytest.mark.parametrize(
    ("row_cells", "detail"),
    [
        ("+12125550142,,2026-10-01T12:00:00Z", "details given without consent.alerts"),
        ("+12125550142,perhaps,2026-10-01T12:00:00Z", "active/revoked"),
    ],
)
def test_csv_consent_cells_that_make_no_sense_refuse_the_row(row_cells: str, detail: str) -> None:
    rows = list(parse_csv(f"phone,consent.alerts,consent.alerts.at\n{row_cells}\n"))
    refusal = rows[0][1]
    assert isinstance(refusal, RowRefusal)
    assert refusal.reason is RefusalReason.INVALID_FIELD
    assert detail in refusal.detail


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("first_name,email", "no phone column"),
        ("phone,phone", "repeats phone"),
        ("phone,consent.deals.when", "consent.<topic>"),
        ("phone,first name", "not a valid attribute name"),
    ],
)
def test_a_csv_header_that_cannot_be_read_refuses_the_whole_file(header: str, problem: str) -> None:
    with pytest.raises(ImportFileError, match=problem):
        list(parse_csv(header + "\n+12125550142,x\n"))


def test_format_is_taken_from_the_name_or_the_content() -> None:
    assert detect_format("contacts.CSV", "{") == "csv"
    assert detect_format("contacts.jsonl", "phone") == "jsonl"
    assert detect_format("export.txt", '  {"phone": "+1"}') == "jsonl"
    assert detect_format("export.txt", "phone,name") == "csv"


def test_future_tolerance_allows_small_clock_skew() -> None:
    at = (NOW + timedelta(minutes=2)).isoformat()
    assert isinstance(_validate({"phone": "+12125550142", "consents": {"alerts": {"at": at}}}), ContactImport)
