"""Filter: blocklists and allowlists from the compiled index, and CNAME inspection.

Decision order for one name (adblock semantics): an ``$important`` block beats everything;
otherwise an allow entry beats a block; otherwise the most specific block entry decides. The
filter wraps the cache and forward stages so an upstream answer whose CNAME chain passes
through a blocked name is blocked too (trackers hide behind first-party CNAMEs).

Client groups (filtering/groups.py): ``query.view`` names the client's groups; a list, an
allow/deny entry and a pause apply only to the groups they name (none named: every group),
so the index lookup is narrowed to the lists of the client's groups.

While blocking is paused (BlockingPause), globally or for one of the client's groups, the
stage only passes queries on.

The blocking settings, the pause and the owner's allow and deny lists are shared state
(dns/shared.py): the policy and private stages read them too. The compiled index, which lists
apply to which groups and where threat-feed hits are reported are the filter's own, handed in
by the composition root (the list manager swaps in each new index).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from .. import wire
from ..blocking import Redirects, blocked_answer
from ..decision import Decision
from ..message import DROP, Answer, Next, Query, read_answer_records
from ..names import view_groups
from ..shared import Options, Shared

# The index's own words, restated because the DNS core imports nothing from filtering/ (the
# index is handed in); tests/unit/dns/stages/test_filter_stage.py checks they equal filtering.index's.
ALL_LISTS = (1 << 64) - 1  # every list: one bit per list, 64 lists
ALLOW_ACTIONS = frozenset(("allow", "passthru"))  # the actions that let a name through


# What the stage reads from the index handed in (filtering.index.Index and its Match).
class IndexMatch(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def how(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def mask(self) -> int: ...
    @property
    def important(self) -> bool: ...
    @property
    def data(self) -> Redirects: ...


class ListIndex(Protocol):
    @property
    def lists(self) -> Mapping[int, Mapping[str, Any]]: ...  # per-list metadata (JSON)

    def lookup(self, name: str, qtype: int | None = ..., lists: int = ..., *,
               complete: bool = ...) -> Sequence[IndexMatch] | None: ...


class FilterStage:
    name = "filter"

    def __init__(self, shared: Shared | None = None) -> None:
        # blocking settings, pause, allow list (never blocked, seed 003), deny list (the owner's own blocks)
        self.shared = shared if shared is not None else Shared()
        self.index: ListIndex | None = None  # burrow.filtering.index.Index, swapped in by the list manager
        # () -> {index list id: [group names]} (empty: every group)
        self.list_groups: Callable[[], Mapping[int, Collection[str]]] | None = None
        # (query, list name, entry) -> None: a threat feed blocked a query
        self.on_threat: Callable[[Query, str, str], None] | None = None
        self._view_masks: dict[str, int] = {}  # view → lists that apply to it; see forget_views
        self.blocked = 0
        self.cname_blocked = 0

    @classmethod
    def from_config(cls, cfg: Options, shared: Shared) -> FilterStage:
        """No options of its own: how a block is answered is shared (``[filtering]``)."""
        return cls(shared)

    def set_index(self, index: ListIndex | None) -> None:
        """Swap in a new compiled index (the list manager then announces it: Change.LIST_INDEX)."""
        self.index = index
        self._view_masks.clear()

    def forget_views(self) -> None:
        """Lists' groups or the groups themselves changed: recompute each view's lists."""
        self._view_masks.clear()

    def lists_for(self, view: str) -> int:
        """The mask of index lists that apply to a client whose groups are ``view``."""
        mask = self._view_masks.get(view)
        if mask is None:
            if self.list_groups is None:
                mask = ALL_LISTS
            else:
                groups = set(view_groups(view))
                mask = 0
                for list_id, limit in self.list_groups().items():
                    if not limit or not groups.isdisjoint(limit):
                        mask |= 1 << list_id
            if len(self._view_masks) > 4096:  # views are group sets: few; never unbounded
                self._view_masks.clear()
            self._view_masks[view] = mask
        return mask

    def verdict(self, name: str, qtype: int | None, view: str | None = None) -> tuple[IndexMatch, int, bool] | None:
        """(match, list id, blocked?) for a name, or None when no list mentions it."""
        index = self.index
        if index is None:
            return None
        lists = ALL_LISTS if view is None else self.lists_for(view)
        if not lists:
            return None
        matches = index.lookup(name, qtype, lists=lists)
        if not matches:
            return None
        # The first (most specific) match of each kind decides; one pass, no per-kind search.
        first_allow: IndexMatch | None = None
        first_deny: IndexMatch | None = None
        first_important: IndexMatch | None = None
        important = 0
        for m in matches:
            if m.action in ALLOW_ACTIONS:
                if first_allow is None:
                    first_allow = m
            else:
                if first_deny is None:
                    first_deny = m
                if m.important:
                    important |= m.mask
                    if first_important is None:
                        first_important = m
        if first_important is not None:
            mask = first_important.mask & important
            return first_important, (mask & -mask).bit_length() - 1, True
        if first_allow is not None:
            return first_allow, (first_allow.mask & -first_allow.mask).bit_length() - 1, False
        assert first_deny is not None  # a match that is neither allow nor deny does not exist
        return first_deny, (first_deny.mask & -first_deny.mask).bit_length() - 1, True

    async def resolve(self, query: Query, next: Next) -> Answer:
        if query.policy_allowed:  # a policy ALLOW rule decided already (stages/policy.py)
            return await next(query)
        groups = view_groups(query.view)
        shared = self.shared
        pause = shared.pause
        if pause is not None and pause.paused(groups):
            query.note("filter", "paused", source="manager", detail="blocking paused")
            return await next(query)
        name = query.name
        allow_list, deny_list = shared.allow_list, shared.deny_list
        if allow_list is not None:
            entry = allow_list.match(name, groups)
            if entry is not None:  # the owner's allow list beats every list, $important too
                query.note("whitelist", "allow", rule=entry, source="whitelist")
                answer = await next(query)
                return answer.replace(decision=Decision.ALLOWED) if answer.decision is Decision.RESOLVED else answer
        if deny_list is not None:
            entry = deny_list.match(name, groups)
            if entry is not None:
                return self._deny(query, entry, detail=entry)
        if self.index is None:
            return self._inspect_cnames(query, await next(query)) if deny_list else await next(query)
        found = self.verdict(name, query.qtype, query.view)
        if found is not None:
            match, list_id, blocked = found
            info = self.index.lists.get(list_id, {})
            list_name = info.get("name") or f"list {list_id}"
            if blocked:
                return self._block(query, match, info, list_name, detail=f"{match.how} {match.name}")
            query.note("blocklist", "allow", rule=list_name, source="manager", detail=f"{match.how} {match.name}")
            answer = await next(query)
            if answer.decision is Decision.RESOLVED:
                answer = answer.replace(decision=Decision.ALLOWED)
            return answer  # an allowed name's CNAME targets are allowed too
        answer = await next(query)
        return self._inspect_cnames(query, answer)

    def matching(self, query: Query) -> list[dict[str, Any]]:
        """Every list entry (regexes included), allow entry and deny entry that matches the
        question for the client's groups, whether it decides or not (dns/explain.py)."""
        name, groups = query.name, view_groups(query.view)
        out: list[dict[str, Any]] = []
        if self.index is not None:
            for m in self.index.lookup(name, query.qtype, lists=self.lists_for(query.view), complete=True) or ():
                out += self._described(m)
        allow_list, deny_list = self.shared.allow_list, self.shared.deny_list
        allow = allow_list.match(name, groups) if allow_list is not None else None
        if allow is not None:
            out.append({"list": "whitelist", "kind": "allow", "entry": allow})
        deny = deny_list.match(name, groups) if deny_list is not None else None
        if deny is not None:
            out.append({"list": "denylist", "kind": "block", "entry": deny})
        return out

    def _described(self, match: IndexMatch) -> list[dict[str, Any]]:
        """An index match as one row per list that holds it."""
        assert self.index is not None  # the match came from it
        return [{"list": info.get("name") or f"list {list_id}", "kind": info.get("kind"), "how": match.how,
                 "entry": match.name, "action": match.action, "important": match.important}
                for list_id, info in sorted(self.index.lists.items()) if match.mask >> list_id & 1]

    def _block(self, query: Query, match: IndexMatch, info: Mapping[str, Any], list_name: str,
               detail: str) -> Answer:
        if query.explain is None:  # a dry run (dns/explain.py) counts nothing and reports no threat
            self.blocked += 1
        if match.action == "drop":  # no reply at all, logged as its own decision (DROPPED)
            query.note("blocklist", "drop", rule=list_name, source="manager", detail=detail)
            return DROP
        query.note("blocklist", "block", rule=list_name, source="manager", detail=detail)
        threat = info.get("kind") == "threat"
        ede = (wire.EDE_FILTERED if threat else wire.EDE_BLOCKED, f"{list_name}: {match.name}")
        settings = self.shared.blocking
        mode = {"nxdomain": "nxdomain", "nodata": "nodata"}.get(match.action) \
            or info.get("mode") or settings.mode
        answer = blocked_answer(query.qtype, mode, settings, ede,
                                match.data if match.action == "redirect" else ())
        if threat:
            if self.on_threat is not None and query.explain is None:
                self.on_threat(query, list_name, match.name)
            if answer.decision is Decision.BLOCKED:
                # Not replayed by the fast path (see fastpath.STORABLE): every hit is seen here.
                answer = answer.replace(decision=Decision.THREAT)
        return answer

    def _deny(self, query: Query, entry: str, detail: str) -> Answer:
        if query.explain is None:
            self.blocked += 1
        query.note("denylist", "block", rule=entry, source="denylist", detail=detail)
        settings = self.shared.blocking
        return blocked_answer(query.qtype, settings.mode, settings, (wire.EDE_BLOCKED, f"denylist: {entry}"))

    def _inspect_cnames(self, query: Query, answer: Answer) -> Answer:
        """Block an answer whose CNAME chain passes through a blocked name."""
        if not answer.an or answer.decision not in (Decision.RESOLVED, Decision.CACHED, Decision.STALE):
            if query.explain is not None:
                query.explain.awaits(answer, "cname_inspection")
            return answer
        groups = view_groups(query.view)
        read = read_answer_records(query, answer)
        if read is None:
            return answer
        packet, rrs = read
        allow_list, deny_list = self.shared.allow_list, self.shared.deny_list
        for rr in rrs:
            if rr.rtype != wire.TYPE_CNAME:
                continue
            target = wire.name_to_text(wire.rdata_name(packet, rr))
            if allow_list is not None and allow_list.match(target, groups) is not None:
                continue
            if deny_list is not None:
                entry = deny_list.match(target, groups)
                if entry is not None:
                    if query.explain is None:
                        self.cname_blocked += 1
                    else:
                        query.explain.matches.append({"list": "denylist", "kind": "block", "entry": entry,
                                                      "cname": target})
                    return self._deny(query, entry, detail=f"cname {target} ({entry})")
            found = self.verdict(target, query.qtype, query.view)
            if found is not None and found[2]:
                match, list_id, _ = found
                assert self.index is not None  # verdict() found it there
                info = self.index.lists.get(list_id, {})
                if query.explain is None:
                    self.cname_blocked += 1
                else:
                    query.explain.matches += [dict(m, cname=target) for m in self._described(match)]
                return self._block(query, match, info, info.get("name") or f"list {list_id}",
                                   detail=f"cname {target} ({match.how} {match.name})")
        return answer
