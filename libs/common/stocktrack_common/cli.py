"""The `stocktrack` command: subcommands come from the "stocktrack.commands" entry points.

Each service registers its own subcommands (backfill, train, janitor, apikey, ...), so the
command grows with what is installed and common code never imports a service.

Every subcommand runs inside one error boundary (`run_command`), so an operator sees one readable
line and a documented exit code for every expected failure, never a traceback:

| exit | meaning |
|---|---|
| 0 | done (also when the reader of our output went away, e.g. `| head`) |
| 1 | a check failed, or a server could not be reached |
| 2 | usage or configuration error: a bad option, setting or URL |
| 130 | interrupted (Ctrl-C) |
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

import psycopg
from pydantic import ValidationError
from redis.exceptions import RedisError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

Handler = Callable[[list[str]], int | None]


class UsageError(Exception):
    """A bad option, setting or URL: the operator must change the command line or the environment."""


def _commands() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group="stocktrack.commands")}


_SECRET_WORDS = ("url", "key", "secret", "pepper", "password", "token")


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad setting as the environment variable an operator sets.

    The offending value is echoed only for settings that cannot hold a secret (URLs carry passwords).
    """
    parts = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error.get("loc", ())) or "value"
        given = error.get("input")
        secret = any(word in name.lower() for word in _SECRET_WORDS)
        printable = isinstance(given, str | int | float) and len(repr(given)) < 60
        shown = f" (got {given!r})" if printable and not secret else ""
        parts.append(f"{name.upper()}: {error.get('msg', 'invalid')}{shown}")
    return "; ".join(parts)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_command(prog: str, handler: Handler, argv: list[str]) -> int:
    """Run one subcommand and turn expected failures into one line on stderr and an exit code."""
    try:
        return int(handler(argv) or 0)
    except SystemExit as exc:  # argparse: it already printed its usage line
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader closed the pipe (`stocktrack dead list | head`): nothing failed. Point stdout at
        # /dev/null so the interpreter's final flush does not raise a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except ValidationError as exc:
        print(f"{prog}: configuration error: {describe_validation_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RedisError as exc:
        print(f"{prog}: Redis unreachable or refused: {_first_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except psycopg.Error as exc:
        print(f"{prog}: PostgreSQL unreachable or refused: {_first_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"{prog}: {type(exc).__name__}: {_first_line(exc)}", file=sys.stderr)
        return EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    commands = _commands()
    if not args or args[0] in {"-h", "--help"}:
        print("usage: stocktrack <command> [args]\n\ncommands:")
        for name in sorted(commands):
            print(f"  {name}")
        return EXIT_OK if args else EXIT_USAGE
    name, rest = args[0], args[1:]
    if name not in commands:
        print(f"stocktrack: unknown command {name!r}; try 'stocktrack --help'", file=sys.stderr)
        return EXIT_USAGE
    handler: Handler = commands[name].load()
    return run_command(f"stocktrack {name}", handler, rest)


if __name__ == "__main__":
    # Run the imported module's main, not this __main__ copy: the error classes the commands raise
    # (UsageError) must be the very classes the boundary catches.
    from stocktrack_common.cli import main as _main

    sys.exit(_main())
