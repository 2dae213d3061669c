"""``python -m app.dashboard``: serve the dashboard; ``python -m app.dashboard hash``: make a
password hash for ``DASHBOARD_OPERATORS`` (the password is read from the terminal or stdin)."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from app.dashboard.passwords import hash_password
from app.dashboard.settings import DashboardSettings


def serve() -> int:
    import uvicorn

    from app.dashboard.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s "
                        "%(message)s")
    settings = DashboardSettings.from_env()
    if not settings.operators:
        logging.getLogger("pgjobs.dashboard").warning(
            "event=no_operators hint='set DASHBOARD_OPERATORS=name:hash "
            "(python -m app.dashboard hash)'")
    print(f"dashboard: http://{settings.host}:{settings.port}/", flush=True)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level="warning", access_log=False, timeout_graceful_shutdown=3,
                proxy_headers=False)
    return 0


def make_hash(name: str | None) -> int:
    password = getpass.getpass("password: ") if sys.stdin.isatty() else \
        sys.stdin.readline().rstrip("\n")
    try:
        encoded = hash_password(password)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{name}:{encoded}" if name else encoded)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.dashboard",
                                     description="The pgjobs web dashboard.")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the dashboard (the default)")
    p = sub.add_parser("hash", help="print a password hash for DASHBOARD_OPERATORS")
    p.add_argument("--name", help="print name:hash, ready for DASHBOARD_OPERATORS")
    args = parser.parse_args(argv)
    if args.command == "hash":
        return make_hash(args.name)
    return serve()


if __name__ == "__main__":
    raise SystemExit(main())
