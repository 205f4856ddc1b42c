"""Apply a consent change to a contact: decide (pure), then commit state + ledger atomically."""

from aws_lambda_powertools import Logger

from consentry import clock
from consentry.domain.consent import ConsentChange, ContactConsent, Decision, Outcome, apply_change
from consentry.domain.ledger import GENESIS, make_entry
from consentry.domain.phone import mask
from consentry.store import contacts

logger = Logger(child=True)

MAX_ATTEMPTS = 5


def commit_change(phone: str, change: ConsentChange) -> Decision:
    """Apply `change`, retrying on concurrent writers. Duplicates are recognised, never re-recorded.

    The SDK sends a transaction again when it loses the answer to one that landed; the repeat is
    refused as if another writer had raced us. Reading again, a ledger head equal to the entry
    this call wrote means the change is ours and applied, not a duplicate from elsewhere (which
    would skip the confirmation and the ConsentChanged event the change is owed).
    """
    attempted: tuple[str, Decision] | None = None
    for _attempt in range(MAX_ATTEMPTS):
        record = contacts.load(phone)
        if attempted is not None and record is not None and record.ledger_head == attempted[0]:
            logger.info("consent change recorded (its answer was lost)", extra={"phone": mask(phone)})
            return attempted[1]
        before = record.consent if record else ContactConsent(phone=phone)
        decision = apply_change(before, change)
        if decision.outcome is Outcome.DUPLICATE:
            return decision
        entry = make_entry(
            phone=phone,
            seq=(record.ledger_seq if record else 0) + 1,
            prev_hash=record.ledger_head if record else GENESIS,
            recorded_at=clock.now(),
            event_time=change.event_time,
            kind=change.kind.value,
            scope=change.scope,
            outcome=decision.outcome.value,
            evidence=change.evidence.model_dump(mode="json"),
        )
        try:
            attempted = (entry.hash, decision)
            contacts.commit_consent(record, decision.state, entry)
        except contacts.ConcurrentUpdate:
            logger.info("consent write raced, reading again", extra={"phone": mask(phone)})
            continue
        logger.info(
            "consent change recorded",
            extra={
                "phone": mask(phone),
                "kind": change.kind.value,
                "scope": change.scope,
                "outcome": decision.outcome,
            },
        )
        return decision
    raise contacts.ConcurrentUpdate(f"gave up after {MAX_ATTEMPTS} attempts for {mask(phone)}")
