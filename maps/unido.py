"""Map layers of the UNIDO cycle: SDG proxies, baseline -> follow-up change, institutions.

Each ``add_*`` draws the latest-chosen run of its analysis (``sdg``, ``change``,
``institutions``; resolved by :func:`maps.build.resolve_context`) as embedded GeoJSON
with a legend and popups, the way :mod:`maps.build` draws cluster hulls and choropleths.
Firm-derived figures pass the workspace's disclosure policy first (``ctx.policy``, as the
other embedded layers): region rows as ``table`` with their ``n_firms``, cluster rows as
``clusters``; support institutions are public (they are not firms).
"""

from __future__ import annotations

import html
import math
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from maps.build import (
    CHOROPLETH_COLORS,
    REGIONS_PANE,
    REGIONS_RENDERER,
    LocalScripts,
    MapContext,
    _add_control,
    _classify,
    _Download,
    _json_safe,
    _legend,
    _sector_label,
    _simplify,
    _src,
    _table_html,
    _when,
)

#: Unit of each SDG proxy (all are shares; of what, the legend says).
SDG_UNITS = {
    "manufacturing_employment_share": "% of employees",
    "small_scale_manufacturing_share": "% of manufacturing employees",
    "informal_firm_share": "% of firms",
    "informal_employment_share": "% of employees",
    "women_led_share": "% of firms",
    "youth_led_share": "% of firms",
}
#: Short titles of the proxies for the selector and the legend.
SDG_TITLES = {
    "manufacturing_employment_share": "Manufacturing share of employment",
    "small_scale_manufacturing_share": "Small-scale industry share (< 20 employees)",
    "informal_firm_share": "Informal share of firms",
    "informal_employment_share": "Informal share of employment",
    "women_led_share": "Women-led share of firms",
    "youth_led_share": "Youth-led share of firms",
}
#: Change statuses -> (colour, label). Greys for the stable, green for new, red for gone.
CHANGE_STYLES = {
    "matched": ("#4d4d4d", "matched (the same cluster in both)"),
    "split": ("#e08214", "split (one baseline cluster, several now)"),
    "merged": ("#8073ac", "merged (several baseline clusters, one now)"),
    "split_merged": ("#b35806", "split and merged (reorganised)"),
    "appeared": ("#1a9850", "appeared (new in the follow-up)"),
    "disappeared": ("#d73027", "disappeared (baseline outline, dashed)"),
}
#: Indicators of a change row: (column stem, label, is a share).
CHANGE_INDICATORS = (
    ("n_firms", "Firms", False),
    ("employees", "Employees", False),
    ("women_led_share", "Women-led firms", True),
    ("youth_led_share", "Youth-led firms", True),
    ("micro_share", "Micro firms (< 10 employees)", True),
    ("informal_share", "Informal firms", True),
    ("lq", "Location quotient", False),
)
#: Institution types (geocluster.sectors.osm.INSTITUTION_TYPES) -> colour (ColorBrewer
#: Dark2, 8 classes, in the vocabulary's order).
INSTITUTION_COLORS = {
    "training": "#1b9e77",
    "university": "#d95f02",
    "research": "#7570b3",
    "business_association": "#e7298a",
    "chamber": "#66a61e",
    "quality_lab": "#e6ab02",
    "finance": "#a6761d",
    "ngo": "#666666",
}


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _pct(v: Any, digits: int = 1) -> str:
    f = _num(v)
    return "–" if f is None else f"{100 * f:.{digits}f} %"


def _points(v: Any) -> str:
    f = _num(v)
    return "–" if f is None else f"{100 * f:+.1f} points"


def _count(v: Any) -> str:
    f = _num(v)
    return "–" if f is None else f"{f:,.0f}"


def _enforced_nulls(frame: pd.DataFrame, ctx: MapContext) -> np.ndarray:
    """Rows the policy flags and suppresses (their outlines are not drawn either)."""
    if not getattr(ctx.policy, "enforce", False) or "disclosure" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return (frame["disclosure"].astype(str) != "ok").to_numpy()


def _run_regions(ws, run) -> gpd.GeoDataFrame | None:
    """A run's ``regions`` layer with text region ids, or None when it has none."""
    if "regions" not in run.layers:
        return None
    frame = ws.read_run(run.id, "regions")
    if not isinstance(frame, gpd.GeoDataFrame) or len(frame) == 0:
        return None
    frame["region_id"] = frame["region_id"].astype(str)
    return frame


# -- SDG proxies ------------------------------------------------------------------------------
def add_sdg(m, ws, ctx: MapContext, downloads: list[_Download]) -> None:
    """The SDG proxies of a ``sdg`` run as one choropleth with an indicator selector."""
    from geocluster.sdg import SDG_INDICATORS

    run = ctx.sdg_run
    frame = _run_regions(ws, run)
    if frame is None:
        return
    keys = [k for k in SDG_INDICATORS if k in frame.columns]
    # national value = region value - its gap (the run stores the gap, not the national)
    national: dict[str, float | None] = {}
    for k in keys:
        diff = pd.to_numeric(frame[k], errors="coerce") - pd.to_numeric(
            frame.get(f"{k}_gap"), errors="coerce"
        )
        national[k] = _num(diff.dropna().iloc[0]) if diff.notna().any() else None
    frame = ctx.policy.apply(frame, kind="table", count_col="n_firms")
    hidden = _enforced_nulls(frame, ctx)
    keys = [k for k in keys if pd.to_numeric(frame[k], errors="coerce").notna().any()]
    if not keys:
        ctx.notes.append(f"sdg run {run.id} has no indicator with a value")
        return
    names: dict[str, str] = {}
    b_ref = run.params.get("boundaries")
    if b_ref:
        try:
            regions = ws.read(b_ref)
            if "name" in regions.columns:
                names = dict(zip(regions["region_id"].astype(str), regions["name"].astype(str)))
        except Exception:  # noqa: BLE001 - names are a nicety; ids still show
            names = {}
    frame = _simplify(frame)
    legends: dict[str, str] = {}
    for k in keys:
        meta = SDG_INDICATORS[k]
        vals = pd.to_numeric(frame[k], errors="coerce").to_numpy(dtype=float)
        classes = _classify(vals)
        bins = list(classes.bins) if classes is not None else []
        colors = CHOROPLETH_COLORS[-len(bins) :] if bins else []

        def color_of(v: float, bins: list = bins, colors: list = colors) -> str:
            if not np.isfinite(v) or not bins:
                return "#cccccc"
            return colors[min(int(np.searchsorted(bins, v, side="left")), len(colors) - 1)]

        frame[f"fill_{k}"] = [color_of(v) for v in vals]
        lows = [float(np.nanmin(vals))] + bins[:-1] if bins else []
        items = "".join(
            f'<div><i style="background:{c}"></i>'
            f"{_pct(lo) + ' – ' + _pct(hi) if lo < hi else _pct(hi)}</div>"
            for c, lo, hi in zip(colors, lows, bins, strict=False)
        )
        items += '<div><i style="background:#cccccc"></i>no data or suppressed</div>'
        legends[k] = (
            f'<div class="gc-sdg-key" data-key="{k}">'
            f"<div><b>SDG {html.escape(meta.sdg_code)}</b> proxy: "
            f"{html.escape(SDG_TITLES.get(k, k))}</div>{items}"
            f"<div><small>units: {html.escape(SDG_UNITS.get(k, 'share'))}; national "
            f"{_pct(national.get(k))}<br>official: {html.escape(meta.official_name)}"
            f"<br>classes: {type(classes).__name__ if classes is not None else ''} "
            "(mapclassify)</small></div></div>"
        )
        popups = []
        for (_, row), h in zip(frame.iterrows(), hidden, strict=True):
            rid = row["region_id"]
            rows: list[tuple[str, Any]] = [
                ("Region id", rid),
                (f"SDG {meta.sdg_code} proxy", "suppressed" if h else _pct(row[k])),
                ("National", _pct(national.get(k))),
                ("Gap to national", "suppressed" if h else _points(row.get(f"{k}_gap"))),
                ("Firms in the region", "suppressed" if h else _count(row.get("n_firms"))),
            ]
            popups.append(
                _table_html(f"{names.get(rid, rid)}: {SDG_TITLES.get(k, k)}", rows)
                + f'<div class="gc-sdg-def"><small><b>Proxy:</b> '
                f"{html.escape(meta.proxy_definition)}<br><b>Official indicator:</b> "
                f"{html.escape(meta.official_name)}<br><b>How it differs:</b> "
                f"{html.escape(meta.differs)}<br><b>Source:</b> {html.escape(meta.source)}"
                f"<br>run: {html.escape(_src(run, 'sdg'))}</small></div>"
            )
        frame[f"popup_{k}"] = popups
    first = keys[0]
    frame["popup_html"] = frame[f"popup_{first}"]
    frame["fill"] = frame[f"fill_{first}"]
    keep = ["region_id", "popup_html", "fill"]
    keep += [f"{p}_{k}" for k in keys for p in ("fill", "popup")]
    layer = folium.GeoJson(
        _json_safe(frame, keep).to_json(na="null", default=str),
        name=f"SDG proxies (run {run.id}, {_when(run.created)})",
        show=False,
        pane=REGIONS_PANE,
        renderer=REGIONS_RENDERER,
        style_function=lambda f: {
            "color": "#444",
            "weight": 1,
            "fillColor": f["properties"].get("fill") or "#cccccc",
            "fillOpacity": 0.65,
            "className": "gc-sdg",
        },
        popup=folium.GeoJsonPopup(fields=["popup_html"], labels=False, max_width=380),
    )
    layer.add_to(m)
    m.add_child(LocalScripts(f"gc.preferPoints(MAP, {layer.get_name()});"))
    downloads.append(_Download(layer, "SDG proxies", run.id))
    options = "".join(
        f'<option value="{k}">{html.escape(SDG_INDICATORS[k].sdg_code)} – '
        f"{html.escape(SDG_TITLES.get(k, k))}</option>"
        for k in keys
    )
    blocks = "".join(
        legends[k].replace('class="gc-sdg-key"', 'class="gc-sdg-key" style="display:none"', 1)
        if k != first
        else legends[k]
        for k in keys
    )
    _add_control(
        m,
        _legend(
            "SDG proxies",
            f'<label>indicator <select class="gc-sdg-select" aria-label="SDG indicator">'
            f"{options}</select></label>{blocks}",
            f"source: {html.escape(_src(run, 'sdg'))}<br>firms: "
            f"{html.escape(str(run.params.get('firms')))}, regions: "
            f"{html.escape(str(b_ref))}<br>proxies from the firm register, not the official "
            "indicators",
        ),
        position="bottomright",
        css_class="gc-sdg-legend",
        layer=layer,
    )
    # the selector restyles the regions, swaps the legend and the popups' indicator
    name = layer.get_name()
    m.add_child(
        LocalScripts(
            f"""
            (function () {{
                var layer = {name};
                var sel = document.querySelector('.gc-sdg-legend select');
                if (!sel) return;
                function show(key) {{
                    layer.eachLayer(function (l) {{
                        var p = l.feature.properties;
                        p.fill = p['fill_' + key];
                        p.popup_html = p['popup_' + key];
                    }});
                    layer.setStyle(function (f) {{
                        return {{fillColor: f.properties.fill || '#cccccc'}};
                    }});
                    document.querySelectorAll('.gc-sdg-legend .gc-sdg-key').forEach(function (d) {{
                        d.style.display = d.getAttribute('data-key') === key ? '' : 'none';
                    }});
                    MAP.closePopup();
                }}
                sel.addEventListener('change', function () {{ show(sel.value); }});
                layer.gcSdgShow = show;
            }})();
            """
        )
    )


# -- baseline -> follow-up change -------------------------------------------------------------
def _change_rows_html(row: pd.Series, suppressed: bool) -> str:
    rows: list[tuple[str, Any]] = []
    before = row.get("before_label") or "–"
    after = row.get("after_label") or "–"
    rows.append(("Clusters", f"baseline {before} → follow-up {after}"))
    if suppressed:
        rows.append(("Indicators", "suppressed (fewer firms than the disclosure threshold)"))
        return _table_html(CHANGE_STYLES.get(row["status"], ("", row["status"]))[1], rows)
    for stem, label, is_share in CHANGE_INDICATORS:
        b, a = row.get(f"{stem}_before"), row.get(f"{stem}_after")
        if _num(b) is None and _num(a) is None:
            continue
        if is_share:
            text = f"{_pct(b)} → {_pct(a)}"
            change = row.get(f"{stem}_change")
            if _num(change) is not None:
                text += f" ({_points(change)})"
        else:
            fmt = _count if stem != "lq" else (lambda v: "–" if _num(v) is None else f"{v:.2f}")
            text = f"{fmt(b)} → {fmt(a)}"
            change = _num(row.get(f"{stem}_change"))
            if change is not None and stem != "lq":
                text += f" ({change:+,.0f})"
        rows.append((label, text))
    score = _num(row.get("score"))
    if score is not None and row["status"] not in ("appeared", "disappeared"):
        rows.append(("Overlap score", f"{score:.2f}"))
    return _table_html(CHANGE_STYLES.get(row["status"], ("", row["status"]))[1], rows)


def add_change(m, ws, ctx: MapContext, downloads: list[_Download]) -> None:
    """Clusters of a ``change`` run styled by status, popups with their indicator changes.

    A follow-up cluster is drawn once with its follow-up outline (the rows of a merger
    share it: their popups are listed together); a disappeared one with its baseline
    outline, dashed.
    """
    run = ctx.change_run
    if "change" not in run.layers:
        return
    frame = ws.read_run(run.id, "change")
    if not isinstance(frame, gpd.GeoDataFrame) or len(frame) == 0:
        ctx.notes.append(f"change run {run.id} has no clusters")
        return

    def label(v: Any) -> str | None:
        f = _num(v)
        return None if f is None else f"{int(f)}"

    # ids as text before the policy: an enforcing one nulls every number of a flagged row
    frame["before_label"] = [label(v) for v in frame["before_id"]]
    frame["after_label"] = [label(v) for v in frame["after_id"]]
    frame["status"] = frame["status"].astype(str)
    frame = ctx.policy.apply(frame, kind="clusters", count_col="n_firms")
    hidden = _enforced_nulls(frame, ctx)
    before_run, after_run = run.params.get("before"), run.params.get("after")

    def firms_of(run_id: Any) -> str:
        try:
            return str(ws.run(run_id).params.get("firms") or "")
        except Exception:  # noqa: BLE001 - a deleted input run still names its id
            return ""

    b_firms, a_firms = firms_of(before_run), firms_of(after_run)
    frame["key"] = [
        f"after {a}" if a is not None else f"before {b}"
        for a, b in zip(frame["after_label"], frame["before_label"], strict=True)
    ]
    features = []
    for key, group in frame.groupby("key", sort=False):
        idx = group.index
        statuses = list(dict.fromkeys(group["status"]))
        status = statuses[0] if len(statuses) == 1 else "split_merged"
        geom = group.geometry.iloc[0]
        suppressed = bool(hidden[frame.index.get_indexer(idx)].any())
        if geom is None or (suppressed and ctx.policy.enforce):
            continue  # a suppressed cluster's outline is itself a few firm locations
        a = group["after_label"].iloc[0]
        title = (
            f"Follow-up cluster {a}" if a is not None else
            f"Baseline cluster {group['before_label'].iloc[0]}"
        )  # fmt: skip
        body = "".join(
            _change_rows_html(row, bool(h))
            for (_, row), h in zip(
                group.iterrows(), hidden[frame.index.get_indexer(idx)], strict=True
            )
        )
        popup = (
            f'<div class="gc-popup"><b>{html.escape(title)}: '
            f"{html.escape(status.replace('_', ' '))}</b></div>{body}"
            f"<div><small>baseline: clusters run {html.escape(str(before_run))} "
            f"({html.escape(b_firms)}) → follow-up: clusters run {html.escape(str(after_run))} "
            f"({html.escape(a_firms)}); matched by {html.escape(str(run.params.get('match')))}"
            f" ({html.escape(str(run.params.get('score')))} ≥ "
            f"{html.escape(str(run.params.get('min_score')))}); source: change run "
            f"{html.escape(run.id)}</small></div>"
        )
        features.append({"key": key, "status": status, "popup_html": popup, "geometry": geom})
    if not features:
        ctx.notes.append(f"change run {run.id}: no cluster may be shown")
        return
    out = gpd.GeoDataFrame(features, geometry="geometry", crs=frame.crs)
    # disappeared first, so that the follow-up clusters drawn over them take the clicks
    out = out.sort_values("status", key=lambda s: s != "disappeared", kind="stable")
    out = _json_safe(_simplify(out, 0.0005), ["key", "status", "popup_html"])
    layer = folium.GeoJson(
        out.to_json(na="null", default=str),
        name=f"Cluster change (run {run.id}, {_when(run.created)})",
        style_function=lambda f: {
            "color": CHANGE_STYLES.get(f["properties"]["status"], ("#333333", ""))[0],
            "weight": 3,
            "fillColor": CHANGE_STYLES.get(f["properties"]["status"], ("#333333", ""))[0],
            "fillOpacity": 0.1 if f["properties"]["status"] == "disappeared" else 0.3,
            "dashArray": "6 4" if f["properties"]["status"] == "disappeared" else None,
            "className": f"gc-change gc-change-{f['properties']['status']}",
        },
        highlight_function=lambda f: {"weight": 5},
        popup=folium.GeoJsonPopup(fields=["popup_html"], labels=False, max_width=440),
        tooltip=folium.GeoJsonTooltip(fields=["key", "status"], aliases=["cluster", "status"]),
    )
    layer.add_to(m)
    m.add_child(LocalScripts(f"gc.preferPoints(MAP, {layer.get_name()});"))
    downloads.append(_Download(layer, "Cluster change", run.id))
    counts = run.summary.get("counts") or {}
    items = "".join(
        f'<div><i style="background:{c};{"border:2px dashed " + c + ";background:none" if s == "disappeared" else ""}"></i>'
        f"{html.escape(text)}{' – ' + str(counts[s]) if s in counts else ''}</div>"
        for s, (c, text) in CHANGE_STYLES.items()
        if counts.get(s, 1)  # a status no cluster has is left out
    )
    _add_control(
        m,
        _legend(
            "Cluster change (baseline → follow-up)",
            items,
            f"baseline: clusters run {html.escape(str(before_run))} ({html.escape(b_firms)})<br>"
            f"follow-up: clusters run {html.escape(str(after_run))} ({html.escape(a_firms)})<br>"
            f"matched by {html.escape(str(run.params.get('match')))}, "
            f"{html.escape(str(run.params.get('score')))} ≥ "
            f"{html.escape(str(run.params.get('min_score')))}; counts of baseline clusters "
            f"(appeared: follow-up)<br>source: {html.escape(_src(run, 'change'))}",
        ),
        position="bottomright",
        css_class="gc-change-legend",
        layer=layer,
    )


# -- support institutions ---------------------------------------------------------------------
def add_institutions(m, ws, ctx: MapContext, downloads: list[_Download]) -> None:
    """Support institutions by type (public points), and the clusters lacking support."""
    from geocluster.sectors.osm import INSTITUTION_TYPES

    run = ctx.institutions_run
    ref = run.params.get("institutions")
    radius = _num(run.params.get("radius_m")) or 0.0
    try:
        inst = ws.read(ref)
    except Exception:  # noqa: BLE001 - the dataset was deleted: nothing to draw
        ctx.notes.append(f"institutions run {run.id}: dataset {ref} is gone")
        return
    inst = inst[~inst.geometry.isna() & ~inst.geometry.is_empty].to_crs("EPSG:4326")
    reach = ws.read_run(run.id, "reach") if "reach" in run.layers else None
    # which clusters each institution serves (ids only: no firm figure)
    served: dict[int, list[str]] = {}
    if isinstance(reach, gpd.GeoDataFrame) and len(reach) and len(inst):
        import shapely

        pts = inst.to_crs(reach.crs).geometry.to_numpy()
        for cid, z in zip(reach["cluster_id"], reach.geometry.to_numpy(), strict=True):
            if z is None:
                continue
            for i in np.flatnonzero(shapely.dwithin(z, pts, radius)):
                served.setdefault(int(i), []).append(str(cid))
    popups, colors = [], []
    for i, (_, row) in enumerate(inst.reset_index(drop=True).iterrows()):
        t = str(row.get("type"))
        sectors = row.get("sectors")
        sector_text = None
        if isinstance(sectors, str) and sectors.strip():
            sector_text = "; ".join(
                _sector_label(s.strip()) or s.strip() for s in sectors.split(";") if s.strip()
            )
        rows = [
            ("Type", f"{t.replace('_', ' ')} – {INSTITUTION_TYPES.get(t, '')}"),
            ("Sectors served", sector_text),
            (
                f"Clusters within {radius:,.0f} m",
                ", ".join(served.get(i, [])) or "none",
            ),
        ]
        popups.append(
            _table_html(
                str(row.get("name") or row.get("institution_id")), [r for r in rows if r[1]]
            )
            + f"<div><small>dataset {html.escape(str(ref))}; run {html.escape(run.id)}"
            "</small></div>"
        )
        colors.append(INSTITUTION_COLORS.get(t, "#999999"))
    inst = inst.reset_index(drop=True)
    inst["popup_html"] = popups
    inst["color"] = colors
    keep = ["institution_id", "name", "type", "color", "popup_html"]
    layer = folium.GeoJson(
        _json_safe(inst, keep).to_json(na="null", default=str),
        name=f"Support institutions ({ref})",
        marker=folium.CircleMarker(radius=7, weight=2, fill=True),
        style_function=lambda f: {
            "color": "#ffffff",
            "weight": 2,
            "fillColor": f["properties"].get("color"),
            "fillOpacity": 0.95,
            "className": "gc-institution",
        },
        popup=folium.GeoJsonPopup(fields=["popup_html"], labels=False, max_width=380),
        tooltip=folium.GeoJsonTooltip(fields=["name", "type"], labels=False),
    )
    layer.add_to(m)
    downloads.append(_Download(layer, "Institutions", f"{run.id}.institutions"))
    present = set(inst["type"].astype(str))
    items = "".join(
        f'<div><i style="background:{c};border-radius:50%"></i>{html.escape(t.replace("_", " "))}'
        f" – {int((inst['type'].astype(str) == t).sum())}</div>"
        for t, c in INSTITUTION_COLORS.items()
        if t in present
    )
    gaps_layer = _add_support_gaps(m, ws, ctx, reach, radius)
    _add_control(
        m,
        _legend(
            "Support institutions",
            items,
            "public data (institutions are not firms)<br>"
            f"dataset: {html.escape(str(ref))}<br>reach: {radius:,.0f} m from each cluster of "
            f"clusters run {html.escape(str(run.params.get('clusters_run')))}"
            + ("; clusters without a training centre or association: dashed" if gaps_layer else "")
            + f"<br>source: {html.escape(_src(run, 'institutions'))}",
        ),
        position="bottomright",
        css_class="gc-institutions-legend",
        layer=layer,
    )


def _add_support_gaps(m, ws, ctx: MapContext, reach, radius: float):
    """Clusters with no training centre or no association within reach (dashed)."""
    if not isinstance(reach, gpd.GeoDataFrame) or len(reach) == 0 or "gap" not in reach:
        return None
    frame = reach[reach["gap"].astype(bool)].copy()
    if len(frame) == 0:
        return None
    groups = [c[: -len("_gap")] for c in frame.columns if c.endswith("_gap")]
    frame["missing"] = [
        ", ".join(g for g in groups if bool(r[f"{g}_gap"])) for _, r in frame.iterrows()
    ]
    frame["cluster_label"] = frame["cluster_id"].astype(str)
    frame = ctx.policy.apply(frame, kind="clusters", count_col="n_firms")
    hidden = _enforced_nulls(frame, ctx)
    frame = frame[~hidden]
    if len(frame) == 0:
        return None
    popups = []
    for _, row in frame.iterrows():
        rows: list[tuple[str, Any]] = [("Missing within reach", row["missing"])]
        for g in groups:
            d = _num(row.get(f"nearest_{g}_m"))
            rows.append((f"Nearest {g}", "none at all" if d is None else f"{d:,.0f} m"))
        rows.append(("Institutions within reach", _count(row.get("n_institutions"))))
        popups.append(
            _table_html(f"Support gap: cluster {row['cluster_label']}", rows)
            + f"<div><small>reach {radius:,.0f} m; institutions run "
            f"{html.escape(ctx.institutions_run.id)}</small></div>"
        )
    frame["popup_html"] = popups
    layer = folium.GeoJson(
        _json_safe(_simplify(frame, 0.0005), ["cluster_label", "missing", "popup_html"]).to_json(
            na="null", default=str
        ),
        name=f"Support gaps (no training centre or association within {radius:,.0f} m)",
        style_function=lambda f: {
            "color": "#e7298a",
            "weight": 3,
            "dashArray": "2 5",
            "fillOpacity": 0.05,
            "className": "gc-support-gap",
        },
        popup=folium.GeoJsonPopup(fields=["popup_html"], labels=False, max_width=360),
    )
    layer.add_to(m)
    m.add_child(LocalScripts(f"gc.preferPoints(MAP, {layer.get_name()});"))
    return layer


# -- dynamics, shift-share, relatedness: region choropleths and cluster emergence ------------
#: Diverging classes (ColorBrewer PRGn, 6): purple for a loss, green for a gain.
DIVERGING_COLORS = ["#762a83", "#af8dc3", "#e7d4e8", "#d9f0d3", "#7fbf7b", "#1b7837"]
#: Emergence years, oldest -> newest (ColorBrewer YlGnBu, 5 classes reversed: dark = old).
EMERGENCE_COLORS = ["#253494", "#2c7fb8", "#41b6c4", "#a1dab4", "#ffffcc"]


def _region_names(ws, b_ref: Any) -> dict[str, str]:
    if not b_ref:
        return {}
    try:
        regions = ws.read(b_ref)
    except Exception:  # noqa: BLE001 - names are a nicety; ids still show
        return {}
    if "name" not in regions.columns:
        return {}
    return dict(zip(regions["region_id"].astype(str), regions["name"].astype(str), strict=True))


def _signed(v: Any, digits: int = 0) -> str:
    f = _num(v)
    return "–" if f is None else f"{f:+,.{digits}f}"


def _rate(v: Any) -> str:
    f = _num(v)
    return "–" if f is None else f"{100 * f:+.1f} % a year"


def _diverging_bins(vals: np.ndarray) -> list[float]:
    """Upper edges of 6 classes symmetric around 0 (a third and two thirds of the max |x|)."""
    finite = np.abs(vals[np.isfinite(vals)])
    top = float(finite.max()) if len(finite) else 0.0
    if top == 0:
        return [0.0]
    a1, a2 = top / 3, 2 * top / 3
    return [-a2, -a1, 0.0, a1, a2, top]


def _diverging_color(v: float, bins: list[float]) -> str:
    if not np.isfinite(v):
        return "#cccccc"
    if len(bins) == 1:
        return "#f7f7f7"
    return DIVERGING_COLORS[min(int(np.searchsorted(bins, v, side="left")), 5)]


def _sequential(vals: np.ndarray) -> tuple[list[float], list[str], str]:
    """Upper class edges, their colours (CHOROPLETH_COLORS) and the classifier's name."""
    classes = _classify(vals)
    bins = list(classes.bins) if classes is not None else []
    return bins, (CHOROPLETH_COLORS[-len(bins) :] if bins else []), type(classes).__name__


def _sequential_color(v: float, bins: list[float], colors: list[str]) -> str:
    if not np.isfinite(v) or not bins:
        return "#cccccc"
    return colors[min(int(np.searchsorted(bins, v, side="left")), len(colors) - 1)]


def _region_choropleth(
    m,
    frame: gpd.GeoDataFrame,
    *,
    name: str,
    css: str,
    legend_title: str,
    legend_items: str,
    legend_note: str,
    show: bool,
    downloads: list[_Download],
    download_title: str,
    collection: str,
):
    """A region layer whose ``fill`` and ``popup_html`` are set, with its legend."""
    layer = folium.GeoJson(
        _json_safe(_simplify(frame), ["region_id", "popup_html", "fill"]).to_json(
            na="null", default=str
        ),
        name=name,
        show=show,
        pane=REGIONS_PANE,
        renderer=REGIONS_RENDERER,
        style_function=lambda f: {
            "color": "#444",
            "weight": 1,
            "fillColor": f["properties"].get("fill") or "#cccccc",
            "fillOpacity": 0.65,
            "className": css,
        },
        popup=folium.GeoJsonPopup(fields=["popup_html"], labels=False, max_width=400),
    )
    layer.add_to(m)
    m.add_child(LocalScripts(f"gc.preferPoints(MAP, {layer.get_name()});"))
    downloads.append(_Download(layer, download_title, collection))
    _add_control(
        m,
        _legend(legend_title, legend_items, legend_note),
        position="bottomright",
        css_class=f"{css}-legend",
        layer=layer,
    )
    return layer


def _table_rows(ws, run, layer: str, ctx: MapContext, count_col: str) -> pd.DataFrame | None:
    """A run's table layer through the policy; suppressed rows dropped (never shown)."""
    if layer not in run.layers:
        return None
    frame = ws.read_run(run.id, layer)
    frame = pd.DataFrame(frame.drop(columns=frame.geometry.name)) if isinstance(
        frame, gpd.GeoDataFrame
    ) else pd.DataFrame(frame)  # fmt: skip
    frame["region_id"] = frame["region_id"].astype(str)
    frame = ctx.policy.apply(frame, kind="table", count_col=count_col)
    return frame[~_enforced_nulls(frame, ctx)]


def add_shiftshare(m, ws, ctx: MapContext, downloads: list[_Download]) -> None:
    """The regional shift of a ``shiftshare`` run per region (diverging).

    Popups give the three components and the region's top sectors by regional shift.
    """
    run = ctx.shiftshare_run
    frame = _run_regions(ws, run)
    if frame is None:
        return
    frame = ctx.policy.apply(frame, kind="table", count_col="n_firms")
    hidden = _enforced_nulls(frame, ctx)
    unit = "firms" if run.params.get("measure") == "firms" else "employees"
    names = _region_names(ws, run.params.get("boundaries"))
    rows = _table_rows(ws, run, "rows", ctx, "n_firms")
    base_v, final_v = run.params.get("firms"), run.params.get("firms_to")
    growth = _num(run.summary.get("national_growth"))
    vals = pd.to_numeric(frame["regional_shift"], errors="coerce").to_numpy(float)
    vals = np.where(hidden, np.nan, vals)
    if not np.isfinite(vals).any():
        ctx.notes.append(f"shiftshare run {run.id}: no region may be shown")
        return
    bins = _diverging_bins(vals)
    frame["fill"] = [_diverging_color(v, bins) for v in vals]
    popups = []
    for (_, row), h in zip(frame.iterrows(), hidden, strict=True):
        rid = row["region_id"]
        title = f"{names.get(rid, rid)}: shift-share of {unit}"
        if h:
            popups.append(
                _table_html(
                    title,
                    [("Components", "suppressed (fewer firms than the disclosure threshold)")],
                )  # fmt: skip
            )
            continue
        items: list[tuple[str, Any]] = [
            (f"Base ({base_v})", _count(row.get("base"))),
            (f"Final ({final_v})", _count(row.get("final"))),
            ("Change", _signed(row.get("change"))),
            ("National share", _signed(row.get("national_share"), 1)),
            ("Industry mix", _signed(row.get("industry_mix"), 1)),
            ("Regional shift", _signed(row.get("regional_shift"), 1)),
        ]
        for col, label in (("competitive", "Competitive effect"), ("allocation", "Allocation")):
            if _num(row.get(col)) is not None:
                items.append((label, _signed(row.get(col), 1)))
        text = _table_html(title, items)
        if rows is not None:
            mine = rows[rows["region_id"] == rid].copy()
            mine["rs"] = pd.to_numeric(mine["regional_shift"], errors="coerce")
            mine = mine.dropna(subset=["rs"])
            mine = mine.reindex(mine["rs"].abs().sort_values(ascending=False).index).head(3)
            if len(mine):
                text += (
                    "<div><small><b>Largest regional shifts:</b><br>"
                    + "<br>".join(
                        f"{html.escape(_sector_label(r.sector) or str(r.sector))}: "
                        f"{_signed(r.rs, 1)} {unit}"
                        for r in mine.itertuples()
                    )
                    + "</small></div>"
                )
        popups.append(
            text + f"<div><small>{html.escape(unit)}, {html.escape(str(base_v))} → "
            f"{html.escape(str(final_v))}; national + mix + shift = change; source: "
            f"{html.escape(_src(run, 'shiftshare'))}</small></div>"
        )
    frame["popup_html"] = popups
    lows = [None, *bins[:-1]]
    labels = []
    for lo, hi in zip(lows, bins, strict=True):
        labels.append(
            f"up to {_signed(hi, 0)}" if lo is None else f"{_signed(lo)} to {_signed(hi)}"
        )
    items = (
        "".join(
            f'<div><i style="background:{c}"></i>{html.escape(t)}</div>'
            for c, t in zip(DIVERGING_COLORS, labels, strict=False)
        )
        + '<div><i style="background:#cccccc"></i>no data or suppressed</div>'
    )
    _region_choropleth(
        m, frame,
        name=f"Shift-share: regional shift (run {run.id}, {_when(run.created)})",
        css="gc-shiftshare", legend_title=f"Regional shift ({unit})", legend_items=items,
        legend_note=f"units: {unit}; {html.escape(str(base_v))} → {html.escape(str(final_v))}"
        + (f", national growth {100 * growth:+.2f} %" if growth is not None else "")
        + "<br>regional shift = change − national share − industry mix (Dunn 1960);"
        " green: grew more than its sectors nationally<br>"
        f"source: {html.escape(_src(run, 'shiftshare'))}",
        show=False, downloads=downloads, download_title="Shift-share", collection=run.id,
    )  # fmt: skip


def add_relatedness(m, ws, ctx: MapContext, downloads: list[_Download]) -> None:
    """The ECI of a ``relatedness`` run per region, popups with the nearby opportunities."""
    run = ctx.relatedness_run
    frame = _run_regions(ws, run)
    if frame is None:
        return
    # ECI and diversity rank regions by which sectors they have: public aggregates
    frame = ctx.policy.apply(frame, kind="other")
    names = _region_names(ws, run.params.get("boundaries"))
    opp = _table_rows(ws, run, "opportunities", ctx, "n_firms")
    eci = pd.to_numeric(frame["eci"], errors="coerce")
    frame["eci_rank"] = eci.rank(ascending=False, method="min")
    vals = eci.to_numpy(float)
    bins, colors, classifier = _sequential(vals)
    frame["fill"] = [_sequential_color(v, bins, colors) for v in vals]
    n = int(np.isfinite(vals).sum())
    popups = []
    for _, row in frame.iterrows():
        rid = row["region_id"]
        rank = _num(row["eci_rank"])
        items: list[tuple[str, Any]] = [
            (
                "Economic complexity (ECI)",
                "–" if _num(row["eci"]) is None else f"{row['eci']:+.2f}",
            ),
            ("Rank", "–" if rank is None else f"{int(rank)} of {n}"),
            ("Diversity (sectors with RCA ≥ 1)", _count(row.get("diversity"))),
        ]
        text = _table_html(f"{names.get(rid, rid)}: complexity", items)
        if opp is not None:
            mine = opp[opp["region_id"] == rid].sort_values("rank")
            if len(mine):
                text += "<div class=\"gc-opportunities\"><small><b>Nearby opportunities</b> " \
                    "(dense, RCA &lt; 1):<br>" + "<br>".join(
                    f"{html.escape(_sector_label(r.sector) or str(r.sector))}: density "
                    f"{_num(r.density) or 0:.2f}, RCA {_num(r.rca) or 0:.2f}"
                    for r in mine.itertuples()
                ) + "</small></div>"  # fmt: skip
        popups.append(
            text + f"<div><small>{html.escape(str(run.params.get('measure')))} by ISIC "
            f"{html.escape(str(run.params.get('sector_level')))}; source: "
            f"{html.escape(_src(run, 'relatedness'))}</small></div>"
        )
    frame["popup_html"] = popups
    lows = [float(np.nanmin(vals))] + bins[:-1] if bins else []
    items = (
        "".join(
            f'<div><i style="background:{c}"></i>'
            f"{f'{lo:+.2f} – {hi:+.2f}' if lo < hi else f'{hi:+.2f}'}</div>"
            for c, lo, hi in zip(colors, lows, bins, strict=False)
        )
        + '<div><i style="background:#cccccc"></i>no data</div>'
    )
    _region_choropleth(
        m, frame,
        name=f"Economic complexity (ECI, run {run.id}, {_when(run.created)})",
        css="gc-eci", legend_title="Economic complexity index (ECI)", legend_items=items,
        legend_note="units: standard deviations from the regions' mean (Hidalgo–Hausmann "
        f"eigenvector method); firms {html.escape(str(run.params.get('firms')))}, "
        f"{html.escape(str(run.params.get('measure')))}<br>classes: {classifier} (mapclassify)"
        f"<br>source: {html.escape(_src(run, 'relatedness'))}",
        show=False, downloads=downloads, download_title="Economic complexity", collection=run.id,
    )  # fmt: skip


def add_dynamics(m, ws, ctx: MapContext, downloads: list[_Download]) -> None:
    """A ``dynamics`` run: clusters by emergence year and the regional growth of firms.

    The clusters' popups give their growth; the regions are a choropleth of the CAGR.
    """
    run = ctx.dynamics_run
    span = f"{run.params.get('first_year')}–{run.params.get('last_year')}"
    if "clusters" in run.layers:
        _add_emergence(m, ws, ctx, downloads, run, span)
    if "regions" in run.layers:
        _add_region_growth(m, ws, ctx, downloads, run)


def _add_emergence(m, ws, ctx, downloads, run, span: str) -> None:
    frame = ws.read_run(run.id, "clusters")
    if not isinstance(frame, gpd.GeoDataFrame) or len(frame) == 0:
        return
    frame["cluster_label"] = frame["cluster_id"].astype(str)
    frame = ctx.policy.apply(frame, kind="clusters", count_col="n_firms")
    frame = frame[~_enforced_nulls(frame, ctx) & ~frame.geometry.isna()].copy()
    if len(frame) == 0:
        ctx.notes.append(f"dynamics run {run.id}: no cluster may be shown")
        return
    has_year = "emergence_year" in frame.columns
    years = pd.to_numeric(frame["emergence_year"], errors="coerce") if has_year else None
    lo = run.params.get("first_year")
    edges: list[float] = []
    if years is not None and years.notna().any():
        y0, y1 = float(years.min()), float(years.max())
        step = max((y1 - y0) / len(EMERGENCE_COLORS), 1.0)
        edges = [y0 + step * (i + 1) for i in range(len(EMERGENCE_COLORS) - 1)] + [y1]

    def color(y: float | None) -> str:
        if y is None or not edges:
            return "#999999"
        return EMERGENCE_COLORS[min(int(np.searchsorted(edges, y, side="left")), 4)]

    popups, fills, tips = [], [], []
    for _, row in frame.iterrows():
        y = _num(row.get("emergence_year")) if has_year else None
        before = bool(row.get("before_range")) if has_year else False
        when = "–" if y is None else (f"{lo} or earlier" if before else f"{int(y)}")
        items: list[tuple[str, Any]] = [
            ("Emerged (first year past the threshold)", when),
            ("Firms at emergence", _count(row.get("n_firms_at_emergence"))),
            ("Firms now", _count(row.get("n_firms"))),
            (
                f"Firms {_count(row.get('firms_start'))} → {_count(row.get('firms_end'))}",
                _rate(row.get("cagr_firms")),
            ),
        ]
        if _num(row.get("employees_end")) is not None:
            items.append((
                f"Employees {_count(row.get('employees_start'))} → "
                f"{_count(row.get('employees_end'))}",
                _rate(row.get("cagr_employees")),
            ))  # fmt: skip
        popups.append(
            _table_html(f"Cluster {row['cluster_label']}: emergence and growth", items)
            + f"<div><small>growth: compound annual rate of the stock over the last "
            f"{html.escape(str(run.params.get('growth_years')))} years of {span}; survivors only "
            f"(the register holds the firms alive at its date); clusters run "
            f"{html.escape(str(run.params.get('clusters')))}; source: "
            f"{html.escape(_src(run, 'dynamics'))}</small></div>"
        )
        fills.append(color(y))
        tips.append(when)
    frame["popup_html"], frame["fill"], frame["emerged"] = popups, fills, tips
    out = _json_safe(_simplify(frame, 0.0005), ["cluster_label", "emerged", "popup_html", "fill"])
    layer = folium.GeoJson(
        out.to_json(na="null", default=str),
        name=f"Cluster emergence (run {run.id}, {_when(run.created)})",
        show=False,
        style_function=lambda f: {
            "color": "#222222",
            "weight": 2,
            "fillColor": f["properties"].get("fill") or "#999999",
            "fillOpacity": 0.7,
            "className": "gc-emergence",
        },
        highlight_function=lambda f: {"weight": 4},
        popup=folium.GeoJsonPopup(fields=["popup_html"], labels=False, max_width=420),
        tooltip=folium.GeoJsonTooltip(
            fields=["cluster_label", "emerged"], aliases=["cluster", "emerged"]
        ),
    )
    layer.add_to(m)
    m.add_child(LocalScripts(f"gc.preferPoints(MAP, {layer.get_name()});"))
    downloads.append(_Download(layer, "Cluster emergence", f"{run.id}.clusters"))
    lows = [float(years.min())] + edges[:-1] if edges else []
    items = (
        "".join(
            f'<div><i style="background:{c}"></i>{int(np.ceil(a)) if i else int(a)}–{int(b)}</div>'
            for i, (c, a, b) in enumerate(zip(EMERGENCE_COLORS, lows, edges, strict=False))
            if i == 0 or int(np.ceil(a)) <= int(b)
        )
        + '<div><i style="background:#999999"></i>no emergence year</div>'
    )
    _add_control(
        m,
        _legend(
            "Cluster emergence year",
            items,
            f"first year the cluster's firms founded by then formed a cluster (DBSCAN of "
            f"clusters run {html.escape(str(run.params.get('clusters')))} re-run each year of "
            f"{span}); firms {html.escape(str(run.params.get('firms')))}<br>source: "
            f"{html.escape(_src(run, 'dynamics'))}",
        ),
        position="bottomright",
        css_class="gc-emergence-legend",
        layer=layer,
    )


def _add_region_growth(m, ws, ctx, downloads, run) -> None:
    frame = ws.read_run(run.id, "regions")
    if not isinstance(frame, gpd.GeoDataFrame) or len(frame) == 0:
        return
    frame["region_id"] = frame["region_id"].astype(str)
    frame = ctx.policy.apply(frame, kind="table", count_col="firms_end")
    hidden = _enforced_nulls(frame, ctx)
    vals = pd.to_numeric(frame["cagr_firms"], errors="coerce").to_numpy(float)
    vals = np.where(hidden, np.nan, vals)
    if not np.isfinite(vals).any():
        ctx.notes.append(f"dynamics run {run.id}: no region's growth may be shown")
        return
    names = _region_names(ws, run.params.get("boundaries"))
    bins, colors, classifier = _sequential(vals)
    frame["fill"] = [_sequential_color(v, bins, colors) for v in vals]
    years = run.params.get("growth_years")
    popups = []
    for (_, row), h in zip(frame.iterrows(), hidden, strict=True):
        rid = row["region_id"]
        title = f"{names.get(rid, rid)}: growth of the firm stock"
        if h:
            popups.append(_table_html(title, [("Growth", "suppressed")]))
            continue
        popups.append(
            _table_html(title, [
                (f"Firms {_count(row.get('firms_start'))} → {_count(row.get('firms_end'))}",
                 _rate(row.get("cagr_firms"))),
                (f"Employees {_count(row.get('employees_start'))} → "
                 f"{_count(row.get('employees_end'))}", _rate(row.get("cagr_employees"))),
            ])
            + f"<div><small>compound annual growth over the last {html.escape(str(years))} "
            f"years; survivors only; source: {html.escape(_src(run, 'dynamics'))}</small></div>"
        )  # fmt: skip
    frame["popup_html"] = popups
    lows = [float(np.nanmin(vals))] + bins[:-1] if bins else []
    items = (
        "".join(
            f'<div><i style="background:{c}"></i>{_rate(lo)[:-7]} – {_rate(hi)}</div>'
            for c, lo, hi in zip(colors, lows, bins, strict=False)
        )
        + '<div><i style="background:#cccccc"></i>no data or suppressed</div>'
    )
    _region_choropleth(
        m, frame,
        name=f"Regional growth of firms (run {run.id}, {_when(run.created)})",
        css="gc-growth", legend_title="Growth of the firm stock", legend_items=items,
        legend_note=f"units: % a year (compound, last {html.escape(str(years))} years to "
        f"{html.escape(str(run.params.get('last_year')))}); firms "
        f"{html.escape(str(run.params.get('firms')))}<br>classes: {classifier} (mapclassify)"
        f"<br>source: {html.escape(_src(run, 'dynamics'))}",
        show=False, downloads=downloads, download_title="Regional growth", collection=run.id,
    )  # fmt: skip


__all__ = [
    "add_change",
    "add_dynamics",
    "add_institutions",
    "add_relatedness",
    "add_sdg",
    "add_shiftshare",
]
