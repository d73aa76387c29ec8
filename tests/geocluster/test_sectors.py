"""Tests for geocluster.sectors: ISIC/NACE tables, normalisation, groups, OSM mapping.

Reference for counts and titles: UN Statistics Division, ISIC Rev.4 (Statistical
Papers Series M No. 4/Rev.4, 2008): 21 sections, 88 divisions, 238 groups,
419 classes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geocluster.errors import InvalidInput, UnusableFile
from geocluster.sectors import (
    CLASSES,
    DIVISIONS,
    GROUPS,
    SECTIONS,
    SECTOR_GROUPS,
    division_of,
    group_divisions,
    load_groups,
    normalize_codes,
    osm_asset_class,
    osm_firm_match,
    osm_tags_to_isic,
    parse_groups,
    section_of,
    title_of,
)
from geocluster.sectors import osm as osm_mod

SECTORS_DIR = Path(osm_mod.__file__).parent


# ---------------------------------------------------------------- the table
def test_counts_match_isic_rev4():
    assert len(SECTIONS) == 21
    assert sorted(SECTIONS) == [chr(c) for c in range(ord("A"), ord("U") + 1)]
    assert len(DIVISIONS) == 88
    assert len(GROUPS) == 238
    assert len(CLASSES) == 419


def test_division_ranges_per_section():
    # the ranges printed in ISIC Rev.4, Part Two, "Broad structure"
    expected = {
        "A": range(1, 4), "B": range(5, 10), "C": range(10, 34), "D": [35],
        "E": range(36, 40), "F": range(41, 44), "G": range(45, 48), "H": range(49, 54),
        "I": range(55, 57), "J": range(58, 64), "K": range(64, 67), "L": [68],
        "M": range(69, 76), "N": range(77, 83), "O": [84], "P": [85], "Q": range(86, 89),
        "R": range(90, 94), "S": range(94, 97), "T": range(97, 99), "U": [99],
    }  # fmt: skip
    got: dict[str, list[int]] = {}
    for code, (section, _title) in DIVISIONS.items():
        got.setdefault(section, []).append(int(code))
    assert {k: sorted(v) for k, v in got.items()} == {k: list(v) for k, v in expected.items()}


def test_hierarchy_is_consistent():
    for code in GROUPS:
        assert code[:2] in DIVISIONS
    for code in CLASSES:
        assert code[:3] in GROUPS
    # every group has at least one class and every division a group
    assert {c[:3] for c in CLASSES} == set(GROUPS)
    assert {g[:2] for g in GROUPS} == set(DIVISIONS)


@pytest.mark.parametrize(
    ("code", "title"),
    [
        ("C", "Manufacturing"),
        ("I", "Accommodation and food service activities"),
        ("U", "Activities of extraterritorial organizations and bodies"),
        ("15", "Manufacture of leather and related products"),
        ("26", "Manufacture of computer, electronic and optical products"),
        ("55", "Accommodation"),
        ("79", "Travel agency, tour operator, reservation service and related activities"),
        ("1101", "Distilling, rectifying and blending of spirits"),
        ("1520", "Manufacture of footwear"),
        ("2393", "Manufacture of other porcelain and ceramic products"),
        ("9102", "Museums activities and operation of historical sites and buildings"),
    ],
)
def test_known_titles(code, title):
    assert title_of(code) == title


def test_division_tuple_and_unknown_title():
    assert DIVISIONS["11"] == ("C", "Manufacture of beverages")
    assert DIVISIONS["01"][0] == "A"
    with pytest.raises(InvalidInput, match="ISIC Rev.4 code"):
        title_of("04")


# ---------------------------------------------------------------- normalisation
ISIC_CASES = [
    ("15", "15"),
    ("1520", "1520"),
    ("C1520", "1520"),
    ("c1520", "1520"),
    ("C 15.20", "1520"),
    ("15.20", "1520"),
    ("152", "152"),  # group "Manufacture of footwear"
    (" 55 ", "55"),
    (1520, "1520"),
    (1520.0, "1520"),
    ("1520.0", "1520"),
    (15, "15"),
    (15.0, "15"),
    ("1", "01"),  # leading zero lost by a spreadsheet
    (1.0, "01"),
    ("111", "0111"),  # no group 111 exists; class 0111 does
    ("161", "161"),  # group 161 exists: it wins over class 0161
    ("0161", "0161"),
    ("A0161", "0161"),
    ("9900", "9900"),
]


@pytest.mark.parametrize(("raw", "expected"), ISIC_CASES)
def test_normalize_isic_cases(raw, expected):
    codes, unknown = normalize_codes(pd.Series([raw], dtype=object), scheme="isic4")
    assert codes.iloc[0] == expected
    assert not unknown[0]


# Expected ISIC codes from the Eurostat NACE Rev.2 - ISIC Rev.4 correspondence
# (NACE Rev.2 methodology, Eurostat 2008, Part IV): 15.20 "Manufacture of footwear"
# = ISIC 1520; 56.10 = ISIC 5610; 10.13 "meat products" falls in ISIC 1010; group 10.8
# spans ISIC 1072-1079 (group 107); divisions 01 and 47 are not mapped below the
# division (NACE_ISIC.md).
NACE_CASES = [
    ("C15.20", "1520"),
    ("15.20", "1520"),
    ("1520", "1520"),
    ("15.2", "1520"),  # NACE group 15.2 holds only class 15.20
    ("152", "1520"),
    ("15", "15"),
    (15.2, "1520"),
    (1520.0, "1520"),
    ("15.11", "1511"),
    ("15.20Z", "1520"),  # French NAF rev.2 subclass
    ("10.13", "1010"),
    ("10.8", "107"),
    ("16.23", "1622"),  # not ISIC 1623 (wooden containers, NACE 16.24)
    ("A01.11", "01"),
    ("1.11", "01"),  # a float that lost its leading zero
    (1.11, "01"),
    ("56.10", "5610"),
    ("I56.10", "5610"),
    ("47.11", "47"),
]


@pytest.mark.parametrize(("raw", "expected"), NACE_CASES)
def test_normalize_nace_cases(raw, expected):
    codes, unknown = normalize_codes(pd.Series([raw], dtype=object), scheme="nace2")
    assert codes.iloc[0] == expected
    assert not unknown[0]


@pytest.mark.parametrize(
    ("raw", "scheme"),
    [
        ("04", "isic4"),  # no division 04
        ("1599", "isic4"),  # division 15 exists, class 1599 does not
        ("109", "isic4"),  # neither group 109 nor class 0109 exists
        ("A1520", "isic4"),  # section letter contradicts the division
        ("C", "isic4"),  # a section is not a division
        ("abc", "isic4"),
        ("12345", "isic4"),
        (-15, "isic4"),
        (True, "isic4"),
        ("04.11", "nace2"),
        ("A15.20", "nace2"),
        ("15.123", "nace2"),
        ("ZZ", "nace2"),
    ],
)
def test_unknown_codes_are_flagged_not_dropped(raw, scheme):
    values = pd.Series(["15", raw, "55"], dtype=object, index=[10, 11, 12])
    codes, unknown = normalize_codes(values, scheme=scheme)
    assert len(codes) == 3 and list(codes.index) == [10, 11, 12]
    assert unknown.tolist() == [False, True, False]
    assert pd.isna(codes.iloc[1])


def test_missing_values_stay_missing_and_are_not_unknown():
    values = pd.Series([None, np.nan, "", "  ", "10"], dtype=object)
    codes, unknown = normalize_codes(values)
    assert codes.isna().tolist() == [True, True, True, True, False]
    assert not unknown.any()


def test_normalize_preserves_index_and_name_and_repeats():
    values = pd.Series(["1520", "1520", "x", "1520", "x"], index=list("abcde"), name="isic")
    codes, unknown = normalize_codes(values)
    assert codes.name == "isic"
    assert list(codes.index) == list("abcde")
    assert unknown.tolist() == [False, False, True, False, True]
    assert unknown.dtype == bool


def test_normalize_float32_and_nullable_series():
    codes, unknown = normalize_codes(pd.Series([15.2, 1520.0, np.nan], dtype="float32"), "nace2")
    assert codes.iloc[:2].tolist() == ["1520", "1520"] and not unknown.any()
    codes, unknown = normalize_codes(pd.Series([15.2], dtype="float32"))
    assert codes.iloc[0] == "152"
    codes, unknown = normalize_codes(pd.Series([1520, None, 111], dtype="Int64"))
    assert codes.iloc[0] == "1520" and pd.isna(codes.iloc[1]) and codes.iloc[2] == "0111"
    codes, unknown = normalize_codes(pd.Series(["1520", "x", None], dtype="category"))
    assert unknown.tolist() == [False, True, False]


def test_normalize_numeric_series():
    codes, unknown = normalize_codes(pd.Series([1520.0, 111.0, np.nan, 4.0]))
    assert codes.iloc[:2].tolist() == ["1520", "0111"]
    assert pd.isna(codes.iloc[2]) and pd.isna(codes.iloc[3])
    assert unknown.tolist() == [False, False, False, True]


def test_every_table_code_round_trips():
    for code in [*DIVISIONS, *GROUPS, *CLASSES]:
        codes, unknown = normalize_codes(pd.Series([code]))
        assert codes.iloc[0] == code and not unknown[0], code


def test_bad_scheme():
    with pytest.raises(InvalidInput, match="isic4"):
        normalize_codes(pd.Series(["15"]), scheme="sic")


def test_section_and_division_of():
    codes = pd.Series(["1520", "01", "0111", "55", None, "5610"])
    assert division_of(codes).tolist()[:4] == ["15", "01", "01", "55"]
    sections = section_of(codes)
    assert sections.tolist()[:4] == ["C", "A", "A", "I"]
    assert pd.isna(sections.iloc[4])
    assert sections.iloc[5] == "I"


def test_normalize_million_rows_is_vectorised():
    # not a timing assertion (see bench/); a loop over a million rows in Python
    # would still pass this but the unique-value path is what keeps it < 0.3 s.
    rng = np.random.default_rng(1)
    values = pd.Series(rng.choice(np.array(list(CLASSES), dtype=object), 1_000_000))
    codes, unknown = normalize_codes(values)
    assert not unknown.any()
    assert (codes == values).all()


# ---------------------------------------------------------------- groups
def test_builtin_groups():
    assert set(SECTOR_GROUPS) == {"agro_food", "tourism", "creative_industries"}
    assert group_divisions("agro_food") == {"01", "03", "10", "11", "12"}
    assert group_divisions("tourism") == {"55", "56", "79", "91", "93"}
    assert {"58", "59", "90"} <= group_divisions("creative_industries")
    for divisions in SECTOR_GROUPS.values():
        assert divisions <= set(DIVISIONS)


def test_groups_doc_matches_table():
    text = (SECTORS_DIR / "GROUPS.md").read_text()
    for name, divisions in SECTOR_GROUPS.items():
        row = re.search(rf"^\| `{name}` \| ([0-9, ]+) \|$", text, flags=re.M)
        assert row is not None, name
        assert set(row.group(1).replace(" ", "").split(",")) == divisions


def test_unknown_group_name_lists_known():
    with pytest.raises(InvalidInput, match="agro_food"):
        group_divisions("wine")


def test_custom_groups_override_and_extend():
    custom = {"wine": ["01", 11, "56"], "tourism": ["55"]}
    assert group_divisions("wine", custom) == {"01", "11", "56"}
    assert group_divisions("tourism", custom) == {"55"}
    assert group_divisions("agro_food", custom) == SECTOR_GROUPS["agro_food"]


def test_parse_groups_names_every_bad_code():
    with pytest.raises(InvalidInput) as err:
        parse_groups({"wine": ["01", "04", "1101"], "x": ["ZZ"]})
    msg = str(err.value)
    assert "'04'" in msg and "'1101'" in msg and "'ZZ'" in msg
    assert "'01'" not in msg


@pytest.mark.parametrize("bad", [[], {}, {"wine": "01"}, {"wine": []}, {"": ["01"]}])
def test_parse_groups_shape_errors(bad):
    with pytest.raises(InvalidInput):
        parse_groups(bad)


def test_load_groups_json_and_yaml(tmp_path):
    j = tmp_path / "g.json"
    j.write_text(json.dumps({"groups": {"wine": ["01", "11"]}}))
    assert load_groups(j) == {"wine": frozenset({"01", "11"})}
    y = tmp_path / "g.yaml"
    y.write_text("wine:\n  - '01'\n  - 11\nfootwear: [15, '46']\n")
    assert load_groups(y) == {"wine": frozenset({"01", "11"}), "footwear": frozenset({"15", "46"})}


def test_load_groups_file_errors(tmp_path):
    with pytest.raises(UnusableFile, match="readable"):
        load_groups(tmp_path / "missing.json")
    broken = tmp_path / "g.json"
    broken.write_text("{not json")
    with pytest.raises(UnusableFile, match="JSON"):
        load_groups(broken)
    bad_yaml = tmp_path / "g.yml"
    bad_yaml.write_text("wine: [01, 11\n")
    with pytest.raises(UnusableFile, match="YML"):
        load_groups(bad_yaml)
    txt = tmp_path / "g.txt"
    txt.write_text("wine: 01")
    with pytest.raises(UnusableFile, match=r"\.json, \.yaml"):
        load_groups(txt)
    unknown = tmp_path / "u.json"
    unknown.write_text(json.dumps({"wine": ["01", "77x"]}))
    with pytest.raises(InvalidInput, match="77x"):
        load_groups(unknown)


# ---------------------------------------------------------------- OSM mapping
@pytest.mark.parametrize(
    ("tags", "isic"),
    [
        ({"shop": "clothes"}, "47"),
        ({"shop": "bakery"}, "47"),
        ({"craft": "bakery", "shop": "bakery"}, "10"),
        ({"craft": "shoemaker"}, "15"),
        ({"craft": "distillery"}, "11"),
        ({"craft": "pottery"}, "23"),
        ({"amenity": "restaurant"}, "56"),
        ({"amenity": "restaurant;bar"}, "56"),
        ({"amenity": "cafe"}, "56"),
        ({"tourism": "hotel"}, "55"),
        ({"tourism": "guest_house"}, "55"),
        ({"tourism": "hotel", "amenity": "restaurant"}, "55"),
        ({"office": "lawyer"}, "69"),
        ({"office": "it"}, "62"),
        ({"shop": "hairdresser"}, "96"),
        ({"shop": "car_repair"}, "45"),
        ({"industrial": "brewery"}, "11"),
    ],
)
def test_osm_firm_mapping(tags, isic):
    assert osm_tags_to_isic(tags) == isic
    assert osm_firm_match(tags) is not None


@pytest.mark.parametrize(
    "tags",
    [
        {},
        {"amenity": "bench"},
        {"amenity": "school"},
        {"tourism": "museum"},
        {"office": "government"},
        {"shop": "vacant"},
        {"historic": "castle"},
        {"name": "Kauppa"},
    ],
)
def test_osm_not_firms(tags):
    assert osm_firm_match(tags) is None
    assert osm_tags_to_isic(tags) is None


def test_osm_firm_with_unknown_trade():
    row = osm_firm_match({"craft": "yodeller"})
    assert row is not None and row.value == "*" and row.isic is None
    assert osm_tags_to_isic({"craft": "yodeller"}) is None
    # an exact row under a later key beats an earlier key's fallback
    assert osm_tags_to_isic({"craft": "yodeller", "amenity": "restaurant"}) == "56"


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"historic": "memorial"}, ("cultural", "memorial", None)),
        ({"historic": "castle", "heritage": "2"}, ("cultural", "castle", "national")),
        ({"historic": "Wayside Shrine"}, ("cultural", "wayside_shrine", None)),
        ({"tourism": "museum"}, ("cultural", "museum", None)),
        ({"tourism": "museum", "historic": "building"}, ("cultural", "museum", None)),
        ({"tourism": "artwork"}, ("cultural", "artwork", None)),
        ({"tourism": "gallery"}, ("cultural", "gallery", None)),
        ({"tourism": "viewpoint"}, ("natural", "viewpoint", None)),
        ({"tourism": "attraction"}, ("tourism", "attraction", None)),
        ({"boundary": "protected_area"}, ("natural", "protected_area", None)),
        ({"leisure": "nature_reserve"}, ("natural", "nature_reserve", None)),
        ({"heritage": "1"}, ("cultural", "heritage_site", "unesco")),
        ({"heritage": "4", "building": "yes"}, ("cultural", "heritage_site", "regional")),
        ({"heritage": "7"}, ("cultural", "heritage_site", "local")),
        ({"historic": "ruins", "heritage:operator": "whc"}, ("cultural", "ruins", "unesco")),
    ],
)
def test_osm_asset_class(tags, expected):
    assert osm_asset_class(tags) == expected


@pytest.mark.parametrize(
    "tags", [{}, {"tourism": "hotel"}, {"amenity": "restaurant"}, {"historic": "no"}]
)
def test_osm_not_assets(tags):
    assert osm_asset_class(tags) is None


def test_osm_tables_are_valid():
    categories = {"cultural", "natural", "agro_food", "tourism", "infrastructure"}
    for row in osm_mod.FIRM_TAGS:
        assert row.key in osm_mod.FIRM_KEYS
        assert row.isic is None or row.isic in DIVISIONS, row
        assert row.value == "*" or row.isic is not None, row
    keys = [(r.key, r.value) for r in osm_mod.FIRM_TAGS]
    assert len(keys) == len(set(keys)), "duplicate firm rows"
    # amenity and tourism only make firms for the listed commercial values
    wildcard_keys = {r.key for r in osm_mod.FIRM_TAGS if r.value == "*"}
    assert "amenity" not in wildcard_keys and "tourism" not in wildcard_keys
    for row in osm_mod.ASSET_TAGS:
        assert row.category in categories


def test_osm_mapping_doc_in_sync():
    doc = (SECTORS_DIR / "OSM_MAPPING.md").read_text(encoding="utf-8")
    assert doc == osm_mod.render_markdown(), (
        "OSM_MAPPING.md is stale: run `python -m geocluster.sectors.osm`"
    )
    assert "| `amenity=restaurant` | 56 |" in doc
    assert "| `boundary=protected_area` | natural | protected_area |" in doc


# ------------------------------------------------------- NACE at full detail (issue 11)
def test_nace_table_targets_are_isic_classes_of_the_same_division():
    from geocluster.sectors import NACE_TO_ISIC

    assert len(NACE_TO_ISIC) > 100
    for nace, isic in NACE_TO_ISIC.items():
        assert re.fullmatch(r"\d\d\.\d\d", nace), nace
        assert isic in CLASSES, (nace, isic)
        assert nace[:2] == isic[:2], (nace, isic)
    # every class of a tabulated division is listed: groups are derived from them, so a
    # missing class would silently change its group's level. Counts from the NACE Rev.2
    # structure (Eurostat 2008): division 10 has 25 classes, 15 has 3, 30 has 8, 55 has 4.
    per_division = pd.Series([k[:2] for k in NACE_TO_ISIC]).value_counts()
    assert per_division[["10", "15", "30", "55"]].tolist() == [25, 3, 8, 4]


def test_nace_isic_doc_lists_every_tabulated_division():
    from geocluster.sectors import NACE_TO_ISIC

    doc = (Path(__file__).resolve().parents[2] / "geocluster/sectors/NACE_ISIC.md").read_text()
    for division in sorted({k[:2] for k in NACE_TO_ISIC}):
        assert f"\n| {division} | {DIVISIONS[division][1]} |" in doc, division


def test_nace_to_isic_levels():
    from geocluster.sectors import nace_to_isic

    assert nace_to_isic("15", "2", "0") == "1520"
    assert nace_to_isic("15", "1") == "151"  # tanning + luggage: ISIC group 151
    assert nace_to_isic("10", "8") == "107"
    assert nace_to_isic("28", "1", "3") == "28"  # division 28 not tabulated: the division
    assert nace_to_isic("47") == "47"


# ---------------------------------------------------- sector filters (issue 11)
@pytest.mark.parametrize(
    ("codes", "scheme", "expected"),
    [
        (["15.20"], "nace2", ["1520"]),
        (["1520"], "nace2", ["1520"]),  # undotted NACE class 15.20
        (["C15.20", "15.11", "C"], "nace2", ["1520", "1511", "C"]),
        (["10.13"], "nace2", ["1010"]),
        (["15.20", "1520"], "isic4", ["1520"]),
        ("0111", None, ["0111"]),
        (["56"], "osm", ["56"]),
    ],
)
def test_normalize_sector_filter(codes, scheme, expected):
    from geocluster.sectors import normalize_sector_filter

    assert normalize_sector_filter(codes, scheme) == expected


def test_sector_filter_errors_name_the_scheme():
    from geocluster.sectors import normalize_sector_filter

    with pytest.raises(InvalidInput, match=r"NACE Rev\.2 .*'04\.11', 'shoes'"):
        normalize_sector_filter(["15.20", "04.11", "shoes"], "nace2")
    with pytest.raises(InvalidInput, match=r"ISIC Rev\.4 .*'1599'"):
        normalize_sector_filter(["1599"], "isic4")
    with pytest.raises(InvalidInput, match="scheme"):
        normalize_sector_filter(["15"], "sic")


def test_no_match_reason_says_which_codes_exist():
    from geocluster.sectors import no_match_reason

    msg = no_match_reason(["15.11"], ["1511"], "nace2", ["1520", "1010"], ["15.20", "10.13"])
    assert msg == (
        "no firm matches sectors 15.11 (read as ISIC 1511): the dataset's codes are "
        "NACE Rev.2: 10.13, 15.20"
    )
    msg = no_match_reason(["1511"], ["1511"], "isic4", [f"{i:04d}" for i in range(1010, 1030)])
    assert "ISIC Rev.4: 1010, 1011" in msg and "and 8 more" in msg
    assert "without a sector column" in no_match_reason(["15"], ["15"], None, [None])


# ------------------------------------------------------- groups from a file (issue 11)
def test_load_groups_file_yaml_and_json(tmp_path):
    from geocluster.sectors import load_groups_file

    y = tmp_path / "g.yaml"
    y.write_text(
        "wine:\n  title: Cadena del vino\n  codes: ['0121', '1102', '5630']\n"
        "calzado:\n  title: Cuero y calzado\n  scheme: nace2\n  codes: ['15.11', '15.20', '15.2']\n"
        "  description: tanning and footwear\n",
        encoding="utf-8",
    )
    groups = load_groups_file(y)
    assert list(groups) == ["wine", "calzado"]
    assert groups["wine"].title == "Cadena del vino"
    assert groups["wine"].codes == ("0121", "1102", "5630")
    assert groups["calzado"].codes == ("1511", "1520") and groups["calzado"].scheme == "nace2"
    assert groups["calzado"].source_codes == ("15.11", "15.20", "15.2")
    assert groups["calzado"].to_dict()["description"] == "tanning and footwear"

    j = tmp_path / "g.json"
    j.write_text(json.dumps({"groups": {"agro": {"title": "Agro", "codes": ["A", 10, "11"]}}}))
    assert load_groups_file(j)["agro"].codes == ("A", "10", "11")


@pytest.mark.parametrize(
    ("text", "suffix", "error", "fragment"),
    [
        ("{not json", ".json", UnusableFile, "valid JSON"),
        ("wine: [title\n", ".yaml", UnusableFile, "valid YAML, got an error at line"),
        ("", ".yaml", InvalidInput, "an empty file"),
        ("- a\n- b\n", ".yml", InvalidInput, "got list"),
        ("'1wine': {title: W, codes: ['01']}\n", ".yaml", InvalidInput, "starts with a letter"),
        ("wine: ['01']\n", ".yaml", InvalidInput, "expected {title, codes}"),
        ("wine: {codes: ['01']}\n", ".yaml", InvalidInput, "non-empty title"),
        ("wine: {title: W, codes: []}\n", ".yaml", InvalidInput, "non-empty list of codes"),
        ("wine: {title: W, codes: '01'}\n", ".yaml", InvalidInput, "non-empty list of codes"),
        ("wine: {title: W, codes: ['01'], colour: red}\n", ".yaml", InvalidInput, "colour"),
        ("wine: {title: W, scheme: sic, codes: ['01']}\n", ".yaml", InvalidInput, "scheme"),
        ("wine: {title: W, codes: [0121]}\n", ".yaml", InvalidInput, "quoted text"),
        ("a: {title: A, codes: ['1599']}\nb: {title: B, codes: ['15', 'x']}\n", ".yaml",
         InvalidInput, "unknown codes: a: '1599', b: 'x'"),
        ("wine: {title: W, codes: ['01']}", ".txt", UnusableFile, ".json, .yaml or .yml"),
    ],
)  # fmt: skip
def test_load_groups_file_errors_are_clear(tmp_path, text, suffix, error, fragment):
    from geocluster.sectors import load_groups_file

    path = tmp_path / f"groups{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(error) as exc:
        load_groups_file(path)
    assert fragment in str(exc.value)
    assert str(tmp_path) not in str(exc.value)  # never a server path


def test_load_groups_file_missing_and_too_large(tmp_path):
    from geocluster.sectors import load_groups_file
    from geocluster.sectors.groups import GROUPS_FILE_MAX_BYTES

    with pytest.raises(UnusableFile, match="readable"):
        load_groups_file(tmp_path / "missing.yaml")
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (GROUPS_FILE_MAX_BYTES + 1))
    with pytest.raises(UnusableFile, match="under"):
        load_groups_file(big)


def test_groups_stored_in_the_workspace_select_firms_on_both_edges(tmp_path):
    """Issue 11: user-defined sector groups from a file, usable from the CLI and HTTP."""
    import contextlib
    import io
    import json

    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.settings import Settings
    from geocluster.cli import main
    from geocluster.workspace import Workspace
    from tests.api.fixtures import synthetic_firms

    ws = Workspace(tmp_path / "ws")
    firms = synthetic_firms()
    ws.add_dataset("firms", firms, name="firms")
    path = tmp_path / "groups.yaml"
    path.write_text('leather:\n  title: Leather and footwear\n  codes: ["15"]\n')
    assert main(["groups", "add", str(path), "--workspace", str(ws.path)]) == 0
    assert ws.sector_groups()["leather"]["codes"] == ["15"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["kdistance", "--firms", "firms", "--sector-group", "leather",
                     "--workspace", str(ws.path), "--json"])  # fmt: skip
    assert code == 0
    n_leather = int((firms.sector_code.astype(str).str[:2] == "15").sum())
    assert json.loads(out.getvalue())["n_firms"] == n_leather
    with TestClient(create_app(Settings(workspace=ws.path))) as c:
        r = c.post("/groups", json={"groups": {"it": {"title": "IT", "codes": ["26"]}}})
        assert r.status_code == 201 and set(r.json()["groups"]) == {"leather", "it"}
        bad = c.post("/groups", json={"groups": {"x": {"title": "X", "codes": ["999"]}}})
        assert bad.status_code == 422
        r = c.post("/analyses/kdistance", json={"firms": "firms", "sector_group": "it"})
        assert r.status_code == 200, r.text
        assert r.json()["n_firms"] == int((firms.sector_code.astype(str).str[:2] == "26").sum())
