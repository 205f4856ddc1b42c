"""Plain Python values <-> DynamoDB attribute values."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _prepare(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {key: _prepare(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [_prepare(item) for item in value]
    return value


def _restore(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _restore(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_restore(item) for item in value]
    if isinstance(value, set):
        return {_restore(item) for item in value}
    return value


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(_prepare(value)) for key, value in values.items() if value is not None}


def to_value(value: Any) -> Any:
    return _serializer.serialize(_prepare(value))


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _restore(_deserializer.deserialize(value)) for key, value in item.items()}
