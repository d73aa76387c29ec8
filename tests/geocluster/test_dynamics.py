"""Dynamics on a simulated register whose history is known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geocluster.dynamics import age_structure, emergence, founding_series, growth
from geocluster.errors import InvalidInput, MissingColumns


def _register(seed: int = 0) -> pd.DataFrame:
    """Cluster A: 5 firms a year 2005-2010 within 200 m of (0, 0). Cluster B: 4 firms a
    year 2015-2019 within 200 m of (20 km, 0). Background: 40 firms on a 5 km lattice far
    from both, founded 1990-2020 (never within eps of each other)."""
    rng = np.random.default_rng(seed)
    rows = []
    for year in range(2005, 2011):
        for _ in range(5):
            r, t = 200 * np.sqrt(rng.random()), 2 * np.pi * rng.random()
            rows.append(("A", r * np.cos(t), r * np.sin(t), year, 10))
    for year in range(2015, 2020):
        for _ in range(4):
            r, t = 200 * np.sqrt(rng.random()), 2 * np.pi * rng.random()
            rows.append(("B", 20_000 + r * np.cos(t), r * np.sin(t), year, 3))
    for i in range(40):
        rows.append((None, 50_000 + 5000 * (i % 8), 50_000 + 5000 * (i // 8), 1990 + i % 31, 1))
    return pd.DataFrame(rows, columns=["truth", "x", "y", "founded", "employees"])


def test_emergence_years_known_by_construction():
    firms = _register()
    xy = firms[["x", "y"]].to_numpy()
    # eps 500 m > every distance inside a 200 m disc: a cluster's firms are all core once
    # there are min_samples = 10 of them. A reaches 10 firms in 2006 (5 a year from 2005),
    # B in 2017 (4 a year from 2015: 4, 8, 12).
    out = emergence(xy, firms["founded"], eps_m=500, min_samples=10, years=(2000, 2020))
    c = out.clusters
    assert len(c) == 2  # the lattice is noise
    by_truth = {
        firms.loc[np.flatnonzero(_labels(xy) == cid)[0], "truth"]: row
        for cid, row in c.set_index("cluster_id").iterrows()
    }
    assert by_truth["A"]["emergence_year"] == 2006 and by_truth["A"]["n_firms_at_emergence"] == 10
    assert by_truth["B"]["emergence_year"] == 2017 and by_truth["B"]["n_firms_at_emergence"] == 12
    assert not c["before_range"].any()
    tl = out.timeline.set_index(["year", "cluster_id"])
    a_id = int(c.loc[c["n_firms"] == 30, "cluster_id"].item())
    assert not tl.loc[(2005, a_id), "present"] and tl.loc[(2005, a_id), "n_founded"] == 5
    assert tl.loc[(2010, a_id), "n_firms_detected"] == 30
    # a range that starts after A emerged flags it as older than the range
    late = emergence(xy, firms["founded"], eps_m=500, min_samples=10, years=[2008, 2018])
    row = late.clusters.set_index("n_firms").loc[30]
    assert row["emergence_year"] == 2008 and row["before_range"]


def _labels(xy):
    from geocluster.clustering import dbscan

    return dbscan(xy, eps_m=500, min_samples=10)


def test_founding_series_and_growth_by_hand():
    firms = _register().assign(cluster_id=lambda f: f["truth"].map({"A": 0, "B": 1}).fillna(-1))
    s = founding_series(firms, group="cluster_id", years=(2005, 2019))
    a = s[s["group"] == 0].set_index("year")
    assert a.loc[2005, "new_firms"] == 5 and a.loc[2011, "new_firms"] == 0
    assert a.loc[2010, "stock_firms"] == 30 and a.loc[2019, "stock_firms"] == 30
    assert a.loc[2007, "stock_employees"] == 150  # 15 firms x 10 employees
    b = s[s["group"] == 1].set_index("year")
    assert np.isnan(b.loc[2014, "stock_employees"]) and b.loc[2014, "stock_firms"] == 0
    # Reference: CAGR by hand. A's stock 10 (2006) -> 30 (2010): 3 ** (1/4) - 1
    g = growth(s, start_year=2006, end_year=2010)
    assert g.loc[0, "cagr_firms"] == pytest.approx(3**0.25 - 1)
    assert g.loc[0, "cagr_employees"] == pytest.approx(3**0.25 - 1)
    assert np.isnan(g.loc[1, "cagr_firms"])  # B had no firm in 2006
    # firms founded before the range enter the opening stock
    s2 = founding_series(firms, group="cluster_id", years=(2008, 2010))
    assert s2.set_index(["group", "year"]).loc[(0, 2008), "new_firms"] == 20
    with pytest.raises(InvalidInput, match="start_year < end_year"):
        growth(s, start_year=2010, end_year=2010)


def test_age_structure_by_hand():
    firms = pd.DataFrame(
        {
            "region_id": ["r", "r", "r", "r", "s", None],
            "founded": [2020, 2018, 2010, 1990, None, 2000],
        }
    )
    out = age_structure(firms, group="region_id", reference_year=2020)
    r = out.loc["r"]
    # ages 0, 2, 10, 30 -> bins 0-2 (two), 6-10, 21+
    assert (r["0-2"], r["3-5"], r["6-10"], r["11-20"], r["21+"]) == (2, 0, 1, 0, 1)
    assert r["share_0-2"] == pytest.approx(0.5) and r["median_age"] == 6
    assert out.loc["s", "unknown_age"] == 1 and np.isnan(out.loc["s", "share_0-2"])
    with pytest.raises(InvalidInput, match="reference_year"):
        age_structure(firms, group="region_id", reference_year=2015)
    with pytest.raises(InvalidInput, match="bins"):
        age_structure(firms, group="region_id", reference_year=2020, bins=(1, 5))


def test_bad_input():
    firms = _register()
    with pytest.raises(MissingColumns, match="founded"):
        founding_series(firms.drop(columns="founded"), group="truth")
    with pytest.raises(InvalidInput, match="whole years"):
        founding_series(firms.assign(founded=2000.5), group="truth")
    xy = firms[["x", "y"]].to_numpy()
    with pytest.raises(InvalidInput, match="increasing"):
        emergence(xy, firms["founded"], eps_m=500, min_samples=10, years=[2010, 2005])
    with pytest.raises(InvalidInput, match="founding years"):
        emergence(xy, firms["founded"][:3], eps_m=500, min_samples=10, years=(2000, 2001))
