"""The version that names a head checkpoint's exact weights.

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


@lru_cache(maxsize=8)
def _version(path: str, _mtime_ns: int) -> str:
    # The modification time is part of the cache key, so a replaced file is hashed again.
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
