"""The demo's email job: livefeed_deliver in a thread of the server, so `make demo` needs no cron.

A deployment runs `manage.py livefeed_deliver` from cron or a systemd timer
instead (docs/deploy.md#email-digests); overlapping runs are safe either way.
"""

import logging
import os
import sys
import threading
import time

from django.db import connections

logger = logging.getLogger("livefeed")
# Seconds between runs (the demo's EMAIL_DELAY is 60 s).
INTERVAL = float(os.environ.get("DEMO_EMAIL_INTERVAL", 15))


def start_if_serving() -> None:
    """Start the job when this process serves `runserver` (its autoreloading child, not the watcher)."""
    serving = "runserver" in sys.argv[1:2] and (os.environ.get("RUN_MAIN") == "true" or "--noreload" in sys.argv)
    if serving:
        threading.Thread(target=_run, name="demo-email-digests", daemon=True).start()


def _run() -> None:
    from livefeed.digest import deliver

    while True:
        time.sleep(INTERVAL)
        try:
            deliver()
        except Exception:
            logger.exception("The demo's email job failed; trying again in %s s", INTERVAL)
        finally:
            connections.close_all()  # a thread must not keep its connection
