"""Benchmarks of livefeed and its peers: `python -m bench.run --help` (never part of pytest)."""
