import math
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from consentry.domain.templates import (
    RESERVED_PLACEHOLDERS,
    STAND_IN_VALUE,
    MessageTemplate,
    Placeholder,
    RenderResult,
    TemplateError,
    validate_template,
)


def render(source: str, attributes: dict[str, object], system: dict[str, str] | None = None) -> RenderResult:
    return MessageTemplate.parse(source).render(attributes, system)


# --- rendering -------------------------------------------------------------------------------


def test_fills_attributes_and_keeps_literal_text() -> None:
    result = render("Hi {first_name|there}, 20% off at {store}", {"first_name": "Ana", "store": "Acme"})
    assert result.text == "Hi Ana, 20% off at Acme"
    assert result.missing is None
    assert result.ok


@pytest.mark.parametrize("value", [None, "", "   ", "\n\t"])
def test_fallback_used_when_attribute_empty(value: object) -> None:
    assert render("Hi {first_name|there}!", {"first_name": value}).text == "Hi there!"


def test_fallback_used_when_attribute_absent() -> None:
    assert render("Hi {first_name|there}!", {}).text == "Hi there!"


def test_empty_fallback_renders_nothing() -> None:
    assert render("Hi{first_name|}!", {}).text == "Hi!"


def test_fallback_may_hold_punctuation_and_pipes() -> None:
    assert render("{a|x: y! | z.}", {}).text == "x: y! | z."


@pytest.mark.parametrize("value", [None, "", "  "])
def test_missing_attribute_without_fallback_names_the_placeholder(value: object) -> None:
    result = render("Hi {first_name|there}, your code {code} at {store}", {"store": "Acme", "code": value})
    assert result.text is None
    assert result.missing == "code"
    assert not result.ok


def test_first_missing_placeholder_is_reported() -> None:
    assert render("{a} {b}", {}).missing == "a"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (3, "3"),
        (-7, "-7"),
        (2.0, "2"),
        (2.5, "2.5"),
        (Decimal("20.50"), "20.5"),
        (Decimal("1E+1"), "10"),
        (Decimal("0.10"), "0.1"),
        (date(2026, 11, 24), "2026-11-24"),
        ("  padded  ", "  padded  "),
    ],
)
def test_displayable_values(value: object, shown: str) -> None:
    assert render("[{v}]", {"v": value}).text == f"[{shown}]"


@pytest.mark.parametrize(
    "value", [True, False, ["a"], {"k": "v"}, {"tag"}, b"bytes", float("nan"), float("inf"), Decimal("NaN")]
)
def test_values_without_a_text_form_count_as_missing(value: object) -> None:
    assert render("[{v}]", {"v": value}).missing == "v"
    assert render("[{v|-}]", {"v": value}).text == "[-]"


def test_escaped_braces_are_literal() -> None:
    template = MessageTemplate.parse("{{first_name}} costs {{}} {price}}}")
    assert template.placeholders() == frozenset({"price"})
    assert template.render({"price": "5"}).text == "{first_name} costs {} 5}"


def test_reserved_placeholders_come_from_the_system_not_the_contact() -> None:
    template = MessageTemplate.parse("{brand}: deals! Manage: {preferences_url}")
    contact = {"brand": "Evil Corp", "preferences_url": "https://evil.example"}
    result = template.render(contact, {"brand": "Acme", "preferences_url": "https://acme.example/p/1"})
    assert result.text == "Acme: deals! Manage: https://acme.example/p/1"
    assert template.render(contact).missing == "brand"


def test_placeholders_lists_names_once() -> None:
    template = MessageTemplate.parse("{a} {b|x} {a} {brand}")
    assert template.placeholders() == frozenset({"a", "b", "brand"})
    assert template.attribute_placeholders() == frozenset({"a", "b"})


def test_nothing_in_a_value_is_evaluated() -> None:
    calls: list[str] = []

    class Sneaky:
        def __str__(self) -> str:
            calls.append("str")
            return "pwned"

        def __format__(self, spec: str) -> str:
            calls.append("format")
            return "pwned"

    result = render("Hi {name}", {"name": Sneaky()})
    assert result.missing == "name"
    assert calls == []


@pytest.mark.parametrize("value", ["{brand}", "{0.__class__}", "{{x}}", "{x!r:>10}", "}{"])
def test_placeholder_syntax_inside_values_is_not_interpreted(value: str) -> None:
    result = render("Hi {name}!", {"name": value}, {"brand": "Acme"})
    assert result.text == f"Hi {value}!"


# --- syntax errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "problem", "column"),
    [
        ("Hi {a.__class__}", "attribute access", 4),
        ("{user.name|x}", "attribute access", 1),
        ("Hi {0}", "positional", 4),
        ("{0.__class__.__mro__}", "attribute access", 1),
        ("{1st}", "positional", 1),
        ("{x!r}", "conversion", 1),
        ("ab {x:>10}", "format spec", 4),
        ("{x[0]}", "indexing", 1),
        ("{x]}", "indexing", 1),
        ("{x!r|fallback}", "conversion", 1),
        ("{__import__('os')}", "calls", 1),
        ("{}", "empty placeholder", 1),
        ("{|fallback}", "no name", 1),
        ("{ first_name }", "letters, digits and underscores", 1),
        ("{first name}", "letters, digits and underscores", 1),
        ("{prénom}", "letters, digits and underscores", 1),
        ("{a-b}", "letters, digits and underscores", 1),
        ("Hi {name", "unclosed", 4),
        ("Hi name}", "unmatched '}'", 8),
        ("{a{b}}", "nested", 3),
        ("{0:{1}}", "nested", 4),
        ("{a|{b}}", "nested", 4),
    ],
)
def test_forbidden_syntax_is_refused_with_its_column(source: str, problem: str, column: int) -> None:
    with pytest.raises(TemplateError) as caught:
        MessageTemplate.parse(source)
    assert problem in str(caught.value)
    assert caught.value.column == column
    assert f"column {column}" in str(caught.value)


def test_error_position_reports_line_in_multiline_templates() -> None:
    with pytest.raises(TemplateError) as caught:
        MessageTemplate.parse("Hello\nthere {x.y}")
    assert (caught.value.line, caught.value.column) == (2, 7)
    assert "line 2, column 7" in str(caught.value)


@pytest.mark.parametrize("source", ["", "   ", "\n"])
def test_empty_body_is_refused(source: str) -> None:
    with pytest.raises(TemplateError, match="empty"):
        MessageTemplate.parse(source)


def test_constructing_the_model_parses_and_ignores_supplied_parts() -> None:
    forged = MessageTemplate.model_validate({"source": "Hi {name}", "parts": ["{0.__class__}"]})
    assert forged.parts == MessageTemplate.parse("Hi {name}").parts
    with pytest.raises(ValidationError, match="positional"):
        MessageTemplate(source="Hi {0}")  # type: ignore[call-arg]


def test_render_result_holds_exactly_one_outcome() -> None:
    with pytest.raises(ValidationError):
        RenderResult(text=None, missing=None)
    with pytest.raises(ValidationError):
        RenderResult(text="x", missing="y")


# --- validate_template -----------------------------------------------------------------------


def segments_of_160(text: str) -> int:
    return max(1, math.ceil(len(text) / 160))


def test_unknown_placeholder_is_refused_with_its_column() -> None:
    with pytest.raises(TemplateError, match=r"unknown placeholder \{pet\} at column 8") as caught:
        validate_template("Hi {a} {pet}", {"a"}, 3, segments_of_160)
    assert caught.value.column == 8


def test_reserved_placeholders_are_always_known() -> None:
    template = validate_template("{brand}: {preferences_url}", set(), 3, segments_of_160)
    assert template.placeholders() == RESERVED_PLACEHOLDERS


def test_unknown_placeholders_allowed_when_attributes_not_given() -> None:
    assert validate_template("Hi {anything}", None, 3, segments_of_160).placeholders() == {"anything"}


def test_segment_limit_counts_the_worst_case_rendering() -> None:
    counted: list[str] = []

    def counter(text: str) -> int:
        counted.append(text)
        return segments_of_160(text)

    long_fallback = "f" * 30
    validate_template(f"A{{a}}B{{b|{long_fallback}}}C{{c|xy}}", None, 1, counter)
    assert counted == [f"A{STAND_IN_VALUE}B{long_fallback}C{STAND_IN_VALUE}"]


def test_segment_limit_uses_known_system_values() -> None:
    counted: list[str] = []

    def counter(text: str) -> int:
        counted.append(text)
        return 1

    validate_template("{brand} {preferences_url}", None, 1, counter, {"brand": "Acme"})
    assert counted == [f"Acme {STAND_IN_VALUE}"]


def test_too_many_segments_is_refused() -> None:
    # 150 literal characters plus one 20-character stand-in do not fit in one 160-char segment.
    source = "x" * 150 + "{name}"
    with pytest.raises(TemplateError, match=r"2 segments.*limit of 1"):
        validate_template(source, None, 1, segments_of_160)
    assert validate_template(source, None, 2, segments_of_160).source == source


def test_validate_template_reports_syntax_errors() -> None:
    with pytest.raises(TemplateError, match="format spec"):
        validate_template("{x:>3}", None, 3, segments_of_160)


# --- properties ------------------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True).filter(
    lambda name: name not in RESERVED_PLACEHOLDERS
)
literals = st.text(alphabet=st.characters(exclude_characters="{}"), max_size=20)
fallbacks = st.none() | st.text(alphabet=st.characters(exclude_characters="{}"), max_size=10)


@st.composite
def templates_with_expectations(draw: st.DrawFn) -> tuple[str, list[str | tuple[str, str | None]]]:
    pieces: list[str | tuple[str, str | None]] = draw(
        st.lists(literals | st.tuples(names, fallbacks), min_size=1, max_size=8)
    )
    source = "".join(
        piece
        if isinstance(piece, str)
        else "{" + piece[0] + ("" if piece[1] is None else "|" + piece[1]) + "}"
        for piece in pieces
    )
    return source, pieces


attribute_values = st.none() | st.text(max_size=15) | st.integers() | st.booleans() | st.lists(st.text())


@given(templates_with_expectations(), st.dictionaries(names, attribute_values, max_size=8))
def test_rendering_matches_a_plain_substitution(
    built: tuple[str, list[str | tuple[str, str | None]]], attributes: dict[str, object]
) -> None:
    source, pieces = built
    if not source.strip():
        return
    expected: list[str] = []
    missing: str | None = None
    for piece in pieces:
        if isinstance(piece, str):
            expected.append(piece)
            continue
        name, fallback = piece
        value = attributes.get(name)
        if (
            isinstance(value, bool)
            or not isinstance(value, str | int)
            or (isinstance(value, str) and not value.strip())
        ):
            if fallback is None:
                missing = name
                break
            expected.append(fallback)
        else:
            expected.append(str(value))
    result = MessageTemplate.parse(source).render(attributes)
    if missing is not None:
        assert (result.text, result.missing) == (None, missing)
    else:
        assert (result.text, result.missing) == ("".join(expected), None)


@given(
    templates_with_expectations(),
    st.dictionaries(names, st.text(alphabet=st.characters(exclude_characters="{}"), min_size=1, max_size=10)),
)
def test_rendering_never_leaves_a_brace_behind(
    built: tuple[str, list[str | tuple[str, str | None]]], attributes: dict[str, str]
) -> None:
    source, _ = built
    if not source.strip():
        return
    result = MessageTemplate.parse(source).render(attributes)
    rendered = result.text if result.text is not None else ""
    assert "{" not in rendered
    assert "}" not in rendered


@given(st.text(max_size=40))
def test_any_text_either_parses_or_raises_template_error(source: str) -> None:
    try:
        template = MessageTemplate.parse(source)
    except TemplateError:
        return
    rebuilt = "".join(
        part.replace("{", "{{").replace("}", "}}")
        if isinstance(part, str)
        else "{" + part.name + ("" if part.fallback is None else "|" + part.fallback) + "}"
        for part in template.parts
    )
    assert rebuilt == source
    assert all(isinstance(part, str | Placeholder) for part in template.parts)
