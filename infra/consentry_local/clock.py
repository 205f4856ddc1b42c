"""A controllable clock: frozen and advanced explicitly, or running at a chosen speed."""

import threading
import time
from datetime import datetime, timedelta


class VirtualClock:
    def __init__(self, start: datetime, speed: float = 0.0) -> None:
        if start.tzinfo is None:
            raise ValueError("the clock needs an aware start time")
        self._lock = threading.Lock()
        self._base = start
        self._real_base = time.monotonic()
        self.speed = speed

    def now(self) -> datetime:
        with self._lock:
            elapsed = (time.monotonic() - self._real_base) * self.speed
            return self._base + timedelta(seconds=elapsed)

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._base += timedelta(seconds=seconds)
            return self._base + timedelta(seconds=(time.monotonic() - self._real_base) * self.speed)

    def advance_to(self, moment: datetime) -> datetime:
        current = self.now()
        if moment > current:
            self.advance((moment - current).total_seconds())
        return self.now()


class SharedTime:
    """One virtual clock for concurrent invocations (threads standing in for Lambda instances).

    Outside a concurrent section a sleep simply advances the clock. Inside one, the clock moves
    only when every running invocation is waiting in a sleep, and then to the earliest wake-up,
    so no invocation sees time jump while it is between, say, taking a rate token and sending.
    """

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.condition = threading.Condition()
        self.running: set[int] = set()
        self.sleeping: dict[int, datetime] = {}

    def enter(self) -> None:
        with self.condition:
            self.running.add(threading.get_ident())

    def leave(self) -> None:
        with self.condition:
            self.running.discard(threading.get_ident())
            self._advance()

    def sleep(self, seconds: float) -> None:
        me = threading.get_ident()
        with self.condition:
            if me not in self.running:
                self.clock.advance(seconds)
                return
            self.sleeping[me] = self.clock.now() + timedelta(seconds=seconds)
            self._advance()
            while me in self.sleeping:
                self.condition.wait()

    def _advance(self) -> None:
        while self.running and len(self.sleeping) == len(self.running):
            target = min(self.sleeping.values())
            self.clock.advance_to(target)
            for ident, wake in list(self.sleeping.items()):
                if wake <= target:
                    del self.sleeping[ident]
            self.condition.notify_all()
