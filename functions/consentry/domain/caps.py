"""Frequency caps: rolling windows counted over the sends a contact has already received.

A contact item remembers its recent sends (`Contact.sends`: send key -> {at, topic,
message_class, message_id, state}). A cap allows a send while fewer than `count` counted sends
fall in the rolling window that ends now (compliance.md: "the last 24 hours from the moment of
sending"). Every send that may have reached the phone counts: a reservation whose outcome is
not known yet, a send, an ambiguous one. Only sends known not to have gone out are ignored.
"""

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from consentry.domain.messages import MessageClass

#: Send states (in `Contact.sends`) that certainly did not reach the phone: they count for nothing.
NOT_SENT_STATES = frozenset({"failed", "released"})


class CapRule(BaseModel):
    """At most `count` sends in any rolling `window`."""

    model_config = ConfigDict(frozen=True)

    count: int = Field(ge=1)
    window: timedelta

    @field_validator("window")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("a cap window must be longer than zero")
        return value

    @classmethod
    def per_days(cls, count: int, days: int) -> "CapRule":
        return cls(count=count, window=timedelta(days=days))

    @classmethod
    def per_hours(cls, count: int, hours: int) -> "CapRule":
        return cls(count=count, window=timedelta(hours=hours))


#: compliance.md: Florida (FTSA), Oklahoma (OTSA) and Maryland allow 3 texts per 24 hours on the
#: same subject. "Same subject" is read as the same topic; the caps apply to solicitations.
STATE_CAPS: Mapping[str, CapRule] = {
    "FL": CapRule.per_hours(3, 24),
    "OK": CapRule.per_hours(3, 24),
    "MD": CapRule.per_hours(3, 24),
}

#: A campaign's send key stays on the contact this long (campaigns end within it: deadlines,
#: recurring runs use new keys per run), so a late chunk still finds the earlier send.
CAMPAIGN_KEY_RETENTION = timedelta(days=35)

#: compliance.md: Consentry's default for promotional texts, across all campaigns and flows.
DEFAULT_PROMOTIONAL_CAP = CapRule.per_days(1, 7)


class Caps(BaseModel):
    """The caps one send is held to (the contact's own cap comes from the contact)."""

    model_config = ConfigDict(frozen=True)

    #: promotional sends per contact, counted across every promotional topic
    promotional: CapRule | None = DEFAULT_PROMOTIONAL_CAP
    #: sends on the same topic (a campaign's own cap); adds to, never relaxes, the others
    topic: CapRule | None = None
    #: state caps on the same subject, by USPS code of the number's area code
    state: Mapping[str, CapRule] = Field(default_factory=lambda: dict(STATE_CAPS))

    def longest_window(self) -> timedelta:
        windows = [rule.window for rule in (self.promotional, self.topic, *self.state.values()) if rule]
        return max(windows, default=timedelta(0))


DEFAULT_CAPS = Caps()


def counted_sends(
    sends: Mapping[str, Mapping[str, Any]],
    now: datetime,
    window: timedelta,
    *,
    topic: str | None = None,
    message_class: MessageClass | None = None,
    exclude_key: str | None = None,
) -> int:
    """How many sends within `window` before `now` count, optionally only of a topic or class."""
    since = (now - window).timestamp()
    return sum(
        1
        for key, entry in sends.items()
        if key != exclude_key
        and _at(entry) > since
        and entry.get("state") not in NOT_SENT_STATES
        and (topic is None or entry.get("topic") == topic)
        and (message_class is None or entry.get("message_class") == message_class)
    )


def _at(entry: Mapping[str, Any]) -> float:
    value = entry.get("at")
    # A malformed entry counts as just now: an unreadable record must never loosen a cap.
    return float(value) if isinstance(value, int | float) else float("inf")


def prune(
    sends: Mapping[str, Mapping[str, Any]],
    now: datetime,
    keep: timedelta,
    *,
    keep_campaign_keys: timedelta = CAMPAIGN_KEY_RETENTION,
) -> dict[str, dict[str, Any]]:
    """The sends a contact item still needs: younger than `keep` (the caps' windows), and campaign
    sends (entries with a chunk id) younger than `keep_campaign_keys`, so a campaign running that
    long never texts a number twice. Transactional sends are deduplicated by their message record.
    """
    since = (now - keep).timestamp()
    campaign_since = (now - max(keep, keep_campaign_keys)).timestamp()
    return {
        key: dict(entry)
        for key, entry in sends.items()
        if _at(entry) > (campaign_since if "chunk_id" in entry else since)
    }
