"""`stocktrack dead list|show|replay|purge`: work through the dead-letter stream `{prefix}:dead`.

The consumer writes a dead-letter record (stocktrack_common.consumer.dead_letter_fields) with the
source stream and id, the group and consumer, the error, the delivery count, the time, and the
original fields as JSON. After the cause is fixed, replay puts the original fields back on the
source stream as a new entry. That is safe because every sink is idempotent on its natural key:
an entry that was in fact stored before it died is stored again as the same row, never as a
second one. A replayed entry reaches every group reading that stream, not only the one it died
in; those groups' writes are idempotent too.

Records of the same source entry (one per group it died in) are merged: the entry is put back
once, since one new entry reaches every group anyway. Replaying removes the records from the
dead stream only after the new entry is added, so a crash in between leaves a duplicate record
rather than a lost one.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import orjson
import redis.asyncio as aioredis

from stocktrack_common.ops_args import add_target_args, connect_redis, resolve_target, warn_if_defaults
from stocktrack_common.stream_names import dead_stream

PAGE = 1000
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead stream, decoded."""

    dead_id: str
    stream: str
    source_id: str
    group: str
    consumer: str
    error: str
    deliveries: int
    dead_at_ms: int
    fields: dict[str, str]

    @classmethod
    def from_entry(
        cls, dead_id: bytes | str | None, raw: Mapping[bytes | str, bytes | str] | None
    ) -> DeadLetter:
        """Tolerant decoding: a damaged record is still listed, and shows what is missing."""
        values = {_text(k): _text(v) for k, v in (raw or {}).items()}
        try:
            original = orjson.loads(values.get("fields", "{}"))
        except orjson.JSONDecodeError:
            original = {}
        if not isinstance(original, dict):
            original = {}
        return cls(
            dead_id=_text(dead_id),
            stream=values.get("stream", ""),
            source_id=values.get("id", ""),
            group=values.get("group", ""),
            consumer=values.get("consumer", ""),
            error=values.get("error", ""),
            deliveries=int(values["deliveries"]) if values.get("deliveries", "").isdigit() else 0,
            dead_at_ms=int(values["dead_at"]) if values.get("dead_at", "").isdigit() else 0,
            fields={str(k): str(v) for k, v in original.items()},
        )

    @property
    def reason(self) -> str:
        return reason_key(self.error)

    def as_json(self) -> dict[str, object]:
        return {
            "dead_id": self.dead_id,
            "stream": self.stream,
            "id": self.source_id,
            "group": self.group,
            "consumer": self.consumer,
            "error": self.error,
            "reason": self.reason,
            "deliveries": self.deliveries,
            "dead_at": _iso(self.dead_at_ms),
            "fields": self.fields,
        }


@dataclass
class ReasonSummary:
    """All dead letters that failed for the same reason."""

    reason: str
    count: int = 0
    groups: set[str] = field(default_factory=set)
    streams: set[str] = field(default_factory=set)
    first_ms: int = 0
    last_ms: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "reason": self.reason,
            "count": self.count,
            "groups": sorted(self.groups),
            "streams": sorted(self.streams),
            "first_dead_at": _iso(self.first_ms),
            "last_dead_at": _iso(self.last_ms),
        }


def one_line(text: str, width: int = 160) -> str:
    """A database error can span lines (DETAIL, HINT, CONTEXT); a table row must not."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def reason_key(error: str) -> str:
    """The error with entry-specific values (quoted text, numbers) masked, so alike failures group."""
    return _NUMBER.sub("N", _QUOTED.sub("'…'", error)).strip() or "(no error recorded)"


def _iso(ms: int) -> str:
    if ms <= 0:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def read_dead_letters(redis: aioredis.Redis, stream: str) -> list[DeadLetter]:
    """Every record of the dead stream, oldest first, read a page at a time."""
    letters: list[DeadLetter] = []
    start = "-"
    while True:
        page = await redis.xrange(stream, min=start, max="+", count=PAGE) or []
        letters.extend(DeadLetter.from_entry(entry_id, fields) for entry_id, fields in page)
        if len(page) < PAGE:
            return letters
        start = f"({_text(page[-1][0])}"


def summarize(letters: Iterable[DeadLetter]) -> list[ReasonSummary]:
    """Dead letters grouped by reason, most frequent first."""
    by_reason: dict[str, ReasonSummary] = {}
    for letter in letters:
        summary = by_reason.setdefault(letter.reason, ReasonSummary(letter.reason))
        summary.count += 1
        summary.groups.add(letter.group)
        summary.streams.add(letter.stream)
        summary.first_ms = min(summary.first_ms or letter.dead_at_ms, letter.dead_at_ms)
        summary.last_ms = max(summary.last_ms, letter.dead_at_ms)
    return sorted(by_reason.values(), key=lambda s: (-s.count, s.reason))


def select(
    letters: Iterable[DeadLetter],
    *,
    ids: Iterable[str] = (),
    reason: str | None = None,
    stream: str | None = None,
    group: str | None = None,
) -> list[DeadLetter]:
    """Records matching every given filter: dead ids, a reason substring, a source stream, a group."""
    wanted_ids = set(ids)
    needle = reason.lower() if reason else None
    return [
        letter
        for letter in letters
        if (not wanted_ids or letter.dead_id in wanted_ids)
        and (needle is None or needle in letter.error.lower() or needle in letter.reason.lower())
        and (stream is None or letter.stream == stream)
        and (group is None or letter.group == group)
    ]


def replay_target_problem(letter: DeadLetter, prefix: str) -> str | None:
    """Why a record must not be replayed, if it must not: only this deployment's streams are written."""
    if not letter.fields:
        return "no original fields recorded"
    if not letter.stream.startswith(f"{prefix}:"):
        return f"source stream {letter.stream!r} is outside prefix {prefix!r}"
    if letter.stream == dead_stream(prefix):
        return "source stream is the dead stream itself"
    return None


@dataclass(frozen=True)
class Replayed:
    """One source entry put back on its stream, and the dead-letter records it stood for."""

    stream: str
    source_id: str
    new_id: str
    records: list[DeadLetter]


def merge_by_source(letters: Iterable[DeadLetter]) -> list[list[DeadLetter]]:
    """Records of the same source entry (stream and id) together, in first-seen order.

    An entry that failed in several groups has one record per group, but it is one entry: put
    back once, it reaches every group again.
    """
    merged: dict[tuple[str, str], list[DeadLetter]] = {}
    for letter in letters:
        merged.setdefault((letter.stream, letter.source_id), []).append(letter)
    return list(merged.values())


async def replay(
    redis: aioredis.Redis, letters: Iterable[DeadLetter], *, prefix: str, keep: bool = False
) -> list[Replayed]:
    """Add each source entry's original fields to its stream once, however many records name it."""
    replayed: list[Replayed] = []
    eligible = (letter for letter in letters if replay_target_problem(letter, prefix) is None)
    for records in merge_by_source(eligible):
        first = records[0]
        new_id = await redis.xadd(first.stream, dict(first.fields))  # type: ignore[arg-type]
        if not keep:
            await redis.xdel(dead_stream(prefix), *(r.dead_id for r in records))
        replayed.append(Replayed(first.stream, first.source_id, _text(new_id), records))
    return replayed


async def purge(redis: aioredis.Redis, stream: str, letters: Iterable[DeadLetter]) -> int:
    ids = [letter.dead_id for letter in letters]
    deleted = 0
    for i in range(0, len(ids), PAGE):
        deleted += int(await redis.xdel(stream, *ids[i : i + PAGE]))
    return deleted


# ----------------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stocktrack dead", description="inspect, replay and purge dead letters"
    )
    add_target_args(parser)
    sub = parser.add_subparsers(dest="action", required=True)

    listing = sub.add_parser("list", help="dead letters grouped by reason (or one line each with --entries)")
    listing.add_argument("--entries", action="store_true", help="one line per record instead of per reason")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    _add_filters(listing)

    show = sub.add_parser("show", help="one record in full, with its original fields")
    show.add_argument("dead_id", help="id of the record in the dead stream")

    replaying = sub.add_parser("replay", help="put records back on their source stream")
    replaying.add_argument(
        "--dry-run", action="store_true", help="say what would be replayed, change nothing"
    )
    replaying.add_argument("--keep", action="store_true", help="leave the records in the dead stream")
    _add_filters(replaying, selecting=True)

    purging = sub.add_parser("purge", help="delete records from the dead stream")
    purging.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _add_filters(purging, selecting=True)
    return parser


def _add_filters(parser: argparse.ArgumentParser, *, selecting: bool = False) -> None:
    if selecting:
        parser.add_argument("ids", nargs="*", help="dead-stream ids of the records")
        parser.add_argument(
            "--all", action="store_true", help="every record (required when no filter is given)"
        )
    parser.add_argument("--reason", help="records whose error contains this text (case-insensitive)")
    parser.add_argument("--stream", help="records that came from this stream")
    parser.add_argument("--group", help="records that died in this consumer group")


def _has_selection(args: argparse.Namespace) -> bool:
    return bool(args.ids or args.reason or args.stream or args.group or args.all)


def _print_summary(stream: str, letters: list[DeadLetter]) -> None:
    print(f"{len(letters)} dead letter(s) in {stream}")
    if not letters:
        return
    print(f"{'COUNT':>6}  {'LAST DEAD (UTC)':<20}  {'GROUPS':<14}  {'STREAMS':<28}  REASON")
    for summary in summarize(letters):
        streams = ",".join(sorted(summary.streams))
        print(
            f"{summary.count:>6}  {_iso(summary.last_ms):<20}  {','.join(sorted(summary.groups)):<14}  "
            f"{streams:<28}  {one_line(summary.reason)}"
        )


def _print_entries(letters: list[DeadLetter]) -> None:
    print(f"{'DEAD ID':<16}  {'DEAD AT (UTC)':<20}  {'GROUP':<12}  {'SOURCE':<40}  ERROR")
    for letter in letters:
        source = f"{letter.stream} {letter.source_id}"
        print(
            f"{letter.dead_id:<16}  {_iso(letter.dead_at_ms):<20}  {letter.group:<12}  {source:<40}"
            f"  {one_line(letter.error)}"
        )


def _confirm(question: str) -> bool:
    """Ask on a terminal; anything non-interactive (a script, CI) must pass --yes instead."""
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}


async def _run(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    warn_if_defaults("stocktrack dead", target)
    stream = dead_stream(target.prefix)
    redis = await connect_redis(target)
    try:
        letters = await read_dead_letters(redis, stream)
        if args.action == "show":
            found = select(letters, ids=[args.dead_id])
            if not found:
                print(f"no record {args.dead_id} in {stream}", file=sys.stderr)
                return 1
            print(orjson.dumps(found[0].as_json(), option=orjson.OPT_INDENT_2).decode())
            return 0

        ids = getattr(args, "ids", [])
        chosen = select(letters, ids=ids, reason=args.reason, stream=args.stream, group=args.group)
        if args.action == "list":
            if args.json:
                payload = (
                    [c.as_json() for c in chosen]
                    if args.entries
                    else [s.as_json() for s in summarize(chosen)]
                )
                print(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
            elif args.entries:
                _print_entries(chosen)
            else:
                _print_summary(stream, chosen)
            return 0

        if not _has_selection(args):
            print(f"stocktrack dead {args.action}: name ids, a filter, or --all", file=sys.stderr)
            return 2
        missing = set(ids) - {c.dead_id for c in chosen}
        for dead_id in sorted(missing):
            print(f"no record {dead_id} in {stream}", file=sys.stderr)

        if args.action == "replay":
            return await _replay(redis, chosen, args, target.prefix) or (1 if missing else 0)
        return await _purge(redis, stream, chosen, args) or (1 if missing else 0)
    finally:
        await redis.aclose()


async def _replay(
    redis: aioredis.Redis, chosen: list[DeadLetter], args: argparse.Namespace, prefix: str
) -> int:
    refused = [(c, p) for c in chosen if (p := replay_target_problem(c, prefix)) is not None]
    for letter, problem in refused:
        print(f"skipped {letter.dead_id}: {problem}", file=sys.stderr)
    eligible = [c for c in chosen if replay_target_problem(c, prefix) is None]
    if args.dry_run:
        merged = merge_by_source(eligible)
        for records in merged:
            first = records[0]
            print(f"would replay {_record_ids(records)} -> {first.stream} ({one_line(first.reason)})")
        print(f"{len(eligible)} record(s) of {len(merged)} entr(ies) would be replayed")
        return 1 if refused else 0
    done = await replay(redis, eligible, prefix=prefix, keep=args.keep)
    for entry in done:
        print(f"replayed {_record_ids(entry.records)} -> {entry.stream} {entry.new_id}")
    record_count = sum(len(entry.records) for entry in done)
    kept = " (kept in the dead stream)" if args.keep else ""
    print(f"{record_count} record(s) replayed as {len(done)} entr(ies){kept}")
    return 1 if refused else 0


def _record_ids(records: list[DeadLetter]) -> str:
    return ", ".join(f"{r.dead_id} ({r.group})" if r.group else r.dead_id for r in records)


async def _purge(
    redis: aioredis.Redis, stream: str, chosen: list[DeadLetter], args: argparse.Namespace
) -> int:
    if not chosen:
        print("nothing to purge")
        return 0
    for summary in summarize(chosen):
        print(f"{summary.count:>6}  {one_line(summary.reason)}")
    if not args.yes and not _confirm(f"Delete these {len(chosen)} record(s) from {stream}?"):
        print("aborted: nothing deleted (pass --yes to confirm without a prompt)", file=sys.stderr)
        return 1
    deleted = await purge(redis, stream, chosen)
    print(f"{deleted} record(s) deleted from {stream}")
    return 0


def main(argv: list[str]) -> int:
    """Entry point of `stocktrack dead`."""
    return asyncio.run(_run(_parser().parse_args(argv)))
