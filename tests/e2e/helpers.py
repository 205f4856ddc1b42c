"""Reading the local runtime's state the way an operator would, for assertions."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from consentry.domain.ledger import LedgerEntry
from consentry.store import contacts, messages
from consentry.store.contacts import ContactRecord
from consentry_local.admin import RuntimeAdminClient
from consentry_local.faults import FailOnce, ThrottleOnce
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


def assert_confirmed_once(runtime: LocalRuntime, phone: str) -> None:
    """The number got exactly one text from us, and it is the opt-out confirmation."""
    replies = [entry for entry in runtime.simulator.log_entries() if entry["to"] == phone]
    assert len(replies) == 1
    assert "unsubscribed" in replies[0]["body"]


def assert_stopped_once(runtime: LocalRuntime, phone: str) -> None:
    """Opted out by one ledger entry after its opt-in, and confirmed once."""
    record = contacts.load(phone)
    assert record is not None
    assert record.consent.opted_out
    assert [entry.kind for entry in contacts.ledger_entries(phone)] == ["opt_in", "opt_out"]
    assert_confirmed_once(runtime, phone)


__all__ = [
    "RuntimeAdminClient",
    "assert_confirmed_once",
    "assert_stopped_once",
    "contact",
    "conversation",
    "ledger",
    "sent_to",
    "table_items",
]


Fault = ThrottleOnce | FailOnce


@contextmanager
def faults_on(events: Any) -> Iterator[Callable[[Fault], Fault]]:
    """Install faults on a client's events (`client.meta.events`) for the block's duration."""
    installed: list[Fault] = []

    def install(fault: Fault) -> Fault:
        fault.register(events)
        installed.append(fault)
        return fault

    try:
        yield install
    finally:
        for fault in installed:
            fault.unregister(events)
