"""Peer servers that bench.run can measure side by side with livefeed (`--target`)."""
