"""How the CLI reaches a Consentry deployment: its admin API.

- a deployed stack: the AdminApiUrl output (https://...execute-api...), signed with SigV4
  using the caller's AWS credentials (the API uses IAM auth);
- the local runtime served by `consentry local serve`: http://127.0.0.1:8787/v1, unsigned;
- tests: an in-process client handed to `use_client`.
"""

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

DEFAULT_LOCAL_API = "http://127.0.0.1:8787/v1"
API_URL_VARIABLE = "CONSENTRY_API_URL"


@dataclass(frozen=True)
class AdminResponse:
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class AdminClient(Protocol):
    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> AdminResponse: ...


def encode_request(
    path: str, *, body: Any = None, query: Mapping[str, str] | None = None, raw: bytes | None = None
) -> tuple[str, bytes | None]:
    """The path with its query string, and the payload (raw bytes, or `body` as JSON)."""
    target = path + (f"?{urlencode(query)}" if query else "")
    payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    return target, payload


class HttpAdminClient:
    """Talks HTTP to the admin API; signs with SigV4 when the API is on AWS."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        host = urlsplit(self.base_url).hostname or ""
        self.sign = host.endswith(".amazonaws.com")
        self.region = host.split(".")[2] if self.sign and host.count(".") >= 4 else None

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
        target, data = encode_request(path, body=body, query=query, raw=raw)
        url = self.base_url + target
        headers = {"Content-Type": content_type} if data is not None else {}
        if self.sign:
            headers = self._signed_headers(method, url, data, headers)
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - http(s) only
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return AdminResponse(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            return AdminResponse(error.code, error.read().decode())

    def _signed_headers(
        self, method: str, url: str, data: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise RuntimeError("no AWS credentials found to sign admin API requests")
        aws_request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials, "execute-api", self.region or "us-east-1").add_auth(aws_request)
        return dict(aws_request.headers.items())


_factory: Callable[[str | None], AdminClient] | None = None


def use_client(factory: Callable[[str | None], AdminClient] | None) -> None:
    """Tests hand the CLI an in-process client; None restores HTTP."""
    global _factory
    _factory = factory


def admin_client(api_url: str | None = None) -> AdminClient:
    if _factory is not None:
        return _factory(api_url)
    return HttpAdminClient(api_url or os.environ.get(API_URL_VARIABLE) or DEFAULT_LOCAL_API)


def add_api_argument(parser: Any) -> None:
    parser.add_argument(
        "--api",
        default=None,
        help=f"admin API base URL (default ${API_URL_VARIABLE} or {DEFAULT_LOCAL_API}, the local runtime)",
    )
