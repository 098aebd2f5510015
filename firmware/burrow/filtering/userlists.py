"""The owner's own allow list (seed 003 ``/api/whitelist``) and deny list.

Entries are auto-detected: ``*.example.com`` is a wildcard (names strictly below, dot-
bounded), text with regex syntax (``^ $ \\ ( [ + ? | {``) is a regular expression searched
in the name, anything else an exact name. They are small (a person types them), so they live
in the settings store as one JSON list each and are matched in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..changes import Announce, Change, ignore
from ..dns import wire
from ..errors import Conflict, Invalid, NotFound

if TYPE_CHECKING:
    from ..storage.settings import SettingsDB

# A stored entry: its text (every client group), or {"domain": text, "groups": [...]}.
Entry = str | dict[str, Any]

MAX_ENTRIES = 10000  # per list: far beyond what a person types; lists belong in /api/lists
_REGEX_CHARS = set("^$\\([+?|{")


class EntryExists(Conflict, KeyError):
    """The entry is in the list already (409)."""


class EntryMissing(NotFound, KeyError):
    """No such entry in the list (404)."""


class EntryError(ValueError):
    """Why text is not an entry; ``position`` is the character of the (stripped) text a regular
    expression's syntax error is at (re.error.pos), else None."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class BadEntry(Invalid, ValueError):
    """Not an entry the list can hold: a bad name, regex or wildcard, or the list is full (400)."""

    field = "domain"

    def summary(self) -> str:
        return f"invalid domain: {self}"


def classify(entry: str) -> tuple[str, str]:
    """(kind, normalised entry) with kind exact | wildcard | regex; EntryError (a ValueError)
    when invalid."""
    entry = entry.strip()
    if not entry:
        raise EntryError("domain is empty")
    if len(entry) > 1024:
        raise EntryError("too long")
    if any(c in _REGEX_CHARS for c in entry):
        try:
            re.compile(entry)
        except re.error as e:
            raise EntryError(f"not a valid regular expression: {e}", e.pos) from None
        except (RecursionError, OverflowError) as e:  # nesting or a repeat count past re's limits
            raise EntryError(f"not a valid regular expression: {e}") from None
        return "regex", entry
    name = entry.lower().rstrip(".")
    wildcard = name.startswith("*.")
    if wildcard:
        name = name[2:]
    if "*" in name or " " in name:
        raise EntryError("a wildcard is only allowed as a leading '*.'")
    try:
        wire.text_to_name(name)
    except (wire.WireError, UnicodeError) as e:
        raise EntryError(str(e)) from None
    if not name:
        raise EntryError("domain is empty")
    return ("wildcard", "*." + name) if wildcard else ("exact", name)


class UserList:
    """One list (allow or deny) persisted under ``settings_key``; ``match(name)`` is cheap.

    An entry is stored as its text (it applies to every client group) or as
    ``{"domain": text, "groups": [...]}`` (only clients in one of those groups).
    """

    def __init__(self, settings_db: SettingsDB, settings_key: str, on_change: Announce = ignore) -> None:
        self.settings = settings_db
        self.key = settings_key
        self.label = settings_key.rsplit(".", 1)[-1]  # "whitelist", "denylist": what errors call it
        self.on_change = on_change  # told after every change (burrow/changes.py)
        self._entries: list[Entry] = []
        self._load()

    def reload(self) -> None:
        """Read the list from the settings DB again (a restore replaced it) and announce it."""
        self._load()
        self.on_change(Change.USER_LIST)

    def _load(self) -> None:
        self._entries = list(self.settings.get(self.key) or [])
        self._build()

    @staticmethod
    def _text(entry: Entry) -> str:
        return str(entry["domain"]) if isinstance(entry, dict) else entry

    @staticmethod
    def _groups(entry: Entry) -> frozenset[str] | None:
        return frozenset(entry["groups"]) if isinstance(entry, dict) and entry.get("groups") else None

    def _build(self) -> None:
        matcher = Matcher(self._entries)
        self._matcher = matcher
        self.exact, self.below, self.regex = matcher.exact, matcher.below, matcher.regex

    def summary(self) -> dict[str, Any]:
        """The seed's shape: total, exact, wildcard, regex (lists of entries); plus ``groups``
        for entries limited to some client groups."""
        out: dict[str, Any] = {"total": len(self._entries), "exact": sorted(self.exact),
               "wildcard": sorted("*." + b for b in self.below), "regex": [p for p, _, _ in self.regex]}
        limited = {classify(self._text(e))[1]: sorted(self._groups(e) or ()) for e in self._entries if self._groups(e)}
        if limited:
            out["groups"] = limited
        return out

    def counts(self) -> dict[str, int]:
        return {"total": len(self._entries), "exact": len(self.exact), "wildcard": len(self.below),
                "regex": len(self.regex)}

    def add(self, entry: str, groups: list[str] | None = None) -> str:
        """Add ``entry`` (limited to ``groups``); its normalised form. BadEntry, EntryExists."""
        try:
            kind, norm = classify(entry)
        except ValueError as e:
            raise BadEntry(str(e)) from None
        if norm in self._normalised():
            raise EntryExists(f"{entry} is already in the {self.label}")
        if len(self._entries) >= MAX_ENTRIES:
            raise BadEntry(f"at most {MAX_ENTRIES} entries")
        self._entries.append({"domain": norm, "groups": list(groups)} if groups else norm)
        self._save()
        return norm

    def add_many(self, items: Iterable[tuple[str, list[str] | None]]) -> list[str]:
        """Add several (entry, groups) with ONE write (an import); their normalised forms. Each is
        checked as :meth:`add` checks it; BadEntry or EntryExists for the first bad one, and then
        nothing is added."""
        have = self._normalised()
        new: list[Entry] = []
        for entry, groups in items:
            try:
                _, norm = classify(entry)
            except ValueError as e:
                raise BadEntry(str(e)) from None
            if norm in have:
                raise EntryExists(f"{entry} is already in the {self.label}")
            have.add(norm)
            new.append({"domain": norm, "groups": list(groups)} if groups else norm)
        if len(self._entries) + len(new) > MAX_ENTRIES:
            raise BadEntry(f"at most {MAX_ENTRIES} entries")
        if new:
            self._entries.extend(new)
            self._save()
        return [self._text(e) for e in new]

    def remove(self, entry: str) -> str:
        """Remove ``entry``; its normalised form. EntryMissing."""
        try:
            _, norm = classify(entry)
        except ValueError:
            norm = entry
        if norm not in self._normalised():
            raise EntryMissing(f"{entry} is not in the {self.label}")
        self._entries = [e for e in self._entries if classify(self._text(e))[1] != norm]
        self._save()
        return norm

    def drop_group(self, group: str) -> None:
        """A deleted group leaves the entries limited to it; an entry left with no group goes."""
        kept: list[Entry] = []
        changed = False
        for e in self._entries:
            if isinstance(e, dict) and group in (e.get("groups") or ()):
                changed = True
                rest = [g for g in e["groups"] if g != group]
                if rest:
                    kept.append({**e, "groups": rest})
                continue
            kept.append(e)
        if changed:
            self._entries = kept
            self._save()

    def _normalised(self) -> set[str]:
        return {classify(self._text(e))[1] for e in self._entries}

    def _save(self) -> None:
        self.settings.set(self.key, self._entries)
        self._build()
        self.on_change(Change.USER_LIST)

    def match(self, name: str, groups: Iterable[str] | None = None) -> str | None:
        """The entry matching ``name`` (lower case, no trailing dot) for a client in ``groups``
        (None: ignore group limits), or None."""
        if not self._entries:
            return None
        return self._matcher.match(name, groups)


class Matcher:
    """Entries made ready to match: exact names, wildcard bases, compiled regexes."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        # name → the groups it is limited to (None: every group)
        self.exact: dict[str, frozenset[str] | None] = {}
        self.below: dict[str, frozenset[str] | None] = {}
        self.regex: list[tuple[str, re.Pattern[str], frozenset[str] | None]] = []
        for entry in entries:
            kind, norm = classify(UserList._text(entry))
            groups = UserList._groups(entry)
            if kind == "exact":
                self.exact[norm] = groups
            elif kind == "wildcard":
                self.below[norm[2:]] = groups
            else:
                self.regex.append((norm, re.compile(norm), groups))

    def match(self, name: str, groups: Iterable[str] | None = None) -> str | None:
        if name in self.exact and _applies(self.exact[name], groups):
            return name
        if self.below:
            rest = name
            while "." in rest:
                rest = rest.split(".", 1)[1]
                if rest in self.below and _applies(self.below[rest], groups):
                    return "*." + rest
        for pattern, compiled, limit in self.regex:
            if compiled.search(name) and _applies(limit, groups):
                return pattern
        return None


KIND_WORDS = {"exact": "an exact name", "wildcard": "a wildcard (*.name: every name below it)",
              "regex": "a regular expression"}


def try_entry(text: str, kind: str | None = None, name: str | None = None) -> dict[str, Any]:
    """What an allow or deny list would make of ``text`` (as typed), by the lists' own rules:
    {valid, kind, entry, error, position, matches}. ``kind`` (optional) is what the owner means
    it to be: another kind is reported as invalid. ``name`` (lower case, no trailing dot, as the
    DNS path has it) is matched with the same code as a list holding only this entry; matches
    is None without a name or for invalid text. ``position`` is the character of ``text`` a
    regex syntax error is at (0-based, in code points), else None."""
    out: dict[str, Any] = {"valid": False, "kind": None, "entry": None, "error": None, "position": None,
                           "matches": None}
    try:
        detected, norm = classify(text)
    except EntryError as e:
        out["error"] = str(e)
        if e.position is not None:
            out["position"] = e.position + len(text) - len(text.lstrip())
        return out
    out.update(kind=detected, entry=norm)
    if kind is not None and kind != detected:
        hint = " (a regular expression needs one of ^ $ \\ ( [ + ? | {)" if kind == "regex" else ""
        out["error"] = f"Burrow reads this as {KIND_WORDS[detected]}, not {KIND_WORDS[kind]}{hint}"
        return out
    out["valid"] = True
    if name is not None:
        out["matches"] = Matcher([norm]).match(name) is not None
    return out


def _applies(limit: frozenset[str] | None, groups: Iterable[str] | None) -> bool:
    return limit is None or groups is None or not limit.isdisjoint(groups)
