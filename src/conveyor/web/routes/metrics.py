"""``GET /metrics``: the store's state in Prometheus's text format (``web/metrics.py``)."""

from fastapi import Request, Response
from prometheus_client.exposition import choose_encoder

from ..context import Api, Section
from ..metrics import registry_for

#: The routes' tag in the OpenAPI document.
TAG = "metrics"

_TEXT = {"text/plain": {"schema": {"type": "string"}}}


def routes(api: Api, r: Section) -> None:
    app = api.app
    registry = registry_for(app)

    @r.get("/metrics", summary="Queues, workers and schedules for Prometheus (text format)",
           response_class=Response, responses={200: {"content": _TEXT}})  # fmt: skip
    async def metrics(request: Request) -> Response:
        """Read from the store at each scrape, whichever process serves it: every queue
        and live worker of the store. OpenMetrics when the scraper asks for it."""
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        body = await app.aio.call(encode, registry)
        return Response(body, media_type=content_type)
