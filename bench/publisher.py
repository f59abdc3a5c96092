"""One publishing process of the publish scenario: waits for "go", publishes its share, reports.

Driven by bench.scenarios.publish over stdin/stdout. Django starts before "go",
so the rate counts publish() calls only. Stored events go through the whole
path an application's publish() takes (log row, ordering lock, layer send).
"""

import cProfile
import json
import os
import sys
import time
from contextlib import nullcontext


def main() -> None:
    import django

    django.setup()
    from django.db import transaction

    import livefeed
    from livefeed.bridge import sender_loop

    setup = json.loads(sys.stdin.readline())
    first, count, store = setup["first"], setup["count"], setup["store"]
    sender_loop()  # the private loop and its Redis connection exist before the clock starts
    livefeed.publish("bench-warm-up", "bench", {"seq": -1, "t": 0}, store=store)
    sys.stdout.write('{"ready": true}\n')
    sys.stdout.flush()
    sys.stdin.readline()  # go
    profile = cProfile.Profile() if os.environ.get("BENCH_PROFILE_PUBLISHER") and first == 0 else None
    started, cpu = time.monotonic(), time.process_time()
    if profile:
        profile.enable()
    per = setup.get("per_transaction", 0)
    for start in range(first, first + count, per or 1):
        # per_transaction > 0: that many publishes in one transaction, as a view that publishes several does.
        with transaction.atomic() if per else nullcontext():
            for seq in range(start, min(start + (per or 1), first + count)):
                livefeed.publish("broadcast", "bench", {"seq": seq, "t": time.monotonic()}, store=store)
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    if profile:  # the first publisher's calls, for python -m pstats
        profile.disable()
        profile.dump_stats(os.environ["BENCH_PROFILE_PUBLISHER"])
    sys.stdout.write(json.dumps({"seconds": seconds, "cpu_s": cpu}) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
