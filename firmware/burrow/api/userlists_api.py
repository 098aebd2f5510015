"""/api/whitelist (seed 003, exactly) and /api/denylist (the same shape for the owner's blocks)."""

from __future__ import annotations

from urllib.parse import unquote

from .errors import ApiError
from .groups_api import group_names, known_groups
from .routes import Api
from .schema import AnyOf, Int, List, Obj, Str, domain_name

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


def register(api: Api, app) -> None:
    for path, attr, label in (("/api/whitelist", "allow_list", "whitelist"),
                              ("/api/denylist", "deny_list", "denylist")):
        _register_one(api, app, path, attr, label)


def _register_one(api: Api, app, path: str, attr: str, label: str) -> None:
    def user_list():
        lst = getattr(app.shared, attr, None)  # the allow and deny lists the stages share
        if lst is None:
            raise ApiError(503, f"the {label} is not available (storage not open)")
        return lst

    def changed(req, action: str, entry: str) -> None:
        app.dns.invalidate()  # answers decided before the change must not be replayed
        app.events.publish("events", {"type": f"{label}.{action}", "actor": req.g.principal.username,
                                      "client_ip": req.g.client_ip, "summary": f"{entry} {action} ({label})"})

    @api.route("GET", path, role="viewer", summary=f"All {label} entries by kind", tags=["filtering"],
               responses={200: ListSummary})
    async def get_list(req):
        return user_list().summary()

    @api.route("POST", path, role="admin", summary=f"Add a domain, wildcard or regex to the {label}",
               tags=["filtering"], body=DomainBody, responses={200: ChangeResult, 409: "the entry is there already"})
    async def add(req):
        groups = known_groups(app, req.g.body.get("groups")) or None
        try:
            entry = user_list().add(req.g.body["domain"], groups)
        except KeyError:
            raise ApiError(409, f"{req.g.body['domain']} is already in the {label}", error="Conflict") from None
        except ValueError as e:
            raise ApiError(400, f"invalid domain: {e}", [{"field": "domain", "message": str(e)}]) from None
        changed(req, "added", entry)
        return {"message": f"Domain added to {label}", **user_list().counts()}

    @api.route("DELETE", path + "/<path:domain>", role="admin", summary=f"Remove an entry from the {label}",
               tags=["filtering"], responses={200: ChangeResult})
    async def remove(req, domain):
        domain = unquote(domain)  # "*" may arrive percent-encoded (%2A), as the seed notes
        try:
            entry = user_list().remove(domain)
        except KeyError:
            raise ApiError(404, f"{domain} is not in the {label}", error="Not Found") from None
        changed(req, "removed", entry)
        return {"message": f"Domain removed from {label}", **user_list().counts()}
