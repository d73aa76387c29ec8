"""Shift-share: the identity of the components, a hand computation, Esteban-Marquillas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geocluster.errors import InvalidInput
from geocluster.specialization.shiftshare import shift_share

# Hand table (employees):
#            base        final
#           x     y     x     y
#   A     100    50   130    40
#   B      50   100    60   120
# E0 = 300, E1 = 350 -> G = 1/6; E0x = 150 -> 190, gx = 4/15; E0y = 150 -> 160, gy = 1/15
BASE = pd.DataFrame({"x": [100, 50], "y": [50, 100]}, index=["A", "B"])
FINAL = pd.DataFrame({"x": [130, 60], "y": [40, 120]}, index=["A", "B"])


def test_classic_components_by_hand():
    # Reference: hand computation with Dunn's (1960) formulas, written out cell by cell.
    out = shift_share(BASE, FINAL)
    assert out.national_growth == pytest.approx(1 / 6)
    np.testing.assert_allclose(out.sector_growth[["x", "y"]], [4 / 15, 1 / 15])
    r = out.rows.set_index(["region_id", "sector"])
    # A,x: NS = 100/6; IM = 100 (4/15 - 1/6) = 10; RS = 130 - 100 * 19/15 = 10/3
    np.testing.assert_allclose(
        r.loc[("A", "x"), ["national_share", "industry_mix", "regional_shift"]],
        [100 / 6, 10.0, 10 / 3],
    )
    # A,y: NS = 50/6; IM = 50 (1/15 - 1/6) = -5; RS = 40 - 50 * 16/15 = -40/3
    np.testing.assert_allclose(
        r.loc[("A", "y"), ["national_share", "industry_mix", "regional_shift"]],
        [50 / 6, -5.0, -40 / 3],
    )
    # B,x: NS = 50/6; IM = 50 * 1/10 = 5; RS = 60 - 50 * 19/15 = -10/3
    np.testing.assert_allclose(
        r.loc[("B", "x"), ["national_share", "industry_mix", "regional_shift"]],
        [50 / 6, 5.0, -10 / 3],
    )
    reg = out.regions
    assert reg.loc["A", "change"] == 20 and reg.loc["B", "change"] == 30
    np.testing.assert_allclose(reg.loc["A", "regional_shift"], 10 / 3 - 40 / 3)
    # the regional shifts of all regions sum to zero nationally (a property of the method)
    assert reg["regional_shift"].sum() == pytest.approx(0.0, abs=1e-9)


def test_esteban_marquillas_by_hand():
    # Reference: hand computation with Esteban-Marquillas (1972): homothetic base
    # h[r,s] = E0[r] E0[s] / E0 = 150 * 150 / 300 = 75 for every cell here.
    out = shift_share(BASE, FINAL, esteban_marquillas=True)
    r = out.rows.set_index(["region_id", "sector"])
    np.testing.assert_allclose(r["homothetic"], 75.0)
    # A,x: g = .3, gx = 4/15, diff = 1/30 -> C = 75/30 = 2.5, A = 25/30
    np.testing.assert_allclose(r.loc[("A", "x"), ["competitive", "allocation"]], [2.5, 25 / 30])
    # A,y: g = -.2, gy = 1/15, diff = -4/15 -> C = -20, A = (50 - 75)(-4/15) = 20/3
    np.testing.assert_allclose(r.loc[("A", "y"), ["competitive", "allocation"]], [-20.0, 20 / 3])
    np.testing.assert_allclose(r["competitive"] + r["allocation"], r["regional_shift"], atol=1e-9)


def test_new_sector_and_new_region():
    base = pd.DataFrame({"x": [10.0]}, index=["A"])
    final = pd.DataFrame({"x": [12.0, 3.0], "z": [5.0, 0.0]}, index=["A", "B"])
    out = shift_share(base, final, esteban_marquillas=True)
    r = out.rows.set_index(["region_id", "sector"])
    # z did not exist nationally: growth undefined, the whole final value is regional shift
    assert np.isnan(out.sector_growth["z"])
    assert r.loc[("A", "z"), "regional_shift"] == 5.0
    assert r.loc[("A", "z"), "national_share"] == 0 and r.loc[("A", "z"), "industry_mix"] == 0
    # B had nothing in the base: its own growth rate is undefined -> EM effects NaN
    assert r.loc[("B", "x"), "regional_shift"] == 3.0
    assert np.isnan(r.loc[("B", "x"), "competitive"])
    total = r[["national_share", "industry_mix", "regional_shift"]].sum(axis=1)
    np.testing.assert_allclose(total, r["final"] - r["base"], atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    # counts (employees or firms), as the tables hold
    arrays(np.int64, (4, 3), elements=st.integers(0, 10**6)),
    arrays(np.int64, (4, 3), elements=st.integers(0, 10**6)),
)
def test_components_sum_to_the_change(b, f):
    # Reference: the shift-share identity NS + IM + RS = final - base (Dunn 1960).
    b, f = b.astype(float), f.astype(float)
    b[0, 0] += 1.0  # a positive national base total
    base = pd.DataFrame(b, index=list("abcd"), columns=list("xyz"))
    final = pd.DataFrame(f, index=list("abcd"), columns=list("xyz"))
    rows = shift_share(base, final, esteban_marquillas=True).rows
    total = rows["national_share"] + rows["industry_mix"] + rows["regional_shift"]
    scale = max(1.0, float(np.abs(f).max()), float(np.abs(b).max()))
    np.testing.assert_allclose(total, rows["final"] - rows["base"], atol=1e-9 * scale)
    ok = rows["competitive"].notna()
    np.testing.assert_allclose(
        (rows["competitive"] + rows["allocation"])[ok],
        rows["regional_shift"][ok],
        atol=1e-9 * scale,
    )


def test_bad_input():
    with pytest.raises(InvalidInput, match="positive national total"):
        shift_share(BASE * 0, FINAL)
    with pytest.raises(InvalidInput, match="non-negative"):
        shift_share(-BASE, FINAL)
    with pytest.raises(InvalidInput, match="finite"):
        shift_share(BASE.astype(float).where(BASE > 60), FINAL)
    with pytest.raises(InvalidInput, match="DataFrame"):
        shift_share([[1, 2]], FINAL)
