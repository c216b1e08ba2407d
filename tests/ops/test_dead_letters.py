"""`stocktrack dead` against real Redis and PostgreSQL, on entries the shared consumer really dead-lettered."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import orjson
import psycopg
import pytest
import redis.asyncio as aioredis

from stocktrack_common.consumer import Delivery, StreamConsumer, dead_letter_fields, group_info
from stocktrack_common.messages import Tick, decode_tick
from stocktrack_common.ops_dead import DeadLetter, main, reason_key, replay_target_problem
from stocktrack_common.stream_names import WRITER_GROUP, dead_stream, shard_for, tick_stream
from tests.support.processes import Services
from tests.support.waiting import wait_until_async

SHARDS = 4


def tick_fields(i: int, symbol: str = "AAPL") -> dict[str, str]:
    now_ms = int(time.time() * 1000)
    return {
        "v": "1",
        "symbol": symbol,
        "ts": str(now_ms - 60_000 + i),
        "price": f"{100 + i}.25",
        "size": "10",
        "source": "sim",
    }


async def dead_letter_for_real(
    redis: aioredis.Redis, prefix: str, entries: list[dict[str, str]], handler_error: str | None = None
) -> None:
    """Push entries through the shared consumer so they land in the dead stream exactly as in production.

    With `handler_error`, the handler fails every time (a broken sink) and the consumer gives up after
    one redelivery; otherwise only undecodable entries die (at once, with the validation reason).
    """
    streams = sorted({tick_stream(prefix, shard_for(e.get("symbol", "AAPL"), SHARDS)) for e in entries})
    for entry in entries:
        stream = tick_stream(prefix, shard_for(entry.get("symbol", "AAPL"), SHARDS))
        await redis.xadd(stream, entry)  # type: ignore[arg-type]

    async def handle(batch: list[Delivery[Tick]]) -> None:
        if handler_error:
            raise RuntimeError(handler_error)

    consumer = StreamConsumer(
        redis,
        streams=streams,
        group=WRITER_GROUP,
        consumer="broken-writer",
        handler=handle,
        decode=decode_tick,
        dead_stream=dead_stream(prefix),
        block_ms=50,
        max_deliveries=1,
        retry_delay=0.05,
        claim_interval=0.2,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        async with asyncio.timeout(15):
            while await redis.xlen(dead_stream(prefix)) < len(entries):
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop earlier output (the consumer's logs), keep only the command's
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stored(db_url: str) -> tuple[int, int]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM ticks), (SELECT coalesce(sum(trades), 0) FROM bars_1m)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def test_replay_after_a_fix_stores_the_tick_exactly_once(
    redis_client: aioredis.Redis,
    redis_url: str,
    db_url: str,
    prefix: str,
    services: Services,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tick = tick_fields(1)
    await dead_letter_for_real(redis_client, prefix, [tick], handler_error="sink unavailable")
    assert stored(db_url) == (0, 0)

    writer = services.start("writer", TICK_SHARDS=str(SHARDS))  # "the fix": a healthy writer
    writer.wait_healthy()
    target = ("--redis-url", redis_url, "--prefix", prefix)

    code, out, _ = await run_cli(capsys, *target, "list", "--json")
    assert code == 0
    [summary] = orjson.loads(out)
    assert summary["count"] == 1 and summary["groups"] == [WRITER_GROUP]
    assert "sink unavailable" in summary["reason"]

    # Replay twice (the first keeps the record): the sink must store the tick once, not twice.
    code, out, _ = await run_cli(capsys, *target, "replay", "--all", "--keep")
    assert code == 0 and "1 record(s) replayed" in out
    await wait_until_async(lambda: asyncio.to_thread(lambda: stored(db_url)[0] == 1), 30, "the replayed tick")
    code, out, _ = await run_cli(capsys, *target, "replay", "--reason", "sink unavailable")
    assert code == 0 and "1 record(s) replayed" in out

    stream = tick_stream(prefix, shard_for("AAPL", SHARDS))

    async def writer_caught_up() -> bool:
        info = await group_info(redis_client, stream, WRITER_GROUP)
        return info is not None and info["lag"] == 0 and info["pending"] == 0

    await wait_until_async(writer_caught_up, 30, "the writer to consume the second replay")
    assert stored(db_url) == (1, 1), "a replayed tick was stored or counted in its bar twice"
    assert await redis_client.xlen(dead_stream(prefix)) == 0
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT symbol, price::text FROM ticks").fetchone()
    assert row == ("AAPL", tick["price"])


async def test_list_groups_by_reason_show_decodes_and_purge_needs_confirmation(
    redis_client: aioredis.Redis, redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_price = [{**tick_fields(i), "price": text} for i, text in enumerate(["abc", "xyz"])]
    bad_symbol = [{**tick_fields(9), "symbol": "not a symbol"}]
    await dead_letter_for_real(redis_client, prefix, [*bad_price, *bad_symbol])
    target = ("--redis-url", redis_url, "--prefix", prefix)

    code, out, _ = await run_cli(capsys, *target, "list", "--json")
    assert code == 0
    counts = {s["reason"]: s["count"] for s in orjson.loads(out)}
    assert sorted(counts.values()) == [1, 2], counts
    price_reason = next(reason for reason, count in counts.items() if count == 2)
    assert "price" in price_reason and "invalid message" in price_reason

    code, out, _ = await run_cli(capsys, *target, "list", "--entries", "--json")
    entries = orjson.loads(out)
    assert len(entries) == 3
    code, out, _ = await run_cli(capsys, *target, "show", entries[0]["dead_id"])
    shown = orjson.loads(out)
    assert code == 0 and shown["fields"] == bad_price[0] and shown["group"] == WRITER_GROUP

    # Without --yes and without a terminal to ask on, purge refuses and deletes nothing.
    code, _, err = await run_cli(capsys, *target, "purge", "--reason", "price")
    assert code == 1 and "nothing deleted" in err
    assert await redis_client.xlen(dead_stream(prefix)) == 3
    code, out, _ = await run_cli(capsys, *target, "purge", "--reason", "price", "--yes")
    assert code == 0 and "2 record(s) deleted" in out
    remaining = [DeadLetter.from_entry(i, f) for i, f in await redis_client.xrange(dead_stream(prefix))]
    assert [r.fields["symbol"] for r in remaining] == ["not a symbol"]

    code, _, err = await run_cli(capsys, *target, "replay")
    assert code == 2 and "--all" in err, "replay without a selection must not replay everything"


def test_the_stocktrack_command_runs_dead(redis_url: str, prefix: str) -> None:
    """Through the installed entry point, as an operator types it."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stocktrack_common.cli",
            "dead",
            "--redis-url",
            redis_url,
            "--prefix",
            prefix,
            "list",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"0 dead letter(s) in {dead_stream(prefix)}" in result.stdout


def test_reasons_group_alike_failures() -> None:
    assert reason_key("invalid message: price is not a decimal: 'abc'") == reason_key(
        "invalid message: price is not a decimal: 'xyz'"
    )
    assert reason_key("exceeded max deliveries (5); last error: boom") == (
        "exceeded max deliveries (N); last error: boom"
    )
    assert reason_key("") == "(no error recorded)"


def test_replay_writes_only_into_this_deployments_streams() -> None:
    def letter(stream: str, fields: dict[str, str]) -> DeadLetter:
        return DeadLetter("1-0", stream, "1-0", "writer", "c", "e", 1, 0, fields)

    fields = {"v": "1"}
    assert replay_target_problem(letter("st:ticks:{0}", fields), "st") is None
    assert "outside prefix" in str(replay_target_problem(letter("other:ticks:{0}", fields), "st"))
    assert "dead stream" in str(replay_target_problem(letter("st:dead", fields), "st"))
    assert "no original fields" in str(replay_target_problem(letter("st:ticks:{0}", {}), "st"))


async def test_replay_puts_an_entry_dead_in_several_groups_back_once(
    redis_client: aioredis.Redis, redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = tick_stream(prefix, shard_for("AAPL", SHARDS))
    both, alone = tick_fields(1), tick_fields(2)
    both_id = (await redis_client.xadd(stream, both)).decode()  # type: ignore[arg-type]
    alone_id = (await redis_client.xadd(stream, alone)).decode()  # type: ignore[arg-type]
    for group, entry_id, fields in (
        ("writer", both_id, both),
        ("recommender", both_id, both),
        ("alerts", both_id, both),
        ("writer", alone_id, alone),
    ):
        record = dead_letter_fields(
            {k.encode(): v.encode() for k, v in fields.items()},
            stream=stream,
            entry_id=entry_id,
            group=group,
            consumer=f"{group}-0",
            error="sink unavailable",
            deliveries=6,
        )
        await redis_client.xadd(dead_stream(prefix), record)  # type: ignore[arg-type]

    code, out, _ = await run_cli(capsys, "--redis-url", redis_url, "--prefix", prefix, "replay", "--all")
    assert code == 0, out
    assert "4 record(s) replayed as 2 entr(ies)" in out
    replayed = [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in await redis_client.xrange(stream, min=f"({alone_id}", max="+")
    ]
    assert sorted(replayed, key=lambda f: f["ts"]) == [both, alone]
    assert await redis_client.xlen(dead_stream(prefix)) == 0
