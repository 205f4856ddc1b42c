"""The consent disclosure shown next to the submit button, as exact text with a version hash.

The page renders these same pieces (links around the two URLs), and the evidence stored with
a submission is `text` with its `sha256`: what the person saw, word for word. The hidden form
field carries `version`, so a submission made against a disclosure that has since changed
is noticed and shown again instead of being recorded under the wrong words.
"""

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict

from consentry.domain.program import Program
from consentry.web.i18n import Texts

PageKind = Literal["join", "preferences"]


class Disclosure(BaseModel):
    model_config = ConfigDict(frozen=True)

    intro: str
    topic_lines: tuple[str, ...]
    terms: tuple[str, str, str, str]  # terms label, terms url, privacy label, privacy url
    closing: tuple[str, ...]

    @property
    def links_text(self) -> str:
        terms_label, terms_url, privacy_label, privacy_url = self.terms
        return f"{terms_label}: {terms_url} {privacy_label}: {privacy_url}"

    @property
    def text(self) -> str:
        return " ".join((self.intro, *self.topic_lines, *self.closing, self.links_text))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def version(self) -> str:
        return self.sha256[:16]


def kind_label(t: Texts, message_class: str) -> str:
    return t(f"kind_{message_class}")


def disclosure_for(program: Program, t: Texts, page: PageKind, last_digits: str = "") -> Disclosure:
    if page == "join":
        intro = t("disclosure_join", brand=program.brand)
    else:
        intro = t("disclosure_preferences", brand=program.brand, last_digits=last_digits)
    topic_lines = tuple(
        t(
            "disclosure_topic",
            description=topic.description,
            kind=kind_label(t, topic.message_class),
            frequency=topic.frequency,
        )
        for topic in program.topics
    )
    closing = (
        *((t("disclosure_confirm"),) if page == "join" else ()),
        t("disclosure_condition"),
        t("disclosure_rates"),
        t("disclosure_keywords"),
    )
    return Disclosure(
        intro=intro,
        topic_lines=topic_lines,
        terms=(t("terms_label"), program.terms_url, t("privacy_label"), program.privacy_url),
        closing=closing,
    )
