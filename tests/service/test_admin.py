"""genre-admin (shared/service/admin.py) and the API key table (shared/service/keys.py): keys made, listed
and revoked by the command on a SQLite file, kept hashed, and the table on a real PostgreSQL."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, insert, inspect, text
from stack import REPO

from shared.service import keys
from shared.service.database import Database, upgrade
from shared.service.tables import batches


def _admin(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared.service.admin", *args], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "DATABASE_URL": database_url})


def test_genre_admin_creates_lists_and_revokes_keys_stored_hashed(tmp_path):
    path = tmp_path / "admin.db"
    url = f"sqlite:///{path}"
    made = _admin(url, "keys", "create", "--name", "ci-runner", "--quota", "5")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("gk_") and len(secret) == 46 and "not shown again" in made.stderr
    assert _admin(url, "keys", "create", "--name", "ops", "--admin").returncode == 0
    taken = _admin(url, "keys", "create", "--name", "ci-runner")
    assert taken.returncode == 1 and "already a key called 'ci-runner'" in taken.stderr
    listed = _admin(url, "keys", "list")
    assert listed.returncode == 0 and secret not in listed.stdout
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert rows["ci-runner"][1:3] == [secret[:10] + "…", "5"] and rows["ci-runner"][-1] == "-"
    assert rows["ops"][1:4] == [rows["ops"][1], "default", "yes"]
    assert _admin(url, "keys", "revoke", "ci-runner").returncode == 0
    assert _admin(url, "keys", "revoke", "ci-runner").returncode == 1  # already revoked
    revoked = {line.split()[0]: line for line in _admin(url, "keys", "list").stdout.splitlines()[1:]}
    assert revoked["ci-runner"].rstrip().endswith("Z") and not revoked["ops"].rstrip().endswith("Z")
    # Only the key's hash is kept: not the key, anywhere in the database's files.
    for file in tmp_path.glob("admin.db*"):
        assert secret.encode() not in file.read_bytes()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT secret_hash FROM api_keys WHERE name = 'ci-runner'").fetchone() \
            == (keys.hash_secret(secret),)


def test_the_key_table_works_on_postgresql(postgres_url):
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    upgrade(postgres_url)
    db = Database.open(postgres_url)
    assert {"key_id"} <= {c["name"] for c in inspect(db.engine).get_columns("jobs")}
    key, secret = keys.create(db, "pg-client", quota_per_minute=7)
    assert keys.lookup(db, secret) == key
    with pytest.raises(keys.KeyRefused):
        keys.create(db, "pg-client")
    with db.engine.begin() as connection:
        connection.execute(insert(batches).values(id="b" * 32, created_at=1.0, key_id=key.id))
    assert keys.batch_owner(db, "b" * 32) == key.id
    assert keys.revoke(db, "pg-client") and keys.lookup(db, secret) is None
    assert [k["name"] for k in keys.listing(db)] == ["pg-client"] and keys.listing(db)[0]["revoked_at"]
