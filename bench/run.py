"""Run one benchmark scenario end to end and print one JSON line.

    .venv/bin/python -m bench.run --scenario broadcast --streams 1000

Starts a private redis-server, a fresh database with N users and sessions, ONE
server process, load clients in their own processes, and publishes from this
process. See bench/README.md.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from bench import procstat
from bench.client import loop_name
from bench.harness import Harness
from bench.patches import NAMES
from bench.scenarios import SCENARIOS, connect
from bench.targets import TARGETS


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", choices=SCENARIOS, default="broadcast")
    parser.add_argument("--target", choices=TARGETS, default="livefeed")
    parser.add_argument("--streams", type=int, default=1000, help="open streams, one user each")
    parser.add_argument("--servers", type=int, default=1, help="server processes (Redis between them)")
    parser.add_argument("--clients", type=int, default=0, help="load processes (default: 1 per 2,500 streams)")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--heartbeat", type=float, default=15.0, help="server heartbeat, seconds")
    parser.add_argument("--duration", type=float, default=30.0, help="idle: seconds to watch")
    parser.add_argument("--concurrency", type=int, default=1000, help="connects in flight per client")
    parser.add_argument("--timeout", type=float, default=30.0, help="bound on each connect/collect wait")
    parser.add_argument("--missed", type=int, default=10, help="storm: events each stream misses while away")
    parser.add_argument("--publishers", type=int, default=8, help="publish: concurrent publishing processes")
    parser.add_argument("--events", type=int, default=500, help="publish: events per publisher")
    parser.add_argument("--ephemeral", action="store_true", help="publish: store=False (no event log)")
    parser.add_argument(
        "--per-transaction", type=int, default=0, help="publish: this many publish() calls per transaction (0: none)"
    )
    parser.add_argument(
        "--compare", default="", help="targets, comma-separated: the same run on each, then ratios to the first"
    )
    parser.add_argument("--patch", default="", help=f"engine experiments, comma-separated: {', '.join(NAMES)}")
    parser.add_argument("--profile", action="store_true", help="py-spy the server into bench/results/")
    parser.add_argument(
        "--profile-rate", type=int, default=1000, help="py-spy samples per second (fewer disturb a storm less)"
    )
    args = parser.parse_args(argv)
    unknown = set(filter(None, args.patch.split(","))) - set(NAMES)
    if unknown:
        parser.error(f"unknown --patch {', '.join(unknown)}; known: {', '.join(NAMES)}")
    if args.scenario == "fleet" and args.servers < 2:
        parser.error("--scenario fleet needs --servers 2 or more (one of them is killed): try --servers 4")
    if args.clients <= 0:
        args.clients = max(1, min(4, -(-args.streams // 2500)))
    args.clients = max(args.clients, args.servers)  # each client talks to one server
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if args.compare:
        return compare(argv, args.compare.split(","))
    harness = Harness(args)
    started = time.monotonic()
    result = {"target": args.target, "scenario": args.scenario, "streams": args.streams, "db": args.db}
    if args.servers > 1:
        result["servers"] = args.servers  # server_* numbers are then sums over all of them
    result["revision"] = _revision()
    if args.patch:
        result["patch"] = args.patch
    busy_before = procstat.machine_busy()
    try:
        harness.start()
        cpu = harness.client_cpu()
        result.update(connect(harness))
        result.update(SCENARIOS[args.scenario](harness))
        result["client_processes"] = args.clients
        result["client_loop"] = loop_name()
        result["client_cpu_s"] = round(harness.client_cpu() - cpu, 2)
        result["setup_s"] = round(harness.setup_seconds, 1)
    finally:
        harness.stop()
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    # Other work on the machine skews latency: say how busy it was (all cores, %).
    busy, total = (after - before for after, before in zip(procstat.machine_busy(), busy_before, strict=True))
    result["machine_busy_pct"] = round(100 * busy / total, 1) if total else None
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


# The numbers compared between targets: lower is better for all but "delivered".
_RATIOS = (
    "delivered",
    "connect_server_cpu_ms_per_stream",
    "server_cpu_us_per_delivery",
    "server_rss_kb_per_stream",
    "server_threads",
    "p99_ms",
    "idle_server_cpu_pct",
    "reconnect_server_cpu_ms_per_stream",
    "connect_queries_per_stream",
    "replay_all_served_s",
)


def compare(argv: list[str], names: list[str]) -> int:
    """Run the same scenario on each target, one after another; print every line, then ratios."""
    rest, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--compare="):
            skip = False
            continue
        skip = arg == "--compare"
        if not skip:
            rest.append(arg)
    results = []
    for name in names:
        run = subprocess.run(
            [sys.executable, "-m", "bench.run", *rest, "--target", name], capture_output=True, text=True
        )
        line = (
            run.stdout.strip().splitlines()[-1]
            if run.stdout.strip()
            else json.dumps({"target": name, "error": run.stderr[-500:]})
        )
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        results.append(json.loads(line))
    base = _flat(results[0])
    ratios = {}
    for result in results[1:]:
        other = _flat(result)
        ratios[result["target"]] = {
            key: round(other[key] / base[key], 2) for key in _RATIOS if base.get(key) and other.get(key) is not None
        }
    sys.stdout.write(json.dumps({"ratios_to": results[0]["target"], "ratios": ratios}) + "\n")
    return 0


def _flat(result: dict) -> dict:
    return {**result, "p99_ms": result.get("latency_ms", {}).get("p99")}


def _revision() -> str:
    """Return the commit the engine ran from, "+dirty" when livefeed/ had uncommitted edits."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "livefeed"], capture_output=True).returncode
    return head + ("+dirty" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())
