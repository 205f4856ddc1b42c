"""The CLI's admin-API client, answered in-process by a local runtime (tests, benchmarks)."""

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from consentry.admin_client import AdminResponse
from consentry_local.runtime import LocalRuntime


class RuntimeAdminClient:
    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> AdminResponse:
        target = "/v1" + path + (f"?{urlencode(query)}" if query else "")
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        response = self.runtime.http(method, target, body=payload, headers={"Content-Type": content_type})
        return AdminResponse(response.status, response.body)
