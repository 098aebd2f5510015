"""Read an HTML fragment of the /api/ui/… partials as a browser's parser would, strictly.

    frag = parse_fragment(text)           # AssertionError if it is not what the builder makes
    frag.texts("ui-domain")               # the text of every element with that class
    frag.elements[0]                      # (tag, {attribute: value}) in document order

"Strictly": every element is one the builder makes (burrow.api.markup.TAGS), every attribute
one it writes (ATTRIBUTES and data-*), every element closed in order, nothing but whitespace
outside the one root element, and no comment, doctype or processing instruction. So a domain
name whose text broke out of its escaping (``<img src=x onerror=…>``) fails the parse here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from burrow.api.markup import ATTRIBUTES, TAGS

DATA_ATTRIBUTE = re.compile(r"data-[a-z][a-z0-9-]*")


@dataclass
class Fragment:
    elements: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    # class name → the text of each element carrying it, in document order
    by_class: dict[str, list[str]] = field(default_factory=dict)

    def texts(self, cls: str) -> list[str]:
        return self.by_class.get(cls, [])

    def with_attribute(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.elements if name in attrs]


class _Strict(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.frag = Fragment()
        self.stack: list[tuple[str, list[str], list[str]]] = []  # (tag, classes, text parts)
        self.roots = 0

    def handle_starttag(self, tag, attrs):
        assert tag in TAGS, f"element <{tag}> is not one the builder makes"
        names = [name for name, _ in attrs]
        assert len(names) == len(set(names)), f"<{tag}> repeats an attribute: {names}"
        for name, _ in attrs:
            assert name in ATTRIBUTES or DATA_ATTRIBUTE.fullmatch(name), f"<{tag} {name}=…> is not ours"
        if not self.stack:
            self.roots += 1
        values = dict(attrs)
        self.frag.elements.append((tag, values))
        self.stack.append((tag, (values.get("class") or "").split(), []))

    def handle_startendtag(self, tag, attrs):
        raise AssertionError(f"self-closing <{tag}/>: the builder makes none")

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1][0] == tag, f"</{tag}> closes {self.stack[-1:]}"
        _, classes, parts = self.stack.pop()
        content = "".join(parts)
        for cls in classes:
            self.frag.by_class.setdefault(cls, []).append(content)
        if self.stack:
            self.stack[-1][2].append(content)

    def handle_data(self, data):
        if not self.stack:
            assert not data.strip(), f"text outside the root element: {data!r}"
            return
        self.stack[-1][2].append(data)

    def handle_comment(self, data):
        raise AssertionError(f"a comment: {data!r}")

    def handle_decl(self, decl):
        raise AssertionError(f"a declaration: {decl!r}")

    def handle_pi(self, data):
        raise AssertionError(f"a processing instruction: {data!r}")

    def unknown_decl(self, data):
        raise AssertionError(f"a declaration: {data!r}")


def parse_fragment(text: str) -> Fragment:
    parser = _Strict()
    parser.feed(text)
    parser.close()
    assert not parser.stack, f"unclosed elements: {[t for t, _, _ in parser.stack]}"
    assert parser.roots == 1, f"{parser.roots} root elements (want one)"
    assert "<html" not in text.lower() and "<body" not in text.lower()
    return parser.frag
