"""The `stocktrack` command: subcommands come from the "stocktrack.commands" entry points.

Each service registers its own subcommands (backfill, train, janitor, apikey, ...), so the
command grows with what is installed and common code never imports a service.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points


def _commands() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group="stocktrack.commands")}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    commands = _commands()
    if not args or args[0] in {"-h", "--help"}:
        print("usage: stocktrack <command> [args]\n\ncommands:")
        for name in sorted(commands):
            print(f"  {name}")
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in commands:
        print(f"stocktrack: unknown command {name!r}; try 'stocktrack --help'", file=sys.stderr)
        return 2
    handler: Callable[[list[str]], int | None] = commands[name].load()
    return int(handler(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
