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
