"""`make demo`: the whole story on the local runtime, checked against the simulator's own log.

Subscribers text keywords through the real webhook paths (End User Messaging over SNS and
Twilio form posts with valid signatures); some confirm a double opt-in, some ask for HELP,
some text STOP in the many ways people write it, some use the words in another sense.
Every claim printed at the end is checked; the command exits non-zero if one fails.
"""

import base64
import hashlib
import hmac
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from consentry.store import contacts
from consentry_local.runtime import LocalRuntime

START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday, 10:00 in New York
AREA_CODES = ["212", "305", "512", "415", "206", "312", "405", "410", "213", "617"]
STOP_FORMS = [
    "STOP",
    "stop",
    "Stop please",
    "UNSUBSCRIBE",
    "ALTO",
    "please stop texting me",
    "take me off your list",
    "STOP STOP",
    "ＳＴＯＰ",
    "Unsubscibe",
    "end",
    "no more texts",
]
OTHER_SENSE = [
    "can I cancel my appointment?",
    "when does the sale end?",
    "I'll stop by tomorrow",
    "please don't cancel my order",
    "when does the promo start?",
]
TWILIO_TOKEN = "local-twilio-auth-token"  # noqa: S105 - the local runtime's fixed test token


@dataclass
class Check:
    claim: str
    holds: bool
    detail: str = ""


@dataclass
class Story:
    runtime: LocalRuntime
    rng: random.Random
    checks: list[Check] = field(default_factory=list)
    intents: Counter[str] = field(default_factory=Counter)

    def check(self, claim: str, holds: bool, detail: str = "") -> None:
        self.checks.append(Check(claim, holds, detail))

    def text(self, phone: str, body: str, via_twilio: bool = False) -> None:
        if via_twilio:
            self.twilio_text(phone, body)
        else:
            self.runtime.text_in(phone, body)

    def twilio_text(self, phone: str, body: str) -> None:
        params = {
            "MessageSid": f"SM{self.rng.getrandbits(128):032x}",
            "AccountSid": "AC" + "0" * 32,
            "From": phone,
            "To": self.runtime.simulator.config.our_number,
            "Body": body,
        }
        url = f"{self.runtime.base_url}/webhooks/twilio/inbound"
        data = url + "".join(f"{key}{params[key]}" for key in sorted(params))
        signature = base64.b64encode(
            hmac.new(TWILIO_TOKEN.encode(), data.encode(), hashlib.sha1).digest()
        ).decode()
        response = self.runtime.http(
            "POST",
            "/v1/webhooks/twilio/inbound",
            body=urlencode(params),
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
        )
        self.check("every signed Twilio webhook is accepted", response.status == 200, response.body)


def numbers(count: int, rng: random.Random) -> list[str]:
    chosen: set[str] = set()
    while len(chosen) < count:
        chosen.add(f"+1{rng.choice(AREA_CODES)}555{rng.randint(100, 199):04d}"[:12])
    return sorted(chosen)


def keyword_chapter(story: Story, people: list[str]) -> dict[str, list[str]]:
    """Opt-ins by keyword, a double opt-in, HELP, STOP in several forms, other-sense texts."""
    runtime, rng = story.runtime, story.rng
    groups: dict[str, list[str]] = {
        "deals": [],
        "alerts": [],
        "help": [],
        "stop": [],
        "other": [],
        "unconfirmed": [],
    }
    for index, phone in enumerate(people):
        via_twilio = index % 3 == 0
        if index % 4 == 0:
            story.text(phone, "ALERTS", via_twilio)
            groups["alerts"].append(phone)
        else:
            story.text(phone, rng.choice(["DEALS", "deals", "Deals!"]), via_twilio)
            groups["deals"].append(phone)
    runtime.run_until_idle()
    runtime.advance(120)
    for phone in groups["deals"]:
        if rng.random() < 0.9:
            story.text(phone, rng.choice(["YES", "yes", "Yes!"]))
        else:
            groups["unconfirmed"].append(phone)
    runtime.run_until_idle()
    runtime.advance(300)
    for phone in rng.sample(people, 10):
        story.text(phone, rng.choice(["HELP", "info", "AYUDA"]))
        groups["help"].append(phone)
    for phone in rng.sample(people, 15):
        story.text(phone, rng.choice(OTHER_SENSE))
        groups["other"].append(phone)
    runtime.run_until_idle()
    runtime.advance(300)
    quitters = rng.sample([p for p in people if p not in groups["other"]], len(people) // 5)
    for index, phone in enumerate(quitters):
        story.text(phone, STOP_FORMS[index % len(STOP_FORMS)], via_twilio=index % 2 == 0)
        groups["stop"].append(phone)
    runtime.run_until_idle()
    return groups


def verify_keywords(story: Story, groups: dict[str, list[str]]) -> dict[str, int]:
    records = {phone: contacts.load(phone) for group in groups.values() for phone in group}
    stopped = set(groups["stop"])
    opted_out = {phone for phone, record in records.items() if record and record.consent.opted_out}
    story.check(
        "every STOP, in every form, is a committed opt-out",
        stopped <= opted_out,
        f"missed: {sorted(stopped - opted_out)[:5]}",
    )
    story.check(
        "no other-sense text opted anybody out",
        not (set(groups["other"]) & opted_out),
        f"{sorted(set(groups['other']) & opted_out)[:5]}",
    )
    pending_never_active = [
        p for p in groups["unconfirmed"] if (r := records[p]) and r.consent.is_subscribed("deals")
    ]
    story.check(
        "no double opt-in is active without YES", not pending_never_active, str(pending_never_active[:5])
    )
    log = story.runtime.simulator.log_entries()
    sent = Counter(entry["to"] for entry in log)
    confirmations = Counter(entry["to"] for entry in log if "unsubscribed" in entry["body"])
    story.check(
        "exactly one opt-out confirmation per STOP",
        all(confirmations[p] == 1 for p in stopped) and set(confirmations) == stopped,
        f"{dict(list(confirmations.items())[:3])}",
    )
    story.check(
        "no promotional text before YES",
        not any(
            "deals" in e["body"].lower() and "subscribed to" in e["body"]
            for e in log
            if e["to"] in groups["unconfirmed"]
        ),
    )
    welcome = [e for e in log if "subscribed to" in e["body"]]
    story.check(
        "every welcome carries the CTIA elements",
        all(
            all(
                part in e["body"]
                for part in ("Msg & data rates may apply", "HELP", "STOP", "Terms:", "Privacy:")
            )
            for e in welcome
        ),
    )
    return {
        "texts sent by the simulator": len(log),
        "numbers texted": len(sent),
        "opted out": len(opted_out),
        "subscribed to deals": sum(1 for r in records.values() if r and r.consent.is_subscribed("deals")),
        "subscribed to alerts": sum(1 for r in records.values() if r and r.consent.is_subscribed("alerts")),
        "double opt-ins left unconfirmed": len(groups["unconfirmed"]),
    }


def print_samples(runtime: LocalRuntime) -> None:
    log = runtime.simulator.log_entries()
    kinds = {
        "double opt-in request": "Reply YES",
        "welcome": "subscribed to",
        "HELP answer": "for help contact",
        "opt-out confirmation": "unsubscribed",
    }
    print("\nTexts the carrier simulator received (one of each kind):")
    for kind, needle in kinds.items():
        sample = next((e for e in log if needle in e["body"]), None)
        print(f"  {kind:<22} {sample['body'] if sample else '(none)'}")


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="consentry-demo-"))
    runtime = LocalRuntime(workdir, start=START)
    runtime.start()
    story = Story(runtime=runtime, rng=random.Random(2026))
    try:
        people = numbers(300, story.rng)
        print(f"Consentry demo on the local runtime (virtual clock from {START.isoformat()})")
        print(f"Work dir {workdir}")
        print(
            f"\n1. {len(people)} subscribers text keywords via End User Messaging (SNS) and Twilio webhooks"
        )
        groups = keyword_chapter(story, people)
        summary = verify_keywords(story, groups)
        for name, value in summary.items():
            print(f"  {name:<34} {value}")
        print_samples(runtime)
    finally:
        runtime.stop()
    failed = [check for check in story.checks if not check.holds]
    print("\nInvariants:")
    for claim in dict.fromkeys(check.claim for check in story.checks):
        bad = [c for c in failed if c.claim == claim]
        print(f"  [{'FAIL' if bad else ' ok '}] {claim}" + (f"  ({bad[0].detail})" if bad else ""))
    print(f"\nFinished in {time.monotonic() - started:.1f}s wall time.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
