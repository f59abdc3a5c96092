"""What a server process costs, read from /proc (Linux): CPU, RSS, threads, DB connections."""

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds of pid and its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)


def status(pid: int) -> dict[str, int]:
    """Return RSS in KiB and the OS thread count of pid."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "Threads"}:
            values[key] = int(value.split()[0])
    return {"rss_kb": values["VmRSS"], "threads": values["Threads"]}


def open_files(pid: int, path: str) -> int:
    """Return how many of pid's descriptors have path open (SQLite connections)."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == path:
                count += 1
        except OSError:
            continue
    return count


def machine_busy() -> tuple[float, float]:
    """Return (busy, total) CPU jiffies of the whole machine since boot (/proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)
