"""The CLI's admin-API client, answered in-process by a local runtime (tests, benchmarks)."""

from collections.abc import Mapping
from typing import Any

from consentry.admin_client import AdminResponse, encode_request
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
        target, payload = encode_request(path, body=body, query=query, raw=raw)
        response = self.runtime.http(
            method,
            f"/{self.runtime.stage}{target}",
            body=payload or b"",
            headers={"Content-Type": content_type},
        )
        return AdminResponse(response.status, response.body)
