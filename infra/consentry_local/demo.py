"""`make demo`: the whole story on the local runtime, checked against the simulator's own log.

Subscribers in several US time zones and states (and a few abroad) text keywords through the
real webhook paths (End User Messaging over SNS, Twilio form posts with valid signatures);
promotional subscribers confirm a double opt-in; some ask for HELP, some text STOP in the many
ways people write it, some use the words in another sense. A CRM import adds profile
attributes. A promotional campaign with personalisation and an attribute filter is previewed,
scheduled for 10:00 in each recipient's own time zone and run; the carrier simulator delays
and fails a share of the sends and some recipients answer STOP while it runs; receipts come
back; the report prints; then every promise is checked against what the carrier received.
The command exits non-zero if one does not hold.
"""

import argparse
import base64
import hashlib
import hmac
import logging
import random
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from consentry.domain.phone import mask
from consentry.domain.window import check_window
from consentry.providers.base import OutboundSms
from consentry.providers.simulator import SimulatorConfig
from consentry.store import contacts
from consentry_local.runtime import LocalRuntime

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # Tuesday; 07:00 in New York, 04:00 in Los Angeles
CAMPAIGN_DAY = "2026-11-24"
#: area code -> share of subscribers: NY, FL, TX, IL, CO, AZ, CA, WA
AREA_CODES = {"212": 3, "305": 2, "512": 2, "312": 2, "303": 1, "602": 1, "415": 2, "213": 2, "206": 1}
ABROAD = ["+447400123456", "+447700123456", "+33612345678", "+33698765432"]  # UK, France: a few abroad
STOP_FORMS = ["STOP", "stop", "Stop please", "UNSUBSCRIBE", "ALTO", "please stop texting me",
              "take me off your list", "STOP STOP", "ＳＴＯＰ", "Unsubscibe", "end",
              "no more texts"]  # fmt: skip
OTHER_SENSE = ["can I cancel my appointment?", "when does the sale end?", "I'll stop by tomorrow",
               "please don't cancel my order", "when does the promo start?"]  # fmt: skip
TEXTS_PER_WAVE = 40
MIN_SUBSCRIBERS = 40  # the STOP forms, HELP askers and other-sense talkers are drawn from them
CTIA_ELEMENTS = ("Msg & data rates may apply", "HELP", "STOP", "Terms:", "Privacy:")
TWILIO_TOKEN = "local-twilio-auth-token"  # noqa: S105 - the local runtime's fixed test token
FIRST_NAMES = ["Ana", "Ben", "Chloé", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivo", "Jo", ""]
PETS = [["dog"], ["cat"], ["ferret"], ["dog", "cat"], ["fish"], ["ferret", "dog"], []]
TEMPLATE = (
    "Hi {first_name|there}! {pet_name|Your pet} will love 20% off treats at Acme Pets today: acme.test/t"
)
AUDIENCE = {"any": [{"attribute": "pets", "op": "contains", "value": "dog"},
                    {"attribute": "pets", "op": "contains", "value": "ferret"}]}  # fmt: skip


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
    _texts: int = 0

    def check(self, claim: str, holds: bool, detail: str = "") -> None:
        self.checks.append(Check(claim, holds, detail))

    def text(self, phone: str, body: str, via_twilio: bool = False) -> None:
        if via_twilio:
            self._twilio_text(phone, body)
        else:
            self.runtime.text_in(phone, body)
        self._texts += 1
        if self._texts % TEXTS_PER_WAVE == 0:
            # Texts arrive over time, not all in one instant: let the consumers keep up.
            while self.runtime.step():
                pass

    def _twilio_text(self, phone: str, body: str) -> None:
        params = {"MessageSid": f"SM{self.rng.getrandbits(128):032x}", "AccountSid": "AC" + "0" * 32,
                  "From": phone, "To": self.runtime.simulator.config.our_number, "Body": body}  # fmt: skip
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
        self.check("every signed Twilio webhook is accepted", response.status == 200, response.body[:120])

    def api(self, method: str, path: str, body: Any = None) -> Any:
        import json

        response = self.runtime.http(method, "/v1" + path, body=json.dumps(body) if body is not None else b"")
        if response.status >= 300:
            raise RuntimeError(f"{method} {path} answered {response.status}: {response.body[:300]}")
        return response.json()


def population(count: int, rng: random.Random) -> list[str]:
    chosen: set[str] = set()
    weighted = [code for code, weight in AREA_CODES.items() for _ in range(weight)]
    chosen.update(ABROAD)
    while len(chosen) < count:
        exchange = rng.randint(201, 989)
        if exchange % 100 == 11 or exchange == 555:
            continue
        chosen.add(f"+1{rng.choice(weighted)}{exchange}{rng.randint(0, 9999):04d}")
    return sorted(chosen)


# -- chapter 1: keywords --------------------------------------------------------------------------
def keyword_chapter(story: Story, people: list[str]) -> dict[str, list[str]]:
    runtime, rng = story.runtime, story.rng
    groups: dict[str, list[str]] = defaultdict(list)
    for index, phone in enumerate(people):
        via_twilio = index % 3 == 0
        if index % 5 < 2:
            story.text(phone, "ALERTS", via_twilio)
            groups["alerts"].append(phone)
        else:
            story.text(phone, rng.choice(["DEALS", "deals", "Deals!"]), via_twilio)
            groups["deals"].append(phone)
    runtime.run_until_idle()
    runtime.advance(120)
    for phone in groups["deals"]:
        if rng.random() < 0.92:
            story.text(phone, rng.choice(["YES", "yes", "Yes!"]))
            groups["confirmed"].append(phone)
        else:
            groups["unconfirmed"].append(phone)
    runtime.run_until_idle()
    runtime.advance(300)
    for phone in rng.sample(people, max(5, len(people) // 200)):
        story.text(phone, rng.choice(["HELP", "info", "AYUDA"]))
        groups["help"].append(phone)
    talkers = rng.sample(people, max(5, len(people) // 100))
    for phone in talkers:
        story.text(phone, rng.choice(OTHER_SENSE))
        groups["other"].append(phone)
    quitters = rng.sample([p for p in people if p not in set(talkers)], max(12, len(people) // 50))
    for index, phone in enumerate(quitters):
        story.text(phone, STOP_FORMS[index % len(STOP_FORMS)], via_twilio=index % 2 == 0)
        groups["stop"].append(phone)
    runtime.run_until_idle()
    return groups


def verify_keywords(story: Story, groups: dict[str, list[str]]) -> dict[str, int]:
    loaded = contacts.load_many(phone for group in groups.values() for phone in group)
    records = {phone: loaded.get(phone) for group in groups.values() for phone in group}
    stopped = set(groups["stop"])
    opted_out = {phone for phone, record in records.items() if record and record.consent.opted_out}
    story.check("every STOP, in every form, is a committed opt-out", stopped <= opted_out,
                f"missed {len(stopped - opted_out)}")  # fmt: skip
    story.check("no other-sense text opted anybody out", not (set(groups["other"]) & opted_out))
    early = [p for p in groups["unconfirmed"] if (r := records[p]) and r.consent.is_subscribed("deals")]
    story.check("no double opt-in is active without YES", not early, f"{len(early)} active")
    log = story.runtime.simulator.log_entries()
    confirmations = Counter(entry["to"] for entry in log if "unsubscribed" in entry["body"])
    story.check("exactly one opt-out confirmation per STOP",
                set(confirmations) == stopped and all(confirmations[p] == 1 for p in stopped))  # fmt: skip
    welcome = [e for e in log if "subscribed to" in e["body"]]
    story.check("every welcome carries the CTIA elements", all(
        all(part in e["body"] for part in CTIA_ELEMENTS)
        for e in welcome))  # fmt: skip
    return {
        "keyword texts received": sum(
            len(groups[g]) for g in ("alerts", "deals", "confirmed", "help", "other", "stop")
        ),
        "subscribed to deals (confirmed YES)": sum(
            1 for r in records.values() if r and r.consent.is_subscribed("deals")
        ),
        "subscribed to alerts": sum(1 for r in records.values() if r and r.consent.is_subscribed("alerts")),
        "double opt-ins left unconfirmed": len(groups["unconfirmed"]),
        "opted out by STOP": len(opted_out),
    }


# -- chapter 2: profile import ----------------------------------------------------------------------
def import_profiles(story: Story, people: list[str]) -> int:
    rng = story.rng
    rows = []
    for line, phone in enumerate(people, start=1):
        pets = rng.choice(PETS)
        attributes: dict[str, Any] = {"pets": pets} if pets else {}
        if name := rng.choice(FIRST_NAMES):
            attributes["first_name"] = name
        if pets and rng.random() < 0.6:
            attributes["pet_name"] = rng.choice(["Biscuit", "Noodle", "Pixel", "Mochi", "Ziggy"])
        rows.append({"line": line, "row": {"phone": phone, "attributes": attributes}})
    imported = 0
    for start in range(0, len(rows), 500):
        report = story.api(
            "POST", "/contacts/import", {"batch": "crm-2026-11-24", "rows": rows[start : start + 500]}
        )
        imported += int(report.get("imported", report.get("applied", 0)))
    return imported


# -- chapter 3: the campaign ------------------------------------------------------------------------
def stop_script(rng: random.Random, share: float) -> Any:
    """A share of campaign recipients answers STOP (decided per number, so it is reproducible)."""

    def reply(sms: OutboundSms) -> str | None:
        if sms.campaign_id is None:
            return None
        digest = hashlib.sha256(sms.to_number.encode()).digest()[0] / 255
        return rng.choice(["STOP", "stop please", "Unsubscribe"]) if digest < share else None

    return reply


def campaign_chapter(story: Story, people: list[str]) -> tuple[str, dict[str, Any]]:
    runtime = story.runtime
    campaign = story.api("POST", "/campaigns", {
        "name": "Ferret and dog treats",
        "topic": "deals",
        "template": TEMPLATE,
        "audience": AUDIENCE,
        "schedule": {"kind": "local_time", "local_time": "10:00", "date": CAMPAIGN_DAY},
        "deadline": (START + timedelta(days=1)).isoformat(),
        "messages_per_second": 20,
    })  # fmt: skip
    campaign_id = campaign.get("campaign_id") or campaign["campaign"]["campaign_id"]
    preview = story.api("POST", f"/campaigns/{campaign_id}/preview")
    print(f"  preview: audience {preview.get('audience')}, would send {preview.get('would_send')}")
    for reason, count in sorted((preview.get("suppressed") or {}).items()):
        print(f"    suppressed {reason:<28} {count}")
    for sample in (preview.get("samples") or [])[:2]:
        print(f"    sample: {sample.get('text') if isinstance(sample, dict) else sample}")
    segments = preview.get("segments") or {}
    cost = preview.get("estimated_cost") or {}
    countries = ", ".join(
        f"{country} {line.get('recipients')} x ${line.get('price_per_segment')}"
        for country, line in sorted((cost.get("by_country") or {}).items())
    )
    print(
        f"    {preview.get('encoding')}, {segments.get('max')} segment(s) per message, "
        f"{segments.get('total')} in all; estimated cost ${cost.get('total')} ({countries})"
    )
    dead = [p for p in people if p.startswith("+1")][:: max(1, len(people) // 8)][:8]
    runtime.simulator.dead_numbers.update(dead)
    runtime.simulator.config.failure_share = 0.03
    runtime.simulator.reply_script = stop_script(story.rng, share=0.04)
    story.api("POST", f"/campaigns/{campaign_id}/schedule")
    runtime.run_until_idle(max_virtual=timedelta(hours=12))
    return campaign_id, preview


# -- chapter 4: report and invariants ---------------------------------------------------------------
def print_report(story: Story, campaign_id: str, workdir: Path) -> dict[str, Any]:
    from consentry.commands.campaign import run_text
    from consentry.commands.report import campaign_table
    from consentry.domain.report import CampaignReport
    from consentry.domain.report_html import render_campaign_report

    raw = story.api("GET", f"/campaigns/{campaign_id}/report")
    report = CampaignReport.model_validate(raw)
    print(campaign_table(report))
    campaign = story.api("GET", f"/campaigns/{campaign_id}")
    print(f"  campaign status: {campaign.get('status')}; run {run_text(campaign)}")
    page = workdir / "report.html"
    page.write_text(render_campaign_report(report), encoding="utf-8")
    print(f"  HTML report: {page}")
    return dict(raw)


def verify_campaign(story: Story, campaign_id: str, report: dict[str, Any]) -> None:
    log = [e for e in story.runtime.simulator.log_entries() if e.get("campaign_id") == campaign_id]
    per_number = Counter(entry["to"] for entry in log)
    duplicates = [mask(p) for p, n in per_number.items() if n > 1]
    story.check("no number received the campaign twice", not duplicates, f"{len(duplicates)} twice")
    # The campaign has no window override: the promotional default and the legal rules apply.
    outside = [
        e for e in log if not check_window(e["to"], datetime.fromisoformat(e["ts"]), "promotional").allowed
    ]
    story.check("no send outside the recipient's window", not outside, f"{len(outside)} outside")
    late = []
    for phone in per_number:
        stops = [
            entry.recorded_at for entry in contacts.ledger_entries(phone)
            if entry.kind == "opt_out" and entry.scope == "all" and entry.outcome in ("applied", "unchanged")
        ]  # fmt: skip
        sent_at = datetime.fromisoformat(next(e["ts"] for e in log if e["to"] == phone))
        if stops and min(stops) < sent_at:
            late.append(phone)
    story.check("no send to a number after its STOP was committed", not late, f"{len(late)} late")
    promotional = defaultdict(list)
    for entry in story.runtime.simulator.log_entries():
        if entry.get("message_class") == "promotional":
            promotional[entry["to"]].append(datetime.fromisoformat(entry["ts"]))
    over_cap = [
        p
        for p, times in promotional.items()
        if sum(1 for t in times if t > max(times) - timedelta(days=7)) > 1
    ]
    story.check("no frequency cap exceeded (1 promotional per 7 days)", not over_cap, f"{len(over_cap)} over")
    outcomes = {key: report.get(key) for key in ("audience", "sent", "send_unknown", "pending")}
    # A send whose answer was lost (timeout) is "unknown", never resent, and reconciled by its receipt.
    handed_over = int(report.get("sent", 0)) + int(report.get("send_unknown", 0))
    accounted = report.get("pending") == 0 and handed_over == len(log)
    story.check("every audience member is accounted for, and sent matches the carrier's log", accounted,
                f"{outcomes}, carrier saw {len(log)}")  # fmt: skip
    status = story.api("GET", f"/campaigns/{campaign_id}").get("status")
    story.check("the campaign completed once every recipient was terminal", status == "completed", status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="consentry demo")
    parser.add_argument("--subscribers", type=int, default=5000)
    args = parser.parse_args(argv)
    if args.subscribers < MIN_SUBSCRIBERS:
        parser.error(f"--subscribers must be at least {MIN_SUBSCRIBERS}: the story needs that many people")
    logging.getLogger("aws_lambda_powertools").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="consentry-demo-"))
    simulator = SimulatorConfig(log_path=workdir / "simulator.jsonl", messages_per_second=40)
    runtime = LocalRuntime(workdir, start=START, simulator=simulator, quiet=True)
    runtime.start()
    story = Story(runtime=runtime, rng=random.Random(2026))
    try:
        people = population(args.subscribers, story.rng)
        print(
            f"Consentry demo on the local runtime, virtual clock from {START.isoformat()}; work dir {workdir}"
        )
        print(
            f"\n1. {len(people)} subscribers text keywords via End User Messaging (SNS) and Twilio webhooks"
        )
        groups = keyword_chapter(story, people)
        for name, value in verify_keywords(story, groups).items():
            print(f"  {name:<38} {value}")
        print(f"  ({time.monotonic() - started:.0f}s so far)")
        print("\n2. A CRM import adds first names and pets (profile attributes, no consent claims)")
        print(f"  rows imported {import_profiles(story, people)}")
        print("\n3. Campaign: deals subscribers with a dog or a ferret, 10:00 in each one's own time zone")
        campaign_id, _preview = campaign_chapter(story, people)
        print(f"\n4. Report (virtual clock now {runtime.clock.now().isoformat()})")
        report = print_report(story, campaign_id, workdir)
        verify_campaign(story, campaign_id, report)
        from consentry.services.preferences import preference_url_for

        print("\n5. Web")
        print(f"  opt-in form:        {runtime.base_url}/join  (Spanish: ?lang=es)")
        print(f"  preference center for {mask(people[0])}: {preference_url_for(people[0])}")
        print("  (served by `consentry local serve`; the link is signed and expires)")
    finally:
        runtime.stop()
    failed = [check for check in story.checks if not check.holds]
    print("\nInvariants, checked against the carrier simulator's own log:")
    for claim in dict.fromkeys(check.claim for check in story.checks):
        bad = [c for c in failed if c.claim == claim]
        print(f"  [{'FAIL' if bad else ' ok '}] {claim}" + (f"  ({bad[0].detail})" if bad else ""))
    print(f"\nFinished in {time.monotonic() - started:.1f}s wall time.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
