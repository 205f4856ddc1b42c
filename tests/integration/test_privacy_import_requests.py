"""Malformed import requests are refused whole with 400 and a reason (they write nothing: one runtime)."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from consentry_local.runtime import LocalRuntime
from tests.conftest import START
from tests.e2e.helpers import table_items

PHONE = "+12125550142"


@pytest.fixture(scope="module")
def shared_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    local = LocalRuntime(tmp_path_factory.mktemp("import-requests"), start=START)
    local.start()
    try:
        yield local
    finally:
        local.stop()


def post(runtime: LocalRuntime, body: Any) -> tuple[int, dict[str, Any]]:
    payload = body if isinstance(body, str) else json.dumps(body)
    response = runtime.http(
        "POST", "/v1/contacts/import", body=payload, headers={"Content-Type": "application/json"}
    )
    return response.status, json.loads(response.body) if response.body else {}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "body is not JSON"),
        ({"rows": [{"line": 1, "row": {"phone": PHONE}}]}, "batch"),
        ({"batch": "b", "rows": []}, "rows"),
        ({"batch": "b", "rows": [{"line": n, "row": {"phone": PHONE}} for n in range(1, 502)]}, "rows"),
        ({"batch": "b", "rows": [{"line": 0, "row": {}}]}, "rows.0.line"),
        ({"batch": "b", "rows": [{"line": 2, "row": {}}, {"line": 2, "row": {}}]}, "repeat"),
        ({"batch": "b c", "rows": [{"line": 2, "row": {}}]}, "batch"),
        ({"batch": "b", "rows": [{"line": 2, "row": {}, "extra": 1}]}, "rows.0.extra"),
    ],
)
def test_a_malformed_request_is_refused_whole_with_400_and_a_reason(
    shared_runtime: LocalRuntime, body: Any, reason: str
) -> None:
    status, answer = post(shared_runtime, body)
    assert status == 400
    assert reason in answer["error"]
    assert table_items(shared_runtime, "ContactsTable") == []


def test_an_unknown_route_or_method_is_not_an_import(shared_runtime: LocalRuntime) -> None:
    response = shared_runtime.http("GET", "/v1/contacts/import")
    assert response.status in (400, 404, 405)
    assert table_items(shared_runtime, "ContactsTable") == []
