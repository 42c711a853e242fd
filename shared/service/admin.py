"""genre-admin: the operator's command. ``genre-admin keys create --name N [--quota PER_MINUTE] [--admin]``
prints a new API key once; ``keys list`` shows every key (never a secret); ``keys revoke NAME``
stops one at once. It works on the database at DATABASE_URL, as the API does."""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from shared.service import keys
from shared.service.database import Database, DatabaseNotReady
from shared.service.settings import Settings, SettingsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genre-admin", description="Manage the genre service.")
    groups = parser.add_subparsers(dest="group", required=True)
    keys_parser = groups.add_parser("keys", help="API keys (used when AUTH=keys)")
    actions = keys_parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key and print it (once)")
    create.add_argument("--name", required=True, help="who or what the key is for; unique")
    create.add_argument("--quota", type=int, default=None, metavar="PER_MINUTE",
                        help="submissions a minute for this key (default: RATE_LIMIT_PER_MINUTE; 0: no limit)")
    create.add_argument("--admin", action="store_true", help="the key may also read /metrics")
    actions.add_parser("list", help="list keys: name, prefix, quota, created, revoked")
    revoke = actions.add_parser("revoke", help="stop a key at once")
    revoke.add_argument("name")
    return parser


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        db = Database.open(settings.database_url)
    except (SettingsError, DatabaseNotReady) as error:
        print(f"genre-admin: {error}", file=sys.stderr)
        return 2
    if args.action == "create":
        try:
            key, secret = keys.create(db, args.name, args.quota, args.admin)
        except keys.KeyRefused as error:
            print(f"genre-admin: {error}", file=sys.stderr)
            return 1
        quota = "RATE_LIMIT_PER_MINUTE" if key.quota_per_minute is None else key.quota_per_minute or "no limit"
        print(secret)
        print(f"key {key.name!r} made{' (admin)' if key.admin else ''}, submissions a minute: {quota}. "
              "Keep it now: it is not shown again. Send it as `Authorization: Bearer <key>`.", file=sys.stderr)
        return 0
    if args.action == "list":
        rows = [("name", "prefix", "quota/min", "admin", "created", "revoked")]
        for key in keys.listing(db):
            quota = "default" if key["quota_per_minute"] is None else str(key["quota_per_minute"] or "none")
            rows.append((key["name"], key["prefix"] + "…", quota, "yes" if key["admin"] else "",
                         _when(key["created_at"]), _when(key["revoked_at"])))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        return 0
    if keys.revoke(db, args.name):
        print(f"key {args.name!r} revoked: it is refused from now on")
        return 0
    print(f"genre-admin: no unrevoked key called {args.name!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
