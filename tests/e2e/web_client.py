"""A browser-like client for the web pages over the local runtime: keeps its cookie, reads forms."""

import re
from html import unescape
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

from consentry_local.runtime import HttpResponse, LocalRuntime

FORM = "application/x-www-form-urlencoded"
_INPUT = re.compile(r"<input ([^>]*)>")
_ATTRIBUTE = re.compile(r'([a-z-]+)(?:="([^"]*)")?')


def hidden_fields(body: str) -> dict[str, str]:
    """The hidden inputs of the first form on a page (csrf, lang, disclosure, t)."""
    fields: dict[str, str] = {}
    for match in _INPUT.finditer(body):
        attributes = {name: unescape(value or "") for name, value in _ATTRIBUTE.findall(match.group(1))}
        if attributes.get("type") == "hidden":
            fields.setdefault(attributes["name"], attributes["value"])
    return fields


class WebClient:
    def __init__(
        self, runtime: LocalRuntime, *, ip: str = "198.51.100.7", user_agent: str = "Mozilla/5.0 (pytest)"
    ) -> None:
        self.runtime = runtime
        self.ip = ip
        self.user_agent = user_agent
        self.cookies: dict[str, str] = {}

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"User-Agent": self.user_agent}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        headers.update(extra or {})
        return headers

    def _keep_cookies(self, response: HttpResponse) -> HttpResponse:
        jar: SimpleCookie = SimpleCookie()
        jar.load(response.headers.get("Set-Cookie", ""))
        self.cookies.update({name: morsel.value for name, morsel in jar.items()})
        return response

    def get(self, path: str, headers: dict[str, str] | None = None) -> HttpResponse:
        return self._keep_cookies(
            self.runtime.http("GET", path, headers=self._headers(headers), source_ip=self.ip)
        )

    def post(
        self, path: str, fields: list[tuple[str, str]], headers: dict[str, str] | None = None
    ) -> HttpResponse:
        return self._keep_cookies(
            self.runtime.http(
                "POST",
                path,
                body=urlencode(fields),
                headers=self._headers({"Content-Type": FORM, **(headers or {})}),
                source_ip=self.ip,
            )
        )

    def join(self, phone: str, topics: list[str], *, language: str = "en") -> HttpResponse:
        """Open the form and submit it as a person would."""
        page = self.get(f"/v1/join?lang={language}")
        assert page.status == 200, page.body
        fields = list(hidden_fields(page.body).items())
        fields += [("phone", phone), *(("topic", topic) for topic in topics)]
        return self.post("/v1/join", fields)

    def open_preferences(self, url: str) -> HttpResponse:
        parts = urlsplit(url)
        return self.get(f"{parts.path}?{parts.query}")

    def save_preferences(
        self, page: HttpResponse, *, topics: list[str], frequency: str = "default", pause: str = "none"
    ) -> HttpResponse:
        fields = list(hidden_fields(page.body).items())
        fields += [("action", "save"), ("frequency", frequency), ("pause", pause)]
        fields += [("topic", topic) for topic in topics]
        return self.post("/v1/preferences", fields)

    def stop_all(self, page: HttpResponse) -> HttpResponse:
        hidden = hidden_fields(page.body)
        fields = [(name, hidden[name]) for name in ("t", "csrf", "lang")] + [("action", "stop")]
        return self.post("/v1/preferences", fields)
