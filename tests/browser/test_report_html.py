"""The campaign report page, rendered by headless Chromium: every number in the DOM is the JSON
report's, the charts draw the same counts, nothing is loaded from elsewhere, and a screenshot is
taken (left in the test's tmp dir)."""

import contextlib
import io
import json
import re
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from consentry import admin_client, cli
from consentry.admin_client import AdminResponse
from consentry.domain.report import campaign_report
from tests.browser.conftest import Chromium

pytestmark = pytest.mark.browser

GENERATED = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
NAME = "<Fall & Winter> sale"  # escaped, never markup


def served_report() -> dict[str, Any]:
    """What GET /campaigns/{id}/report answers for a campaign with something in every section."""
    report = campaign_report(
        campaign_id="cmp_browser",
        campaign={"name": NAME, "topic": "deals", "status": "completed"},
        audience=12_480,
        chunk_counts={
            "sent": 11_907,
            "unknown": 12,
            "segments": 14_022,
            "suppressed.outside_window": 301,
            "suppressed.frequency_cap": 120,
            "failed.invalid": 9,
            "failed.opted_out": 3,
        },
        campaign_counts={
            "audience": 12_480,
            "suppressed.opted_out": 88,
            "suppressed.undeliverable": 40,
            "delivered": 11_512,
            "failed.unreachable": 205,
            "failed.carrier_blocked": 61,
            "failed.invalid": 14,
            "delivery_unknown": 25,
            "ttd_ms_le.1000": 410,
            "ttd_ms_le.2000": 2_950,
            "ttd_ms_le.5000": 5_130,
            "ttd_ms_le.10000": 2_100,
            "ttd_ms_le.30000": 700,
            "ttd_ms_le.300000": 200,
            "ttd_ms_le.inf": 22,
            "cost_micros": 101_655_960,
            "opt_outs": 46,
            "opt_outs_after_h.0": 21,
            "opt_outs_after_h.1": 9,
            "opt_outs_after_h.2": 5,
            "opt_outs_after_h.13": 4,
            "opt_outs_after_h.30": 4,
            "opt_outs_after_h.71": 3,
            "numbers_suppressed": 17,
            "carrier_opt_outs": 2,
            "unmatched_receipts": 1,
        },
        generated_at=GENERATED,
    )
    served: dict[str, Any] = report.model_dump(mode="json")
    return served


class OneReport:
    """The admin API as the CLI sees it, answering with the report above."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def request(self, method: str, path: str, **_: Any) -> AdminResponse:
        assert (method, path) == ("GET", "/campaigns/cmp_browser/report")
        return AdminResponse(200, json.dumps(self.body))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    """`consentry report cmp_browser --html page --json`: the JSON it printed and the page it wrote."""
    admin_client.use_client(lambda _url: OneReport(served_report()))
    try:
        page = tmp_path_factory.mktemp("page") / "report.html"
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert cli.main(["report", "cmp_browser", "--html", str(page), "--json"]) == 0
        yield json.loads(printed.getvalue()), page
    finally:
        admin_client.use_client(None)


@pytest.fixture(scope="module")
def dom(chromium: Chromium, rendered: tuple[dict[str, Any], Path]) -> "Dom":
    """The page's DOM after Chromium loaded and rendered it (one browser run for the module)."""
    return dump_dom(chromium, rendered[1])


class Dom(HTMLParser):
    """What a reader of the rendered DOM finds: shown numbers, chart bars, scripts and links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.metrics: dict[str, list[tuple[str, str]]] = {}  # name -> [(data-value, text shown)]
        self.bars: list[dict[str, str]] = []
        self.tags: list[str] = []
        self.external: list[str] = []
        self.h1 = ""
        self._open: list[tuple[str, str, str]] = []  # (tag, metric, value) awaiting their text
        self._text: list[list[str]] = []
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.tags.append(tag)
        for name in ("src", "href", "xlink:href"):
            if values.get(name, "").startswith(("http:", "https:", "//")):
                self.external.append(values[name])
        if "data-bar" in values:
            self.bars.append(values)
        if tag == "h1":
            self._in_h1 = True
        if "data-metric" in values:
            self._open.append((tag, values["data-metric"], values.get("data-value", "")))
            self._text.append([])

    def handle_endtag(self, tag: str) -> None:
        if tag == "h1":
            self._in_h1 = False
        if self._open and self._open[-1][0] == tag:
            _tag, name, value = self._open.pop()
            text = "".join(self._text.pop()).strip()
            self.metrics.setdefault(name, []).append((value, text))

    def handle_data(self, data: str) -> None:
        if self._in_h1:
            self.h1 += data
        for collected in self._text:
            collected.append(data)


def dump_dom(chromium: Chromium, page: Path) -> Dom:
    result = chromium(page.as_uri(), "--dump-dom")
    assert "<html" in result.stdout
    dom = Dom()
    dom.feed(result.stdout)
    return dom


def expected_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """Every number the page must show, read from the JSON report (not from the renderer)."""
    expected: dict[str, Any] = {
        "audience": report["audience"],
        "sent": report["sent"],
        "delivered": report["delivered"],
        "delivered_rate": report["delivered_rate"],
        "ttd.p50_ms": report["time_to_deliver"]["p50_ms"],
        "ttd.p95_ms": report["time_to_deliver"]["p95_ms"],
        "opt_outs.attributed": report["opt_outs"]["attributed"],
        "opt_outs.rate": report["opt_outs"]["rate"],
        "segments": report["segments"],
        "cost.usd": report["cost"]["usd"],
        "cost.per_delivered_usd": report["cost"]["per_delivered_usd"],
        "funnel.audience": report["audience"],
        "funnel.handed_over": report["sent"] + report["send_unknown"],
        "funnel.delivered": report["delivered"],
        "handed_over": report["sent"] + report["send_unknown"],
        "send_unknown": report["send_unknown"],
        "pending": report["pending"],
        "delivery_unknown": report["delivery_unknown"],
        "numbers_suppressed": report["numbers_suppressed"],
        "carrier_opt_outs": report["carrier_opt_outs"],
        "unmatched_receipts": report["unmatched_receipts"],
    }
    for section in ("suppressed", "send_failed", "delivery_failed"):
        expected[f"{section}.total"] = report[section]["total"]
        for reason, count in report[section]["by_reason"].items():
            expected[f"{section}.{reason}"] = count
    return expected


def shown_value(text: str) -> float:
    """The number a person reads in `text`, in the JSON's unit (ratios, milliseconds, dollars)."""
    number = float(re.sub(r"[^0-9.]", "", text))
    if text.endswith("%"):
        return number / 100
    if text.endswith(" ms"):
        return number
    if text.endswith(" s"):
        return number * 1000
    if text.endswith(" min"):
        return number * 60_000
    return number


def precision_of(text: str) -> float:
    """Half a unit of the last digit shown."""
    digits = re.sub(r"[^0-9.]", "", text)
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    unit = 10.0**-decimals
    scale = {"%": 0.01, " s": 1000.0, " min": 60_000.0}
    for suffix, factor in scale.items():
        if text.endswith(suffix):
            unit *= factor
    return unit / 2 + 1e-12


def test_every_number_in_the_page_is_the_json_reports(
    dom: Dom, rendered: tuple[dict[str, Any], Path]
) -> None:
    report, _page = rendered
    assert report == served_report()  # the CLI printed what the API served

    assert dom.h1 == NAME
    expected = expected_metrics(report)
    assert set(dom.metrics) == set(expected), "numbers missing from the page or not in the report"
    for name, value in expected.items():
        for raw, text in dom.metrics[name]:
            assert float(raw) == pytest.approx(value), name
            assert shown_value(text) == pytest.approx(value, abs=precision_of(text)), (name, text)


def test_the_charts_draw_the_reports_counts(dom: Dom, rendered: tuple[dict[str, Any], Path]) -> None:
    report, _page = rendered

    ttd = {bar["data-le"]: int(bar["data-value"]) for bar in dom.bars if bar["data-bar"] == "ttd"}
    assert ttd == {
        str(bucket["le_ms"]) if bucket["le_ms"] is not None else "inf": bucket["count"]
        for bucket in report["time_to_deliver"]["histogram"]
    }
    opt_outs = [int(bar["data-value"]) for bar in dom.bars if bar["data-bar"] == "opt_outs"]
    assert opt_outs == report["opt_outs"]["by_hour"]
    funnel = {
        bar["data-bar"]: int(bar["data-value"]) for bar in dom.bars if bar["data-bar"].startswith("funnel.")
    }
    assert funnel == {
        "funnel.audience": report["audience"],
        "funnel.handed_over": report["sent"] + report["send_unknown"],
        "funnel.delivered": report["delivered"],
    }
    widths = {
        bar["data-bar"]: float(bar["width"]) for bar in dom.bars if bar["data-bar"].startswith("funnel.")
    }
    assert widths["funnel.audience"] > widths["funnel.handed_over"] > widths["funnel.delivered"] > 0


def test_the_page_is_self_contained(dom: Dom) -> None:
    assert "script" not in dom.tags
    assert "link" not in dom.tags
    assert "img" not in dom.tags
    assert dom.external == []
    assert dom.tags.count("svg") == 3


def test_a_screenshot_of_the_page(
    chromium: Chromium, rendered: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    _report, page = rendered
    shot = tmp_path / "report.png"
    chromium(page.as_uri(), f"--screenshot={shot}", "--window-size=1280,2200", "--hide-scrollbars")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert (width, height) == (1280, 2200)
    assert len(data) > 20_000  # a real page, not a blank one
