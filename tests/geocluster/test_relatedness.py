"""Relatedness and complexity against the Growth Lab's ``ecomplexity`` package."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from ecomplexity import ecomplexity
from ecomplexity import proximity as ec_proximity

from geocluster.errors import InvalidInput
from geocluster.specialization.relatedness import nearby_opportunities, rca, relatedness


def _table(seed: int, n_regions: int = 12, n_sectors: int = 9) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # heavy-tailed counts with some empty cells, as region x sector employment is
    x = np.floor(rng.lognormal(3, 1.5, (n_regions, n_sectors)))
    x[rng.random(x.shape) < 0.3] = 0
    return pd.DataFrame(
        x,
        index=[f"R{i:02d}" for i in range(n_regions)],
        columns=[f"{10 + j}" for j in range(n_sectors)],
    )


def _growth_lab(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    long = table.stack().rename("val").reset_index()
    long.columns = ["loc", "prod", "val"]
    long["year"] = 2024
    cols = {"time": "year", "loc": "loc", "prod": "prod", "val": "val"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = ecomplexity(long, cols, check_logsupermodularity=False, verbose=False)
        prox = ec_proximity(long, cols)
    return out, prox


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_ecomplexity(seed, capsys):
    # Reference: ecomplexity 0.5.3 (Growth Lab, Harvard), the same matrix.
    table = _table(seed)
    ours = relatedness(table)
    ref, prox = _growth_lab(table)
    capsys.readouterr()  # ecomplexity's proximity() prints the year
    ref = ref.set_index(["loc", "prod"])
    rows = ours.density_rows().set_index(["region_id", "sector"])
    np.testing.assert_allclose(rows["rca"], ref.loc[rows.index, "rca"], rtol=1e-10)
    np.testing.assert_allclose(rows["density"], ref.loc[rows.index, "density"], rtol=1e-9)
    np.testing.assert_array_equal(
        ours.presence.stack().to_numpy(), ref.loc[rows.index, "mcp"].to_numpy()
    )
    assert ours.eci.notna().all() and ours.pci.notna().all()  # nothing compared as NaN == NaN
    eci_ref = ref["eci"].groupby(level="loc").first()
    pci_ref = ref["pci"].groupby(level="prod").first()
    np.testing.assert_allclose(ours.eci[eci_ref.index], eci_ref, atol=1e-8)
    np.testing.assert_allclose(ours.pci[pci_ref.index], pci_ref, atol=1e-8)
    np.testing.assert_allclose(
        ours.diversity[eci_ref.index], ref["diversity"].groupby(level="loc").first()
    )
    phi_ref = prox.set_index(["prod_1", "prod_2"])["proximity"]
    phi = ours.proximity.stack()
    np.testing.assert_allclose(phi[phi_ref.index], phi_ref, atol=1e-12)


def test_hand_example():
    # Reference: hand computation. Three regions, three sectors; national shares
    # x[s]/x = (.4, .3, .3). RCA >= 1: a has s1, b has s1 and s2, c has s3.
    table = pd.DataFrame({"s1": [8, 4, 0], "s2": [2, 5, 2], "s3": [0, 1, 8]}, index=["a", "b", "c"])
    r = rca(table)
    assert r.loc["a", "s1"] == pytest.approx((8 / 10) / (12 / 30))
    out = relatedness(table)
    assert out.presence.to_numpy().tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    # s1 in {a, b}, s2 in {b}: P(s2|s1) = 1/2, P(s1|s2) = 1 -> phi = 1/2; s3 shares nothing
    assert out.proximity.loc["s1", "s2"] == 0.5 and out.proximity.loc["s1", "s3"] == 0
    # density of s2 for a: sum_t M[a,t] phi[s2,t] / sum_t phi[s2,t] = .5 / (.5 + 1)
    assert out.density.loc["a", "s2"] == pytest.approx(1 / 3)
    assert out.eci["b"] > out.eci["c"] or out.eci["b"] > out.eci["a"]  # diversity 2 vs 1
    ops = nearby_opportunities(out, top_n=1)
    assert ops.set_index("region_id").loc["a", "sector"] == "s2"
    assert (ops["rca"] < 1).all()


def test_opportunities_and_zero_rows():
    table = _table(5)
    table.loc["empty"] = 0.0
    out = relatedness(table)
    assert np.isnan(out.eci["empty"]) and out.density.loc["empty"].isna().all()
    # ECI is standardised over the regions that have a total
    assert out.eci.mean() == pytest.approx(0, abs=1e-12)
    assert out.eci.std(ddof=0) == pytest.approx(1)
    ops = nearby_opportunities(out, top_n=3, min_density=0.2)
    assert "empty" not in set(ops["region_id"])
    assert (ops.groupby("region_id").size() <= 3).all()
    assert (ops["density"] >= 0.2).all() and (ops["rca"] < 1).all()
    for _, g in ops.groupby("region_id"):
        assert g["density"].is_monotonic_decreasing
        assert g["rank"].tolist() == list(range(1, len(g) + 1))
    edges = out.proximity_edges()
    assert all(0 < phi <= 1 for _, _, phi in edges)


def test_bad_input():
    with pytest.raises(InvalidInput, match="two regions and two sectors"):
        relatedness(pd.DataFrame({"a": [1.0, 2.0]}, index=["x", "y"]))
    with pytest.raises(InvalidInput, match="non-negative"):
        relatedness(-_table(1))
    with pytest.raises(InvalidInput, match="DataFrame"):
        relatedness(np.ones((3, 3)))
    with pytest.raises(InvalidInput, match="top_n"):
        nearby_opportunities(relatedness(_table(1)), top_n=0)


def test_components_of_the_presence_network():
    # Reference: hand reading of the hand example above. M = [[1,0,0],[1,1,0],[0,0,1]]:
    # {a, b, s1, s2} and {c, s3} share no edge -> two parts; the second eigenvalue of
    # M~ is then exactly 1 and ECI only separates the parts.
    table = pd.DataFrame({"s1": [8, 4, 0], "s2": [2, 5, 2], "s3": [0, 1, 8]}, index=["a", "b", "c"])
    out = relatedness(table)
    assert out.components() == 2
    assert out.eigenvalue == pytest.approx(1.0)


def _parts_by_search(presence: pd.DataFrame) -> int:
    # reference: a plain depth-first search over the bipartite region-sector graph
    m = presence.to_numpy()
    edges = {("r", i): {("s", j) for j in np.flatnonzero(m[i])} for i in range(m.shape[0])}
    for j in range(m.shape[1]):
        edges[("s", j)] = {("r", i) for i in np.flatnonzero(m[:, j])}
    seen, parts = set(), 0
    for node, nb in edges.items():
        if node in seen or not nb:
            continue
        parts += 1
        stack = [node]
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(edges[n] - seen)
    return parts


@pytest.mark.parametrize("seed", range(6))
def test_components_equal_a_graph_search(seed):
    rng = np.random.default_rng(seed)
    # block-structured tables: some seeds give one part, some several
    blocks = rng.integers(1, 4)
    table = pd.DataFrame(
        rng.poisson(0.3, (10, 8)),
        index=[f"r{i}" for i in range(10)],
        columns=[f"s{j}" for j in range(8)],
    )
    for b in range(blocks):
        table.iloc[b * 3 : b * 3 + 3, b * 2 : b * 2 + 2] += rng.integers(5, 20, (3, 2))
    table = table.loc[table.sum(axis=1) > 0, table.sum(axis=0) > 0]
    out = relatedness(table)
    assert out.components() == _parts_by_search(out.presence)  # seeds 2, 4: two parts
