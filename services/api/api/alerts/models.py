"""Alert rules over HTTP: what a client sends to register one and what it gets back.

The condition shapes are the contract with the alerts worker and live once, in
`stocktrack_common.alert_conditions`; `extra="forbid"` keeps typos out of every body here too.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.http.params import SYMBOL_PARAM_PATTERN, Printable
from stocktrack_common.alert_conditions import Condition


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# What the validator below accepts, stated in the schema: http(s), a host, printable characters.
URL_PATTERN = r"^[hH][tT][tT][pP][sS]?://(\[[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*\]|[^\x00-\x20\x7f/?#@:\[\]\\]+)(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?([/?#][^\x00-\x20\x7f]*)?$"


class Target(_Strict):
    type: Literal["webhook", "slack"]
    url: str = Field(pattern=URL_PATTERN, max_length=2000, description="http(s) URL the alert is POSTed to")
    secret: Printable | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="webhook only: HMAC-SHA256 signing key; generated when omitted",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http or https URL with a host")
        _ = parts.port  # raises ValueError (a 422) for a port outside 0-65535
        return value


class AlertRuleCreate(_Strict):
    symbol: str = Field(pattern=SYMBOL_PARAM_PATTERN)
    name: Printable | None = Field(default=None, max_length=200)
    condition: Condition
    target: Target


class AlertRulePatch(_Strict):
    enabled: bool | None = None
    name: Printable | None = Field(default=None, max_length=200)


class AlertRulePath(_Strict):
    rule_id: str = Field(pattern=r"^alr_[0-9a-f]{16}$")


class AlertListQuery(_Strict):
    symbol: str | None = Field(default=None, pattern=SYMBOL_PARAM_PATTERN)


class DeliveriesQuery(_Strict):
    status: Literal["pending", "delivered", "dead"] | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class TargetOut(BaseModel):
    type: Literal["webhook", "slack"]
    url: str = Field(description="scheme and host only: the full URL may carry credentials")


class AlertRuleOut(BaseModel):
    id: str
    symbol: str
    name: str | None
    condition: dict[str, Any]
    target: TargetOut
    enabled: bool
    created_by: str | None
    created_at: int = Field(description="epoch milliseconds")


class AlertRuleCreated(AlertRuleOut):
    secret: str | None = Field(description="webhook signing secret; shown only in this response")


class AlertRuleList(BaseModel):
    items: list[AlertRuleOut]


class DeliveryOut(BaseModel):
    delivery_id: str
    event_key: str
    status: Literal["pending", "delivered", "dead"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: int
    finished_at: int | None
    payload: dict[str, Any]


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
