"""Reading the local runtime's state the way an operator would, for assertions."""

import json
from typing import Any

from consentry.admin_client import AdminResponse
from consentry.domain.ledger import LedgerEntry
from consentry.store import contacts, messages
from consentry.store.contacts import ContactRecord
from consentry_local.runtime import LocalRuntime


def contact(phone: str) -> ContactRecord | None:
    return contacts.load(phone)


def ledger(phone: str) -> list[LedgerEntry]:
    return contacts.ledger_entries(phone)


def sent_to(runtime: LocalRuntime, phone: str) -> list[dict[str, Any]]:
    return [entry for entry in runtime.simulator.log_entries() if entry["to"] == phone]


def conversation(phone: str) -> list[dict[str, Any]]:
    return messages.conversation(phone)


def table_items(runtime: LocalRuntime, logical_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = runtime.client("dynamodb").scan(TableName=runtime.table_name(logical_id))[
        "Items"
    ]
    return items


class RuntimeAdminClient:
    """The admin API client the CLI uses, answered in-process by the local runtime."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Any = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> AdminResponse:
        from urllib.parse import urlencode

        target = "/v1" + path + (f"?{urlencode(query)}" if query else "")
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        response = self.runtime.http(method, target, body=payload, headers={"Content-Type": content_type})
        return AdminResponse(response.status, response.body)
