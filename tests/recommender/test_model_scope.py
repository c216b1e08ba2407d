"""One model per timeframe and scope: per-scope activation, and refusal of a model of another interval."""

from __future__ import annotations

from datetime import date

import numpy as np
import psycopg
import pytest

from recommender.features import FEATURE_NAMES
from recommender.model_factory import make_pipeline
from recommender.model_registry import (
    ModelMismatchError,
    activate_model,
    check_interval,
    interval_label,
    load_active_models_async,
    new_model_id,
    save_model,
    scope_of,
)
from recommender.training import library_versions


def store(conn: psycopg.Connection, *, interval: str, scope: str, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(120, len(FEATURE_NAMES)))
    y = np.array(["sell", "hold", "buy"])[rng.integers(0, 3, 120)]
    model_id = new_model_id()
    save_model(
        conn,
        model_id=model_id,
        algorithm="logistic_regression",
        params={},
        library_versions=library_versions(),
        features=list(FEATURE_NAMES),
        label_spec={"horizon": 5},
        train_from=date(2020, 1, 1),
        train_to=date(2021, 1, 1),
        metrics={},
        pipeline=make_pipeline("logistic_regression").fit(x, y),
        interval=interval,
        scope=scope,
    )
    activate_model(conn, model_id)
    return model_id


def test_interval_labels_and_scopes() -> None:
    assert [interval_label(s) for s in (60, 300, 3600, 86_400, 90)] == ["1m", "5m", "1h", "1d", "90s"]
    assert scope_of(["MSFT", "AAPL", "MSFT"]) == "AAPL,MSFT" and scope_of(None) == "*"
    with pytest.raises(ModelMismatchError, match=r"trained on 1d bars, but this recommender builds 1m bars"):
        check_interval("m1", "1d", ("1m",))
    check_interval("m1", "1d", ("1m", "1d"))


async def test_each_scope_keeps_its_own_active_model(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        msft = store(conn, interval="1d", scope="MSFT")
        aapl = store(conn, interval="1d", scope="AAPL")
        minute = store(conn, interval="1m", scope="*")
        msft_again = store(conn, interval="1d", scope="MSFT", seed=1)
        active = dict(conn.execute("SELECT id, scope FROM models WHERE active").fetchall())
    # Training MSFT again replaced MSFT's model only.
    assert active == {aapl: "AAPL", minute: "*", msft_again: "MSFT"} and msft not in active
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        usable, refused = await load_active_models_async(conn, FEATURE_NAMES, ("1d",))
    assert {m.id for m in usable} == {aapl, msft_again}
    assert set(refused) == {minute} and "trained on 1m bars" in refused[minute]
    by_id = {m.id: m for m in usable}
    assert by_id[aapl].applies_to("AAPL", "1d") and not by_id[aapl].applies_to("MSFT", "1d")
    assert not by_id[aapl].applies_to("AAPL", "1m")
