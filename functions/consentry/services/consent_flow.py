"""From a handed-off inbound text to committed consent and the one reply it is owed."""

from aws_lambda_powertools.metrics import MetricUnit

from consentry.domain.consent import ALL, ChangeKind, ConsentChange, Decision, Outcome
from consentry.domain.handoff import Handoff, change_for, reply_for, reply_id
from consentry.observability import metrics
from consentry.providers.registry import provider_from_environment
from consentry.services.consent import commit_change
from consentry.services.preferences import help_link
from consentry.services.program import current_program
from consentry.services.receipts import record_consent_change
from consentry.services.replies import resume_auto_reply, send_auto_reply


def process(handoff: Handoff) -> str:
    program = current_program()
    phone = handoff.inbound.from_number
    change = change_for(handoff, program)
    if change is None:  # HELP: no consent change, one answer
        body = reply_for(handoff, None, None, program, preferences_url=help_link(phone))
        return _reply(handoff, body) if body else "no_reply"
    decision = commit_change(phone, change)
    if decision.outcome is Outcome.DUPLICATE:
        # A redelivered hand-off: finish what the first delivery may have left undone.
        outcome = resume_auto_reply(reply_id(handoff))
        _lock_at_provider_if_stopped(phone, change, decision)
        return outcome
    _record(handoff, change, decision)
    if decision.was_opted_out and not decision.state.opted_out:
        # Off the provider's opt-out list before the welcome: a listed number cannot receive it.
        provider_from_environment().sync_opt_out(phone, opted_out=False)
    body = reply_for(handoff, change, decision, program)
    outcome = _reply(handoff, body) if body else decision.outcome.value
    _lock_at_provider_if_stopped(phone, change, decision)
    return outcome


def _reply(handoff: Handoff, body: str) -> str:
    return send_auto_reply(
        phone=handoff.inbound.from_number,
        body=body,
        reply_id=reply_id(handoff),
        kind=f"{handoff.intent}_reply",
    )


def _lock_at_provider_if_stopped(phone: str, change: ConsentChange, decision: Decision) -> None:
    """Mirror a global opt-out into the provider's own list as a second lock. After the
    confirmation, which the lock would refuse; idempotent, so a redelivery re-asserts it."""
    if change.kind is ChangeKind.OPT_OUT and change.scope == ALL and decision.state.opted_out:
        provider_from_environment().sync_opt_out(phone, opted_out=True)


def _record(handoff: Handoff, change: ConsentChange, decision: Decision) -> None:
    metrics.add_metric(
        name=f"Consent_{change.kind.value}_{decision.outcome.value}", unit=MetricUnit.Count, value=1
    )
    record_consent_change(handoff.inbound.from_number, change, decision)
