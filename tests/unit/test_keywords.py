"""Inbound intent classifier: the labelled corpus, surface forms, edges, and the CLI."""

import io
import json
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry import cli
from consentry.domain import keywords
from consentry.domain.keywords import Classification, Intent, classify, normalize_text

CORPUS = Path(__file__).resolve().parent.parent / "data" / "labelled_texts.jsonl"
TOPICS = {"DEALS": "deals", "alerts": "alerts"}  # one key lower-case: topic keywords are matched in any case
OPT_OUT_GROUPS = {"bare_keyword", "spanish_french", "fcc_phrase", "misspelling"}


def _corpus() -> list[dict[str, Any]]:
    with CORPUS.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def _vocabulary(language: str) -> dict[str, Any]:
    source = resources.files("consentry.domain.vocabulary").joinpath(f"{language}.json")
    data: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    return data


# --- the labelled corpus ------------------------------------------------------------------------


def test_corpus_covers_every_kind_of_text() -> None:
    rows = _corpus()
    groups = Counter(row["group"] for row in rows)
    assert len(rows) >= 180
    assert groups["other_sense"] >= 50
    assert set(groups) == OPT_OUT_GROUPS | {"other_sense", "help", "opt_in", "topic", "chatter"}
    assert {row["intent"] for row in rows} == {intent.value for intent in Intent}


def test_every_labelled_text_is_classified_as_labelled() -> None:
    rows = _corpus()
    results = [(row, classify(row["text"], TOPICS)) for row in rows]
    opt_outs = [(row, got) for row, got in results if row["intent"] == "opt_out"]
    other_sense = [(row, got) for row, got in results if row["group"] == "other_sense"]
    not_opt_outs = [(row, got) for row, got in results if row["intent"] != "opt_out"]
    missed = [row["text"] for row, got in opt_outs if got.intent is not Intent.OPT_OUT]
    false_other_sense = [row["text"] for row, got in other_sense if got.intent is Intent.OPT_OUT]
    false_any = [row["text"] for row, got in not_opt_outs if got.intent is Intent.OPT_OUT]
    wrong = [
        f"{row['text']!r}: want {row['intent']}/{row['scope']}, got {got.intent}/{got.scope} ({got.rule})"
        for row, got in results
        if (got.intent.value, got.scope) != (row["intent"], row["scope"])
    ]
    rates = (
        f"miss rate on real opt-outs {len(missed)}/{len(opt_outs)} = {len(missed) / len(opt_outs):.1%}; "
        f"false opt-out rate on other-sense texts {len(false_other_sense)}/{len(other_sense)} = "
        f"{len(false_other_sense) / len(other_sense):.1%} "
        f"(on all non-opt-outs {len(false_any)}/{len(not_opt_outs)})"
    )
    assert not wrong, rates + "\n" + "\n".join(wrong)


def test_corpus_texts_are_unique() -> None:
    texts = [row["text"] for row in _corpus()]
    assert [text for text, count in Counter(texts).items() if count > 1] == []


# --- what a classification carries -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "matched", "language", "rule"),
    [
        ("STOP", "STOP", "en", "keyword"),
        ("ＳＴＯＰ", "STOP", "en", "keyword"),
        ("opt-out", "OPTOUT", "en", "keyword"),
        ("OPT OUT", "OPTOUT", "en", "keyword"),
        ("Unsub", "UNSUBSCRIBE", "en", "keyword"),
        ("ARRÊT", "ARRET", "fr", "keyword"),
        ("Arrêtez", "ARRET", "fr", "keyword"),
        ("alto por favor", "ALTO", "es", "keyword"),
        ("UNSUBSCIBE", "UNSUBSCRIBE", "en", "fuzzy"),
        ("CANSEL", "CANCEL", "en", "fuzzy"),
        ("take me off your list", "take me off your list", "en", "phrase"),
        ("Dejen de enviarme mensajes", "dejen de enviarme", "es", "phrase"),
        ("Désabonnez-moi", "desabonnez", "fr", "phrase"),
        ("pls unsuscribe me from this list", "unsubscribe me from this list", "en", "fuzzy"),
        ("Wrong number. STOP", "STOP", "en", "keyword"),
    ],
)
def test_opt_out_reports_canonical_match_language_and_rule(
    text: str, matched: str, language: str, rule: str
) -> None:
    result = classify(text)
    assert result == Classification(
        text=text, intent=Intent.OPT_OUT, scope="all", matched=matched, language=language, rule=rule
    )


def test_other_carries_only_the_text() -> None:
    text = "  When does the sale end?  "
    assert classify(text) == Classification(text=text, intent=Intent.OTHER)
    assert classify(text).model_dump(mode="json") == {
        "text": text,
        "intent": "other",
        "scope": None,
        "matched": None,
        "language": None,
        "rule": None,
    }


@pytest.mark.parametrize("language", keywords.LANGUAGES)
def test_every_vocabulary_keyword_classifies_as_itself(language: str) -> None:
    """Data consistency: each canonical keyword, sent bare, comes back as that keyword and language."""
    for canonical, spec in _vocabulary(language)["keywords"].items():
        for form in [canonical, *spec["forms"]]:
            result = classify(form)
            assert (result.intent.value, result.matched, result.language) == (
                spec["intent"],
                canonical,
                language,
            ), form
            assert result.scope == spec.get("scope", "all" if spec["intent"] == "opt_out" else None)


# --- fuzzy matching edges -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["stpo", "sotp", "ned", "qiut", "stopp", "altos", "bajas", "td2"])
def test_short_keywords_never_fuzzy_match(text: str) -> None:
    assert classify(text).intent is Intent.OTHER


@pytest.mark.parametrize("text", ["cancer", "remote", "subscribe", "resubscribe", "pasar", "arrest"])
def test_real_words_next_to_a_keyword_are_not_misspellings(text: str) -> None:
    assert classify(text).intent is Intent.OTHER


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("CNACLE", Intent.OTHER),  # two transpositions: beyond one edit for a six-letter keyword
        ("UNSBSCRIB", Intent.OPT_OUT),  # two edits allowed for the eleven-letter UNSUBSCRIBE
        ("UNSBSCRB", Intent.OTHER),  # three are not
        ("STARTT", Intent.OTHER),  # opt-ins are never guessed: texting without consent is a violation too
    ],
)
def test_edit_distance_is_bounded(text: str, intent: Intent) -> None:
    assert classify(text).intent is intent


def test_osa_distance_counts_a_transposition_as_one_edit() -> None:
    assert keywords._osa_distance("cancle", "cancel", 3) == 1
    assert keywords._osa_distance("cancel", "cancel", 3) == 0
    assert keywords._osa_distance("unsbscrb", "unsubscribe", 2) == 3  # stops counting past the limit


# --- scopes, topics and priorities ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent", "scope", "matched"),
    [
        ("STOP DEALS", Intent.OPT_OUT, "deals", "STOP"),
        ("deals", Intent.OPT_IN, "deals", "DEALS"),
        ("ALERTS", Intent.OPT_IN, "alerts", "ALERTS"),
        ("START DEALS", Intent.OPT_IN, "deals", "DEALS"),  # the narrowest opt-in wins
        ("YES START", Intent.OPT_IN, "all", "START"),
        ("yes", Intent.OPT_IN, "pending", "YES"),
        ("STOP DEALS ALERTS", Intent.OPT_OUT, "all", "STOP"),  # two topics cannot be one scope: stop all
        ("HELP STOP", Intent.OPT_OUT, "all", "STOP"),  # opt-out beats help
        ("HELP YES", Intent.HELP, None, "HELP"),  # help beats opt-in
        ("STOP START", Intent.OPT_OUT, "all", "STOP"),
    ],
)
def test_scope_and_priority(text: str, intent: Intent, scope: str | None, matched: str) -> None:
    result = classify(text, TOPICS)
    assert (result.intent, result.scope, result.matched) == (intent, scope, matched)


def test_topic_keyword_matches_in_any_case_and_several_words() -> None:
    topics = {"Flash Sale": "flash_sale"}
    assert classify("FLASH SALE!", topics).scope == "flash_sale"
    assert classify("flash sale", topics).matched == "FLASH SALE"
    assert classify("stop flash sale", topics).scope == "flash_sale"
    assert classify("flash", topics).intent is Intent.OTHER


def test_without_topics_a_stop_with_an_unknown_word_stops_everything() -> None:
    result = classify("STOP DEALS")
    assert (result.intent, result.scope) == (Intent.OPT_OUT, "all")
    assert classify("DEALS").intent is Intent.OTHER


def test_topic_keywords_cannot_redefine_compliance_keywords() -> None:
    topics = {"STOP": "promo", "help": "support", "please": "x", "": "empty", "!!": "punct", "VIP": " "}
    assert (classify("STOP", topics).intent, classify("STOP", topics).scope) == (Intent.OPT_OUT, "all")
    assert classify("HELP", topics).intent is Intent.HELP
    assert classify("please", topics).intent is Intent.OTHER
    assert classify("", topics).intent is Intent.OTHER
    assert classify("VIP", topics).intent is Intent.OTHER


def test_opt_in_and_help_only_come_from_the_whole_text() -> None:
    assert classify("Yes, see you at 3").intent is Intent.OTHER
    assert classify("Help! where is my order").intent is Intent.OTHER
    assert classify("DEALS? what deals do you have", TOPICS).intent is Intent.OTHER


def test_a_guard_masks_only_its_own_words() -> None:
    # the other-sense use is ignored, the revocation next to it still counts
    assert classify("I'll stop by tomorrow. STOP texting me though").intent is Intent.OPT_OUT
    assert classify("Don't cancel my order, just stop the texts").intent is Intent.OPT_OUT
    assert classify("Please don't remove me from the list").intent is Intent.OTHER


# --- normalisation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("ＳＴＯＰ!!", "stop"),
        ("ARRÊT", "arret"),
        ("Don't  STOP 🛑\nnow", "dont stop now"),
        ("Straße", "strasse"),
        ("UNSUB\u00adSCRIBE", "unsubscribe"),
        ("s\u200bt\u200bo\u200bp", "stop"),
        ("señor, ¿qué tal?", "senor que tal"),
        ("opt-out_now", "opt out now"),
        ("", ""),
        ("🛑👍🏽❤️", ""),
    ],
)
def test_normalize_text(raw: str, normalized: str) -> None:
    assert normalize_text(raw) == normalized


# --- vocabulary loading rules ----------------------------------------------------------------------


def test_pattern_with_unknown_word_class_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown word class"):
        keywords._compile_pattern("\\bstop {nothing}\\b", {})


def test_pattern_with_capturing_group_is_rejected() -> None:
    with pytest.raises(ValueError, match="non-capturing"):
        keywords._compile_pattern("\\b(stop) texting\\b", {})


def test_pattern_must_start_at_a_word() -> None:
    with pytest.raises(ValueError, match="must start"):
        keywords._compile_pattern("stop texting", {})
    assert keywords._compile_pattern("\\b{halt} now", {"halt": ["stop", "quit"]}) == " (?:stop|quit) now"


# --- properties ------------------------------------------------------------------------------------

BARE_OPT_OUTS = [
    ("STOP", "STOP"),
    ("STOPALL", "STOPALL"),
    ("UNSUBSCRIBE", "UNSUBSCRIBE"),
    ("CANCEL", "CANCEL"),
    ("END", "END"),
    ("QUIT", "QUIT"),
    ("REVOKE", "REVOKE"),
    ("OPTOUT", "OPTOUT"),
    ("OPT OUT", "OPTOUT"),
    ("OPT-OUT", "OPTOUT"),
    ("REMOVE", "REMOVE"),
    ("TD", "TD"),
    ("ALTO", "ALTO"),
    ("PARAR", "PARAR"),
    ("CANCELAR", "CANCELAR"),
    ("BAJA", "BAJA"),
    ("ARRET", "ARRET"),
    ("ARRÊT", "ARRET"),
]
FAMILY_EMOJI = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # joined with zero-width joiners
DECORATIONS = ["", " ", "!", "!!!", ".", "...", "?", '"', "'", "*", "(", ")", "\n"]
DECORATIONS += ["🛑", "🙏🏽", "❤️", "😡", "✋", FAMILY_EMOJI]
SEPARATORS = [" ", "  ", "! ", ", ", ". ", "\n", " - ", "!", "🛑"]
COMBINING_ACCENTS = ["\u0301", "\u0300", "\u0302", "\u0308", "\u0327"]


def _full_width(char: str) -> str:
    return chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char


@st.composite
def surface_form(draw: st.DrawFn, word: str) -> str:
    chars = []
    for char in word:
        if char.isalpha():
            char = char.upper() if draw(st.booleans()) else char.lower()
            if draw(st.integers(0, 4)) == 0:
                char = _full_width(char)
            if draw(st.integers(0, 9)) == 0:
                char += draw(st.sampled_from(COMBINING_ACCENTS))
        chars.append(char)
    return "".join(chars)


@st.composite
def decorated_bare_opt_out(draw: st.DrawFn) -> tuple[str, str]:
    word, canonical = draw(st.sampled_from(BARE_OPT_OUTS))
    copies = [draw(surface_form(word)) for _ in range(draw(st.integers(1, 4)))]
    body = copies[0]
    for copy in copies[1:]:
        body += draw(st.sampled_from(SEPARATORS)) + copy
    before = "".join(draw(st.lists(st.sampled_from(DECORATIONS), max_size=3)))
    after = "".join(draw(st.lists(st.sampled_from(DECORATIONS), max_size=3)))
    return before + body + after, canonical


@settings(max_examples=300)
@given(decorated_bare_opt_out())
def test_any_surface_form_of_a_bare_opt_out_keyword_is_that_opt_out(case: tuple[str, str]) -> None:
    text, canonical = case
    result = classify(text)
    assert (result.intent, result.scope, result.matched) == (Intent.OPT_OUT, "all", canonical), text


# No vowel and none of d, l, r, s, t, y: no vocabulary word, filler aside, can be spelt from these.
NON_VOCABULARY_WORDS = st.text(alphabet="bcfghjkmnpqvwxz0123456789", min_size=1, max_size=12)
NEUTRAL_WORDS = st.sampled_from(
    [
        *("the", "store", "tomorrow", "order", "blue", "coffee", "meeting", "friday", "ready", "price"),
        *("what", "time", "is", "open", "we", "your", "great", "thanks", "see", "soon", "can", "i", "bring"),
        *("my", "dog", "address", "receipt", "hours", "closed", "monday", "parking"),
    ]
)


@settings(max_examples=200)
@given(
    st.lists(st.one_of(NON_VOCABULARY_WORDS, NEUTRAL_WORDS), min_size=1, max_size=12),
    st.lists(st.sampled_from(SEPARATORS + DECORATIONS), min_size=1, max_size=12),
)
def test_text_without_vocabulary_words_is_other(words: list[str], separators: list[str]) -> None:
    text = "".join(word + separators[i % len(separators)] for i, word in enumerate(words))
    assert classify(text, TOPICS).intent is Intent.OTHER, text


@settings(max_examples=300)
@given(st.text(), st.dictionaries(st.text(max_size=8), st.text(min_size=1, max_size=8), max_size=3))
def test_classify_never_raises_and_keeps_the_text(text: str, topics: dict[str, str]) -> None:
    result = classify(text, topics)
    assert result.text == text
    assert result.intent in set(Intent)
    assert (result.intent is Intent.OTHER) == (result.matched is None)


@settings(max_examples=300)
@given(st.text())
def test_normalized_text_is_plain_words(text: str) -> None:
    normalized = normalize_text(text)
    assert normalized == normalized.strip()
    assert "  " not in normalized
    assert all(word.isalnum() for word in normalized.split())
    assert normalize_text(normalized) == normalized


# --- CLI -------------------------------------------------------------------------------------------


def _json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines()]


def test_cli_classifies_each_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["classify", "STOP", "can I cancel my appointment?", "ＳＴＯＰ DEALS"]) == 0
    lines = _json_lines(capsys.readouterr().out)
    assert [(line["text"], line["intent"], line["scope"], line["matched"]) for line in lines] == [
        ("STOP", "opt_out", "all", "STOP"),
        ("can I cancel my appointment?", "other", None, None),
        ("ＳＴＯＰ DEALS", "opt_out", "all", "stop deals"),  # no --topic: a phrase, stopping everything
    ]


def test_cli_topic_option(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["classify", "--topic", "DEALS=deals", "--topic", "alerts=alerts", "STOP DEALS", "Alerts"]
    assert cli.main(argv) == 0
    lines = _json_lines(capsys.readouterr().out)
    assert [(line["intent"], line["scope"]) for line in lines] == [("opt_out", "deals"), ("opt_in", "alerts")]


def test_cli_reads_stdin_one_message_per_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("STOP\n\n  Yes  \nArrêt svp\nwhen does the sale end?"))
    assert cli.main(["classify"]) == 0
    lines = _json_lines(capsys.readouterr().out)
    assert [(line["text"], line["intent"]) for line in lines] == [
        ("STOP", "opt_out"),
        ("", "other"),
        ("  Yes  ", "opt_in"),
        ("Arrêt svp", "opt_out"),
        ("when does the sale end?", "other"),
    ]


def test_cli_empty_stdin_prints_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert cli.main(["classify"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("bad", ["DEALS", "=deals", "DEALS=", " = "])
def test_cli_rejects_malformed_topic(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["classify", "--topic", bad, "STOP"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--topic expects KEYWORD=topic_id" in captured.err
