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


def cmd_gui(args: argparse.Namespace) -> int:
    from lightml.errors import InvalidInputError
    from lightml.web.app import create_app

    if not 0 < args.port < 65536:
        raise InvalidInputError(f"--port must be between 1 and 65535, got {args.port}")
    app = create_app(args.db)  # a bad registry fails here, before the server starts
    if not _is_loopback(args.host):
        print(f"lightml gui: warning: listening on {args.host}: anyone who can reach this machine can read "
              "the registry (and, from the page, edit notes and hidden flags)", file=sys.stderr)
    print(f"LightML dashboard on http://{args.host}:{args.port}  (Ctrl-C stops it)", flush=True)
    import uvicorn

    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    except KeyboardInterrupt:
        pass
    return 0
