"""Building HTML safely: every value is escaped unless it is already `Markup` built here.

There is no template language: pages are built from `element(...)` calls, so a value from a
request, the program configuration or a contact can only ever become text or an attribute
value, never markup.
"""

import html
import re
from collections.abc import Iterable, Mapping

_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
VOID_ELEMENTS = frozenset({"meta", "input", "br", "link", "hr"})

AttributeValue = str | int | bool | None


class Markup(str):
    """HTML that is safe as it stands (built by this module, or escaped)."""

    __slots__ = ()


Child = Markup | str | int | None | Iterable["Child"]


def escape(value: object) -> Markup:
    return Markup(html.escape(str(value), quote=True))


def _children(children: Iterable[Child]) -> Iterable[str]:
    for child in children:
        if child is None:
            continue
        if isinstance(child, Markup):
            yield child
        elif isinstance(child, str | int):
            yield escape(child)
        else:
            yield from _children(child)


def join(*children: Child) -> Markup:
    return Markup("".join(_children(children)))


def element(tag: str, attributes: Mapping[str, AttributeValue] | None = None, *children: Child) -> Markup:
    """<tag attr="value" ...>children</tag>; True makes a bare attribute, False/None omits it."""
    if not _NAME.match(tag):
        raise ValueError(f"bad tag name {tag!r}")
    parts = [tag]
    for name, value in (attributes or {}).items():
        if not _NAME.match(name):
            raise ValueError(f"bad attribute name {name!r}")
        if value is None or value is False:
            continue
        parts.append(name if value is True else f'{name}="{escape(value)}"')
    opening = "<" + " ".join(parts) + ">"
    if tag in VOID_ELEMENTS:
        if any(child is not None for child in children):
            raise ValueError(f"<{tag}> cannot have children")
        return Markup(opening)
    return Markup(opening + join(*children) + f"</{tag}>")
