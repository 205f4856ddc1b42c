"""The consent ledger: an append-only, hash-chained record of every consent change.

Each entry's hash covers its content and the previous entry's hash, so editing or removing
any entry breaks every link after it, and `verify` names the first broken one.
"""

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

GENESIS = "0" * 64


class LedgerEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    phone: str
    seq: int
    recorded_at: datetime
    event_time: datetime
    kind: str
    scope: str
    outcome: str
    evidence: dict[str, Any]
    prev_hash: str
    hash: str

    def content(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"hash"})


def entry_hash(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
) -> LedgerEntry:
    content = {
        "phone": phone,
        "seq": seq,
        "recorded_at": recorded_at,
        "event_time": event_time,
        "kind": kind,
        "scope": scope,
        "outcome": outcome,
        "evidence": evidence,
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
        previous = entry.hash
    return ChainCheck(ok=True, entries=len(entries))
