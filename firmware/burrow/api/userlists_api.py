"""/api/whitelist (seed 003, exactly) and /api/denylist (the same shape for the owner's blocks)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from ..dns import wire
from ..filtering.userlists import KIND_WORDS, try_entry
from .errors import ApiError, ValidationError
from .groups_api import group_names, known_groups
from .routes import Api
from .schema import AnyOf, Bool, Int, List, Obj, Query, Str, domain_name

if TYPE_CHECKING:
    from ..filtering.groups import Groups
    from ..filtering.userlists import UserList
    from ..telemetry.events import EventBus

# a regular expression is text with one of its characters (filtering/userlists.py); else a name
REGEX_ENTRY = r"^[^\^$\\(\[+?|{]*[\^$\\(\[+?|{][\s\S]*$"
DomainBody = Obj("DomainEntry", {"domain": AnyOf(domain_name(wildcard=True), Str(max_len=1024, pattern=REGEX_ENTRY),
                                                 description="exact name, *.wildcard or a regular expression"),
                                  "groups": group_names(required=False,
                                                 description="client groups the entry applies to; "
                                                             "none: every group")},
                 example={"domain": "analytics.google.com"})
ListSummary = Obj("UserListSummary", {"total": Int(minimum=0), "exact": List(Str()), "wildcard": List(Str()),
                                      "regex": List(Str()),
                                      "groups": Obj("EntryGroups", {}, additional=True, required=False,
                                                    description="entries limited to some client groups")},
                  example={"total": 3, "exact": ["analytics.google.com"], "wildcard": ["*.cdn.example.com"],
                           "regex": ["^cdn\\d+\\.example\\.com$"]})
ChangeResult = Obj("UserListChange", {"message": Str(), "total": Int(minimum=0), "exact": Int(minimum=0),
                                      "wildcard": Int(minimum=0), "regex": Int(minimum=0)},
                   example={"message": "Domain added to whitelist", "total": 5, "exact": 3, "wildcard": 1,
                            "regex": 1})


TestQuery = Query({
    "pattern": Str(min_len=1, max_len=1024, strip=False,
                   description="the entry as typed: an exact name, *.wildcard or a regular expression"),
    "kind": Str(required=False, enum=sorted(KIND_WORDS), description="the kind it is meant to be; "
                                                                      "another kind makes it invalid"),
    "domain": domain_name(required=False, description="a name to match the entry against"),
})
_Maybe = Str(required=False, nullable=True)
TestResult = Obj("UserListTest", {
    "valid": Bool(description="the allow and deny lists would take it (as the kind asked for)"),
    "kind": Str(required=False, nullable=True, enum=sorted(KIND_WORDS), description="the kind Burrow reads"),
    "entry": _Maybe, "error": _Maybe,
    "position": Int(required=False, nullable=True, minimum=0,
                    description="character (0-based, in code points) of pattern a regex syntax error is at"),
    "domain": _Maybe,
    "matches": Bool(required=False, nullable=True, description="the entry matches domain; null without one"),
}, example={"valid": False, "kind": None, "entry": None, "error": "not a valid regular expression: "
            "missing ), unterminated subpattern at position 0", "position": 0, "domain": "ads.example.com",
            "matches": None})


def register(api: Api, *, allow_list: UserList, deny_list: UserList, groups: Groups, events: EventBus) -> None:
    for path, lst, label in (("/api/whitelist", allow_list, "whitelist"), ("/api/denylist", deny_list, "denylist")):
        _register_one(api, lst, groups, events, path, label)

    entry_field = DomainBody.fields["domain"]

    @api.route("GET", "/api/userlists/test", role="viewer", tags=["filtering"], query=TestQuery,
               summary="Test an allow/deny entry by the lists' own rules: valid, kind, the syntax error's "
                       "position, and whether it matches a name (nothing is changed)",
               responses={200: TestResult})
    async def test(req):
        q = req.g.query
        pattern = q["pattern"]
        try:
            name = wire.name_to_text(wire.text_to_name(q["domain"])) if q.get("domain") else None
        except (wire.WireError, UnicodeError):  # e.g. a character IDNA refuses (it was a 500)
            raise ApiError(400, "domain is not a name DNS can carry",
                           [{"field": "domain", "message": "not a valid name (labels of 1-63 bytes, IDNA)"}]) from None
        try:
            entry_field.validate(pattern, "domain")  # what POST /api/whitelist's body check says
        except ValidationError as e:
            message = "; ".join(d["message"] for d in e.details or ())
            return {"valid": False, "kind": None, "entry": None, "error": message, "position": None,
                    "domain": name, "matches": None}
        return {**try_entry(pattern, q.get("kind"), name), "domain": name}


def _register_one(api: Api, lst: UserList, groups: Groups, events: EventBus, path: str, label: str) -> None:
    def changed(req, action: str, entry: str) -> None:  # the list announced the change itself
        events.publish("events", {"type": f"{label}.{action}", "actor": req.g.principal.username,
                                      "client_ip": req.g.client_ip, "summary": f"{entry} {action} ({label})"})

    @api.route("GET", path, role="viewer", summary=f"All {label} entries by kind", tags=["filtering"],
               responses={200: ListSummary})
    async def get_list(req):
        return lst.summary()

    @api.route("POST", path, role="admin", summary=f"Add a domain, wildcard or regex to the {label}",
               tags=["filtering"], body=DomainBody, responses={200: ChangeResult, 409: "the entry is there already"})
    async def add(req):
        limited_to = known_groups(groups, req.g.body.get("groups")) or None
        entry = lst.add(req.g.body["domain"], limited_to)  # BadEntry 400, EntryExists 409
        changed(req, "added", entry)
        return {"message": f"Domain added to {label}", **lst.counts()}

    @api.route("DELETE", path + "/<path:domain>", role="admin", summary=f"Remove an entry from the {label}",
               tags=["filtering"], responses={200: ChangeResult})
    async def remove(req, domain):
        domain = unquote(domain)  # "*" may arrive percent-encoded (%2A), as the seed notes
        entry = lst.remove(domain)  # EntryMissing 404
        changed(req, "removed", entry)
        return {"message": f"Domain removed from {label}", **lst.counts()}
