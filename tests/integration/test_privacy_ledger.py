"""The consent ledger stays verifiable after erasure redacts its personal fields, and only then."""

from datetime import UTC, datetime, timedelta

import pytest

from consentry.domain.ledger import GENESIS, LedgerEntry, make_entry, personal_digest, verify

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PHONE = "+12125550142"


def _chain(length: int = 3) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    previous = GENESIS
    for seq in range(1, length + 1):
        entry = make_entry(
            phone=PHONE,
            seq=seq,
            prev_hash=previous,
            recorded_at=T0 + timedelta(minutes=seq),
            event_time=T0 + timedelta(minutes=seq),
            kind="opt_in" if seq % 2 else "opt_out",
            scope="deals",
            outcome="applied",
            evidence={"source": "sms", "reference": f"eum:{seq}", "text": "DEALS", "detail": {}},
        )
        entries.append(entry)
        previous = entry.hash
    return entries


def test_a_fresh_chain_verifies_and_its_hash_does_not_cover_raw_personal_values() -> None:
    entries = _chain()
    assert verify(entries).ok
    for entry in entries:
        content = entry.content()
        assert "phone" not in content
        assert "evidence" not in content
        assert PHONE not in str(content)
        assert content["phone_digest"] == entry.phone_digest


def test_redacting_every_entry_keeps_the_chain_verifiable_and_removes_the_personal_data() -> None:
    erased_at = T0 + timedelta(days=3)
    redacted = [entry.redact(erased_at) for entry in _chain()]
    assert verify(redacted).ok
    for entry in redacted:
        assert entry.phone is None
        assert entry.evidence is None
        assert entry.digest_salt is None
        dumped = entry.model_dump_json()
        assert PHONE not in dumped
        assert "DEALS" not in dumped
        assert (entry.kind, entry.scope, entry.outcome) in {
            ("opt_in", "deals", "applied"),
            ("opt_out", "deals", "applied"),
        }


def test_a_partially_redacted_chain_verifies() -> None:
    entries = _chain()
    mixed = [entries[0].redact(T0), entries[1], entries[2].redact(T0)]
    assert verify(mixed).ok


@pytest.mark.parametrize(
    ("update", "problem"),
    [
        ({"phone": "+12125550199"}, "phone does not match its digest"),
        (
            {"evidence": {"source": "sms", "reference": "eum:2", "text": "YES", "detail": {}}},
            "evidence does not match its digest",
        ),
        ({"phone_digest": "0" * 64}, "content does not match its hash"),
        ({"outcome": "stale"}, "content does not match its hash"),
        ({"evidence": None}, "personal fields missing from an entry that was not redacted"),
    ],
)
def test_tampering_with_raw_or_hashed_fields_is_detected(update: dict[str, object], problem: str) -> None:
    entries = _chain()
    entries[1] = entries[1].model_copy(update=update)
    check = verify(entries)
    assert not check.ok
    assert check.first_broken_seq == 2
    assert check.problem == problem


def test_a_redacted_entry_that_still_carries_personal_data_is_flagged() -> None:
    entries = _chain()
    entries[1] = entries[1].redact(T0).model_copy(update={"phone": PHONE})
    check = verify(entries)
    assert not check.ok
    assert check.problem == "redacted entry still holds personal data"


def test_removing_a_redacted_entry_still_breaks_the_chain() -> None:
    redacted = [entry.redact(T0) for entry in _chain()]
    check = verify([redacted[0], redacted[2]])
    assert not check.ok
    assert check.first_broken_seq == 2


def test_digests_ignore_absent_members_as_storage_drops_them() -> None:
    assert personal_digest("s", {"a": "1", "text": None}) == personal_digest("s", {"a": "1"})
    assert personal_digest("s", PHONE) != personal_digest("t", PHONE)
