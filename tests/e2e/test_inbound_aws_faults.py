"""A STOP whose hand-off to the stop queue is throttled, or sent twice, is committed and confirmed once.

The inbound function hands each classified text to a queue (SQS SendMessage). A throttle there
is absorbed by the SDK's retries; a send whose answer was lost is sent again by the SDK and the
queue then holds the hand-off twice; a throttle that outlasts the retries fails the invocation,
and SNS invokes the function again a minute later. Each way the subscriber is opted out once,
with one ledger entry and one confirmation.
"""

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from consentry.store.aws import client
from consentry_local.faults import FailOnce, ThrottleOnce
from consentry_local.runtime import LocalRuntime
from tests.e2e.helpers import Fault, assert_stopped_once, faults_on
from tests.e2e.test_sender_support import numbers, subscribe

PHONE = numbers(1, prefix="+1212302")[0]


@pytest.fixture
def faults(runtime: LocalRuntime) -> Iterator[Callable[[Fault], Fault]]:
    """Faults on the functions' sqs client (the one every function in the process uses)."""
    with faults_on(client("sqs").meta.events) as install:
        yield install


def handoff(operation: str, params: dict[str, Any]) -> bool:
    return operation == "SendMessage" and "Stop" in str(params.get("QueueUrl"))


def stop_and_settle(runtime: LocalRuntime) -> None:
    subscribe([PHONE])
    runtime.text_in(PHONE, "STOP")
    runtime.run_until_idle(max_virtual=timedelta(minutes=10))


@pytest.mark.parametrize("lost_answer", [False, True], ids=["throttled", "sent-twice"])
def test_a_throttled_or_repeated_handoff_stops_once(
    runtime: LocalRuntime, faults: Callable[[Fault], Fault], lost_answer: bool
) -> None:
    fault = faults(ThrottleOnce(handoff, lost_answers=lost_answer))
    stop_and_settle(runtime)
    assert fault.injected == 1
    assert_stopped_once(runtime, PHONE)


def test_a_handoff_throttled_past_the_sdks_retries_is_retried_by_sns(
    runtime: LocalRuntime, faults: Callable[[Fault], Fault]
) -> None:
    fault = faults(FailOnce(handoff))
    stop_and_settle(runtime)
    assert fault.injected == 1
    assert [i.ok for i in runtime.invocations if i.function == "InboundFunction"] == [False, True]
    assert_stopped_once(runtime, PHONE)
