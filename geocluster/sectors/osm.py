"""The one table that turns OpenStreetMap tags into firms and territorial assets.

Everything geocluster knows about OSM tagging lives here; the OSM PBF reader
(``geocluster.io``) only asks :func:`osm_firm_match` / :func:`osm_tags_to_isic`,
:func:`osm_asset_class` and :func:`osm_institution_type`. ``OSM_MAPPING.md`` next to this module is rendered
from these tables by :func:`render_markdown` (a test keeps it in sync; run
``python -m geocluster.sectors.osm`` to rewrite it).

Firms
    An element is a firm when it carries one of the keys ``craft``,
    ``industrial``, ``office``, ``shop`` (any value except the non-firm values in
    :data:`NON_FIRM_VALUES`), or one of the *commercial* values of ``amenity`` and
    ``tourism`` listed in :data:`FIRM_TAGS` (a bench or a school is not a firm).
    Rows are tried top to bottom and the first match wins: exact ``key=value``
    rows come before the ``key=*`` fallbacks, and among exact rows the more
    production-like key wins (``craft`` before ``industrial``, ``office``,
    ``tourism``, ``amenity``, ``shop``), so a hotel with a restaurant is a hotel
    and a bakery tagged ``craft=bakery`` + ``shop=bakery`` is a manufacturer.
    The ISIC division is ``None`` for fallbacks that do not tell the activity
    (``craft=*``, ``office=*``, ``industrial=*``): the element is still a firm,
    with an unknown sector.

Assets
    An element is a territorial asset when it carries ``historic=*``,
    ``heritage=*``, ``tourism=attraction|museum|artwork|viewpoint|gallery``,
    ``boundary=protected_area`` or ``leisure=nature_reserve``. It gets a
    ``(category, subtype, designation)``. The designation comes from the OSM
    heritage level (``heritage=1`` World Heritage -> ``"unesco"``, 2 ->
    ``"national"``, 3-4 -> ``"regional"``, 5-8 -> ``"local"``; OSM wiki
    *Key:heritage*) or ``heritage:operator=whc``; otherwise it is ``None``.

Support institutions
    An element is a support institution when it carries one of the tags of
    :data:`INSTITUTION_TAGS` (``amenity=university|college|training|
    research_institute``, ``office=research|educational_institution|association|
    ngo``); it gets a ``type`` of :data:`INSTITUTION_TYPES`. These offices are not
    firms (:data:`NON_FIRM_VALUES`).

Firm, asset and institution classification are independent: a restaurant in a
listed building is both a firm (56) and a cultural asset.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from geocluster.sectors._isic import DIVISIONS

__all__ = [
    "ASSET_TAGS",
    "FIRM_KEYS",
    "FIRM_TAGS",
    "NON_FIRM_VALUES",
    "INSTITUTION_TAGS",
    "INSTITUTION_TYPES",
    "AssetTag",
    "FirmTag",
    "InstitutionTag",
    "osm_asset_class",
    "osm_firm_match",
    "osm_institution_type",
    "osm_tags_to_isic",
    "render_markdown",
]


@dataclass(frozen=True)
class FirmTag:
    """One row of the firm table: ``key=value`` (``value="*"``: any) -> ISIC division."""

    key: str
    value: str
    isic: str | None
    note: str = ""


@dataclass(frozen=True)
class AssetTag:
    """One row of the asset table: ``key=value`` -> (category, subtype).

    ``subtype=None`` means "the tag's value", e.g. ``historic=castle`` -> ``castle``.
    """

    key: str
    value: str
    category: str
    subtype: str | None
    note: str = ""


@dataclass(frozen=True)
class InstitutionTag:
    """One row of the institution table: ``key=value`` -> institution ``type``."""

    key: str
    value: str
    type: str
    note: str = ""


#: The support-institution types (the ``type`` column of an ``institutions`` dataset)
#: and what each covers. The UNIDO cluster-development approach diagnoses these
#: "support institutions" next to the firms (UNIDO, *Cluster development for pro-poor
#: growth*, 2010).
INSTITUTION_TYPES: Mapping[str, str] = {
    "training": "vocational training centres, technical and further-education colleges",
    "university": "universities and other degree-granting higher education",
    "research": "research institutes, R&D and technology centres",
    "business_association": "business, producer and trade associations, cluster initiatives",
    "chamber": "chambers of commerce, industry or crafts",
    "quality_lab": "testing, metrology, certification and quality laboratories",
    "finance": "finance for small firms: microfinance, development banks, guarantee funds",
    "ngo": "non-governmental organisations supporting enterprise development",
}

#: Keys that make a firm, in the order they are tried.
FIRM_KEYS: tuple[str, ...] = ("craft", "industrial", "office", "tourism", "amenity", "shop")

#: Values of firm keys that do not describe a business.
NON_FIRM_VALUES: Mapping[str, frozenset[str]] = {
    "shop": frozenset({"no", "vacant", "none", "disused"}),
    "craft": frozenset({"no"}),
    "industrial": frozenset({"no"}),
    "office": frozenset(
        {
            "no",
            "government",
            "administrative",
            "diplomatic",
            "ngo",
            "association",
            "political_party",
            "religion",
            "union",
            "quango",
            # support institutions (INSTITUTION_TAGS), not firms
            "research",
            "educational_institution",
        }
    ),
}

_F = FirmTag

#: The firm table. Exact rows first (grouped by key in FIRM_KEYS order), then fallbacks.
FIRM_TAGS: tuple[FirmTag, ...] = (
    # --- craft: the activity is production or a trade
    _F("craft", "bakery", "10", "ISIC 1071 bakery products, baked on the premises"),
    _F("craft", "confectionery", "10", "ISIC 1073"),
    _F("craft", "cheese", "10", "ISIC 1050 dairy products"),
    _F("craft", "oil_mill", "10", "ISIC 1040 oils and fats"),
    _F("craft", "beekeeper", "01", "ISIC 0149 raising of other animals"),
    _F("craft", "brewery", "11", "ISIC 1103 malt liquors"),
    _F("craft", "winery", "11", "ISIC 1102 wines"),
    _F("craft", "distillery", "11", "ISIC 1101 spirits (tequila, mezcal)"),
    _F("craft", "weaver", "13", "ISIC 1312 weaving"),
    _F("craft", "tailor", "14", "ISIC 1410 made-to-measure apparel"),
    _F("craft", "dressmaker", "14", "ISIC 1410"),
    _F("craft", "shoemaker", "15", "ISIC 1520 footwear (repair-only shops are 9523)"),
    _F("craft", "saddler", "15", "ISIC 1512 saddlery and harness"),
    _F("craft", "leather", "15", "ISIC 1511/1512"),
    _F("craft", "sawmill", "16", "ISIC 1610"),
    _F("craft", "joiner", "16", "ISIC 1622 builders' carpentry and joinery"),
    _F("craft", "basket_maker", "16", "ISIC 1629 articles of straw and plaiting materials"),
    _F("craft", "printer", "18", "ISIC 1811"),
    _F("craft", "bookbinder", "18", "ISIC 1812 service activities related to printing"),
    _F("craft", "pottery", "23", "ISIC 2393 porcelain and ceramic products (Talavera)"),
    _F("craft", "glassblower", "23", "ISIC 2310"),
    _F("craft", "stonemason", "23", "ISIC 2396 cutting, shaping and finishing of stone"),
    _F("craft", "blacksmith", "25", "ISIC 2591 forging"),
    _F("craft", "metal_construction", "25", "ISIC 2511 structural metal products"),
    _F("craft", "tinsmith", "25", "ISIC 2599"),
    _F("craft", "boatbuilder", "30", "ISIC 3012 pleasure and sporting boats"),
    _F("craft", "cabinet_maker", "31", "ISIC 3100 furniture"),
    _F("craft", "jeweller", "32", "ISIC 3211"),
    _F("craft", "goldsmith", "32", "ISIC 3211"),
    _F("craft", "handicraft", "32", "ISIC 3290 other manufacturing n.e.c."),
    _F("craft", "dental_technician", "32", "ISIC 3250 dental supplies"),
    _F("craft", "builder", "41", "ISIC 4100 construction of buildings"),
    _F("craft", "carpenter", "43", "ISIC 4330 on-site carpentry (workshop joinery: 16)"),
    _F("craft", "electrician", "43", "ISIC 4321"),
    _F("craft", "plumber", "43", "ISIC 4322"),
    _F("craft", "hvac", "43", "ISIC 4322"),
    _F("craft", "roofer", "43", "ISIC 4390"),
    _F("craft", "painter", "43", "ISIC 4330"),
    _F("craft", "tiler", "43", "ISIC 4330"),
    _F("craft", "plasterer", "43", "ISIC 4330"),
    _F("craft", "floorer", "43", "ISIC 4330"),
    _F("craft", "glaziery", "43", "ISIC 4330 glazing"),
    _F("craft", "insulation", "43", "ISIC 4329"),
    _F("craft", "scaffolder", "43", "ISIC 4390"),
    _F("craft", "caterer", "56", "ISIC 5621 event catering"),
    _F("craft", "photographer", "74", "ISIC 7420"),
    _F("craft", "photographic_laboratory", "74", "ISIC 7420"),
    _F("craft", "gardener", "81", "ISIC 8130 landscape care"),
    _F("craft", "chimney_sweeper", "81", "ISIC 8129"),
    _F("craft", "sculptor", "90", "ISIC 9000"),
    _F("craft", "electronics_repair", "95", "ISIC 9521/9511"),
    _F("craft", "watchmaker", "95", "ISIC 9529 (mostly repair)"),
    _F("craft", "key_cutter", "95", "ISIC 9529 key duplication"),
    _F("craft", "upholsterer", "95", "ISIC 9524 furniture repair and reupholstery"),
    # --- industrial: the tag on a works or its site
    _F("industrial", "slaughterhouse", "10", "ISIC 1010"),
    _F("industrial", "dairy", "10", "ISIC 1050"),
    _F("industrial", "bakery", "10", "ISIC 1071"),
    _F("industrial", "food_industry", "10", ""),
    _F("industrial", "brewery", "11", "ISIC 1103"),
    _F("industrial", "distillery", "11", "ISIC 1101"),
    _F("industrial", "sawmill", "16", "ISIC 1610"),
    _F("industrial", "oil", "06", "ISIC 0610 crude petroleum"),
    _F("industrial", "wellsite", "06", "ISIC 0610/0620"),
    _F("industrial", "refinery", "19", "ISIC 1920"),
    _F("industrial", "chemical", "20", ""),
    _F("industrial", "brickyard", "23", "ISIC 2392 clay building materials"),
    _F("industrial", "concrete_plant", "23", "ISIC 2395"),
    _F("industrial", "cement", "23", "ISIC 2394"),
    _F("industrial", "steelmaker", "24", "ISIC 2410"),
    _F("industrial", "aluminium_smelting", "24", "ISIC 2420"),
    _F("industrial", "machine_shop", "25", "ISIC 2592 machining"),
    _F("industrial", "electrical", "27", ""),
    _F("industrial", "shipyard", "30", "ISIC 3011"),
    _F("industrial", "furniture", "31", ""),
    _F("industrial", "scrap_yard", "38", "ISIC 3830 materials recovery"),
    _F("industrial", "auto_wrecker", "38", "ISIC 3830"),
    _F("industrial", "warehouse", "52", "ISIC 5210"),
    _F("industrial", "port", "52", "ISIC 5222/5224"),
    # --- office
    _F("office", "energy_supplier", "35", ""),
    _F("office", "water_utility", "36", ""),
    _F("office", "moving_company", "49", "ISIC 4923 freight transport by road"),
    _F("office", "logistics", "52", "ISIC 5229"),
    _F("office", "courier", "53", "ISIC 5320"),
    _F("office", "newspaper", "58", "ISIC 5813"),
    _F("office", "publisher", "58", ""),
    _F("office", "telecommunication", "61", ""),
    _F("office", "it", "62", "ISIC 6201/6202"),
    _F("office", "financial", "64", ""),
    _F("office", "insurance", "66", "ISIC 6622 agents and brokers (most OSM insurance offices)"),
    _F("office", "financial_advisor", "66", ""),
    _F("office", "estate_agent", "68", "ISIC 6820"),
    _F("office", "property_management", "68", "ISIC 6820"),
    _F("office", "lawyer", "69", "ISIC 6910"),
    _F("office", "notary", "69", "ISIC 6910"),
    _F("office", "accountant", "69", "ISIC 6920"),
    _F("office", "tax_advisor", "69", "ISIC 6920"),
    _F("office", "company", "70", "ISIC 7010: an office of a company without a stated trade"),
    _F("office", "consulting", "70", "ISIC 7020"),
    _F("office", "architect", "71", "ISIC 7110"),
    _F("office", "engineer", "71", "ISIC 7110"),
    _F("office", "surveyor", "71", "ISIC 7110"),
    _F("office", "geodesist", "71", "ISIC 7110"),
    _F("office", "advertising_agency", "73", "ISIC 7310"),
    _F("office", "translator", "74", "ISIC 7490 translation and interpretation"),
    _F("office", "employment_agency", "78", ""),
    _F("office", "travel_agent", "79", "ISIC 7911"),
    _F("office", "guide", "79", "ISIC 7990 tourist guides"),
    _F("office", "security", "80", ""),
    _F("office", "tutoring", "85", "ISIC 8549"),
    # --- tourism: commercial values only (attractions are assets)
    _F("tourism", "hotel", "55", "ISIC 5510"),
    _F("tourism", "motel", "55", "ISIC 5510"),
    _F("tourism", "guest_house", "55", "ISIC 5510"),
    _F("tourism", "hostel", "55", "ISIC 5510"),
    _F("tourism", "apartment", "55", "ISIC 5510"),
    _F("tourism", "chalet", "55", "ISIC 5510"),
    _F("tourism", "alpine_hut", "55", "ISIC 5510"),
    _F("tourism", "camp_site", "55", "ISIC 5520"),
    _F("tourism", "caravan_site", "55", "ISIC 5520"),
    _F("tourism", "zoo", "91", "ISIC 9103"),
    _F("tourism", "aquarium", "91", "ISIC 9103"),
    _F("tourism", "theme_park", "93", "ISIC 9321"),
    # --- amenity: commercial values only
    _F("amenity", "restaurant", "56", "ISIC 5610"),
    _F("amenity", "fast_food", "56", "ISIC 5610"),
    _F("amenity", "food_court", "56", "ISIC 5610"),
    _F("amenity", "ice_cream", "56", "ISIC 5610"),
    _F("amenity", "cafe", "56", "ISIC 5630"),
    _F("amenity", "bar", "56", "ISIC 5630"),
    _F("amenity", "pub", "56", "ISIC 5630"),
    _F("amenity", "biergarten", "56", "ISIC 5630"),
    _F("amenity", "nightclub", "56", "ISIC 5630 discotheques"),
    _F("amenity", "fuel", "47", "ISIC 4730 automotive fuel"),
    _F("amenity", "pharmacy", "47", "ISIC 4772"),
    _F("amenity", "car_wash", "45", "ISIC 4520"),
    _F("amenity", "car_rental", "77", "ISIC 7710"),
    _F("amenity", "bicycle_rental", "77", "ISIC 7721"),
    _F("amenity", "boat_rental", "77", "ISIC 7721"),
    _F("amenity", "bank", "64", "ISIC 6419"),
    _F("amenity", "bureau_de_change", "66", "ISIC 6612"),
    _F("amenity", "cinema", "59", "ISIC 5914"),
    _F("amenity", "casino", "92", "ISIC 9200"),
    _F("amenity", "gambling", "92", "ISIC 9200"),
    _F("amenity", "dentist", "86", "ISIC 8620"),
    _F("amenity", "doctors", "86", "ISIC 8620"),
    _F("amenity", "veterinary", "75", "ISIC 7500"),
    _F("amenity", "driving_school", "85", "ISIC 8549"),
    _F("amenity", "language_school", "85", "ISIC 8549"),
    _F("amenity", "music_school", "85", "ISIC 8542"),
    # --- shop: retail unless the shop sells a service
    _F("shop", "car", "45", "ISIC 4510"),
    _F("shop", "car_repair", "45", "ISIC 4520"),
    _F("shop", "car_parts", "45", "ISIC 4530"),
    _F("shop", "tyres", "45", "ISIC 4530"),
    _F("shop", "motorcycle", "45", "ISIC 4540"),
    _F("shop", "wholesale", "46", ""),
    _F("shop", "trade", "46", "ISIC 4663 sale to the trades"),
    _F("shop", "copyshop", "82", "ISIC 8219"),
    _F("shop", "travel_agency", "79", "ISIC 7911"),
    _F("shop", "ticket", "79", "ISIC 7990"),
    _F("shop", "pawnbroker", "64", "ISIC 6492 other credit granting"),
    _F("shop", "money_lender", "64", "ISIC 6492"),
    _F("shop", "bookmaker", "92", "ISIC 9200"),
    _F("shop", "lottery", "92", "ISIC 9200"),
    _F("shop", "tailor", "14", "ISIC 1410"),
    _F("shop", "computer_repair", "95", "ISIC 9511"),
    _F("shop", "hairdresser", "96", "ISIC 9602"),
    _F("shop", "beauty", "96", "ISIC 9602"),
    _F("shop", "cosmetics", "47", "ISIC 4772"),
    _F("shop", "massage", "96", "ISIC 9609"),
    _F("shop", "tattoo", "96", "ISIC 9609"),
    _F("shop", "laundry", "96", "ISIC 9601"),
    _F("shop", "dry_cleaning", "96", "ISIC 9601"),
    _F("shop", "funeral_directors", "96", "ISIC 9603"),
    _F("shop", "pet_grooming", "96", "ISIC 9609"),
    # --- fallbacks: the key says "firm", the value does not say which trade
    _F("craft", "*", None, "a trade or workshop of an unmapped kind: firm, sector unknown"),
    _F("industrial", "*", None, "a works of an unmapped kind: firm, sector unknown"),
    _F("office", "*", None, "a business office of an unmapped kind: firm, sector unknown"),
    _F("shop", "*", "47", "ISIC 47 retail trade (shop=bakery, butcher, ... are retail outlets)"),
)

_I = InstitutionTag

#: The institution table, in priority order (first matching row wins). OSM has no
#: established tags for chambers, quality laboratories or small-firm finance: those
#: types come from files.
INSTITUTION_TAGS: tuple[InstitutionTag, ...] = (
    _I("amenity", "university", "university", "OSM wiki Tag:amenity=university"),
    _I(
        "amenity",
        "college",
        "training",
        "further education below university level (OSM wiki Tag:amenity=college)",
    ),
    _I("amenity", "training", "training", "a place offering training (Tag:amenity=training)"),
    _I("amenity", "research_institute", "research", "Tag:amenity=research_institute"),
    _I("office", "research", "research", "an R&D office; no longer imported as a firm"),
    _I(
        "office",
        "educational_institution",
        "training",
        "the office of an educational institution; no longer imported as a firm",
    ),
    _I(
        "office",
        "association",
        "business_association",
        "a non-profit association; OSM does not tell business associations from others",
    ),
    _I("office", "ngo", "ngo", "Tag:office=ngo"),
)

_INSTITUTION_INDEX: dict[tuple[str, str], InstitutionTag] = {}
for _irow in INSTITUTION_TAGS:
    _INSTITUTION_INDEX.setdefault((_irow.key, _irow.value), _irow)

_A = AssetTag

#: The asset table, in priority order (first matching row wins).
ASSET_TAGS: tuple[AssetTag, ...] = (
    _A("tourism", "museum", "cultural", "museum"),
    _A("tourism", "gallery", "cultural", "gallery"),
    _A("tourism", "artwork", "cultural", "artwork"),
    _A("historic", "memorial", "cultural", "memorial"),
    _A("historic", "monument", "cultural", "monument"),
    _A("historic", "archaeological_site", "cultural", "archaeological_site"),
    _A("historic", "castle", "cultural", "castle"),
    _A("historic", "ruins", "cultural", "ruins"),
    _A("historic", "yes", "cultural", "historic", "historic=yes: unspecified historic object"),
    _A("historic", "*", "cultural", None, "subtype is the historic=* value"),
    _A("boundary", "protected_area", "natural", "protected_area"),
    _A("leisure", "nature_reserve", "natural", "nature_reserve"),
    _A("tourism", "viewpoint", "natural", "viewpoint", "scenic landscape access"),
    _A("tourism", "attraction", "tourism", "attraction"),
    _A("heritage", "*", "cultural", "heritage_site", "listed without any other asset tag"),
)

# heritage=N levels, OSM wiki "Key:heritage": 1 World Heritage, 2 national,
# 3-4 supra-regional/regional (state, province), 5-8 district and municipal.
_HERITAGE_LEVELS = {
    "1": "unesco",
    "2": "national",
    "3": "regional",
    "4": "regional",
    "5": "local",
    "6": "local",
    "7": "local",
    "8": "local",
}

_SUBTYPE_RE = re.compile(r"[^a-z0-9_]+")

_FIRM_INDEX: dict[tuple[str, str], FirmTag] = {}
for _row in FIRM_TAGS:
    _FIRM_INDEX.setdefault((_row.key, _row.value), _row)


def _clean(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    v = value.strip()
    return v or None


def osm_firm_match(tags: Mapping[str, str]) -> FirmTag | None:
    """The row of :data:`FIRM_TAGS` that makes these tags a firm, if any.

    Parameters
    ----------
    tags : Mapping[str, str]
        OSM tags of one node, way or relation.

    Returns
    -------
    FirmTag or None
        ``None`` when the element is not a firm. For a fallback row
        (``value == "*"``) the row is returned as is; read the actual value from
        ``tags[row.key]``.
    """
    # pass 1: exact key=value rows, keys in FIRM_KEYS order; pass 2: fallbacks.
    for key in FIRM_KEYS:
        value = _clean(tags.get(key))
        if value is None or value in NON_FIRM_VALUES.get(key, ()):
            continue
        # multi-valued tags ("restaurant;bar"): the first value decides
        value = value.split(";", 1)[0].strip()
        row = _FIRM_INDEX.get((key, value))
        if row is not None:
            return row
    for key in FIRM_KEYS:
        value = _clean(tags.get(key))
        if value is None or value in NON_FIRM_VALUES.get(key, ()):
            continue
        row = _FIRM_INDEX.get((key, "*"))
        if row is not None:
            return row
    return None


def osm_tags_to_isic(tags: Mapping[str, str]) -> str | None:
    """ISIC Rev.4 division of an OSM firm.

    Parameters
    ----------
    tags : Mapping[str, str]
        OSM tags of one element.

    Returns
    -------
    str or None
        Two-digit ISIC division (``"56"`` for ``amenity=restaurant``), or ``None``
        if the element is not a firm or is a firm of unknown trade (use
        :func:`osm_firm_match` to tell the two apart).
    """
    row = osm_firm_match(tags)
    return None if row is None else row.isic


def osm_asset_class(tags: Mapping[str, str]) -> tuple[str, str, str | None] | None:
    """Classify an OSM element as a territorial asset.

    Parameters
    ----------
    tags : Mapping[str, str]
        OSM tags of one element.

    Returns
    -------
    (category, subtype, designation) or None
        ``category`` is one of ``cultural``, ``natural``, ``tourism``; ``subtype`` a
        short snake_case word; ``designation`` ``unesco``/``national``/``regional``/
        ``local`` from the heritage tags, else ``None``. ``None`` when the element
        is not an asset.
    """
    for row in ASSET_TAGS:
        value = _clean(tags.get(row.key))
        if value is None or value == "no":
            continue
        value = value.split(";", 1)[0].strip()
        if row.value != "*" and value != row.value:
            continue
        subtype = row.subtype
        if subtype is None:
            subtype = _SUBTYPE_RE.sub("_", value.lower()).strip("_") or row.key
        return row.category, subtype, _designation(tags)
    return None


def osm_institution_type(tags: Mapping[str, str]) -> str | None:
    """The support-institution type of an OSM element, if it is one.

    Parameters
    ----------
    tags : Mapping[str, str]
        OSM tags of one element.

    Returns
    -------
    str or None
        A key of :data:`INSTITUTION_TYPES` (``"research"`` for ``office=research``),
        or ``None`` when no row of :data:`INSTITUTION_TAGS` matches.
    """
    for row in INSTITUTION_TAGS:
        value = _clean(tags.get(row.key))
        if value is None:
            continue
        if value.split(";", 1)[0].strip() == row.value:
            return row.type
    return None


def _designation(tags: Mapping[str, str]) -> str | None:
    operator = (_clean(tags.get("heritage:operator")) or "").lower()
    if operator == "whc":
        return "unesco"
    level = _clean(tags.get("heritage"))
    return _HERITAGE_LEVELS.get(level) if level else None


def render_markdown() -> str:
    """Render the firm and asset tables as the Markdown of ``OSM_MAPPING.md``."""
    lines = [
        "# OpenStreetMap tags -> firms, territorial assets and support institutions",
        "",
        "<!-- Generated by geocluster.sectors.osm.render_markdown(); do not edit by hand.",
        "     Rewrite with: python -m geocluster.sectors.osm -->",
        "",
        "This is the one mapping the OSM PBF reader uses (`geocluster/sectors/osm.py`).",
        "Rows are tried top to bottom; the first match wins. Exact `key=value` rows come",
        "before the `key=*` fallbacks; among exact rows the key order is "
        + ", ".join(f"`{k}`" for k in FIRM_KEYS)
        + ".",
        "Multi-valued tags (`restaurant;bar`) are classified by their first value.",
        "",
        "## Firms",
        "",
        "Values that never make a firm: "
        + "; ".join(
            f"`{k}`=" + ", ".join(f"`{v}`" for v in sorted(vals))
            for k, vals in NON_FIRM_VALUES.items()
        )
        + ".",
        "",
        "| tag | ISIC Rev.4 division | division title | note |",
        "|---|---|---|---|",
    ]
    for r in FIRM_TAGS:
        title = DIVISIONS[r.isic][1] if r.isic else "unknown"
        lines.append(f"| `{r.key}={r.value}` | {r.isic or '-'} | {title} | {r.note} |")
    lines += [
        "",
        "## Territorial assets",
        "",
        "Designation: `heritage:operator=whc` or `heritage=1` -> `unesco`; `heritage=2` ->",
        "`national`; `heritage=3|4` -> `regional`; `heritage=5..8` -> `local` (OSM wiki",
        "*Key:heritage*); otherwise none.",
        "",
        "Geometry: nodes are points; closed ways are polygons; multipolygon and boundary",
        "relations (`boundary=protected_area`, `leisure=nature_reserve`, a `tourism=attraction`",
        "square ...) are assembled by libosmium into multipolygons with their holes; **assets on",
        "open ways are kept as lines** (a protected river, a historic wall). Firms and",
        "institutions with an extent (closed way, relation, open way) get a representative",
        "point, a point guaranteed to lie on the object (shapely `point_on_surface`), never a",
        "centroid outside it. `osm_type` (`node`/`way`/`relation`) and `osm_id` keep the",
        "original OSM object; ids are `n<id>`, `w<id>`, `r<id>`.",
        "",
        "Not imported, counted by reason in the ingest warnings (`OSM objects not imported, by",
        "reason: {...}`), among the objects that carry a key of interest: `no_mapping` (no",
        "row matches, e.g. `amenity=bench`, `shop=vacant`), `missing_locations` (way nodes",
        "outside the extract), `invalid_geometry` (degenerate ways, relations whose rings do",
        "not assemble or whose members are outside the extract), `relation_without_area`",
        "(a mapped relation of another type: `type=route` tagged `amenity=pub`, `type=site`),",
        "`duplicate_of_relation` (a closed way that is an outer member of an imported",
        "multipolygon with the same class: counted once, as the relation).",
        "",
        "| tag | category | subtype | note |",
        "|---|---|---|---|",
    ]
    for r in ASSET_TAGS:
        subtype = r.subtype if r.subtype is not None else "*(the tag value)*"
        lines.append(f"| `{r.key}={r.value}` | {r.category} | {subtype} | {r.note} |")
    lines += [
        "",
        "## Support institutions",
        "",
        "Dataset kind `institutions`: `institution_id`, `name`, `type`, `sectors`, geometry.",
        "Types (files may use them, or the synonyms in `geocluster/ingest/_institutions.py`):",
        "",
        "| type | covers |",
        "|---|---|",
    ]
    lines += [f"| `{t}` | {what} |" for t, what in INSTITUTION_TYPES.items()]
    lines += [
        "",
        "From OSM (these offices are no longer firms). OSM has no established tag for",
        "chambers, quality laboratories or small-firm finance; those come from files.",
        "`sectors` is empty for OSM institutions (OSM does not say which trades they serve).",
        "",
        "| tag | type | note |",
        "|---|---|---|",
    ]
    lines += [f"| `{r.key}={r.value}` | {r.type} | {r.note} |" for r in INSTITUTION_TAGS]
    return "\n".join(lines) + "\n"


MARKDOWN_PATH = Path(__file__).with_name("OSM_MAPPING.md")

if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    MARKDOWN_PATH.write_text(render_markdown(), encoding="utf-8")
    print(f"wrote {MARKDOWN_PATH}")
