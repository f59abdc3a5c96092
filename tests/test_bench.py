"""The benchmark's documented command (docs/performance.md), small: every scenario runs, loses nothing.

The numbers themselves are for bench/, never asserted here; what is asserted is
what must hold at any size: every stream opens, every event arrives once, to
its own user, and the server's threads stay flat.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
STREAMS = 20


def bench(*args: str, module: str = "bench.run") -> dict:
    """Run a bench command on this suite's kind of database; return its JSON line."""
    db = "postgres" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "sqlite"
    command = [sys.executable, "-m", module, "--db", db, *args]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def assert_every_stream_opened(result: dict) -> None:
    assert result["connect_connected"] == STREAMS, result
    assert result["server_threads"] == result["server_threads_before"], result  # no thread per stream


@pytest.mark.parametrize("scenario", ["broadcast", "personal", "notify"])
def test_every_event_reaches_every_stream_once(scenario):
    result = bench("--streams", str(STREAMS), "--scenario", scenario)
    assert_every_stream_opened(result)
    assert result["expected"] > 0
    assert (result["delivered"], result["lost"], result["duplicated"], result["misrouted"]) == (
        result["expected"],
        0,
        0,
        0,
    ), result


@pytest.mark.parametrize("target", ["django-floor", "django-floor-bare"])
def test_the_floor_of_the_stack_delivers_every_event_once(target):
    """The bare stack that docs/performance.md measures livefeed against carries the same load."""
    result = bench("--streams", str(STREAMS), "--scenario", "personal", "--target", target)
    assert result["connect_connected"] == STREAMS, result  # a thread each: Django's own handler
    assert result["connect_queries_per_stream"] == (0 if target.endswith("bare") else 2), result
    assert result["expected"] > 0
    assert (result["delivered"], result["lost"], result["duplicated"], result["misrouted"]) == (
        result["expected"],
        0,
        0,
        0,
    ), result


def test_a_reconnect_storm_replays_what_every_stream_missed():
    result = bench("--streams", str(STREAMS), "--scenario", "storm")
    assert_every_stream_opened(result)
    assert result["reconnect_connected"] == STREAMS, result
    assert result["replay_delivered"] == result["replay_expected"] > 0, result
    assert (result["lost"], result["duplicated"], result["live_lost"]) == (0, 0, 0), result


def test_idle_streams_get_their_heartbeats():
    result = bench("--streams", str(STREAMS), "--scenario", "idle", "--heartbeat", "1", "--duration", "3")
    assert_every_stream_opened(result)
    assert result["heartbeats_per_stream"] >= 2, result


def test_sweep_bench_checks_every_grant_and_revokes_none():
    result = bench("--users", "30", "--runs", "2", module="bench.sweep")
    assert (result["grants"], result["revoked"]) == (30, 0), result


def test_notify_everyone_bench_sends_one_notification_to_every_user():
    result = bench("--users", "30", "--runs", "1", module="bench.notify_everyone")
    assert result["rows_per_run"] == 30, result  # one delivery row per user, in one statement


def test_notify_bench_to_one_user_sends_each_run_to_one_reader():
    result = bench("--users", "3", "--runs", "4", "--audience", "user", module="bench.notify_everyone")
    assert (result["audience"], result["rows_per_run"]) == ("user", 1), result


def test_a_fleet_behind_nginx_loses_nothing_when_a_server_is_killed():
    result = bench("--streams", str(STREAMS), "--scenario", "fleet", "--servers", "3")
    assert result["connect_connected"] == STREAMS, result
    # The killed server's streams came back through nginx to the others and replayed.
    assert result["reconnects"] == result["killed_server_streams"] > 0, result
    assert (result["delivered"], result["lost"], result["duplicated"]) == (result["expected"], 0, 0), result


@pytest.mark.parametrize("kind", ["stored", "ephemeral", "per-transaction"])
def test_concurrent_publishers_reach_every_stream_once(kind):
    flags = {"stored": [], "ephemeral": ["--ephemeral"], "per-transaction": ["--per-transaction", "7"]}[kind]
    result = bench("--streams", "5", "--scenario", "publish", "--publishers", "3", "--events", "20", *flags)
    assert result["events_published"] == 60, result
    assert (result["delivered"], result["lost"], result["duplicated"]) == (result["expected"], 0, 0), result


def test_the_insert_floor_commits_every_row_it_counts():
    result = bench("--processes", "3", "--rows", "40", module="bench.insert_floor")
    assert (result["rows"], result["rows_committed"]) == (120, 120), result
