import io
import json
import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from consentry.cli import main
from consentry.domain.encoding import (
    GSM_BASIC,
    GSM_EXTENSION,
    analyze,
    ensure_opt_out_instructions,
    has_opt_out_instructions,
    is_gsm7,
    smart_encode,
)

BASIC = sorted(GSM_BASIC)
EXTENSION = sorted(GSM_EXTENSION)
NON_GSM_BMP = ["ж", "ú", "ç", "中", "ق", "“", "—"]
EMOJI = ["😀", "🎉", "👍", "🛒"]


# --- Oracles: split the encoded units the way a modem would ------------------------------------------


def split_units(units: list[str], single: int, per_part: int, cannot_end_a_part: set[str]) -> int:
    """Parts needed for a unit stream; a part may not end on a unit that must stay with the next one."""
    if not units:
        return 0
    if len(units) <= single:
        return 1
    parts, position = 0, 0
    while position < len(units):
        end = min(position + per_part, len(units))
        if end < len(units) and units[end - 1] in cannot_end_a_part:
            end -= 1
        parts, position = parts + 1, end
    return parts


def gsm_septets(text: str) -> list[str]:
    septets: list[str] = []
    for char in text:
        septets.extend(["ESC", char] if char in GSM_EXTENSION else [char])
    return septets


def utf16_units(text: str) -> list[str]:
    raw = text.encode("utf-16-be")
    units = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return ["HIGH" if 0xD800 <= unit < 0xDC00 else "UNIT" for unit in units]


# --- GSM-7 --------------------------------------------------------------------------------------------


def test_gsm_alphabet_has_the_whole_basic_table_and_the_extension() -> None:
    assert len(GSM_BASIC) == 127  # 128 codes, less the escape
    assert "\x1b" not in GSM_BASIC
    assert {"@", "£", "€", "\n", "é", "Ä", "ß", "Δ"} <= GSM_BASIC | GSM_EXTENSION
    assert set("^{}\\[]~|€\f") == GSM_EXTENSION
    assert not GSM_BASIC & GSM_EXTENSION
    assert not {"á", "ç", "`", "“", "😀"} & (GSM_BASIC | GSM_EXTENSION)


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)]
)
def test_gsm_segment_boundaries(length: int, segments: int) -> None:
    info = analyze("a" * length)
    assert (info.encoding, info.units, info.segments) == ("GSM-7", length, segments)


def test_extension_characters_count_two_septets() -> None:
    assert analyze("€" * 80).units == 160
    assert analyze("€" * 80).segments == 1
    assert analyze("€" * 80 + "a").segments == 2
    assert analyze("a" * 159 + "{").segments == 2


def test_an_escape_pair_is_never_split_between_segments() -> None:
    # 306 septets would fit two parts of 153, but the euro sign would straddle them.
    text = "a" * 152 + "€" + "a" * 152
    info = analyze(text)
    assert info.units == 306
    assert math.ceil(info.units / 153) == 2
    assert info.segments == 3


@given(
    st.lists(st.sampled_from(BASIC + EXTENSION), min_size=140, max_size=330).map("".join)
    | st.integers(min_value=150, max_value=320).map(lambda n: "x" * n)
)
@example("a" * 160)
@example("a" * 161)
@example("a" * 306)
@example("a" * 307)
@example("a" * 158 + "|")
@example("a" * 159 + "|")
@example("a" * 152 + "~" + "a" * 152)
def test_gsm_segments_match_packing_septets(text: str) -> None:
    info = analyze(text)
    septets = gsm_septets(text)
    assert info.encoding == "GSM-7"
    assert info.units == len(septets)
    assert info.segments == split_units(septets, 160, 153, {"ESC"})


# --- UCS-2 --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)])
def test_ucs2_segment_boundaries(length: int, segments: int) -> None:
    info = analyze("ж" * length)
    assert (info.encoding, info.units, info.segments) == ("UCS-2", length, segments)


def test_one_character_outside_gsm_makes_the_whole_message_ucs2() -> None:
    info = analyze("a" * 100 + "ú")
    assert (info.encoding, info.units, info.segments) == ("UCS-2", 101, 2)
    assert info.non_gsm == ("ú",)


def test_emoji_outside_the_bmp_count_two_units_and_are_never_split() -> None:
    assert analyze("😀" * 35).units == 70
    assert analyze("😀" * 35).segments == 1
    assert analyze("😀" * 36).segments == 2
    text = "ж" * 66 + "😀" + "ж" * 66  # 134 units: two parts only if the surrogate pair could be split
    assert (analyze(text).units, analyze(text).segments) == (134, 3)


@given(st.lists(st.sampled_from(BASIC + NON_GSM_BMP + EMOJI), min_size=1, max_size=250).map("".join))
@example("a" * 69 + "😀")
@example("a" * 68 + "😀")
@example("ж" * 66 + "😀" + "ж")
def test_ucs2_segments_match_packing_utf16_units(text: str) -> None:
    info = analyze(text)
    if is_gsm7(text):
        assert info.encoding == "GSM-7"
        return
    units = utf16_units(text)
    assert info.encoding == "UCS-2"
    assert info.units == len(units) == len(text.encode("utf-16-le")) // 2
    assert info.segments == split_units(units, 70, 67, {"HIGH"})
    assert set(info.non_gsm) == {char for char in text if not is_gsm7(char)}


def test_empty_text_costs_nothing() -> None:
    info = analyze("")
    assert (info.encoding, info.segments, info.units) == ("GSM-7", 0, 0)


# --- Smart encoding -----------------------------------------------------------------------------------


def test_smart_encoding_turns_typography_into_gsm() -> None:
    text = "\u201cHello\u201d \u2014 it\u2019s 50\u00a0% off\u2026 \u2018today\u2019 \u2013 only"
    assert analyze(text).encoding == "UCS-2"
    assert smart_encode(text) == "\"Hello\" - it's 50 % off... 'today' - only"
    assert analyze(text, smart=True) == analyze(smart_encode(text))
    assert analyze(text, smart=True).encoding == "GSM-7"


def test_smart_encoding_leaves_texts_that_stay_ucs2_alone() -> None:
    text = "\u201cParty\u201d tonight \U0001f389\u2026"
    assert smart_encode(text) == text
    assert analyze(text, smart=True) == analyze(text)


@given(st.text(alphabet=st.sampled_from([*BASIC[:40], *NON_GSM_BMP, *EMOJI, "\u2019", "\u2026", "\u00a0"])))
@example("\u2026" * 70)  # 70 UCS-2 units, but 210 septets once spelled out
def test_smart_encoding_is_gsm_or_unchanged_and_idempotent(text: str) -> None:
    encoded = smart_encode(text)
    assert is_gsm7(encoded) or encoded == text
    assert smart_encode(encoded) == encoded
    assert analyze(text, smart=True).segments <= analyze(text).segments


# --- Opt-out instructions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Big sale today! Reply STOP to opt out",
        "Big sale today! Txt STOP to end",
        "Big sale today. Text 'stop' to cancel",
        "Big sale today. STOP=opt-out",
        "Big sale today. To unsubscribe visit example.com/u",
        "Big sale today. Opt out: reply with STOP",
    ],
)
def test_texts_with_opt_out_instructions_are_left_alone(text: str) -> None:
    assert has_opt_out_instructions(text)
    assert ensure_opt_out_instructions(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "Don't stop shopping: 20% off everything",
        "Stop by our store this weekend!",
        "The sale ends Sunday",
        "STOPWATCHES are 30% off",
    ],
)
def test_texts_merely_mentioning_stop_get_the_footer(text: str) -> None:
    assert not has_opt_out_instructions(text)
    assert ensure_opt_out_instructions(text) == f"{text}\nReply STOP to opt out"


def test_footer_replaces_trailing_whitespace_and_can_be_customised() -> None:
    assert ensure_opt_out_instructions("Sale today!  \n") == "Sale today!\nReply STOP to opt out"
    assert ensure_opt_out_instructions("", footer="Txt STOP to end") == "Txt STOP to end"
    assert ensure_opt_out_instructions("Sale", footer="Txt STOP to end") == "Sale\nTxt STOP to end"


@given(st.text(max_size=80))
def test_ensuring_opt_out_instructions_is_idempotent(text: str) -> None:
    once = ensure_opt_out_instructions(text)
    assert has_opt_out_instructions(once)
    assert ensure_opt_out_instructions(once) == once
    assert once.startswith(text.rstrip())


# --- CLI ----------------------------------------------------------------------------------------------


def run_segments(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str, *flags: str
) -> list[dict[str, object]]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(["segments", *flags]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_cli_segments_prints_one_json_line_per_input_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = run_segments(monkeypatch, capsys, "hello\n" + "a" * 161 + "\r\n\nHi \U0001f600\n")
    assert [row["text"] for row in rows] == ["hello", "a" * 161, "", "Hi \U0001f600"]
    assert [(row["encoding"], row["segments"], row["units"]) for row in rows] == [
        ("GSM-7", 1, 5),
        ("GSM-7", 2, 161),
        ("GSM-7", 0, 0),
        ("UCS-2", 1, 5),
    ]


def test_cli_segments_smart_and_promotional(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = run_segments(monkeypatch, capsys, "It\u2019s on\n")
    assert plain[0]["encoding"] == "UCS-2"
    smart = run_segments(monkeypatch, capsys, "It\u2019s on\n", "--smart")
    assert (smart[0]["text"], smart[0]["encoding"]) == ("It's on", "GSM-7")
    promo = run_segments(monkeypatch, capsys, "It\u2019s on\n\n", "--smart", "--promotional")
    assert promo[0]["text"] == "It's on\nReply STOP to opt out"
    assert promo[0]["units"] == len("It's on\nReply STOP to opt out")
    assert promo[1]["text"] == ""  # a blank line stays blank
