"""Make moto's DynamoDB transactions cost what the items cost, not what the tables hold.

moto backs up every table a transaction touches with a deep copy, so each transaction is
O(table size) and a local run with thousands of contacts becomes quadratic. The local
runtime serialises its dispatch, so checking every condition first and then applying the
operations is equivalent: nothing is written unless all conditions hold.
"""

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import MultipleTransactionsException, TransactionCanceledException
from moto.dynamodb.models import DynamoDBBackend

_original = DynamoDBBackend.transact_write_items


def _key_of(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        key: dict[str, Any] = op["Key"]
        return key
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def _check_then_apply(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100 or any(len(item) != 1 for item in transact_items):
        _original(self, transact_items)  # moto's own validation errors
        return
    seen: set[tuple[str, str]] = set()
    reasons: list[tuple[str | None, str | None, Any]] = []
    for item in transact_items:
        op_type, op = next(iter(item.items()))
        key = _key_of(self, op_type, op)
        identity = (op["TableName"], str(sorted(key.items())))
        if identity in seen:
            raise MultipleTransactionsException()
        seen.add(identity)
        condition = op.get("ConditionExpression")
        if condition is None:
            reasons.append((None, None, None))
            continue
        current = self.get_item(op["TableName"], key)
        expression = get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        )
        if expression.expr(current):
            reasons.append((None, None, None))
        else:
            reasons.append(("ConditionalCheckFailed", "The conditional request failed", None))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)
    for item in transact_items:
        op_type, op = next(iter(item.items()))
        names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
        if op_type == "Put":
            self.put_item(
                op["TableName"],
                op["Item"],
                expression_attribute_names=names,
                expression_attribute_values=values,
            )
        elif op_type == "Update":
            self.update_item(
                op["TableName"],
                op["Key"],
                update_expression=op["UpdateExpression"],
                expression_attribute_names=names,
                expression_attribute_values=values,
            )
        elif op_type == "Delete":
            self.delete_item(op["TableName"], op["Key"])


def install() -> None:
    DynamoDBBackend.transact_write_items = _check_then_apply  # type: ignore[method-assign]


# -- concurrency ---------------------------------------------------------------------------------
# The runtime may run several invocations of one function at once (threads standing in for
# concurrent Lambda instances). Each emulated AWS request is made atomic, as a request to a real
# service is; threads interleave between requests, never inside one.
_request_lock = threading.RLock()


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with _request_lock:
            return method(*args, **kwargs)

    call.__wrapped_by_consentry__ = True  # type: ignore[attr-defined]
    return call


def _serialise_once(owner: type, name: str) -> None:
    method = getattr(owner, name)
    if not getattr(method, "__wrapped_by_consentry__", False):
        setattr(owner, name, _serialised(method))


def install_concurrency_guards() -> None:
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
    from moto.core.botocore_stubber import BotocoreStubber

    _serialise_once(BotocoreStubber, "process_request")
    # In Lambda each instance has its own metric set; here threads share the module-level one.
    for name in ("add_metric", "add_dimension", "add_metadata", "flush_metrics", "serialize_metric_set"):
        _serialise_once(AmazonCloudWatchEMFProvider, name)
