"""Celery workers: ``celery -A worker worker`` starts one. See worker/tasks.py for the jobs."""
from worker.celery_app import app

__all__ = ["app"]
