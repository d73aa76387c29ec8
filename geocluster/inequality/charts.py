"""Report charts as PNG bytes (matplotlib, Agg backend; no files, no global state).

Each function builds its own :class:`matplotlib.figure.Figure` (never ``pyplot``), so
it is safe in a server thread.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from geocluster.errors import InvalidInput

__all__ = ["decomposition_png", "lorenz_png", "series_png"]

_DPI = 100


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return buf.getvalue()


def lorenz_png(
    curves: Mapping[str, Sequence[Sequence[float]]],
    *,
    title: str = "Lorenz curve",
    weighted: bool = False,
) -> bytes:
    """Lorenz curves with the line of equality.

    Parameters
    ----------
    curves : mapping label -> list of [x, y] points
        One curve per label (e.g. per year), points from (0, 0) to (1, 1).
    title : str
    weighted : bool
        Label the x axis with population (True) or regions (False).

    Returns
    -------
    bytes
        PNG image.
    """
    if not curves:
        raise InvalidInput("expected at least one Lorenz curve to draw, got none")
    fig = Figure(figsize=(5.5, 5.0))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.5", linestyle="--", linewidth=1, label="equality")
    for label, pts in curves.items():
        arr = np.asarray(pts, dtype=float)
        ax.plot(arr[:, 0], arr[:, 1], marker="." if len(arr) < 60 else None, label=str(label))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("cumulative share of population" if weighted else "cumulative share of regions")
    ax.set_ylabel("cumulative share of the total")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    return _png(fig)


def series_png(
    years: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str = "Inequality over time",
    ylabel: str = "index",
) -> bytes:
    """Line chart of one or more indices over the years (None values are gaps)."""
    if not series or len(years) == 0:
        raise InvalidInput("expected at least one index and one year to draw, got none")
    fig = Figure(figsize=(7.0, 4.0))
    ax = fig.add_subplot()
    x = np.asarray(years, dtype=float)
    for label, vals in series.items():
        y = np.array([np.nan if v is None else v for v in vals], dtype=float)
        ax.plot(x, y, marker="o", label=str(label))
    ax.set_xlabel("year")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return _png(fig)


def decomposition_png(
    labels: Sequence[str],
    between: Sequence[float],
    within: Sequence[float],
    *,
    title: str = "Theil T: between and within groups",
) -> bytes:
    """Stacked bars of the between- and within-group parts of Theil T."""
    if len(labels) == 0:
        raise InvalidInput("expected at least one decomposition to draw, got none")
    if not (len(labels) == len(between) == len(within)):
        raise InvalidInput("expected as many between and within values as labels")
    fig = Figure(figsize=(max(4.0, 0.8 * len(labels) + 2), 4.0))
    ax = fig.add_subplot()
    pos = np.arange(len(labels))
    b = np.asarray(between, dtype=float)
    w = np.asarray(within, dtype=float)
    ax.bar(pos, b, label="between groups", color="#c0504d")
    ax.bar(pos, w, bottom=b, label="within groups", color="#4f81bd")
    ax.set_xticks(pos, [str(s) for s in labels])
    ax.set_ylabel("Theil T")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return _png(fig)
