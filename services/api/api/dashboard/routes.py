"""The dashboard: a static page set served by the api, and the two summaries only it needs.

`/` is the watch list with the chart, `/models` the model page; their JavaScript talks to the
regular /v1 endpoints and to the streamer's SSE endpoint for live updates. Everything the pages
load is in the package (the charting library is vendored), so they work offline. The streamer
runs on its own port; DASHBOARD_STREAM_URL tells the pages where: unset means the page's host
on port 8081 (as `make run` starts it, and the streamer must then allow the api's origin by
CORS); an empty value means the page's own origin, for an ingress that routes /v1/stream to the
streamer; anything else is the streamer's base URL.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from api.dashboard import queries
from api.dashboard.models import ModelList, ModelPath, WatchList
from api.http.endpoints import Endpoint, Inputs, add_endpoints, json_ok
from api.settings import POOL, PREFIX, REDIS, SETTINGS
from stocktrack_common.http_errors import ApiError
from stocktrack_common.stream_names import latest_quotes_key

STATIC_DIR = Path(__file__).parent.parent / "static" / "dashboard"
# Sessions (and so "previous close") follow the US exchanges' calendar day.
MARKET_TZ = ZoneInfo("America/New_York")
SPARKLINE_WINDOW = dt.timedelta(days=1)
MODELS_SHOWN = 100


def _page(name: str) -> web.FileResponse:
    response = web.FileResponse(STATIC_DIR / name)
    response.headers["Cache-Control"] = "no-cache"
    return response


async def watch_list_page(_: web.Request) -> web.StreamResponse:
    return _page("index.html")


async def models_page(_: web.Request) -> web.StreamResponse:
    return _page("models.html")


def session_start(now: dt.datetime) -> tuple[dt.date, dt.datetime]:
    """The market-calendar day of `now` and the instant it began (midnight New York time)."""
    day = now.astimezone(MARKET_TZ).date()
    return day, dt.datetime.combine(day, dt.time(), MARKET_TZ)


async def watch_list(request: web.Request, _: Inputs) -> web.StreamResponse:
    """Every watched symbol with its newest quote, the price change is measured against, and a sparkline."""
    async with request.app[POOL].connection() as conn:
        table = await queries.active_symbols(conn)
        names = dict(table)
        symbols = list(dict.fromkeys([*request.app[SETTINGS].symbols, *names]))
        now = dt.datetime.now(dt.UTC)
        day, day_start = session_start(now)
        references = await queries.reference_prices(conn, symbols, day, day_start)
        sparks = await queries.sparklines(conn, symbols, now - SPARKLINE_WINDOW)
    cached = (
        await request.app[REDIS].hmget(latest_quotes_key(request.app[PREFIX]), symbols) if symbols else []
    )
    items = []
    for symbol, raw in zip(symbols, cached, strict=True):
        reference, kind = references.get(symbol, (None, "session_open"))
        items.append(
            {
                "symbol": symbol,
                "name": names.get(symbol),
                "last": orjson.loads(raw) if raw else None,
                "reference_price": reference,
                "reference": kind,
                "sparkline": sparks.get(symbol, []),
            }
        )
    return json_ok({"items": items})


async def models(request: web.Request, _: Inputs) -> web.StreamResponse:
    async with request.app[POOL].connection() as conn:
        items = await queries.list_models(conn, MODELS_SHOWN)
    return json_ok({"items": items})


async def equity_chart(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    """The equity-curve picture a training stored with the model (base64 PNG in its metrics)."""
    model_id = inputs.path_as(ModelPath).model_id
    async with request.app[POOL].connection() as conn:
        encoded = await queries.equity_chart_base64(conn, model_id)
    if not encoded:
        raise ApiError(404, f"no equity chart stored for model {model_id}")
    try:
        picture = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(404, f"the equity chart of model {model_id} is not valid base64") from exc
    return web.Response(body=picture, content_type="image/png", headers={"Cache-Control": "max-age=3600"})


async def page_config(request: web.Request) -> web.Response:
    """What the page's script needs to know about the deployment: where the streamer is."""
    return json_ok({"stream_url": request.app[STREAM_URL]})


STREAM_URL: web.AppKey[str | None] = web.AppKey("dashboard_stream_url")

ENDPOINTS = (
    Endpoint(
        "GET",
        "/v1/dashboard/watchlist",
        watch_list,
        "Watch list summary for the dashboard",
        "dashboard",
        response=WatchList,
        not_found=False,
        description="Each watched symbol with its newest quote, the price its change is measured against "
        "(the previous session's close when known) and recent 1-minute closes.",
    ),
    Endpoint(
        "GET",
        "/v1/models",
        models,
        "Registered models, the active one first",
        "models",
        response=ModelList,
        not_found=False,
        links={
            "equity_chart": {
                "operationId": "get_v1_models_model_id_equity.png",
                "description": "the equity-curve picture of the first model listed (has_equity_chart)",
                "parameters": {"path.model_id": "$response.body#/items/0/id"},
            }
        },
    ),
    Endpoint(
        "GET",
        "/v1/models/{model_id}/equity.png",
        equity_chart,
        "Equity-curve picture of a model",
        "models",
        path_model=ModelPath,
        media_type="image/png",
    ),
)


def add_dashboard_routes(app: web.Application, stream_url: str | None) -> None:
    """Serve the pages at / and /models, their assets under /dashboard/static, and their endpoints.

    `stream_url` is DASHBOARD_STREAM_URL (see the module docstring for what None and "" mean).
    """
    app[STREAM_URL] = stream_url
    app.router.add_get("/", watch_list_page)
    app.router.add_get("/models", models_page)
    app.router.add_get("/dashboard/config.json", page_config)
    app.router.add_static("/dashboard/static", STATIC_DIR, append_version=False)
    add_endpoints(app, *ENDPOINTS)
