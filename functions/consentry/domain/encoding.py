"""SMS encoding: GSM-7 or UCS-2, how many segments a text costs, smart look-alike replacement,
and the opt-out footer of promotional messages (compliance.md, "Message encoding").
"""

import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet in code order (0x1B, the escape to the extension table, is not text).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
) - {"\x1b"}
# Sent as escape + character: two septets, which must stay in the same segment.
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM_SINGLE, GSM_PER_PART = 160, 153  # septets
UCS2_SINGLE, UCS2_PER_PART = 70, 67  # UTF-16 code units

# Look-alikes that silently turn a message into UCS-2 (and so cost 2-3x the segments).
SMART_REPLACEMENTS: dict[str, str] = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u2039": "'", "\u203a": "'",
    "\u00b4": "'", "\u0060": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...",
    "\u00a0": " ", "\u2002": " ", "\u2003": " ", "\u2004": " ", "\u2005": " ", "\u2006": " ", "\u2007": " ",
    "\u2008": " ", "\u2009": " ", "\u200a": " ", "\u202f": " ", "\u205f": " ", "\u3000": " ", "\t": " ",
    "\u200b": "", "\u2060": "", "\ufeff": "",
    "\u2022": "-", "\u00b7": "-",
    "\u02c6": "^", "\u02dc": "~",
    "\u00e7": "Ç",  # GSM has only the capital; handsets commonly show it for both
}  # fmt: skip

DEFAULT_OPT_OUT_FOOTER = "Reply STOP to opt out"

# Wording that tells the reader how to opt out. A bare "stop" ("don't stop shopping") is not one.
_OPT_OUT_INSTRUCTION_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"\b(?:reply|text|txt|send|respond|msg)\b\W+(?:with\W+)?\W?stop\b",
        r"\bstop\b\W{0,3}(?:to|=|:)?\W*(?:opt\W?out|unsubscribe|end|cancel|quit)\b",
        r"\bopt\W?out\b",
        r"\bunsubscribe\b",
    )
)


class SegmentInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    encoding: Encoding
    segments: int  # 0 for an empty text
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    non_gsm: tuple[str, ...] = ()  # the distinct characters that forced UCS-2, in order of appearance


def is_gsm7(text: str) -> bool:
    return all(char in GSM_BASIC or char in GSM_EXTENSION for char in text)


def _gsm_cost(char: str) -> int:
    return 2 if char in GSM_EXTENSION else 1


def _utf16_cost(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _pack(costs: Sequence[int], single: int, per_part: int) -> int:
    """Segments needed when no character (escape pair, surrogate pair) may straddle two segments."""
    total = sum(costs)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            segments, used = segments + 1, 0
        used += cost
    return segments


def smart_encode(text: str) -> str:
    """Replace typographic look-alikes with GSM-7 characters, when that makes the text cheaper.

    A text that stays UCS-2 anyway (emoji, non-Latin script) is returned unchanged: replacing
    would only alter it. So is one the replacement would make longer in segments ("…" is one
    UCS-2 unit but three GSM-7 septets).
    """
    replaced = "".join(SMART_REPLACEMENTS.get(char, char) for char in text)
    if replaced == text or not is_gsm7(replaced):
        return text
    return replaced if analyze(replaced).segments <= analyze(text).segments else text


def analyze(text: str, smart: bool = False) -> SegmentInfo:
    """Encoding, segment count and length units of `text` (after smart_encode when `smart`)."""
    if smart:
        text = smart_encode(text)
    non_gsm = tuple(
        dict.fromkeys(char for char in text if char not in GSM_BASIC and char not in GSM_EXTENSION)
    )
    if not non_gsm:
        gsm_costs = [_gsm_cost(char) for char in text]
        return SegmentInfo(
            encoding="GSM-7", segments=_pack(gsm_costs, GSM_SINGLE, GSM_PER_PART), units=sum(gsm_costs)
        )
    utf16_costs = [_utf16_cost(char) for char in text]
    return SegmentInfo(
        encoding="UCS-2",
        segments=_pack(utf16_costs, UCS2_SINGLE, UCS2_PER_PART),
        units=sum(utf16_costs),
        non_gsm=non_gsm,
    )


def has_opt_out_instructions(text: str) -> bool:
    return any(pattern.search(text) for pattern in _OPT_OUT_INSTRUCTION_PATTERNS)


def ensure_opt_out_instructions(text: str, footer: str = DEFAULT_OPT_OUT_FOOTER) -> str:
    """Append the opt-out footer on its own line unless the text already says how to opt out."""
    if has_opt_out_instructions(text):
        return text
    body = text.rstrip()
    return f"{body}\n{footer}" if body else footer
