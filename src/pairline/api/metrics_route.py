"""`GET /metrics`: the node's Prometheus metrics (see `pairline.metrics`).

Open like `/healthz`: keep it off the public internet at the proxy, as is usual.
"""

from __future__ import annotations

from collections import Counter

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pairline import metrics
from pairline.api.common import runtime_of
from pairline.errors import StoreUnavailable

log = structlog.get_logger("pairline.metrics")

TRANSPORTS = ("websocket", "sse")


async def metrics_endpoint(request: Request) -> Response:
    runtime = runtime_of(request)
    try:
        population = await runtime.store.population()
    except StoreUnavailable as exc:  # the rest is still worth scraping
        log.warning("population_unavailable", error=str(exc))
    else:
        for state, count in population.items():
            metrics.USERS.labels(state).set(count)
    connected = Counter(
        getattr(session.conn, "transport_name", "websocket")
        for session in runtime.registry.sessions()
        if session.conn is not None
    )
    for transport in TRANSPORTS:
        metrics.CONNECTED.labels(transport).set(connected[transport])
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


ROUTES = [Route("/metrics", metrics_endpoint, methods=["GET"])]
