"""The first-run wizard's endpoints: the curated list catalogue and the "is this device using
Burrow?" check.

- ``GET /api/lists/catalogue``: the packaged catalogue (filtering/catalogue.py), each entry with
  ``added`` (a list with its URL exists). Adding one is ``POST /api/lists`` as for any list.
- ``POST /api/setup/check``: a fresh probe name (dns/probes.py); the page makes the device look it
  up through its own resolver. ``GET /api/setup/check/<name>``: whether that lookup reached
  Burrow's DNS server, and from which address. Names expire after ``probes.TTL`` seconds and at
  most ``probes.MAX_PENDING`` are kept, so the endpoint cannot be used to fill memory.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..dns import probes as probe_names
from ..filtering import catalogue
from .errors import ApiError
from .routes import Api
from .schema import Bool, Int, List, Num, Obj, Str

if TYPE_CHECKING:
    from ..dns.probes import Probes
    from ..filtering.sources import ListStore

CatalogueEntry = Obj("CatalogueEntry", {
    "id": Str(), "name": Str(), "description": Str(),
    "url": Str(description="the list's https URL (what POST /api/lists takes as source)"),
    "approx_entries": Int(description="roughly how many names it blocks (Burrow counts them after download)"),
    "approx_bytes": Int(description="roughly how large a download it is"),
    "homepage": Str(), "recommended": Bool(description="a sensible first choice"),
    "added": Bool(description="a list with this URL exists already"),
})
Catalogue = Obj("ListCatalogue", {"lists": List(CatalogueEntry), "total": Int()}, example={
    "lists": [{"id": "stevenblack-unified", "name": "StevenBlack unified hosts",
               "description": "Ads and malware, merged from several long-standing hosts files.",
               "url": "https://raw.githubusercontent.com/StevenBlack/hosts/master/hosts",
               "approx_entries": 80000, "approx_bytes": 2600000,
               "homepage": "https://github.com/StevenBlack/hosts", "recommended": True, "added": False}],
    "total": 1})

CheckState = Obj("SetupCheck", {
    "name": Str(description="the name to look up through the device's own resolver"),
    "seen": Bool(description="a DNS question for the name reached Burrow"),
    "client": Str(nullable=True, description="the address the first lookup came from (the device, or "
                                             "the router when it forwards to Burrow)"),
    "seen_at": Num(nullable=True, description="unix seconds of the first lookup"),
    "lookups": Int(description="questions for the name so far"),
    "expires_in": Int(description="seconds the name can still be checked"),
}, example={"name": "3f9c2a7e51d04b8a6e1f.check.burrow.test", "seen": True, "client": "192.168.1.40",
            "seen_at": 1763807400.0, "lookups": 2, "expires_in": 571})

NAME = {"name": Str(min_len=1, max_len=253, hint="a name POST /api/setup/check gave",
                    pattern=r"(?i)[0-9a-f]{%d}%s\.?" % (2 * probe_names.LABEL_BYTES,
                                                       re.escape(probe_names.DOTTED_SUFFIX)))}


def register(api: Api, *, probes: Probes, list_store: ListStore) -> None:
    @api.route("GET", "/api/lists/catalogue", role="viewer", tags=["lists"], responses={200: Catalogue},
               summary="A short curated catalogue of well-known block lists to choose from")
    async def get_catalogue(req):
        sources = {row["source"] for row in list_store.list()}
        lists = [{**entry, "added": entry["url"] in sources} for entry in catalogue.entries()]
        return {"lists": lists, "total": len(lists)}

    @api.route("POST", "/api/setup/check", role="self", tags=["setup"], status=201,
               responses={201: CheckState},
               summary="A fresh name for the \"is this device using Burrow?\" check")
    async def new_check(req):
        probe = probes.issue()
        return probe.as_dict(probes.clock()), 201, {"Cache-Control": "no-store"}

    @api.route("GET", "/api/setup/check/<name>", params=NAME, role="viewer", tags=["setup"],
               responses={200: CheckState, 404: "never issued, or expired"},
               summary="Whether the check's name reached Burrow's DNS server, and from where")
    async def get_check(req, name):
        probe = probes.status(name)
        if probe is None:
            raise ApiError(404, "no such check name (they expire after "
                                f"{int(probe_names.TTL // 60)} minutes): start a new check")
        return probe.as_dict(probes.clock()), 200, {"Cache-Control": "no-store"}
