"""Signed-in calls to a running BurrowProcess, for integration tests.

    token = admin_token(burrow)                      # setup (first run) + login
    status, body = authed(burrow, token, "GET", "/api/stats")
    status, body = authed(burrow, token, "PUT", "/api/config/cache", {"max_ttl": 3600})
    value = metric(burrow, token, "burrow_querylog_pending_rows")   # one unlabelled series

The token is remembered per process and user, and reused while it still works, so many tests
sharing one process do not spend the stricter rate limit on the auth endpoints.
"""

from __future__ import annotations

from typing import Any

ADMIN_PASSWORD = "Owner-Passphrase-2024"


def admin_token(burrow_process, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
    """An access token for ``username``: creates the first admin if no user exists yet, then
    logs in. Raises AssertionError with the server's answer if either step fails."""
    cache = burrow_process.__dict__.setdefault("_api_tokens", {})
    token = cache.get((username, password))
    if token is not None and authed(burrow_process, token, "GET", "/api/auth/me")[0] == 200:
        return token
    status, body = burrow_process.http("POST", "/api/auth/setup",
                                       {"username": username, "password": password})
    assert status in (201, 409), (status, body)  # 409: set up already
    status, body = burrow_process.http("POST", "/api/auth/login",
                                       {"username": username, "password": password})
    assert status == 200, (status, body)
    cache[(username, password)] = body["access_token"]
    return body["access_token"]


def authed(burrow_process, token: str, method: str, path: str, body: Any = None,
           **http_kw) -> tuple[int, Any]:
    """``burrow_process.http`` with ``Authorization: Bearer <token>``; returns (status, body).
    Extra keywords (headers, timeout, source) go to ``http``."""
    headers = {"Authorization": f"Bearer {token}", **(http_kw.pop("headers", None) or {})}
    return burrow_process.http(method, path, body, headers=headers, **http_kw)


def user_token(burrow_process, admin: str, username: str, password: str, role: str = "viewer") -> str:
    """Create the account ``username`` (with the admin's token ``admin``) and sign it in: its
    access token. Raises AssertionError with the server's answer if either step fails."""
    status, body = authed(burrow_process, admin, "POST", "/api/users",
                          {"username": username, "password": password, "role": role})
    assert status == 201, (status, body)
    status, body = burrow_process.http("POST", "/api/auth/login",
                                       {"username": username, "password": password})
    assert status == 200, (status, body)
    return body["access_token"]


def metric(burrow_process, token: str, name: str) -> float:
    """The value of the unlabelled series ``name`` in ``/metrics`` (0.0 while it is absent)."""
    status, text = authed(burrow_process, token, "GET", "/metrics")
    assert status == 200, (status, text)
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
