"""`consentry contacts import|show|export|erase` through the admin API.

    consentry contacts import contacts.csv [--errors refused.csv] [--parallel 4]
    consentry contacts show +12125550142
    consentry contacts export +12125550142 [--output ana.json]
    consentry contacts erase +12125550142 --yes

Import reads CSV or JSON Lines (format from the file name or its content; see
consentry.domain.imports for the columns), sends it in pages of at most 500 rows, draws a
progress bar on stderr, and writes every refused row -- line number, reason code, detail -- to
the error file (CSV, or JSON Lines when its name ends in .jsonl). The batch id is a hash of the
file's content, so running the same file again (after a failure half-way, say) changes nothing
that was already imported. Exit code 0 when every row was imported or unchanged, 1 when some
were refused, 2 when the file or the API could not be used.
"""

import argparse
import csv
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TextIO

from consentry.admin_client import AdminClient, AdminResponse, add_api_argument, admin_client
from consentry.commands import CommandError, print_json
from consentry.domain.imports import ImportFileError, RowRefusal, detect_format, parse_file
from consentry.domain.phone import InvalidPhoneNumber, normalize

MAX_PAGE_ROWS = 500
MAX_PARALLEL = 16
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_DELAYS = (1.0, 2.0, 4.0)


def register(subparsers: Any) -> None:
    contacts = subparsers.add_parser("contacts", help="import, show, export and erase contacts")
    actions = contacts.add_subparsers(dest="action", required=True, metavar="ACTION")

    importer = actions.add_parser(
        "import", help="import contacts with their consent evidence (CSV or JSON Lines)"
    )
    importer.add_argument("file", type=Path, metavar="FILE")
    importer.add_argument(
        "--errors", type=Path, help="where refused rows go (default FILE.errors.csv; .jsonl for JSON Lines)"
    )
    importer.add_argument(
        "--format", choices=("csv", "jsonl"), help="override the format taken from the file"
    )
    importer.add_argument(
        "--page-size", type=int, default=MAX_PAGE_ROWS, help=f"rows per request (1-{MAX_PAGE_ROWS})"
    )
    importer.add_argument(
        "--parallel",
        type=int,
        default=1,
        help=f"pages in flight at once (1-{MAX_PARALLEL}); rows of one number in different pages "
        "may then apply out of file order (consent still goes by its time)",
    )
    add_api_argument(importer)
    importer.set_defaults(func=_import)

    show = actions.add_parser("show", help="a contact's profile and consent state")
    show.add_argument("phone")
    add_api_argument(show)
    show.set_defaults(func=_show)

    export = actions.add_parser("export", help="everything held about a number (GDPR Art. 15), as JSON")
    export.add_argument("phone")
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")
    add_api_argument(export)
    export.set_defaults(func=_export)

    erase = actions.add_parser(
        "erase",
        help="erase a number (GDPR Art. 17): keeps only a salted hash and the redacted consent ledger",
    )
    erase.add_argument("phone")
    erase.add_argument("--yes", action="store_true", help="confirm: erasure cannot be undone")
    add_api_argument(erase)
    erase.set_defaults(func=_erase)


# --- import ----------------------------------------------------------------------------------------


class ProgressBar:
    """One line on stderr, redrawn in place: how many rows are done."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.width = width
        self.started = time.monotonic()

    def update(self, done: int) -> None:
        share = done / self.total if self.total else 1.0
        filled = int(share * self.width)
        elapsed = max(time.monotonic() - self.started, 1e-6)
        self.stream.write(
            f"\rimporting [{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} rows "
            f"{share:4.0%} {done / elapsed:,.0f} rows/s"
        )
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _import(args: argparse.Namespace) -> int:
    if not 1 <= args.page_size <= MAX_PAGE_ROWS:
        raise CommandError(f"--page-size must be 1-{MAX_PAGE_ROWS}")
    if not 1 <= args.parallel <= MAX_PARALLEL:
        raise CommandError(f"--parallel must be 1-{MAX_PARALLEL}")
    try:
        content = args.file.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from exc
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{args.file} is not UTF-8 text (byte {exc.start})") from exc
    batch = hashlib.sha256(content).hexdigest()[:32]
    file_format = args.format or detect_format(args.file.name, text)
    try:
        parsed = list(parse_file(text, file_format))
    except ImportFileError as exc:
        raise CommandError(f"{args.file}: {exc}") from exc
    refused = [row for _line, row in parsed if isinstance(row, RowRefusal)]
    sendable = [{"line": line, "row": row} for line, row in parsed if not isinstance(row, RowRefusal)]

    client = admin_client(args.api)
    totals = {"imported": 0, "unchanged": 0}
    progress = ProgressBar(len(parsed))
    done = len(refused)
    progress.update(done)
    pages = iter(
        [sendable[start : start + args.page_size] for start in range(0, len(sendable), args.page_size)]
    )
    in_flight: dict[Future[dict[str, Any]], int] = {}
    try:
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:

            def send_more() -> None:
                # At most --parallel pages in flight, so a refused page stops the ones after it.
                while len(in_flight) < args.parallel and (page := next(pages, None)) is not None:
                    in_flight[pool.submit(_send_page, client, batch, page)] = len(page)

            send_more()
            while in_flight:
                finished, _running = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    rows = in_flight.pop(future)
                    result = future.result()
                    totals["imported"] += int(result["imported"])
                    totals["unchanged"] += int(result["unchanged"])
                    refused.extend(RowRefusal.model_validate(item) for item in result["refused"])
                    done += rows
                    progress.update(done)
                send_more()
    finally:
        progress.close()
        refused.sort(key=lambda refusal: refusal.line)
        errors_path = args.errors or Path(f"{args.file}.errors.csv")
        if refused:
            _write_errors(errors_path, refused)
    summary = {
        "file": str(args.file),
        "batch": batch,
        "format": file_format,
        "rows": len(parsed),
        **totals,
        "refused": len(refused),
        "errors_file": str(errors_path) if refused else None,
    }
    print_json(summary)
    return 1 if refused else 0


def _send_page(client: AdminClient, batch: str, page: Sequence[dict[str, Any]]) -> dict[str, Any]:
    response: AdminResponse | None = None
    for delay in (*RETRY_DELAYS, None):
        response = client.request("POST", "/contacts/import", body={"batch": batch, "rows": list(page)})
        if response.status not in RETRY_STATUSES or delay is None:
            break
        time.sleep(delay)  # the import is idempotent, so a retried page changes nothing twice
    assert response is not None
    if not response.ok:
        first, last = page[0]["line"], page[-1]["line"]
        raise CommandError(
            f"admin API answered {response.status} for lines {first}-{last}: {_reason(response)}; "
            "rows before them are imported, run the same file again to continue"
        )
    result: dict[str, Any] = response.json()
    return result


def _write_errors(path: Path, refused: Sequence[RowRefusal]) -> None:
    try:
        with path.open("w", encoding="utf-8", newline="") as handle:
            if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
                for refusal in refused:
                    handle.write(refusal.model_dump_json() + "\n")
            else:
                writer = csv.writer(handle)
                writer.writerow(["line", "reason", "detail"])
                writer.writerows([refusal.line, refusal.reason.value, refusal.detail] for refusal in refused)
    except OSError as exc:
        raise CommandError(f"cannot write the error file {path}: {exc.strerror}") from exc


# --- show, export, erase ---------------------------------------------------------------------------


def _number(raw: str) -> str:
    try:
        return normalize(raw)
    except InvalidPhoneNumber as exc:
        raise CommandError(str(exc)) from exc


def _reason(response: AdminResponse) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.body[:200]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)[:300]
    return str(body)[:300]


def _checked(response: AdminResponse) -> dict[str, Any]:
    if not response.ok:
        raise CommandError(f"admin API answered {response.status}: {_reason(response)}")
    result: dict[str, Any] = response.json()
    return result


def _show(args: argparse.Namespace) -> int:
    print_json(_checked(admin_client(args.api).request("GET", f"/contacts/{_number(args.phone)}")))
    return 0


def _export(args: argparse.Namespace) -> int:
    exported = _checked(admin_client(args.api).request("GET", f"/contacts/{_number(args.phone)}/export"))
    if args.output is None:
        print_json(exported)
        return 0
    try:
        args.output.write_text(json.dumps(exported, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {args.output}: {exc.strerror}") from exc
    print(f"export written to {args.output}", file=sys.stderr)
    return 0


def _erase(args: argparse.Namespace) -> int:
    number = _number(args.phone)
    if not args.yes:
        raise CommandError(f"erasing {number} cannot be undone; pass --yes to confirm")
    print_json(_checked(admin_client(args.api).request("DELETE", f"/contacts/{number}")))
    return 0
