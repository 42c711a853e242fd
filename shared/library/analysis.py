"""What one analysing process does for a folder scan: load the model once, then analyse file after file.

The scan's pool runs ``start`` as each process's initializer and ``analyse`` per file; with one job
the scan calls both in its own process. Results go back to the scan's main process, which alone
writes the database, so nothing here touches the store.
"""
from __future__ import annotations

import signal
from dataclasses import dataclass

from shared.engine.audio import decode
from shared.engine.errors import AnalysisError
# Imported here rather than inside start(): the forkserver preloads this module, so torch is
# imported once there and each pool process forked from it starts without importing it again.
from shared.engine.inference import EMBEDDING_KIND, GenreClassifier
from shared.engine.result import build_result

# A load failure is kept and reported by the first analyse() rather than raised in the
# initializer: a raising initializer only breaks the pool, and the message would be lost.
_state: dict = {}


@dataclass(frozen=True)
class Analysed:
    """One file's outcome: the service's result dict and the song's embedding, or an error dict."""

    result: dict | None = None
    embedding: bytes | None = None
    embedding_kind: str | None = None
    error: dict | None = None


# The error code of every file when the model could not be loaded: no file can be analysed, so
# the scan stops (scan.ModelUnavailable) rather than failing the whole library file by file.
MODEL_UNAVAILABLE = "model_unavailable"


def start(model_options: dict, decode_options: dict, top_tags: int, ignore_sigint: bool = False) -> None:
    """Load the classifier for this process. A pool process ignores SIGINT: Ctrl-C reaches the
    whole process group, and the main process alone decides how the scan stops (it ends the pool)."""
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _state.update(decode_options=decode_options, top_tags=top_tags, classifier=None, load_error=None)
    try:
        _state["classifier"] = GenreClassifier(**model_options)
    except Exception as error:  # noqa: BLE001 - reported by analyse(), the only way back to the main process
        _state["load_error"] = f"cannot load the genre model: {type(error).__name__}: {error}"


def analyse(path: str) -> Analysed:
    """The result of one file, as the service stores a job's, or the error a user can act on."""
    classifier = _state.get("classifier")
    if classifier is None:
        return Analysed(error={"code": MODEL_UNAVAILABLE, "message": _state.get("load_error") or "not loaded"})
    try:
        audio = decode(path, **_state["decode_options"])
        prediction = classifier.predict(audio)
    except AnalysisError as error:
        return Analysed(error=error.to_dict())
    except Exception as error:  # noqa: BLE001 - one strange file must not end a whole library's scan
        return Analysed(error={"code": "internal", "message": f"{type(error).__name__}: {error}"})
    result = build_result(prediction, audio, classifier.info, _state["top_tags"])
    return Analysed(result=result, embedding=prediction.embedding().tobytes(), embedding_kind=EMBEDDING_KIND)


def settled_options(model_options: dict) -> dict:
    """``model_options`` with "auto" precision decided once, here, for every process of a pool.

    "auto" times int8 against float32 when a classifier loads; processes starting together on a
    busy machine could each time it differently and give the same library mixed arithmetic.
    """
    from shared.engine.inference import resolve_device, resolve_precision

    if model_options.get("precision", "auto") != "auto":
        return model_options
    device = resolve_device(model_options.get("device", "auto"))
    return {**model_options, "precision": resolve_precision("auto", device)}
