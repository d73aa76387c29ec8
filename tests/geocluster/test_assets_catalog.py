"""Asset catalogue (categories, designations, OSM tags) and the UNESCO WHL mapping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geocluster.assets.catalog import (
    CATEGORIES,
    DESIGNATIONS,
    LINKED_SECTOR_GROUPS,
    SUBTYPE_CATEGORY,
    category_from_subtype,
    check_category,
    normalize_category,
    normalize_designation,
    normalize_subtype,
)
from geocluster.assets.unesco import is_unesco_table, unesco_to_assets
from geocluster.errors import InvalidInput, MissingColumns


def test_catalogue_shape():
    assert list(CATEGORIES) == ["cultural", "natural", "agro_food", "tourism", "infrastructure"]
    assert set(DESIGNATIONS) == {"unesco", "national", "regional", "local", "gi"}
    for sub in ("monument", "archaeological_site", "historic_centre", "museum", "memorial"):
        assert sub in CATEGORIES["cultural"]
    for sub in ("protected_area", "park", "viewpoint"):
        assert sub in CATEGORIES["natural"]
    for sub in ("gi_area", "market", "farm", "winery"):
        assert sub in CATEGORIES["agro_food"]
    for sub in ("attraction", "accommodation"):
        assert sub in CATEGORIES["tourism"]
    assert set(LINKED_SECTOR_GROUPS) == set(CATEGORIES)
    # a subtype listed under two categories is ambiguous, so it has no implied category
    assert "world_heritage_site" not in SUBTYPE_CATEGORY
    assert SUBTYPE_CATEGORY["museum"] == "cultural"


def test_normalize_category():
    raw = pd.Series(
        ["Cultural", " agro-food ", "Agro food", None, "spaceport", "Mixed", "NATURE"],
        index=list("abcdefg"),
    )
    cats, bad = normalize_category(raw)
    assert cats.tolist() == [
        "cultural",
        "agro_food",
        "agro_food",
        None,
        None,
        "cultural",
        "natural",
    ]
    np.testing.assert_array_equal(bad, [False, False, False, True, True, False, False])
    assert list(cats.index) == list("abcdefg")


def test_normalize_designation():
    raw = pd.Series(
        ["UNESCO", "World Heritage", "PDO", "pgi", None, "", "none", "Municipal", "galactic"]
    )
    des, bad = normalize_designation(raw)
    assert des.tolist() == ["unesco", "unesco", "gi", "gi", None, None, None, "local", None]
    np.testing.assert_array_equal(bad, [False] * 8 + [True])


def test_subtypes_and_category_inference():
    subs = normalize_subtype(
        pd.Series(["Archaeological site", "Historic center", "Hotel", None, "Tree house"])
    )
    assert subs.tolist() == [
        "archaeological_site",
        "historic_centre",
        "accommodation",
        None,
        "tree_house",
    ]
    assert category_from_subtype(subs).tolist() == ["cultural", "cultural", "tourism", None, None]


def test_check_category():
    assert check_category(None) is None
    assert check_category("Agro-Food") == "agro_food"
    with pytest.raises(InvalidInput, match="cultural, natural"):
        check_category("volcanic")


def _whl_frame():
    # columns as in the World Heritage Centre export (whc-sites-*.csv), a subset of rows
    return pd.DataFrame(
        {
            "unique_number": [1, 2, 3, 4, 5],
            "id_no": [583, 1196, 274, 2999, 1024.0],
            "name_en": [
                "Fortress of Suomenlinna",
                "Struve Geodetic Arc",
                "Tikal National Park",
                "Invented Site",
                "Nowhere Site",
            ],
            "category": ["Cultural", "Cultural", "Mixed", "Natural", "Imaginary"],
            "date_inscribed": [1991, 2005, 1979, "2020", None],
            "latitude": [60.1454, 59.0, 17.2220, "north", 95.0],
            "longitude": [24.9881, 26.0, -89.6237, 10.0, 10.0],
            "states_name_en": ["Finland", "Belarus,Estonia,Finland", "Guatemala", "X", "Y"],
            "danger": [0, 0, "", 1, None],
            "region_en": ["Europe", "Europe", "Latin America", "Z", "Z"],
        }
    )


def test_unesco_mapping():
    df = _whl_frame()
    assert is_unesco_table(df.columns)
    assert is_unesco_table([c.upper() for c in df.columns])
    assert not is_unesco_table(["id", "name", "lat", "lon"])
    out = unesco_to_assets(df)
    assert out["asset_id"].tolist() == ["whc-583", "whc-1196", "whc-274", "whc-2999", "whc-1024"]
    assert out["name"].iloc[0] == "Fortress of Suomenlinna"
    assert out["category"].tolist() == ["cultural", "cultural", "cultural", "natural", "Imaginary"]
    assert out["subtype"].tolist()[:4] == [
        "world_heritage_site",
        "world_heritage_site",
        "mixed_world_heritage_site",
        "world_heritage_site",
    ]
    assert (out["designation"] == "unesco").all()
    assert out["whc_category"].iloc[2] == "Mixed"
    assert out["date_inscribed"].tolist()[:4] == [1991, 2005, 1979, 2020]
    assert out["date_inscribed"].isna().iloc[4]
    assert out["danger"].tolist()[:2] == [False, False] and out["danger"].iloc[3]
    assert out["danger"].isna().iloc[2]
    assert out["states"].iloc[1] == "Belarus,Estonia,Finland"
    # coordinates pass through unparsed for the ingest pipeline to validate and report
    assert out["latitude"].iloc[3] == "north" and out["latitude"].iloc[4] == 95.0
    assert "region_en" in out.columns and "unique_number" in out.columns
    # the unknown category is kept verbatim so validation can report it
    cats, bad = normalize_category(out["category"])
    np.testing.assert_array_equal(bad, [False, False, False, False, True])


def test_unesco_missing_columns():
    with pytest.raises(MissingColumns, match="missing latitude, longitude"):
        unesco_to_assets(pd.DataFrame({"id_no": [1], "name_en": ["a"], "category": ["Cultural"]}))


def test_linked_divisions():
    from geocluster.assets.catalog import linked_divisions
    from geocluster.sectors import group_divisions

    assert linked_divisions("cultural") == group_divisions("tourism")
    assert linked_divisions("Nature") == group_divisions("tourism")
    assert linked_divisions("agro_food") == group_divisions("agro_food")
    assert linked_divisions("infrastructure") == frozenset()
    assert "55" in linked_divisions("tourism") and "10" in linked_divisions("agro_food")
    with pytest.raises(InvalidInput):
        linked_divisions("moon")
