"""The demo's long job: a background task reporting its progress on the user's job channel.

A thread stands in for a task queue (Celery, RQ, django-tasks): what matters is
that the worker calls livefeed.publish() and the page's progress bar follows.
"""

import re
import threading
import time
from typing import Any

from django.db import connections

import livefeed

PATTERN = "job.{owner}.{id}"
STEPS = 10
STEP_SECONDS = 0.2
_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")


def authorize(user: Any, owner: str, id: str) -> bool:
    """Let only the user who started a job read its progress."""
    return user.is_authenticated and str(user.pk) == owner


def start(user: Any, job_id: str) -> str:
    """Start the demo job in the background; return its channel."""
    if not _ID.fullmatch(job_id):
        raise ValueError(f"Invalid job id {job_id!r}.")
    channel = f"job.{user.pk}.{job_id}"
    threading.Thread(target=_run, args=(user, channel, job_id), name=f"demo-{channel}", daemon=True).start()
    return channel


def _run(user: Any, channel: str, job_id: str) -> None:
    try:
        for step in range(1, STEPS + 1):
            time.sleep(STEP_SECONDS)  # the work
            livefeed.publish(channel, "progress", {"job": job_id, "percent": step * 100 // STEPS})
        livefeed.publish(channel, "done", {"job": job_id})
        # Someone who left the page still learns that the work is done.
        livefeed.notify(recipient=user, title="Your job finished", level="success", url="/demos/job/")
    finally:
        connections.close_all()  # a worker thread must not keep its connection
