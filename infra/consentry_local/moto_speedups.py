"""The in-process emulator's shortcuts: moto's answers, without work nobody checks in process.

Each section says what moto would recompute or walk through and why skipping it cannot change an
answer; tests/integration/test_direct_answers.py and test_moto_speedups.py hold them to moto's own
answers. The runtime installs them only when moto runs in the same process as the functions.

The first: moto backs up every table a transaction touches with a deep copy, so each transaction
is O(table size) and a local run with thousands of contacts becomes quadratic. The local runtime
serialises its dispatch, so checking every condition first and then applying the operations is
equivalent: nothing is written unless all conditions hold.
"""

import base64
import copy
import functools
import importlib
import inspect
import pickle
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
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


def _moto_handler_for(method: str, url: str) -> Callable[..., Any] | None:
    from moto.core.utils import get_equivalent_url_in_aws_domain

    parsed_url, _ = get_equivalent_url_in_aws_domain(url)
    clean_url = f"{parsed_url.scheme}://{parsed_url.netloc}{parsed_url.path}"
    key = (method, clean_url)
    if key not in _routes:
        _routes[key] = _resolve(clean_url)
    return _routes[key]


def _dispatch(handler: Callable[..., Any], request: Any) -> tuple[int, Any, Any]:
    from moto.core.exceptions import HTTPException  # type: ignore[attr-defined]
    from moto.core.request import normalize_request
    from moto.moto_api import recorder

    normalized_request = normalize_request(request)
    try:
        recorder._record_request(normalized_request)
        status, headers, body = handler(
            normalized_request, normalized_request.raw_url, normalized_request.headers
        )
    except HTTPException as error:
        status, headers, body = error.code, error.get_headers(), error.get_body()
    return status, headers, body


def _routed_process_request(self: Any, request: Any) -> Any:
    handler = _moto_handler_for(request.method, request.url)
    if handler is None:
        return _original_process_request(self, request)
    return _dispatch(handler, request)


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


# Three of the walks only check the expression's own shape (how many clauses of each kind, no two
# paths overlapping, no key attribute updated): for a cached expression with the same attribute
# names on a table with the same keys they answer the same as before, so after one success they
# are skipped. The walk that evaluates functions is skipped for expressions that have none.
_ShapeKey = tuple[int, frozenset[tuple[str, str]], tuple[str, ...]]
_shape_checked: set[_ShapeKey] = set()
_without_functions: dict[int, bool] = {}


def _shape_key(validator: Any) -> _ShapeKey | None:
    expression = validator.__dict__.get("_consentry_expression")
    if expression is None or id(expression) not in _pickled_updates:
        return None
    names = frozenset((validator.expression_attribute_names or {}).items())
    return id(expression), names, tuple(validator.table.table_key_attrs)


def _has_no_function(expression: Any) -> bool:
    known = _without_functions.get(id(expression))
    if known is None:
        function = _moto("moto.dynamodb.parsing.ast_nodes").UpdateExpressionFunction
        pending, known = [expression], True
        while pending and known:
            node = pending.pop()
            known = not isinstance(node, function)
            pending.extend(
                child for child in (getattr(node, "children", None) or ()) if isinstance(child, _Node)
            )
        _without_functions[id(expression)] = known
    return known


class _ShapeChecked:
    """Placed after the shape walks: reaching it means they passed."""

    def __init__(self, key: _ShapeKey) -> None:
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
    shape_walks = (
        validators.ActionCountValidator,
        validators.OverlappingPathsValidator,
        validators.UpdateHashRangeKeyValidator,
    )

    @functools.wraps(original)
    def processors(self: Any) -> list[Any]:
        chosen = original(self)
        key = _shape_key(self)
        if key is None:
            return chosen
        if _has_no_function(self.__dict__["_consentry_expression"]):
            chosen = [
                walk for walk in chosen if not isinstance(walk, validators.UpdateExpressionFunctionEvaluator)
            ]
        if key in _shape_checked:
            return [walk for walk in chosen if not isinstance(walk, shape_walks)]
        last_shape_walk = max(i for i, walk in enumerate(chosen) if isinstance(walk, shape_walks))
        return [*chosen[: last_shape_walk + 1], _ShapeChecked(key), *chosen[last_shape_walk + 1 :]]

    return processors


# Most updates are a few SET, ADD and REMOVE actions on top-level attributes with placeholder
# values (a SET maybe `if_not_exists(attribute, :value)`). For those, once moto's own walks have
# accepted the expression's shape (above), the remaining walks only look values up, and moto's
# executor only assigns them: the same assignments are made directly, through the item's own
# size-checked mapping and moto's own number addition, every operand read from the item as it
# was before the update. Anything else (nested paths, other functions, arithmetic, DELETE, sets,
# key or index attributes, a placeholder missing) goes through moto's walks and executor.
class _Action(NamedTuple):
    kind: str  # SET, ADD or REMOVE
    target: tuple[str, bool]  # (attribute or #name, is a #name)
    value: str | None  # the :placeholder
    unless_present: tuple[str, bool] | None = None  # SET target = if_not_exists(this, :value)


_plans: dict[int, tuple[_Action, ...] | None] = {}


def _compiled(expression: Any) -> tuple[_Action, ...] | None:
    if id(expression) in _plans:
        return _plans[id(expression)]
    ast = _moto("moto.dynamodb.parsing.ast_nodes")
    tree = _copy_tree(expression)
    tree.normalize()
    steps = (
        [_compiled_action(ast, action) for action in tree.children]
        if isinstance(tree, ast.UpdateExpression)
        else [None]
    )
    plan = None if None in steps else tuple(step for step in steps if step is not None)
    _plans[id(expression)] = plan
    return plan


def _reference(ast: Any, path: Any) -> tuple[str, bool] | None:
    """A path of one top-level attribute: (its #name, True) or (its literal name, False)."""
    if not isinstance(path, ast.UpdateExpressionPath) or len(path.children) != 1:
        return None
    element = path.children[0]
    if type(element) is ast.ExpressionAttributeName:
        return element.get_attribute_name_placeholder(), True
    if type(element) is ast.ExpressionAttribute:
        name = element.get_attribute_name()
        reserved = _moto("moto.dynamodb.parsing.reserved_keywords").ReservedKeywords.get_reserved_keywords()
        return None if name.upper() in reserved else (name, False)  # moto's walk refuses it, in its words
    return None


def _placeholder(ast: Any, node: Any) -> str | None:
    return node.get_value_name() if type(node) is ast.ExpressionAttributeValue else None


def _compiled_action(ast: Any, action: Any) -> _Action | None:
    kinds = {ast.UpdateExpressionSetAction: "SET", ast.UpdateExpressionAddAction: "ADD",
             ast.UpdateExpressionRemoveAction: "REMOVE"}  # fmt: skip
    kind = kinds.get(type(action))
    if kind is None:
        return None
    path, *rest = action.children
    target = _reference(ast, path)
    if target is None:
        return None
    if kind == "REMOVE":
        return _Action(kind, target, None) if not rest else None
    if len(rest) != 1:
        return None
    if kind == "ADD":
        value = _placeholder(ast, rest[0])
        return None if value is None else _Action(kind, target, value)
    operand: Any = (
        rest[0].children[0]
        if isinstance(rest[0], ast.UpdateExpressionValue) and len(rest[0].children) == 1
        else None
    )
    if (value := _placeholder(ast, operand)) is not None:
        return _Action(kind, target, value)
    if type(operand) is ast.UpdateExpressionFunction and operand.get_function_name() == "if_not_exists":
        arguments = [child for child in operand.children if not isinstance(child, str)]
        if len(arguments) == 2:
            present, value = _reference(ast, arguments[0]), _placeholder(ast, arguments[1])
            if present is not None and value is not None:
                return _Action(kind, target, value, present)
    return None


class _PlannedUpdate:
    """Stands in for the validated tree and for its executor."""

    def __init__(self, item: Any, steps: list[tuple[str, str, Any]]) -> None:
        self.item = item
        self.steps = steps

    def validate(self) -> "_PlannedUpdate":
        return self

    def normalize(self) -> None:
        return None

    def execute(self) -> None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        attributes = self.item.attrs
        for kind, attribute, value in self.steps:
            if kind == "SET":
                attributes[attribute] = value
            elif kind == "REMOVE":
                attributes.pop(attribute, None)
            else:
                attributes[attribute] = attributes.get(attribute, DynamoType({"N": "0"})) + value


def _planned(expression: Any, names: Any, values: Any, item: Any, table: Any) -> _PlannedUpdate | None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    plan = _compiled(expression) if id(expression) in _pickled_updates else None
    names, values = names or {}, values or {}
    if (
        plan is None
        or (id(expression), frozenset(names.items()), tuple(table.table_key_attrs)) not in _shape_checked
    ):
        return None
    guarded = set(table.attribute_keys) | {definition["AttributeName"] for definition in table.attr}

    def resolved(reference: tuple[str, bool]) -> str | None:
        text, is_name = reference
        return names.get(text) if is_name else text

    steps: list[tuple[str, str, Any]] = []
    for action in plan:
        attribute = resolved(action.target)
        if (
            attribute is None
            or attribute in guarded
            or (action.value is not None and action.value not in values)
        ):
            return None
        value = None if action.value is None else DynamoType(values[action.value])
        if action.unless_present is not None:
            present = resolved(action.unless_present)
            if present is None:
                return None
            value = item.attrs.get(present, value)  # read before any action applies, as DynamoDB does
        if action.kind == "ADD":
            existing = item.attrs.get(attribute)
            if value is None or value.type != "N" or (existing is not None and existing.type != "N"):
                return None
        steps.append((action.kind, attribute, value))
    return _PlannedUpdate(item, steps)


#: Off, moto's own walks, executor and item building run (the tests' reference runs).
REPLACEMENTS_ON = True


def _plain_updates_directly(validator_class: Any, executor_class: Any) -> tuple[Any, Any]:
    def validator(expression: Any, expression_attribute_names: Any, expression_attribute_values: Any,
                  item: Any, table: Any) -> Any:  # fmt: skip
        if REPLACEMENTS_ON and (
            planned := _planned(
                expression, expression_attribute_names, expression_attribute_values, item, table
            )
        ):
            return planned
        return validator_class(
            expression,
            expression_attribute_names=expression_attribute_names,
            expression_attribute_values=expression_attribute_values,
            item=item,
            table=table,
        )

    def executor(update_ast: Any, item: Any, expression_attribute_names: Any) -> Any:
        if isinstance(update_ast, _PlannedUpdate):
            return update_ast
        return executor_class(update_ast, item, expression_attribute_names)

    return validator, executor


def install_plain_update_shortcut() -> None:
    models = _moto("moto.dynamodb.models")
    if getattr(models.UpdateExpressionValidator, "__consentry_shortcut__", False):
        return
    validator, executor = _plain_updates_directly(
        models.UpdateExpressionValidator, models.UpdateExpressionExecutor
    )
    validator.__consentry_shortcut__ = True
    models.UpdateExpressionValidator, models.UpdateExpressionExecutor = validator, executor


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


# -- conditions the handlers only check ----------------------------------------------------------
# moto's request handlers parse every condition, filter and key condition once to check it (its
# syntax, that every placeholder is defined, which placeholders it uses) and the backend parses it
# again to apply it. The check's outcome depends only on the text, the names and the types of the
# values, so a check that passed is remembered; the backend still parses every time.
_ConditionKey = tuple[str | None, frozenset[tuple[str, str]], frozenset[tuple[str, tuple[str, ...]]]]
_checked_conditions: dict[_ConditionKey, tuple[tuple[str, ...], tuple[str, ...]]] = {}


class _CheckedCondition:
    def __init__(self, names_found: tuple[str, ...], values_found: tuple[str, ...]) -> None:
        self.expr_attr_names_found = list(names_found)  # lists: the handlers extend them
        self.expr_attr_values_found = list(values_found)

    def parse(self) -> None:
        return None


class _CheckingCondition:
    """moto's parser, remembering the outcome of a check that passes."""

    def __init__(self, parser: Any, key: _ConditionKey) -> None:
        self.parser, self.key = parser, key

    def parse(self) -> Any:
        parsed = self.parser.parse()  # raises moto's own errors, every time for a bad condition
        found = (tuple(self.parser.expr_attr_names_found), tuple(self.parser.expr_attr_values_found))
        if len(_checked_conditions) < 4096:
            _checked_conditions[self.key] = found
        return parsed

    @property
    def expr_attr_names_found(self) -> list[str]:
        names: list[str] = self.parser.expr_attr_names_found
        return names

    @property
    def expr_attr_values_found(self) -> list[str]:
        values: list[str] = self.parser.expr_attr_values_found
        return values


def _check_once(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def create(expression: str | None, names: dict[str, str] | None, values: dict[str, Any] | None) -> Any:
        if not REPLACEMENTS_ON:
            return original(expression, names, values)
        key = (
            expression,
            frozenset((names or {}).items()),
            frozenset((placeholder, tuple(value)) for placeholder, value in (values or {}).items()),
        )
        found = _checked_conditions.get(key)
        if found is not None:
            return _CheckedCondition(*found)
        return _CheckingCondition(original(expression, names, values), key)

    return create


def install_condition_check_cache() -> None:
    _replace_once(_moto("moto.dynamodb.responses"), "create_condition_expression_parser", _check_once)


# -- item size -----------------------------------------------------------------------------------
# moto checks the 400 KB item limit on every attribute it stores by summing the sizes of all the
# attributes already there, so building an item is quadratic in its attributes (a contact has
# twenty). While an item is being built nothing else changes it: the same sums are kept running.
def _sized_as_built(original: Callable[..., None]) -> Callable[..., None]:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    @functools.wraps(original)
    def init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        if not REPLACEMENTS_ON:
            return original(self, hash_key, range_key, attrs)
        self.hash_key, self.range_key = hash_key, range_key
        built, total = LimitedSizeDict(), 0
        for key, value in attrs.items():
            typed = DynamoType(value)
            size = bytesize(key) + typed.size()
            if total + size > ITEM_SIZE_LIMIT:
                raise ItemSizeTooLarge
            dict.__setitem__(built, key, typed)
            total += size
        self.attrs = built

    return init


#: moto's limit (between the 400 KB documented and the ~410 KB measured)
ITEM_SIZE_LIMIT = 405_000


def install_item_size_shortcut() -> None:
    _replace_once(_moto("moto.dynamodb.models.dynamo_type").Item, "__init__", _sized_as_built)


# -- condition expressions --------------------------------------------------------------------
# moto lexes a ConditionExpression with a dozen regular expressions per token on every request.
# The tokens depend on the text alone, are immutable tuples, and every later stage builds new
# nodes from them, so each text is lexed once.
_lexed_conditions: dict[str, tuple[Any, ...]] = {}


def _lex_once(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    @functools.wraps(original)
    def lex(self: Any) -> Any:
        expression = self.condition_expression
        tokens = _lexed_conditions.get(expression)
        if tokens is None:
            tokens = tuple(original(self))  # raises moto's own errors
            if len(_lexed_conditions) < 4096:
                _lexed_conditions[expression] = tokens
        return deque(tokens)

    return lex


def install_condition_lexing_cache() -> None:
    _replace_once(
        _moto("moto.dynamodb.comparisons").ConditionExpressionParser, "_lex_condition_expression", _lex_once
    )


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
# items of one partition are the only ones that query can return, so only they are offered. On an
# index, moto compares every item's key attributes through DynamoType's own equality before it
# sorts: items whose string or binary key value differs are left out first, in one cheap pass.
def _partition_query(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        hash_key = arguments.get("hash_key")
        if not REPLACEMENTS_ON:
            candidates = None
        elif arguments.get("index_name") is not None:
            candidates = _index_candidates(self, arguments.get("hash_key_conditions") or [])
        elif hash_key is not None:
            candidates = _partition_candidates(self, hash_key)
        else:
            candidates = None
        if candidates is None:
            return original(self, *args, **kwargs)
        self.__dict__["all_items"] = lambda: candidates  # requests are serialised: nobody else sees it
        try:
            return original(self, *args, **kwargs)
        finally:
            self.__dict__.pop("all_items", None)

    return query


def _partition_candidates(table: Any, hash_key: Any) -> list[Any]:
    partition = table.items.get(hash_key)
    if partition is None:
        return []
    if table.range_key_attr:
        return sorted(partition.values(), key=lambda item: (item.hash_key, item.range_key))
    return [partition]


def _index_candidates(table: Any, conditions: list[tuple[str, Any]]) -> list[Any] | None:
    """The table's items, in moto's order, that can match the index's key conditions."""
    exact = [(name, value.type, value.value) for name, value in conditions if value.type in ("S", "B")]
    if not exact:
        return None
    return [
        item
        for item in table.all_items()
        if all(
            (found := item.attrs.get(name)) is not None and found.type == kind and found.value == value
            for name, kind, value in exact
        )
    ]


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
def deliver_to_queue(queue_url: str, body: str) -> None:
    """SNS delivering a notification to a subscribed queue: inside AWS that is the service's own
    hand-over, not an SQS API call, so in process it goes straight into moto's queue."""
    from moto.sqs.models import sqs_backends

    _, _, host, account, name = queue_url.split("/", 4)
    region = host.split(".")[1]
    with _request_lock:
        sqs_backends[account][region].send_message(name, body)


def visible_messages(queue_arn: str) -> int:
    """How many messages a ReceiveMessage on the queue could return now. The runtime polls every
    queue each step, as Lambda's pollers do; an empty poll is the emulator's own cost, not the
    system's, so in process it looks at moto's queue instead of asking."""
    from moto.sqs.models import sqs_backends

    _, _, _, region, account, name = queue_arn.split(":", 5)
    queue = sqs_backends[account][region].queues.get(name)
    return 0 if queue is None else len(queue.messages)


# -- direct answers -------------------------------------------------------------------------------
# In process, a call was serialised by botocore, sent through its HTTP layer (endpoint, retry
# handler, a dozen events), rebuilt as a werkzeug request by moto and parsed back into the same
# parameters, then its answer went the same way back: most of each call's cost. botocore's own
# `before-call` event (the one its Stubber answers on) lets the emulator answer instead:
# - DynamoDB: the parameters botocore has validated go to the very handler method moto would
#   call; its result is cut to the output model, as moto's serialiser cuts it.
# - SQS and EventBridge: the request botocore serialised goes to moto's handler as moto's own stub
#   hands it over, and botocore parses the answer.
# Errors always go through moto's serialiser and botocore's parser, so they raise exactly what
# they would have, modeled fields included. Anything that must see requests sent (the fault
# injector) marks them WIRE_ONLY and they take the whole path.
WIRE_ONLY = "consentry.wire_only"
_DIRECT_PARAMS = "consentry.direct_params"
DISPATCHED_SERVICES = frozenset({"sqs", "events"})
DIRECT_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "TransactGetItems",
    }
)
#: Shapes whose values moto builds exactly as the model has them (from the items it stores).
_TAKEN_AS_BUILT = frozenset({"AttributeValue"})
_Answer = tuple[AWSResponse, dict[str, Any]]


def _keep_params(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    if (
        _direct.is_set()
        and model.name in DIRECT_OPERATIONS
        and model.service_model.service_name == "dynamodb"
    ):
        context[_DIRECT_PARAMS] = params


def _copied(value: Any) -> Any:
    # moto keeps what it is given and hands out what it keeps: neither side may alias the other.
    return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))  # noqa: S301 - our own bytes


def _answer_directly(model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> _Answer | None:
    api_params = context.pop(_DIRECT_PARAMS, None)
    if context.get(WIRE_ONLY) or not _direct.is_set():
        return None
    service = model.service_model.service_name
    if service == "dynamodb":
        return None if api_params is None else _answer_dynamodb(model, api_params, context)
    if service in DISPATCHED_SERVICES:
        return _answer_dispatched(model, params)
    return None


def _answer_dispatched(model: Any, request_dict: dict[str, Any]) -> _Answer | None:
    from moto.core.request import Request

    method, url = request_dict["method"], request_dict["url"]
    with _request_lock:
        handler = _moto_handler_for(method, url)
        if handler is None:
            return None
        request = Request.from_primitives(method, url, request_dict["headers"], request_dict["body"])
        status, headers, body = _dispatch(handler, request)
    return _parsed_response(model, url, status, headers, body)


def _answer_dynamodb(model: Any, params: dict[str, Any], context: dict[str, Any]) -> _Answer:
    from moto.core import DEFAULT_ACCOUNT_ID  # type: ignore[attr-defined]
    from moto.core.exceptions import HTTPException, ServiceException  # type: ignore[attr-defined]
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoHandler

    region = context.get("client_region") or "us-east-1"
    url = f"https://dynamodb.{region}.amazonaws.com/"
    handler: Any = DynamoHandler()
    handler.params = handler.body = _copied(params)
    handler.headers = {
        "X-Amz-Target": f"DynamoDB_20120810.{model.name}",
        "Content-Type": "application/x-amz-json-1.0",
    }
    handler.querystring = {}
    handler.response_headers = {}
    handler.region = region
    handler.current_account = DEFAULT_ACCOUNT_ID
    # The conversion moto's own dispatch makes from the action to its handler method.
    method = getattr(handler, _moto("moto.core.responses").camelcase_to_underscores(model.name))
    with _request_lock:
        try:
            result = method()
        except ServiceException as error:
            status, headers, body = handler.serialized(ActionResult(error))
            return _parsed_response(model, url, status, headers, body)
        except HTTPException as error:
            return _parsed_response(
                model, url, error.code or 500, dict(error.get_headers() or []), error.description
            )
        answer = _conformed(_copied(result.result), model.output_shape)
    answer["ResponseMetadata"] = {"HTTPStatusCode": 200, "HTTPHeaders": {}, "RetryAttempts": 0}
    return AWSResponse(url, 200, HTTPHeaders(), None), answer


def _conformed(value: Any, shape: Any) -> Any:
    """What botocore would have parsed from moto's serialisation of `value`: members the output
    model does not name are left out, as moto's serialiser leaves them out."""
    kind = shape.type_name
    if kind == "structure":
        if shape.name in _TAKEN_AS_BUILT:
            return value
        members = shape.members
        return {
            name: _conformed(member_value, members[name])
            for name, member_value in value.items()
            if name in members and member_value is not None
        }
    if kind == "list":
        member = shape.member
        return [_conformed(element, member) for element in value]
    if kind == "map":
        member = shape.value
        return {key: _conformed(element, member) for key, element in value.items()}
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind in ("double", "float"):
        return float(value)
    return value


def _parsed_response(model: Any, url: str, status: int, headers: Any, body: Any) -> _Answer:
    """The answer exactly as botocore parses it off the wire, an error's modeled fields included."""
    from botocore.parsers import create_parser

    http_headers = HTTPHeaders()
    for name, value in dict(headers).items():
        http_headers[name] = str(value)
    response = {
        "status_code": int(status),
        "headers": http_headers,
        "body": body.encode() if isinstance(body, str) else body,
    }
    parser = create_parser(model.service_model.resolved_protocol)
    parsed: dict[str, Any] = parser.parse(response, model.output_shape)
    if int(status) >= 300:
        error_shape = model.service_model.shape_for_error_code(parsed.get("Error", {}).get("Code"))
        if error_shape is not None:
            parsed.update(parser.parse(response, error_shape))
    parsed.setdefault("ResponseMetadata", {})["RetryAttempts"] = 0
    return AWSResponse(url, int(status), http_headers, None), parsed


_direct = threading.Event()  # set while an in-process runtime runs


def install_direct_answers() -> None:
    """For every session botocore makes from now on, as moto installs its own stub (botocore's
    built-in handlers): the functions' clients and the ones libraries make for themselves
    (Powertools' idempotency layer). They answer only while `answer_directly(True)`."""
    from botocore import handlers

    installed = {handler for _, handler, *_ in handlers.BUILTIN_HANDLERS}
    if _answer_directly not in installed:
        handlers.BUILTIN_HANDLERS.append(("before-parameter-build", _keep_params, handlers.REGISTER_LAST))
        handlers.BUILTIN_HANDLERS.append(("before-call", _answer_directly, handlers.REGISTER_LAST))


def answer_directly(on: bool) -> None:
    if on:
        _direct.set()
    else:
        _direct.clear()
