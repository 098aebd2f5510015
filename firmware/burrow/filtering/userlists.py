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

from ..dns import wire

if TYPE_CHECKING:
    from ..storage.settings import SettingsDB

# A stored entry: its text (every client group), or {"domain": text, "groups": [...]}.
Entry = str | dict[str, Any]

MAX_ENTRIES = 10000  # per list: far beyond what a person types; lists belong in /api/lists
_REGEX_CHARS = set("^$\\([+?|{")


def classify(entry: str) -> tuple[str, str]:
    """(kind, normalised entry) with kind exact | wildcard | regex; ValueError when invalid."""
    entry = entry.strip()
    if not entry:
        raise ValueError("domain is empty")
    if len(entry) > 1024:
        raise ValueError("too long")
    if any(c in _REGEX_CHARS for c in entry):
        try:
            re.compile(entry)
        except re.error as e:
            raise ValueError(f"not a valid regular expression: {e}") from None
        return "regex", entry
    name = entry.lower().rstrip(".")
    wildcard = name.startswith("*.")
    if wildcard:
        name = name[2:]
    if "*" in name or " " in name:
        raise ValueError("a wildcard is only allowed as a leading '*.'")
    try:
        wire.text_to_name(name)
    except wire.WireError as e:
        raise ValueError(str(e)) from None
    if not name:
        raise ValueError("domain is empty")
    return ("wildcard", "*." + name) if wildcard else ("exact", name)


class UserList:
    """One list (allow or deny) persisted under ``settings_key``; ``match(name)`` is cheap.

    An entry is stored as its text (it applies to every client group) or as
    ``{"domain": text, "groups": [...]}`` (only clients in one of those groups).
    """

    def __init__(self, settings_db: SettingsDB, settings_key: str) -> None:
        self.settings = settings_db
        self.key = settings_key
        self._entries: list[Entry] = []
        self.reload()

    def reload(self) -> None:
        """Read the list from the settings DB (at start, after a restore)."""
        self._entries = list(self.settings.get(self.key) or [])
        self._build()

    @staticmethod
    def _text(entry: Entry) -> str:
        return str(entry["domain"]) if isinstance(entry, dict) else entry

    @staticmethod
    def _groups(entry: Entry) -> frozenset[str] | None:
        return frozenset(entry["groups"]) if isinstance(entry, dict) and entry.get("groups") else None

    def _build(self) -> None:
        # name → the groups it is limited to (None: every group)
        self.exact: dict[str, frozenset[str] | None] = {}
        self.below: dict[str, frozenset[str] | None] = {}
        self.regex: list[tuple[str, re.Pattern[str], frozenset[str] | None]] = []
        for entry in self._entries:
            kind, norm = classify(self._text(entry))
            groups = self._groups(entry)
            if kind == "exact":
                self.exact[norm] = groups
            elif kind == "wildcard":
                self.below[norm[2:]] = groups
            else:
                self.regex.append((norm, re.compile(norm), groups))

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
        kind, norm = classify(entry)
        if norm in self._normalised():
            raise KeyError(norm)
        if len(self._entries) >= MAX_ENTRIES:
            raise ValueError(f"at most {MAX_ENTRIES} entries")
        self._entries.append({"domain": norm, "groups": list(groups)} if groups else norm)
        self._save()
        return norm

    def remove(self, entry: str) -> str:
        try:
            _, norm = classify(entry)
        except ValueError:
            norm = entry
        if norm not in self._normalised():
            raise KeyError(norm)
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

    def match(self, name: str, groups: Iterable[str] | None = None) -> str | None:
        """The entry matching ``name`` (lower case, no trailing dot) for a client in ``groups``
        (None: ignore group limits), or None."""
        if not self._entries:
            return None
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


def _applies(limit: frozenset[str] | None, groups: Iterable[str] | None) -> bool:
    return limit is None or groups is None or not limit.isdisjoint(groups)
