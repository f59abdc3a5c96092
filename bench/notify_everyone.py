"""notify(everyone=True) to N users: the database work of one broadcast notification, as one JSON line.

    .venv/bin/python -m bench.notify_everyone --users 10000            # PostgreSQL
    .venv/bin/python -m bench.notify_everyone --users 10000 --db sqlite
    .venv/bin/python -m bench.notify_everyone --audience user --users 50 --runs 500

`--audience user` sends each run to one user instead (users in turn), the send a
page makes for one reader: `cpu_ms_median` is the calling thread's CPU per call.

A fresh database with N users (bench.fixtures), the in-memory channel layer (no
Redis: this times the database, not the send), then `--runs` notifications to
everyone. `db_s` sums the time of every SQL statement notify() ran (fan-out,
notification, event log); `total_s` is the wall time of the call, commit and
publish included. Target (issue 3): well under 1 s of database work at 10,000 users.
"""

import argparse
import json
import statistics
import time
from typing import Any

from bench.fixtures import populated


class _QueryTimer:
    """A connection.execute_wrapper that adds up statement time and count."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.queries = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: dict) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start
            self.queries += 1


def measure(runs: int, users: list[int] | None = None) -> list[dict[str, float]]:
    """Send `runs` notifications to everyone, or each to one of users in turn; return each one's timings."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    import livefeed

    readers = list(get_user_model().objects.filter(pk__in=users)) if users else []
    results = []
    for number in range(runs):
        audience: dict[str, Any] = {"recipient": readers[number % len(readers)]} if readers else {"everyone": True}
        timer = _QueryTimer()
        with connection.execute_wrapper(timer):
            start, cpu = time.perf_counter(), time.thread_time()
            sent = livefeed.notify(**audience, title=f"Maintenance {number}", body="Tonight at 22:00")
            total, cpu = time.perf_counter() - start, time.thread_time() - cpu
        rows = sent.deliveries.count()
        results.append({"total_s": total, "cpu_s": cpu, "db_s": timer.seconds, "queries": timer.queries, "rows": rows})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.notify_everyone", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--audience", choices=["everyone", "user"], default="everyone")
    args = parser.parse_args()
    with populated(args.db, args.users) as signed_in:  # the in-memory layer: this times the database, not the send
        users = [pk for _, pk in signed_in] if args.audience == "user" else None
        if users:
            measure(min(args.runs, 20), users)  # warm: the first calls pay for imports and caches
        results = measure(args.runs, users)
    summary = {
        "bench": "notify_everyone",
        "audience": args.audience,
        "db": args.db,
        "users": args.users,
        "runs": args.runs,
        "rows_per_run": results[0]["rows"],
        "queries_per_run": results[0]["queries"],
        "db_s_median": round(statistics.median(r["db_s"] for r in results), 4),
        "db_s_max": round(max(r["db_s"] for r in results), 4),
        "total_s_median": round(statistics.median(r["total_s"] for r in results), 4),
        "total_ms_median": round(1000 * statistics.median(r["total_s"] for r in results), 2),
        "cpu_ms_median": round(1000 * statistics.median(r["cpu_s"] for r in results), 2),
        "target_db_s": 1.0,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
