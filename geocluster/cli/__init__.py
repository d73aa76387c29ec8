"""The ``geocluster`` command line (CONTRACT.md, "CLI").

Each command module adds its subcommands through
``register(subparsers)``; a handler takes the parsed arguments and returns an exit
code. The analysis subcommands are generated from the registry of analysis specs
(:mod:`geocluster.cli.analyses`). Domain errors become ``geocluster: error: <reason>``
and exit 2.

Building the parser imports no science stack, so ``geocluster --help`` is quick: the
commands of :mod:`geocluster.cli.ingest` (whose module imports the ingest stack) are
registered only when one of them runs, and listed by :data:`DEFERRED` otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from geocluster import __version__
from geocluster.errors import GeoclusterError

#: Commands of ``geocluster.cli.ingest`` and their one-line help (for the command list).
DEFERRED = {
    "ingest": "read, validate and store firms, assets, boundaries or indicators",
    "datasets": "list the workspace's datasets",
    "serve": "serve the API and the web map",
    "demo": "build the demo workspace (Mexico + Helsinki) and serve it",
}


def _command(argv: Sequence[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``argv``, only what that command line needs is imported."""
    from geocluster.cli import analyses, keys, report, workspace

    parser = argparse.ArgumentParser(
        prog="geocluster",
        description="Find industrial and territorial clusters and measure regional inequality.",
    )
    parser.add_argument("--version", action="version", version=f"geocluster {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    light = argv is not None and _command(argv) not in DEFERRED
    if light:
        for name, text in DEFERRED.items():
            sub.add_parser(name, help=text, add_help=False)
    else:
        from geocluster.cli import ingest

        ingest.register(sub)
    analyses.register(sub)
    workspace.register(sub)
    keys.register(sub)
    report.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except BrokenPipeError:
        # the reader (`| head`) has gone: stop quietly, as a SIGPIPE-killed tool would;
        # stdout goes to devnull so that the interpreter's final flush stays silent
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    except GeoclusterError as exc:
        print(f"geocluster: error: {_one_line(exc)}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("geocluster: interrupted", file=sys.stderr)
        code = 130
    if argv is None:
        # The command is done: the interpreter's final garbage collection would walk
        # every object still alive (a national scan's parsed outlines and frames: 0.3 s)
        # only to free them; frozen objects are skipped by it and freed as the process
        # ends. atexit handlers and flushes run as usual.
        import gc

        gc.freeze()
        sys.exit(code)
    return code


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__
