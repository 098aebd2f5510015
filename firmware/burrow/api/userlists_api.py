"""/api/whitelist (seed 003, exactly) and /api/denylist (the same shape for the owner's blocks)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from .errors import ApiError
from .groups_api import group_names, known_groups
from .routes import Api
from .schema import AnyOf, Int, List, Obj, Str, domain_name

if TYPE_CHECKING:
    from ..filtering.groups import Groups
    from ..filtering.userlists import UserList
    from ..resolver import Resolver
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


def register(api: Api, *, allow_list: UserList, deny_list: UserList, groups: Groups, resolver: Resolver,
             events: EventBus) -> None:
    for path, lst, label in (("/api/whitelist", allow_list, "whitelist"), ("/api/denylist", deny_list, "denylist")):
        _register_one(api, lst, groups, resolver, events, path, label)


def _register_one(api: Api, lst: UserList, groups: Groups, resolver: Resolver, events: EventBus,
                  path: str, label: str) -> None:
    def changed(req, action: str, entry: str) -> None:
        resolver.invalidate()  # answers decided before the change must not be replayed
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
        try:
            entry = lst.add(req.g.body["domain"], limited_to)
        except KeyError:
            raise ApiError(409, f"{req.g.body['domain']} is already in the {label}", error="Conflict") from None
        except ValueError as e:
            raise ApiError(400, f"invalid domain: {e}", [{"field": "domain", "message": str(e)}]) from None
        changed(req, "added", entry)
        return {"message": f"Domain added to {label}", **lst.counts()}

    @api.route("DELETE", path + "/<path:domain>", role="admin", summary=f"Remove an entry from the {label}",
               tags=["filtering"], responses={200: ChangeResult})
    async def remove(req, domain):
        domain = unquote(domain)  # "*" may arrive percent-encoded (%2A), as the seed notes
        try:
            entry = lst.remove(domain)
        except KeyError:
            raise ApiError(404, f"{domain} is not in the {label}", error="Not Found") from None
        changed(req, "removed", entry)
        return {"message": f"Domain removed from {label}", **lst.counts()}
