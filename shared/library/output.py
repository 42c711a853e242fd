"""A folder scan's output: one line per file as a table row, a JSON object or a CSV record, and one
line per tag write-back. The same row comes out whether the file was analysed now or known from
the store (only its status says which), so a second scan prints what the first did."""
from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Callable, Sequence

from shared.library.tags import ANALYSIS_FIELD, TagOutcome

if TYPE_CHECKING:
    from shared.library.scan import Row

FORMATS = ("table", "jsonl", "csv")
CSV_COLUMNS = ["path", "duration_s", *[f"{name}{rank}" for rank in range(1, 6) for name in ("genre", "p")],
               "tags", "status", "error"]
# A table's path column is as wide as the longest path, up to this; a longer path pushes its row out.
_MOST_PATH_WIDTH = 60


def json_line(row: "Row", timeline: bool = False) -> str:
    """genre-classify --json's object for one file, with its status and whether it was skipped."""
    if row.result is None:
        return json.dumps({"path": row.path, "error": row.error, "status": row.status, "skipped": False})
    result = row.result
    line = {"path": row.path, "duration_s": result["duration_s"], "segments": len(result["segments"]),
            "top5": result["top5"], "tags": result["tags"]}
    if timeline:
        line["timeline"] = result["segments"]
    line.update(status=row.status, skipped=row.skipped)
    return json.dumps(line)


def _cell(text: str) -> str:
    """Text as a spreadsheet cell: never a formula (a file may be named anything)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_text(values: list) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


def csv_header() -> str:
    return _csv_text(CSV_COLUMNS)


def csv_line(row: "Row") -> str:
    """path, duration_s, genre1, p1 ... genre5, p5, tags ("tag (0.55); ..."), status, error ("code: message")."""
    if row.result is None:
        error = f"{row.error['code']}: {row.error['message']}" if row.error else ""
        return _csv_text([_cell(row.path), "", *[""] * 10, "", row.status, error])
    result = row.result
    genres = [value for item in result["top5"][:5] for value in (item["genre"], item["p"])]
    genres += [""] * (10 - len(genres))
    tags = "; ".join(f"{tag['tag']} ({tag['p']:.2f})" for tag in result["tags"])
    return _csv_text([_cell(row.path), result["duration_s"], *genres, tags, row.status, ""])


def table_line(row: "Row", width: int, timeline: bool = False) -> str:
    """The path, the duration, the top three genres and the status; an error in place of the genres."""
    if row.result is None:
        return f"{row.path:<{width}}  error ({row.error['code']}): {row.error['message']}"
    result = row.result
    genres = "  ".join(f"{item['genre']:<10} {item['p'] * 100:5.1f}%" for item in result["top5"][:3])
    lines = [f"{row.path:<{width}}  {result['duration_s']:7.1f} s  {genres}  {row.status}"]
    if timeline:
        for item in result["segments"]:
            best = item["top5"][0]
            lines.append(f"  {item['start']:7.1f}-{item['end']:6.1f} s  {best['genre']:<10} {best['p'] * 100:5.1f}%")
    return "\n".join(lines)


def formatter(kind: str, paths: Sequence[str], timeline: bool = False) -> tuple[str | None, Callable[["Row"], str]]:
    """The header line (CSV only) and the row formatter of output ``kind`` (one of FORMATS)."""
    if kind == "jsonl":
        return None, lambda row: json_line(row, timeline)
    if kind == "csv":
        return csv_header(), csv_line
    width = min(max((len(path) for path in paths), default=0), _MOST_PATH_WIDTH)
    return None, lambda row: table_line(row, width, timeline)


def _changes(outcome: TagOutcome) -> str:
    # The analysis field holds a line of JSON, too long to be read here: it is only named.
    shown = []
    for name, (old, new) in outcome.changes.items():
        if name.endswith(ANALYSIS_FIELD):
            shown.append(name)
        else:
            shown.append(f"{name}={new}" + (f" (was {old})" if old is not None else ""))
    return ", ".join(shown)


def tag_line(outcome: TagOutcome) -> str:
    """``path: written TCON=Rock; Metal, ...``, ``would write ...``, ``unchanged``,
    ``skipped: reason`` or ``refused: reason``."""
    if outcome.status == "written":
        what = f"written {_changes(outcome)}"
    elif outcome.status == "would_write":
        what = f"would write {_changes(outcome)}"
    elif outcome.status == "unchanged":
        what = "unchanged"
    else:
        what = f"{outcome.status}: {outcome.message}"
    return f"{outcome.path}: {what}"
