"""The consent ledger: an append-only, hash-chained record of every consent change.

Each entry's hash covers its content and the previous entry's hash, so editing or removing
any entry breaks every link after it, and `verify` names the first broken one.

Personal fields (the phone number and the evidence: inbound text, disclosure, references)
enter the hash only through salted digests. The salt is random per entry and is erased with
the values, so after erasure (GDPR Art. 17) an entry keeps what the law requires -- kind,
scope, times, outcome -- plus digests that reveal nothing, and the chain still verifies.
While the raw values are present, `verify` recomputes their digests, so they cannot be edited.
"""

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

GENESIS = "0" * 64
#: The fields that hold personal data; erasure removes them (and the salt of their digests).
PERSONAL_FIELDS = frozenset({"phone", "evidence", "digest_salt"})
_NOT_HASHED = PERSONAL_FIELDS | {"hash", "redacted_at"}


class LedgerEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    phone: str | None  # None once erased
    seq: int
    recorded_at: datetime
    event_time: datetime
    kind: str
    scope: str
    outcome: str
    evidence: dict[str, Any] | None  # None once erased
    digest_salt: str | None  # random per entry; erased with the values it salts
    phone_digest: str
    evidence_digest: str
    prev_hash: str
    hash: str
    redacted_at: datetime | None = None

    @property
    def redacted(self) -> bool:
        return self.redacted_at is not None

    def content(self) -> dict[str, Any]:
        """What the hash covers: everything but the personal fields, which count by digest."""
        return self.model_dump(mode="json", exclude=set(_NOT_HASHED))

    def redact(self, at: datetime) -> "LedgerEntry":
        """The entry without personal data; its hash and digests are unchanged."""
        return self.model_copy(update={**dict.fromkeys(PERSONAL_FIELDS), "redacted_at": at})


def entry_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(content).encode()).hexdigest()


def personal_digest(salt: str, value: Any) -> str:
    """Salted digest of a personal value. Absent (None) members are ignored, as storage drops them."""
    return hashlib.sha256(f"{salt}:{_canonical(_without_none(value))}".encode()).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _without_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [_without_none(item) for item in value]
    return value


def make_entry(
    *,
    phone: str,
    seq: int,
    prev_hash: str,
    recorded_at: datetime,
    event_time: datetime,
    kind: str,
    scope: str,
    outcome: str,
    evidence: dict[str, Any],
    digest_salt: str | None = None,
) -> LedgerEntry:
    salt = digest_salt or secrets.token_hex(16)
    content = {
        "phone": phone,
        "seq": seq,
        "recorded_at": recorded_at,
        "event_time": event_time,
        "kind": kind,
        "scope": scope,
        "outcome": outcome,
        "evidence": evidence,
        "digest_salt": salt,
        "phone_digest": personal_digest(salt, phone),
        "evidence_digest": personal_digest(salt, evidence),
        "prev_hash": prev_hash,
    }
    draft = LedgerEntry.model_validate({**content, "hash": ""})
    return draft.model_copy(update={"hash": entry_hash(draft.content())})


class ChainCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    ok: bool
    entries: int
    first_broken_seq: int | None = None
    problem: str | None = None


def verify(entries: Sequence[LedgerEntry]) -> ChainCheck:
    previous = GENESIS
    for expected_seq, entry in enumerate(sorted(entries, key=lambda e: e.seq), start=1):
        if entry.seq != expected_seq:
            return ChainCheck(
                ok=False, entries=len(entries), first_broken_seq=expected_seq, problem="entry missing"
            )
        if entry.prev_hash != previous:
            return ChainCheck(
                ok=False,
                entries=len(entries),
                first_broken_seq=entry.seq,
                problem="does not link to previous entry",
            )
        if entry_hash(entry.content()) != entry.hash:
            return ChainCheck(
                ok=False,
                entries=len(entries),
                first_broken_seq=entry.seq,
                problem="content does not match its hash",
            )
        if (problem := _personal_fields_problem(entry)) is not None:
            return ChainCheck(ok=False, entries=len(entries), first_broken_seq=entry.seq, problem=problem)
        previous = entry.hash
    return ChainCheck(ok=True, entries=len(entries))


def _personal_fields_problem(entry: LedgerEntry) -> str | None:
    """Raw personal values must match their digests; erased ones are trusted by digest alone."""
    if entry.redacted:
        if entry.phone is not None or entry.evidence is not None or entry.digest_salt is not None:
            return "redacted entry still holds personal data"
        return None
    if entry.phone is None or entry.evidence is None or entry.digest_salt is None:
        return "personal fields missing from an entry that was not redacted"
    if personal_digest(entry.digest_salt, entry.phone) != entry.phone_digest:
        return "phone does not match its digest"
    if personal_digest(entry.digest_salt, entry.evidence) != entry.evidence_digest:
        return "evidence does not match its digest"
    return None
