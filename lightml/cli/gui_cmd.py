"""``lightml gui``: serve the dashboard."""

from __future__ import annotations

import argparse
import ipaddress
import sys


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified  # 0.0.0.0 or ::
    except ValueError:
        return False


def _check_port_is_free(host: str, port: int) -> None:
    """Say so in one line before announcing the address (uvicorn would log and exit 3)."""
    import socket

    try:
        addresses = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    for family, kind, proto, _, address in addresses:  # each address as asyncio's create_server binds it
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
                probe.listen(1)  # with SO_REUSEADDR a taken port is only refused here
            except OSError as exc:
                raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (try another --port)") from None


def cmd_gui(args: argparse.Namespace) -> int:
    from lightml.errors import InvalidInputError
    from lightml.web.app import create_app

    if not 0 < args.port < 65536:
        raise InvalidInputError(f"--port must be between 1 and 65535, got {args.port}")
    # A bad registry fails here, before the server starts. The host is passed on because the app
    # answers only requests addressed to a local name or to it (DNS-rebinding protection).
    app = create_app(args.db, host=args.host)
    _check_port_is_free(args.host, args.port)
    if not _is_loopback(args.host):
        print(f"lightml gui: warning: listening on {args.host}: anyone who can reach this machine can read "
              "the registry (and, from the page, edit notes and hidden flags)", file=sys.stderr)
    if _is_unspecified(args.host):
        print(f"lightml gui: note: {args.host} listens on every address, but the page answers only when opened as "
              "localhost, 127.0.0.1 or [::1]; to open it from another machine, pass --host with this machine's "
              "address or name", file=sys.stderr)
    print(f"LightML dashboard on http://{args.host}:{args.port}  (Ctrl-C stops it)", flush=True)
    import uvicorn

    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    except KeyboardInterrupt:
        pass
    return 0
