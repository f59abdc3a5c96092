"""The re-authorization sweep over N streams' grants, in-process, as one JSON line.

    .venv/bin/python -m bench.sweep --users 10000            # PostgreSQL
    .venv/bin/python -m bench.sweep --users 10000 --db sqlite

A fresh database with N users, each signed in by a session (bench.fixtures),
one grant per user as a stream opened by that session holds, then `--runs`
calls of livefeed.revocation.revoked() over all of them: what one process pays
every REAUTHORIZE_INTERVAL for N open streams. `first_ms` is the first call
after the grants were made (as connects make them); `cpu_ms_median` the later ones.
"""

import argparse
import json
import statistics
import time

from bench.fixtures import populated


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    args = parser.parse_args()
    with populated(args.db, args.users) as sessions:
        from django.contrib.auth import get_user_model

        from livefeed import revocation

        users = get_user_model().objects.in_bulk()
        grants = {grant for key, pk in sessions if (grant := revocation.grant_for(users[pk], key, [])) is not None}
        cpu_ms, revoked = [], 0
        for _ in range(args.runs):
            start = time.process_time()
            revoked += len(revocation.revoked(grants))
            cpu_ms.append(round(1000 * (time.process_time() - start), 1))
    print(
        json.dumps(
            {
                "bench": "sweep",
                "db": args.db,
                "grants": len(grants),
                "runs": args.runs,
                "first_ms": cpu_ms[0],
                "cpu_ms_median": statistics.median(cpu_ms[1:] or cpu_ms),
                "cpu_ms": cpu_ms,
                "revoked": revoked,  # none was: every grant holds
            }
        )
    )


if __name__ == "__main__":
    main()
