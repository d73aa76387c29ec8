"""The territorial-asset catalogue: categories, subtypes, designations.

An *asset* is something a territory has that local businesses can build on:
heritage, protected nature, agro-food products and places, tourism
attractions, infrastructure. Every canonical asset row carries

``category``
    one of :data:`CATEGORIES` (``cultural``, ``natural``, ``agro_food``,
    ``tourism``, ``infrastructure``);
``subtype``
    a snake_case word; the known ones per category are listed in
    :data:`CATEGORIES` (open vocabulary: an unknown subtype is kept, normalised);
``designation``
    one of :data:`DESIGNATIONS` (``unesco``, ``national``, ``regional``,
    ``local``, ``gi``) or missing (no formal designation).

The module also defines which firm sector groups are *linked* to each category
(:data:`LINKED_SECTOR_GROUPS`, used for firm–asset linkage and asset gaps).
OpenStreetMap tags are mapped to assets by the one OSM table,
:func:`geocluster.sectors.osm.osm_asset_class`.

Everything here is pure: plain dicts and functions on pandas Series.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

from geocluster.errors import InvalidInput

__all__ = [
    "CATEGORIES",
    "DESIGNATIONS",
    "LINKED_SECTOR_GROUPS",
    "SUBTYPE_CATEGORY",
    "SUBTYPE_VOCABULARY",
    "category_from_subtype",
    "check_category",
    "linked_divisions",
    "normalize_category",
    "normalize_designation",
    "normalize_subtype",
]

#: Categories and their known subtypes (subtype -> short description).
CATEGORIES: dict[str, dict[str, str]] = {
    "cultural": {
        "monument": "monument, statue or commemorative structure",
        "memorial": "memorial, plaque, war memorial",
        "archaeological_site": "archaeological site",
        "historic_centre": "historic town centre or district",
        "historic_building": "listed or historic building",
        "castle": "castle, palace, manor or fortress",
        "fort": "fort or fortification",
        "ruins": "ruins",
        "religious_heritage": "historic church, monastery, shrine",
        "museum": "museum",
        "artwork": "public artwork, sculpture, mural",
        "gallery": "art gallery",
        "theatre": "theatre or opera house",
        "arts_centre": "arts or cultural centre",
        "world_heritage_site": "UNESCO World Heritage cultural site",
        "mixed_world_heritage_site": "UNESCO World Heritage mixed (cultural and natural) site",
        "intangible_heritage": "festival, craft tradition, intangible heritage practice",
        "historic": "unspecified historic object (OSM historic=yes)",
        "heritage_site": "listed heritage object without a more specific type",
        "other_heritage": "other historic feature",
    },
    "natural": {
        "protected_area": "protected area (any IUCN category)",
        "national_park": "national park",
        "nature_reserve": "nature reserve",
        "park": "urban or regional park",
        "viewpoint": "scenic viewpoint",
        "beach": "beach",
        "waterfall": "waterfall",
        "cave": "cave entrance",
        "geosite": "geological site, geopark",
        "world_heritage_site": "UNESCO World Heritage natural site",
    },
    "agro_food": {
        "gi_area": "production area of a geographical-indication product (PDO/PGI)",
        "market": "food market, marketplace, farmers' market",
        "farm": "farm or farmyard",
        "farm_shop": "farm shop, direct sales",
        "winery": "winery or wine estate",
        "vineyard": "vineyard",
        "brewery": "brewery, distillery",
        "cheese_dairy": "cheese dairy",
        "orchard": "orchard",
        "food_producer": "other artisanal food producer",
    },
    "tourism": {
        "attraction": "tourist attraction",
        "accommodation": "hotel, hostel, guest house, camp site",
        "theme_park": "theme park",
        "zoo": "zoo or aquarium",
        "information": "tourist information centre",
        "route": "tourist or heritage route, trail",
    },
    "infrastructure": {
        "station": "railway or bus station",
        "port": "port or ferry terminal",
        "airport": "airport",
        "road": "road or access point",
        "utility": "energy, water or telecom facility",
        "logistics": "logistics platform, warehouse area",
    },
}

#: Designations (key -> meaning). A missing designation is allowed.
DESIGNATIONS: dict[str, str] = {
    "unesco": "UNESCO World Heritage (or other UNESCO listing)",
    "national": "nationally designated or listed",
    "regional": "regionally designated or listed",
    "local": "locally designated or listed",
    "gi": "geographical indication (PDO, PGI, TSG, AOC, DOC …)",
}

#: Firm sector groups (names of :func:`geocluster.sectors.group_divisions`)
#: whose firms are *linked* to assets of a category: the businesses that can
#: valorise it. Cultural, natural and tourism assets feed the tourism economy
#: (accommodation, food service, travel agencies, recreation); agro-food assets
#: feed the agro-food chain (agriculture, food and beverage manufacturing).
#: Infrastructure has no linked group by default.
LINKED_SECTOR_GROUPS: dict[str, tuple[str, ...]] = {
    "cultural": ("tourism",),
    "natural": ("tourism",),
    "tourism": ("tourism",),
    "agro_food": ("agro_food",),
    "infrastructure": (),
}

#: subtype -> category for subtypes that belong to exactly one category.
SUBTYPE_CATEGORY: dict[str, str] = {}
_seen: dict[str, int] = {}
for _cat, _subs in CATEGORIES.items():
    for _sub in _subs:
        _seen[_sub] = _seen.get(_sub, 0) + 1
        SUBTYPE_CATEGORY.setdefault(_sub, _cat)
for _sub, _n in _seen.items():
    if _n > 1:
        del SUBTYPE_CATEGORY[_sub]
del _seen

_CATEGORY_ALIASES: dict[str, str] = {
    "culture": "cultural",
    "heritage": "cultural",
    "cultural_heritage": "cultural",
    "historic": "cultural",
    "historical": "cultural",
    "mixed": "cultural",  # UNESCO "Mixed": kept as cultural, subtype marks it
    "nature": "natural",
    "natural_heritage": "natural",
    "environment": "natural",
    "agrofood": "agro_food",
    "agri_food": "agro_food",
    "agrifood": "agro_food",
    "agro": "agro_food",
    "food": "agro_food",
    "gastronomy": "agro_food",
    "tourist": "tourism",
    "touristic": "tourism",
    "infra": "infrastructure",
    "infrastructures": "infrastructure",
}

_DESIGNATION_ALIASES: dict[str, str] = {
    "world_heritage": "unesco",
    "world_heritage_site": "unesco",
    "unesco_world_heritage": "unesco",
    "whs": "unesco",
    "whc": "unesco",
    "biosphere_reserve": "unesco",
    "geopark": "unesco",
    "nation": "national",
    "country": "national",
    "state": "national",
    "region": "regional",
    "provincial": "regional",
    "province": "regional",
    "municipal": "local",
    "municipality": "local",
    "city": "local",
    "geographical_indication": "gi",
    "geographic_indication": "gi",
    "pdo": "gi",
    "pgi": "gi",
    "tsg": "gi",
    "aoc": "gi",
    "aop": "gi",
    "igp": "gi",
    "doc": "gi",
    "docg": "gi",
    "dop": "gi",
}

_NONE_WORDS = frozenset({"", "none", "null", "nan", "na", "n/a", "-", "no", "undesignated"})

_SUBTYPE_ALIASES: dict[str, str] = {
    "archaeological": "archaeological_site",
    "archeological_site": "archaeological_site",
    "historic_center": "historic_centre",
    "old_town": "historic_centre",
    "palace": "castle",
    "manor": "castle",
    "church": "religious_heritage",
    "monastery": "religious_heritage",
    "statue": "monument",
    "plaque": "memorial",
    "war_memorial": "memorial",
    "sculpture": "artwork",
    "mural": "artwork",
    "protected": "protected_area",
    "reserve": "nature_reserve",
    "gi": "gi_area",
    "pdo_area": "gi_area",
    "pgi_area": "gi_area",
    "marketplace": "market",
    "farmers_market": "market",
    "hotel": "accommodation",
    "hostel": "accommodation",
    "guest_house": "accommodation",
    "camp_site": "accommodation",
    "aquarium": "zoo",
    "railway_station": "station",
    "bus_station": "station",
    "ferry_terminal": "port",
    "harbour": "port",
    "aerodrome": "airport",
}


#: Spanish, French and Portuguese asset words -> canonical subtype, keyed by the
#: accent-folded slug (``zona arqueológica`` -> ``zona_arqueologica``). The subtype
#: a row keeps is the word as written (Unicode kept); this table only gives it a
#: category, so ``templo`` is cultural and ``mercado`` agro-food.
SUBTYPE_VOCABULARY: dict[str, str] = {
    # es
    "templo": "religious_heritage", "iglesia": "religious_heritage",
    "catedral": "religious_heritage", "capilla": "religious_heritage",
    "convento": "religious_heritage", "monasterio": "religious_heritage",
    "basilica": "religious_heritage", "santuario": "religious_heritage",
    "parroquia": "religious_heritage",
    "zona_arqueologica": "archaeological_site", "sitio_arqueologico": "archaeological_site",
    "yacimiento_arqueologico": "archaeological_site", "ruinas": "ruins",
    "museo": "museum", "galeria": "gallery", "galeria_de_arte": "gallery", "teatro": "theatre",
    "monumento": "monument", "castillo": "castle", "palacio": "castle", "fortaleza": "fort",
    "fuerte": "fort", "centro_historico": "historic_centre", "casco_antiguo": "historic_centre",
    "casco_historico": "historic_centre", "edificio_historico": "historic_building",
    "pueblo_magico": "historic_centre",
    "mercado": "market", "mercado_municipal": "market", "tianguis": "market",
    "parque_nacional": "national_park", "area_natural_protegida": "protected_area",
    "area_protegida": "protected_area", "reserva_de_la_biosfera": "protected_area",
    "reserva_natural": "nature_reserve", "reserva_ecologica": "nature_reserve",
    "parque": "park", "mirador": "viewpoint", "playa": "beach", "cascada": "waterfall",
    "cueva": "cave", "gruta": "cave", "granja": "farm", "bodega": "winery",
    "vinedo": "vineyard", "cerveceria": "brewery", "destileria": "brewery",
    "queseria": "cheese_dairy", "hostal": "accommodation", "posada": "accommodation",
    "zoologico": "zoo", "acuario": "zoo", "parque_tematico": "theme_park",
    "atraccion_turistica": "attraction", "oficina_de_turismo": "information",
    "estacion": "station", "puerto": "port", "aeropuerto": "airport",
    # fr
    "eglise": "religious_heritage", "cathedrale": "religious_heritage",
    "chapelle": "religious_heritage", "abbaye": "religious_heritage",
    "monastere": "religious_heritage", "temple": "religious_heritage",
    "musee": "museum", "galerie": "gallery", "marche": "market",
    "site_archeologique": "archaeological_site", "chateau": "castle",
    "centre_historique": "historic_centre", "parc_national": "national_park",
    "parc_naturel_regional": "protected_area", "aire_protegee": "protected_area",
    "reserve_naturelle": "nature_reserve", "parc": "park", "plage": "beach",
    "grotte": "cave", "belvedere": "viewpoint", "vignoble": "vineyard",
    "domaine_viticole": "winery", "ferme": "farm", "fromagerie": "cheese_dairy",
    "office_de_tourisme": "information", "gare": "station", "aeroport": "airport",
    # pt
    "igreja": "religious_heritage", "capela": "religious_heritage",
    "mosteiro": "religious_heritage", "museu": "museum", "feira": "market",
    "castelo": "castle", "forte": "fort", "area_de_protecao_ambiental": "protected_area",
    "unidade_de_conservacao": "protected_area", "praia": "beach", "cachoeira": "waterfall",
    "cascata": "waterfall", "caverna": "cave", "mirante": "viewpoint", "vinicola": "winery",
    "vinha": "vineyard", "fazenda": "farm", "queijaria": "cheese_dairy",
    "cervejaria": "brewery", "pousada": "accommodation", "estacao": "station",
    "porto": "port", "aeroporto": "airport",
}  # fmt: skip

#: Category words in Spanish, French and Portuguese (accent-folded slug).
_CATEGORY_VOCABULARY: dict[str, str] = {
    "cultural": "cultural", "culturel": "cultural", "culturelle": "cultural",
    "patrimonio": "cultural", "patrimonio_cultural": "cultural", "patrimoine": "cultural",
    "naturaleza": "natural", "naturel": "natural", "naturelle": "natural",
    "patrimonio_natural": "natural", "agroalimentario": "agro_food",
    "agroalimentaire": "agro_food", "agroalimentar": "agro_food", "turismo": "tourism",
    "tourisme": "tourism", "turistico": "tourism", "touristique": "tourism",
    "infraestructura": "infrastructure", "infraestrutura": "infrastructure",
}  # fmt: skip


def _slug(value: object) -> str | None:
    """Lower-case snake_case form of a label; None for missing values.

    Letters of any script are kept (``"Zona arqueológica"`` -> ``zona_arqueológica``),
    in NFC form so that a composed and a decomposed ``ó`` give the same slug.
    """
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    s = unicodedata.normalize("NFC", str(value)).strip().lower()
    s = re.sub(r"[\s\-/.]+", "_", s)
    s = re.sub(r"[^\w]", "", s)
    return s.strip("_")


def _fold(slug: str) -> str:
    """A slug without accents, for vocabulary look-ups: ``arqueológica`` -> ``arqueologica``."""
    decomposed = unicodedata.normalize("NFKD", slug)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize_category(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Map raw category labels to canonical categories.

    Case, spaces and hyphens are ignored (``"Agro-food"`` → ``agro_food``) and
    common synonyms are accepted (``heritage``, ``culture`` → ``cultural``;
    ``nature`` → ``natural``; UNESCO's ``Mixed`` → ``cultural``).

    Parameters
    ----------
    values : pandas.Series
        Raw labels (any dtype; missing allowed).

    Returns
    -------
    categories : pandas.Series of str (object dtype), same index
        Canonical category, or ``None`` where missing or unrecognised.
    invalid : ndarray of bool, shape (n,)
        True where the value is missing or not a known category (the caller
        rejects or repairs these rows, e.g. with :func:`category_from_subtype`).
    """
    out = []
    for v in values.tolist():
        s = _slug(v)
        if s in CATEGORIES:
            out.append(s)
        elif s in _CATEGORY_ALIASES:
            out.append(_CATEGORY_ALIASES[s])
        elif s is not None and _fold(s) in _CATEGORY_VOCABULARY:
            out.append(_CATEGORY_VOCABULARY[_fold(s)])
        else:
            out.append(None)
    cats = pd.Series(out, index=values.index, dtype=object, name=values.name)
    return cats, cats.isna().to_numpy()


def normalize_designation(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Map raw designation labels to :data:`DESIGNATIONS` keys.

    Missing values and words such as ``""``, ``"none"``, ``"-"`` mean *no
    designation* and are valid (``None``). Synonyms are accepted: ``World
    Heritage`` → ``unesco``; ``PDO``/``PGI``/``AOC``/``DOC`` → ``gi``;
    ``municipal`` → ``local``; ``provincial`` → ``regional``.

    Returns
    -------
    designations : pandas.Series of str or None (object dtype), same index
    invalid : ndarray of bool
        True where a non-empty value is not a recognised designation.
    """
    out: list[str | None] = []
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values.tolist()):
        s = _slug(v)
        if s is None or s in _NONE_WORDS:
            out.append(None)
        elif s in DESIGNATIONS:
            out.append(s)
        elif s in _DESIGNATION_ALIASES:
            out.append(_DESIGNATION_ALIASES[s])
        elif s.startswith("unesco"):
            out.append("unesco")
        else:
            out.append(None)
            bad[i] = True
    return pd.Series(out, index=values.index, dtype=object, name=values.name), bad


def normalize_subtype(values: pd.Series) -> pd.Series:
    """Normalise subtype labels to snake_case, mapping known synonyms.

    Subtypes are an open vocabulary: unknown labels are kept (normalised), so
    no row is rejected for its subtype. Missing stays ``None``.
    """
    out = []
    for v in values.tolist():
        s = _slug(v)
        if not s:
            out.append(None)
        else:
            out.append(_SUBTYPE_ALIASES.get(s, s))
    return pd.Series(out, index=values.index, dtype=object, name=values.name)


def category_from_subtype(subtypes: pd.Series) -> pd.Series:
    """Category implied by a (normalised) subtype, ``None`` if ambiguous or unknown.

    Used to fill a missing category (``subtype="museum"`` → ``cultural``); Spanish,
    French and Portuguese words go through :data:`SUBTYPE_VOCABULARY` (``museo``,
    ``zona_arqueológica`` → ``cultural``; ``mercado`` → ``agro_food``).
    """

    def one(s: object) -> str | None:
        if not isinstance(s, str):
            return None
        hit = SUBTYPE_CATEGORY.get(s)
        if hit is None:
            hit = SUBTYPE_CATEGORY.get(SUBTYPE_VOCABULARY.get(_fold(s), ""))
        return hit

    return pd.Series(
        [one(s) for s in subtypes.tolist()], index=subtypes.index, dtype=object, name="category"
    )


def check_category(category: str | None) -> str | None:
    """Validate one user-given category (API/CLI parameter); ``None`` passes.

    Raises
    ------
    InvalidInput
        The value is not a category, naming the accepted ones.
    """
    if category is None:
        return None
    cats, bad = normalize_category(pd.Series([category]))
    if bad[0]:
        raise InvalidInput(
            f"expected an asset category among {', '.join(CATEGORIES)}, got {category!r}"
        )
    return cats.iloc[0]


def linked_divisions(category: str, custom: dict | None = None) -> frozenset[str]:
    """ISIC Rev.4 divisions of the firm sectors linked to an asset category.

    The union of :func:`geocluster.sectors.group_divisions` over
    :data:`LINKED_SECTOR_GROUPS[category] <LINKED_SECTOR_GROUPS>`; empty for
    ``infrastructure``.
    """
    from geocluster.sectors import group_divisions  # sibling package, imported lazily

    cat = check_category(category)
    divs: set[str] = set()
    for group in LINKED_SECTOR_GROUPS[cat]:
        divs |= set(group_divisions(group, custom))
    return frozenset(divs)
