"""Per-pool session bounds: a slow statement or a forgotten transaction cannot hold a connection."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from stocktrack_common.pg_pool import open_pg_pool
from stocktrack_common.settings import PoolSettings


async def test_statement_timeout_cancels_a_slow_query(db_url: str) -> None:
    pool = await open_pg_pool(db_url, PoolSettings(pool_min=1, pool_max=1, statement_timeout_seconds=0.2))
    try:
        async with pool.connection(timeout=10) as conn:
            started = time.monotonic()
            with pytest.raises(psycopg.errors.QueryCanceled):
                await conn.execute("SELECT pg_sleep(5)")
            assert time.monotonic() - started < 2
            await conn.rollback()
            row = await (await conn.execute("SHOW statement_timeout")).fetchone()
            assert row == ("200ms",)
    finally:
        await pool.close()


async def test_idle_in_transaction_session_is_ended_by_the_server(db_url: str) -> None:
    settings = PoolSettings(pool_min=1, pool_max=1, idle_in_transaction_timeout_seconds=0.2)
    pool = await open_pg_pool(db_url, settings)
    try:
        async with pool.connection(timeout=10) as conn:
            await conn.execute("SELECT 1")  # opens a transaction (autocommit is off) and leaves it idle
            await asyncio.sleep(0.5)
            with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
                await conn.execute("SELECT 1")
        # The pool replaces the connection the server ended; the next client is served normally.
        async with pool.connection(timeout=10) as conn:
            assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
    finally:
        await pool.close()


async def test_zero_turns_the_bounds_off(db_url: str) -> None:
    settings = PoolSettings(
        pool_min=1, pool_max=1, statement_timeout_seconds=0, idle_in_transaction_timeout_seconds=0
    )
    pool = await open_pg_pool(db_url, settings)
    try:
        async with pool.connection(timeout=10) as conn:
            cur = await conn.execute(
                "SELECT current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout')"
            )
            assert await cur.fetchone() == ("0", "0")
    finally:
        await pool.close()


async def _terminate(db_url: str, pid: int) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def test_a_connection_returned_moments_ago_is_reused_without_the_check(db_url: str) -> None:
    # The server ends the session behind the pool's back: a pool trusting recent returns hands
    # the dead connection out unchecked (the statement fails, a transient error), then checks
    # every connection again and serves a fresh one.
    pool = await open_pg_pool(db_url, PoolSettings(pool_min=1, pool_max=1), reuse_unchecked_seconds=30)
    try:
        async with pool.connection(timeout=10) as conn:
            pid = conn.info.backend_pid
        await _terminate(db_url, pid)
        with pytest.raises(psycopg.OperationalError):
            async with pool.connection(timeout=10) as conn:
                assert conn.info.backend_pid == pid
                await conn.execute("SELECT 1")
        async with pool.connection(timeout=10) as conn:
            assert conn.info.backend_pid != pid
            assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
    finally:
        await pool.close()


async def test_by_default_every_connection_is_checked_before_it_is_served(db_url: str) -> None:
    pool = await open_pg_pool(db_url, PoolSettings(pool_min=1, pool_max=1))
    try:
        async with pool.connection(timeout=10) as conn:
            pid = conn.info.backend_pid
        await _terminate(db_url, pid)
        async with pool.connection(timeout=10) as conn:
            assert conn.info.backend_pid != pid
            assert await (await conn.execute("SELECT 1")).fetchone() == (1,)
    finally:
        await pool.close()
