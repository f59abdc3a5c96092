"""The scenarios: each returns a dict of measurements that bench.run prints as one JSON line."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator

from bench.harness import Harness, hear, tell

BURST = 20  # events in the broadcast burst
INTERVAL = 0.05  # seconds between them
NOTIFY_INTERVAL = 0.02  # seconds between notify() calls: one at a time, as a quiet site sends them


def connect(h: Harness) -> dict:
    """Open every stream; return the connect measurements."""
    h.start_profile(f"{h.target.name}-connect-{h.args.streams}")
    before = h.snapshot()
    replies = h.command("connect", resume=False, concurrency=h.args.concurrency, timeout=h.args.timeout)
    after = h.snapshot()
    h.stop_profile()
    stacks = None
    if _connected(replies) < h.args.streams // 2:
        # Most connects failed: keep the server's stacks to see where it waits.
        stacks = h.dump_stacks(f"{h.target.name}-connect-{h.args.streams}")
    time.sleep(0.5)  # let the server settle before counting what it holds
    held = h.snapshot()
    return {
        **({"server_stacks": stacks} if stacks else {}),
        **_connect_summary(replies, before, after),
        "server_rss_kb_per_stream": _per(held["rss_kb"] - before["rss_kb"], _connected(replies)),
        "server_rss_mb": round(held["rss_kb"] / 1024, 1),
        "server_threads_before": before["threads"],
        "server_threads": held["threads"],
        "server_tasks": held["tasks"],
        **(
            {"thread_hops_per_stream": _per(after["hops"] - before["hops"], _connected(replies))}
            if after["hops"]
            else {}
        ),
        "db_connections": held["db_connections"],
    }


def _connected(replies: list[dict]) -> int:
    return sum(reply["statuses"].get("200", 0) for reply in replies)


def _connect_summary(replies: list[dict], before: dict, after: dict, prefix: str = "connect") -> dict:
    connected = _connected(replies)
    statuses: dict[str, int] = {}
    for reply in replies:
        for status, count in reply["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    seconds = max(reply["seconds"] for reply in replies)
    return {
        f"{prefix}_connected": connected,
        f"{prefix}_failed": sum(statuses.values()) - connected,
        f"{prefix}_statuses": statuses,
        f"{prefix}_seconds": round(seconds, 3),
        f"{prefix}_rate_per_s": round(connected / seconds, 1) if seconds else None,
        f"{prefix}_server_cpu_ms_per_stream": _per((after["cpu"] - before["cpu"]) * 1000, connected, 3),
        # SQL statements the server ran meanwhile, over the streams opened (Django targets only).
        f"{prefix}_queries_per_stream": (
            _per(after["queries"] - before["queries"], connected) if after["queries"] is not None else None
        ),
        **{f"{prefix}_{key}": value for key, value in _gc_share(before, after).items()},
        # Per client: time from connect to the status line, 10th/50th/90th percentile.
        f"{prefix}_first_byte_ms": [reply["first_byte_ms"] for reply in replies],
    }


def _per(value: float, count: int, digits: int = 2) -> float | None:
    return round(value / count, digits) if count else None


def _paced(items: list, interval: float) -> Iterator:
    """Yield items interval apart from the first; one that is late goes at once."""
    start = time.monotonic()
    for number, item in enumerate(items):
        pause = start + number * interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        yield item


def _publish(h: Harness, channel: str, seqs: list[int], interval: float) -> float:
    """Publish one bench event per seq, interval apart; return the seconds it took."""
    start = time.monotonic()
    for seq in _paced(seqs, interval):
        h.target.publish(channel, {"seq": seq, "t": time.monotonic()})
    return time.monotonic() - start


def _collect(h: Harness) -> dict:
    replies = h.command("collect", timeout=h.args.timeout)
    latencies = sorted(value for reply in replies for value in reply["latencies"])
    expected = sum(reply["expected"] for reply in replies)
    delivered = sum(reply["delivered"] for reply in replies)
    done = [reply["done_max"] for reply in replies if reply["done_max"] is not None]
    return {
        "expected": expected,
        "delivered": delivered,
        "lost": expected - delivered,
        "duplicated": sum(reply["duplicates"] for reply in replies),
        "misrouted": sum(reply["unexpected"] for reply in replies),
        "latency_ms": _percentiles(latencies),
        "all_served_s": round(max(done), 3) if len(done) == len(replies) else None,
        "other_events": _merge(reply["other_events"] for reply in replies),
    }


def _merge(dicts) -> dict:
    merged: dict[str, int] = {}
    for one in dicts:
        for key, value in one.items():
            merged[key] = merged.get(key, 0) + value
    return merged


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": values[-1]}


def _delivery_cost(before: dict, after: dict, delivered: int) -> dict:
    return {
        "server_cpu_us_per_delivery": _per((after["cpu"] - before["cpu"]) * 1e6, delivered, 1),
        "server_cpu_pct_during": round(100 * (after["cpu"] - before["cpu"]) / (after["t"] - before["t"]), 1),
        **_gc_share(before, after),
    }


def _gc_share(before: dict, after: dict) -> dict:
    """The part of the server's CPU spent in Python's cyclic garbage collector."""
    if before.get("gc_s") is None or after.get("gc_s") is None or after["cpu"] <= before["cpu"]:
        return {}
    return {"server_gc_pct_of_cpu": round(100 * (after["gc_s"] - before["gc_s"]) / (after["cpu"] - before["cpu"]), 1)}


# Scenarios ---------------------------------------------------------------------


def idle(h: Harness) -> dict:
    """Hold N streams with heartbeats only; CPU over the window, heartbeats received."""
    h.command("stats")  # resets the heartbeat counters
    h.start_profile(f"{h.target.name}-idle-{h.args.streams}")
    before = h.snapshot()
    time.sleep(h.args.duration)
    after = h.snapshot()
    h.stop_profile()
    heartbeats = sum(reply["heartbeats"] for reply in h.command("stats"))
    return {
        "idle_seconds": h.args.duration,
        "heartbeat_s": h.args.heartbeat,
        "idle_server_cpu_pct": round(100 * (after["cpu"] - before["cpu"]) / (after["t"] - before["t"]), 2),
        "heartbeats_received": heartbeats,
        "heartbeats_per_stream": _per(heartbeats, h.args.streams),
        "idle_rss_growth_kb": after["rss_kb"] - before["rss_kb"],
        **{f"idle_{key}": value for key, value in _gc_share(before, after).items()},
    }


def broadcast(h: Harness) -> dict:
    """One broadcast event, then BURST more INTERVAL apart, to every stream."""
    channel = h.target.broadcast_channel()
    before = h.snapshot()
    h.command("expect", seqs=[0], own=False)
    _publish(h, channel, [0], 0)
    first = _collect(h)
    seqs = list(range(1, BURST + 1))
    h.command("expect", seqs=seqs, own=False)
    h.start_profile(f"{h.target.name}-broadcast-{h.args.streams}")
    publish_s = _publish(h, channel, seqs, INTERVAL)
    burst = _collect(h)
    after = h.snapshot()
    h.stop_profile()
    delivered = first["delivered"] + burst["delivered"]
    return {
        **burst,
        "expected": first["expected"] + burst["expected"],
        "delivered": delivered,
        "lost": first["lost"] + burst["lost"],
        "duplicated": first["duplicated"] + burst["duplicated"],
        "first_event_latency_ms": first["latency_ms"],
        "publish_s": round(publish_s, 3),
        **_delivery_cost(before, after, delivered),
    }


def personal(h: Harness) -> dict:
    """One event on each user's own channel, published one after another."""
    before = h.snapshot()
    h.command("expect", seqs=[], own=True)
    h.start_profile(f"{h.target.name}-personal-{h.args.streams}")
    publish_s = 0.0
    for index, (_key, pk) in enumerate(h.sessions[: h.args.streams]):
        publish_s += _publish(h, h.target.user_channel(pk), [index], 0)
    result = _collect(h)
    after = h.snapshot()
    h.stop_profile()
    return {
        **result,
        "publish_s": round(publish_s, 3),
        **_delivery_cost(before, after, result["delivered"]),
    }


def notify(h: Harness) -> dict:
    """One notify() to each user, one after another, NOTIFY_INTERVAL apart: notify() to the browser."""
    if not hasattr(h.target, "notify"):
        raise SystemExit(f"--scenario notify: {h.target.name} has no notify(); it is livefeed's")
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.in_bulk([pk for _key, pk in h.sessions[: h.args.streams]])
    before = h.snapshot()
    h.command("expect", seqs=[], own=True)
    h.start_profile(f"{h.target.name}-notify-{h.args.streams}")
    calls = []
    for index, (_key, pk) in _paced(list(enumerate(h.sessions[: h.args.streams])), NOTIFY_INTERVAL):
        called = time.monotonic()
        h.target.notify(users[pk], {"seq": index, "t": called})  # t: before the call, so its work counts
        calls.append(time.monotonic() - called)
    result = _collect(h)
    after = h.snapshot()
    h.stop_profile()
    return {
        **result,
        # What notify() itself took in the caller: the database work and the commit.
        "notify_call_ms": _percentiles(sorted(round(1000 * call, 3) for call in calls)),
        **_delivery_cost(before, after, result["delivered"]),
    }


def storm(h: Harness) -> dict:
    """Live events, every client drops, more events, then all reconnect at once with Last-Event-ID."""
    channel = h.target.broadcast_channel()
    h.command("expect", seqs=list(range(5)), own=False)
    _publish(h, channel, list(range(5)), INTERVAL)
    live = _collect(h)
    h.command("close")
    time.sleep(1)  # the server notices the disconnects
    gone = h.snapshot()
    missed = list(range(5, 5 + h.args.missed))
    _publish(h, channel, missed, 0)
    h.command("expect", seqs=missed, own=False)
    h.start_profile(f"{h.target.name}-storm-{h.args.streams}")
    before = h.snapshot()
    replies = h.command("connect", resume=True, concurrency=h.args.streams, timeout=h.args.timeout)
    after = h.snapshot()
    stacks = (
        h.dump_stacks(f"{h.target.name}-storm-{h.args.streams}") if _connected(replies) < h.args.streams // 2 else None
    )
    replay = _collect(h)
    h.stop_profile()
    return {
        **({"storm_server_stacks": stacks} if stacks else {}),
        "live_lost": live["lost"],
        "live_latency_ms": live["latency_ms"],
        "after_disconnect_threads": gone["threads"],
        "after_disconnect_tasks": gone["tasks"],
        "after_disconnect_db_connections": gone["db_connections"],
        **_connect_summary(replies, before, after, prefix="reconnect"),
        "replay_expected": replay["expected"],
        "replay_delivered": replay["delivered"],
        "lost": live["lost"] + replay["lost"],
        "duplicated": live["duplicated"] + replay["duplicated"],
        "replay_missed_per_stream": h.args.missed,
        # From the storm's first connect until every stream had every missed event.
        "replay_all_served_s": replay["all_served_s"],
        "other_events": replay["other_events"],
    }


def fleet(h: Harness) -> dict:
    """A burst through nginx to streams on every server; one server SIGKILLed halfway through it."""
    channel = h.target.broadcast_channel()
    seqs = list(range(1, BURST + 1))
    h.command("expect", seqs=seqs, own=False)
    h.command("reconnect", on=True)
    _publish(h, channel, seqs[: BURST // 2], INTERVAL)
    killed = h.kill_server()
    _publish(h, channel, seqs[BURST // 2 :], INTERVAL)
    result = _collect(h)
    reconnects = sum(reply["reconnects"] for reply in h.command("stats"))
    return {
        **result,
        "servers_killed": 1,
        "killed_server_streams": killed,
        "reconnects": reconnects,
    }


def publish(h: Harness) -> dict:
    """Concurrent publishers, each its own process, into the streams of one server: events per second."""
    publishers, count = h.args.publishers, h.args.events
    store = not h.args.ephemeral
    command = [sys.executable, "-m", "bench.publisher"]
    processes = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(publishers)
    ]
    for number, process in enumerate(processes):
        setup = {"first": number * count, "count": count, "store": store, "per_transaction": h.args.per_transaction}
        tell(process, json.dumps(setup) + "\n")
    for process in processes:
        hear(process)  # ready
    h.command("expect", seqs=list(range(publishers * count)), own=False)  # the clock starts here
    before = h.snapshot()
    for process in processes:
        tell(process, "go\n")
    reports = [hear(process) for process in processes]
    seconds = [report["seconds"] for report in reports]
    result = _collect(h)
    after = h.snapshot()
    for process in processes:
        process.wait(30)
    events = publishers * count
    return {
        **result,
        "publishers": publishers,
        "stored": store,
        **({"per_transaction": h.args.per_transaction} if h.args.per_transaction else {}),
        "events_published": events,
        "publish_s": round(max(seconds), 3),
        "published_per_s": round(events / max(seconds), 1),
        # The publishers' own CPU per publish() call: what a caller pays, whatever else runs.
        "publisher_cpu_us_per_call": round(1e6 * sum(report["cpu_s"] for report in reports) / events, 1),
        # Until every stream had every event: what a reader sees of the rate.
        "delivered_per_s": round(events / result["all_served_s"], 1) if result["all_served_s"] else None,
        **_delivery_cost(before, after, result["delivered"]),
    }


SCENARIOS = {
    "idle": idle,
    "broadcast": broadcast,
    "personal": personal,
    "notify": notify,
    "storm": storm,
    "fleet": fleet,
    "publish": publish,
}
