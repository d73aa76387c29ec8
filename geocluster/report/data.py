"""Gather what a region report shows, every part passed through disclosure first.

:func:`collect` runs the ``profile`` and ``peers`` specs, reads the indicator series, the
ranking of the named clusters run and the SDG proxies, and passes each firm-derived table
through :func:`geocluster.disclosure.apply` for the caller before anything is drawn or
written: a report for a viewer is built from the same disclosed results the API serves.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from geocluster import disclosure
from geocluster.analyses.result import Layer, Result
from geocluster.errors import GeoclusterError, InvalidInput
from geocluster.report import charts, labels

#: Columns of the ranking shown in the report, besides the components.
_RANK_COLUMNS = ("cluster_id", "rank", "score", "n_firms", "employees", "dominant_sector")


def _disclosed(result: Result, principal, policy) -> dict[str, Any]:
    return disclosure.apply(result, principal, policy).to_body()


def _sector_title(code: Any) -> str | None:
    if code is None or (isinstance(code, float) and np.isnan(code)):
        return None
    from geocluster.sectors import title_of

    text = str(code)
    if text.endswith(".0"):
        text = text[:-2]
    if len(text) == 1 and text.isdigit():
        text = "0" + text
    try:
        return title_of(text)
    except GeoclusterError:
        return None


def _source_of(ws, ref: str) -> dict[str, Any]:
    """One input as the sources list shows it (file names only, never server paths)."""
    name = ref.split("@")[0]
    try:
        info = ws.dataset(name)
    except GeoclusterError:
        try:
            run = ws.run(ref)
        except GeoclusterError:
            return {"ref": ref, "kind": "input", "detail": ""}
        params = ", ".join(
            f"{k}={v}" for k, v in run.params.items() if v is not None and k != "working_crs"
        )
        return {"ref": ref, "kind": f"{run.kind} run", "detail": f"{run.created}; {params}"}
    source = os.path.basename(str(info.source)) if info.source else "added through the API"
    return {
        "ref": ref,
        "kind": f"{info.kind} dataset",
        "detail": f"file {source}, ingested {info.created}, {info.rows:,} rows",
    }


def collect(
    ws,
    region_id: str,
    *,
    boundaries: str | None = None,
    clusters_run: str | None = None,
    indicators: str | None = None,
    firms: str | None = None,
    assets: str | None = None,
    change_run: str | None = None,
    institutions_run: str | None = None,
    dynamics_run: str | None = None,
    shiftshare_run: str | None = None,
    relatedness_run: str | None = None,
    principal: disclosure.Principal | None = None,
    policy: disclosure.DisclosurePolicy = disclosure.PERMISSIVE,
    k: int = 5,
    top: int = 10,
) -> dict[str, Any]:
    """Everything a region report shows, disclosed for ``principal``.

    Parameters
    ----------
    ws : Workspace
    region_id : str
        A region of ``boundaries``.
    boundaries, clusters_run, indicators, firms, assets : str, optional
        Inputs; each left out is used only when exactly one candidate applies (the
        ``profile`` rule; several -> :class:`~geocluster.errors.InvalidInput` listing them).
    change_run, institutions_run : str, optional
        The ``change`` run (baseline -> follow-up) and the ``institutions`` run shown;
        left out, the only run on the clusters run (else on the firms) is used, and with
        several the section lists them instead of choosing.
    dynamics_run, shiftshare_run, relatedness_run : str, optional
        The ``dynamics``, ``shiftshare`` and ``relatedness`` runs shown; left out, the
        only run on the report's boundaries and firms (either version for shift-share;
        for dynamics also the only one on the clusters run), several listed, none chosen.
    principal : Principal, optional
        The reader (None: the open single-user mode).
    policy : DisclosurePolicy
        The workspace's disclosure rules.
    k : int
        Number of peer regions drawn against the region.
    top : int
        Number of top sectors by location quotient.

    Returns
    -------
    dict
        The report's content (see ``templates/report.html.j2``), charts as PNG bytes.
    """
    from geocluster.analyses.specs.territories import PEERS, PROFILE

    profile = _disclosed(
        PROFILE(ws, region_id=region_id, boundaries=boundaries, clusters_run=clusters_run,
                indicators=indicators, firms=firms, assets=assets, top=top),
        principal, policy,
    )  # fmt: skip
    inputs: list[str] = list(profile["inputs"])
    name = profile["name"] or profile["region_id"]
    ind_dataset = (profile.get("indicators") or {}).get("dataset") or indicators
    peers_body = None
    if ind_dataset is not None:
        try:
            peers_body = _disclosed(
                PEERS(ws, region_id=region_id, boundaries=profile["boundaries"],
                      indicators=ind_dataset, k=k),
                principal, policy,
            )  # fmt: skip
        except InvalidInput:
            peers_body = None  # no indicator to compare on: the report has no peers
    b_ref = inputs[0]
    shapes = ws.read(b_ref)
    shapes["region_id"] = shapes["region_id"].astype(str)
    level = profile.get("level")
    if level is not None and "level" in shapes.columns:
        shapes = shapes[pd.to_numeric(shapes["level"], errors="coerce") == level]
    names = dict(zip(shapes["region_id"], shapes.get("name", shapes["region_id"]), strict=True))
    out: dict[str, Any] = {
        "region_id": profile["region_id"],
        "name": str(name),
        "profile": profile,
        "peers": [
            {
                "region_id": p["region_id"],
                "name": p["name"] or p["region_id"],
                "distance": p["distance"],
            }
            for p in (peers_body or {}).get("peers", [])
        ],  # fmt: skip
        "peer_indicators": [
            labels.title(u["indicator"]) for u in (peers_body or {}).get("indicators", [])
        ],
        "restricted": principal is not None and not principal.sees_microdata,
    }
    out["locator"] = charts.locator_map(
        shapes, profile["region_id"], title=f"Location of {name}", source=f"boundaries {b_ref}"
    )
    out["series"], out["inequality"] = _series(ws, profile, out["peers"], names, ind_dataset)
    out["sectors"] = _sectors(profile)
    out["clusters"] = _clusters(ws, profile, principal, policy, inputs)
    out["assets"] = _assets(ws, profile)
    out["sdg"] = _sdg(ws, profile, shapes, principal, policy)
    out["change"] = _change(ws, profile, shapes, principal, policy, inputs, change_run)
    out["institutions"] = _institutions(
        ws, profile, shapes, principal, policy, inputs, institutions_run
    )
    from geocluster.report.unido import (
        dynamics_section,
        relatedness_section,
        shiftshare_section,
    )

    out["dynamics"] = dynamics_section(ws, profile, shapes, principal, policy, inputs, dynamics_run)
    out["shiftshare"] = shiftshare_section(ws, profile, principal, policy, inputs, shiftshare_run)
    out["relatedness"] = relatedness_section(
        ws, profile, principal, policy, inputs, relatedness_run
    )
    out["inputs"] = inputs
    out["sources"] = [_source_of(ws, ref) for ref in inputs]
    return out


def _series(ws, profile, peers, names, ind_dataset) -> tuple[list[dict], dict | None]:
    """Time series charts of each indicator and the inequality trend of the first one."""
    if ind_dataset is None or not profile.get("indicators"):
        return [], None
    from geocluster.analyses._inputs import read_indicators
    from geocluster.inequality import gini, theil_t

    ref = next((i for i in profile["inputs"] if i.split("@")[0] == ind_dataset), ind_dataset)
    table, _ = read_indicators(ws, ref)
    table = table.dropna(subset=["value"])
    table = table[table["region_id"].isin(set(names))]
    table = table.assign(year=table["year"].astype(int))
    rid = profile["region_id"]
    population = ((profile.get("population") or {}).get("indicator") or "").lower()
    series, inequality = [], None
    for entry in profile["indicators"]["values"]:
        ind = entry["indicator"]
        sub = table[table["indicator"] == ind]
        wide = sub.pivot_table(index="year", columns="region_id", values="value", aggfunc="first")
        if rid not in wide.columns or len(wide) < 1:
            continue

        def points(col: str, w: pd.DataFrame = wide) -> list[tuple[int, float]]:
            s = w[col].dropna() if col in w.columns else pd.Series(dtype=float)
            return [(int(y), float(v)) for y, v in s.items()]

        mean = [(int(y), float(v)) for y, v in wide.mean(axis=1).items()]
        source = f"{ref}, {len(wide.columns)} regions"
        png = charts.series_chart(
            f"{labels.title(ind)}: {profile['name'] or rid} and its peers",
            labels.with_unit(ind),
            (str(profile["name"] or rid), points(rid)),
            {str(p["name"]): points(p["region_id"]) for p in peers},
            mean,
            source=source,
        )
        last = wide.index.max()
        ranks = wide.loc[last].rank(ascending=False, method="min")
        series.append({
            "indicator": ind,
            "title": labels.title(ind),
            "unit": labels.unit(ind),
            "png": png,
            "alt": (
                f"Line chart of {labels.with_unit(ind)} from {int(wide.index.min())} to "
                f"{int(last)} for {profile['name'] or rid} (highlighted), its {len(peers)} "
                "peer regions and the mean of all regions."
            ),
            "latest_year": int(last),
            "latest": float(wide.at[last, rid]) if pd.notna(wide.at[last, rid]) else None,
            "rank": int(ranks[rid]) if pd.notna(ranks.get(rid)) else None,
            "of": int(wide.loc[last].notna().sum()),
        })  # fmt: skip
        if inequality is None and ind.lower() != population:
            years, g, t, position = [], [], [], []
            for yr, row in wide.iterrows():
                v = row.dropna()
                if len(v) < 2 or (v < 0).any() or v.sum() <= 0 or rid not in v.index:
                    continue
                years.append(int(yr))
                g.append(float(gini(v.to_numpy())))
                t.append(float(theil_t(v.to_numpy())))
                r = v.rank(ascending=False, method="min")
                position.append({"year": int(yr), "rank": int(r[rid]), "of": len(v),
                                 "ratio_to_mean": float(v[rid] / v.mean())})  # fmt: skip
            if years:
                inequality = {
                    "indicator": ind,
                    "title": labels.title(ind),
                    "years": years,
                    "gini": g,
                    "theil_t": t,
                    "position": position,
                    "theil_share": entry.get("theil_share"),
                    "png": charts.inequality_chart(
                        years,
                        {labels.title("gini"): g, labels.title("theil_t"): t},
                        title=f"Inequality of {labels.title(ind)} across regions",
                        source=f"{ref}; computed by geocluster over the regions of the level",
                    ),
                    "alt": (
                        f"Line chart of the Gini coefficient and the Theil T index of "
                        f"{labels.title(ind)} across regions from {years[0]} to {years[-1]}."
                    ),
                    "trend": "falling" if t[-1] < t[0] else "rising" if t[-1] > t[0] else "flat",
                }
    return series, inequality


def _sectors(profile) -> list[dict]:
    sectors = profile.get("sectors") or {}
    rows = []
    for s in sectors.get("top") or []:
        rows.append({
            **s,
            "title": s.get("title") or _sector_title(s["sector"]) or "-",
            "suppressed": s.get("disclosure") not in (None, "ok") and s.get("count") is None,
        })  # fmt: skip
    return rows


def _clusters(ws, profile, principal, policy, inputs: list[str]) -> dict | None:
    """The region's clusters from the named run, with the components of its ranking."""
    c = profile.get("clusters")
    if not c:
        return None
    run_id = c["run_id"]
    items = [dict(i) for i in c["items"]]
    for item in items:
        item["sector_title"] = _sector_title(item.get("dominant_sector"))
        # flagged and blanked by an enforcing policy (a permissive one only flags)
        item["suppressed"] = item.get("disclosure") not in (None, "ok") and item["n_firms"] is None
    ranking_run = next(
        (r for r in reversed(ws.runs("ranking")) if r.params.get("clusters_run") == run_id), None
    )
    components: list[tuple[str, str]] = []
    png = None
    if ranking_run is not None and items:
        frame = ws.read_run(ranking_run.id, "ranking")
        frame = pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
        ids = {i["cluster_id"] for i in items}
        frame = frame[frame["cluster_id"].isin(ids)]
        body = _disclosed(
            Result(body={}, layers={"rows": Layer("cluster_summary", frame, count_col="n_firms")}),
            principal, policy,
        )  # fmt: skip
        by_id = {r["cluster_id"]: r for r in body["rows"]}
        weights = ranking_run.summary.get("weights_used") or {}
        components = [(k, labels.COMPONENT_TITLES.get(k, labels.title(k)))
                      for k in weights if k in frame.columns]  # fmt: skip
        for item in items:
            r = by_id.get(item["cluster_id"], {})
            item["rank"] = r.get("rank")
            item["score"] = r.get("score")
            item["components"] = {k: r.get(k) for k, _ in components}
        if ranking_run.id not in inputs:
            inputs.append(ranking_run.id)
        shown = [
            {"label": f"Cluster {i['cluster_id']}", **i["components"]}
            for i in items
            if i.get("score") is not None
        ]
        if shown and components:
            png = charts.components_chart(
                shown, components, title="Ranking components of the region's clusters",
                source=f"{ranking_run.id} (ranking of {run_id})",
            )  # fmt: skip
    return {
        "run_id": run_id,
        "ranking_run": ranking_run.id if ranking_run is not None else None,
        "items": items,
        "components": components,
        "png": png,
    }


def _assets(ws, profile) -> dict | None:
    a = profile.get("assets")
    if not a:
        return None
    ref = next((i for i in profile["inputs"] if i.split("@")[0] == a["dataset"]), a["dataset"])
    try:
        cats = ws.read(ref, columns=["category"])["category"].dropna().astype(str)
        every = sorted(set(cats))
    except GeoclusterError:
        every = []
    gaps = [c for c in every if not a["by_category"].get(c)]
    return {**a, "gaps": gaps, "categories": every}


def _sdg(ws, profile, shapes, principal, policy) -> list[dict] | None:
    """SDG proxies of the region's firms against the national value, when computable."""
    firms = (profile.get("firms") or {}).get("dataset")
    if firms is None:
        return None
    from geocluster.analyses._inputs import read_firms
    from geocluster.sdg import sdg_view
    from geocluster.specialization import assign_regions

    frame = read_firms(ws, firms, crs=shapes.crs.to_string(), require_selection=False).all
    pts = frame.geometry
    if len(pts) and not (pts.geom_type == "Point").all():
        pts = pts.representative_point()
    xy = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])
    where = assign_regions(xy, shapes.reset_index(drop=True), predicate="intersects")
    ids = shapes["region_id"].to_numpy(dtype=object)
    frame = pd.DataFrame(frame.drop(columns="geometry"))
    frame["region_id"] = np.where(where >= 0, ids[np.clip(where, 0, None)], None)
    view = sdg_view(frame, region_ids=list(ids))
    rid = profile["region_id"]
    if rid not in view.regions.index:
        return None
    keys = [i.key for i in view.indicators]
    row = view.regions.loc[[rid], ["n_firms", *keys]].reset_index()
    body = _disclosed(
        Result(body={}, layers={"row": Layer("region_table", row, count_col="n_firms",
                                             shape="row")}),
        principal, policy,
    )  # fmt: skip
    values = body["row"] or {}
    out = []
    for ind in view.indicators:
        v = values.get(ind.key)
        nat = view.national.get(ind.key)
        if v is None and (nat is None or pd.isna(nat)):
            continue
        out.append({
            "code": ind.sdg_code,
            "title": ind.proxy_definition,
            "official": ind.official_name,
            "value": v,
            "national": None if nat is None or pd.isna(nat) else float(nat),
            "source": ind.source,
        })  # fmt: skip
    return out or None


# -- the UNIDO cycle: baseline -> follow-up change, support institutions ----------------------
def _refers(ref: Any, name: str | None) -> bool:
    return bool(ref) and name is not None and str(ref).split("@")[0] == name.split("@")[0]


def _pick_run(ws, kind: str, given: str | None, profile, on_clusters) -> tuple[Any, list[str]]:
    """The run of ``kind`` a section shows, and the candidates when several apply.

    Named: that run (of that kind). Else the only run on the profile's clusters run
    (``on_clusters(run, clusters_run_id)``), else the only one reading its firms.
    """
    from geocluster.errors import WrongKind

    if given:
        run = ws.run(given)
        if run.kind != kind:
            raise WrongKind(f"expected a {kind} run, got {given!r} which is a {run.kind} run")
        return run, []
    runs = ws.runs(kind)
    c = profile.get("clusters") or {}
    firms = (profile.get("firms") or {}).get("dataset")
    cands = [r for r in runs if c.get("run_id") and on_clusters(r, c["run_id"])]
    if not cands and firms is not None:
        cands = [r for r in runs if any(_refers(i, firms) for i in r.inputs)]
    if len(cands) == 1:
        return cands[0], []
    return None, [r.id for r in cands]


def _region_geometry(shapes: pd.DataFrame, rid: str, crs: Any):
    shape = shapes[shapes["region_id"] == rid]
    return shape.to_crs(crs).geometry.union_all() if len(shape) else None


def _id_text(v: Any) -> str | None:
    f = pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0]
    return None if pd.isna(f) else str(int(f))


#: Gap groups (geocluster.assets.institutions.DEFAULT_GAP_GROUPS) as words.
GAP_TITLES = {"training": "training centre", "association": "business association or chamber"}

#: Indicators of the change table: (column stem, title, is a share).
CHANGE_INDICATORS = (
    ("n_firms", "Firms", False),
    ("employees", "Employees", False),
    ("women_led_share", "Women-led share", True),
    ("youth_led_share", "Youth-led share", True),
    ("micro_share", "Micro-firm share", True),
    ("informal_share", "Informal share", True),
)


def _change(ws, profile, shapes, principal, policy, inputs, given) -> dict | None:
    """The region's clusters in a baseline -> follow-up ``change`` run, disclosed.

    A cluster is the region's when its outline (the follow-up hull; the baseline one for
    a disappeared cluster, as the change layer stores it) intersects the region.
    """
    from geocluster.clustering.change import STATUSES

    run, choices = _pick_run(
        ws, "change", given, profile,
        lambda r, c: c in (r.params.get("after"), r.params.get("before")),
    )  # fmt: skip
    if run is None:
        return {"run_id": None, "choices": choices} if choices else None
    layer = ws.read_run(run.id, "change")
    zone = _region_geometry(shapes, profile["region_id"], layer.crs)
    if zone is None:
        return None
    mine = layer[layer.geometry.intersects(zone)]
    table = pd.DataFrame(mine.drop(columns=layer.geometry.name)).reset_index(drop=True)
    # ids as text: below editor every number of a suppressed row is nulled
    table["baseline"] = [_id_text(v) for v in table["before_id"]]
    table["follow_up"] = [_id_text(v) for v in table["after_id"]]
    body = _disclosed(
        Result(body={}, layers={"rows": Layer("cluster_summary", table, count_col="n_firms")}),
        principal, policy,
    )  # fmt: skip
    rows = []
    for r in body["rows"] or []:
        suppressed = r.get("disclosure") not in (None, "ok") and r.get("n_firms") is None
        cells = []
        for stem, title, share in CHANGE_INDICATORS:
            cells.append({
                "title": title, "share": share, "before": r.get(f"{stem}_before"),
                "after": r.get(f"{stem}_after"), "change": r.get(f"{stem}_change"),
            })  # fmt: skip
        rows.append({"status": r["status"], "baseline": r.get("baseline"),
                     "follow_up": r.get("follow_up"), "suppressed": suppressed,
                     "cells": cells})  # fmt: skip
    order = {s: i for i, s in enumerate(STATUSES)}
    rows.sort(key=lambda x: (order.get(x["status"], 99), int(x["follow_up"] or x["baseline"] or 0)))
    counts: dict[str, int] = {}
    for s in STATUSES:
        sub = table[table["status"] == s]
        col = "follow_up" if s == "appeared" else "baseline"  # as ClusterChange.counts
        if len(sub):
            counts[s] = int(sub[col].nunique())
    before_id, after_id = run.params.get("before"), run.params.get("after")

    for ref in (run.id, before_id, after_id):
        if ref and ref not in inputs:
            inputs.append(ref)
    return {
        "run_id": run.id,
        "before": before_id,
        "after": after_id,
        "before_firms": next((i for i in ws.run(before_id).inputs if "@" in i), None)
        if before_id else None,
        "after_firms": next((i for i in ws.run(after_id).inputs if "@" in i), None)
        if after_id else None,
        "match": run.params.get("match"),
        "score": run.params.get("score"),
        "min_score": run.params.get("min_score"),
        "counts": counts,
        "rows": rows,
    }  # fmt: skip


def _institutions(ws, profile, shapes, principal, policy, inputs, given) -> dict | None:
    """Support institutions in the region by type, and the region's clusters lacking one.

    Institutions are public (not firms); the clusters' gap rows are ``cluster_summary``
    and disclosed. The institutions dataset is the run's; with no run, the only
    institutions dataset whose extent meets the region (gaps need a run).
    """
    from geocluster.analyses.unido import read_institutions
    from geocluster.sectors.osm import INSTITUTION_TYPES

    run, choices = _pick_run(
        ws, "institutions", given, profile, lambda r, c: r.params.get("clusters_run") == c
    )
    rid = profile["region_id"]
    region = shapes[shapes["region_id"] == rid]
    if run is not None:
        ref = run.params.get("institutions")
    else:
        lo = region.to_crs("EPSG:4326").total_bounds if len(region) else None
        near = [
            d for d in ws.datasets() if d.kind == "institutions" and d.bbox and lo is not None
            and d.bbox[0] <= lo[2] and lo[0] <= d.bbox[2] and d.bbox[1] <= lo[3] and lo[1] <= d.bbox[3]
        ]  # fmt: skip
        if len(near) != 1:
            return {"dataset": None, "choices": choices} if choices else None
        ref = near[0].ref
    inst, info = read_institutions(ws, ref, crs=None)
    zone = _region_geometry(shapes, rid, inst.crs)
    inside = inst[inst.geometry.intersects(zone)] if zone is not None else inst.iloc[0:0]
    by_type = inside["type"].astype(str).value_counts()
    types = [
        {"type": t, "title": t.replace("_", " "), "description": d, "count": int(by_type.get(t, 0))}
        for t, d in INSTITUTION_TYPES.items()
    ]
    names = sorted(
        (str(n) for n in inside.get("name", pd.Series(dtype=str)).dropna()), key=str.lower
    )
    if info.ref not in inputs:
        inputs.append(info.ref)
    out: dict[str, Any] = {
        "dataset": info.ref,
        "total": int(len(inside)),
        "types": types,
        "missing_types": [t["title"] for t in types if t["count"] == 0],
        "names": names,
        "run_id": None,
        "choices": choices,
    }
    if run is None:
        return out
    if run.id not in inputs:
        inputs.append(run.id)
    reach = ws.read_run(run.id, "reach")
    zone = _region_geometry(shapes, rid, reach.crs)
    mine = reach[reach.geometry.intersects(zone)] if zone is not None else reach.iloc[0:0]
    table = pd.DataFrame(mine.drop(columns=reach.geometry.name)).reset_index(drop=True)
    groups = [c[: -len("_gap")] for c in table.columns if c.endswith("_gap")]
    table["missing"] = [
        ", ".join(g for g in groups if bool(r[f"{g}_gap"])) for _, r in table.iterrows()
    ]
    table["cluster"] = table["cluster_id"].astype(str)
    body = _disclosed(
        Result(body={}, layers={"rows": Layer("cluster_summary", table, count_col="n_firms")}),
        principal, policy,
    )  # fmt: skip
    clusters = []
    for r in body["rows"] or []:
        suppressed = r.get("disclosure") not in (None, "ok") and r.get("n_firms") is None
        clusters.append({
            "cluster": r["cluster"],
            "suppressed": suppressed,
            "n_firms": r.get("n_firms"),
            "n_institutions": r.get("n_institutions"),
            "missing": r.get("missing") or "",
            "nearest": {g: r.get(f"nearest_{g}_m") for g in groups},
        })  # fmt: skip
    clusters.sort(key=lambda x: int(x["cluster"]))
    out.update({
        "run_id": run.id,
        "clusters_run": run.params.get("clusters_run"),
        "radius_m": run.params.get("radius_m"),
        "groups": groups,
        "group_titles": [GAP_TITLES.get(g, g.replace("_", " ")) for g in groups],
        "clusters": clusters,
        "gaps": [c for c in clusters if c["missing"] and not c["suppressed"]],
    })  # fmt: skip
    return out
