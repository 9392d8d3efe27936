"""`/healthz` and `/metrics`: for load balancers and Prometheus (no API key)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from api.context import Context
from api.schemas import Health

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz(context: Context) -> Health:
    return Health(status="ok", active_jobs=context.jobs.active_count())


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus(context: Context) -> PlainTextResponse:
    """Prometheus text format: jobs by kind and status, job durations, HTTP responses."""
    text = context.metrics.prometheus_text(context.jobs)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
