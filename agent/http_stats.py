"""The HTTP server's own series: connections open, evicted by reason, requests rejected by reason.

The loop thread counts; `samples()` is what the renderer exports. It is refreshed at most once
per `period` (the sampling interval) so that a scrape, which itself opens a connection, does not
change the exported values and the bytes rendered for a snapshot stay cached.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agent.metrics import MetricSpec, Sample

EVICTION_REASONS = ("idle", "slow", "capacity")
REJECTION_REASONS = ("bad_request", "header_too_large", "method", "unauthorized", "throttled")

CONNECTIONS_OPEN = MetricSpec(
    "suanli_http_connections_open",
    "gauge",
    "HTTP connections open to the agent (TLS handshakes included).",
)
CONNECTIONS_EVICTED = MetricSpec(
    "suanli_http_connections_evicted_total",
    "counter",
    "Connections the agent closed before a request completed: idle (nothing sent in time), "
    "slow (a request or response not done within its deadline), capacity (the oldest idle or "
    "slow ones, when the connection cap was reached).",
    ("reason",),
)
REQUESTS_REJECTED = MetricSpec(
    "suanli_http_requests_rejected_total",
    "counter",
    "Requests answered with an error and no data: bad_request (malformed), header_too_large, "
    "method (not GET or HEAD), unauthorized (wrong or missing basic auth), throttled (too many "
    "failed authentications: 429).",
    ("reason",),
)
HTTP_SPECS = (CONNECTIONS_OPEN, CONNECTIONS_EVICTED, REQUESTS_REJECTED)


class HttpStats:
    def __init__(self, period: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        self.open = 0
        self.evicted = dict.fromkeys(EVICTION_REASONS, 0)
        self.rejected = dict.fromkeys(REJECTION_REASONS, 0)
        self._clock = clock
        self._at = float("-inf")
        self._samples: tuple[Sample, ...] = ()

    def samples(self) -> tuple[Sample, ...]:
        now = self._clock()
        if now - self._at >= self.period:
            self._at = now
            self._samples = (
                Sample(CONNECTIONS_OPEN, (), float(self.open)),
                *(Sample(CONNECTIONS_EVICTED, (r,), float(n)) for r, n in self.evicted.items()),
                *(Sample(REQUESTS_REJECTED, (r,), float(n)) for r, n in self.rejected.items()),
            )
        return self._samples
