"""Matplotlib figures of the region report, as PNG bytes.

Every chart has a human title, axis labels with units and a source note under it, so a
figure copied out of the report still says what it shows and where the data came from.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

_REGION = "#c0392b"
_PEER = "#7f8c8d"
_MEAN = "#2c3e50"


def _figure(width_in: float = 7.0, height_in: float = 3.6):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width_in, height_in), dpi=120)
    return plt, fig, ax


def _png(plt, fig, source: str | None) -> bytes:
    if source:
        fig.text(0.01, 0.01, f"Source: {source}", fontsize=7, color="#555555", ha="left")
        fig.tight_layout(rect=(0, 0.05, 1, 1))
    else:
        fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def series_chart(
    title: str,
    y_label: str,
    region: tuple[str, Sequence[tuple[int, float]]],
    peers: Mapping[str, Sequence[tuple[int, float]]],
    mean: Sequence[tuple[int, float]] | None,
    *,
    source: str | None,
) -> bytes:
    """One indicator over time: the region (bold), its peers (thin) and the mean.

    Parameters
    ----------
    title, y_label : str
        Human title and y axis label (with the unit).
    region : (label, [(year, value), ...])
    peers : mapping label -> [(year, value), ...]
    mean : [(year, value), ...], optional
        Mean over all regions of the level.
    source : str, optional
        Source note printed under the chart.
    """
    plt, fig, ax = _figure()
    for label, points in peers.items():
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, color=_PEER, lw=1, alpha=0.8, marker=".", label=label)
    if mean:
        xs, ys = zip(*mean, strict=True)
        ax.plot(xs, ys, color=_MEAN, lw=1.2, ls="--", label="Mean of all regions")
    label, points = region
    if points:
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, color=_REGION, lw=2.6, marker="o", label=label, zorder=5)
    _label_line_ends(ax, {name: pts for name, pts in peers.items() if pts}, _PEER)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("Year")
    ax.set_ylabel(y_label, fontsize=8)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    keep = [(h, lab) for h, lab in zip(handles, labels, strict=True)
            if lab in (label, "Mean of all regions")]  # fmt: skip
    if peers:
        keep.append((plt.Line2D([], [], color=_PEER, lw=1), "Peer regions"))
    ax.legend(*zip(*keep, strict=True), fontsize=7, loc="best")
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    return _png(plt, fig, source)


def _label_line_ends(ax, lines: Mapping[str, Sequence[tuple[int, float]]], color: str) -> None:
    """Name each line at its last point, nudged apart so that no two labels overlap."""
    if not lines:
        return
    x_max = max(pts[-1][0] for pts in lines.values())
    x_min = min(pts[0][0] for pts in lines.values())
    span = max(x_max - x_min, 1)
    ax.set_xlim(right=x_max + 0.16 * span)  # room for the labels
    lo, hi = ax.get_ylim()
    gap = 0.045 * (hi - lo)
    ends = sorted((pts[-1][1], name, pts[-1]) for name, pts in lines.items())
    placed: list[float] = []
    for y, name, (x, _) in ends:
        y_text = max(y, placed[-1] + gap) if placed else y
        placed.append(y_text)
        ax.annotate(name, xy=(x, y), xytext=(x + 0.02 * span, y_text), fontsize=6.5,
                    color=color, va="center", textcoords="data",
                    arrowprops={"arrowstyle": "-", "color": color, "lw": 0.4})  # fmt: skip


def inequality_chart(
    years: Sequence[int],
    indices: Mapping[str, Sequence[float]],
    *,
    title: str,
    source: str | None,
) -> bytes:
    """Inequality indices across regions over time (one line per index)."""
    plt, fig, ax = _figure(7.0, 3.2)
    for name, values in indices.items():
        ax.plot(list(years), list(values), marker="o", lw=1.6, label=name)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("Year")
    ax.set_ylabel("Index value (0 = equality)", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _png(plt, fig, source)


def components_chart(rows: Sequence[Mapping[str, Any]], components: Sequence[tuple[str, str]],
                     *, title: str, source: str | None) -> bytes:  # fmt: skip
    """Horizontal bars of the ranking components (0..1): one group per component."""
    import numpy as np

    n = max(1, len(rows))
    plt, fig, ax = _figure(7.0, min(1.4 + 0.28 * len(components) * (1 + 0.4 * (n - 1)), 8.0))
    bar = 0.8 / n
    y = np.arange(len(components))
    for j, row in enumerate(rows):
        vals = [float(row[k]) if row.get(k) is not None else np.nan for k, _ in components]
        ax.barh(y + j * bar, vals, height=bar, label=str(row["label"]))
    ax.set_yticks(y + bar * (n - 1) / 2, [label for _, label in components], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("Component score (0 = lowest, 1 = highest among the run's clusters)", fontsize=8)
    ax.set_title(title, fontsize=11)
    if n > 1:
        ax.legend(fontsize=6, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return _png(plt, fig, source)


def founding_chart(
    points: Sequence[tuple[int, float | None, float | None]], *, title: str, source: str | None
) -> bytes:
    """Firms by founding year (bars, left axis) and the stock of firms (line, right axis).

    Parameters
    ----------
    points : [(year, new firms, stock of firms), ...]
        None for a suppressed value (left out of the chart).
    """
    plt, fig, ax = _figure(7.0, 3.2)
    years = [y for y, n, _ in points if n is not None]
    ax.bar(years, [n for _, n, _ in points if n is not None], color=_PEER, width=0.8,
           label="Firms founded that year")  # fmt: skip
    ax.set_xlabel("Founding year")
    ax.set_ylabel("Firms founded (number)", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    stock = [(y, s) for y, _, s in points if s is not None]
    if stock:
        ax2 = ax.twinx()
        ax2.plot(*zip(*stock, strict=True), color=_REGION, lw=2.2, label="Stock of firms")
        ax2.set_ylabel("Stock of firms alive today (number)", fontsize=8)
        ax2.set_ylim(bottom=0)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        # upper centre: the first bar holds every firm founded before the series starts
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper center")
    ax.set_title(title, fontsize=11)
    return _png(plt, fig, source)


def locator_map(shapes: Any, region_id: str, *, title: str, source: str | None) -> bytes:
    """The regions of the level in grey with ``region_id`` highlighted."""
    plt, fig, ax = _figure(5.5, 3.4)
    shapes = shapes.to_crs(4326) if shapes.crs is not None and not shapes.crs.is_geographic \
        else shapes  # fmt: skip
    mine = shapes["region_id"].astype(str) == str(region_id)
    shapes[~mine].plot(ax=ax, color="#e5e5e5", edgecolor="#999999", linewidth=0.4)
    shapes[mine].plot(ax=ax, color=_REGION, edgecolor="#5a1a12", linewidth=0.8)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("Longitude (°)", fontsize=8)
    ax.set_ylabel("Latitude (°)", fontsize=8)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    return _png(plt, fig, source)
