"""Make moto's DynamoDB transactions cost what the items cost, not what the tables hold.

moto backs up every table a transaction touches with a deep copy, so each transaction is
O(table size) and a local run with thousands of contacts becomes quadratic. The local
runtime serialises its dispatch, so checking every condition first and then applying the
operations is equivalent: nothing is written unless all conditions hold.
"""

import copy
import functools
import importlib
import inspect
import pickle
import re
import threading
import time
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


# -- update expressions --------------------------------------------------------------------------
# moto parses an UpdateExpression on every UpdateItem, deep-copies the tree for its validator and
# walks it ten times, rebuilding each walker's node-type table at every node. The functions use a
# handful of fixed expressions, so the parse is kept per expression (the validator only ever
# works on its copy), the copy is a pickle round trip, and each walker's table is built once.
_parsed_updates: dict[str, Any] = {}
_pickled_updates: dict[int, bytes] = {}


def _parse_update_once(original: Callable[[str], Any]) -> Callable[[str], Any]:
    @functools.wraps(original)
    def make(expression: str) -> Any:
        tree = _parsed_updates.get(expression)
        if tree is None:
            tree = original(expression)  # raises moto's own validation errors
            if len(_parsed_updates) < 4096:
                _parsed_updates[expression] = tree
                _pickled_updates[id(tree)] = pickle.dumps(tree, pickle.HIGHEST_PROTOCOL)
        return tree

    return make


def _copy_tree(tree: Any, memo: dict[int, Any] | None = None) -> Any:
    # Cached trees live as long as the process, so no other object can share their id.
    pickled = _pickled_updates.get(id(tree))
    if pickled is not None:
        return pickle.loads(pickled)  # noqa: S301 - our own bytes, pickled in this process
    return copy.deepcopy(tree, memo)


def _node_types_once(self: Any) -> tuple[type, ...]:
    cached: tuple[type, ...] | None = self.__dict__.get("_consentry_node_types")
    if cached is None:
        cached = tuple(self._processing_map().keys())
        self.__dict__["_consentry_node_types"] = cached
    return cached


_node_checks: dict[tuple[type, type], bool] = {}
_Node: Any = object  # moto's AST node class, set by install_update_expression_cache


def _walk(self: Any, node: Any, child_id: int = -1) -> Any:
    """moto's depth-first walk, with each (walker, node type) membership test made once: the
    node classes are ABCs, and isinstance against a tuple of them dominated the walk."""
    is_node = _node_checks.get((_Node, type(node)))
    if is_node is None:
        is_node = _node_checks[(_Node, type(node))] = isinstance(node, _Node)
    if not is_node:
        return node
    parent = node.parent
    if node.children is not None:
        for index, child in enumerate(node.children):
            self.pre_processing_of_child(node, index)
            _walk(self, child, index)
    processed = _node_checks.get((type(self), type(node)))
    if processed is None:
        processed = isinstance(node, self.nodes_to_be_processed())
        _node_checks[(type(self), type(node))] = processed
    if processed:
        node = self.process(node)
        node.parent = parent
        if parent:
            parent.children[child_id] = node
    return node


# Two of the walks only check the expression's own shape (how many clauses of each kind, no two
# paths overlapping): for a cached expression with the same attribute names they answer the same
# as before, so after one success they are skipped.
_shape_checked: set[tuple[int, frozenset[tuple[str, str]]]] = set()


def _shape_key(validator: Any) -> tuple[int, frozenset[tuple[str, str]]] | None:
    expression = validator.__dict__.get("_consentry_expression")
    if expression is None or id(expression) not in _pickled_updates:
        return None
    return id(expression), frozenset((validator.expression_attribute_names or {}).items())


class _ShapeChecked:
    """Placed after the shape walks: reaching it means they passed."""

    def __init__(self, key: tuple[int, frozenset[tuple[str, str]]]) -> None:
        self.key = key

    def traverse(self, node: Any) -> Any:
        _shape_checked.add(self.key)
        return node


def _remember_expression(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def init(self: Any, expression: Any, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_consentry_expression"] = expression  # read by get_ast_processors
        original(self, expression, *args, **kwargs)

    return init


def _shape_walks_once(original: Callable[[Any], list[Any]]) -> Callable[[Any], list[Any]]:
    validators = _moto("moto.dynamodb.parsing.validators")
    shape_walks = (validators.ActionCountValidator, validators.OverlappingPathsValidator)

    @functools.wraps(original)
    def processors(self: Any) -> list[Any]:
        chosen = original(self)
        key = _shape_key(self)
        if key is None:
            return chosen
        if key in _shape_checked:
            return [walk for walk in chosen if not isinstance(walk, shape_walks)]
        last_shape_walk = max(i for i, walk in enumerate(chosen) if isinstance(walk, shape_walks))
        return [*chosen[: last_shape_walk + 1], _ShapeChecked(key), *chosen[last_shape_walk + 1 :]]

    return processors


def install_update_expression_cache() -> None:
    ast_nodes = _moto("moto.dynamodb.parsing.ast_nodes")
    validators = _moto("moto.dynamodb.parsing.validators")
    parser = _moto("moto.dynamodb.parsing.expressions").UpdateExpressionParser
    if getattr(parser.make, "__wrapped__", None) is not None:
        return
    global _Node
    _Node = ast_nodes.Node
    parser.make = staticmethod(_parse_update_once(parser.make))
    validators.deepcopy = _copy_tree
    walker, validator = ast_nodes.DepthFirstTraverser, validators.UpdateExpressionValidator
    walker.nodes_to_be_processed = _node_types_once
    walker.traverse_node_recursively = _walk
    validator.__init__ = _remember_expression(validator.__init__)
    validator.get_ast_processors = _shape_walks_once(validator.get_ast_processors)


def _moto(module: str) -> Any:
    """A moto module, untyped: the patches here reach into its internals on purpose."""
    return importlib.import_module(module)


def _replace_once(owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
    """owner.name = wrap(owner.name), once per process: runtimes start and stop many times."""
    current = getattr(owner, name)
    if getattr(current, "__consentry_shortcut__", False):
        return
    replacement = wrap(current)
    replacement.__consentry_shortcut__ = True
    setattr(owner, name, replacement)


# -- the client side ------------------------------------------------------------------------------
# In process nobody checks a signature or reads the User-Agent: botocore would still compute a
# SigV4 signature and rebuild its User-Agent string on every request (a fifth of a GetItem).
def _unsigned(**_: Any) -> Any:
    from botocore import UNSIGNED

    return UNSIGNED


def _user_agent_once(self: Any) -> str:
    cached: str | None = self.__dict__.get("_consentry_user_agent")
    if cached is None:
        cached = _original_user_agent(self)
        self.__dict__["_consentry_user_agent"] = cached
    return cached


_UNSIGNED_ID = "consentry-local-unsigned"
_original_user_agent: Callable[[Any], str] = lambda _: ""  # noqa: E731 - set by install_client_shortcuts


def install_client_shortcuts(session: Any) -> None:
    """For clients the session makes from now on (in-process runtime only)."""
    from botocore.useragent import UserAgentString

    global _original_user_agent
    if UserAgentString.to_string is not _user_agent_once:
        _original_user_agent = UserAgentString.to_string
        UserAgentString.to_string = _user_agent_once  # type: ignore[method-assign]
    session.events.register("choose-signer", _unsigned, unique_id=_UNSIGNED_ID)


def remove_client_shortcuts(session: Any) -> None:
    session.events.unregister("choose-signer", unique_id=_UNSIGNED_ID)


# -- response serialisation -----------------------------------------------------------------------
# moto finds every member of a response by asking six alias providers in turn which names it may
# have, for every member of every structure, present or not. For a plain dict (DynamoDB, SQS and
# SNS answers are dicts keyed by the model's names) the names a provider offers depend only on the
# service, the member and its shape, never on the values, so they are worked out once.
_possible_keys: dict[tuple[Any, ...], tuple[str, ...] | None] = {}


def _names_of(self: Any, context: Any) -> tuple[str, ...] | None:
    shape = context.shape
    if shape is None:
        return None
    parent = getattr(shape, "parent", None)
    identity = (
        type(self),
        context.service_model.service_name,
        context.key,
        shape.name,
        shape.type_name,
        shape.serialization.get("name"),
        getattr(parent, "name", None),
        getattr(parent, "type_name", None),
    )
    if identity not in _possible_keys:
        names = tuple(self.get_possible_keys(context))
        # A dotted name is a path into nested objects: moto's own search handles those.
        _possible_keys[identity] = None if any("." in name for name in names) else names
    return _possible_keys[identity]


def _pick_from_dict(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    from moto.core.serialize import DEFAULT_ALIAS_PROVIDERS

    @functools.wraps(original)
    def pick(self: Any, context: Any) -> Any:
        obj = context.obj
        if (
            type(obj) is dict
            and not self.response_transformers
            and self.alias_providers is DEFAULT_ALIAS_PROVIDERS
        ):
            names = _names_of(self, context)
            if names is not None:
                for name in names:
                    if name in obj:
                        return obj[name]
                return None
        return original(self, context)

    return pick


def install_serialiser_shortcut() -> None:
    _replace_once(_moto("moto.core.serialize").AttributePicker, "__call__", _pick_from_dict)


# -- dispatch -------------------------------------------------------------------------------------
# moto lists a response class's methods with inspect.getmembers on every request to find the
# action's handler; a class's methods do not change while the runtime runs.
def _methods_once(original: Callable[[object], list[str]]) -> Callable[[object], list[str]]:
    @functools.lru_cache(maxsize=512)
    def listed(clazz: object) -> tuple[str, ...]:
        return tuple(original(clazz))

    @functools.wraps(original)
    def method_names(clazz: object) -> list[str]:
        return list(listed(clazz))

    return method_names


def install_dispatch_shortcut() -> None:
    responses = _moto("moto.core.responses")
    _replace_once(responses, "method_names_from_class", _methods_once)
    # Action and attribute names go through the same pure conversion on every request (an SQS
    # send converts all fourteen queue attribute names).
    for module in (responses, _moto("moto.sqs.models")):
        _replace_once(module, "camelcase_to_underscores", functools.lru_cache(maxsize=4096))


# -- queries --------------------------------------------------------------------------------------
# moto answers a Query on a table's own key by sorting every item of the table and keeping the
# partition's: O(table) per request, which made each local run quadratic in its history. The
# items of one partition are the only ones that query can return, so only they are offered.
def _partition_query(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        hash_key = arguments.get("hash_key")
        if arguments.get("index_name") is not None or hash_key is None:
            return original(self, *args, **kwargs)
        partition = self.items.get(hash_key)
        if partition is None:
            candidates = []
        elif self.range_key_attr:
            candidates = sorted(partition.values(), key=lambda item: (item.hash_key, item.range_key))
        else:
            candidates = [partition]
        self.__dict__["all_items"] = lambda: candidates  # requests are serialised: nobody else sees it
        try:
            return original(self, *args, **kwargs)
        finally:
            self.__dict__.pop("all_items", None)

    return query


def install_partition_queries() -> None:
    _replace_once(_moto("moto.dynamodb.models.table").Table, "query", _partition_query)


# -- SQS ------------------------------------------------------------------------------------------
# moto works out a queue's whole attribute set (counting every message, reading the clock per
# message through datetime arithmetic) for each message a ReceiveMessage returns, only to read
# its retention period, and again for each SendMessage. With a few hundred receipts waiting
# that was most of a local campaign's time. The retention period is read where it is kept, and
# the clock per message is read once, directly.
def _retention_read_directly(self: Any, queue_name: str, message: Any) -> bool:
    retention = float(self.get_queue(queue_name).message_retention_period)
    return bool(retention + message.sent_timestamp / 1000 > time.time())


def _now_millis(original: Callable[..., float]) -> Callable[..., float]:
    @functools.wraps(original)
    def now_millis(moment: Any = None) -> float:
        return time.time() * 1000.0 if moment is None else original(moment)

    return now_millis


def install_sqs_shortcuts() -> None:
    models = _moto("moto.sqs.models")
    _replace_once(models, "unix_time_millis", _now_millis)
    _replace_once(
        models.SQSBackend, "is_message_valid_based_on_retention_period", lambda _: _retention_read_directly
    )


# -- polling --------------------------------------------------------------------------------------
def visible_messages(queue_arn: str) -> int:
    """How many messages a ReceiveMessage on the queue could return now. The runtime polls every
    queue each step, as Lambda's pollers do; an empty poll is the emulator's own cost, not the
    system's, so in process it looks at moto's queue instead of asking."""
    from moto.sqs.models import sqs_backends

    _, _, _, region, account, name = queue_arn.split(":", 5)
    queue = sqs_backends[account][region].queues.get(name)
    return 0 if queue is None else len(queue.messages)
