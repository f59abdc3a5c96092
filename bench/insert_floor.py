"""The floor under stored publish() throughput: processes that only commit outbox rows, one per call.

    .venv/bin/python -m bench.insert_floor [--processes 8] [--rows 2000]

Each process writes its rows the way publish() does when the log is busy
(livefeed.outbox.hold in autocommit: one INSERT, one durable commit) and does
nothing else: no move, no layer send, no server, no streams. A stored publish()
from that many processes cannot go faster on this machine. Prints one JSON line.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from bench import fixtures, procstat
from bench.harness import hear, tell
from bench.run import _revision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--rows", type=int, default=2000, help="rows per process")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _work(args.rows)
    url, name = fixtures.create_database(args.db)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    env.pop("REDIS_URL", None)
    try:
        subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0", "--skip-checks"], env=env, check=True)
        command = [sys.executable, "-m", "bench.insert_floor", "--worker", "--rows", str(args.rows)]
        workers = [
            subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for _ in range(args.processes)
        ]
        for worker in workers:
            hear(worker)  # ready: Django set up, connected
        busy, total = procstat.machine_busy()
        for worker in workers:
            tell(worker, "go\n")
        reports = [hear(worker) for worker in workers]
        busy_after, total_after = procstat.machine_busy()
        for worker in workers:
            tell(worker, "count\n")  # all have finished: each counts what all committed, then exits
        committed = hear(workers[0])["committed"] - args.processes  # less the warm-ups
        for worker in workers:
            worker.wait(30)
    finally:
        fixtures.drop_database(args.db, name)
    rows = args.processes * args.rows
    seconds = max(report["seconds"] for report in reports)
    result = {
        "bench": "insert_floor",
        "revision": _revision(),
        "processes": args.processes,
        "rows": rows,
        "rows_committed": committed,
        "rows_per_s": round(rows / seconds, 1),
        "process_cpu_us_per_row": round(1e6 * sum(report["cpu_s"] for report in reports) / rows, 1),
        "machine_busy_pct": round(100 * (busy_after - busy) / max(total_after - total, 1), 1),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    print(json.dumps(result))


def _work(rows: int) -> None:
    import django

    django.setup()
    from livefeed import outbox
    from livefeed.models import OutboxEvent
    from livefeed.publishing import message_for

    using = outbox.database()
    outbox.hold([message_for("broadcast", "bench", {"seq": -1})], using)  # connected before the clock
    print('{"ready": true}', flush=True)
    sys.stdin.readline()
    started, cpu = time.monotonic(), time.process_time()
    for seq in range(rows):
        outbox.hold([message_for("broadcast", "bench", {"seq": seq, "t": time.monotonic()})], using)
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu_s": cpu}), flush=True)
    sys.stdin.readline()  # every process has finished
    print(json.dumps({"committed": OutboxEvent.objects.count()}), flush=True)


if __name__ == "__main__":
    main()
