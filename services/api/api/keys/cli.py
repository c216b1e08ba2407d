"""`stocktrack apikey create|revoke|list`: manage API keys in the database the api reads.

Uses DATABASE_URL and API_KEY_PEPPER like the api itself, so a created key hashes the same way.
The key is printed once, on creation; only its hash is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson
import psycopg

from api.settings import ApiSettings
from stocktrack_common.api_keys import SCOPES, create_key, list_keys, revoke_key
from stocktrack_common.settings import split_list


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stocktrack apikey", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument(
        "--scopes", default="read", help=f"comma separated, of {', '.join(SCOPES)} (default read)"
    )
    revoke = sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    sub.add_parser("list", help="list keys (ids, names, scopes; never the keys)")
    return parser


async def _run(args: argparse.Namespace, settings: ApiSettings) -> int:
    pepper = settings.api_key_pepper.get_secret_value()
    async with await psycopg.AsyncConnection.connect(
        settings.database_url.get_secret_value(), autocommit=True
    ) as conn:
        if args.action == "create":
            if not pepper:
                print("API_KEY_PEPPER must be set (the api must use the same value)", file=sys.stderr)
                return 2
            scopes = split_list(args.scopes)
            try:
                row, key = await create_key(conn, args.name, scopes, pepper)
            except ValueError as exc:
                print(f"stocktrack apikey: {exc}", file=sys.stderr)
                return 2
            print(
                orjson.dumps(
                    {"id": row.id, "name": row.name, "scopes": sorted(row.scopes), "key": key}
                ).decode()
            )
            return 0
        if args.action == "revoke":
            if await revoke_key(conn, args.key_id):
                print(f"revoked {args.key_id}")
                return 0
            print(f"no active key {args.key_id!r}", file=sys.stderr)
            return 1
        for row in await list_keys(conn):
            print(
                orjson.dumps(
                    {
                        "id": row.id,
                        "name": row.name,
                        "scopes": sorted(row.scopes),
                        "created_at": row.created_at.isoformat(),
                        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
                    }
                ).decode()
            )
        return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return asyncio.run(_run(args, ApiSettings()))
