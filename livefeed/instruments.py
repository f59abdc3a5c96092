"""The counts livefeed keeps for monitoring: no-ops until livefeed.metrics is imported.

The hot paths call these once per event or per stream, never once per reader
of an event, so without Prometheus each call is one method call that does
nothing. Importing livefeed.metrics (a site that exposes its view) puts
prometheus_client metrics in their place; nothing else imports it.
"""

from contextlib import AbstractContextManager, nullcontext
from typing import Any


class _Nothing:
    """Counts nothing: stands in for a Counter or Histogram."""

    def inc(self, amount: float = 1) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass

    def time(self) -> AbstractContextManager[None]:
        return nullcontext()

    def labels(self, *values: object) -> "_Nothing":
        return self


_NOTHING = _Nothing()

# Replaced by livefeed.metrics; the names there say what each counts.
connects: Any = _NOTHING
refusals: Any = _NOTHING  # labelled by HTTP status
published: Any = _NOTHING
delivered: Any = _NOTHING
replays: Any = _NOTHING
resets: Any = _NOTHING
recovered: Any = _NOTHING
slow_closes: Any = _NOTHING
publish_seconds: Any = _NOTHING
