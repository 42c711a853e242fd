"""The version that names a genre model checkpoint's exact bytes: stored with every result, keying
the result cache, and published by each worker in its heartbeat."""
from __future__ import annotations

import hashlib
from pathlib import Path


def bytes_version(data: bytes) -> str:
    """First 12 hex digits of the checkpoint's SHA-256, from bytes already read."""
    return hashlib.sha256(data).hexdigest()[:12]


def model_version(path: str | Path) -> str:
    """The version of the checkpoint file at ``path``."""
    return bytes_version(Path(path).read_bytes())
