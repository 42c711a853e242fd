"""python -m shared.service.migrate: create the database's tables at DATABASE_URL, or bring them up
to this code's schema. The deployment's migration step; safe to run again."""
from __future__ import annotations

import sys

from shared.service.database import head_revision, upgrade
from shared.service.settings import Settings, SettingsError


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"migrate: {error}", file=sys.stderr)
        return 2
    try:
        upgrade(settings.database_url)
    except Exception as error:  # the operator reads this line, not a traceback
        print(f"migrate: the database could not be upgraded: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"migrate: the database is at revision {head_revision()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
