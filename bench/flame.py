"""Summarise a py-spy collapsed-stack file: where the server's samples went.

.venv/bin/python -m bench.flame bench/results/livefeed-connect-1000.txt [--top 25] [--grep hub.py]
"""

import argparse
import re
from collections import Counter

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^)]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "lib/python3.12/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarise(path: str, top: int, grep: str = "") -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    with open(path, encoding="utf-8") as lines_in:
        rows = lines_in.read().splitlines()
    for line in rows:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_short(frame) for frame in stack.split(";")]
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [f"{total} samples"]
    for title, counter in (("inclusive", inclusive), ("self", own)):
        lines.append(f"-- top {top} {title} --")
        picked = [(frame, n) for frame, n in counter.most_common() if grep in frame][:top]
        lines.extend(f"{100 * n / total:5.1f}%  {frame}" for frame, n in picked)
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--grep", default="")
    args = parser.parse_args()
    print(summarise(args.path, args.top, args.grep))
