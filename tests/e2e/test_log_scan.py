"""No phone number and no message body in any log line, across a whole scenario at DEBUG.

The scenario touches every path that handles numbers and texts: keyword opt-ins, double
opt-in, HELP, a phrase STOP, a free-text question, a signed Twilio webhook, an import, an
export and an erasure. Everything logged is captured -- the service logger's own JSON stream
at DEBUG, every record reaching the root logger at DEBUG (Powertools' internal loggers
included), and stdout/stderr -- and searched for each number (E.164, digits only, national
10 digits, formatted) and each message body sent either way.

Wire-level libraries (botocore, urllib3, moto) stay at INFO: at DEBUG they dump request bodies
by design, and the deployed functions never run them at DEBUG (Lambda's application log level
governs them; POWERTOOLS_LOG_LEVEL only raises the service logger).
"""

import base64
import hashlib
import hmac
import importlib
import io
import json
import logging
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

import consentry
from consentry import admin_client, cli
from consentry.observability import logger as service_logger
from consentry_local import runtime as runtime_module
from consentry_local.runtime import LocalRuntime
from tests.conftest import START
from tests.e2e.helpers import RuntimeAdminClient, contact

ANA = "+12125550142"  # keywords, double opt-in, HELP, a question, export, erasure
BEN = "+13125550143"  # opts in, then a phrase STOP
CY = "+14155550144"  # Twilio webhook
DI = "+16175550145"  # imported
NUMBERS = (ANA, BEN, CY, DI)
QUESTION = "Is my order 4471 shipped yet? It is for Ana Lopez"
PHRASE_STOP = "please stop texting me, thanks"
WIRE_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "moto", "werkzeug", "responses")


def number_patterns(number: str) -> list[re.Pattern[str]]:
    national = number[-10:]
    area, exchange, line = national[:3], national[3:6], national[6:]
    return [
        re.compile(re.escape(number)),
        re.compile(re.escape(number.lstrip("+"))),
        re.compile(re.escape(national)),
        re.compile(rf"{area}\D{{0,2}}{exchange}\D?{line}"),  # (212) 555-0142, 212-555-0142, 212.555.0142
    ]


class Capture:
    def __init__(self) -> None:
        self.service_stream = io.StringIO()
        self.chunks: list[str] = []

    def text(self, caplog: pytest.LogCaptureFixture) -> str:
        records = [
            f"{record.name} {record.getMessage()} {json.dumps(record.__dict__, default=str)}"
            for record in caplog.records
        ]
        return "\n".join([self.service_stream.getvalue(), *records, *self.chunks])


def _import_every_module() -> None:
    """Create every module-level logger now, so the levels set below reach all of them."""
    for module in pkgutil.walk_packages(consentry.__path__, prefix="consentry."):
        importlib.import_module(module.name)


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[Capture]:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    # The runtime sets the template's environment when it starts; its local overrides win.
    monkeypatch.setitem(runtime_module.LOCAL_ENVIRONMENT, "POWERTOOLS_LOG_LEVEL", "DEBUG")
    _import_every_module()
    caplog.set_level(logging.DEBUG)
    for name in WIRE_LOGGERS:
        caplog.set_level(logging.INFO, logger=name)
    found = Capture()
    underlying = logging.getLogger(service_logger.name)
    streams = [
        (handler, handler.setStream(found.service_stream))
        for handler in underlying.handlers
        if isinstance(handler, logging.StreamHandler)
    ]
    assert streams, "the service logger's stream handler was not found"
    # Loggers made at import time took the level of that moment (Powertools child loggers set
    # one explicitly): raise every one that is not a wire-level library's.
    levels = {
        name: existing.level
        for name, existing in logging.root.manager.loggerDict.items()
        if isinstance(existing, logging.Logger) and not name.startswith(WIRE_LOGGERS)
    }
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield found
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for handler, stream in streams:
            handler.setStream(stream)


def twilio_post(runtime: LocalRuntime, body: str) -> None:
    params = {
        "MessageSid": "SM" + "c" * 32,
        "AccountSid": "AC" + "d" * 32,
        "From": CY,
        "To": "+12025550100",
        "Body": body,
    }
    url = f"{runtime.base_url}/webhooks/twilio/inbound"
    signed = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    signature = base64.b64encode(
        hmac.new(b"local-twilio-auth-token", signed.encode(), hashlib.sha1).digest()
    ).decode()
    response = runtime.http(
        "POST",
        "/v1/webhooks/twilio/inbound",
        body=urlencode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )
    assert response.status == 200, response.body


def test_a_full_scenario_logs_no_number_and_no_message_body(
    capture: Capture,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    runtime = LocalRuntime(tmp_path, start=START)
    runtime.start()
    service_logger.debug("debug probe")  # proves DEBUG lines reach the capture
    admin_client.use_client(lambda _url: RuntimeAdminClient(runtime))
    try:
        for number, body in (
            (ANA, "ALERTS"),
            (ANA, "DEALS"),
            (ANA, "YES"),
            (ANA, "HELP"),
            (ANA, QUESTION),
            (BEN, "ALERTS"),
            (BEN, PHRASE_STOP),
        ):
            runtime.text_in(number, body)
            runtime.run_until_idle()
            runtime.advance(60)
        twilio_post(runtime, "ALERTS")
        runtime.run_until_idle()
        # An inbound text from a number that is not valid anywhere: refused, still not logged.
        runtime.publish(
            "InboundSmsTopic",
            {**runtime.simulator.inbound_payload(DI, "HELP"), "originationNumber": "+1617555014"},
        )
        runtime.run_until_idle()

        source = tmp_path / "contacts.csv"
        source.write_text(
            "phone,first_name,consent.alerts,consent.alerts.at\n"
            f"{DI},Di,yes,2026-10-01T12:00:00Z\n"
            "(617) 555-01,Broken,yes,2026-10-01T12:00:00Z\n",
            encoding="utf-8",
        )
        assert cli.main(["contacts", "import", str(source), "--errors", str(tmp_path / "errors.csv")]) == 1
        capture.chunks.extend(capsys.readouterr())
        export_file = tmp_path / "export.json"
        assert cli.main(["contacts", "export", ANA, "--output", str(export_file)]) == 0
        capture.chunks.extend(capsys.readouterr())
        assert cli.main(["contacts", "erase", ANA, "--yes"]) == 0
        out, err = capsys.readouterr()
        erased = json.loads(out.strip().splitlines()[-1])  # the command's answer, not a log line
        assert erased["contact_deleted"] is True
        capture.chunks.extend([*out.strip().splitlines()[:-1], err])
        assert contact(ANA) is None
        sent_bodies = [entry["body"] for entry in runtime.simulator.log_entries()]
    finally:
        admin_client.use_client(None)
        runtime.stop()
    capture.chunks.extend(capsys.readouterr())

    # The scenario did what it should, so the scan below covers real work.
    exported = json.loads(export_file.read_text(encoding="utf-8"))
    assert [text["body"] for text in exported["inbound_texts"]] == [
        "ALERTS",
        "DEALS",
        "YES",
        "HELP",
        QUESTION,
    ]
    assert len(sent_bodies) >= 6

    logged = capture.text(caplog)
    assert "debug probe" in logged
    assert "consent change recorded" in logged  # the capture really saw the service's logs
    assert "contacts imported" in logged
    assert "contact erased" in logged
    for number in NUMBERS:
        for pattern in number_patterns(number):
            match = pattern.search(logged)
            assert match is None, (
                f"{pattern.pattern} logged: ...{logged[max(0, match.start() - 200) : match.end() + 50]}"
            )
    for body in {QUESTION, PHRASE_STOP, *sent_bodies}:
        assert body not in logged, f"message body logged: {body[:40]}"
    assert "Lopez" not in logged
