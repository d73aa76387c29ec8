"""The ``geocluster`` command line (CONTRACT.md, "CLI").

Each module in :data:`SUBCOMMAND_MODULES` adds its subcommands through
``register(subparsers)``; a handler takes the parsed arguments and returns
an exit code. Domain errors become ``geocluster: error: <reason>`` and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from geocluster import __version__
from geocluster.errors import GeoclusterError

SUBCOMMAND_MODULES = ("ingest", "clusters", "specialization", "inequality", "assets", "keys")


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
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.handler(args) or 0)
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
