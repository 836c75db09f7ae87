"""``meshctx db upgrade``: migrate the registry's database (the service also does it at start-up)."""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_VALID, ServerFailed, UsageError, load_service


def add_db_commands(commands: Any) -> None:
    db = commands.add_parser("db", help="the registry's database")
    db_commands = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="apply schema migrations (the service does it at start-up)")
    upgrade.add_argument(
        "--database-url", help="default: $MESHCTX_DATABASE_URL, else the SQLite file under $MESHCTX_DATA_DIR"
    )
    upgrade.set_defaults(handler=cmd_db_upgrade)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    service = load_service("db")
    assert service.default_database_url is not None and service.upgrade_database is not None
    settings = service.settings()
    url = args.database_url or settings.database_url or service.default_database_url(settings.data_dir)
    try:
        revision = service.upgrade_database(url)
    except ValueError as error:
        raise UsageError(str(error)) from None
    except Exception as error:  # the database could not be reached or migrated: say which and why
        raise ServerFailed(f"cannot upgrade {_redacted(url)}: {error}") from None
    print(f"{_redacted(url)} is at schema revision {revision}")
    return EXIT_VALID


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
