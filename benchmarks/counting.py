"""Count AWS requests by API with botocore's `before-call` event on boto3's default session.

    with RequestCounter() as counter:
        with counter.measuring():
            ...  # code under measurement
    print(counter.by_api())   # {"dynamodb.Scan": 12, "sqs.SendMessageBatch": 9, ...}

Every client boto3.client(...) creates copies the session's event handlers when it is made,
so the counter resets consentry's cached clients on install: clients created before would not
report. Calls count only while `measuring()` is active (seeding and harness calls are not the
system's cost); `before-call` fires once per API call, before any retry of it.
"""

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import boto3

from consentry.store import aws as store_aws

EVENT = "before-call"
AFTER_EVENT = "after-call"
_STARTED = "benchmarks.counting.started"


class RequestCounter:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seconds_in_calls = 0.0  # wall time inside measured AWS calls (the emulator's share)
        self._depth = 0
        self._installed = False

    # -- installation ----------------------------------------------------------------------
    def install(self) -> "RequestCounter":
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register(EVENT, self._count)
        boto3.DEFAULT_SESSION.events.register(AFTER_EVENT, self._finish)
        store_aws.reset()  # cached clients carry the handlers of when they were created
        self._installed = True
        return self

    def uninstall(self) -> None:
        if self._installed and boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.unregister(EVENT, self._count)
            boto3.DEFAULT_SESSION.events.unregister(AFTER_EVENT, self._finish)
        self._installed = False
        store_aws.reset()

    def __enter__(self) -> "RequestCounter":
        return self.install()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.uninstall()

    # -- measuring -------------------------------------------------------------------------
    @contextmanager
    def measuring(self) -> Iterator["RequestCounter"]:
        """Count the calls made inside the block (blocks may nest)."""
        self._depth += 1
        try:
            yield self
        finally:
            self._depth -= 1

    @property
    def active(self) -> bool:
        return self._depth > 0

    def _count(self, model: Any, context: dict[str, Any] | None = None, **_: Any) -> None:
        if self._depth > 0:
            self.counts[f"{model.service_model.service_name}.{model.name}"] += 1
            if context is not None:
                context[_STARTED] = time.perf_counter()

    def _finish(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        started = context.pop(_STARTED, None) if context is not None else None
        if started is not None:
            self.seconds_in_calls += time.perf_counter() - started

    # -- results ---------------------------------------------------------------------------
    def reset(self) -> None:
        self.counts.clear()
        self.seconds_in_calls = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def by_api(self) -> dict[str, int]:
        return dict(sorted(self.counts.items(), key=lambda item: (-item[1], item[0])))

    def per(self, units: int) -> dict[str, float]:
        """Requests per unit (e.g. per recipient), by API."""
        if units <= 0:
            raise ValueError("units must be positive")
        return {api: count / units for api, count in self.by_api().items()}
