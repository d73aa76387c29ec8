"""Support institutions from files: canonical columns ``institution_id``, ``name``,
``type``, ``sectors`` and any geometry (ARCHITECTURE "Data model").

``type`` is one of :data:`geocluster.sectors.osm.INSTITUTION_TYPES`; the file may use
the type itself or one of the English, Spanish, French or Portuguese synonyms in
:data:`TYPE_SYNONYMS` (accents and case ignored). ``sectors`` is the list of sector
codes an institution serves, stored as ``;``-separated text (``"10;13;14"``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from geocluster.errors import MissingColumns
from geocluster.ingest import _columns as cols
from geocluster.sectors.osm import INSTITUTION_TYPES

#: Header names recognised for each canonical column (after ``normalise_name``), first wins.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "institution_id": ("institution_id", "institutionid", "inst_id", "id", "uid", "code"),
    "name": (
        "name",
        "institution_name",
        "institution",
        "nombre",
        "nom",
        "nome",
        "razon_social",
        "title",
        "label",
    ),
    "type": (
        "type",
        "institution_type",
        "inst_type",
        "tipo",
        "tipo_institucion",
        "tipo_de_institucion",
        "type_institution",
        "type_d_institution",
        "tipo_instituicao",
        "category",
        "categoria",
        "categorie",
        "kind",
    ),
    "sectors": (
        "sectors",
        "sector",
        "sector_codes",
        "sectors_served",
        "isic",
        "sectores",
        "secteurs",
        "setores",
    ),
}

#: Synonyms of each type (accent-free snake case), English / Spanish / French / Portuguese.
TYPE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "training": (
        "training_centre", "training_center", "vocational", "vocational_training", "tvet",
        "college", "capacitacion", "centro_de_capacitacion", "formacion",
        "formacion_profesional", "formation", "formation_professionnelle",
        "centre_de_formation", "treinamento", "capacitacao", "formacao",
        "formacao_profissional", "centro_de_formacao",
    ),
    "university": ("universidad", "universite", "universidade", "higher_education"),
    "research": (
        "research_institute", "research_centre", "research_center", "r_d", "rd",
        "technology_centre", "technology_center", "investigacion",
        "centro_de_investigacion", "instituto_de_investigacion", "recherche",
        "centre_de_recherche", "pesquisa", "centro_de_pesquisa", "instituto_de_pesquisa",
    ),
    "business_association": (
        "association", "trade_association", "producer_association", "industry_association",
        "cluster_organisation", "cluster_organization", "cluster_initiative", "asociacion",
        "asociacion_empresarial", "asociacion_de_productores", "gremio",
        "association_professionnelle", "groupement", "associacao", "associacao_empresarial",
    ),
    "chamber": (
        "chamber_of_commerce", "chamber_of_industry", "camara", "camara_de_comercio",
        "chambre", "chambre_de_commerce", "chambre_des_metiers",
    ),
    "quality_lab": (
        "laboratory", "lab", "testing_lab", "testing_laboratory", "metrology",
        "certification", "laboratorio", "laboratorio_de_calidad", "laboratoire",
    ),
    "finance": (
        "microfinance", "microfinance_institution", "mfi", "development_bank",
        "guarantee_fund", "credit_union", "microfinanciera", "financiera",
        "banca_de_desarrollo", "caja_popular", "microcredito", "microcredit",
    ),
    "ngo": ("ong", "non_profit", "nonprofit", "non_governmental_organisation"),
}  # fmt: skip

_LOOKUP: dict[str, str] = {t: t for t in INSTITUTION_TYPES}
for _type, _words in TYPE_SYNONYMS.items():
    for _w in _words:
        _LOOKUP.setdefault(_w, _type)

_SPLIT = re.compile(r"\s*[;,|]\s*")


def _fold(value: object) -> str:
    text = unicodedata.normalize("NFKD", str(value))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return cols.normalise_name(text)


def normalize_type(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Map raw type values to :data:`INSTITUTION_TYPES` keys.

    Returns
    -------
    types, unknown
        The canonical types (missing where blank or unknown) and a mask of the
        non-blank values that are not a type or a synonym.
    """
    present = values.notna() & (values.astype("string").str.strip() != "").fillna(False)
    mapped = [_LOOKUP.get(_fold(v)) if p else None for v, p in zip(values, present)]
    types = pd.Series(mapped, index=values.index, dtype=object)
    unknown = present.to_numpy(dtype=bool) & types.isna().to_numpy()
    return types, unknown


def normalize_sectors(values: pd.Series) -> pd.Series:
    """``"10, 13 ;14"`` -> ``"10;13;14"``; blanks -> missing. Codes are kept as written."""

    def one(v: object) -> str | None:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return None
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        parts = [p for p in _SPLIT.split(str(v).strip()) if p]
        return ";".join(parts) or None

    return pd.Series([one(v) for v in values], index=values.index, dtype="str")


def _detect(columns: Sequence[str], field: str, used: set[str], explicit: str | None) -> str | None:
    if explicit is not None:
        col = cols.require(columns, explicit, f"{field}_col")
    else:
        lookup: dict[str, str] = {}
        for c in columns:
            lookup.setdefault(cols.normalise_name(c), c)
        col = next(
            (lookup[c] for c in CANDIDATES[field] if c in lookup and lookup[c] not in used), None
        )
    if col is not None:
        used.add(col)
    return col


def institutions(
    raw: Any,
    opts: Any,
    rej: Any,
    warnings: list[str],
    located: Any,
    report: Callable[[float, str], None],
) -> pd.DataFrame:
    """Build the canonical institutions frame (the ``prepare`` builder for this kind).

    Rows with a missing or unknown ``type`` are rejected with the reason; duplicate
    ids are rejected as for the other kinds.

    Raises
    ------
    MissingColumns
        No type column.
    """
    from geocluster.ingest._prepare import _finish, _ids, _reasons, _reject_duplicates

    frame = raw.frame
    columns = [str(c) for c in frame.columns]
    used = set(located.used)
    id_col = _detect(columns, "institution_id", used, opts.id_col)
    name_col = _detect(columns, "name", used, opts.name_col)
    type_col = _detect(columns, "type", used, None)
    sectors_col = _detect(columns, "sectors", used, opts.sector_col)
    if type_col is None:
        raise MissingColumns(
            "institutions need a type column (type: "
            + ", ".join(INSTITUTION_TYPES)
            + "); columns found: "
            + cols.found(columns)
        )
    ids = _ids(frame, id_col, "institution_id", rej, warnings)
    types, unknown = normalize_type(frame[type_col])
    rej.reject(
        unknown,
        type_col,
        _reasons(
            f"unknown institution type {{v}}; expected one of {', '.join(INSTITUTION_TYPES)}",
            frame[type_col].astype("string"),
        ),
    )
    rej.reject(types.isna().to_numpy() & ~unknown, type_col, "missing institution type")
    _reject_duplicates(ids, id_col, "institution_id", rej)
    out = {
        "institution_id": ids,
        "name": frame[name_col].astype("str").where(frame[name_col].notna(), None)
        if name_col
        else pd.Series(None, index=frame.index, dtype="str"),
        "type": types.astype("str"),
        "sectors": normalize_sectors(frame[sectors_col])
        if sectors_col
        else pd.Series(None, index=frame.index, dtype="str"),
    }
    return _finish(out, frame, used, rej.alive, located.geoms)
