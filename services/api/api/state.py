"""Typed keys of what the app holds: pools, clients and settings, set up by the app factory."""

from __future__ import annotations

from aiohttp import web
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from api.settings import ApiSettings

POOL: web.AppKey[AsyncConnectionPool] = web.AppKey("pool", AsyncConnectionPool)
PREFIX: web.AppKey[str] = web.AppKey("prefix", str)
REDIS: web.AppKey[Redis] = web.AppKey("redis", Redis)
SETTINGS: web.AppKey[ApiSettings] = web.AppKey("settings", ApiSettings)
