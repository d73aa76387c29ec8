"""One reader per input role, shared by every analysis, with one validation each.

Every data read of :mod:`geocluster.analyses` goes through here (the store will push
``filters=`` down into these readers). Each reader returns the frame and the exact
version it read, so a result can name its inputs (``mexico_firms@2``).

Explicit inputs: an analysis that needs a dataset or a run takes it as a parameter;
:func:`choose_dataset` and :func:`choose_run` pick a default only when the workspace
has exactly one candidate, otherwise they raise :class:`InvalidInput` listing them.
Candidates are only the inputs the caller may see: the edge wraps each analysis call in
:func:`visible_to` with the caller's visibility rules (``api.auth.can_see_dataset``,
``can_see_run``), so a viewer's default is never a private firms register and the
listing in a message never names one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import pandas as pd

from geocluster.errors import InvalidInput, MissingColumns, WrongKind


def version_of(info: Any) -> str:
    """``id@version`` of a dataset info (what a result records as its input)."""
    return f"{info.id}@{info.version}"


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "none"


# -- choosing inputs ------------------------------------------------------------------------
#: ``(dataset rule, run rule)`` of the caller of the analysis running in this context;
#: None: no rule (library use, CLI, open mode: everything is a candidate).
_VISIBLE: ContextVar[tuple[Callable[[Any], bool] | None, Callable[[Any], bool] | None]] = (
    ContextVar("geocluster_visible_inputs", default=(None, None))
)


@contextmanager
def visible_to(
    dataset: Callable[[Any], bool] | None = None, run: Callable[[Any], bool] | None = None
) -> Iterator[None]:
    """Within the block, default inputs are chosen among those the rules accept.

    Parameters
    ----------
    dataset : callable, optional
        ``dataset(info) -> bool``: whether the caller may see a dataset.
    run : callable, optional
        ``run(run_info) -> bool``: whether the caller may see a run.
    """
    token = _VISIBLE.set((dataset, run))
    try:
        yield
    finally:
        _VISIBLE.reset(token)


def choose_dataset(
    ws: Any,
    given: str | None,
    kind: str,
    *,
    param: str,
    optional: bool = False,
    candidate: Callable[[Any], bool] | None = None,
) -> Any | None:
    """The dataset ``given`` (checked to be of ``kind``), or the only candidate.

    Parameters
    ----------
    ws : Workspace
    given : str or None
        A dataset id (``name`` or ``name@version``) named by the caller.
    kind : str
        Dataset kind (firms, boundaries, indicators, assets).
    param : str
        Parameter name, for the error message.
    optional : bool
        With no candidate at all return None instead of raising.
    candidate : callable, optional
        ``candidate(info) -> bool`` narrows the workspace's datasets of ``kind`` to
        those that could apply (e.g. holding the region asked for). Only datasets the
        caller may see (:func:`visible_to`) are candidates.

    Raises
    ------
    InvalidInput
        No candidate (unless ``optional``), or several: the message lists them.
    """
    if given is not None:
        return ws.require(given, kind)
    visible = _VISIBLE.get()[0]
    infos = sorted(
        (d for d in ws.datasets() if d.kind == kind and (visible is None or visible(d))),
        key=lambda d: d.id,
    )
    if candidate is not None:
        infos = [d for d in infos if candidate(d)]
    if len(infos) == 1:
        return infos[0]
    if not infos:
        if optional:
            return None
        raise InvalidInput(f"expected '{param}': no {kind} dataset in the workspace applies")
    raise InvalidInput(
        f"expected '{param}': {len(infos)} {kind} datasets could apply "
        f"({_listing([version_of(d) for d in infos])}); name one"
    )


def choose_run(
    ws: Any,
    given: str | None,
    kind: str,
    *,
    param: str,
    optional: bool = False,
    candidate: Callable[[Any], bool] | None = None,
) -> Any | None:
    """The run ``given`` (checked to be of ``kind``), or the only candidate run.

    Raises
    ------
    InvalidInput
        No candidate (unless ``optional``), or several: the message lists their ids.
    """
    if given is not None:
        return read_run(ws, given, kind)
    visible = _VISIBLE.get()[1]
    runs = [
        r
        for r in ws.runs(kind)
        if (visible is None or visible(r)) and (candidate is None or candidate(r))
    ]
    if len(runs) == 1:
        return runs[0]
    if not runs:
        if optional:
            return None
        raise InvalidInput(f"expected '{param}': no {kind} run in the workspace applies")
    raise InvalidInput(
        f"expected '{param}': {len(runs)} {kind} runs could apply "
        f"({_listing([r.id for r in runs])}); name one"
    )


def read_run(ws: Any, run_id: str, kind: str) -> Any:
    """The run ``run_id``, checked to be of ``kind`` (else :class:`WrongKind`)."""
    run = ws.run(run_id)
    if run.kind != kind:
        raise WrongKind(f"expected a {kind} run, got {run_id!r} which is {run.kind}")
    return run


def run_crs(run: Any) -> str:
    """The metric working CRS a run was computed in."""
    crs = run.params.get("working_crs") or run.summary.get("working_crs")
    if not crs:
        raise InvalidInput(f"run {run.id!r} records no working CRS")
    return crs


# -- firms ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Firms:
    """Firms read for an analysis: the dataset version, all its firms and the selection."""

    info: Any
    all: gpd.GeoDataFrame
    selected: gpd.GeoDataFrame

    @property
    def input(self) -> str:
        """``id@version`` read."""
        return version_of(self.info)


def sectors_list(sectors: Iterable[object] | str | None) -> list[str] | None:
    """Sector codes as a list of strings (a single code allowed)."""
    if sectors is None:
        return None
    if isinstance(sectors, str):
        return [sectors]
    return [str(s) for s in sectors]


def custom_groups(ws: Any, sector_group: str | None) -> dict[str, list[str]] | None:
    """The workspace's own sector groups (``geocluster groups add``), when one is asked for."""
    if sector_group is None or not hasattr(ws, "sector_groups"):
        return None
    groups = ws.sector_groups()
    return {name: g["codes"] for name, g in groups.items()} or None


def division_filter(
    sectors: Iterable[object] | None,
    sector_group: str | None,
    custom: dict[str, list[str]] | None = None,
) -> list[tuple[str, str, Any]] | None:
    """A storage filter on ``isic_division`` covering a sector selection, or None (all).

    A superset of :func:`geocluster.clustering.firms.select_firms`: every division that
    a code (its first two digits), a section letter or a sector group can match.
    """
    if sectors is None and sector_group is None:
        return None
    from geocluster.clustering.firms import _normalise_user_codes
    from geocluster.sectors import group_divisions, section_of

    divisions: set[str] = set()
    if sectors is not None:
        letters, prefixes = _normalise_user_codes(sectors_list(sectors))
        divisions |= {p[:2] for p in prefixes}
        if letters:
            every = pd.Series([f"{d:02d}" for d in range(1, 100)])
            divisions |= set(every[section_of(every).isin(letters).fillna(False)].tolist())
    if sector_group is not None:
        divisions |= set(group_divisions(sector_group, custom))
    return [("isic_division", "in", sorted(divisions))]


def _firm_read_plan(
    ws: Any,
    info: Any,
    columns: Sequence[str] | None,
    sectors: Iterable[object] | None,
    sector_group: str | None,
    pushdown: bool,
) -> tuple[list[str] | None, list[tuple[str, str, Any]] | None, dict[str, list[str]] | None]:
    """``(columns to read, storage filter, custom groups)`` of a firms read."""
    wanted = None
    if columns is not None:
        wanted = [c for c in columns if c in (info.columns or columns)] or None
    # Push the selection down to storage: only the row groups of the divisions the
    # sectors or group can match are read (rows are stored division by division);
    # select_firms then applies the exact rule (classes, groups, sections).
    custom = custom_groups(ws, sector_group)
    filters = (
        division_filter(sectors, sector_group, custom)
        if pushdown and "isic_division" in info.columns
        else None
    )
    if filters is not None and wanted is not None and "isic_division" not in wanted:
        wanted = [*wanted, "isic_division"]
    return wanted, filters, custom


def read_firm_table(
    ws: Any,
    firms: str,
    *,
    columns: Sequence[str] | None = None,
    sectors: Iterable[object] | None = None,
    sector_group: str | None = None,
    require_selection: bool = True,
) -> tuple[Any, Any]:
    """The selected firms as a :class:`~geocluster.clustering.firms.FirmTable`.

    The firms of :func:`read_firms` (``crs="working"``, ``pushdown=True``), same rows,
    same order, same attribute values, but the working coordinates stay two float
    columns: no point object is built for a register that clustering only needs the
    coordinates of. Falls back to :func:`read_firms` for a dataset stored without
    working coordinates.

    Returns
    -------
    (DatasetInfo, FirmTable)
        The version read and the selected firms.
    """
    from geocluster.clustering.firms import FirmTable, select_firms
    from geocluster.crs import ensure_projected

    info = ws.require(firms, "firms")
    wanted, pushdown, custom = _firm_read_plan(ws, info, columns, sectors, sector_group, True)
    got = ws.read_xy(firms, columns=wanted, filters=pushdown) if info.working_crs else None
    if got is None:
        read = read_firms(
            ws,
            firms,
            columns=columns,
            sectors=sectors,
            sector_group=sector_group,
            require_selection=require_selection,
            pushdown=True,
        )
        return read.info, FirmTable.from_frame(read.selected)
    frame, xy = got
    if "firm_id" not in frame.columns:
        raise InvalidInput(f"expected a firm_id column in dataset {firms!r}, got {info.columns}")
    sectors = sectors_list(sectors)
    selected = select_firms(frame, sectors=sectors, sector_group=sector_group, custom_groups=custom)
    if require_selection and len(selected) == 0:
        _nothing_selected(firms, frame, sectors, sector_group)
    rows = None
    if len(selected) != len(frame):
        rows = selected.index.to_numpy()
        xy = xy[rows]
        selected = selected.reset_index(drop=True)
    # the very version read (a newer one may land meanwhile), the same rows
    stored_lonlat = functools.partial(ws.read_lonlat, version_of(info), filters=pushdown, rows=rows)
    # points from the stored coordinates are never missing or empty: no row to drop
    return info, FirmTable(
        selected, xy, ensure_projected(info.working_crs), stored_lonlat=stored_lonlat
    )


def _nothing_selected(
    firms: str, frame: Any, sectors: list[str] | None, sector_group: str | None
) -> None:
    what = []
    if sectors:
        what.append(f"sectors {sectors}")
    if sector_group:
        what.append(f"sector group {sector_group!r}")
    raise InvalidInput(
        f"expected firms to analyse, got none after filtering dataset {firms!r} "
        f"({len(frame)} firms) by {' or '.join(what) or 'nothing'}"
    )


def read_firms(
    ws: Any,
    firms: str,
    *,
    columns: Sequence[str] | None = None,
    sectors: Iterable[object] | None = None,
    sector_group: str | None = None,
    crs: str | None = "working",
    bbox: tuple[float, float, float, float] | None = None,
    require_selection: bool = True,
    pushdown: bool = False,
) -> Firms:
    """Firms of a sector set, without empty geometries, in ``crs``.

    Parameters
    ----------
    ws : Workspace
    firms : str
        Firms dataset id (``name`` or ``name@version``).
    columns : sequence of str, optional
        Columns wanted besides the geometry (those the dataset lacks are skipped).
    sectors, sector_group : optional
        Selection, see :func:`geocluster.clustering.firms.select_firms`.
    crs : str or None
        ``"working"`` (the dataset's metric CRS), None (lon/lat) or a CRS string.
    bbox : tuple, optional
        lon/lat bounds to read.
    require_selection : bool
        Raise when the selection is empty.
    pushdown : bool
        Read only the divisions the selection can match (``all`` is then those
        divisions' firms, not the whole register): for analyses that use the selection
        only.

    Raises
    ------
    InvalidInput
        No ``firm_id`` column, or no firm left after the selection.
    """
    from geocluster.clustering.firms import select_firms

    info = ws.require(firms, "firms")
    wanted, pushdown, custom = _firm_read_plan(ws, info, columns, sectors, sector_group, pushdown)
    frame = ws.read(firms, crs=crs, columns=wanted, bbox=bbox, filters=pushdown)
    if "firm_id" not in frame.columns:
        raise InvalidInput(f"expected a firm_id column in dataset {firms!r}, got {info.columns}")
    frame = frame[~frame.geometry.isna() & ~frame.geometry.is_empty].reset_index(drop=True)
    sectors = sectors_list(sectors)
    selected = select_firms(frame, sectors=sectors, sector_group=sector_group, custom_groups=custom)
    if require_selection and len(selected) == 0:
        _nothing_selected(firms, frame, sectors, sector_group)
    return Firms(info=info, all=frame, selected=selected.reset_index(drop=True))


def read_firm_points(ws: Any, firms: str, *, columns: Sequence[str]) -> Firms:
    """Firms as a plain table of working-CRS ``x``, ``y`` plus ``columns``, no geometry.

    For analyses that only need where each firm is and a few attributes (region
    counts): the stored working coordinates are read as two float columns, no point
    object is built and no other column is decoded. Falls back to :func:`read_firms`
    for a dataset stored without working coordinates.
    """
    info = ws.require(firms, "firms")
    have = set(ws.store.schema(info.layer).names)
    if not {"x", "y"} <= have:
        read = read_firms(ws, firms, require_selection=False)
        xy = read.all.geometry
        frame = pd.DataFrame({c: read.all[c] for c in columns if c in read.all.columns})
        frame.insert(0, "x", xy.x.to_numpy())
        frame.insert(1, "y", xy.y.to_numpy())
        return Firms(info=info, all=frame, selected=frame)
    wanted = ["x", "y", *[c for c in columns if c in have and c not in ("x", "y")]]
    table = ws.read_arrow(firms, columns=wanted)
    frame = table.to_pandas(types_mapper=_arrow_types)
    import numpy as np

    # NumPy on the float columns' own buffers (pandas' notna copies and boxes 5M rows)
    x, y = frame["x"].to_numpy(float, copy=False), frame["y"].to_numpy(float, copy=False)
    ok = ~(np.isnan(x) | np.isnan(y))
    if not ok.all():
        frame = frame[ok].reset_index(drop=True)
    return Firms(info=info, all=frame, selected=frame)


def _arrow_types(t: Any) -> Any:
    import pyarrow as pa

    # text as pandas' Arrow-backed strings (no 5M Python str objects), numbers as numpy
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return pd.ArrowDtype(t)
    return None


# -- boundaries -----------------------------------------------------------------------------
def read_boundaries(
    ws: Any,
    boundaries: str,
    *,
    crs: str | None = "working",
    level: int | None = None,
    all_levels: bool = False,
    columns: Sequence[str] | None = None,
    bbox: Sequence[float] | None = None,
) -> tuple[gpd.GeoDataFrame, Any]:
    """Regions of one boundaries level, ``region_id`` as text and unique.

    Parameters
    ----------
    ws : Workspace
    boundaries : str
        Boundaries dataset id.
    crs : str or None
        Target CRS (``"working"``: the dataset's own metric CRS).
    level : int, optional
        The level (default: the finest the dataset has, so regions do not overlap).
    all_levels : bool
        Keep every level (a profile looks a region up at any level); ids must still be
        unique across the dataset.
    bbox : (minlon, minlat, maxlon, maxlat), optional
        Only regions meeting it (e.g. the firms' extent): world boundaries projected
        into one country's working CRS would otherwise come back distorted.

    Returns
    -------
    (GeoDataFrame, DatasetInfo)
        The regions (``attrs["level"]`` is the level used, None with ``all_levels``)
        and the version read.

    Raises
    ------
    MissingColumns
        No ``region_id`` column.
    InvalidInput
        An unknown level, a level on a dataset without levels, or duplicate ids.
    """
    info = ws.require(boundaries, "boundaries")
    regions = ws.read(
        boundaries,
        crs=crs,
        columns=list(columns) if columns else None,
        bbox=tuple(bbox) if bbox else None,
    )
    if "region_id" not in regions.columns:
        raise MissingColumns(
            f"expected a region_id column in boundaries, got {list(regions.columns)}"
        )
    has_levels = "level" in regions.columns and regions["level"].notna().any()
    if all_levels:
        if level is not None:
            raise InvalidInput("expected either a level or all levels, got both")
    elif has_levels:
        levels = sorted(int(v) for v in pd.unique(pd.to_numeric(regions["level"]).dropna()))
        if level is None:
            level = levels[-1]
        elif int(level) not in levels:
            raise InvalidInput(f"expected level in {levels} for {boundaries!r}, got {level!r}")
        regions = regions[pd.to_numeric(regions["level"], errors="coerce") == int(level)]
    elif level is not None:
        raise InvalidInput(f"boundaries {boundaries!r} have no level column; got level={level}")
    regions = regions.reset_index(drop=True)
    regions["region_id"] = regions["region_id"].astype(str)
    if regions["region_id"].duplicated().any():
        dup = regions.loc[regions["region_id"].duplicated(), "region_id"].unique()[:5]
        raise InvalidInput(
            f"expected unique region ids in boundaries {boundaries!r}, got duplicates {list(dup)}"
        )
    regions.attrs["level"] = None if all_levels else level
    return regions, info


# -- indicators -----------------------------------------------------------------------------
def read_indicators(ws: Any, indicators: str) -> tuple[pd.DataFrame, Any]:
    """The long indicators table (``region_id`` as text, ``year`` and ``value`` numeric).

    Raises
    ------
    MissingColumns
        A column of region_id, year, indicator, value is missing.
    """
    info = ws.require(indicators, "indicators")
    table = ws.read(indicators)
    missing = [c for c in ("region_id", "year", "indicator", "value") if c not in table.columns]
    if missing:
        raise MissingColumns(f"expected columns {missing} in indicators {indicators!r}")
    table = table.assign(
        region_id=table["region_id"].astype(str),
        indicator=table["indicator"].astype(str),
        value=pd.to_numeric(table["value"], errors="coerce"),
    )
    return table, info


def indicator_values(
    table: pd.DataFrame, indicator: str | None, year: int | None, *, dataset: str
) -> tuple[dict[str, float], int]:
    """``{region_id: value}`` of one indicator in ``year`` (default: its latest year)."""
    if not indicator:
        raise InvalidInput("expected an indicator name with indicators, got none")
    sel = table[table["indicator"] == str(indicator)]
    if sel.empty:
        known = sorted(table["indicator"].unique())[:20]
        raise InvalidInput(f"expected an indicator of {dataset!r} among {known}, got {indicator!r}")
    years = sorted(int(y) for y in sel["year"].dropna().unique())
    if year is None:
        year = years[-1]
    elif int(year) not in years:
        raise InvalidInput(f"expected year in {years} for {indicator!r}, got {year!r}")
    sel = sel[sel["year"] == int(year)]
    return dict(zip(sel["region_id"], sel["value"], strict=True)), int(year)


# -- assets ---------------------------------------------------------------------------------
def read_assets(
    ws: Any,
    assets: str,
    *,
    category: str | None = None,
    crs: str | None = "working",
    bbox: tuple[float, float, float, float] | None = None,
    require_any: bool = True,
) -> tuple[gpd.GeoDataFrame, Any]:
    """Assets (optionally of one category), canonical columns present, no empty geometry.

    Raises
    ------
    MissingColumns
        No ``category`` column.
    InvalidInput
        No asset left (of that category).
    """
    info = ws.require(assets, "assets")
    frame = ws.read(assets, crs=crs, bbox=bbox)
    if "category" not in frame.columns:
        raise MissingColumns(
            f"expected a 'category' column in assets {assets!r}, got {', '.join(frame.columns)}"
        )
    for col in ("asset_id", "name", "subtype", "designation"):
        if col not in frame.columns:
            frame[col] = None
    frame = frame[~frame.geometry.isna() & ~frame.geometry.is_empty]
    if category is not None:
        present = sorted(str(c) for c in frame["category"].dropna().unique())
        frame = frame[frame["category"] == category]
        if frame.empty:
            raise InvalidInput(
                f"expected assets of category {category!r} in {assets!r}, got none "
                f"(categories present: {', '.join(present) or 'none'})"
            )
    if frame.empty and require_any:
        raise InvalidInput(f"expected assets in dataset {assets!r}, got none")
    return frame.reset_index(drop=True), info


# -- runs -----------------------------------------------------------------------------------
def read_clusters_run(
    ws: Any, run_id: str, *, layer: str = "clusters", crs: str | None = "working", bbox=None
) -> tuple[gpd.GeoDataFrame, Any]:
    """One layer (``clusters`` hulls or ``labels``) of a clusters run, and the run."""
    run = read_run(ws, run_id, "clusters")
    if layer not in run.layers:
        raise WrongKind(f"expected a clusters run with a {layer!r} layer, got {run_id!r}")
    target = run_crs(run) if crs == "working" else crs
    return ws.read_run(run_id, layer, crs=target, bbox=bbox), run
