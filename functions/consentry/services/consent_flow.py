"""From a handed-off inbound text to committed consent and the one reply it is owed."""

from aws_lambda_powertools.metrics import MetricUnit

from consentry.domain.consent import Outcome
from consentry.domain.handoff import Handoff, change_for, reply_for, reply_id
from consentry.observability import metrics
from consentry.services.consent import commit_change
from consentry.services.program import current_program
from consentry.services.replies import send_auto_reply
from consentry.store import events


def process(handoff: Handoff) -> str:
    program = current_program()
    change = change_for(handoff, program)
    decision = commit_change(handoff.inbound.from_number, change) if change is not None else None
    if change is not None and decision is not None and decision.outcome is Outcome.APPLIED:
        events.publish(
            "ConsentChanged",
            {
                "phone": handoff.inbound.from_number,
                "kind": change.kind.value,
                "scope": change.scope,
                "topics": list(decision.topics),
                "opted_out": decision.state.opted_out,
                "event_time": change.event_time.isoformat(),
                "evidence": change.evidence.reference,
            },
        )
    if change is not None and decision is not None:
        metrics.add_metric(
            name=f"Consent_{change.kind.value}_{decision.outcome.value}", unit=MetricUnit.Count, value=1
        )
    body = reply_for(handoff, change, decision, program)
    if body is None:
        return decision.outcome.value if decision else "no_reply"
    return send_auto_reply(
        phone=handoff.inbound.from_number,
        body=body,
        reply_id=reply_id(handoff),
        kind=f"{handoff.intent}_reply",
    )
