"""Specialisation from reduced cells equals the firm-level ``long_table``.

The reference is :func:`geocluster.specialization.long_table` on the firm-level
:class:`SectorTable` (itself tested against hand computations and published formulas in
test_specialization.py: Florence's LQ, Ellison & Glaeser 1997 eq. 5, Maurel & Sedillot
1999). The two largest firms per cell are also checked against a direct pandas
``nlargest`` (an independent computation).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geocluster.specialization import long_table, sector_table
from geocluster.specialization.cells import (
    cells_of,
    long_table_from_cells,
    reduce_cells,
    with_outside,
)

GROUPS = {
    "food": frozenset({"10", "11"}),
    "metal": frozenset({"24", "25"}),
    "mixed": frozenset({"11", "25", "47"}),  # overlaps the others
    "empty": frozenset({"99"}),
}


def firms(seed: int, n: int = 4000):
    rng = np.random.default_rng(seed)
    R = 12
    pos = rng.integers(-1, R, n)  # -1: outside every region
    div = rng.choice(["10", "11", "24", "25", "47", None, ""], n, p=[0.18] * 4 + [0.1] * 2 + [0.08])
    emp = rng.integers(0, 300, n).astype(float)
    emp[rng.random(n) < 0.15] = np.nan
    pos[rng.random(n) < 0.05] = 3  # a crowded region
    return pos, pd.Series(div, dtype="object"), emp, np.array([f"R{r}" for r in range(R)])


def cells_in_parts(pos, div, emp, k: int, seed: int) -> pd.DataFrame:
    """Cells of random partitions, reduced in a random tree (as the workers do)."""
    rng = np.random.default_rng(seed)
    part = rng.integers(0, k, len(pos))
    parts = [cells_of(pos[part == i], div[part == i], emp[part == i]) for i in range(k)]
    while len(parts) > 1:
        rng.shuffle(parts)
        parts = [reduce_cells(parts[i : i + 3]) for i in range(0, len(parts), 3)]
    cells = parts[0]
    return with_outside(cells, int(cells.loc[cells["region"] < 0, "n"].sum()))


@pytest.mark.parametrize("measure", ["employees", "firms", "auto"])
@pytest.mark.parametrize("groups", [None, GROUPS])
@pytest.mark.parametrize("k", [1, 7])
def test_cells_give_the_firm_level_long_table(measure, groups, k):
    pos, div, emp, ids = firms(seed=k)
    table = sector_table(pos, ids, div, emp, groups=groups)
    rows, regions, sectors, used = long_table(table, measure)
    got_table, g_rows, g_regions, g_sectors, g_used = long_table_from_cells(
        cells_in_parts(pos, div, emp, k, seed=k), ids, measure, groups=groups
    )
    assert g_used == used
    assert (got_table.n_firms, got_table.dropped_outside) == (
        table.n_firms,
        table.dropped_outside,
    )
    np.testing.assert_array_equal(got_table.sectors, table.sectors)
    pd.testing.assert_frame_equal(g_rows, rows, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(g_regions, regions, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(g_sectors, sectors, check_exact=False, rtol=1e-12)


def test_two_largest_firms_per_cell_against_nlargest():
    pos, div, emp, _ = firms(seed=3)
    cells = cells_in_parts(pos, div, emp, 9, seed=3)
    df = pd.DataFrame({"region": pos, "key": div, "emp": np.nan_to_num(emp)})
    df = df[(df["region"] >= 0) & df["key"].notna() & (df["key"] != "")]
    ref = df.groupby(["region", "key"])["emp"].apply(lambda s: s.nlargest(2).tolist())
    got = cells[(cells["region"] >= 0) & cells["key"].notna()].set_index(["region", "key"])
    assert len(got) == len(ref)
    for (r, key), top in ref.items():
        row = got.loc[(r, key)]
        assert [row["top1"], row["top2"]] == (top + [0.0])[:2]


def test_no_firm_and_only_outside_firms():
    pos, div, emp, ids = np.zeros(0, int), pd.Series([], dtype="object"), np.zeros(0), ["A"]
    table, rows, regions, sectors, used = long_table_from_cells(
        reduce_cells([cells_of(pos, div, emp)]), ids, "employees"
    )
    assert (table.n_firms, table.dropped_outside, used, len(rows)) == (0, 0, "firms", 0)
    out = with_outside(reduce_cells([]), 5)
    table, *_ = long_table_from_cells(out, ids, "firms")
    assert (table.n_firms, table.dropped_outside) == (0, 5)
