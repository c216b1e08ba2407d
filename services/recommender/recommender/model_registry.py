"""The model registry in the `models` table: store, activate, announce and load fitted pipelines.

Artifacts live in PostgreSQL (joblib bytes in a bytea column) so any pod loads the active model
without shared disks. Unpickling a scikit-learn pipeline under other library versions can fail
or, worse, silently behave differently, and a model fed features in another order predicts
nonsense; so loading compares the stored library versions and feature list with the running
code first and refuses a mismatch with an error that says what differs and what to do.

A model belongs to one timeframe and scope: it records the bar interval it was trained on
(`bar_interval`, e.g. '1d') and the symbols it serves (`scope`: a sorted comma list, or '*' for
any symbol). One model per (interval, scope) is active, so activating MSFT's model leaves AAPL's
alone, and a recommender applies a model only to bars of its interval.
"""

from __future__ import annotations

import io
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import joblib
import numpy as np
import psycopg
import redis as sync_redis
import redis.asyncio as aioredis
import sklearn
from psycopg.types.json import Jsonb
from sklearn.pipeline import Pipeline

from stocktrack_common.stream_names import models_stream

# Versions that must match exactly for a stored pipeline to be trusted.
CHECKED_LIBRARIES = ("scikit-learn", "numpy")

UNIVERSE = "*"
INSERT_SQL = """
INSERT INTO models (id, algorithm, params, features, label_spec, train_from, train_to, metrics, artifact,
                    bar_interval, scope, active)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, false)
"""
_COLUMNS = "id, params, features, label_spec, artifact, bar_interval, scope"
ACTIVE_SQL = f"SELECT {_COLUMNS} FROM models WHERE active ORDER BY bar_interval, scope"
BY_ID_SQL = f"SELECT {_COLUMNS} FROM models WHERE id = %s"


class ModelMismatchError(RuntimeError):
    """A stored model that the running code must not use."""


@dataclass(frozen=True)
class LoadedModel:
    """A usable model: the fitted pipeline and what it expects."""

    id: str
    pipeline: Pipeline
    features: tuple[str, ...]
    label_spec: dict[str, Any]
    interval: str = "1d"
    scope: str = UNIVERSE

    @property
    def symbols(self) -> frozenset[str] | None:
        """The symbols this model serves; None for any symbol."""
        return None if self.scope == UNIVERSE else frozenset(self.scope.split(","))

    def applies_to(self, symbol: str, interval: str) -> bool:
        symbols = self.symbols
        return interval == self.interval and (symbols is None or symbol in symbols)

    def predict(self, features: dict[str, float]) -> tuple[str, float, dict[str, float]]:
        """(action, confidence = probability of that action, probability per class) for one row."""
        row = np.asarray([[features[name] for name in self.features]], dtype=np.float64)
        probabilities = self.pipeline.predict_proba(row)[0]
        classes = [str(c) for c in self.pipeline.classes_]
        best = int(np.argmax(probabilities))
        return (
            classes[best],
            float(probabilities[best]),
            {c: round(float(p), 6) for c, p in zip(classes, probabilities, strict=True)},
        )


def running_versions() -> dict[str, str]:
    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__}


def interval_label(seconds: int) -> str:
    """'1m', '5m', '1h', '1d', ...: the bar interval as models and signals name it."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def scope_of(symbols: list[str] | None) -> str:
    """The scope a model trained on `symbols` serves: those symbols, or any symbol when None."""
    return UNIVERSE if not symbols else ",".join(sorted(set(symbols)))


def new_model_id(now: datetime | None = None) -> str:
    """Sortable and unique: creation time plus a random suffix (fits a Signal's `model:<id>`)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def serialise_pipeline(pipeline: Pipeline) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer, compress=3)
    return buffer.getvalue()


def save_model(
    conn: psycopg.Connection,
    *,
    model_id: str,
    algorithm: str,
    params: dict[str, Any],
    library_versions: dict[str, str],
    features: list[str],
    label_spec: dict[str, Any],
    train_from: date,
    train_to: date,
    metrics: dict[str, Any],
    pipeline: Pipeline,
    interval: str = "1d",
    scope: str = UNIVERSE,
) -> None:
    """Insert an inactive model row; params carry the library versions the loader checks."""
    stored_params = {"estimator": params, "library_versions": library_versions}
    conn.execute(
        INSERT_SQL,
        (
            model_id,
            algorithm,
            Jsonb(stored_params),
            Jsonb(features),
            Jsonb(label_spec),
            train_from,
            train_to,
            Jsonb(metrics),
            serialise_pipeline(pipeline),
            interval,
            scope,
        ),
    )


def activate_model(conn: psycopg.Connection, model_id: str) -> None:
    """Make `model_id` the active model of its (interval, scope), atomically; other scopes keep theirs."""
    with conn.transaction():
        found = conn.execute(
            "SELECT bar_interval, scope FROM models WHERE id = %s FOR UPDATE", (model_id,)
        ).fetchone()
        if found is None:
            raise LookupError(f"no model {model_id!r}")
        conn.execute(
            "UPDATE models SET active = false WHERE active AND id <> %s AND bar_interval = %s AND scope = %s",
            (model_id, *found),
        )
        conn.execute("UPDATE models SET active = true WHERE id = %s", (model_id,))


def activation_event(model_id: str) -> dict[str, str]:
    return {"event": "activated", "model_id": model_id, "at": str(int(datetime.now(UTC).timestamp() * 1000))}


def announce_activation(client: sync_redis.Redis, prefix: str, model_id: str) -> str:
    """Tell running recommenders to reload; returns the stream entry id."""
    entry = client.xadd(models_stream(prefix), activation_event(model_id))  # type: ignore[arg-type]
    return entry.decode() if isinstance(entry, bytes) else str(entry)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def check_compatibility(
    model_id: str, params: dict[str, Any], features: list[str], expected_features: tuple[str, ...]
) -> None:
    """Raise ModelMismatchError unless versions and feature list match the running code."""
    stored = (params or {}).get("library_versions", {})
    running = running_versions()
    problems = [
        f"{lib} {stored.get(lib, 'unknown')} (model) != {running[lib]} (running)"
        for lib in CHECKED_LIBRARIES
        if stored.get(lib) != running[lib]
    ]
    if problems:
        raise ModelMismatchError(
            f"model {model_id} was trained with other library versions: {'; '.join(problems)}. "
            "Retrain it with `stocktrack train` under the running versions, or run the versions it was "
            "trained with."
        )
    if tuple(features) != tuple(expected_features):
        missing = sorted(set(expected_features) - set(features))
        extra = sorted(set(features) - set(expected_features))
        raise ModelMismatchError(
            f"model {model_id} expects other features than this code computes "
            f"(missing from model: {missing or 'none'}; unknown to code: {extra or 'none'}; "
            f"same names in another order: {not missing and not extra}). Retrain it with `stocktrack train`."
        )


def check_interval(model_id: str, interval: str, supported: tuple[str, ...]) -> None:
    """Raise ModelMismatchError when the running service builds no bars of the model's interval."""
    if interval not in supported:
        raise ModelMismatchError(
            f"model {model_id} was trained on {interval} bars, but this recommender builds "
            f"{' and '.join(supported)} bars: a model only ever sees bars of the interval it was "
            "trained on. Train one for these bars, or change BAR_INTERVAL_SECONDS."
        )


def _materialise(
    row: tuple[Any, ...], expected_features: tuple[str, ...], intervals: tuple[str, ...] | None = None
) -> LoadedModel:
    model_id, params, features, label_spec, artifact, interval, scope = row
    params, features, label_spec = _json(params), _json(features), _json(label_spec)
    if intervals is not None:
        check_interval(model_id, interval, intervals)
    check_compatibility(model_id, params, features, expected_features)
    pipeline = joblib.load(io.BytesIO(bytes(artifact)))
    return LoadedModel(
        id=model_id,
        pipeline=pipeline,
        features=tuple(features),
        label_spec=label_spec,
        interval=interval,
        scope=scope,
    )


def load_model(
    conn: psycopg.Connection, model_id: str | None, expected_features: tuple[str, ...]
) -> LoadedModel | None:
    """The model `model_id`, or the active one when None; None when there is no such model."""
    row = conn.execute(BY_ID_SQL, (model_id,)).fetchone() if model_id else conn.execute(ACTIVE_SQL).fetchone()
    return None if row is None else _materialise(row, expected_features)


async def load_active_models_async(
    conn: psycopg.AsyncConnection, expected_features: tuple[str, ...], intervals: tuple[str, ...]
) -> tuple[list[LoadedModel], dict[str, str]]:
    """Every active model the streaming service can use, and why each other one was refused."""
    cursor = await conn.execute(ACTIVE_SQL)
    usable: list[LoadedModel] = []
    refused: dict[str, str] = {}
    for row in await cursor.fetchall():
        try:
            usable.append(_materialise(row, expected_features, intervals))
        except ModelMismatchError as exc:
            refused[str(row[0])] = str(exc)
    return usable, refused


async def read_models_events(
    client: aioredis.Redis, prefix: str, last_id: str, block_ms: int
) -> tuple[str, list[dict[str, str]]]:
    """New events on the models stream after `last_id` (XREAD: every replica sees every event)."""
    response: Any = await client.xread({models_stream(prefix): last_id}, count=100, block=block_ms)
    events: list[dict[str, str]] = []
    for _, entries in response or []:
        for entry_id, fields in entries:
            last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            events.append(
                {
                    (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                    for k, v in fields.items()
                }
            )
    return last_id, events
