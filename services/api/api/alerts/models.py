"""Alert rules over HTTP: what a client sends to register one and what it gets back.

The condition shapes are the contract with the alerts worker and live once, in
`stocktrack_common.alert_conditions`; `extra="forbid"` keeps typos out of every body here too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.http.params import SYMBOL_PARAM_PATTERN, Printable
from stocktrack_common.alert_conditions import Condition


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _ipv6_pattern() -> str:
    """Every text form of an IPv6 address (RFC 4291 2.2) and nothing else, as one expression.

    A bracketed host is parsed as an IPv6 address, so the schema spells out exactly which ones
    parse: eight groups, or fewer around one `::`, the last two groups optionally as IPv4.
    """
    group = "[0-9A-Fa-f]{1,4}"
    octet = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    ipv4 = rf"{octet}(\.{octet}){{3}}"

    def groups(count: int) -> str:  # `count` groups, each followed by a colon
        return f"({group}:){{{count}}}" if count else ""

    forms = [f"{groups(7)}{group}", f"{groups(6)}{ipv4}"]
    for left in range(8):  # groups before `::`; it stands for at least one group
        head = f"{groups(left - 1)}{group}" if left else ""
        forms.append(f"{head}::(({group}:){{0,{6 - left}}}{group})?" if left < 7 else f"{head}::")
        if left <= 5:
            forms.append(f"{head}::({group}:){{0,{5 - left}}}{ipv4}")
    return "(" + "|".join(f"({form})" for form in forms) + ")"


# What the validator below accepts, stated in the schema: http(s), a host (a name, or an IPv6
# address in brackets), printable characters. Whether the host is public (see
# stocktrack_common.webhook_targets) depends on DNS, which no schema can state: such a target
# is refused with 422 at creation.
URL_PATTERN = (
    r"^[hH][tT][tT][pP][sS]?://(\["
    + _ipv6_pattern()
    + r"\]|[^\x00-\x20\x7f/?#@:\[\]\\]+)(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?([/?#][^\x00-\x20\x7f]*)?$"
)


class _TargetUrl(_Strict):
    url: str = Field(
        pattern=URL_PATTERN,
        max_length=2000,
        description="http(s) URL the alert is POSTed to; a host that is, or resolves only to, a "
        "non-public address is refused with 422 (unless ALERTS_ALLOW_PRIVATE_TARGETS)",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http or https URL with a host")
        _ = parts.port  # raises ValueError (a 422) for a port outside 0-65535
        return value


class WebhookTarget(_TargetUrl):
    type: Literal["webhook"]
    secret: Printable | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="HMAC-SHA256 signing key; generated when omitted",
    )


class SlackTarget(_TargetUrl):
    """A Slack incoming webhook: its URL is the credential, so there is no signing secret (a
    separate model, so the schema itself says a secret is not allowed here)."""

    type: Literal["slack"]


Target = Annotated[WebhookTarget | SlackTarget, Field(discriminator="type")]


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
