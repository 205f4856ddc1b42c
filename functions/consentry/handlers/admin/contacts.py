"""Contact routes: import (pages of rows), show, export (GDPR Art. 15), erase (GDPR Art. 17).

POST /contacts/import   {"batch": "<id>", "rows": [{"line": 2, "row": {...}}, ...]}  (<= 500 rows)
    -> 200 {"batch", "rows", "imported", "unchanged", "refused": [{"line", "reason", "detail"}]}
    A malformed request is refused whole (400 with the reasons); a bad row is refused alone.
GET /contacts/{phone}           -> the profile and consent state (404 if unknown)
GET /contacts/{phone}/export    -> everything held about the number (404 if nothing)
DELETE /contacts/{phone}        -> erasure report (404 if nothing is held and it was never erased)
"""

import json
from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from consentry.domain.phone import normalize
from consentry.handlers.responses import error_response, json_response
from consentry.services import contacts

router = Router()

MAX_ROWS_PER_REQUEST = 500


class ImportLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: int = Field(ge=1)
    row: Any  # validated row by row: a bad row is refused alone, with its line


class ImportPage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
    rows: Annotated[list[ImportLine], Field(min_length=1, max_length=MAX_ROWS_PER_REQUEST)]


def _number(phone: str) -> str:
    return normalize(unquote(phone))


@router.post("/contacts/import")
def import_contacts() -> Response[str]:
    try:
        body = json.loads(router.current_event.body or "")
    except (json.JSONDecodeError, TypeError):
        return error_response(400, "body is not JSON")
    try:
        page = ImportPage.model_validate(body)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors()[:5]
        )
        return error_response(400, reasons)
    lines = [entry.line for entry in page.rows]
    if len(set(lines)) != len(lines):
        return error_response(400, "rows: line numbers repeat within the request")
    report = contacts.import_rows(page.batch, [(entry.line, entry.row) for entry in page.rows])
    return json_response(200, report.model_dump(mode="json"))


@router.get("/contacts/<phone>")
def show_contact(phone: str) -> Response[str]:
    number = _number(phone)
    summary = contacts.contact_summary(number)
    if summary is None:
        raise NotFoundError(f"no contact {number}")
    return json_response(200, summary)


@router.get("/contacts/<phone>/export")
def export_contact(phone: str) -> Response[str]:
    number = _number(phone)
    exported = contacts.export(number)
    if exported is None:
        raise NotFoundError(f"nothing is held about {number}")
    return json_response(200, exported)


@router.delete("/contacts/<phone>")
def erase_contact(phone: str) -> Response[str]:
    number = _number(phone)
    try:
        report = contacts.erase(number)
    except contacts.NothingHeld:
        return error_response(404, f"nothing is held about {number} and it was never erased")
    return json_response(200, {"phone": number, **report.model_dump(mode="json")})
