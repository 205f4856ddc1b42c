"""Message templates: `Hi {first_name|there}, 20% off at {store}`.

The syntax is deliberately tiny and is interpreted here, never by `str.format` or
`string.Template`: a template comes from an operator, the values from contacts, and neither
may reach attribute access, indexing, format specs or code. A template is parsed once into
literal strings and placeholders; rendering a recipient only joins parts.

- `{name}` is a contact attribute; `{name|fallback}` renders `fallback` when it is missing.
- `{{` and `}}` are literal braces.
- `{preferences_url}` and `{brand}` are reserved: the system fills them, never the contact.
- A missing attribute (absent, None, blank or not displayable) without a fallback makes the
  recipient unrenderable; the result names the placeholder so the send can be suppressed
  with a reason instead of texting someone a raw `{first_name}`.
"""

import re
from collections.abc import Callable, Collection, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, model_validator

RESERVED_PLACEHOLDERS: frozenset[str] = frozenset({"preferences_url", "brand"})

# Worst-case length of an attribute value when counting segments before any recipient is
# known. GSM-7 letters: a stand-in in another alphabet would make every personalised
# template look like UCS-2.
STAND_IN_VALUE = "X" * 20

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BRACE = re.compile(r"[{}]")

# Checked in order against the name part of a placeholder: the first hit explains why the
# template is refused. These are the ways `str.format` would have reached into an object.
_FORBIDDEN_NAME_SYNTAX: tuple[tuple[str, str], ...] = (
    (".", "attribute access ('.') is not allowed in a placeholder"),
    ("[", "indexing ('[...]') is not allowed in a placeholder"),
    ("]", "indexing ('[...]') is not allowed in a placeholder"),
    ("!", "conversions ('!r', '!s', '!a') are not allowed in a placeholder"),
    (":", "format specs (':...') are not allowed in a placeholder"),
    ("(", "calls are not allowed in a placeholder"),
)


class TemplateError(ValueError):
    """A template that cannot be used; the message says what is wrong and where."""

    def __init__(self, problem: str, line: int | None = None, column: int | None = None) -> None:
        self.problem = problem
        self.line = line
        self.column = column
        if column is None:
            where = ""
        elif line is None or line == 1:
            where = f" at column {column}"
        else:
            where = f" at line {line}, column {column}"
        super().__init__(f"{problem}{where}")


class Placeholder(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    fallback: str | None = None
    # 1-based position of the opening brace in the source, for error messages.
    line: int = 1
    column: int = 1

    @property
    def reserved(self) -> bool:
        return self.name in RESERVED_PLACEHOLDERS


class RenderResult(BaseModel):
    """Either the text to send or the placeholder that made the recipient unrenderable."""

    model_config = ConfigDict(frozen=True)

    text: str | None
    missing: str | None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.text is None) == (self.missing is None):
            raise ValueError("exactly one of text and missing must be set")
        return self

    @property
    def ok(self) -> bool:
        return self.text is not None


def _position(source: str, index: int) -> tuple[int, int]:
    line = source.count("\n", 0, index) + 1
    column = index - (source.rfind("\n", 0, index) + 1) + 1
    return line, column


def _error(source: str, index: int, problem: str) -> TemplateError:
    line, column = _position(source, index)
    return TemplateError(problem, line, column)


def _placeholder(source: str, open_index: int, body: str) -> Placeholder:
    name, has_fallback, fallback = body.partition("|")
    if not name:
        problem = "empty placeholder '{}'" if not has_fallback else "placeholder has a fallback but no name"
        raise _error(source, open_index, problem + "; write '{{' and '}}' for literal braces")
    for token, problem in _FORBIDDEN_NAME_SYNTAX:
        if token in name:
            raise _error(source, open_index, f"{problem}: {{{name}}}")
    if name[0].isdigit():
        raise _error(
            source, open_index, f"positional placeholders are not allowed: {{{name}}}; use an attribute name"
        )
    if not _NAME.match(name):
        raise _error(
            source,
            open_index,
            f"placeholder name {name!r} must be letters, digits and underscores (no spaces)",
        )
    line, column = _position(source, open_index)
    return Placeholder(name=name, fallback=fallback if has_fallback else None, line=line, column=column)


def _split(source: str) -> tuple[str | Placeholder, ...]:
    if not source.strip():
        raise TemplateError("template body is empty")
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    index = 0
    while (match := _BRACE.search(source, index)) is not None:
        brace_at = match.start()
        literal.append(source[index:brace_at])
        if source.startswith("{{", brace_at) or source.startswith("}}", brace_at):
            literal.append(source[brace_at])
            index = brace_at + 2
            continue
        if source[brace_at] == "}":
            raise _error(source, brace_at, "unmatched '}'; write '}}' for a literal brace")
        close_at = source.find("}", brace_at + 1)
        if close_at == -1:
            raise _error(source, brace_at, "unclosed placeholder '{'; write '{{' for a literal brace")
        nested_at = source.find("{", brace_at + 1, close_at)
        if nested_at != -1:
            raise _error(source, nested_at, "'{' inside a placeholder; placeholders cannot be nested")
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(_placeholder(source, brace_at, source[brace_at + 1 : close_at]))
        index = close_at + 1
    literal.append(source[index:])
    text = "".join(literal)
    if text:
        parts.append(text)
    return tuple(parts)


def _display(value: object) -> str | None:
    """The text shown for an attribute value, or None when it counts as missing.

    Booleans, collections and non-finite numbers have no sensible rendering in a text
    message; treating them as missing suppresses the recipient (or uses the fallback)
    instead of texting "Hi True".
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        number = Decimal(str(value)) if isinstance(value, float) else value
        if not number.is_finite():
            return None
        # DynamoDB hands numbers back as Decimal("20.50") or Decimal("1E+1"): show 20.5 and 10.
        return format(number.normalize(), "f")
    if isinstance(value, date):
        return value.isoformat()
    return None


class MessageTemplate(BaseModel):
    """A parsed template. Build it with `MessageTemplate.parse(source)`."""

    model_config = ConfigDict(frozen=True)

    source: str
    parts: tuple[str | Placeholder, ...]

    @model_validator(mode="before")
    @classmethod
    def _derive_parts(cls, data: Any) -> Any:
        # parts are a function of source: never trust a separately supplied list.
        if isinstance(data, Mapping) and isinstance(data.get("source"), str):
            return {**data, "parts": _split(data["source"])}
        return data

    @classmethod
    def parse(cls, source: str) -> "MessageTemplate":
        """Parse `source`, raising TemplateError (not a pydantic error) when it is unusable."""
        return cls.model_construct(source=source, parts=_split(source))

    def placeholders(self) -> frozenset[str]:
        return frozenset(part.name for part in self.parts if isinstance(part, Placeholder))

    def attribute_placeholders(self) -> frozenset[str]:
        """Placeholders filled from the contact (the reserved ones excluded)."""
        return self.placeholders() - RESERVED_PLACEHOLDERS

    def render(
        self, attributes: Mapping[str, object], system: Mapping[str, str] | None = None
    ) -> RenderResult:
        """Render for one recipient.

        `system` supplies the reserved placeholders (brand, preferences_url); a contact
        attribute of the same name is ignored so a profile field cannot impersonate them.
        """
        system_values: Mapping[str, object] = system or {}
        pieces: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            source = system_values if part.name in RESERVED_PLACEHOLDERS else attributes
            value = _display(source.get(part.name))
            if value is None:
                if part.fallback is None:
                    return RenderResult.model_construct(text=None, missing=part.name)
                value = part.fallback
            pieces.append(value)
        # model_construct: the invariant holds by construction and this runs per recipient.
        return RenderResult.model_construct(text="".join(pieces), missing=None)

    def worst_case_text(self, system: Mapping[str, str] | None = None) -> str:
        """The rendering used for segment limits: each placeholder at its longest likely length."""
        system_values = system or {}
        pieces: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            known = system_values.get(part.name) if part.reserved else None
            candidates = [known] if known else [STAND_IN_VALUE, part.fallback or ""]
            pieces.append(max(candidates, key=len))
        return "".join(pieces)


def validate_template(
    source: str,
    known_attributes: Collection[str] | None,
    max_segments: int,
    segment_counter: Callable[[str], int],
    system: Mapping[str, str] | None = None,
) -> MessageTemplate:
    """Parse and check a template before a campaign may use it.

    Refuses unknown placeholders (when `known_attributes` is given; reserved ones are always
    known), an empty body, and a worst-case rendering longer than `max_segments` segments.
    """
    template = MessageTemplate.parse(source)
    if known_attributes is not None:
        known = set(known_attributes) | RESERVED_PLACEHOLDERS
        for part in template.parts:
            if isinstance(part, Placeholder) and part.name not in known:
                raise TemplateError(f"unknown placeholder {{{part.name}}}", part.line, part.column)
    segments = segment_counter(template.worst_case_text(system))
    if segments > max_segments:
        raise TemplateError(
            f"template needs {segments} segments in the worst case, more than the limit of {max_segments}"
        )
    return template
