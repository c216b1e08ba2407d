"""`prune-models`: the active model survives whatever its age, plus the newest K."""

from __future__ import annotations

import datetime as dt

import psycopg

from tests.janitor.conftest import RunJanitor


def add_models(db_url: str, count: int, active_index: int) -> list[str]:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ids = [f"m{i:02d}" for i in range(count)]
    with psycopg.connect(db_url) as conn:
        for i, model_id in enumerate(ids):
            conn.execute(
                "INSERT INTO models (id, created_at, algorithm, artifact, active) VALUES (%s, %s, 'logreg', %s, %s)",
                (model_id, start + dt.timedelta(days=i), b"x", i == active_index),
            )
    return ids


def model_ids(db_url: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM models ORDER BY id").fetchall()]


async def test_keeps_active_and_newest(db_url: str, run_janitor: RunJanitor) -> None:
    ids = add_models(db_url, 8, active_index=0)

    dry = await run_janitor("prune-models", dry_run=True, models_keep=3)
    assert dry[0].details["models"] == ids[1:5]
    assert model_ids(db_url) == ids

    first = await run_janitor("prune-models", models_keep=3)
    assert first[0].counts["models_deleted"] == 4
    assert model_ids(db_url) == [ids[0], *ids[5:]]

    second = await run_janitor("prune-models", models_keep=3)
    assert second[0].counts["models_deleted"] == 0
    assert model_ids(db_url) == [ids[0], *ids[5:]]


async def test_active_among_newest_does_not_cost_a_kept_model(db_url: str, run_janitor: RunJanitor) -> None:
    ids = add_models(db_url, 8, active_index=7)

    report = await run_janitor("prune-models", models_keep=3)

    assert report[0].counts["models_deleted"] == 4
    # the active newest one, plus exactly MODELS_KEEP=3 others
    assert model_ids(db_url) == ids[4:]
