"""Baseline → follow-up: match the clusters of two runs and report how they changed.

Two runs (two registry versions, or two years) give two sets of clusters. A *link* joins a
baseline cluster ``A`` and a follow-up cluster ``B`` when their overlap score reaches
``min_score``:

- by shared firms (``match="firms"``, firm ids stable across versions): Jaccard
  ``|A ∩ B| / |A ∪ B|`` or the overlap coefficient ``|A ∩ B| / min(|A|, |B|)`` of the
  member sets (``|A|`` counts all of ``A``'s members, also those absent from the other
  version, so firms that closed or opened lower the score);
- by area (``match="area"``, when firm ids differ between the runs): the same two scores
  on the hull areas (``area(A ∩ B) / area(A ∪ B)``, ``area(A ∩ B) / min(area)``).

Each link's status follows from how many links its two ends have (the transitions of
Spiliopoulou et al. 2006, "MONIC"):

============  ==========================================================
matched       ``A`` and ``B`` are linked only to each other
split         ``A`` is linked to several follow-up clusters, ``B`` only to ``A``
merged        ``B`` is linked to several baseline clusters, ``A`` only to ``B``
split_merged  both ends have several links (a reorganisation)
disappeared   a baseline cluster with no link (``after_id`` missing)
appeared      a follow-up cluster with no link (``before_id`` missing)
============  ==========================================================

Linked clusters form *groups* (connected components of the link graph); the group table
compares the group's baseline and follow-up totals, which is the fair comparison for a
split or a merger (a part against the whole is not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geocluster.errors import InvalidInput, MissingColumns

__all__ = ["INDICATORS", "ClusterChange", "STATUSES", "cluster_change"]

#: Indicators compared when both summaries have them: counts are summed over a group,
#: shares and the LQ averaged with the clusters' firm counts as weights.
INDICATORS = (
    "n_firms",
    "employees",
    "women_led_share",
    "youth_led_share",
    "micro_share",
    "informal_share",
    "lq",
)
_COUNTS = frozenset({"n_firms", "employees"})
STATUSES = ("matched", "split", "merged", "split_merged", "disappeared", "appeared")
MATCHES = ("auto", "firms", "area")
SCORES = ("jaccard", "overlap")
DEFAULT_MIN_SCORE = {"jaccard": 0.2, "overlap": 0.5}


@dataclass(frozen=True)
class ClusterChange:
    """Result of :func:`cluster_change`.

    Attributes
    ----------
    rows : DataFrame
        One row per link, plus one per unlinked cluster: ``before_id, after_id, status,
        group, n_firms_before, n_firms_after, shared, score`` and, for each indicator
        both runs have, ``<indicator>_before``, ``<indicator>_after``,
        ``<indicator>_change`` (after - before, of the two clusters of the row).
        ``shared`` is the number of shared firms (``match="firms"``) or the shared area in
        km² (``match="area"``).
    groups : DataFrame
        One row per group: ``group, status, before_ids, after_ids`` (lists),
        ``n_before, n_after`` (clusters) and the indicators' group totals / weighted means
        ``<indicator>_before``, ``<indicator>_after``, ``<indicator>_change``.
    match : str
        ``"firms"`` or ``"area"``: how the clusters were matched.
    score : str
        ``"jaccard"`` or ``"overlap"``.
    min_score : float
        Linking threshold used.
    """

    rows: pd.DataFrame
    groups: pd.DataFrame
    match: str
    score: str
    min_score: float

    def counts(self) -> dict[str, int]:
        """Number of clusters by status (baseline clusters for split/merged/disappeared)."""
        out = {}
        for s in STATUSES:
            r = self.rows[self.rows["status"] == s]
            col = "after_id" if s == "appeared" else "before_id"
            out[s] = int(r[col].nunique())
        return out


def _summary(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(f"expected {name} clusters as a DataFrame, got {type(frame).__name__}")
    if "cluster_id" not in frame.columns:
        raise MissingColumns(f"expected a cluster_id column in {name}, got {list(frame.columns)}")
    if frame["cluster_id"].duplicated().any():
        raise InvalidInput(f"expected one row per cluster in {name}, got duplicate cluster_id")
    return frame.set_index("cluster_id", drop=False)


def _members(frame: pd.DataFrame | None, name: str) -> pd.DataFrame:
    if frame is None:
        raise InvalidInput(f"expected {name}_members (firm_id, cluster_id) to match by firms")
    missing = {"firm_id", "cluster_id"} - set(frame.columns)
    if missing:
        raise MissingColumns(
            f"expected firm_id and cluster_id in {name}_members, missing {sorted(missing)}"
        )
    m = frame[["firm_id", "cluster_id"]]
    m = m[m["cluster_id"].notna() & (pd.to_numeric(m["cluster_id"], errors="coerce") != -1)]
    if m["firm_id"].duplicated().any():
        raise InvalidInput(f"expected each firm in at most one cluster in {name}_members")
    return m.assign(firm_id=m["firm_id"].astype(str))


def _firm_links(bm: pd.DataFrame, am: pd.DataFrame, score: str) -> pd.DataFrame:
    size_b = bm.groupby("cluster_id").size()
    size_a = am.groupby("cluster_id").size()
    both = bm.merge(am, on="firm_id", suffixes=("_b", "_a"))
    inter = both.groupby(["cluster_id_b", "cluster_id_a"]).size().rename("shared").reset_index()
    nb = inter["cluster_id_b"].map(size_b).to_numpy(float)
    na = inter["cluster_id_a"].map(size_a).to_numpy(float)
    s = inter["shared"].to_numpy(float)
    inter["score"] = s / (nb + na - s) if score == "jaccard" else s / np.minimum(nb, na)
    return inter.rename(columns={"cluster_id_b": "before_id", "cluster_id_a": "after_id"})


def _area_links(before: pd.DataFrame, after: pd.DataFrame, score: str) -> pd.DataFrame:
    import geopandas as gpd
    import shapely

    from geocluster.crs import ensure_projected

    for name, f in (("before", before), ("after", after)):
        if not isinstance(f, gpd.GeoDataFrame) or f.crs is None:
            raise InvalidInput(f"expected {name} clusters with hull geometry and a CRS")
    ensure_projected(before.crs)
    if not before.crs.equals(after.crs):
        raise InvalidInput(
            f"expected both runs in one CRS, got {before.crs.to_string()} and "
            f"{after.crs.to_string()}"
        )
    gb = np.asarray(before.geometry.values)
    ga = np.asarray(after.geometry.values)
    tree = shapely.STRtree(ga)
    ib, ia = tree.query(gb, predicate="intersects")
    inter = shapely.area(shapely.intersection(gb[ib], ga[ia]))
    keep = inter > 0
    ib, ia, inter = ib[keep], ia[keep], inter[keep]
    ab, aa = shapely.area(gb[ib]), shapely.area(ga[ia])
    sc = inter / (ab + aa - inter) if score == "jaccard" else inter / np.minimum(ab, aa)
    return pd.DataFrame(
        {
            "before_id": before["cluster_id"].to_numpy()[ib],
            "after_id": after["cluster_id"].to_numpy()[ia],
            "shared": inter / 1e6,
            "score": sc,
        }
    )


def _components(before_ids, after_ids, links: pd.DataFrame) -> dict:
    """Group number of each ("b", id) / ("a", id) node: union-find over the links."""
    parent: dict = {}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i in before_ids:
        parent[("b", i)] = ("b", i)
    for i in after_ids:
        parent[("a", i)] = ("a", i)
    for b, a in zip(links["before_id"], links["after_id"]):
        rb, ra = find(("b", b)), find(("a", a))
        if rb != ra:
            parent[ra] = rb
    roots: dict = {}
    out = {}
    for node in parent:  # baseline clusters first, in their order: stable group numbers
        out[node] = roots.setdefault(find(node), len(roots))
    return out


def cluster_change(
    before: pd.DataFrame,
    after: pd.DataFrame,
    *,
    before_members: pd.DataFrame | None = None,
    after_members: pd.DataFrame | None = None,
    match: str = "auto",
    score: str = "jaccard",
    min_score: float | None = None,
    indicators: tuple[str, ...] = INDICATORS,
) -> ClusterChange:
    """Match baseline and follow-up clusters and report each one's change.

    Parameters
    ----------
    before, after : DataFrame or GeoDataFrame
        Cluster summaries of the two runs (``geocluster.clustering.summarize_clusters``):
        ``cluster_id`` and any of the :data:`INDICATORS`; hull geometry in one projected
        CRS for ``match="area"``.
    before_members, after_members : DataFrame, optional
        ``firm_id, cluster_id`` of each clustered firm (noise ``-1`` or missing is
        ignored); needed for ``match="firms"``.
    match : {"auto", "firms", "area"}
        ``"auto"``: by firms when both member tables are given and share a firm id, else
        by area.
    score : {"jaccard", "overlap"}
        Overlap score (see the module notes).
    min_score : float, optional
        Link threshold in (0, 1]; default 0.2 for Jaccard, 0.5 for overlap.
    indicators : tuple of str
        Indicators to compare (those missing from either summary are skipped).

    Returns
    -------
    ClusterChange

    Notes
    -----
    Spiliopoulou, M., Ntoutsi, I., Theodoridis, Y. & Schult, R. (2006), "MONIC: modeling and
    monitoring cluster transitions", *Proc. 12th ACM SIGKDD*, 706–711 (survival, split,
    absorption, disappearance, emergence). Jaccard, P. (1912), "The distribution of the
    flora in the alpine zone", *New Phytologist* 11(2), 37–50.
    """
    if match not in MATCHES:
        raise InvalidInput(f"expected match one of {list(MATCHES)}, got {match!r}")
    if score not in SCORES:
        raise InvalidInput(f"expected score one of {list(SCORES)}, got {score!r}")
    if min_score is None:
        min_score = DEFAULT_MIN_SCORE[score]
    if not np.isfinite(min_score) or not 0 < float(min_score) <= 1:
        raise InvalidInput(f"expected min_score in (0, 1], got {min_score}")
    b = _summary(before, "before")
    a = _summary(after, "after")
    if match == "auto":
        match = "area"
        if before_members is not None and after_members is not None:
            bm, am = _members(before_members, "before"), _members(after_members, "after")
            if np.isin(bm["firm_id"].to_numpy(), am["firm_id"].to_numpy()).any():
                match = "firms"
    if match == "firms":
        bm, am = _members(before_members, "before"), _members(after_members, "after")
        unknown_b = set(bm["cluster_id"]) - set(b.index)
        unknown_a = set(am["cluster_id"]) - set(a.index)
        if unknown_b or unknown_a:
            raise InvalidInput(
                "expected members' cluster ids among the summaries' cluster_id, got unknown "
                f"{sorted(map(str, unknown_b | unknown_a))[:5]}"
            )
        links = _firm_links(bm, am, score)
    else:
        links = _area_links(b, a, score)
    links = links[links["score"] >= float(min_score)].reset_index(drop=True)
    deg_b = links.groupby("before_id").size()
    deg_a = links.groupby("after_id").size()
    db = links["before_id"].map(deg_b).to_numpy()
    da = links["after_id"].map(deg_a).to_numpy()
    status = np.select(
        [(db == 1) & (da == 1), (db > 1) & (da == 1), (db == 1) & (da > 1)],
        ["matched", "split", "merged"],
        "split_merged",
    )
    links = links.assign(
        status=status,
        before_id=links["before_id"].astype(object),
        after_id=links["after_id"].astype(object),
    )
    gone = [i for i in b.index if i not in deg_b.index]
    new = [i for i in a.index if i not in deg_a.index]
    rows = pd.concat(
        [
            links,
            pd.DataFrame({"before_id": pd.Series(gone, dtype=object), "status": "disappeared"}),
            pd.DataFrame({"after_id": pd.Series(new, dtype=object), "status": "appeared"}),
        ],
        ignore_index=True,
    )
    for col in ("before_id", "after_id"):
        ids = [None if pd.isna(v) else v for v in rows[col].astype(object)]
        rows[col] = pd.Series(ids, index=rows.index, dtype=object)
    group_of = _components(b.index, a.index, links)
    rows["group"] = [
        group_of[("b", bi)] if bi is not None else group_of[("a", ai)]
        for bi, ai in zip(rows["before_id"], rows["after_id"])
    ]
    used = [i for i in indicators if i in b.columns and i in a.columns]
    if "n_firms" not in used:
        raise MissingColumns("expected an n_firms column in both cluster summaries")

    def values(frame, ids, col):
        v = pd.to_numeric(frame[col], errors="coerce")
        return np.array([v.get(i, np.nan) if i is not None else np.nan for i in ids], float)

    out = rows[["before_id", "after_id", "status", "group"]].copy()
    out["n_firms_before"] = values(b, rows["before_id"], "n_firms")
    out["n_firms_after"] = values(a, rows["after_id"], "n_firms")
    out["shared"] = rows["shared"].fillna(0.0).to_numpy(float)
    out["score"] = rows["score"].fillna(0.0).to_numpy(float)
    for col in used:
        vb = values(b, rows["before_id"], col)
        va = values(a, rows["after_id"], col)
        out[f"{col}_before"], out[f"{col}_after"] = vb, va
        if col in _COUNTS:  # an absent cluster has 0 firms and 0 jobs, not "unknown"
            vb = np.where(out["before_id"].isna(), 0.0, vb)
            va = np.where(out["after_id"].isna(), 0.0, va)
        out[f"{col}_change"] = va - vb
    order = {s: i for i, s in enumerate(STATUSES)}
    out = out.sort_values(
        ["group", "status"], key=lambda s: s.map(order) if s.name == "status" else s
    )
    return ClusterChange(
        rows=out.reset_index(drop=True),
        groups=_group_table(out, b, a, used),
        match=match,
        score=score,
        min_score=float(min_score),
    )


def _group_table(rows: pd.DataFrame, b: pd.DataFrame, a: pd.DataFrame, used) -> pd.DataFrame:
    records = []
    for g, r in rows.groupby("group", sort=True):
        bids = list(dict.fromkeys(i for i in r["before_id"] if i is not None))
        aids = list(dict.fromkeys(i for i in r["after_id"] if i is not None))
        statuses = set(r["status"])
        status = statuses.pop() if len(statuses) == 1 else "split_merged"
        rec = {
            "group": g,
            "status": status,
            "before_ids": bids,
            "after_ids": aids,
            "n_before": len(bids),
            "n_after": len(aids),
        }
        for col in used:
            for side, frame, ids in (("before", b, bids), ("after", a, aids)):
                rec[f"{col}_{side}"] = _aggregate(frame, ids, col)
            rec[f"{col}_change"] = rec[f"{col}_after"] - rec[f"{col}_before"]
        records.append(rec)
    return pd.DataFrame.from_records(records)


def _aggregate(frame: pd.DataFrame, ids: list, col: str) -> float:
    """Sum of a count, or the firm-weighted mean of a share, over clusters ``ids``."""
    if not ids:
        return 0.0 if col in _COUNTS else np.nan
    v = pd.to_numeric(frame.loc[ids, col], errors="coerce").to_numpy(float)
    if col in _COUNTS:
        return float(np.nansum(v)) if np.isfinite(v).any() else np.nan
    w = pd.to_numeric(frame.loc[ids, "n_firms"], errors="coerce").to_numpy(float)
    ok = np.isfinite(v) & np.isfinite(w) & (w > 0)
    return float(np.sum(v[ok] * w[ok]) / w[ok].sum()) if ok.any() else np.nan
