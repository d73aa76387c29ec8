"""SDG proxy indicators on a toy register computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geocluster.errors import InvalidInput, MissingColumns
from geocluster.sdg import SDG_INDICATORS, SMALL_SCALE_MAX_EMPLOYEES, sdg_view

# region, ISIC code, employees, informal, women_led, youth_led
FIRMS = pd.DataFrame(
    [
        ("a", "1010", 5, True, True, False),  # manufacturing (div 10), small
        ("a", "25", 30, False, False, True),  # manufacturing (div 25), not small
        ("a", "4711", 15, True, True, None),  # retail
        ("a", None, 100, None, False, False),  # unknown sector: out of 9.2.2 / 9.3.1
        ("b", "13", 10, False, False, False),  # manufacturing, small
        ("b", "56", 10, True, True, True),  # restaurants
        (None, "10", 40, False, False, False),  # in no region: national only
    ],
    columns=["region_id", "sector_code", "employees", "informal", "women_led", "youth_led"],
)


def test_indicators_by_hand():
    # Reference: hand computation on the table above (every ratio written out).
    out = sdg_view(FIRMS, region_ids=["a", "b", "c"])
    a, b, c = (out.regions.loc[r] for r in "abc")
    assert a["n_firms"] == 4 and a["employees"] == 150
    assert a["manufacturing_employment_share"] == pytest.approx(35 / 50)
    assert a["small_scale_manufacturing_share"] == pytest.approx(5 / 35)
    assert a["informal_firm_share"] == pytest.approx(2 / 3)
    assert a["informal_employment_share"] == pytest.approx(20 / 50)
    assert a["women_led_share"] == pytest.approx(2 / 4)
    assert a["youth_led_share"] == pytest.approx(1 / 3)
    assert b["manufacturing_employment_share"] == pytest.approx(10 / 20)
    assert b["small_scale_manufacturing_share"] == pytest.approx(1.0)
    assert b["informal_employment_share"] == pytest.approx(10 / 20)
    assert c["n_firms"] == 0 and np.isnan(c["women_led_share"])
    nat = out.national
    assert nat["n_firms"] == 7
    assert nat["manufacturing_employment_share"] == pytest.approx(85 / 110)
    assert nat["small_scale_manufacturing_share"] == pytest.approx(15 / 85)
    assert nat["informal_firm_share"] == pytest.approx(3 / 6)
    assert nat["informal_employment_share"] == pytest.approx(30 / 110)
    assert nat["women_led_share"] == pytest.approx(3 / 7)
    # 10.x: gaps to national and the Gini of the regional values
    assert out.gaps.loc["a", "women_led_share"] == pytest.approx(0.5 - 3 / 7)
    # Gini of (0.7, 0.5): sum_ij |yi - yj| / (2 n^2 mu) = 0.4 / (2 * 4 * 0.6) = 1/12
    ineq = out.inequality.loc["manufacturing_employment_share"]
    assert ineq["gini"] == pytest.approx(1 / 12) and ineq["n_regions"] == 2
    assert ineq["min"] == pytest.approx(0.5) and ineq["max"] == pytest.approx(0.7)
    long = out.long()
    row = long[(long.region_id == "a") & (long.indicator == "manufacturing_employment_share")]
    assert row["sdg_code"].item() == "9.2.2" and row["national"].item() == pytest.approx(85 / 110)


def test_metadata_is_complete():
    assert SMALL_SCALE_MAX_EMPLOYEES == 20  # UNIDO's 9.3.1 small-scale definition
    codes = {k: i.sdg_code for k, i in SDG_INDICATORS.items()}
    assert codes["manufacturing_employment_share"] == "9.2.2"
    assert codes["small_scale_manufacturing_share"] == "9.3.1"
    assert codes["informal_firm_share"] == codes["informal_employment_share"] == "8.3.1"
    assert codes["women_led_share"] == "5.5.2"
    for ind in SDG_INDICATORS.values():
        d = ind.to_dict()
        assert all(d[f] for f in ("official_name", "proxy_definition", "differs", "source"))
        assert "Metadata Repository" in d["source"]
    assert list(sdg_view(FIRMS).regions.columns[2:]) == list(SDG_INDICATORS)


def test_missing_columns_give_nan_and_string_flags():
    firms = FIRMS[["region_id", "sector_code", "employees"]].assign(
        women_led=["true", "false", "TRUE", None, "0", "1", "false"]
    )
    out = sdg_view(firms)
    assert out.regions["informal_firm_share"].isna().all()
    assert np.isnan(out.inequality.loc["youth_led_share", "gini"])
    assert out.regions.loc["a", "women_led_share"] == pytest.approx(2 / 3)


def test_bad_input():
    with pytest.raises(MissingColumns, match="region_id"):
        sdg_view(FIRMS.drop(columns="region_id"))
    with pytest.raises(InvalidInput, match="employees >= 0"):
        sdg_view(FIRMS.assign(employees=-1))
    with pytest.raises(InvalidInput, match="true/false"):
        sdg_view(FIRMS.assign(informal="sometimes"))
    with pytest.raises(InvalidInput, match="unique"):
        sdg_view(FIRMS, region_ids=["a", "a"])
