"""Domain errors share one base class (burrow.errors.DomainError) carrying the HTTP status, the
short code, the field path and Retry-After; the API maps them by class (api/errors.from_exception),
never by class name or by duck-typing a ``status`` attribute."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from burrow import errors
from burrow.api.errors import ApiError, from_exception, reason
from burrow.auth.errors import LockedOutError, NotFoundError, PasswordBusyError, TotpRequiredError, \
    WeakPasswordError
from burrow.backup import BackupError
from burrow.config import ConfigError
from burrow.filtering.groups import Duplicate, GroupError, UnknownClient, UnknownGroup
from burrow.filtering.rpz import RpzError
from burrow.filtering.userlists import BadEntry, EntryExists, EntryMissing, UserList
from burrow.filtering.sources import ListConflictError, ListLimitError, ListValidationError
from burrow.forwarding.rules import DuplicateRule, ForwardRuleError, RuleNotFound
from burrow.policy import PolicyError
from burrow.policy.store import PolicyLimitError, PolicyNotFound
from burrow.zones.store import StoreError
from burrow.zones.validate import RecordError
from burrow.zones.zonefile import ZoneFileError

PACKAGE = Path(__file__).resolve().parents[2] / "firmware" / "burrow"


def answer(exc: BaseException) -> tuple[int, dict, dict]:
    status, body, headers = from_exception(exc)
    assert body["code"] == status
    assert body.pop("timestamp")
    return status, body, headers


def test_a_subclass_answers_its_meaning_with_the_field_path_in_details():
    class OutOfRange(errors.Invalid):
        pass

    exc = OutOfRange("must be at most 86400")
    exc.field = "upstreams[2].timeout"
    assert answer(exc) == (400, {"error": "Bad Request", "code": 400, "message": "must be at most 86400",
                                 "details": [{"field": "upstreams[2].timeout",
                                              "message": "must be at most 86400"}]}, {})
    assert answer(errors.NotFound("no such thing"))[:2] == (
        404, {"error": "Not Found", "code": 404, "message": "no such thing"})
    assert answer(errors.Conflict("taken"))[0] == 409


def test_retry_after_becomes_the_header():
    status, body, headers = answer(LockedOutError(29.2))
    assert status == 429 and body["error"] == "locked_out"
    assert body["message"] == "too many failed attempts; try again in 30 s"
    assert headers == {"Retry-After": "31"}
    assert answer(PasswordBusyError())[2] == {"Retry-After": "2"}


def test_auth_errors_keep_their_codes_and_fields():
    assert answer(TotpRequiredError())[:2] == (
        401, {"error": "totp_required", "code": 401, "message": "a TOTP code is required"})
    assert answer(NotFoundError("no such user"))[1]["error"] == "not_found"
    status, body, _ = answer(WeakPasswordError("too short"))
    assert (status, body["error"], body["details"]) == (
        400, "weak_password", [{"field": "password", "message": "too short"}])


def test_config_error_names_every_key_path():
    status, body, _ = answer(ConfigError([("cache.max_ttl", "must be at least 0"), ("dns.port", "too big")]))
    assert status == 400
    assert body["message"] == "invalid configuration: cache.max_ttl: must be at least 0; dns.port: too big"
    assert body["details"] == [{"field": "cache.max_ttl", "message": "must be at least 0"},
                               {"field": "dns.port", "message": "too big"}]


def test_allow_and_deny_list_refusals_answer_as_the_handler_did(db):
    lst = UserList(db, "filtering.whitelist")
    lst.add("ads.example")
    with pytest.raises(EntryExists) as exists:
        lst.add("ads.example")
    assert answer(exists.value)[:2] == (409, {"error": "Conflict", "code": 409,
                                              "message": "ads.example is already in the whitelist"})
    with pytest.raises(EntryMissing) as missing:
        UserList(db, "filtering.denylist").remove("ads.example")
    assert answer(missing.value)[:2] == (404, {"error": "Not Found", "code": 404,
                                               "message": "ads.example is not in the denylist"})
    with pytest.raises(BadEntry) as bad:
        lst.add("*.")
    status, body, _ = answer(bad.value)
    assert status == 400 and body["message"] == f"invalid domain: {bad.value}"
    assert body["details"] == [{"field": "domain", "message": str(bad.value)}]
    assert isinstance(exists.value, KeyError) and isinstance(bad.value, ValueError)  # callers' old catches


def test_list_store_conflict_is_409_and_other_list_errors_400():
    status, body, _ = answer(ListConflictError("name", "a list named ads exists already"))
    assert status == 409 and body["error"] == "Conflict"
    assert body["details"] == [{"field": "name", "message": "name: a list named ads exists already"}]
    assert answer(ListLimitError(None, "all 64 list slots are taken"))[:2] == (
        400, {"error": "Bad Request", "code": 400, "message": "all 64 list slots are taken"})
    assert isinstance(ListConflictError("name", "x"), ListValidationError)  # still one for callers


def test_group_errors():
    assert answer(Duplicate("kids"))[:2] == (409, {"error": "Conflict", "code": 409,
                                                   "message": "kids exists already"})
    assert answer(UnknownGroup("kids"))[:2] == (404, {"error": "Not Found", "code": 404,
                                                      "message": "no client group named 'kids'"})
    assert answer(UnknownClient(7))[1]["message"] == "no client entry 7"
    assert isinstance(UnknownGroup("kids"), KeyError)  # lookups by name stay KeyErrors
    assert answer(GroupError("groups", "no group named 'x'"))[1]["details"] == [
        {"field": "groups", "message": "no group named 'x'"}]


def test_forwarding_rpz_policy_zone_and_backup_errors_keep_their_bodies():
    assert answer(ForwardRuleError("bad", ""))[1]["details"] == [{"field": "", "message": "bad"}]
    assert answer(DuplicateRule("exists", "name"))[0] == 409
    assert answer(RuleNotFound("Rule not found"))[:2] == (
        404, {"error": "Not Found", "code": 404, "message": "Rule not found"})
    assert answer(RpzError("trigger", "must be a name"))[1]["details"] == [
        {"field": "trigger", "message": "must be a name"}]
    status, body, _ = answer(PolicyError("unknown name", position=3, source="foo bar"))
    assert status == 400 and body["message"] == "invalid policy: unknown name (at position 3)"
    assert body["details"][0]["field"] == "logic" and body["details"][0]["position"] == 3
    assert answer(PolicyNotFound(7))[:2] == (404, {"error": "Not Found", "code": 404, "message": "Policy not found"})
    assert answer(PolicyLimitError("at most 500 policies"))[:2] == (
        400, {"error": "Bad Request", "code": 400, "message": "at most 500 policies"})
    assert answer(RecordError("bad address", "value"))[1]["details"] == [
        {"field": "value", "message": "bad address"}]
    assert answer(StoreError("no zone 3", 404, "id"))[:2] == (
        404, {"error": "Not Found", "code": 404, "message": "no zone 3"})
    assert answer(ZoneFileError(4, "bad TTL"))[1]["details"] == [
        {"field": "zone", "message": "line 4: bad TTL", "line": 4}]
    assert answer(BackupError("too big", 413))[:2] == (
        413, {"error": reason(413), "code": 413, "message": "too big"})
    rows = [{"table": "t", "row": 0, "field": "x", "message": "bad"}]
    assert answer(BackupError("bad rows", 400, rows))[1] == {
        "error": "invalid_backup", "code": 400, "message": "bad rows", "details": rows}


def test_api_error_keeps_its_headers():
    assert answer(ApiError(429, "slow down", headers={"Retry-After": "2"}))[2] == {"Retry-After": "2"}


def test_a_status_attribute_alone_no_longer_decides_the_answer():
    class Stray(ValueError):
        status = 404

    assert answer(Stray("x"))[0] == 500


# A ``status`` that is not the answer to our caller, each with the reason.
NOT_OURS = {
    ("burrow.filtering.download", "HTTPStatusError"): "the status a list's server answered the download",
}


def exception_classes_with_a_status():
    """(module, class name) of every class in burrow that sets ``status`` in its body or
    ``self.status`` in a method."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            for sub in ast.walk(node):
                targets = sub.targets if isinstance(sub, ast.Assign) else \
                    [sub.target] if isinstance(sub, ast.AnnAssign) else []
                if any((isinstance(t, ast.Name) and t.id == "status" and sub in node.body)
                       or (isinstance(t, ast.Attribute) and t.attr == "status"
                           and isinstance(t.value, ast.Name) and t.value.id == "self")
                       for t in targets):
                    yield ".".join(parts), node.name
                    break


def test_every_exception_with_a_status_is_a_domain_error():
    found = list(exception_classes_with_a_status())
    assert ("burrow.auth.errors", "LockedOutError") in found and ("burrow.backup", "BackupError") in found
    for module, name in found:
        if (module, name) in NOT_OURS:
            continue
        cls = getattr(importlib.import_module(module), name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            assert issubclass(cls, errors.DomainError), f"{module}.{name} has a status but is no DomainError"


@pytest.mark.parametrize("path", sorted((PACKAGE / "api").rglob("*.py")), ids=lambda p: p.name)
def test_the_api_maps_no_error_by_class_name_or_duck_typing(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            names = [n for n in [node.left, *node.comparators]
                     if isinstance(n, ast.Attribute) and n.attr == "__name__"]
            assert not names, f"{path.name}:{node.lineno}: a class name compared — map errors by class"
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "getattr" and len(node.args) >= 2:
            name = node.args[1]
            assert not (isinstance(name, ast.Constant) and name.value in ("status", "retry_after", "field")), \
                f"{path.name}:{node.lineno}: getattr(…, {name.value!r}) — raise a DomainError instead"
