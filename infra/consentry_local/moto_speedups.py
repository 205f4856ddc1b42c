"""Make moto's DynamoDB transactions cost what the items cost, not what the tables hold.

moto backs up every table a transaction touches with a deep copy, so each transaction is
O(table size) and a local run with thousands of contacts becomes quadratic. The local
runtime serialises its dispatch, so checking every condition first and then applying the
operations is equivalent: nothing is written unless all conditions hold.
"""

import functools
import re
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


# -- request routing -------------------------------------------------------------------------------
# moto finds the handler of every request by trying each service's URL patterns in turn and then
# each URL of the matching backend: a hundred and more regex matches per call. The handler for a
# URL never changes, so it is resolved once per (method, URL).
_routes: dict[tuple[str, str], Callable[..., Any] | None] = {}


def _resolve(clean_url: str) -> Callable[..., Any] | None:
    import moto.backends as backends
    from moto.core import DEFAULT_ACCOUNT_ID  # type: ignore[attr-defined]
    from moto.core.base_backend import BackendDict
    from moto.core.botocore_stubber import backend_index  # type: ignore[attr-defined]

    for service, pattern in backend_index.backend_url_patterns:
        if not pattern.match(clean_url):
            continue
        backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
        if isinstance(backend_dict, BackendDict):
            regional = backend_dict[DEFAULT_ACCOUNT_ID]
            backend = regional["us-east-1"] if "us-east-1" in regional else regional["aws"]
        else:
            backend = backend_dict["global"]
        for url, method_to_execute in backend.urls.items():
            if re.compile(url).match(clean_url):
                handler: Callable[..., Any] = method_to_execute
                return handler
        return None
    return None


def _routed_process_request(self: Any, request: Any) -> Any:
    from moto.core.exceptions import HTTPException  # type: ignore[attr-defined]
    from moto.core.request import normalize_request
    from moto.core.utils import get_equivalent_url_in_aws_domain
    from moto.moto_api import recorder

    parsed_url, _ = get_equivalent_url_in_aws_domain(request.url)
    clean_url = f"{parsed_url.scheme}://{parsed_url.netloc}{parsed_url.path}"
    key = (request.method, clean_url)
    if key not in _routes:
        _routes[key] = _resolve(clean_url)
    method_to_execute = _routes[key]
    if method_to_execute is None:
        return _original_process_request(self, request)
    normalized_request = normalize_request(request)
    try:
        recorder._record_request(normalized_request)
        status, headers, body = method_to_execute(
            normalized_request, normalized_request.raw_url, normalized_request.headers
        )
    except HTTPException as error:
        status, headers, body = error.code, error.get_headers(), error.get_body()
    return status, headers, body


_original_process_request: Callable[..., Any] = lambda *_: None  # noqa: E731 - set by install_routing


def install_routing() -> None:
    from moto.core.botocore_stubber import BotocoreStubber

    global _original_process_request
    if getattr(BotocoreStubber.process_request, "__routed_by_consentry__", False):
        return
    _original_process_request = BotocoreStubber.process_request
    _routed_process_request.__routed_by_consentry__ = True  # type: ignore[attr-defined]
    BotocoreStubber.process_request = _routed_process_request  # type: ignore[method-assign]
