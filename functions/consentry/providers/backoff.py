"""Retrying a throttled send with exponential backoff and full jitter."""

import random

from consentry import clock
from consentry.providers.base import ErrorKind, OutboundSms, ProviderError, SendResult, SmsProvider

BASE_DELAY_SECONDS = 0.05
MAX_DELAY_SECONDS = 2.0


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
    ceiling = min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * (2**attempt))
    return (rng or random).uniform(0, ceiling)


def send_with_backoff(provider: SmsProvider, sms: OutboundSms, attempts: int = 6) -> SendResult:
    """Send, waiting and retrying while the provider throttles; other errors and the last throttle raise."""
    for attempt in range(attempts):
        try:
            return provider.send(sms)
        except ProviderError as exc:
            if exc.kind is not ErrorKind.THROTTLED or attempt == attempts - 1:
                raise
            clock.sleep(backoff_delay(attempt))
    raise AssertionError("unreachable")
