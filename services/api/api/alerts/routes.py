"""Alert rules: register, list, pause and remove them; inspect their deliveries.

Every route needs the write scope, reads included: a rule holds its webhook URL, and a Slack
incoming-webhook URL is itself a credential. The webhook signing secret is generated here
(unless the client brings one) and shown once, in the response that creates the rule.
"""

from __future__ import annotations

import secrets

from aiohttp import web

from api.access.auth import PRINCIPAL
from api.alerts import queries
from api.alerts.models import (
    AlertListQuery,
    AlertRuleCreate,
    AlertRuleCreated,
    AlertRuleList,
    AlertRuleOut,
    AlertRulePatch,
    AlertRulePath,
    DeliveriesQuery,
    DeliveryList,
    WebhookTarget,
)
from api.http.endpoints import Endpoint, Inputs, json_ok
from api.market.queries import symbol_known
from api.settings import POOL, SETTINGS
from stocktrack_common.http_errors import ApiError
from stocktrack_common.webhook_targets import creation_refusal


def new_rule_id() -> str:
    return f"alr_{secrets.token_hex(8)}"


async def create_rule(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    body = inputs.body_as(AlertRuleCreate)
    secret = None
    if isinstance(body.target, WebhookTarget):
        secret = body.target.secret or secrets.token_urlsafe(32)
    settings = request.app[SETTINGS]
    if not settings.alerts_allow_private_targets:
        refused = await creation_refusal(body.target.url)
        if refused is not None:
            raise ApiError(
                422,
                f"{refused}: alerts are never delivered to private networks",
                details=[{"loc": ["body", "target", "url"], "msg": refused}],
            )
    symbol = body.symbol.upper()
    principal = request.get(PRINCIPAL)
    async with request.app[POOL].connection() as conn:
        if symbol not in settings.symbols and not await symbol_known(conn, symbol):
            raise ApiError(
                422,
                f"unknown symbol {symbol}: add it to the watch list first (POST /v1/symbols)",
                details=[{"loc": ["body", "symbol"], "msg": "unknown symbol"}],
            )
        row = await queries.insert_rule(
            conn,
            rule_id=new_rule_id(),
            symbol=symbol,
            name=body.name,
            condition=body.condition.model_dump(mode="json"),
            target_type=body.target.type,
            target_url=body.target.url,
            secret=secret,
            created_by=principal.key_id if principal is not None else None,
        )
    return json_ok({**queries.rule_json(row), "secret": secret}, status=201)


async def list_rules(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    query = inputs.query_as(AlertListQuery)
    async with request.app[POOL].connection() as conn:
        rows = await queries.list_rules(conn, query.symbol.upper() if query.symbol else None)
    return json_ok({"items": [queries.rule_json(r) for r in rows]})


async def get_rule(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    rule_id = inputs.path_as(AlertRulePath).rule_id
    async with request.app[POOL].connection() as conn:
        row = await queries.get_rule(conn, rule_id)
    if row is None:
        raise ApiError(404, f"no alert rule {rule_id}")
    return json_ok(queries.rule_json(row))


async def patch_rule(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    rule_id = inputs.path_as(AlertRulePath).rule_id
    body = inputs.body_as(AlertRulePatch)
    async with request.app[POOL].connection() as conn:
        row = await queries.update_rule(conn, rule_id, body.enabled, body.name)
    if row is None:
        raise ApiError(404, f"no alert rule {rule_id}")
    return json_ok(queries.rule_json(row))


async def delete_rule(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    rule_id = inputs.path_as(AlertRulePath).rule_id
    async with request.app[POOL].connection() as conn:
        if not await queries.delete_rule(conn, rule_id):
            raise ApiError(404, f"no alert rule {rule_id}")
    return web.Response(status=204)


async def list_deliveries(request: web.Request, inputs: Inputs) -> web.StreamResponse:
    rule_id = inputs.path_as(AlertRulePath).rule_id
    query = inputs.query_as(DeliveriesQuery)
    async with request.app[POOL].connection() as conn:
        if await queries.get_rule(conn, rule_id) is None:
            raise ApiError(404, f"no alert rule {rule_id}")
        rows = await queries.list_deliveries(conn, rule_id, query.status, query.limit)
    return json_ok({"items": rows})


ENDPOINTS = (
    Endpoint(
        "POST",
        "/v1/alerts",
        create_rule,
        "Register an alert rule",
        "alerts",
        scope="write",
        body=AlertRuleCreate,
        response=AlertRuleCreated,
        status=201,
        not_found=False,
        description="Conditions: a signal action from a source, the price crossing a level, or RSI of "
        "1-minute closes crossing a threshold. Targets: a generic webhook (JSON body signed "
        "with HMAC-SHA256 in X-Stocktrack-Signature-256) or a Slack-compatible incoming webhook.",
    ),
    Endpoint(
        "GET",
        "/v1/alerts",
        list_rules,
        "Alert rules",
        "alerts",
        scope="write",
        query=AlertListQuery,
        response=AlertRuleList,
        not_found=False,
    ),
    Endpoint(
        "GET",
        "/v1/alerts/{rule_id}",
        get_rule,
        "One alert rule",
        "alerts",
        scope="write",
        path_model=AlertRulePath,
        response=AlertRuleOut,
    ),
    Endpoint(
        "PATCH",
        "/v1/alerts/{rule_id}",
        patch_rule,
        "Pause, resume or rename an alert rule",
        "alerts",
        scope="write",
        path_model=AlertRulePath,
        body=AlertRulePatch,
        response=AlertRuleOut,
    ),
    Endpoint(
        "DELETE",
        "/v1/alerts/{rule_id}",
        delete_rule,
        "Remove an alert rule and its delivery history",
        "alerts",
        scope="write",
        path_model=AlertRulePath,
        status=204,
    ),
    Endpoint(
        "GET",
        "/v1/alerts/{rule_id}/deliveries",
        list_deliveries,
        "Deliveries of one rule, newest first",
        "alerts",
        scope="write",
        path_model=AlertRulePath,
        query=DeliveriesQuery,
        response=DeliveryList,
    ),
)
