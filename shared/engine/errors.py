"""Errors a user can act on: each carries a stable ``code`` and a plain-words message."""
from __future__ import annotations


class AnalysisError(Exception):
    """Base of the errors that end one analysis but not the process."""

    code = "internal"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class UnsupportedAudio(AnalysisError):
    """Empty, truncated, corrupt or not audio at all."""

    code = "unsupported_audio"


class TooLong(AnalysisError):
    code = "too_long"


class TooShort(AnalysisError):
    code = "too_short"


class DownloadFailed(AnalysisError):
    """The link could not be fetched: network, size cap, unsupported site."""

    code = "download_failed"


class VideoUnavailable(AnalysisError):
    """The video exists no more, is private, or is blocked for us."""

    code = "video_unavailable"
