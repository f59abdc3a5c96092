"""Plot p99 latency and RSS per stream against N from bench.run JSON lines.

.venv/bin/python -m bench.plot bench/results.jsonl docs/performance.png
"""

import json
import statistics
import sys
from collections import defaultdict


def main(source: str, target_png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(source, encoding="utf-8") as lines:
        runs = [json.loads(line) for line in lines if line.strip()]
    grouped: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for run in runs:
        if (
            run.get("scenario") == "broadcast"
            and run.get("latency_ms")
            and not run.get("patch")
            and not run.get("servers")
        ):
            same = grouped[run["target"], run["streams"]]
            if same and same[-1].get("revision") != run.get("revision"):
                same.clear()  # a later revision measured this point again: plot that one
            same.append(run)
    # Repeated runs of one (target, N) at one revision: their median.
    series: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for (target, _streams), same in grouped.items():
        connected = int(statistics.median(run["connect_connected"] for run in same))
        p99 = statistics.median(run["latency_ms"]["p99"] for run in same)
        rss = statistics.median(run["server_rss_kb_per_stream"] for run in same)
        series[target].append((connected, p99, rss))
    figure, (latency, memory) = plt.subplots(1, 2, figsize=(10, 4))
    for target, points in sorted(series.items()):
        points.sort()
        streams = [n for n, _, _ in points]
        latency.plot(streams, [p99 / 1000 for _, p99, _ in points], "o-", label=target)
        memory.plot(streams, [rss for _, _, rss in points], "o-", label=target)
    latency.axhline(0.25, color="grey", linestyle="--", label="target 250 ms")
    memory.axhline(32, color="grey", linestyle="--", label="target 32 KB")
    latency.set(xlabel="open streams", ylabel="broadcast p99 latency (s)", title="p99, 20 events at 50 ms")
    memory.set(xlabel="open streams", ylabel="server RSS per stream (KB, log)", title="memory per stream", yscale="log")
    for axes in (latency, memory):
        axes.legend()
        axes.grid(alpha=0.3)
    figure.suptitle("One server process on a 2-core machine, newest run of each point (see docs/performance.md)")
    figure.tight_layout()
    figure.savefig(target_png, dpi=90)


if __name__ == "__main__":
    main(*sys.argv[1:3])
