"""Typed keys of what the streamer app holds."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from stocktrack_common.api_keys import KeyVerifier
from streamer.hub import Hub
from streamer.settings import StreamerSettings

HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)
REDIS: web.AppKey[Redis] = web.AppKey("redis", Redis)
SETTINGS: web.AppKey[StreamerSettings] = web.AppKey("settings", StreamerSettings)
KEYS: web.AppKey[KeyVerifier] = web.AppKey("key_verifier", KeyVerifier)
