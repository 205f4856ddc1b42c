"""Consent state transitions: event-time ordering, duplicates, global STOP over topics, double opt-in."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.consent import (
    ALL,
    ChangeKind,
    ConsentChange,
    ContactConsent,
    Evidence,
    Outcome,
    TopicStatus,
    apply_change,
)

T0 = datetime(2026, 11, 24, 15, tzinfo=UTC)
PHONE = "+13055550123"


def change(kind: ChangeKind, scope: str, seconds: int, ref: str | None = None) -> ConsentChange:
    return ConsentChange(
        kind=kind,
        scope=scope,
        event_time=T0 + timedelta(seconds=seconds),
        evidence=Evidence(source="sms", reference=ref or f"{kind}-{scope}-{seconds}"),
    )


def apply_all(changes: list[ConsentChange]) -> ContactConsent:
    state = ContactConsent(phone=PHONE)
    for item in changes:
        state = apply_change(state, item).state
    return state


KINDS = st.sampled_from([ChangeKind.OPT_OUT, ChangeKind.OPT_IN])
EVENTS = st.lists(
    st.tuples(KINDS, st.sampled_from([ALL, "alerts"]), st.integers(0, 10_000)),
    min_size=1,
    max_size=8,
    unique_by=lambda e: e[2],
)


@given(EVENTS, st.randoms())
def test_final_state_does_not_depend_on_delivery_order(
    events: list[tuple[ChangeKind, str, int]], rng: object
) -> None:
    changes = [change(kind, scope, seconds) for kind, scope, seconds in events]
    shuffled = list(changes)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    in_order = apply_all(sorted(changes, key=lambda c: c.event_time))
    reordered = apply_all(shuffled)
    assert reordered.opted_out == in_order.opted_out
    assert {k: v.status for k, v in reordered.topics.items()} == {
        k: v.status for k, v in in_order.topics.items()
    }


@given(EVENTS)
def test_redelivering_every_change_changes_nothing(events: list[tuple[ChangeKind, str, int]]) -> None:
    changes = [change(kind, scope, seconds) for kind, scope, seconds in events]
    once = apply_all(changes)
    twice = once
    for item in changes:
        decision = apply_change(twice, item)
        assert decision.outcome is Outcome.DUPLICATE
        twice = decision.state
    assert twice == once


def test_global_stop_wins_over_topic_consent_and_start_restores_it() -> None:
    state = apply_all([change(ChangeKind.OPT_IN, "alerts", 1), change(ChangeKind.OPT_OUT, ALL, 2)])
    assert state.opted_out
    assert not state.is_subscribed("alerts")
    state = apply_change(state, change(ChangeKind.OPT_IN, ALL, 3)).state
    assert state.is_subscribed("alerts")


def test_repeated_stop_is_unchanged_and_owes_no_confirmation() -> None:
    state = apply_all([change(ChangeKind.OPT_OUT, ALL, 1)])
    assert apply_change(state, change(ChangeKind.OPT_OUT, ALL, 2)).outcome is Outcome.UNCHANGED


def test_double_opt_in_needs_yes_within_the_window() -> None:
    pending = apply_all([change(ChangeKind.REQUEST_CONFIRMATION, "deals", 1)])
    assert pending.topics["deals"].status is TopicStatus.PENDING
    assert not pending.is_subscribed("deals")
    confirmed = apply_change(pending, change(ChangeKind.CONFIRM, "pending", 60))
    assert confirmed.outcome is Outcome.APPLIED
    assert confirmed.state.is_subscribed("deals")
    late = apply_change(pending, change(ChangeKind.CONFIRM, "pending", 49 * 3600))
    assert late.outcome is Outcome.NOTHING_PENDING


def test_global_stop_ends_a_pending_double_opt_in() -> None:
    state = apply_all(
        [change(ChangeKind.REQUEST_CONFIRMATION, "deals", 1), change(ChangeKind.OPT_OUT, ALL, 2)]
    )
    assert apply_change(state, change(ChangeKind.CONFIRM, "pending", 3)).outcome is Outcome.NOTHING_PENDING
