"""The web pages in headless Chromium, on a phone-sized screen with JavaScript off.

Sign up through the form, see the double opt-in text in the carrier simulator's log, reply YES
through the webhook, open the preference link, drop a topic, set weekly, save; the consent
state and the ledger are checked after each step, and a screenshot of each page is written
under the test's tmp directory (`screenshots/`).

The local runtime serves its API on 127.0.0.1 through a small threaded HTTP server; the test
thread drives the runtime (texts in, queues) between browser steps.
"""

import base64
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from consentry.domain.consent import TopicStatus
from consentry.domain.ledger import verify
from consentry.services.preferences import preference_url_for
from consentry_local.runtime import LocalRuntime
from tests.e2e.helpers import contact, ledger, sent_to

pytestmark = pytest.mark.browser

CHROMEDRIVER = Path("/usr/bin/chromedriver")
PHONE = "+12125550142"
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday, 10:00 in New York
PHONE_SCREEN = {"width": 390, "height": 844}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _handler_for(runtime: LocalRuntime) -> type[BaseHTTPRequestHandler]:
    class Forward(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            response = runtime.http(
                self.command,
                self.path,
                body=body,
                headers=dict(self.headers.items()),
                source_ip=self.client_address[0],
            )
            data = response.body.encode("utf-8")
            self.send_response(response.status)
            for name, value in response.headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _forward

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Forward


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LocalRuntime, str]]:
    port = _free_port()
    runtime = LocalRuntime(tmp_path / "runtime", start=START, host=f"127.0.0.1:{port}")
    runtime.start()
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(runtime))
    thread = threading.Thread(target=server.serve_forever, name="web-pages", daemon=True)
    thread.start()
    try:
        yield runtime, f"http://127.0.0.1:{port}/v1"
    finally:
        server.shutdown()
        server.server_close()
        runtime.stop()


@pytest.fixture
def browser(chromium_path: Path, tmp_path: Path) -> Iterator[WebDriver]:
    if not CHROMEDRIVER.exists():
        pytest.fail(
            "the browser tests need Debian's chromium-driver at /usr/bin/chromedriver "
            "(apt-get install -y chromium chromium-driver), as `make test` installs it",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium_path)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    # The pages must work without JavaScript: the browser runs none.
    options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    driver.command_executor.client_config.timeout = 60  # a hung command fails the test, not the run
    # A phone's screen, through DevTools (chromedriver's mobileEmulation option hangs on clicks
    # when JavaScript is off, and a headless window cannot be narrower than 500px).
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": PHONE_SCREEN["width"],
            "height": PHONE_SCREEN["height"],
            "deviceScaleFactor": 2,
            "mobile": True,
        },
    )
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: WebDriver, tmp_path: Path, name: str) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.png"
    # The whole page, not only the first screenful (DevTools, as page scripts are off).
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 5_000
    return path


def assert_page_is_sound(driver: WebDriver) -> None:
    """No CSP violation or other console error; the inline style applied; fits a phone screen."""
    problems = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    problems = [message for message in problems if "favicon.ico" not in message]
    assert problems == []
    main = driver.find_element(By.TAG_NAME, "main")
    assert main.rect["width"] <= PHONE_SCREEN["width"]
    assert main.value_of_css_property("max-width") == "576px"  # 36rem: the style sheet is in force


def submit(browser: WebDriver, button: str, *, answer: str) -> Any:
    """Click a form's button and wait for the answer page's `answer` element: the click returns
    while the browser may still be between the two pages, with no document to read."""
    browser.find_element(By.CSS_SELECTOR, button).click()
    return WebDriverWait(browser, 20).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, answer))
    )


def test_sign_up_confirm_and_change_preferences_in_a_browser(
    served: tuple[LocalRuntime, str], browser: WebDriver, tmp_path: Path
) -> None:
    runtime, base = served
    shots: list[Path] = []

    # 1. The form: nothing pre-checked, the disclosure next to the button.
    browser.get(f"{base}/join")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Texts from Consentry Demo"
    boxes = browser.find_elements(By.CSS_SELECTOR, "input[type=checkbox]")
    assert [box.get_attribute("value") for box in boxes] == ["deals", "alerts"]
    assert not any(box.is_selected() for box in boxes)
    assert "Msg & data rates may apply" in browser.find_element(By.ID, "disclosure").text
    assert_page_is_sound(browser)
    shots.append(screenshot(browser, tmp_path, "1-join"))

    browser.find_element(By.ID, "phone").send_keys("(212) 555-0142")
    browser.find_element(By.CSS_SELECTOR, "label[for=topic-deals]").click()  # a tap on the label
    browser.find_element(By.ID, "topic-alerts").send_keys(Keys.SPACE)  # the keyboard
    assert all(box.is_selected() for box in browser.find_elements(By.CSS_SELECTOR, "input[type=checkbox]"))
    submit(browser, "button[type=submit]", answer="[role=status]")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Check your phone"
    assert "+1 212-555-0142" in browser.find_element(By.CSS_SELECTOR, "[role=status]").text
    assert_page_is_sound(browser)
    shots.append(screenshot(browser, tmp_path, "2-check-your-phone"))

    # 2. The double opt-in text, and nothing active before YES.
    runtime.run_until_idle()
    texts = sent_to(runtime, PHONE)
    assert [text["body"].split(":")[1].strip().split(" confirm")[0] for text in texts] == ["Reply YES to"] * 2
    record = contact(PHONE)
    assert record is not None
    assert {topic: consent.status for topic, consent in record.consent.topics.items()} == {
        "deals": TopicStatus.PENDING,
        "alerts": TopicStatus.PENDING,
    }
    entries = ledger(PHONE)
    assert [(entry.kind, entry.scope) for entry in entries] == [
        ("request_confirmation", "deals"),
        ("request_confirmation", "alerts"),
    ]
    evidence = entries[0].evidence
    assert evidence is not None
    assert evidence["detail"]["ip"] == "127.0.0.1"
    assert "Chrome" in evidence["detail"]["user_agent"]
    assert evidence["detail"]["page_url"] == f"{base}/join"

    # 3. YES through the webhook (End User Messaging's inbound topic).
    runtime.advance(90)
    runtime.text_in(PHONE, "YES")
    runtime.run_until_idle()
    record = contact(PHONE)
    assert record is not None
    assert record.consent.is_subscribed("deals")
    assert record.consent.is_subscribed("alerts")
    assert ledger(PHONE)[-1].kind == "confirm"

    # 4. The preference link: drop a topic, at most weekly, save.
    link = preference_url_for(PHONE)
    assert link is not None
    assert link.startswith(f"{base}/preferences?t=")
    browser.get(link)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Your text preferences"
    assert browser.find_element(By.ID, "topic-deals").is_selected()
    assert browser.find_element(By.ID, "topic-alerts").is_selected()
    assert browser.find_element(By.ID, "frequency-default").is_selected()
    assert_page_is_sound(browser)
    shots.append(screenshot(browser, tmp_path, "3-preferences"))

    browser.find_element(By.CSS_SELECTOR, "label[for=topic-alerts]").click()
    browser.find_element(By.CSS_SELECTOR, "label[for=frequency-weekly]").click()
    notice = submit(browser, "button[value=save]", answer=".notice")
    assert "Saved. Your choices apply from the next text." in notice.text
    assert browser.find_element(By.ID, "topic-deals").is_selected()
    assert not browser.find_element(By.ID, "topic-alerts").is_selected()
    assert browser.find_element(By.ID, "frequency-weekly").is_selected()
    assert_page_is_sound(browser)
    shots.append(screenshot(browser, tmp_path, "4-saved"))

    record = contact(PHONE)
    assert record is not None
    assert record.consent.is_subscribed("deals")
    assert record.consent.topics["alerts"].status is TopicStatus.REVOKED
    assert record.frequency_cap == {"count": 1, "days": 7}
    entries = ledger(PHONE)
    assert [(entry.kind, entry.scope) for entry in entries[-2:]] == [
        ("opt_in", "deals"),
        ("opt_out", "alerts"),
    ]
    for entry in entries[-2:]:
        assert entry.evidence is not None
        assert entry.evidence["source"] == "web"
        assert entry.evidence["detail"]["frequency"] == "weekly"
    assert verify(entries).ok

    # 5. The same form in Spanish.
    browser.get(f"{base}/join?lang=es")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es"
    assert browser.find_element(By.CSS_SELECTOR, "label[for=phone]").text == "Número de celular"
    assert_page_is_sound(browser)
    shots.append(screenshot(browser, tmp_path, "5-join-es"))

    print("screenshots:", *shots, sep="\n  ")
