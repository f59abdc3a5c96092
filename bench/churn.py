"""Churn soak: N connect/disconnect cycles through the ASGI app in-process; is anything left behind?

    .venv/bin/python -m bench.churn --cycles 10000

Half the cycles disconnect before the stream subscribed (an abrupt close), half
after. Prints one JSON line: hub state, asyncio tasks, OS threads and DB
connections after the run against before it, and RSS after the first 10 % of
cycles against the end (memory flat = the difference stays near zero).
"""

import argparse
import asyncio
import gc
import json
import os
import tempfile
import threading
import time


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=10, help="streams open at once")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="livefeed-churn-")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="project.settings",
        DJANGO_ALLOWED_HOSTS="testserver",
        DATABASE_URL=os.environ.get("DATABASE_URL") or f"sqlite:///{workdir}/churn.sqlite3",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connections

    settings.LIVEFEED = {**settings.LIVEFEED, "MAX_STREAMS_PER_USER": args.batch * 2}
    call_command("migrate", verbosity=0)
    from tests.streams import Stream, run, session_for

    user, _ = User.objects.get_or_create(username="churn")
    key = session_for(user)
    connections.close_all()

    async def soak() -> dict:
        from livefeed import hub

        warm = await (await Stream(session_key=key).open()).connected()
        await warm.close()
        current = hub.get_hub()
        before = {"tasks": len(asyncio.all_tasks()), "threads": threading.active_count()}
        started, rss_early = time.monotonic(), None
        for cycle in range(0, args.cycles, args.batch):
            batch = [Stream(session_key=key) for _ in range(args.batch)]
            for stream in batch:
                await stream.open()
            for n, stream in enumerate(batch):
                if n % 2:
                    await stream.connected()
                await stream.close()
            if rss_early is None and cycle >= args.cycles // 10:
                gc.collect()
                rss_early = _rss_kb()
        gc.collect()
        await current.leave_idle(time.monotonic() + hub.LINGER)  # the groups nobody reads, as the hub leaves them
        return {
            "cycles": args.cycles,
            "seconds": round(time.monotonic() - started, 1),
            "left_streams": len(current.streams),
            "left_readers": len(current.readers),
            "left_per_user": len(current.per_user),
            "left_group_members": sum(current.channel_name in m for m in current.layer.groups.values()),
            "new_tasks": len(asyncio.all_tasks()) - before["tasks"],
            "new_threads": threading.active_count() - before["threads"],
            "rss_kb_after_10pct": rss_early,
            "rss_kb_end": _rss_kb(),
            "rss_growth_kb_last_90pct": _rss_kb() - (rss_early or 0),
        }

    result = run(soak)
    result["db_connections_open"] = sum(1 for c in connections.all(initialized_only=True) if c.connection)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
