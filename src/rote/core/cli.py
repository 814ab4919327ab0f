"""What every `rote` command shares: the one error path, the exit contract and small option helpers.

Each domain's `cli.py` is a typer app whose commands parse options, call the library and end with
`RunFolder.finish`, returning its status. `run_app` runs the whole command line and is the only place that turns
exceptions into exit codes:

- 0: success;
- 2: bad input, with exactly one line on stderr (`error: ...`): a `RoteError` from the library, a usage error
  from the parser (unknown option, missing value), or an operating-system refusal on a user's path (read-only
  folder, a file where a folder should be); also a run that finished with some parts failing on bad input;
- 1: an internal error (a bug in rote): the traceback is printed.

Library errors describe arguments by their Python names in backticks (`` `threshold` must be in (0, 1] ``); here
they become the command's flags (`--threshold`) when the command has such an option. Warnings that third-party
libraries raise while a command runs are held back, and printed after a successful run (one line each, unless
`--quiet`), never before an error line. An unfinished run folder is removed or marked FAILED on any error.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from rote.core.errors import RoteError
from rote.core.runs import abort_active_runs

_ARG = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


def split_list(values: Sequence[str] | None) -> list[str]:
    """Values given as repeated options and/or comma-separated (`--numeric a,b --numeric c` -> [a, b, c])."""
    out: list[str] = []
    for v in values or []:
        out.extend(c.strip() for c in str(v).split(",") if c.strip())
    return out


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _is(exc: BaseException, name: str) -> bool:
    """Whether `exc` is click's exception `name`, matched by class name: typer >= 0.20 ships its own copy of click,
    so the same error comes from one of two class hierarchies."""
    return any(c.__name__ == name for c in type(exc).__mro__)


def _command_options(app: Any, argv: Sequence[str]) -> set[str]:
    """Long option names (`--threshold`) of the command that `argv` invokes (empty when it cannot be found)."""
    import typer

    try:
        cmd = typer.main.get_command(app)
        for token in argv:
            if not hasattr(cmd, "list_commands"):  # a command, not a group
                break
            if token.startswith("-"):
                continue
            sub = cmd.get_command(None, token)
            if sub is None:
                break
            cmd = sub
        return {opt for p in cmd.params for opt in getattr(p, "opts", []) if opt.startswith("--")}
    except Exception:  # noqa: BLE001 - naming flags is a nicety; never let it hide the real error
        return set()


def flag_message(message: str, options: set[str]) -> str:
    """Replace backticked argument names by the command's flags (`prefix_tokens` -> --prefix-tokens)."""

    def sub(m: re.Match) -> str:
        flag = "--" + m.group(1).replace("_", "-")
        return flag if flag in options else m.group(0)

    return _ARG.sub(sub, message)


def _os_error_line(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else ""
    what = exc.strerror or type(exc).__name__
    return f"{where}: {what}; check the path and its permissions".lstrip(": ")


def _fail(reason: str, status: int = 2) -> int:
    abort_active_runs(reason)
    print(f"error: {reason}", file=sys.stderr)
    return status


def run_app(app: Any, argv: Sequence[str] | None, prog_name: str = "rote") -> int:
    """Run a typer app on `argv` (default: sys.argv[1:]) under the exit contract; returns the exit status."""
    import errno

    args = list(sys.argv[1:] if argv is None else argv)
    quiet = "--quiet" in args
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            rc = app(args=args, prog_name=prog_name, standalone_mode=False)
            status = rc if isinstance(rc, int) and not isinstance(rc, bool) else 0
        except RoteError as exc:
            return _fail(flag_message(one_line(str(exc)), _command_options(app, args)), exc.exit_code)
        except Exception as exc:
            if _is(exc, "NoArgsIsHelpError"):  # `rote tabular` alone: the group's help, as with --help
                ctx = getattr(exc, "ctx", None)
                print(ctx.get_help() if ctx is not None else one_line(exc.format_message()))
                return 0
            if _is(exc, "UsageError"):  # unknown option, missing or malformed value: one line, exit 2
                ctx = getattr(exc, "ctx", None)
                hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
                return _fail(f"{one_line(exc.format_message())}{hint}")
            if _is(exc, "Exit"):
                return int(getattr(exc, "exit_code", 0) or 0)
            if _is(exc, "Abort"):
                return _fail("interrupted", 1)
            if isinstance(
                exc, (PermissionError, NotADirectoryError, IsADirectoryError, FileExistsError, FileNotFoundError)
            ) or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT)):
                return _fail(_os_error_line(exc))  # the user's path or disk refused, not a bug in rote
            abort_active_runs(f"internal error: {type(exc).__name__}: {exc}")
            raise
        except BaseException as exc:  # KeyboardInterrupt, SystemExit from deep inside
            abort_active_runs(f"interrupted: {type(exc).__name__}")
            raise
    if status == 0 and not quiet:
        seen: set[str] = set()
        for w in caught:
            line = f"warning: {one_line(str(w.message))}"
            if line not in seen:
                seen.add(line)
                print(line, file=sys.stderr)
    return status
