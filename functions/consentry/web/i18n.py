"""Page texts in English and Spanish (data in texts/*.json) and choosing the reader's language."""

import json
from datetime import date
from functools import cache
from importlib import resources
from typing import Literal, cast

Language = Literal["en", "es"]
LANGUAGES: tuple[Language, ...] = ("en", "es")
DEFAULT_LANGUAGE: Language = "en"


class Texts:
    """One language's page texts. Values are filled in with str.format on our own templates."""

    def __init__(self, language: Language, table: dict[str, object]) -> None:
        self.language = language
        self._table = table

    def __call__(self, key: str, **values: object) -> str:
        template = self._table[key]
        if not isinstance(template, str):
            raise KeyError(f"text {key!r} is not a string")
        return template.format(**values) if values else template

    def date(self, day: date) -> str:
        months = cast(list[str], self._table["months"])
        return self("date", day=day.day, month=months[day.month - 1], year=day.year)


@cache
def texts(language: Language) -> Texts:
    source = resources.files("consentry.web").joinpath("texts", f"{language}.json")
    table: dict[str, object] = json.loads(source.read_text(encoding="utf-8"))
    return Texts(language, table)


def choose_language(explicit: str | None, accept_language: str | None) -> Language:
    """`?lang=` (or the form's lang) wins; otherwise the best match in Accept-Language; else English."""
    if explicit:
        wanted = explicit.strip().lower()[:2]
        if wanted in LANGUAGES:
            return wanted
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, position, tag.strip().lower()[:2]))
    for negative_quality, _, primary in sorted(ranked):
        if negative_quality < 0 and primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE
