"""Report sections of the UNIDO cycle read from region runs: dynamics, shift-share, relatedness.

Each section shows one run of its analysis (named, else the only one on the report's
boundaries and firms; several -> the section lists them and shows none), read from the
run's stored layers and passed through :func:`geocluster.disclosure.apply` with the
layer kinds the analysis declares (region tables as ``region_table``, clusters as
``cluster_summary``), whole tables first so that secondary suppression sees every cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from geocluster import disclosure
from geocluster.analyses.result import Layer, Result
from geocluster.report import charts

#: Sector rows shown per region (shift-share components, RCA > 1 sectors).
TOP_SECTORS = 8


def _disclosed(layers: dict[str, Layer], principal, policy) -> dict[str, Any]:
    return disclosure.apply(Result(body={}, layers=layers), principal, policy).to_body()


def _refers(ref: Any, name: str | None) -> bool:
    return bool(ref) and name is not None and str(ref).split("@")[0] == str(name).split("@")[0]


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def pick_region_run(ws, kind: str, given: str | None, profile, *, firm_params: tuple[str, ...]):
    """The run of ``kind`` a section shows, and the candidates when several apply.

    Named: that run (of that kind). Else the only run on the report's boundaries whose
    ``firm_params`` name the report's firms (any version); with no firms known, every
    run on the boundaries is a candidate.
    """
    from geocluster.errors import WrongKind

    if given:
        run = ws.run(given)
        if run.kind != kind:
            raise WrongKind(f"expected a {kind} run, got {given!r} which is a {run.kind} run")
        return run, []
    firms = (profile.get("firms") or {}).get("dataset")
    cands = [
        r
        for r in ws.runs(kind)
        if _refers(r.params.get("boundaries"), profile.get("boundaries"))
        and (firms is None or any(_refers(r.params.get(p), firms) for p in firm_params))
    ]
    if len(cands) == 1:
        return cands[0], []
    return None, [r.id for r in cands]


def _table(ws, run, layer: str) -> pd.DataFrame:
    frame = ws.read_run(run.id, layer)
    if hasattr(frame, "geometry") and "geometry" in frame.columns:
        frame = frame.drop(columns="geometry")
    frame = pd.DataFrame(frame)
    if "region_id" in frame.columns:
        frame["region_id"] = frame["region_id"].astype(str)
    return frame.reset_index(drop=True)


def _note_inputs(inputs: list[str], *refs: Any) -> None:
    for ref in refs:
        if ref and ref not in inputs:
            inputs.append(str(ref))


# -- dynamics ---------------------------------------------------------------------------------
def dynamics_section(ws, profile, shapes, principal, policy, inputs, given) -> dict | None:
    """Founding-year series, growth, age structure and cluster emergence of the region."""
    from geocluster.dynamics import age_structure

    run, choices = pick_region_run(ws, "dynamics", given, profile, firm_params=("firms",))
    if run is None:
        c = profile.get("clusters") or {}
        # a run on the report's clusters run but another boundaries still applies
        on_c = [r for r in ws.runs("dynamics") if c.get("run_id") and
                r.params.get("clusters") == c.get("run_id")]  # fmt: skip
        if len(on_c) == 1 and not choices:
            run = on_c[0]
        else:
            return {"run_id": None, "choices": choices} if choices else None
    rid = profile["region_id"]
    p = run.params
    lo, hi, years = p.get("first_year"), p.get("last_year"), p.get("growth_years")
    out: dict[str, Any] = {
        "run_id": run.id, "firms": p.get("firms"), "clusters_run": p.get("clusters"),
        "first_year": lo, "last_year": hi, "growth_years": years, "choices": [],
        "series": [], "growth": None, "ages": [], "median_age": None, "clusters": [],
        "png": None,
    }  # fmt: skip
    _note_inputs(inputs, run.id, *run.inputs)
    region_ok = _refers(p.get("boundaries"), profile.get("boundaries"))
    if region_ok and "region_series" in run.layers:
        series = _table(ws, run, "region_series")
        growth = _table(ws, run, "regions")
        body = _disclosed(
            {"series": Layer("region_table", series, count_col="new_firms"),
             "growth": Layer("region_table", growth, count_col="firms_end")},
            principal, policy,
        )  # fmt: skip
        mine = [r for r in body["series"] or [] if str(r["region_id"]) == rid]
        mine.sort(key=lambda r: r["year"])
        out["series"] = mine
        g = next((r for r in body["growth"] or [] if str(r["region_id"]) == rid), None)
        if g is not None:
            g = dict(g)
            g["suppressed"] = g.get("disclosure") not in (None, "ok") and g.get("firms_end") is None
            g["start_year"] = hi - years if hi is not None and years is not None else None
            out["growth"] = g
        shown = [(int(r["year"]), r.get("new_firms"), r.get("stock_firms")) for r in mine]
        if shown and any(n is not None for _, n, _ in shown):
            out["png"] = charts.founding_chart(
                shown, title=f"Firms of {profile.get('name') or rid} by founding year",
                source=f"dynamics run {run.id} ({p.get('firms')}); survivors only",
            )  # fmt: skip
        # age structure of the region's firms at the series' last year
        firms = _region_firms(ws, p.get("firms"), shapes, p.get("year_col") or "founded")
        if firms is not None:
            col = p.get("year_col") or "founded"
            known = pd.to_numeric(firms[col], errors="coerce")
            ages = age_structure(
                firms[known.fillna(hi) <= hi], group="region_id", reference_year=hi, year_col=col
            ).reset_index()
            ages = ages.rename(columns={ages.columns[0]: "region_id"})
            bins = [c for c in ages.columns if c[0].isdigit()]
            ages["n_firms"] = ages[bins].sum(axis=1)
            body = _disclosed(
                {"ages": Layer("region_table", ages, count_col="n_firms")}, principal, policy
            )
            row = next((r for r in body["ages"] or [] if str(r["region_id"]) == rid), None)
            if row is not None:
                out["ages"] = [
                    {"bin": b, "count": row.get(b), "share": row.get(f"share_{b}")} for b in bins
                ]
                out["median_age"] = row.get("median_age")
    if "clusters" in run.layers and p.get("clusters"):
        layer = ws.read_run(run.id, "clusters")
        from geocluster.report.data import _region_geometry

        zone = _region_geometry(shapes, rid, layer.crs)
        if zone is not None:
            mine = layer[layer.geometry.intersects(zone)]
            table = pd.DataFrame(mine.drop(columns=layer.geometry.name)).reset_index(drop=True)
            table["cluster"] = table["cluster_id"].astype(str)
            body = _disclosed(
                {"rows": Layer("cluster_summary", table, count_col="n_firms")}, principal, policy
            )
            rows = []
            for r in body["rows"] or []:
                rows.append({
                    **r, "suppressed": r.get("disclosure") not in (None, "ok")
                    and r.get("n_firms") is None,
                })  # fmt: skip
            rows.sort(key=lambda r: (_num(r.get("emergence_year")) or 1e9, int(r["cluster"])))
            out["clusters"] = rows
    return out


def _region_firms(ws, firms_ref: str | None, shapes, year_col: str) -> pd.DataFrame | None:
    """The firms of ``firms_ref`` with the ``region_id`` of ``shapes`` they fall in."""
    if not firms_ref:
        return None
    from geocluster.analyses._inputs import read_firms
    from geocluster.specialization import assign_regions

    frame = read_firms(ws, firms_ref, crs=shapes.crs.to_string(), require_selection=False).all
    if year_col not in frame.columns:
        return None
    pts = frame.geometry
    if len(pts) and not (pts.geom_type == "Point").all():
        pts = pts.representative_point()
    xy = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])
    where = assign_regions(xy, shapes.reset_index(drop=True), predicate="intersects")
    ids = shapes["region_id"].to_numpy(dtype=object)
    out = pd.DataFrame(frame.drop(columns="geometry"))
    out["region_id"] = np.where(where >= 0, ids[np.clip(where, 0, None)], None)
    return out


# -- shift-share ------------------------------------------------------------------------------
def shiftshare_section(ws, profile, principal, policy, inputs, given) -> dict | None:
    """The region's change decomposed into national share, industry mix and regional shift."""
    from geocluster.report.data import _sector_title

    run, choices = pick_region_run(
        ws, "shiftshare", given, profile, firm_params=("firms", "firms_to")
    )
    if run is None:
        return {"run_id": None, "choices": choices} if choices else None
    rid = profile["region_id"]
    regions, rows = _table(ws, run, "regions"), _table(ws, run, "rows")
    body = _disclosed(
        {"regions": Layer("region_table", regions, count_col="n_firms"),
         "rows": Layer("region_table", rows, count_col="n_firms")},
        principal, policy,
    )  # fmt: skip
    total = next((r for r in body["regions"] or [] if str(r["region_id"]) == rid), None)
    if total is None:
        return None
    total = dict(total)
    total["suppressed"] = total.get("disclosure") not in (None, "ok") and total.get("base") is None
    mine = [dict(r) for r in body["rows"] or [] if str(r["region_id"]) == rid]
    for r in mine:
        r["title"] = _sector_title(r["sector"]) or "-"
        r["suppressed"] = r.get("disclosure") not in (None, "ok") and r.get("base") is None
        r["change"] = (
            None if r["suppressed"] or r.get("final") is None or r.get("base") is None
            else float(r["final"]) - float(r["base"])
        )  # fmt: skip
    # the region's largest sectors (by the larger of base and final), suppressed last
    mine.sort(key=lambda r: (r["suppressed"], -max(_num(r.get("base")) or 0,
                                                    _num(r.get("final")) or 0)))  # fmt: skip
    p = run.params
    _note_inputs(inputs, run.id, *run.inputs)
    return {
        "run_id": run.id,
        "choices": [],
        "base_version": run.inputs[0] if run.inputs else p.get("firms"),
        "final_version": run.inputs[1] if len(run.inputs) > 1 else p.get("firms_to"),
        "measure": p.get("measure"),
        "unit": "firms" if p.get("measure") == "firms" else "employees",
        "sector_level": p.get("sector_level"),
        "national_growth": _num(run.summary.get("national_growth")),
        "esteban_marquillas": bool(p.get("esteban_marquillas")),
        "total": total,
        "sectors": mine[:TOP_SECTORS],
        "n_sectors": len(mine),
    }


# -- relatedness ------------------------------------------------------------------------------
def relatedness_section(ws, profile, principal, policy, inputs, given) -> dict | None:
    """The region's ECI and rank, its RCA >= 1 sectors and its nearby opportunities."""
    from geocluster.report.data import _sector_title

    run, choices = pick_region_run(ws, "relatedness", given, profile, firm_params=("firms",))
    if run is None:
        return {"run_id": None, "choices": choices} if choices else None
    rid = profile["region_id"]
    regions = _table(ws, run, "regions")  # ECI, diversity: public aggregates
    regions["eci"] = pd.to_numeric(regions["eci"], errors="coerce")
    regions = regions.dropna(subset=["eci"])
    if rid not in set(regions["region_id"]):
        return None
    # rank 1 = most complex; ties (equal ECI) share the best rank
    regions["rank"] = regions["eci"].rank(ascending=False, method="min").astype(int)
    me = regions[regions["region_id"] == rid].iloc[0]
    density, opp = _table(ws, run, "density"), _table(ws, run, "opportunities")
    body = _disclosed(
        {"density": Layer("region_table", density, count_col="n_firms"),
         "opportunities": Layer("region_table", opp, count_col="n_firms")},
        principal, policy,
    )  # fmt: skip

    def rows_of(key: str) -> list[dict]:
        out = []
        for r in body[key] or []:
            if str(r["region_id"]) != rid:
                continue
            r = dict(r)
            r["title"] = _sector_title(r["sector"]) or "-"
            r["suppressed"] = r.get("disclosure") not in (None, "ok") and r.get("rca") is None
            out.append(r)
        return out

    advantage = [r for r in rows_of("density") if (_num(r.get("rca")) or 0) >= 1]
    advantage.sort(key=lambda r: -(_num(r.get("rca")) or 0))
    opportunities = sorted(rows_of("opportunities"), key=lambda r: r.get("rank") or 0)
    _note_inputs(inputs, run.id, *run.inputs)
    p = run.params
    return {
        "run_id": run.id,
        "choices": [],
        "firms": run.inputs[0] if run.inputs else p.get("firms"),
        "measure": p.get("measure"),
        "sector_level": p.get("sector_level"),
        "eci": float(me["eci"]),
        "rank": int(me["rank"]),
        "n_regions": int(len(regions)),
        "diversity": _num(me.get("diversity")),
        "advantage": advantage,
        "opportunities": opportunities,
    }
