"""The version that names a genre model checkpoint's exact bytes.

Kept free of torch so the API can key its result cache by model version without
loading a model.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path


def model_version(path: str | Path) -> str:
    """First 12 hex digits of the checkpoint file's SHA-256."""
    return _version(str(Path(path).resolve()), Path(path).stat().st_mtime_ns)


def bytes_version(data: bytes) -> str:
    """The version of a checkpoint already read: what ``model_version`` gives for a file of these bytes."""
    return hashlib.sha256(data).hexdigest()[:12]


@lru_cache(maxsize=8)
def _version(path: str, _mtime_ns: int) -> str:
    # The modification time is part of the cache key, so a replaced file is hashed again.
    return bytes_version(Path(path).read_bytes())
