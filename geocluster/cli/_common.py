"""Helpers shared by the CLI subcommands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the workspace imports the science stack: only when a command runs
    from geocluster.workspace import Workspace


def default_workspace() -> str:
    """``$GEOCLUSTER_WORKSPACE``, else ``./workspace`` (CONTRACT.md)."""
    return os.environ.get("GEOCLUSTER_WORKSPACE") or "workspace"


def add_workspace_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--workspace DIR`` and ``--store URL``."""
    parser.add_argument(
        "--workspace",
        default=None,
        metavar="DIR",
        help="workspace directory (default: $GEOCLUSTER_WORKSPACE or ./workspace)",
    )
    parser.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="keep datasets and runs in PostGIS instead: postgresql://user@host/db "
        "(default: $GEOCLUSTER_STORE, else the workspace folder)",
    )


def add_engine_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--engine local|dask`` and ``--scheduler ADDRESS``."""
    parser.add_argument(
        "--engine",
        choices=("local", "dask"),
        default=None,
        help="analysis engine (default: $GEOCLUSTER_ENGINE, else local); dask with no "
        "--scheduler starts a LocalCluster on this machine",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 ($GEOCLUSTER_DASK_SCHEDULER)",
    )


def store_url(args: argparse.Namespace) -> str | None:
    """``--store``, else ``$GEOCLUSTER_STORE``, else None (the workspace folder)."""
    return getattr(args, "store", None) or os.environ.get("GEOCLUSTER_STORE") or None


def engine_choice(args: argparse.Namespace) -> tuple[str, str | None]:
    """(engine, scheduler) from the flags, else ``$GEOCLUSTER_ENGINE`` / ``_DASK_SCHEDULER``."""
    engine = getattr(args, "engine", None) or os.environ.get("GEOCLUSTER_ENGINE") or "local"
    scheduler = getattr(args, "scheduler", None) or os.environ.get("GEOCLUSTER_DASK_SCHEDULER")
    return engine, scheduler or None


def open_ws(args: argparse.Namespace) -> Workspace:
    """The workspace named by ``--workspace``/``--store`` (or the defaults), its engine set."""
    from geocluster.workspace import Workspace

    ws = Workspace(
        getattr(args, "workspace", None) or default_workspace(), store_url=store_url(args)
    )
    if ws.notice:
        print(f"geocluster: {ws.notice}", file=sys.stderr)
    ws.use_engine(*engine_choice(args))
    return ws


#: Documents longer than this (in compact form) are printed compact, not indented.
INDENT_MAX_CHARS = 1_000_000


def print_json(obj: Any) -> None:
    """Print a JSON document to stdout (numpy scalars and dates become text).

    Indented by 2 spaces, except a document over :data:`INDENT_MAX_CHARS` characters
    (a national scan's outlines: 7 MB), which is printed compact: Python 3.11's JSON
    encoder is C only without indentation, 5x faster, and such a document is read
    by tools, not people.
    """
    text = json.dumps(obj, default=_default, allow_nan=False)
    if len(text) <= INDENT_MAX_CHARS:
        text = json.dumps(obj, indent=2, default=_default, allow_nan=False)
    sys.stdout.write(text)
    sys.stdout.write("\n")


def _default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Callable[[float, str], None]]:
    """Yield a progress callback ``(fraction, message)`` drawing a rich bar on stderr.

    Silent when disabled (``--json``) or when stderr is not a terminal, unless
    ``$GEOCLUSTER_PROGRESS`` is set.
    """
    if not enabled or not sys.stderr.isatty() and not os.environ.get("GEOCLUSTER_PROGRESS"):
        yield lambda fraction, message: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        transient=False,
    )
    bar.start()
    task = bar.add_task("starting", total=1.0)

    def update(fraction: float, message: str) -> None:
        bar.update(task, completed=min(max(float(fraction), 0.0), 1.0), description=message)

    try:
        yield update
    finally:
        bar.stop()


def one_shot_memory_pool() -> None:
    """Arrow's jemalloc pool for this one-shot process, where the wheel has it.

    Measured on 5M firms: a chunked ingest, which allocates and frees a chunk's
    buffers over and over, spent 2.2 s in the kernel with jemalloc against 2.8-4.1 s
    with the default mimalloc; all-firm clusters peaked at 2.05-2.10 GB against
    2.22-2.36 GB (mimalloc keeps a read's freed buffers), in the same time.
    """
    import pyarrow as pa

    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (NotImplementedError, AttributeError):  # built without jemalloc
        pass
