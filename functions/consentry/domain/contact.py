"""A contact as the domain sees it: consent plus what sending decisions need."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from consentry.domain.consent import ContactConsent
from consentry.domain.ledger import GENESIS


class Contact(BaseModel):
    """One contact item, decoded (store/contacts.py documents the stored attributes)."""

    model_config = ConfigDict(frozen=True)

    consent: ContactConsent
    version: int = 0
    ledger_seq: int = 0
    ledger_head: str = GENESIS
    attributes: dict[str, Any] = {}
    time_zone: str | None = None
    undeliverable: dict[str, Any] | None = None
    #: send key (campaign id or idempotency key) -> {at (epoch s), topic, message_class, message_id, state}
    sends: dict[str, dict[str, Any]] = {}
    frequency_cap: dict[str, int] | None = None
    paused_until: datetime | None = None

    @property
    def phone(self) -> str:
        return self.consent.phone
