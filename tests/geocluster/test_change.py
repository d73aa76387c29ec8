"""Baseline -> follow-up cluster matching on hand-built toys covering every status."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geocluster.clustering.change import STATUSES, cluster_change
from geocluster.errors import InvalidInput, MissingColumns


def _members(spec: dict[int, list[str]]) -> pd.DataFrame:
    rows = [(f, c) for c, firms in spec.items() for f in firms]
    return pd.DataFrame(rows, columns=["firm_id", "cluster_id"])


def _f(prefix: str, lo: int, hi: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(lo, hi + 1)]


BEFORE = {
    0: _f("f", 1, 10),  # -> 10 (+1 new firm): matched
    1: _f("f", 11, 20),  # -> 11 and 12: split
    2: _f("f", 21, 30),  # with 3 -> 13: merged
    3: _f("f", 31, 35),
    4: _f("f", 41, 45),  # nothing after: disappeared
    6: _f("g", 1, 10),  # 6, 7 -> 16, 17 criss-cross: split_merged
    7: _f("g", 11, 20),
}
AFTER = {
    10: _f("f", 1, 10) + ["f36"],
    11: _f("f", 11, 15) + ["x1"],
    12: _f("f", 16, 20),
    13: _f("f", 21, 35),
    14: _f("n", 1, 8),  # new firms: appeared
    16: _f("g", 1, 5) + _f("g", 11, 15),
    17: _f("g", 6, 10) + _f("g", 16, 20),
}


def _summary(spec, employees, women):
    ids = list(spec)
    return pd.DataFrame(
        {
            "cluster_id": ids,
            "n_firms": [len(spec[i]) for i in ids],
            "employees": [employees.get(i, 10.0) for i in ids],
            "women_led_share": [women.get(i, 0.5) for i in ids],
        }
    )


@pytest.fixture
def change():
    before = _summary(BEFORE, {0: 100.0, 2: 60.0, 3: 40.0}, {0: 0.3, 2: 0.2, 3: 0.5})
    after = _summary(AFTER, {10: 120.0, 13: 90.0}, {10: 0.4, 13: 0.4})
    return cluster_change(
        before, after, before_members=_members(BEFORE), after_members=_members(AFTER)
    )


def test_every_status_by_hand(change):
    # Reference: hand computation of the Jaccard indices |A & B| / |A | B| of the toy sets.
    assert change.match == "firms" and change.min_score == 0.2
    r = change.rows
    status = {(b, a): s for b, a, s in zip(r["before_id"], r["after_id"], r["status"])}
    assert status == {
        (0, 10): "matched",
        (1, 11): "split",
        (1, 12): "split",
        (2, 13): "merged",
        (3, 13): "merged",
        (4, None): "disappeared",
        (None, 14): "appeared",
        (6, 16): "split_merged",
        (6, 17): "split_merged",
        (7, 16): "split_merged",
        (7, 17): "split_merged",
    }
    score = {(b, a): s for b, a, s in zip(r["before_id"], r["after_id"], r["score"])}
    assert score[(0, 10)] == pytest.approx(10 / 11)
    assert score[(1, 11)] == pytest.approx(5 / 11) and score[(1, 12)] == pytest.approx(5 / 10)
    assert score[(3, 13)] == pytest.approx(5 / 15)
    assert score[(6, 16)] == pytest.approx(5 / 15)
    assert change.counts() == {
        "matched": 1,
        "split": 1,
        "merged": 2,
        "split_merged": 2,
        "disappeared": 1,
        "appeared": 1,
    }
    assert set(r["status"]) == set(STATUSES)


def test_indicator_changes(change):
    r = change.rows.set_index(["before_id", "after_id"])
    m = r.loc[(0, 10)]
    assert (m["n_firms_before"], m["n_firms_after"], m["shared"]) == (10, 11, 10)
    assert m["n_firms_change"] == 1 and m["employees_change"] == 20
    assert m["women_led_share_change"] == pytest.approx(0.1)
    gone = change.rows[change.rows["status"] == "disappeared"].iloc[0]
    assert gone["n_firms_change"] == -5 and np.isnan(gone["women_led_share_change"])
    new = change.rows[change.rows["status"] == "appeared"].iloc[0]
    assert new["n_firms_change"] == 8
    # the merger as a group: 10 + 5 firms, 60 + 40 jobs, firm-weighted women-led share
    g = change.groups.set_index("status").loc["merged"]
    assert g["before_ids"] == [2, 3] and g["after_ids"] == [13]
    assert g["n_firms_before"] == 15 and g["n_firms_after"] == 15
    assert g["employees_change"] == pytest.approx(90 - 100)
    assert g["women_led_share_before"] == pytest.approx((10 * 0.2 + 5 * 0.5) / 15)
    assert g["women_led_share_change"] == pytest.approx(0.4 - 0.3)
    split = change.groups.set_index("status").loc["split"]
    assert split["n_before"] == 1 and split["n_after"] == 2 and split["n_firms_after"] == 11


def test_overlap_score_and_threshold():
    before = _summary({0: BEFORE[0], 1: BEFORE[1]}, {}, {})
    after = _summary({10: AFTER[10], 11: AFTER[11], 12: AFTER[12]}, {}, {})
    bm, am = _members({0: BEFORE[0], 1: BEFORE[1]}), _members({10: AFTER[10], 11: AFTER[11]})
    out = cluster_change(before, after, before_members=bm, after_members=am, score="overlap")
    r = out.rows.set_index(["before_id", "after_id"])
    # overlap = |A & B| / min(|A|, |B|): 5 / min(10, 6)
    assert r.loc[(1, 11), "score"] == pytest.approx(5 / 6)
    assert r.loc[(1, 11), "status"] == "matched"
    strict = cluster_change(
        before, after, before_members=bm, after_members=am, score="jaccard", min_score=0.95
    )
    assert set(strict.rows["status"]) == {"disappeared", "appeared"}


def test_match_by_area():
    crs = "EPSG:32614"
    before = gpd.GeoDataFrame(
        {"cluster_id": [0, 1], "n_firms": [20, 7]},
        geometry=[shapely.box(0, 0, 1000, 1000), shapely.box(5000, 0, 6000, 1000)],
        crs=crs,
    )
    after = gpd.GeoDataFrame(
        {"cluster_id": ["a", "b"], "n_firms": [25, 4]},
        geometry=[shapely.box(0, 0, 1000, 1100), shapely.box(9000, 0, 9500, 500)],
        crs=crs,
    )
    # no member tables: "auto" falls back to area; Jaccard = 1.0 km2 / 1.1 km2
    out = cluster_change(before, after)
    assert out.match == "area"
    r = out.rows.set_index(["before_id", "after_id"])
    assert r.loc[(0, "a"), "status"] == "matched"
    assert r.loc[(0, "a"), "score"] == pytest.approx(1 / 1.1)
    assert r.loc[(0, "a"), "shared"] == pytest.approx(1.0)  # km2
    assert r.loc[(1, None), "status"] == "disappeared"
    assert r.loc[(None, "b"), "status"] == "appeared"
    with pytest.raises(InvalidInput, match="one CRS"):
        cluster_change(before, after.to_crs("EPSG:32615"), match="area")


def test_bad_input():
    s = _summary({0: BEFORE[0]}, {}, {})
    with pytest.raises(InvalidInput, match="members"):
        cluster_change(s, s, match="firms")
    with pytest.raises(InvalidInput, match="min_score"):
        cluster_change(s, s, min_score=0)
    with pytest.raises(InvalidInput, match="match"):
        cluster_change(s, s, match="names")
    with pytest.raises(MissingColumns, match="cluster_id"):
        cluster_change(s.drop(columns="cluster_id"), s)
    with pytest.raises(InvalidInput, match="unknown"):
        cluster_change(
            s, s, before_members=_members({0: BEFORE[0]}), after_members=_members({9: BEFORE[0]})
        )
