"""Operations routes: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ticker.http import json_response


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    problems = await request.app.state.readiness()
    if problems:
        return json_response({"status": "not ready", "problems": problems}, 503, {"Retry-After": "2"})
    return json_response({"status": "ready"})


async def metrics(request: Request) -> Response:
    body, content_type = request.app.state.hub.metrics.render()
    return Response(body, headers={"Content-Type": content_type})


async def openapi(request: Request) -> Response:
    """The document is built on first request: its text patterns take a moment to derive."""
    return JSONResponse(request.app.state.openapi())


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
