"""Build the planners' web map (``GET /map``) with folium, offline.

Every script and stylesheet comes from ``/static`` (``maps/static``, vendored from npm):
folium's CDN defaults are replaced on every element that has them. The basemap is
geocluster's own offline one (``/basemap/tiles``: Natural Earth land and borders, the
workspace's admin outlines, GeoNames place names, see :mod:`maps.basemap`); an
OpenStreetMap layer can be switched on (it needs the internet).

Big layers (firms, assets, the basemap) are Mapbox Vector Tiles drawn by protomaps-leaflet
(``maps/static/geocluster/gcmap.js`` styles them and opens their popups); the density
surface is the KDE's PNG tiles with low densities made transparent; the few polygons that
need rich popups or a legend (cluster hulls, region choropleth, hotspots, asset gaps)
are embedded as simplified GeoJSON.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import Element, MacroElement
from folium.map import Layer
from folium.utilities import JsCode
from jinja2 import Template

from geocluster.errors import GeoclusterError

STATIC = "/static"
LEAFLET_JS = [("leaflet", f"{STATIC}/leaflet/leaflet.js")]
LEAFLET_CSS = [("leaflet_css", f"{STATIC}/leaflet/leaflet.css")]
TMS = "WebMercatorQuad"

#: Colours of asset categories (ColorBrewer Set1, colour-blind-safe order).
ASSET_COLORS = {
    "cultural": "#e41a1c",
    "natural": "#4daf4a",
    "agro_food": "#ff7f00",
    "tourism": "#984ea3",
    "infrastructure": "#377eb8",
}
#: Hotspot labels -> colour. ColorBrewer Dark2 (magenta, teal, orange, purple), so that
#: hotspots never read as the red/blue location-quotient scheme drawn beneath them.
HOTSPOT_COLORS = {
    "HH": "#e7298a",
    "LL": "#1b9e77",
    "HL": "#d95f02",
    "LH": "#7570b3",
    "hot": "#e7298a",
    "cold": "#1b9e77",
}
HOTSPOT_LABELS = {
    "HH": "HH: high among high",
    "LL": "LL: low among low",
    "HL": "HL: high among low",
    "LH": "LH: low among high",
    "hot": "hot spot (Gi*)",
    "cold": "cold spot (Gi*)",
}
#: Sequential classes (ColorBrewer YlOrRd, 5 classes).
CHOROPLETH_COLORS = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"]
#: Location quotients: a diverging scheme (ColorBrewer RdBu, 6 classes) broken at 1,
#: blues for under-representation, reds for specialisation.
LQ_BREAKS = [0.5, 0.8, 1.0, 1.25, 2.0]
LQ_COLORS = ["#2166ac", "#67a9cf", "#d1e5f0", "#fddbc7", "#ef8a62", "#b2182b"]
LQ_LABELS = [
    "below 0.5 (strongly under-represented)",
    "0.5 – 0.8",
    "0.8 – 1 (slightly under)",
    "1 – 1.25 (slightly over)",
    "1.25 – 2",
    "2 and above (strongly specialised)",
]
#: KDE cells below this share of the colour ramp's top (98th percentile) are transparent.
KDE_TRANSPARENT_BELOW = 0.05
ASSET_LABELS = {
    "cultural": "cultural heritage",
    "natural": "natural heritage",
    "agro_food": "agro-food",
    "tourism": "tourism",
    "infrastructure": "infrastructure",
}
#: Inclusiveness shares of cluster summaries (column -> label), shown when present.
SHARES = {
    "women_led_share": "Women-led firms",
    "youth_led_share": "Youth-led firms",
    "micro_share": "Micro firms (< 10 employees)",
    "informal_share": "Informal firms",
    "recent_share": "Recent firms",
}


class LocalScripts(MacroElement):
    """Load vendored scripts/styles and run a snippet once the map exists."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        {{ this.code.replace("MAP", this._parent.get_name()) }}
        {% endmacro %}
        """
    )

    def __init__(self, code: str, js: list[tuple[str, str]] = (), css: list[tuple[str, str]] = ()):
        super().__init__()
        self._name = "LocalScripts"
        self.code = code
        self.default_js = list(js)
        self.default_css = list(css)

    def render(self, **kwargs):
        figure = self.get_root()
        for name, url in self.default_js:
            figure.header.add_child(folium.elements.JavascriptLink(url), name=name)
        for name, url in self.default_css:
            figure.header.add_child(folium.elements.CssLink(url), name=name)
        super().render(**kwargs)


GC_JS = [
    ("protomaps_leaflet", f"{STATIC}/protomaps-leaflet/protomaps-leaflet.js"),
    ("gcmap", f"{STATIC}/geocluster/gcmap.js"),
    ("gcpanel", f"{STATIC}/geocluster/gcpanel.js"),
]


class JsLayer(Layer):
    """A Leaflet layer made by a JavaScript expression (``gc.*`` of ``gcmap.js``).

    The page loads protomaps-leaflet and ``gcmap.js`` once.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = {{ this.factory }};
        {% endmacro %}
        """
    )

    def __init__(self, factory: str, *, name: str, show: bool = True, control: bool = True):
        super().__init__(name=name, overlay=True, control=control, show=show)
        self._name = "JsLayer"
        self.factory = factory

    def render(self, **kwargs):
        figure = self.get_root()
        for key, url in GC_JS:
            figure.header.add_child(folium.elements.JavascriptLink(url), name=key)
        super().render(**kwargs)


def _js(value) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass
class _Download:
    layer: Any
    title: str
    collection: str


@dataclass
class MapContext:
    """What the map shows, resolved from the workspace (ids named, or the only candidate)."""

    firms: Any = None
    clusters_run: Any = None
    ranking_run: Any = None
    kde_raster: Any = None
    boundaries: Any = None
    indicators: Any = None
    assets: Any = None
    hotspots_run: Any = None
    specialization_run: Any = None
    gaps_run: Any = None
    sdg_run: Any = None
    change_run: Any = None
    institutions_run: Any = None
    dynamics_run: Any = None
    shiftshare_run: Any = None
    relatedness_run: Any = None
    policy: Any = None
    notes: list[str] = field(default_factory=list)
    #: layer -> candidate ids when several could apply and none was named
    choices: dict[str, list[str]] = field(default_factory=dict)


# -- resolving what to show -------------------------------------------------------------
#: The /map query parameter that names each layer's input (the chooser sets it).
LAYER_PARAMS = {
    "firms": "firms",
    "clusters": "clusters",
    "ranking": "ranking",
    "kde": "kde",
    "boundaries": "boundaries",
    "specialization": "specialization",
    "indicators": "indicators",
    "assets": "assets",
    "hotspots": "hotspots",
    "gaps": "gaps",
    "sdg": "sdg",
    "change": "change",
    "institutions": "institutions",
    "dynamics": "dynamics",
    "shiftshare": "shiftshare",
    "relatedness": "relatedness",
}


def _dataset(ws, kind: str, chosen: str | None, visible=None):
    if not chosen:
        return None
    info = ws.require(chosen, kind)
    if visible is not None and not visible(info):
        from geocluster.errors import DatasetNotFound

        # what the caller may not see is answered as what does not exist
        raise DatasetNotFound(f"no dataset {chosen!r} in this workspace")
    return info


def _run(ws, kind: str, chosen: str | None, visible=None):
    if not chosen:
        return None
    run = ws.run(chosen)
    if visible is not None and not visible(run):
        from geocluster.errors import RunNotFound

        raise RunNotFound(f"no run {chosen!r} in this workspace")
    if run.kind != kind:
        from geocluster.errors import WrongKind

        raise WrongKind(f"expected a {kind} run, got {chosen!r} which is a {run.kind} run")
    return run


def _overlaps(a, b) -> bool:
    if not a or not b:
        return False
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _only(ctx: MapContext, layer: str, candidates: list):
    """The one candidate, else None; several are recorded as a choice to make."""
    unique = list({c.id: c for c in candidates}.values())
    if len(unique) == 1:
        return unique[0]
    if len(unique) > 1:
        ctx.choices[layer] = [c.id for c in unique]
    return None


def resolve_context(
    ws,
    *,
    firms: str | None = None,
    clusters_run: str | None = None,
    kde_raster: str | None = None,
    boundaries: str | None = None,
    indicators: str | None = None,
    assets: str | None = None,
    hotspots_run: str | None = None,
    ranking_run: str | None = None,
    specialization_run: str | None = None,
    gaps_run: str | None = None,
    sdg_run: str | None = None,
    change_run: str | None = None,
    institutions_run: str | None = None,
    dynamics_run: str | None = None,
    shiftshare_run: str | None = None,
    relatedness_run: str | None = None,
    visible=None,
) -> MapContext:
    """Choose what the map shows: the ids given, else the only candidate of each layer.

    The explicit-input rule of the analyses holds for the map: a layer's input named in
    the URL is shown; otherwise the candidates are narrowed by what is named or already
    chosen (the clusterings of the chosen firms, the hotspots on the chosen boundaries,
    the assets overlapping the firms ...), and a layer is drawn only when exactly one
    candidate is left. With several, nothing is drawn for it and ``ctx.choices[layer]``
    lists them, for the map's layer chooser; the newest is never picked silently.

    ``visible`` (a dataset, run or raster -> bool) keeps out what the caller may not
    see: such a candidate does not exist for it, and naming one is a 404.
    """
    ctx = MapContext()
    seen = visible or (lambda obj: True)
    by_kind: dict[str, list] = {}
    for run in ws.runs():
        if seen(run):
            by_kind.setdefault(run.kind, []).append(run)
    datasets: dict[str, list] = {}
    for d in ws.datasets():
        if seen(d):
            datasets.setdefault(d.kind, []).append(d)

    clusters = _run(ws, "clusters", clusters_run, visible)
    firms_info = _dataset(
        ws, "firms", firms or (clusters.params.get("firms") if clusters else None), visible
    )
    if firms_info is None:
        firms_info = _only(ctx, "firms", datasets.get("firms", []))
    if clusters is None:
        runs = by_kind.get("clusters", [])
        if firms_info is not None:
            runs = [r for r in runs if r.params.get("firms") == firms_info.id]
        clusters = _only(ctx, "clusters", runs)
        if clusters is not None and firms_info is None:
            firms_info = _dataset(ws, "firms", clusters.params.get("firms"), visible)
            ctx.choices.pop("firms", None)

    ranking = _run(ws, "ranking", ranking_run, visible)
    if ranking is None and clusters is not None:
        ranking = _only(
            ctx,
            "ranking",
            [r for r in by_kind.get("ranking", []) if r.params.get("clusters_run") == clusters.id],
        )

    if kde_raster:
        kde = ws.raster(kde_raster)
        if not seen(kde):
            from geocluster.errors import RasterNotFound

            raise RasterNotFound(f"no raster {kde_raster!r} in this workspace")
    else:
        kdes = [r for r in ws.rasters() if r.kind == "kde" and seen(r)]
        if firms_info is not None:
            same = [r for r in kdes if r.meta.get("firms") == firms_info.id]
            # a surface that does not record its firms counts where it covers them
            kdes = same or [
                r for r in kdes if not r.meta.get("firms") and _overlaps(r.bbox, firms_info.bbox)
            ]
        kde = _only(ctx, "kde", kdes)

    spec_run = _run(ws, "specialization", specialization_run, visible)
    bounds_info = _dataset(
        ws,
        "boundaries",
        boundaries or (spec_run.params.get("boundaries") if spec_run else None),
        visible,
    )
    if bounds_info is None:
        all_b = datasets.get("boundaries", [])
        if firms_info is not None:
            all_b = [d for d in all_b if _overlaps(d.bbox, firms_info.bbox)]
        bounds_info = _only(ctx, "boundaries", all_b)
    if spec_run is None and bounds_info is not None:
        spec_run = _only(
            ctx,
            "specialization",
            [
                r
                for r in by_kind.get("specialization", [])
                if r.params.get("boundaries") == bounds_info.id
                and (firms_info is None or r.params.get("firms") == firms_info.id)
            ],
        )

    hot = _run(ws, "hotspots", hotspots_run, visible)
    if hot is None and bounds_info is not None:
        hot = _only(
            ctx,
            "hotspots",
            [
                r
                for r in by_kind.get("hotspots", [])
                if r.params.get("boundaries") == bounds_info.id
            ],
        )

    ind = _dataset(
        ws, "indicators", indicators or (hot.params.get("indicators") if hot else None), visible
    )
    if ind is None:
        ind = _only(ctx, "indicators", datasets.get("indicators", []))

    assets_info = _dataset(ws, "assets", assets, visible)
    if assets_info is None:
        ref = firms_info.bbox if firms_info else (bounds_info.bbox if bounds_info else None)
        all_a = datasets.get("assets", [])
        if ref is not None:
            all_a = [d for d in all_a if _overlaps(d.bbox, ref)]
        elif firms_info is None and "firms" in ctx.choices:
            all_a = []  # no territory chosen yet: nothing to overlap
        assets_info = _only(ctx, "assets", all_a)

    gaps = _run(ws, "assets", gaps_run, visible)
    if gaps is None and assets_info is not None:
        gaps = _only(
            ctx,
            "gaps",
            [
                r
                for r in by_kind.get("assets", [])
                if r.params.get("analysis") == "gaps" and r.params.get("assets") == assets_info.id
            ],
        )

    ctx.firms = firms_info
    ctx.clusters_run = clusters
    ctx.ranking_run = ranking
    ctx.kde_raster = kde
    ctx.boundaries = bounds_info
    ctx.specialization_run = spec_run
    ctx.indicators = ind
    ctx.assets = assets_info
    ctx.hotspots_run = hot
    ctx.gaps_run = gaps
    _resolve_unido(
        ws, ctx, by_kind, firms_info, clusters, bounds_info,
        sdg_run=sdg_run, change_run=change_run, institutions_run=institutions_run,
        visible=visible,
    )  # fmt: skip
    _resolve_unido_regions(
        ws, ctx, by_kind, firms_info, clusters, bounds_info,
        dynamics_run=dynamics_run, shiftshare_run=shiftshare_run,
        relatedness_run=relatedness_run, visible=visible,
    )  # fmt: skip
    for layer, ids in ctx.choices.items():
        ctx.notes.append(
            f"{len(ids)} candidates for the {layer} layer ({', '.join(ids[:4])}"
            f"{', …' if len(ids) > 4 else ''}): choose one in the Layers panel"
        )
    return ctx


def _refers(ref: Any, info: Any) -> bool:
    """Whether a run's input ``ref`` (``name`` or ``name@version``) is dataset ``info``."""
    if not ref or info is None:
        return False
    name, _, version = str(ref).partition("@")
    return name == info.id and (not version or version == str(info.version))


def _resolve_unido(
    ws,
    ctx: MapContext,
    by_kind: dict[str, list],
    firms_info,
    clusters,
    bounds_info,
    *,
    sdg_run: str | None,
    change_run: str | None,
    institutions_run: str | None,
    visible=None,
) -> None:
    """The SDG, change and institutions runs, by the rule of :func:`resolve_context`.

    ``sdg``: the runs on the chosen boundaries (and firms, when chosen); ``change``: the
    runs whose baseline or follow-up is the chosen clusters run, else those reading the
    chosen firms; ``institutions``: the runs on the chosen clusters run, else on the
    chosen firms. With nothing chosen every run of the kind is a candidate.
    """

    def on_firms(run) -> bool:
        return firms_info is None or any(_refers(i, firms_info) for i in run.inputs)

    sdg = _run(ws, "sdg", sdg_run, visible)
    if sdg is None and bounds_info is not None:
        sdg = _only(
            ctx,
            "sdg",
            [
                r
                for r in by_kind.get("sdg", [])
                if _refers(r.params.get("boundaries"), bounds_info)
                and (firms_info is None or _refers(r.params.get("firms"), firms_info))
            ],
        )
    change = _run(ws, "change", change_run, visible)
    if change is None:
        runs = by_kind.get("change", [])
        if clusters is not None:
            runs = [
                r for r in runs if clusters.id in (r.params.get("after"), r.params.get("before"))
            ]
        else:
            runs = [r for r in runs if on_firms(r)]
        change = _only(ctx, "change", runs)
    inst = _run(ws, "institutions", institutions_run, visible)
    if inst is None:
        runs = by_kind.get("institutions", [])
        if clusters is not None:
            runs = [r for r in runs if r.params.get("clusters_run") == clusters.id]
        else:
            runs = [r for r in runs if on_firms(r)]
        inst = _only(ctx, "institutions", runs)
    ctx.sdg_run, ctx.change_run, ctx.institutions_run = sdg, change, inst


def _resolve_unido_regions(
    ws,
    ctx: MapContext,
    by_kind: dict[str, list],
    firms_info,
    clusters,
    bounds_info,
    *,
    dynamics_run: str | None,
    shiftshare_run: str | None,
    relatedness_run: str | None,
    visible=None,
) -> None:
    """The dynamics, shift-share and relatedness runs, by the rule of :func:`resolve_context`.

    Each is a candidate when it reads the chosen boundaries (when chosen) and the chosen
    firms (for ``shiftshare`` either of its two versions); ``dynamics`` runs on the
    chosen clusters run are preferred to the others.
    """

    def fits(run, *firm_params: str) -> bool:
        b = run.params.get("boundaries")
        if bounds_info is not None and b and not _refers(b, bounds_info):
            return False
        return firms_info is None or any(
            _refers(run.params.get(p), firms_info) for p in firm_params
        )

    dyn = _run(ws, "dynamics", dynamics_run, visible)
    if dyn is None:
        runs = [r for r in by_kind.get("dynamics", []) if fits(r, "firms")]
        if clusters is not None:
            runs = [r for r in runs if r.params.get("clusters") == clusters.id] or [
                r for r in runs if not r.params.get("clusters")
            ]
        dyn = _only(ctx, "dynamics", runs)
    shift = _run(ws, "shiftshare", shiftshare_run, visible)
    if shift is None:
        shift = _only(
            ctx, "shiftshare",
            [r for r in by_kind.get("shiftshare", []) if fits(r, "firms", "firms_to")],
        )  # fmt: skip
    rel = _run(ws, "relatedness", relatedness_run, visible)
    if rel is None:
        rel = _only(
            ctx, "relatedness", [r for r in by_kind.get("relatedness", []) if fits(r, "firms")]
        )
    ctx.dynamics_run, ctx.shiftshare_run, ctx.relatedness_run = dyn, shift, rel


def _when(created: Any) -> str:
    """``2026-12-01 11:26 UTC`` from a catalogue timestamp (ISO 8601, UTC)."""
    text = str(created or "")
    return f"{text[:10]} {text[11:16]} UTC" if len(text) >= 16 else text


def _src(obj: Any, label: str = "") -> str:
    """Where a layer comes from, as its legend names it (plain text, escape on use).

    A run: ``clusters run clusters-8f3b (2026-12-01 11:26 UTC)``; a dataset:
    ``firms@1 "firms" (2026-12-01 11:26 UTC)``; a raster: ``raster kde_firms (...)``.
    """
    if obj is None:
        return "–"
    when = _when(getattr(obj, "created", ""))
    if hasattr(obj, "ref"):  # a dataset version
        return f"{obj.ref} ({when})"
    if hasattr(obj, "params"):  # a run
        return f"{label or obj.kind} run {obj.id} ({when})"
    return f"raster {obj.id} ({when})"


def _polygon_layer(ws, run, *, prefer: tuple[str, ...]) -> tuple[str, gpd.GeoDataFrame] | None:
    """The first polygon layer of a run (name, frame), trying ``prefer`` names first."""
    names = [n for n in prefer if n in run.layers] + [n for n in run.layers if n not in prefer]
    for name in names:
        frame = ws.read_run(run.id, name)
        if isinstance(frame, gpd.GeoDataFrame) and len(frame):
            types = set(frame.geometry.dropna().geom_type.unique())
            if types & {"Polygon", "MultiPolygon"}:
                return name, frame
    return None


def _table_layer(ws, run, *, needs: set[str]) -> pd.DataFrame | None:
    for name in run.layers:
        frame = ws.read_run(run.id, name)
        if needs <= set(frame.columns):
            return pd.DataFrame(
                frame.drop(columns=frame.geometry.name)
                if isinstance(frame, gpd.GeoDataFrame)
                else frame
            )
    return None


# -- formatting -------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float | np.floating):
        v = float(value)
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.3g}"
    return html.escape(str(value))


def _table_html(title: str, rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_fmt(v)}</td></tr>" for k, v in rows)
    return f'<div class="gc-popup"><b>{html.escape(title)}</b><table>{body}</table></div>'


def _sector_label(code: Any) -> str | None:
    """``"15 – Manufacture of leather and related products"`` (ISIC Rev.4 titles)."""
    if code is None or (isinstance(code, float) and not math.isfinite(code)):
        return None
    from geocluster.sectors import title_of

    text = str(code)
    try:
        return f"{text} – {title_of(text)}"
    except GeoclusterError:
        return text


def _share(value: Any) -> str | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return f"{100 * v:.0f} %" if math.isfinite(v) else None


def _with_unit(value: Any, unit: str, digits: int = 0) -> str | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v):
        return None
    return f"{v:,.{digits}f} {unit}"


def _sector_titles() -> dict[str, str]:
    """Every ISIC Rev.4 code (section, division, group, class) -> title, for popups."""
    from geocluster.sectors import CLASSES, DIVISIONS, GROUPS, SECTIONS, title_of

    codes = [*SECTIONS, *DIVISIONS, *GROUPS, *CLASSES]
    return {c: title_of(c) for c in codes}


def _simplify(frame: gpd.GeoDataFrame, tolerance_deg: float = 0.005) -> gpd.GeoDataFrame:
    out = frame.to_crs("EPSG:4326").copy()
    out["geometry"] = out.geometry.simplify(tolerance_deg, preserve_topology=True)
    return out


def _json_safe(frame: gpd.GeoDataFrame, keep: list[str]) -> gpd.GeoDataFrame:
    cols = [c for c in keep if c in frame.columns]
    out = frame[cols + [frame.geometry.name]].copy()
    for c in cols:
        if out[c].dtype == object or str(out[c].dtype) in ("string", "str"):
            out[c] = (
                out[c]
                .astype(object)
                .where(out[c].notna(), None)
                .map(lambda v: v if v is None else str(v))
            )
    return out


# -- layers -----------------------------------------------------------------------------
REGIONS_PANE = "gcRegions"
# Regions draw on one canvas: 32-3,000 polygons repaint faster than as SVG paths, and
# headless Chromium's software compositor leaves parts of a large SVG layer unpainted.
REGIONS_RENDERER = JsCode(f'L.canvas({{pane: "{REGIONS_PANE}", padding: 0.5}})')


def _cluster_rows(row: pd.Series) -> list[tuple[str, Any]]:
    """Readable rows of a cluster popup: sizes with units, sector titles, shares."""
    rows: list[tuple[str, Any]] = []
    if "dominant_sector" in row.index:
        label = _sector_label(row["dominant_sector"])
        share = _share(row.get("dominant_share"))
        rows.append(("Dominant sector", f"{label} ({share} of firms)" if share else label))
    rows.append(("Firms", _with_unit(row.get("n_firms"), "firms")))
    rows.append(("Employees", _with_unit(row.get("employees"), "persons")))
    rows.append(("Area", _with_unit(row.get("area_km2"), "km²", 1)))
    density = row.get("density_per_km2", row.get("density"))
    rows.append(("Density", _with_unit(density, "firms per km²", 1)))
    for col, label in SHARES.items():
        if col in row.index:
            rows.append((label, _share(row[col])))
    return [(k, v) for k, v in rows if v is not None]


def _grid_outlines(ws, run, frame: gpd.GeoDataFrame, policy) -> gpd.GeoDataFrame | None:
    """Below editor: each cluster's outline as the union of its safe public-grid cells.

    A hull (even smoothed) follows firm locations; the fixed grid does not
    (:func:`geocluster.disclosure.safe_cluster_outlines`). Clusters the policy
    suppressed, or without a safe cell, are left out; without the run's per-firm
    labels nothing is drawn.
    """
    from geocluster.disclosure import safe_cluster_outlines

    labels = None
    for name in run.layers:
        layer = ws.read_run(run.id, name)
        if isinstance(layer, gpd.GeoDataFrame) and {"cluster_id"} <= set(layer.columns):
            if len(layer) and set(layer.geometry.dropna().geom_type.unique()) <= {"Point"}:
                labels = layer
                break
    if labels is None:
        return None
    pts = labels[labels.geometry.notna()].to_crs("EPSG:4326")
    outlines = safe_cluster_outlines(
        pts.geometry.x.to_numpy(),
        pts.geometry.y.to_numpy(),
        pts["cluster_id"].to_numpy(),
        policy.public_zoom,
        min_count=policy.min_contributors,
    )
    outlines = outlines[outlines.geometry.notna()]
    if "disclosure" in frame.columns:
        frame = frame[frame["disclosure"].eq("ok")]
    frame = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    frame = frame.merge(outlines[["cluster_id", "geometry"]], on="cluster_id", how="inner")
    return gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")


def _add_clusters(m, ws, ctx: MapContext, downloads: list[_Download]) -> None:
    run = ctx.clusters_run
    found = _polygon_layer(ws, run, prefer=("clusters", "hulls", "summary"))
    layer_name, hulls = found if found is not None else (None, None)
    if hulls is None or "cluster_id" not in hulls.columns:
        ctx.notes.append(f"clusters run {run.id} has no hull polygons")
        return
    ranking = None
    weights: dict[str, float] = {}
    if ctx.ranking_run is not None:
        ranking = _table_layer(ws, ctx.ranking_run, needs={"cluster_id"})
        used = ctx.ranking_run.summary.get("weights_used") or ctx.ranking_run.params.get("weights")
        weights = {str(k): float(v) for k, v in (used or {}).items()}
    summary_cols = [
        c
        for c in ("cluster_id", "n_firms", "employees", "dominant_sector", "area_km2", "density")
        if c in hulls.columns
    ]
    frame = ctx.policy.apply(hulls, kind="clusters")
    if not getattr(ctx.policy, "firm_points", True):
        frame = _grid_outlines(ws, run, frame, ctx.policy)
        if frame is None or len(frame) == 0:
            ctx.notes.append(f"clusters run {run.id}: no cluster can be outlined safely")
            return
    rank_rows: list[tuple[str, str]] = []  # (label, column)
    if ranking is not None:
        # the ranking's score and components, each labelled with its weight; columns the
        # hull layer also has get a suffix so both stay visible
        renamed = {
            c: f"{c} (ranking)" for c in ranking.columns if c != "cluster_id" and c in frame.columns
        }
        ranking = ranking.rename(columns=renamed)
        frame = frame.merge(ranking, on="cluster_id", how="left")
        for c in ("rank", "score"):
            if c in ranking.columns:
                rank_rows.append((c, c))
        for comp, w in weights.items():
            col = renamed.get(comp, comp)
            if col in ranking.columns:
                rank_rows.append((f"{comp.replace('_', ' ')} (weight {w:.2f})", col))
        if not weights:
            rank_rows += [
                (c, c) for c in ranking.columns if c not in ("cluster_id", "rank", "score")
            ]
    popups = []
    for _, row in frame.iterrows():
        text = _table_html(f"Cluster {row['cluster_id']}", _cluster_rows(row))
        if rank_rows:
            text += _table_html(
                "Ranking components (0–1, higher ranks better)",
                [(label, row[c]) for label, c in rank_rows],
            )
        else:
            text += "<div><small>no ranking run for this clustering yet</small></div>"
        text += f"<div><small>source: clusters run {html.escape(run.id)}</small></div>"
        popups.append(text)
    frame["popup_html"] = popups
    frame = _json_safe(_simplify(frame, 0.0005), [*summary_cols, "popup_html"])
    layer = folium.GeoJson(
        frame.to_json(na="null", default=str),
        name=f"Point clusters (run {run.id}, {_when(run.created)})",
        style_function=lambda f: {
            "color": "#54278f",
            "weight": 2,
            "fillColor": "#9e9ac8",
            "fillOpacity": 0.25,
            "className": "gc-cluster",
        },
        highlight_function=lambda f: {"weight": 4, "fillOpacity": 0.45},
        popup=folium.GeoJsonPopup(fields=["popup_html"], labels=False, max_width=420),
        tooltip=folium.GeoJsonTooltip(
            fields=[c for c in ("cluster_id", "n_firms") if c in frame.columns]
        ),
    )
    layer.add_to(m)
    m.add_child(LocalScripts(f"gc.preferPoints(MAP, {layer.get_name()});"))
    collection = run.id if layer_name == run.primary else f"{run.id}.{layer_name}"
    downloads.append(_Download(layer, "Clusters", collection))
    p = run.params
    method = html.escape(str(p.get("method", "")))
    detail = ", ".join(
        f"{k.replace('_', ' ')} {html.escape(str(p[k]))}"
        for k in ("eps_m", "min_samples", "min_cluster_size", "sectors", "sector_group")
        if p.get(k) is not None
    )
    _add_control(
        m,
        _legend(
            "Point clusters",
            '<div><i style="background:#9e9ac8;border:2px solid #54278f"></i>cluster hull</div>',
            f"method: {method}{' (' + detail + ')' if detail else ''}<br>"
            f"source: {html.escape(_src(run, 'clusters'))}"
            + (f"<br>firms: {html.escape(_src(ctx.firms))}" if ctx.firms is not None else "")
            + (f", ranked by run {html.escape(ctx.ranking_run.id)}" if ctx.ranking_run else ""),
        ),
        position="bottomright",
        css_class="gc-clusters-legend",
        layer=layer,
    )


def _classify(values: np.ndarray, k: int = 5):
    import mapclassify

    finite = values[np.isfinite(values)]
    uniq = np.unique(finite)
    if len(uniq) == 0:
        return None
    k = int(min(k, len(uniq)))
    if k < 2:
        return mapclassify.UserDefined(finite, bins=[float(uniq.max())])
    return (
        mapclassify.FisherJenks(finite, k=k)
        if len(finite) > k
        else mapclassify.Quantiles(finite, k=k)
    )


def _region_popups(
    frame: pd.DataFrame, value_label: str | None, units: str, source: str
) -> list[str]:
    out = []
    for _, row in frame.iterrows():
        rows: list[tuple[str, Any]] = [("Region id", row.get("region_id"))]
        if value_label is not None:
            v = row.get("value")
            rows.append((value_label, f"{_fmt(v)} {units}".strip() if v is not None else None))
        text = _table_html(str(row.get("name") or row.get("region_id")), rows)
        if source:
            text += f"<div><small>source: {html.escape(source)}</small></div>"
        out.append(text)
    return out


def _add_choropleth(
    m,
    ws,
    ctx: MapContext,
    *,
    sector: str | None,
    indicator: str | None,
    year: int | None,
    downloads,
):
    regions = ws.read(ctx.boundaries.id)
    if "region_id" not in regions.columns or len(regions) == 0:
        return
    regions["region_id"] = regions["region_id"].astype(str)
    values = None
    title = units = source = value_unit = ""
    is_lq = False
    if sector is None and indicator is None:
        if ctx.indicators is not None:
            ind = ws.read(ctx.indicators.id)
            if len(ind):
                indicator = str(ind["indicator"].iloc[0])
        elif ctx.specialization_run is not None:
            lq = _table_layer(ws, ctx.specialization_run, needs={"region_id", "sector", "lq"})
            if lq is not None and len(lq):
                sector = str(lq.groupby("sector")["lq"].count().idxmax())
    if sector is not None:
        if ctx.specialization_run is None:
            ctx.notes.append(
                "no specialization run: run POST /analyses/specialization for an LQ map"
            )
        else:
            lq = _table_layer(ws, ctx.specialization_run, needs={"region_id", "sector", "lq"})
            if lq is not None:
                lq = ctx.policy.apply(lq, kind="table", count_col="count") if "count" in lq else lq
                sel = lq[lq["sector"].astype(str) == str(sector)]
                values = sel.set_index(sel["region_id"].astype(str))["lq"]
                # a region with firms of other sectors but none of this one has LQ 0
                # (no row in the table), not "no data"
                with_firms = set(lq["region_id"].astype(str)) - set(values.index)
                values = pd.concat([values, pd.Series(0.0, index=sorted(with_firms))])
                title = f"Location quotient, sector {sector}"
                label = _sector_label(sector)
                if label and label != str(sector):
                    title += f" ({label.split(' – ', 1)[1]})"
                units = "LQ (1 = same share as the whole territory)"
                source = _src(ctx.specialization_run, "specialization")
                is_lq = True
    elif indicator is not None and ctx.indicators is not None:
        ind = ws.read(ctx.indicators.id)
        ind = ind[ind["indicator"].astype(str) == str(indicator)]
        if len(ind):
            yr = int(year) if year is not None else int(ind["year"].max())
            sel = ind[ind["year"].astype(int) == yr]
            values = sel.set_index(sel["region_id"].astype(str))["value"]
            title = f"{indicator}, {yr}"
            unit_col = next((c for c in ("unit", "units") if c in sel.columns), None)
            unit = (
                str(sel[unit_col].dropna().iloc[0])
                if unit_col and sel[unit_col].notna().any()
                else ""
            )
            units = unit or f"{indicator} (as in the indicators table)"
            value_unit = unit
            source = f"indicators dataset {_src(ctx.indicators)}" + (
                f" ({ctx.indicators.source})" if ctx.indicators.source else ""
            )
        else:
            ctx.notes.append(f"indicator {indicator!r} not in {ctx.indicators.id}")
    frame = _simplify(regions)
    if values is None:
        frame["popup_html"] = _region_popups(frame, None, "", f"boundaries {ctx.boundaries.name}")
        layer = folium.GeoJson(
            _json_safe(frame, ["region_id", "name", "popup_html"]).to_json(na="null", default=str),
            name=f"Regions ({ctx.boundaries.name})",
            pane=REGIONS_PANE,
            renderer=REGIONS_RENDERER,
            style_function=lambda f: {"color": "#555", "weight": 1, "fillOpacity": 0.0},
            popup=folium.GeoJsonPopup(fields=["popup_html"], labels=False, max_width=360),
        )
        layer.add_to(m)
        m.add_child(LocalScripts(f"gc.preferPoints(MAP, {layer.get_name()});"))
        downloads.append(_Download(layer, "Regions", ctx.boundaries.id))
        return
    frame["value"] = frame["region_id"].map(
        pd.to_numeric(values, errors="coerce").groupby(level=0).first()
    )
    vals = frame["value"].to_numpy(dtype=float)
    if is_lq:
        # fixed breaks around 1 on a diverging scheme: the colour says over/under at once
        idx = np.searchsorted(LQ_BREAKS, vals, side="right")
        frame["fill"] = [LQ_COLORS[i] if np.isfinite(v) else "#cccccc" for i, v in zip(idx, vals)]
        items = "".join(
            f'<div><i style="background:{c}"></i>{html.escape(t)}</div>'
            for c, t in zip(LQ_COLORS, LQ_LABELS)
        )
        method = "fixed breaks at 0.5, 0.8, 1, 1.25, 2"
    else:
        classes = _classify(vals)
        bins = list(classes.bins) if classes is not None else []
        colors = CHOROPLETH_COLORS[-len(bins) :] if bins else []

        def color_of(v):
            if v is None or not np.isfinite(v) or not bins:
                return "#cccccc"
            i = int(np.searchsorted(bins, v, side="left"))
            return colors[min(i, len(colors) - 1)]

        frame["fill"] = [color_of(v) for v in vals]
        lows = [float(np.nanmin(vals))] + bins[:-1] if bins else []
        items = "".join(
            f'<div><i style="background:{c}"></i>'
            f"{_fmt(lo) + ' – ' + _fmt(hi) if lo < hi else _fmt(hi)}</div>"
            for c, lo, hi in zip(colors, lows, bins)
        )
        method = f"{type(classes).__name__ if classes is not None else ''} (mapclassify)"
    items += '<div><i style="background:#cccccc"></i>no data</div>'
    value_label = "Location quotient" if is_lq else title
    frame["popup_html"] = _region_popups(
        frame,
        value_label,
        value_unit,
        source,
    )
    layer = folium.GeoJson(
        _json_safe(frame, ["region_id", "name", "value", "fill", "popup_html"]).to_json(
            na="null", default=str
        ),
        name=f"Choropleth: {title}",
        pane=REGIONS_PANE,
        renderer=REGIONS_RENDERER,
        style_function=lambda f: {
            "color": "#444",
            "weight": 1,
            "fillColor": f["properties"].get("fill") or "#cccccc",
            "fillOpacity": 0.6,
        },
        popup=folium.GeoJsonPopup(fields=["popup_html"], labels=False, max_width=360),
    )
    layer.add_to(m)
    m.add_child(LocalScripts(f"gc.preferPoints(MAP, {layer.get_name()});"))
    downloads.append(_Download(layer, "Regions", ctx.boundaries.id))
    _add_control(
        m,
        _legend(
            title,
            items,
            f"units: {html.escape(units)}<br>classes: {html.escape(method)}<br>"
            f"source: {html.escape(source)}<br>"
            f"regions: boundaries {html.escape(_src(ctx.boundaries))}",
        ),
        position="bottomright",
        css_class="gc-legend-control",
        layer=layer,
    )


def _add_hotspots(m, ws, ctx: MapContext, downloads) -> None:
    run = ctx.hotspots_run
    frame = None
    for name in run.layers:
        layer = ws.read_run(run.id, name)
        if "region_id" in layer.columns and "label" in layer.columns:
            frame = layer
            break
    if frame is None:
        return
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.isna().all():
        if ctx.boundaries is None:
            return
        regions = ws.read(run.params.get("boundaries") or ctx.boundaries.id)
        regions["region_id"] = regions["region_id"].astype(str)
        table = pd.DataFrame(
            frame.drop(columns=[frame.geometry.name])
            if isinstance(frame, gpd.GeoDataFrame)
            else frame
        )
        table["region_id"] = table["region_id"].astype(str)
        keep = ["region_id", regions.geometry.name] + (["name"] if "name" in regions else [])
        frame = regions[keep].merge(table, on="region_id")
    frame = _simplify(frame)
    sig = (
        frame["significant"].astype(bool)
        if "significant" in frame.columns
        else pd.Series(True, index=frame.index)
    )
    frame["fill"] = [
        HOTSPOT_COLORS.get(str(lab), "#dddddd") if s else "#f0f0f0"
        for lab, s in zip(frame["label"], sig)
    ]
    what = run.params.get("indicator") or run.params.get("variable") or ""
    what_year = run.params.get("year")
    subject = f"{what}{', ' + str(what_year) if what_year else ''}"
    popups = []
    for (_, row), s in zip(frame.iterrows(), sig):
        lab = str(row["label"])
        rows = [
            ("Region id", row.get("region_id")),
            ("Variable", subject or None),
            ("Pattern", HOTSPOT_LABELS.get(lab, lab) if s else f"{lab} (not significant)"),
            ("Statistic", row.get("statistic")),
            ("p-value", row.get("p_value")),
        ]
        title = str(row.get("name") or row.get("region_id"))
        popups.append(
            _table_html(title, [(k, v) for k, v in rows if v is not None])
            + f"<div><small>source: hotspots run {html.escape(run.id)}</small></div>"
        )
    frame["popup_html"] = popups
    keep = [
        c
        for c in ("region_id", "label", "statistic", "p_value", "significant", "fill", "popup_html")
        if c in frame.columns
    ]
    layer = folium.GeoJson(
        _json_safe(frame, keep).to_json(na="null", default=str),
        name=f"Hotspots ({run.params.get('method', 'lisa')}, run {run.id})",
        show=False,
        style_function=lambda f: {
            "color": "#333",
            "weight": 0.8,
            "fillColor": f["properties"].get("fill"),
            "fillOpacity": 0.75,
        },
        popup=folium.GeoJsonPopup(fields=["popup_html"], labels=False, max_width=360),
    )
    layer.add_to(m)
    m.add_child(LocalScripts(f"gc.preferPoints(MAP, {layer.get_name()});"))
    downloads.append(_Download(layer, "Hotspots", run.id))
    present = [lab for lab in HOTSPOT_COLORS if lab in set(frame["label"].astype(str))]
    items = "".join(
        f'<div><i style="background:{HOTSPOT_COLORS[lab]}"></i>{HOTSPOT_LABELS.get(lab, lab)}</div>'
        for lab in present
    )
    items += '<div><i style="background:#f0f0f0"></i>not significant</div>'
    alpha = run.params.get("alpha", 0.05)
    _add_control(
        m,
        _legend(
            f"Hotspots ({run.params.get('method', '')})",
            items,
            (f"variable: {html.escape(subject)}<br>" if subject else "")
            + f"significance: p &lt; {_fmt(alpha)}{' (FDR)' if run.params.get('fdr') else ''}"
            f"<br>source: {html.escape(_src(run, 'hotspots'))}",
        ),
        position="bottomright",
        css_class="gc-hotspots-legend",
        layer=layer,
    )


def _add_gaps(m, ws, ctx: MapContext, downloads) -> None:
    """Assets with no linked firm within the run's radius: rings in their category colour."""
    run = ctx.gaps_run
    frame = ws.read_run(run.id, "gaps") if "gaps" in run.layers else None
    if frame is None or not isinstance(frame, gpd.GeoDataFrame) or len(frame) == 0:
        ctx.notes.append(f"asset-gaps run {run.id} found no gaps")
        return
    frame = frame.to_crs("EPSG:4326")
    radius = run.params.get("radius_m")
    popups = []
    for _, row in frame.iterrows():
        cat = str(row.get("category"))
        rows = [
            ("Category", ASSET_LABELS.get(cat, cat)),
            ("Type", row.get("subtype")),
            ("Designation", row.get("designation")),
            ("Linked sectors", row.get("linked_sectors")),
            ("Linked firms within radius", _with_unit(row.get("n_firms"), "firms")),
            ("Nearest linked firm", _with_unit(row.get("nearest_linked_firm_m"), "m")),
        ]
        popups.append(
            _table_html(
                f"Gap: {row.get('name') or row.get('asset_id')}",
                [(k, v) for k, v in rows if v is not None and v == v],
            )
            + f"<div><small>no linked firm within {_fmt(radius)} m; source: assets run "
            f"{html.escape(run.id)}</small></div>"
        )
    frame["popup_html"] = popups
    frame["ring"] = [ASSET_COLORS.get(str(c), "#666666") for c in frame["category"]]
    layer = folium.GeoJson(
        _json_safe(frame, ["asset_id", "name", "category", "ring", "popup_html"]).to_json(
            na="null", default=str
        ),
        name=f"Asset gaps (no linked firm within {_fmt(radius)} m)",
        marker=folium.CircleMarker(radius=9, weight=3, fill=False),
        style_function=lambda f: {
            "color": f["properties"].get("ring"),
            "weight": 3,
            "fill": False,
            "dashArray": "4 3",
            "className": "gc-gap",
        },
        popup=folium.GeoJsonPopup(fields=["popup_html"], labels=False, max_width=360),
    )
    layer.add_to(m)
    downloads.append(_Download(layer, "Asset gaps", run.id))
    _add_control(
        m,
        _legend(
            "Asset gaps",
            '<div><i style="border:3px dashed #e41a1c;border-radius:50%;background:none"></i>'
            "asset without a linked firm nearby (ring in its category colour)</div>",
            f"radius: {_fmt(radius)} m<br>source: {html.escape(_src(run, 'assets'))}",
        ),
        position="bottomright",
        css_class="gc-gaps-legend",
        layer=layer,
    )


def _legend(title: str, items_html: str, note_html: str = "") -> str:
    """A foldable legend (folded on small screens by ``gc.responsive``)."""
    note = f"<div><small>{note_html}</small></div>" if note_html else ""
    return (
        f'<details class="gc-legend gc-fold" open><summary>{html.escape(title)}</summary>'
        f"{items_html}{note}</details>"
    )


def _add_control(m, inner_html: str, *, position: str, css_class: str, layer=None) -> None:
    """A static HTML control; with ``layer``, shown only while that layer is on the map."""
    sync = ""
    if layer is not None:
        name = layer.get_name()
        sync = f"""
        function sync() {{ ctl.getContainer().style.display = MAP.hasLayer({name}) ? "" : "none"; }}
        MAP.on("layeradd layerremove", sync);
        sync();"""
    code = f"""
    (function () {{
        var ctl = L.control({{position: {json.dumps(position)}}});
        ctl.onAdd = function () {{
            var div = L.DomUtil.create("div", {json.dumps(css_class + " gc-control")});
            div.innerHTML = {json.dumps(inner_html)};
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        }};
        ctl.addTo(MAP);{sync}
    }})();
    """
    m.add_child(LocalScripts(code))


def _add_downloads(m, downloads: list[_Download]) -> None:
    """A control with download links for the visible layers (updated on toggle)."""
    entries = []
    for d in downloads:
        base = f"/collections/{d.collection}/items"
        links = " ".join(
            f'<a href="{base}?f={f}{limit}" download>{label}</a>'
            # files come whole; GeoJSON is paged (largest page, then its "next" link)
            for f, label, limit in (
                ("geojson", "GeoJSON", "&limit=1000000"),
                ("csv", "CSV", ""),
                ("gpkg", "GPKG", ""),
            )
        )
        entries.append(
            {
                "var": d.layer.get_name(),
                "html": f"<div><b>{html.escape(d.title)}</b>: {links}</div>",
            }
        )
    code_entries = ",".join(
        f"{{layer: {e['var']}, html: {json.dumps(e['html'])}}}" for e in entries
    )
    code = f"""
    (function () {{
        var entries = [{code_entries}];
        var ctl = L.control({{position: "bottomleft"}});
        ctl.onAdd = function () {{
            var div = L.DomUtil.create("details", "gc-downloads gc-fold");
            div.setAttribute("open", "");
            L.DomEvent.disableClickPropagation(div);
            return div;
        }};
        ctl.addTo(MAP);
        function refresh() {{
            var parts = ["<summary>Download visible layers</summary>"];
            entries.forEach(function (e) {{ if (MAP.hasLayer(e.layer)) parts.push(e.html); }});
            if (parts.length === 1) parts.push("<div><small>no data layer visible</small></div>");
            ctl.getContainer().innerHTML = parts.join("");
        }}
        MAP.on("overlayadd overlayremove layeradd layerremove", refresh);
        refresh();
    }})();
    """
    m.add_child(LocalScripts(code))


CSS = """
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
.gc-popup table { border-collapse: collapse; margin: 2px 0 6px; }
.gc-popup th { text-align: left; padding-right: 8px; font-weight: 600; vertical-align: top; }
.leaflet-popup-content table th { text-align: left; padding-right: 6px; }
.gc-swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 4px; }
.gc-legend, .gc-downloads { background: rgba(255,255,255,0.92); padding: 6px 8px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,0.3); font: 12px/1.4 sans-serif; max-width: 260px; }
.gc-legend summary, .gc-downloads summary { font-weight: 600; cursor: pointer; }
.gc-legend i { width: 14px; height: 12px; float: left; margin: 2px 6px 0 0; opacity: 0.85; }
.gc-legend div { clear: left; }
.gc-downloads a { margin-right: 4px; }
.leaflet-container { background: #cfe0ea; }
.leaflet-gcLabels-pane { pointer-events: none; }
/* legends scroll in their corner instead of climbing over the layer list */
.leaflet-bottom.leaflet-right { max-height: 60%; overflow-y: auto; overflow-x: hidden; }
.leaflet-control-layers-expanded { max-height: 36vh; overflow-y: auto; }
.leaflet-gcLabels-pane canvas { pointer-events: none; }
.gc-panel { background: rgba(255,255,255,0.96); border-radius: 4px; box-shadow: 0 1px 4px rgba(0,0,0,0.3);
  font: 12px/1.4 sans-serif; max-width: 320px; max-height: calc(100vh - 230px); overflow-y: auto; }
/* the open panel stays above the legends and download links of the other corners */
.leaflet-top.leaflet-left { z-index: 1001; }
.gc-panel > summary { font-weight: 600; cursor: pointer; padding: 6px 8px; }
.gc-panel-body { padding: 0 8px 8px; }
.gc-panel h3 { font-size: 12px; margin: 6px 0 4px; border-top: 1px solid #ddd; padding-top: 4px; }
.gc-panel label { display: block; margin: 3px 0; }
.gc-panel select, .gc-panel input { display: block; width: 100%; box-sizing: border-box; font-size: 12px; }
.gc-panel button { margin: 4px 0; font-size: 12px; }
.gc-panel progress { width: 70%; vertical-align: middle; }
.gc-panel .gc-error { color: #b2182b; }
.gc-panel .gc-done { color: #1a7837; }
.gc-layer-row.gc-pending select { outline: 2px solid #e08214; }
.gc-choose { color: #b35806; font-weight: 600; }
@media (max-width: 640px) {
  .gc-panel { max-width: calc(100vw - 70px); max-height: 62vh; font-size: 13px; }
  .gc-panel select, .gc-panel input, .gc-panel button { font-size: 14px; }
  .gc-legend, .gc-downloads { max-width: 170px; padding: 3px 6px; font-size: 11px; }
  .leaflet-control-layers-expanded { max-height: 55vh; max-width: 75vw; font-size: 12px; }
  .leaflet-control-scale { display: none; }
  .leaflet-control-attribution { font-size: 9px; line-height: 1.3; max-width: 60vw; }
  .leaflet-bottom.leaflet-right { max-height: 45%; }
  .leaflet-bottom .leaflet-control { margin-bottom: 4px; }
  .leaflet-right .leaflet-control { margin-right: 4px; }
  .leaflet-left .leaflet-control { margin-left: 4px; }
}
</style>
"""

BASEMAP_PANE = "gcBasemap"
LABELS_PANE = "gcLabels"


def _add_unido_regions(m, ws, ctx: MapContext, downloads: list) -> None:
    """The dynamics, shift-share and relatedness layers (maps/unido.py), when resolved."""
    from maps.unido import add_dynamics, add_relatedness, add_shiftshare

    if ctx.dynamics_run is not None:
        add_dynamics(m, ws, ctx, downloads)
    if ctx.shiftshare_run is not None:
        add_shiftshare(m, ws, ctx, downloads)
    if ctx.relatedness_run is not None:
        add_relatedness(m, ws, ctx, downloads)


def _map_state(ctx: MapContext) -> dict[str, Any]:
    """What the page's layer chooser needs: each layer's input shown, and the choices."""
    shown = {
        "firms": ctx.firms,
        "clusters": ctx.clusters_run,
        "ranking": ctx.ranking_run,
        "kde": ctx.kde_raster,
        "boundaries": ctx.boundaries,
        "specialization": ctx.specialization_run,
        "indicators": ctx.indicators,
        "hotspots": ctx.hotspots_run,
        "assets": ctx.assets,
        "gaps": ctx.gaps_run,
        "sdg": ctx.sdg_run,
        "change": ctx.change_run,
        "institutions": ctx.institutions_run,
        "dynamics": ctx.dynamics_run,
        "shiftshare": ctx.shiftshare_run,
        "relatedness": ctx.relatedness_run,
    }
    return {
        "shown": {k: v.id for k, v in shown.items() if v is not None},
        "sources": {k: _src(v) for k, v in shown.items() if v is not None},
        "choices": ctx.choices,
    }


def build_map(
    ws,
    *,
    firms: str | None = None,
    clusters_run: str | None = None,
    kde_raster: str | None = None,
    boundaries: str | None = None,
    sector: str | None = None,
    indicator: str | None = None,
    year: int | None = None,
    indicators: str | None = None,
    assets: str | None = None,
    hotspots_run: str | None = None,
    ranking_run: str | None = None,
    specialization_run: str | None = None,
    gaps_run: str | None = None,
    sdg_run: str | None = None,
    change_run: str | None = None,
    institutions_run: str | None = None,
    dynamics_run: str | None = None,
    shiftshare_run: str | None = None,
    relatedness_run: str | None = None,
    basemap: bool = False,
    offline_basemap: bool = True,
    policy=None,
    visible=None,
) -> str:
    """Render the web map of a workspace as one HTML page.

    Parameters
    ----------
    ws : Workspace
    firms, boundaries, indicators, assets : str, optional
        Dataset ids (``id`` or ``id@version``). Unnamed, a layer is drawn only when the
        workspace holds exactly one candidate for it (see :func:`resolve_context`);
        with several, the page's layer chooser lists them and nothing is drawn.
    clusters_run, hotspots_run, ranking_run, specialization_run, gaps_run : str, optional
        Run ids (same rule).
    sdg_run, change_run, institutions_run : str, optional
        Runs of the UNIDO cycle (same rule): the SDG proxies choropleth, the baseline ->
        follow-up change of the clusters, the support institutions and support gaps.
    dynamics_run, shiftshare_run, relatedness_run : str, optional
        Also of the UNIDO cycle (same rule): clusters by emergence year and the regional
        growth of firms, the regional shift per region, the ECI per region.
    kde_raster : str, optional
        Raster id of a density surface (same rule).
    sector : str, optional
        Choropleth of the location quotient of this ISIC code (latest specialization run).
    indicator, year : optional
        Choropleth of this indicator (default year: the latest).
    basemap : bool
        Show the OpenStreetMap basemap (it is always offered in the layer control; it
        needs the internet).
    offline_basemap : bool
        Show geocluster's own offline basemap and place names (``/basemap/tiles``; on by
        default, always offered in the layer control).
    policy : geocluster.disclosure.DisclosurePolicy, optional
        Applied to the embedded cluster hulls and LQ table (default: the permissive
        policy). Firm points come from the tile endpoint, which applies it too. A
        policy without firm points (a viewer's) also leaves out the firms' download
        links (microdata need an editor key) and says firms are grid counts.
    visible : callable, optional
        ``visible(obj) -> bool`` for a dataset, run or raster: what the caller may see
        (default: everything). Nothing else is drawn, listed or offered as a choice.

    Returns
    -------
    str
        The HTML page; every script and stylesheet is under ``/static``.
    """
    from maps.basemap import ATTRIBUTION, COLORS

    ctx = resolve_context(
        ws,
        firms=firms,
        clusters_run=clusters_run,
        kde_raster=kde_raster,
        boundaries=boundaries,
        indicators=indicators,
        assets=assets,
        hotspots_run=hotspots_run,
        ranking_run=ranking_run,
        specialization_run=specialization_run,
        gaps_run=gaps_run,
        sdg_run=sdg_run,
        change_run=change_run,
        institutions_run=institutions_run,
        dynamics_run=dynamics_run,
        shiftshare_run=shiftshare_run,
        relatedness_run=relatedness_run,
        visible=visible,
    )
    if policy is None:
        from geocluster.disclosure import PERMISSIVE as policy
    ctx.policy = policy

    m = folium.Map(location=[0, 0], zoom_start=2, tiles=None, control_scale=True)
    m.default_js = list(LEAFLET_JS)
    m.default_css = list(LEAFLET_CSS)
    m.get_root().header.add_child(Element(CSS), name="gc_css")
    m.get_root().title = "geocluster map"
    for key, url in GC_JS:
        m.get_root().header.add_child(folium.elements.JavascriptLink(url), name=key)
    # sector titles and category colours for the popups gcmap.js writes
    data = (
        f"<script>gc.sectors = {_js(_sector_titles())}; gc.assetColors = {_js(ASSET_COLORS)};"
        f" gc.assetLabels = {_js(ASSET_LABELS)}; gc.mapState = {_js(_map_state(ctx))};</script>"
    )
    m.get_root().header.add_child(Element(data), name="gc_data")

    # Fit the view before any layer exists: layers added at a provisional zoom would
    # request tiles for it and size their SVG renderers to it.
    bounds = (ctx.firms.bbox if ctx.firms is not None else None) or (
        ctx.boundaries.bbox if ctx.boundaries is not None else None
    )
    if bounds:
        m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    # Panes, bottom to top: the offline basemap (100), region fills (150), tiles (200:
    # OSM, KDE, firms, assets), overlays (400: hulls, hotspots, gaps), place names (450,
    # not clickable), popups.
    folium.map.CustomPane(BASEMAP_PANE, z_index=100, pointer_events=False).add_to(m)
    # region polygons take clicks (their popups); gc.preferPoints lets firms on top win
    folium.map.CustomPane(REGIONS_PANE, z_index=150, pointer_events=True).add_to(m)
    folium.map.CustomPane(LABELS_PANE, z_index=450, pointer_events=False).add_to(m)

    tiles_url = "/basemap/tiles/{z}/{x}/{y}"
    JsLayer(
        f"gc.basemapLayer({_js(tiles_url)}, {_js(COLORS)}, "
        f"{{pane: {_js(BASEMAP_PANE)}, attribution: {_js(ATTRIBUTION)}}})",
        name="Offline basemap (Natural Earth)",
        show=offline_basemap,
    ).add_to(m)
    folium.TileLayer(
        "OpenStreetMap",
        name="OpenStreetMap basemap (online)",
        overlay=True,
        show=bool(basemap),
        control=True,
    ).add_to(m)

    downloads: list[_Download] = []
    if ctx.boundaries is not None:
        _add_choropleth(
            m, ws, ctx, sector=sector, indicator=indicator, year=year, downloads=downloads
        )
    if ctx.kde_raster is not None:
        _add_kde(m, ctx)
    if ctx.firms is not None:
        layer = JsLayer(
            f"gc.pointLayer('firms', "
            f"{_js(f'/collections/{ctx.firms.id}/tiles/{TMS}/{{z}}/{{x}}/{{y}}')}, "
            f"{{attribution: {_js('firms: ' + (ctx.firms.source or ctx.firms.name))}}})",
            name=f"Firms ({ctx.firms.ref})",
        )
        layer.add_to(m)
        points = bool(getattr(policy, "firm_points", True))
        if points:  # below editor the firms' items are refused (403): no dead links
            downloads.append(_Download(layer, "Firms", ctx.firms.id))
        _add_control(
            m,
            _legend(
                "Firms",
                (
                    '<div><i style="background:#3182bd;border-radius:50%"></i>one firm (from zoom 12)</div>'
                    if points
                    else ""
                )
                + '<div><i style="background:#08519c;border-radius:50%;opacity:.55"></i>'
                "firms per grid cell (area ∝ count)</div>"
                + (
                    ""
                    if points
                    else "<div><small>confidential: counts of 3 or more firms in fixed "
                    "grid cells at every zoom</small></div>"
                ),
                f"source: {html.escape(ctx.firms.source or ctx.firms.name)}"
                f"<br>dataset: {html.escape(_src(ctx.firms))}",
            ),
            position="bottomright",
            css_class="gc-firms-legend",
            layer=layer,
        )
    if ctx.assets is not None:
        layer = JsLayer(
            f"gc.pointLayer('assets', "
            f"{_js(f'/collections/{ctx.assets.id}/tiles/{TMS}/{{z}}/{{x}}/{{y}}')})",
            name=f"Territorial assets ({ctx.assets.ref})",
        )
        layer.add_to(m)
        downloads.append(_Download(layer, "Assets", ctx.assets.id))
        items = "".join(
            f'<div><i style="background:{c};border-radius:50%"></i>{ASSET_LABELS[k]} ({k})</div>'
            for k, c in ASSET_COLORS.items()
        )
        _add_control(
            m,
            _legend(
                "Territorial assets",
                items,
                "each asset in its category colour; grey circles only where a tile holds "
                "more than its cap<br>"
                f"source: {html.escape(ctx.assets.source or ctx.assets.name)}"
                f"<br>dataset: {html.escape(_src(ctx.assets))}",
            ),
            position="bottomright",
            css_class="gc-assets-legend",
            layer=layer,
        )
    if ctx.gaps_run is not None:
        _add_gaps(m, ws, ctx, downloads)
    if ctx.clusters_run is not None:
        _add_clusters(m, ws, ctx, downloads)
    if ctx.hotspots_run is not None:
        _add_hotspots(m, ws, ctx, downloads)
    # the UNIDO cycle's layers live in maps/unido.py (they use the helpers above)
    from maps.unido import add_change, add_institutions, add_sdg

    if ctx.sdg_run is not None:
        add_sdg(m, ws, ctx, downloads)
    if ctx.change_run is not None:
        add_change(m, ws, ctx, downloads)
    if ctx.institutions_run is not None:
        add_institutions(m, ws, ctx, downloads)
    _add_unido_regions(m, ws, ctx, downloads)
    labels = JsLayer(
        f"gc.labelLayer({_js(tiles_url)}, {_js(COLORS)}, {{pane: {_js(LABELS_PANE)}}})",
        name="Place names (GeoNames)",
        show=offline_basemap,
    )
    labels.add_to(m)

    control = folium.LayerControl(collapsed=False, position="topright")
    control.add_to(m)
    m.add_child(
        LocalScripts(
            'new L.Control.FullScreen({position: "topleft"}).addTo(MAP);',
            js=[("fullscreen_js", f"{STATIC}/leaflet.fullscreen/Control.FullScreen.umd.js")],
            css=[("fullscreen_css", f"{STATIC}/leaflet.fullscreen/Control.FullScreen.css")],
        )
    )
    m.add_child(
        LocalScripts(
            'L.control.polylineMeasure({position: "topleft", unit: "kilometres", showClearControl: true}).addTo(MAP);',
            js=[("measure_js", f"{STATIC}/leaflet.polylinemeasure/Leaflet.PolylineMeasure.js")],
            css=[("measure_css", f"{STATIC}/leaflet.polylinemeasure/Leaflet.PolylineMeasure.css")],
        )
    )
    _add_downloads(m, downloads)
    if ctx.notes:
        _add_control(
            m,
            '<div class="gc-legend">' + "<br>".join(html.escape(n) for n in ctx.notes) + "</div>",
            position="bottomleft",
            css_class="gc-notes",
        )
    # the credits (GeoNames' CC BY among them) stay in sight, outside the scrolling legends
    m.add_child(LocalScripts('MAP.attributionControl.setPosition("bottomleft");'))
    m.add_child(LocalScripts("gc.enablePicking(MAP);"))
    # folium renders the layer control last: fold it once the whole script has run; the
    # analysis panel adds the layers of the runs it starts to that control
    m.add_child(
        LocalScripts(
            f"setTimeout(function () {{ gc.responsive(MAP, {control.get_name()}); "
            f"gc.panel(MAP, {control.get_name()}); }}, 0);"
        )
    )
    return m.get_root().render()


def _add_kde(m, ctx: MapContext) -> None:
    from rio_tiler.colormap import cmap

    from geocluster.clustering.kde import raster_rescale_range

    r = ctx.kde_raster
    options: dict[str, Any] = {"opacity": 0.8}
    bounds_js = ""
    if r.bbox:
        bounds_js = (
            f", bounds: L.latLngBounds({_js([[r.bbox[1], r.bbox[0]], [r.bbox[3], r.bbox[2]]])})"
        )
    ramp = cmap.get("viridis")
    lut = [[int(ramp[i][0]), int(ramp[i][1]), int(ramp[i][2])] for i in range(256)]
    url = f"/rasters/{r.id}/tiles/{TMS}/{{z}}/{{x}}/{{y}}.png?colormap=viridis"
    layer = JsLayer(
        f"gc.kdeLayer({_js(url)}, {_js(lut)}, {KDE_TRANSPARENT_BELOW}, "
        f"Object.assign({_js(options)}, {{{bounds_js[2:]}}}))",
        name=f"Firm density (KDE {r.name})",
    )
    layer.add_to(m)
    units = str(r.meta.get("units", "")).replace("_", " ")
    lo, hi = raster_rescale_range(r)
    cut = lo + KDE_TRANSPARENT_BELOW * (hi - lo)
    ramp_css = "linear-gradient(to right, rgba(68,1,84,0.45), #3b528b, #21918c, #5ec962, #fde725)"
    _add_control(
        m,
        _legend(
            "Firm density (KDE)",
            f'<div style="height:10px;background:{ramp_css}"></div>'
            f"<div><small>{_fmt(cut)} → {_fmt(hi)}+ {html.escape(units)}</small></div>",
            f"below {_fmt(cut)} {html.escape(units)} ({KDE_TRANSPARENT_BELOW:.0%} of the top "
            "colour, the 98th percentile) is transparent"
            + (
                f"<br>bandwidth {_fmt(r.meta['bandwidth_m'])} m"
                if r.meta.get("bandwidth_m") is not None
                else ""
            )
            + f"<br>source: {html.escape(_src(r))}",
        ),
        position="bottomright",
        css_class="gc-kde-legend",
        layer=layer,
    )
