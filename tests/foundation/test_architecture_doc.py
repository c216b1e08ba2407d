"""docs/architecture.md keeps up with the code: every contract it must list is there, and every
module it names exists, so a newcomer following it never lands on a file that has moved."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from aiohttp import web

from api.app import create_app as create_api
from api.settings import ApiSettings
from stocktrack_common import stream_names
from stocktrack_common.alert_conditions import AnyCondition
from stocktrack_common.messages import (
    MAX_TICK_SIZE,
    PRICE_MAX_INTEGER_DIGITS,
    PRICE_MAX_SCALE,
    Signal,
    Tick,
    TradeAmendment,
)
from streamer.app import create_app as create_streamer
from streamer.settings import StreamerSettings

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
CODE_ROOTS = [ROOT / "libs" / "common", *sorted((ROOT / "services").iterdir())]


def test_every_table_of_the_migrations_is_described() -> None:
    sql = "\n".join(p.read_text() for p in (ROOT / "libs/common/stocktrack_common/migrations").glob("*.sql"))
    tables = set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", sql)) | {"schema_migrations"}
    assert tables and not {t for t in tables if f"| `{t}` |" not in DOC}


def test_every_stream_key_and_group_is_described() -> None:
    names = [
        stream_names.tick_stream("{p}", 0).replace("{0}", "{k}"),
        stream_names.signals_stream("{p}"),
        stream_names.amendments_stream("{p}"),
        stream_names.dead_stream("{p}"),
        stream_names.models_stream("{p}"),
        stream_names.latest_quotes_key("{p}"),
    ]
    groups = [value for name, value in vars(stream_names).items() if name.endswith("_GROUP")]
    assert len(groups) == 3
    assert not [n for n in names if f"`{n}`" not in DOC]
    assert not [g for g in groups if f"`{g}`" not in DOC]


def test_every_message_field_and_condition_type_is_described() -> None:
    fields = set(Tick.model_fields) | set(Signal.model_fields) | set(TradeAmendment.model_fields)
    assert not {f for f in fields if f"`{f}`" not in DOC}
    bounds = [
        f"{MAX_TICK_SIZE:,}",
        f"10^{PRICE_MAX_INTEGER_DIGITS}",
        f"{PRICE_MAX_SCALE} digits after the point",
    ]
    assert not [b for b in bounds if b not in DOC]
    kinds = {typing.get_args(c.model_fields["type"].annotation)[0] for c in typing.get_args(AnyCondition)}
    assert kinds == {"signal", "price_cross", "rsi_cross"}
    assert not {k for k in kinds if f"| `{k}` |" not in DOC}


def _paths(app: web.Application) -> set[str]:
    return {r.resource.canonical for r in app.router.routes() if r.resource is not None}


def test_every_http_endpoint_is_described() -> None:
    paths = _paths(create_api(ApiSettings())) | _paths(create_streamer(StreamerSettings()))
    public = {p for p in paths if p.startswith("/v1/")}
    assert len(public) > 15
    assert not {p for p in public if p not in DOC}


def _exists(name: str) -> bool:
    if name.startswith("tests/"):
        return (ROOT / name).is_file()
    return any(next(root.glob(f"**/{name}"), None) is not None for root in CODE_ROOTS)


def test_every_module_the_document_names_exists() -> None:
    named = set(re.findall(r"`((?:[\w/]+/)?\w+\.py)`", DOC))
    assert len(named) > 20
    missing = {name for name in named if not _exists(name)}
    assert not missing, f"docs/architecture.md names modules that do not exist: {sorted(missing)}"
