"""HTML fragments made so that data can only ever be text: the one builder of the /api/ui/…
partials (ui_partials.py).

    el("tr", el("td", row["domain"], class_="ui-domain"), data_id=row["id"])

``el`` is the only way to make markup: every child that is not already an :class:`Html` made
by ``el`` or ``join`` (a str, an int, a float) is escaped as text, and every attribute value is
escaped for a double-quoted attribute. There is no way to pass a string through unescaped, so
no caller can concatenate data into markup by mistake. The builder also bounds what it makes:

- elements: only the plain ones in ``TAGS`` (no script, style, img, iframe, a, form: nothing
  that loads, runs or navigates), so a fragment holds no element but those;
- attributes: only those in ``ATTRIBUTES`` and ``data-*`` names (no ``on*`` handler, no
  ``style``, no URL), spelled as Python keywords (``class_`` is ``class``, ``data_id`` is
  ``data-id``);
- characters: control characters, lone surrogates, Unicode non-characters and the bidirectional
  controls (which can reorder the text shown around them) are written visibly as ``\\xHH`` or
  ``\\uHHHH``; everything else (an international name's letters too) stays as it is, escaped.

Names from the query log are in presentation format already (burrow/dns/wire.py
``name_to_text``: bytes outside printable ASCII as ``\\DDD``), so what a client sent is shown as
DNS tools show it, and ``<img src=x onerror=…>`` in a label is shown as those characters.
The fragments carry no inline script or style (the Content-Security-Policy of every answer
forbids them): classes only, for the page's stylesheet.
"""

from __future__ import annotations

import html
import re

# The elements a fragment may hold: text containers, lists, tables, and <data>/<time> for the
# machine-readable value beside the text shown.
TAGS = frozenset({
    "section", "div", "p", "span", "strong", "small", "code",
    "dl", "dt", "dd", "ol", "ul", "li",
    "table", "caption", "thead", "tbody", "tr", "th", "td",
    "data", "time",
})
ATTRIBUTES = frozenset({"class", "value", "datetime", "scope", "title", "colspan"})
_DATA_ATTRIBUTE = re.compile(r"data-[a-z][a-z0-9]*(-[a-z0-9]+)*")

# Shown as an escape, not as the character: C0 and C1 controls (tab and newline too: a name or
# a label has none, and a row stays one line), DEL, lone surrogates (not encodable as UTF-8),
# the bidirectional controls and the Unicode non-characters.
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
    "\ufdd0-\ufdef\ufffe\uffff]")


class Html:
    """Markup made by :func:`el` or :func:`join`: the only thing written out unescaped.

    It cannot be made from a string by anyone else (the constructor wants this module's key),
    so ``Html(data)`` is an error, not a hole."""

    __slots__ = ("_text",)

    def __init__(self, text: str, key: object):
        if key is not _KEY:
            raise TypeError("Html is made by markup.el() or markup.join(), never from a string")
        self._text = text

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Html({self._text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Html) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)


_KEY = object()


def _visible(char: re.Match) -> str:
    code = ord(char.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def text(value: str) -> str:
    """``value`` as HTML text or a double-quoted attribute value: ``& < > " '`` escaped, and
    the invisible characters (see the module doc) written as escapes."""
    if not isinstance(value, str):
        raise TypeError(f"not text: {type(value).__name__}")
    return html.escape(_INVISIBLE.sub(_visible, value), quote=True)


def _child(child, out: list[str]) -> None:
    if child is None:
        return
    if isinstance(child, Html):
        out.append(child._text)
    elif isinstance(child, bool):  # before int: True is an int, and "True" is not a good text
        raise TypeError("a bool is not text: say what it means (e.g. 'blocked')")
    elif isinstance(child, str):
        out.append(text(child))
    elif isinstance(child, (int, float)):
        out.append(text(number(child)))
    elif isinstance(child, (list, tuple)):
        for c in child:
            _child(c, out)
    else:
        raise TypeError(f"cannot put a {type(child).__name__} into HTML: pass text or el()")


def _attribute(name: str, value) -> str | None:
    name = "class" if name == "class_" else name.replace("_", "-")
    if name not in ATTRIBUTES and not _DATA_ATTRIBUTE.fullmatch(name):
        raise ValueError(f"attribute {name!r} is not one the builder makes")
    if value is None or value is False:
        return None
    if value is True:
        return name
    if isinstance(value, (int, float)):
        value = number(value)
    if not isinstance(value, str):
        raise TypeError(f"attribute {name}: cannot write a {type(value).__name__}")
    return f'{name}="{text(value)}"'


def number(value: int | float) -> str:
    """A number as the JSON answers write it (``25.0``, ``10000``): the same digits in both."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    return repr(value) if isinstance(value, float) else str(value)


def el(tag: str, *children, **attributes) -> Html:
    """The element ``tag`` with ``children`` (text is escaped; Html from el/join is kept) and
    ``attributes`` (values escaped; None or False leaves one out, True writes it bare)."""
    if tag not in TAGS:
        raise ValueError(f"element {tag!r} is not one the builder makes")
    attrs = [a for a in (_attribute(n, v) for n, v in attributes.items()) if a is not None]
    body: list[str] = []
    _child(children, body)
    opening = " ".join([tag, *attrs])
    return Html(f"<{opening}>{''.join(body)}</{tag}>", _KEY)


def join(*children) -> Html:
    """Several pieces side by side, with no element around them (text escaped as in el)."""
    body: list[str] = []
    _child(children, body)
    return Html("".join(body), _KEY)
