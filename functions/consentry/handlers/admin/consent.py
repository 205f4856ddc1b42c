"""Consent history and ledger verification for one contact."""

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from consentry.domain.ledger import verify
from consentry.domain.phone import normalize
from consentry.store import contacts

router = Router()


@router.get("/contacts/<phone>/consent")
def consent_history(phone: str) -> dict[str, Any]:
    number = normalize(phone)
    record = contacts.load(number)
    entries = contacts.ledger_entries(number)
    if record is None and not entries:
        raise NotFoundError(f"no contact {number}")
    check = verify(entries)
    return {
        "phone": number,
        "state": record.consent.model_dump(mode="json") if record else None,
        "ledger": [entry.model_dump(mode="json") for entry in entries],
        "chain": check.model_dump(mode="json"),
    }
