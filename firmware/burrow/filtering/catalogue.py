"""The curated block-list catalogue (catalogue.json beside this module): a short choice of
well-known lists the first-run wizard and the lists screen offer. Only names, descriptions,
approximate sizes and URLs: nothing is downloaded until the owner adds a list (POST /api/lists),
and then by the list scheduler like any other list.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

FIELDS = {"id": str, "name": str, "description": str, "url": str, "approx_entries": int,
          "approx_bytes": int, "homepage": str, "recommended": bool}


class CatalogueError(ValueError):
    """catalogue.json is malformed (a packaging bug: the unit tests load it)."""


def parse(text: str) -> list[dict[str, Any]]:
    """The entries of a catalogue document, checked: every field present with its type, ids
    and URLs unique, URLs https."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise CatalogueError(f"not JSON: {e}") from None
    entries = doc.get("lists") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise CatalogueError("needs a non-empty \"lists\" array")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != set(FIELDS):
            raise CatalogueError(f"lists[{i}] must have exactly the fields {sorted(FIELDS)}")
        for key, kind in FIELDS.items():
            value = entry[key]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise CatalogueError(f"lists[{i}].{key} must be a {kind.__name__}")
        for key in ("url", "homepage"):
            if urlsplit(entry[key]).scheme != "https" or not urlsplit(entry[key]).hostname:
                raise CatalogueError(f"lists[{i}].{key} must be an https URL")
        for key in ("id", "url", "name"):
            if entry[key] in seen:
                raise CatalogueError(f"lists[{i}].{key} repeats another entry's")
            seen.add(entry[key])
        out.append(dict(entry))
    return out


@lru_cache(maxsize=1)
def _load() -> tuple[dict[str, Any], ...]:
    text = resources.files(__package__).joinpath("catalogue.json").read_text(encoding="utf-8")
    return tuple(parse(text))


def entries() -> list[dict[str, Any]]:
    """The packaged catalogue (read once), as fresh dicts the caller may change."""
    return [dict(e) for e in _load()]
