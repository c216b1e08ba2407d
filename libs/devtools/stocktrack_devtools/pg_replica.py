"""A streaming replica of a local PostgreSQL, for the api's DATABASE_READ_URL in tests and dev runs.

`pg_basebackup -R` copies the primary and writes `standby.signal` plus `primary_conninfo`, so
the copy starts as a hot standby that replays the primary's WAL as it is streamed: the same
setup as an RDS/Aurora read replica, on loopback ports. initdb's default pg_hba.conf already
trusts replication connections from 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from stocktrack_devtools.servers import EmbeddedPostgres


def start_streaming_replica(primary: EmbeddedPostgres, data_dir: Path) -> EmbeddedPostgres:
    """Base-backup `primary` into `data_dir` and start it as a hot standby on its own port."""
    replica = EmbeddedPostgres(data_dir)
    replica.prepare_dir()
    replica.run_tool(
        "pg_basebackup",
        "-h", "127.0.0.1",
        "-p", str(primary.port),
        "-U", "postgres",
        "-D", str(data_dir / "pgdata"),
        "-R",  # standby.signal + primary_conninfo: start as a streaming replica
        "-X", "stream",
        "-c", "fast",
    )  # fmt: skip
    replica.start()
    return replica


def replay_lag_bytes(primary_url: str, replica_url: str) -> int:
    """WAL the replica has not replayed yet (0 once it has caught up with the primary)."""
    with psycopg.connect(primary_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    with psycopg.connect(replica_url, autocommit=True) as conn:
        lag = conn.execute(
            "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())", (row[0],)
        ).fetchone()
    assert lag is not None
    return max(0, int(lag[0]))
