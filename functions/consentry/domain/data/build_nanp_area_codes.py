"""Regenerate nanp_area_codes.json (US area code -> state) from phonenumbers' geocoder data.

Run by hand when phonenumbers is upgraded, review the diff, commit the JSON:

    PYTHONPATH=functions python -m consentry.domain.data.build_nanp_area_codes

Runtime code only reads the JSON: the geocoder tables are large and slow to import, and a
reviewed, committed table makes a change of legal scope visible in code review.
"""

import json
from collections import Counter, defaultdict
from importlib.metadata import version
from pathlib import Path

from phonenumbers.geodata import GEOCODE_DATA

OUTPUT = Path(__file__).with_name("nanp_area_codes.json")

# The geocoder names states either in full ("Florida") or as "City, ST"; both map to USPS codes.
STATE_CODES_BY_NAME: dict[str, str] = {
    "Alabama": "AL",
    "Alaska": "AK",
    "Arizona": "AZ",
    "Arkansas": "AR",
    "California": "CA",
    "Colorado": "CO",
    "Connecticut": "CT",
    "Delaware": "DE",
    "Florida": "FL",
    "Georgia": "GA",
    "Hawaii": "HI",
    "Idaho": "ID",
    "Illinois": "IL",
    "Indiana": "IN",
    "Iowa": "IA",
    "Kansas": "KS",
    "Kentucky": "KY",
    "Louisiana": "LA",
    "Maine": "ME",
    "Maryland": "MD",
    "Massachusetts": "MA",
    "Michigan": "MI",
    "Minnesota": "MN",
    "Mississippi": "MS",
    "Missouri": "MO",
    "Montana": "MT",
    "Nebraska": "NE",
    "Nevada": "NV",
    "New Hampshire": "NH",
    "New Jersey": "NJ",
    "New Mexico": "NM",
    "New York": "NY",
    "North Carolina": "NC",
    "North Dakota": "ND",
    "Ohio": "OH",
    "Oklahoma": "OK",
    "Oregon": "OR",
    "Pennsylvania": "PA",
    "Rhode Island": "RI",
    "South Carolina": "SC",
    "South Dakota": "SD",
    "Tennessee": "TN",
    "Texas": "TX",
    "Utah": "UT",
    "Vermont": "VT",
    "Virginia": "VA",
    "Washington State": "WA",
    "Washington D.C.": "DC",
    "West Virginia": "WV",
    "Wisconsin": "WI",
    "Wyoming": "WY",
}
US_STATE_CODES = frozenset(STATE_CODES_BY_NAME.values())


def state_of(description: str) -> str | None:
    if description in STATE_CODES_BY_NAME:
        return STATE_CODES_BY_NAME[description]
    _, _, suffix = description.rpartition(", ")
    if suffix in US_STATE_CODES:
        return suffix
    return STATE_CODES_BY_NAME.get(suffix)


def build() -> dict[str, list[str]]:
    """Area code -> its state, from the area-code-level description where the geocoder has one.

    Exchange-level descriptions are only consulted when there is none (majority wins): they carry
    occasional mislabels (an exchange of NJ's 201 named "New York, NY"), while an area code never
    crosses a state line.
    """
    area_level: dict[str, str] = {}
    exchange_votes: dict[str, Counter[str]] = defaultdict(Counter)
    for prefix, names in GEOCODE_DATA.items():
        if not prefix.startswith("1") or len(prefix) < 4 or "en" not in names:
            continue
        state = state_of(names["en"])
        if state is None:
            continue
        if len(prefix) == 4:
            area_level[prefix[1:]] = state
        else:
            exchange_votes[prefix[1:4]][state] += 1
    table = {code: [state] for code, state in area_level.items()}
    for code, votes in exchange_votes.items():
        table.setdefault(code, [votes.most_common(1)[0][0]])
    return dict(sorted(table.items()))


def main() -> None:
    area_codes = build()
    # One area code per line keeps review diffs readable.
    rows = ",\n".join(f"  {json.dumps(code)}: {json.dumps(states)}" for code, states in area_codes.items())
    source = f"phonenumbers {version('phonenumbers')} geocoder (en); US states and DC only"
    OUTPUT.write_text(
        f'{{\n "source": {json.dumps(source)},\n "area_codes": {{\n{rows}\n }}\n}}\n', encoding="utf-8"
    )
    print(f"wrote {len(area_codes)} area codes to {OUTPUT}")


if __name__ == "__main__":
    main()
