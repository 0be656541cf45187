"""The dashboard's guards against other sites (two ASGI middlewares).

Against DNS rebinding (a foreign page re-pointing its own name to 127.0.0.1, which makes the
browser treat the dashboard as that page's origin) only requests addressed to a local name or
to the configured ``--host`` are answered, and a POST whose ``Origin`` names another host is
refused.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class LocalHostsOnly:
    """Answers 400 to a request whose ``Host`` header names a host not in ``hosts`` (any port).

    Parsed here rather than with Starlette's TrustedHostMiddleware, which in the Starlette
    versions we accept cuts ``[::1]:5050`` at its first colon and so refuses IPv6 hosts."""

    def __init__(self, app: ASGIApp, hosts: set[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = _host_of_header(Headers(scope=scope).get("host", ""))
            if host not in self.hosts:
                response = JSONResponse({"error": "this dashboard answers only to 127.0.0.1, localhost, [::1] "
                                                  "and its --host"}, status_code=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _host_of_header(value: str) -> str:
    """The host of a ``Host`` header, lower case, without port or IPv6 brackets."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:5050
        return value[1:value.find("]")] if "]" in value else ""
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class RefuseForeignOrigin:
    """Refuses (403) a POST whose ``Origin`` header is present and names a host not in ``hosts``.

    Browsers send ``Origin`` with every cross-site POST; a request without one comes from a
    non-browser client, which the token check still covers."""

    def __init__(self, app: ASGIApp, hosts: set[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            origin = Headers(scope=scope).get("origin")
            if origin is not None and _host_of(origin) not in self.hosts:
                response = JSONResponse({"error": f"origin {origin!r} may not edit this dashboard"}, status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _host_of(origin: str) -> str | None:
    """The host of an ``Origin`` header, lower case, IPv6 without brackets; None for "null"
    (sandboxed pages, file://) and anything unparsable."""
    try:
        return urlsplit(origin).hostname
    except ValueError:
        return None
