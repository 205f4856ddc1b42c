"""Messages per second: a budget per origination identity (and per campaign) shared by every sender.

Each second has a counter item for the origination identity (store/sends.py, rate counters),
with a campaign's own counter on it when the campaign is slower. A sender takes tokens for the
current second in blocks with one conditional write on both, spends them on sends in that same
second, and when a block is refused waits (clock.sleep) until the next second. So concurrent
sender invocations together never exceed the budget in any second, at about one write per block
rather than per message. Tokens left when the second ends are dropped: a token is only good for
its own second, which is what keeps a slow sender from spilling a block into the next one.

A block is no bigger than the sends the caller still has, the budget, and what the caller can
plausibly send before the second ends at its measured provider latency, so a sender does not
hoard a whole second's budget that it cannot use while others wait.

When the provider throttles anyway (its real limit is below the configured one, or another
system sends from the same number), the sender sends nothing more in that second and from then
on no more per second than went through before the throttle, raising that by one each second
that passes without one (additive increase, multiplicative decrease): it settles just under
what the provider accepts instead of failing messages.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

from consentry import clock
from consentry.config import settings
from consentry.store import sends

#: Smoothing of the measured provider call time (exponential moving average).
LATENCY_WEIGHT = 0.2
#: Calls slower than this are not held back for the next second (they could never fit).
LATE_LIMIT_SECONDS = 0.5


@dataclass(frozen=True)
class Budget:
    """Sends per second on one counter item: `limits` maps each counter on it to its limit."""

    scope: str
    limits: Mapping[str, int]

    @property
    def ceiling(self) -> int:
        return min(self.limits.values())


IDENTITY_COUNTER = "used"


def budgets(campaign_id: str | None = None, campaign_rate: int | None = None) -> Budget:
    """The origination identity's budget, with a campaign's own counter when its rate is lower."""
    config = settings()
    limits = {IDENTITY_COUNTER: config.messages_per_second}
    if campaign_id is not None and campaign_rate is not None and campaign_rate < config.messages_per_second:
        limits[f"campaign:{campaign_id}"] = campaign_rate
    return Budget(f"origination:{config.origination_identity}", limits)


class RateLimiter:
    """Hands out permission to send one message now, within every budget (tightest first)."""

    def __init__(self, budget: Budget) -> None:
        if not budget.limits or budget.ceiling < 1:
            raise ValueError("a rate limiter needs a positive limit")
        self.budget = budget
        self._second: int | None = None
        self._tokens = 0
        self._used = 0  # sends in `_second`
        self._hold_until: int | None = None  # no sends before this second (the provider throttled)
        self._pace: int | None = None  # own ceiling per second after a throttle
        self._throttled_in: int | None = None  # the last second the provider throttled in
        self._spent: int | None = None  # a second whose shared budget ran out
        self._latency = 0.0  # seconds per provider call, measured
        self.writes = 0  # counter writes made (for measurements)
        self.waits = 0  # times it waited for the next second

    @property
    def ceiling(self) -> int:
        return self.budget.ceiling

    def acquire(self, pending: int = 1) -> None:
        """Block until one send may go out in the current second. `pending`: sends the caller still has."""
        while True:
            now = clock.now().timestamp()
            second = math.floor(now)
            if second != self._second:
                self._new_second(second)
            # A call that cannot finish within this second would land in the next one: wait for it.
            # (A provider slower than LATE_LIMIT_SECONDS per call never fits a second's end anyway.)
            late = 0 < self._latency <= LATE_LIMIT_SECONDS and second + 1 - now < self._latency
            if (self._hold_until is None or second >= self._hold_until) and not late:
                if self._tokens > 0:
                    self._tokens -= 1
                    self._used += 1
                    return
                # What this sender may still take this second; once the shared counter has given
                # less than asked, the second is spent and asking again would only cost a write.
                room = (self.ceiling if self._pace is None else self._pace) - self._used
                if room > 0 and self._spent != second:
                    wanted = min(room, self._block(pending, second + 1 - now))
                    granted = self._take(second, wanted)
                    if granted < wanted:
                        self._spent = second
                    if granted:
                        self._tokens = granted - 1
                        self._used += 1
                        return
            self.waits += 1
            clock.sleep(max(second + 1 - clock.now().timestamp(), 0.001))

    def throttled(self) -> None:
        """The provider refused a send for its rate: nothing more this second, and a lower pace."""
        second = self._second if self._second is not None else math.floor(clock.now().timestamp())
        self._pace = max(1, self._used - 1)  # the refused send took a token but did not go out
        self._tokens = 0
        self._hold_until = second + 1
        self._throttled_in = second

    def _new_second(self, second: int) -> None:
        if self._pace is not None and self._throttled_in != self._second:
            self._pace += 1  # a second without a throttle: try one more
            if self._pace >= self.ceiling:
                self._pace = None
        self._second = second
        self._tokens = 0
        self._used = 0

    def refund(self) -> None:
        """The token just acquired was not used (the reservation failed): keep it for the next send."""
        if self._second is not None and self._second == math.floor(clock.now().timestamp()):
            self._tokens += 1
            self._used -= 1

    def observe(self, seconds: float) -> None:
        """Feed the duration of one provider call into the block sizing."""
        if seconds >= 0:
            self._latency = (
                seconds
                if not self._latency
                else ((1 - LATENCY_WEIGHT) * self._latency + LATENCY_WEIGHT * seconds)
            )

    def close(self) -> None:
        """Give this second's unused tokens back so concurrent senders can use them."""
        second, unused = self._second, self._tokens
        self._tokens = 0
        if second is None or unused < 1 or second != math.floor(clock.now().timestamp()):
            return
        sends.give_back_tokens(self.budget.scope, second, unused, self.budget.limits)
        self.writes += 1

    def _block(self, pending: int, seconds_left: float) -> int:
        usable = math.ceil(seconds_left / self._latency) if self._latency > 0 else self.ceiling
        return max(1, min(pending, self.ceiling, usable))

    def _take(self, second: int, wanted: int) -> int:
        self.writes += 1
        return sends.take_tokens(self.budget.scope, second, wanted, self.budget.limits)
