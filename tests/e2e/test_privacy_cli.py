"""The operator's privacy workflow through the CLI: import a file, re-import it, export, erase, re-import."""

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from consentry import admin_client, cli
from consentry_local.runtime import LocalRuntime
from tests.e2e.helpers import RuntimeAdminClient, contact, ledger

ANA = "+12125550142"
BEN = "+13125550143"
CSV_TEXT = (
    "phone,first_name,time_zone,consent.deals,consent.deals.at,consent.deals.source,"
    "consent.deals.disclosure_version,consent.alerts,consent.alerts.at\n"
    "(212) 555-0142,Ana,America/New_York,yes,2026-10-01T12:00:00Z,checkout form,deals-v3,"
    "yes,2026-10-01T12:00:00Z\n"
    "+13125550143,Ben,,yes,2026-10-02T12:00:00Z,,,,\n"  # promotional consent without evidence
    "555-0100,Cy,,,,,,yes,2026-10-02T12:00:00Z\n"  # not a valid number
    "+13125550143,Ben,,,,,,yes,2026-10-02T12:00:00Z\n"
    "+14155550144,Di,Mars/Base,,,,,,\n"
)


@pytest.fixture
def cli_runtime(runtime: LocalRuntime) -> Iterator[LocalRuntime]:
    admin_client.use_client(lambda _url: RuntimeAdminClient(runtime))
    try:
        yield runtime
    finally:
        admin_client.use_client(None)


def last_json(output: str) -> dict[str, object]:
    """The CLI's answer: handlers running in-process may print their metrics before it."""
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def test_import_reimport_export_erase_and_reimport_through_the_cli(
    cli_runtime: LocalRuntime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "crm.csv"
    source.write_text(CSV_TEXT, encoding="utf-8")
    errors = tmp_path / "refused.csv"

    assert cli.main(["contacts", "import", str(source), "--errors", str(errors), "--page-size", "2"]) == 1
    out, err = capsys.readouterr()
    summary = last_json(out)
    assert (summary["rows"], summary["imported"], summary["refused"]) == (5, 2, 3)
    assert "importing [" in err
    assert "5/5 rows" in err
    with errors.open(encoding="utf-8") as handle:
        refused = list(csv.DictReader(handle))
    assert [(row["line"], row["reason"]) for row in refused] == [
        ("3", "missing_evidence"),
        ("4", "invalid_phone"),
        ("6", "invalid_field"),
    ]
    assert all(ANA not in row["detail"] and "555" not in row["detail"] for row in refused)
    record = contact(ANA)
    assert record is not None
    assert record.consent.is_subscribed("deals")
    assert record.attributes == {"first_name": "Ana"}
    assert contact(BEN) is not None

    ledger_before = ledger(ANA)
    assert cli.main(["contacts", "import", str(source), "--errors", str(errors)]) == 1
    again = last_json(capsys.readouterr()[0])
    assert (again["imported"], again["unchanged"], again["batch"]) == (0, 2, summary["batch"])
    assert ledger(ANA) == ledger_before

    export_file = tmp_path / "ana.json"
    assert cli.main(["contacts", "export", "(212) 555-0142", "--output", str(export_file)]) == 0
    exported = json.loads(export_file.read_text(encoding="utf-8"))
    assert exported["profile"]["attributes"] == {"first_name": "Ana"}
    assert [entry["scope"] for entry in exported["ledger"]] == ["alerts", "deals"]

    assert cli.main(["contacts", "erase", ANA]) == 2
    assert "--yes" in capsys.readouterr().err
    assert contact(ANA) is not None

    assert cli.main(["contacts", "erase", ANA, "--yes"]) == 0
    erased = last_json(capsys.readouterr()[0])
    assert erased["contact_deleted"] is True
    assert erased["ledger_chain"] == {"ok": True, "entries": 2, "first_broken_seq": None, "problem": None}
    assert contact(ANA) is None

    jsonl_errors = tmp_path / "refused.jsonl"
    assert cli.main(["contacts", "import", str(source), "--errors", str(jsonl_errors)]) == 1
    capsys.readouterr()
    refusals = [json.loads(line) for line in jsonl_errors.read_text(encoding="utf-8").splitlines()]
    assert {key: refusals[0][key] for key in ("line", "reason")} == {"line": 2, "reason": "erased"}
    assert contact(ANA) is None


def test_cli_refusals_are_one_line_errors(
    cli_runtime: LocalRuntime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    headless = tmp_path / "bad.csv"
    headless.write_text("first_name\nAna\n", encoding="utf-8")
    assert cli.main(["contacts", "import", str(headless)]) == 2
    assert "no phone column" in capsys.readouterr().err
    assert cli.main(["contacts", "import", str(tmp_path / "missing.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
    binary = tmp_path / "latin1.csv"
    binary.write_bytes("phone,name\n+12125550142,Jos\xe9\n".encode("latin-1"))
    assert cli.main(["contacts", "import", str(binary)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert cli.main(["contacts", "export", "not a number"]) == 2
    assert cli.main(["contacts", "export", "+12125550199"]) == 2
    assert "404" in capsys.readouterr().err
    assert cli.main(["contacts", "import", str(headless), "--page-size", "501"]) == 2


def test_jsonl_import_writes_malformed_lines_to_the_error_file_with_their_numbers(
    cli_runtime: LocalRuntime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "contacts.jsonl"
    source.write_text(
        json.dumps({"phone": ANA, "consents": {"alerts": {"at": "2026-10-01T12:00:00Z"}}})
        + "\n{not json\n\n"
        + json.dumps({"phone": BEN, "consents": {"weekly": {"at": "2026-10-01T12:00:00Z"}}})
        + "\n",
        encoding="utf-8",
    )
    assert cli.main(["contacts", "import", str(source)]) == 1
    summary = last_json(capsys.readouterr()[0])
    assert summary["errors_file"] == f"{source}.errors.csv"
    with open(f"{source}.errors.csv", encoding="utf-8") as handle:
        refused = [(row["line"], row["reason"]) for row in csv.DictReader(handle)]
    assert refused == [("2", "malformed"), ("4", "unknown_topic")]
    assert contact(ANA) is not None


def test_parallel_pages_import_every_row(
    cli_runtime: LocalRuntime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "many.csv"
    numbers = [f"+1212555{n:04d}" for n in range(150, 158)]
    source.write_text(
        "phone,consent.alerts,consent.alerts.at\n"
        + "".join(f"{n},yes,2026-10-01T12:00:00Z\n" for n in numbers),
        encoding="utf-8",
    )
    assert cli.main(["contacts", "import", str(source), "--page-size", "1", "--parallel", "4"]) == 0
    summary = last_json(capsys.readouterr()[0])
    assert (summary["imported"], summary["refused"]) == (8, 0)
    assert all(contact(number) is not None for number in numbers)


def test_a_page_the_api_refuses_stops_the_import_with_the_lines_named(
    runtime: LocalRuntime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class RefusesSecondPage(RuntimeAdminClient):
        calls = 0

        def request(self, method: str, path: str, **kwargs: object) -> admin_client.AdminResponse:
            RefusesSecondPage.calls += 1
            if RefusesSecondPage.calls == 2:
                return admin_client.AdminResponse(400, '{"error": "rows: too many"}')
            return super().request(method, path, **kwargs)  # type: ignore[arg-type]

    source = tmp_path / "three.jsonl"
    source.write_text(
        "".join(
            json.dumps({"phone": number, "consents": {"alerts": {"at": "2026-10-01T12:00:00Z"}}}) + "\n"
            for number in (ANA, BEN, "+14155550144")
        )
        + "{broken\n",
        encoding="utf-8",
    )
    admin_client.use_client(lambda _url: RefusesSecondPage(runtime))
    try:
        assert cli.main(["contacts", "import", str(source), "--page-size", "1"]) == 2
    finally:
        admin_client.use_client(None)
    err = capsys.readouterr().err
    assert "answered 400 for lines 2-2: rows: too many" in err
    assert "run the same file again" in err
    assert contact(ANA) is not None
    assert contact("+14155550144") is None  # pages after the refused one were not sent
    with open(f"{source}.errors.csv", encoding="utf-8") as handle:
        assert [row["line"] for row in csv.DictReader(handle)] == ["4"]  # what was known is kept
