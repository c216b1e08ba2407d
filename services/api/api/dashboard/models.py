"""Response bodies of the dashboard's endpoints (documented in the OpenAPI document like the rest)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.market.models import Quote


class WatchItem(BaseModel):
    symbol: str
    name: str | None
    last: Quote | None = Field(description="newest quote, null before the first tick")
    reference_price: str | None = Field(description="what the change is measured against")
    reference: Literal["previous_close", "session_open"] = Field(
        description="previous_close when an earlier session's close is known, else the session's first price"
    )
    sparkline: list[float] = Field(description="recent 1-minute closes, oldest first")


class WatchList(BaseModel):
    items: list[WatchItem]


class ModelSummary(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    id: str
    created_at: int = Field(description="epoch milliseconds")
    algorithm: str
    train_from: str | None
    train_to: str | None
    active: bool
    metrics: dict[str, Any] = Field(description="evaluation vs baselines and backtest, as stored by training")
    has_equity_chart: bool = Field(description="GET /v1/models/{model_id}/equity.png serves the picture")


class ModelList(BaseModel):
    items: list[ModelSummary]


class ModelPath(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_id: str = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
