"""A real Celery worker of this project, with YouTube's network replaced (see youtube_replay).

Run as ``python tests/support/replay_worker.py [celery worker options]``.
"""
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]

import youtube_replay  # noqa: E402

youtube_replay.install()

from worker import app  # noqa: E402

if __name__ == "__main__":
    app.worker_main(["worker", *sys.argv[1:]])
