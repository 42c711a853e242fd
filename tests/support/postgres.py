"""A throw-away PostgreSQL server for the tests: Debian's server binaries, a cluster in a temporary
folder on a free port, run as the ``postgres`` user when the tests run as root (initdb refuses root)."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from stack import free_port, wait_for


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    if os.getuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="session")
def postgres_url():
    """``postgresql+psycopg://`` URL of a fresh server with an empty database ``genre``."""
    binaries = _binaries()
    if binaries is None:
        pytest.fail("PostgreSQL's server binaries are missing: `make install` installs Debian's postgresql")
    # Directly under /tmp: pytest's own temporary folders are closed to other users, postgres included.
    folder = Path(tempfile.mkdtemp(prefix="genre-pg-"))
    data = folder / "data"
    if os.getuid() == 0:
        user = pwd.getpwnam("postgres")
        shutil.chown(folder, user.pw_uid, user.pw_gid)
    _as_postgres([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    port = free_port()
    server = subprocess.Popen(
        ["runuser", "-u", "postgres", "--"] * (os.getuid() == 0)
        + [str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-k", str(folder), "-h", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "wb"))
    try:
        wait_for(lambda: subprocess.run([str(binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                                        capture_output=True).returncode == 0, 30, "PostgreSQL to start")
        _as_postgres([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "genre"])
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/genre"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
