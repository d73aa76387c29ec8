"""Column detection: which source column holds which canonical field.

Names are compared after normalisation (lower case, runs of non-alphanumerics to
``_``), and candidates are tried in order, so ``firm_id`` wins over ``id``. An explicit
option always wins over detection; an explicit option naming a column that is not in
the file raises :class:`~geocluster.errors.MissingColumns` listing the columns found.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from geocluster.errors import MissingColumns

#: Canonical field -> source names tried in order (normalised form: lower case, accents
#: folded, so ``Año`` is ``ano`` and ``Razón social`` is ``razon_social``). English first,
#: then Spanish, French and Portuguese names seen in business registers and censuses
#: (INEGI DENUE, INSEE SIRENE, IBGE/RAIS, DANE ...). Names that carry a *different*
#: classification or a range (DENUE ``codigo_act`` is SCIAN, ``per_ocu`` is "0 a 5
#: personas") are deliberately absent.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "lon": ("lon", "lng", "long", "longitude", "longitud", "lon_dd", "decimallongitude", "lon_wgs84", "longitude_wgs84", "x_lon"),
    "lat": ("lat", "latitude", "latitud", "lat_dd", "decimallatitude", "lat_wgs84", "latitude_wgs84", "y_lat"),
    "x": ("x", "easting", "x_coord", "coord_x", "xcoord", "east", "coordenada_x", "utm_x", "x_utm", "este", "utm_este"),
    "y": ("y", "northing", "y_coord", "coord_y", "ycoord", "north", "coordenada_y", "utm_y", "y_utm", "norte", "utm_norte"),
    "wkt": ("wkt", "geometry_wkt", "geom_wkt", "the_geom", "geometry", "geom", "geometria"),
    "firm_id": ("firm_id", "firmid", "id_firm", "company_id", "establishment_id", "business_id", "enterprise_id", "id_empresa", "id_establecimiento", "clee", "siret", "siren", "cnpj", "id", "uid", "osm_id", "identifiant", "identificador"),
    "asset_id": ("asset_id", "assetid", "site_id", "id_no", "id_activo", "id_sitio", "id", "uid", "identifiant"),
    "region_id": ("region_id", "regionid", "region_code", "id", "code", "geoid", "iso_a3", "adm0_a3", "iso3", "gid", "cvegeo", "cve_ent", "cve_mun", "code_insee", "insee", "cod_ibge", "codigo_ibge", "nuts_id", "fips", "region", "code_region", "codigo_region"),
    "name": ("name", "firm_name", "company_name", "business_name", "company", "nombre", "razon_social", "nom_estab", "nombre_empresa", "nombre_establecimiento", "raison_sociale", "denomination", "enseigne", "nom", "nome", "razao_social", "nome_fantasia", "denominacao", "region_name", "site_name", "nombre_sitio", "name_en", "title", "label", "titulo"),
    "sector": ("sector_code", "isic", "isic4", "isic_rev4", "isic_code", "isic4_code", "ciiu", "ciiu4", "ciiu_rev4", "cod_ciiu", "codigo_ciiu", "nace", "nace2", "nace_rev2", "nace_code", "code_naf", "naf", "code_ape", "ape", "cnae", "cnae2", "cnae_2009", "sector", "activity", "activity_code", "industry", "industry_code", "actividad", "activite", "atividade", "codigo_actividad"),
    "employees": ("employees", "n_employees", "num_employees", "nr_employees", "employees_count", "emp", "workers", "employment", "staff", "headcount", "empleados", "personal_ocupado", "num_empleados", "numero_empleados", "numero_de_empleados", "trabajadores", "effectif", "effectifs", "nb_salaries", "salaries", "funcionarios", "num_funcionarios", "numero_funcionarios", "empregados", "trabalhadores", "pessoal_ocupado"),
    "founded": ("founded", "year_founded", "founding_year", "foundation_year", "established", "year_established", "start_year", "anio_inicio", "ano_inicio", "anio_fundacion", "ano_fundacion", "fecha_alta", "fecha_inicio", "fecha_creacion", "annee_creation", "date_creation", "ano_fundacao", "ano_abertura", "data_abertura", "data_inicio_atividade", "anio", "ano", "annee"),
    "women_led": ("women_led", "woman_led", "female_led", "female_owner", "female_owned", "women_owned", "woman_owned", "liderada_por_mujer", "liderada_por_mujeres", "dirigida_por_mujer", "propietaria_mujer", "mujer", "dirigee_par_une_femme", "dirigee_par_femme", "femme", "liderada_por_mulher", "mulher"),
    "youth_led": ("youth_led", "young_led", "youth_owned", "young_owner", "liderada_por_jovenes", "liderada_por_joven", "joven", "jovenes", "dirigee_par_un_jeune", "jeune", "liderada_por_jovem", "jovem"),
    "informal": ("informal", "is_informal", "informality", "informalidad", "informel", "informalidade"),
    "category": ("category", "asset_category", "categoria", "categorie", "type", "class", "clase"),
    "subtype": ("subtype", "sub_type", "asset_subtype", "subtipo", "sous_type", "tipo", "kind"),
    "designation": ("designation", "designation_type", "protection_status", "heritage_designation", "designacion", "proteccion", "designacao", "protection"),
    "level": ("level", "admin_level", "adm_level", "nivel", "niveau"),
    "parent_id": ("parent_id", "parent", "parent_code", "padre", "cve_padre", "parent_region"),
    "year": ("year", "yr", "anio", "ano", "annee", "period", "time", "periodo"),
    "indicator": ("indicator", "variable", "measure", "series", "indicator_name", "indicador", "indicateur"),
    "value": ("value", "val", "obs_value", "amount", "valor", "valeur"),
}  # fmt: skip

#: Sector columns whose name says the classification: NACE and its national
#: derivations that keep NACE's four digits (French NAF/APE "15.20Z", Spanish
#: CNAE-2009). CIIU is ISIC's Spanish name and needs nothing.
NACE_COLUMNS = ("nace", "naf", "code_naf", "ape", "code_ape", "cnae")
_NACE_NAME = re.compile(r"^(?:" + "|".join(NACE_COLUMNS) + r")(?:_|\d|rev|$)")


def scheme_of_column(column: str) -> str:
    """``"nace2"`` for a NACE-named sector column (``nace2``, ``code_naf`` ...), else ``"isic4"``."""
    return "nace2" if _NACE_NAME.match(normalise_name(column)) else "isic4"


def normalise_name(name: object) -> str:
    """``" Latitude (WGS84)"`` -> ``"latitude_wgs84"``; ``"Año"`` -> ``"ano"``.

    Accents are folded (NFKD, combining marks dropped) so that ``razón_social`` and
    ``razon_social`` are the same header.
    """
    text = unicodedata.normalize("NFKD", str(name).strip().lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[^0-9a-z]+", "_", text).strip("_")


def detect(columns: Sequence[object], field: str, *, exclude: Iterable[str] = ()) -> str | None:
    """Return the source column for canonical ``field``, or ``None``.

    Parameters
    ----------
    columns
        The source column names.
    field
        A key of :data:`CANDIDATES`.
    exclude
        Columns already taken by another field.
    """
    taken = set(exclude)
    lookup: dict[str, str] = {}
    for c in columns:
        lookup.setdefault(normalise_name(c), str(c))
    for candidate in CANDIDATES[field]:
        col = lookup.get(candidate)
        if col is not None and col not in taken:
            return col
    return None


def require(columns: Sequence[object], name: str, option: str) -> str:
    """Check that an explicitly named column exists (case-insensitively); return its name."""
    cols = [str(c) for c in columns]
    if name in cols:
        return name
    folded = {c.lower(): c for c in cols}
    if name.lower() in folded:
        return folded[name.lower()]
    raise MissingColumns(
        f"option {option} names the column {name!r}, which is not in the file; "
        f"columns found: {', '.join(cols)}"
    )


def found(columns: Sequence[object], *, limit: int = 300) -> str:
    """The columns of a file, for messages: short printable names, at most ``limit`` chars.

    A file can have 20,000 columns or a megabyte-long header; the message stays one
    short line (:func:`geocluster.io._csv.header_summary`).
    """
    from geocluster.io._csv import header_summary

    cols = [str(c) for c in columns]
    if not cols:
        return "(none)"
    text = header_summary(cols, limit=limit)
    if len(cols) > 20 and "columns whose names" not in text:
        text = f"{len(cols):,} columns: {text}"
    return text
