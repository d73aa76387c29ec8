"""The ``geocluster`` command line (CONTRACT.md, "CLI").

Each module in :data:`SUBCOMMAND_MODULES` adds its subcommands through
``register(subparsers)``; a handler takes the parsed arguments and returns
an exit code. Domain errors become ``geocluster: error: <reason>`` and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from geocluster import __version__
from geocluster.errors import GeoclusterError

SUBCOMMAND_MODULES = ("ingest", "clusters", "specialization", "inequality", "assets")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="geocluster",
        description="Find industrial and territorial clusters and measure regional inequality.",
    )
    parser.add_argument("--version", action="version", version=f"geocluster {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"geocluster.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns (and exits with) the exit code."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
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
        sys.exit(code)
    return code


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or exc.__class__.__name__
