"""ISIC Rev.4 tables and vectorised normalisation of ISIC Rev.4 / NACE Rev.2 codes.

The table ``isic4.csv`` next to this module holds the complete structure of the
International Standard Industrial Classification of All Economic Activities,
Revision 4 (United Nations Statistics Division, Statistical Papers Series M
No. 4/Rev.4, 2008): 21 sections, 88 divisions, 238 groups and 419 classes, with
their official English titles.

NACE Rev.2 (Regulation (EC) No 1893/2006) is the European derivation of ISIC
Rev.4. Its 21 sections and 88 divisions are *identical* to ISIC's; below the
division a NACE group/class is *not* the ISIC group/class with the same digits
(NACE 10.13 is ISIC 1010, NACE 16.23 is ISIC 1622 while ISIC 1623 is NACE 16.24).
A NACE code is therefore mapped through ``nace2_isic4.csv``, the NACE class ->
ISIC class correspondence of the divisions where every NACE class falls in one
ISIC class, to the **finest level the two share**: the ISIC class (NACE 15.20 ->
ISIC 1520, NACE 10.13 -> ISIC 1010), the ISIC group when a NACE group's classes
all fall in one ISIC group, else the division. ``NACE_ISIC.md`` lists which
divisions map at which level and why. The original code is always kept next to
it by ingestion (``sector_code_source``).
"""

from __future__ import annotations

import csv
import math
import re
from importlib import resources
from types import MappingProxyType

import numpy as np
import pandas as pd

from geocluster.errors import InvalidInput

__all__ = [
    "CLASSES",
    "DIVISIONS",
    "GROUPS",
    "SCHEMES",
    "SECTIONS",
    "NACE_TO_ISIC",
    "division_of",
    "nace_to_isic",
    "normalize_codes",
    "section_of",
    "title_of",
]

SCHEMES = ("isic4", "nace2")


def _load_table() -> list[dict[str, str]]:
    text = resources.files("geocluster.sectors").joinpath("isic4.csv").read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


_ROWS = _load_table()

#: ISIC Rev.4 sections: letter -> title (21 entries, "A" .. "U").
SECTIONS: MappingProxyType[str, str] = MappingProxyType(
    {r["code"]: r["title"] for r in _ROWS if r["level"] == "section"}
)
#: ISIC Rev.4 divisions: two-digit code -> (section letter, title) (88 entries).
DIVISIONS: MappingProxyType[str, tuple[str, str]] = MappingProxyType(
    {r["code"]: (r["section"], r["title"]) for r in _ROWS if r["level"] == "division"}
)
#: ISIC Rev.4 groups: three-digit code -> title (238 entries).
GROUPS: MappingProxyType[str, str] = MappingProxyType(
    {r["code"]: r["title"] for r in _ROWS if r["level"] == "group"}
)
#: ISIC Rev.4 classes: four-digit code -> title (419 entries).
CLASSES: MappingProxyType[str, str] = MappingProxyType(
    {r["code"]: r["title"] for r in _ROWS if r["level"] == "class"}
)

_TITLES = {r["code"]: r["title"] for r in _ROWS}
_NUMERIC_CODES = frozenset(k for k in _TITLES if k.isdigit())


def _load_nace() -> dict[str, str]:
    text = resources.files("geocluster.sectors").joinpath("nace2_isic4.csv").read_text("utf-8")
    return {r["nace2"]: r["isic4"] for r in csv.DictReader(text.splitlines())}


#: NACE Rev.2 class (``"15.20"``) -> ISIC Rev.4 class (``"1520"``), for the divisions
#: whose classes each fall in one ISIC class (``nace2_isic4.csv``, NACE_ISIC.md).
NACE_TO_ISIC: MappingProxyType[str, str] = MappingProxyType(_load_nace())
_NACE_DIVISIONS_MAPPED = frozenset(k[:2] for k in NACE_TO_ISIC)


def _common_prefix(codes: set[str]) -> str:
    first = min(codes)
    n = 0
    while n < len(first) and all(len(c) > n and c[n] == first[n] for c in codes):
        n += 1
    return first[:n]


def _nace_groups() -> dict[str, str]:
    """NACE group ``"15.1"`` -> the finest ISIC code holding all its classes."""
    by_group: dict[str, set[str]] = {}
    for nace, isic in NACE_TO_ISIC.items():
        by_group.setdefault(nace[:4], set()).add(isic)
    out = {}
    for group, targets in by_group.items():
        prefix = _common_prefix(targets)
        # ISIC codes are 2 (division), 3 (group) or 4 (class) digits
        out[group] = prefix if len(prefix) in (3, 4) and prefix in _NUMERIC_CODES else group[:2]
    return out


_NACE_GROUP_TO_ISIC = _nace_groups()


def nace_to_isic(division: str, group: str | None = None, klass: str | None = None) -> str:
    """The finest ISIC Rev.4 code of a NACE Rev.2 code given by its parts.

    ``nace_to_isic("15", "2", "0")`` (NACE 15.20) -> ``"1520"``; a class outside the
    correspondence table gives its group's or division's ISIC code.
    """
    if group is not None and division in _NACE_DIVISIONS_MAPPED:
        if klass is not None:
            hit = NACE_TO_ISIC.get(f"{division}.{group}{klass}")
            if hit is not None:
                return hit
        hit = _NACE_GROUP_TO_ISIC.get(f"{division}.{group}")
        if hit is not None:
            return hit
    return division


_SECTION_OF_DIVISION = {k: v[0] for k, v in DIVISIONS.items()}

# A code as people write it: optional section letter, then digits with at most one dot.
_CODE_RE = re.compile(r"([A-Za-z])?[\s.\-]*(\d{1,4}(?:\.\d{1,4})?)?")


def _to_text(value: object) -> str | None:
    """Turn one raw cell into a cleaned code string, or None if it cannot be one."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return str(int(value)) if value >= 0 else None
    if isinstance(value, float | np.floating):
        if not math.isfinite(value) or value < 0:
            return None
        if float(value).is_integer():
            return str(int(value))
        # the shortest text that round-trips in the value's own precision:
        # 15.2 -> "15.2", float32(15.2) -> "15.2" (not "15.199999809265137")
        return np.format_float_positional(value, unique=True, trim="-")
    if isinstance(value, str):
        return "".join(value.split()).upper()
    return None


def _split(text: str) -> tuple[str | None, str, str | None] | None:
    """Split "C15.20" into ("C", "15", "20"); None if the text is not code-shaped."""
    m = _CODE_RE.fullmatch(text)
    if m is None:
        return None
    letter, digits = m.group(1), m.group(2)
    if digits is None:
        return None  # a bare section letter is not a sector code (see normalize_codes)
    head, _, tail = digits.partition(".")
    return (letter.upper() if letter else None), head, (tail if _ else None)


def _isic_candidates(head: str, tail: str | None) -> list[str]:
    """ISIC codes a digit string may stand for, most literal reading first."""
    cands: list[str] = []
    if tail is not None:
        if len(head) <= 2 and len(tail) <= 2:
            joined = head.zfill(2) + tail  # "15.20" -> "1520", "1.1" -> "011"
            cands.append(joined)
        if set(tail) == {"0"}:
            head_only = head  # "1520.0" is a float artefact of 1520
            cands.extend(_isic_candidates(head_only, None))
        return cands
    cands.append(head)
    if len(head) in (1, 3):
        # lost leading zero: "1" -> "01", "111" -> "0111" (a group reading wins when
        # both exist, e.g. "161" is group 161 "Sawmilling", not class 0161)
        cands.append("0" + head)
    return cands


def _normalize_isic(value: object) -> str | None:
    text = _to_text(value)
    if text is None:
        return None
    parts = _split(text)
    if parts is None:
        return None
    letter, head, tail = parts
    for cand in _isic_candidates(head, tail):
        if cand in _NUMERIC_CODES:
            if letter is not None and _SECTION_OF_DIVISION[cand[:2]] != letter:
                return None
            return cand
    return None


#: A trailing letter after the digits: French NAF/APE rev.2 subclasses ("15.20Z").
_NAF_SUFFIX = re.compile(r"^(.*\d)[A-Z]$")


def _normalize_nace(value: object) -> str | None:
    text = _to_text(value)
    if text is None:
        return None
    naf = _NAF_SUFFIX.match(text)
    if naf is not None and "." in text:
        text = naf.group(1)  # NAF "15.20Z" is NACE 15.20 subdivided
    parts = _split(text)
    if parts is None:
        return None
    letter, head, tail = parts
    if tail is not None and len(head) >= 3 and set(tail) == {"0"}:
        tail = None  # "1520.0": float artefact
    group = klass = None
    if tail is not None:
        # dotted NACE: "15.2", "15.20", "1.11" (float with its leading zero lost)
        if len(head) > 2 or len(tail) > 2:
            return None
        division = head.zfill(2)
        group = tail[0]
        klass = tail[1] if len(tail) == 2 else None
    elif len(head) == 1:
        division = "0" + head
    elif len(head) == 2:
        division = head
    elif len(head) <= 4:
        # "152" group 15.2, "1520" class 15.20. An undotted three-digit code is read as
        # a group: "111" is NACE 11.1, not 01.11 (write "01.11").
        division, group = head[:2], head[2]
        klass = head[3] if len(head) == 4 else None
    else:
        return None
    if division not in DIVISIONS:
        return None
    if letter is not None and _SECTION_OF_DIVISION[division] != letter:
        return None
    return nace_to_isic(division, group, klass)


def normalize_codes(values: pd.Series, scheme: str = "isic4") -> tuple[pd.Series, np.ndarray]:
    """Normalise sector codes to ISIC Rev.4 code strings.

    Work is done once per distinct value (``pd.factorize``), so a million rows
    with a few hundred distinct codes take a few tens of milliseconds.

    Parameters
    ----------
    values : pandas.Series
        Raw codes: strings (``"15"``, ``"1520"``, ``"C1520"``, ``"C15.20"``,
        ``"15.20"``, ``" c 15 "``), integers or floats (``1520``, ``1520.0``,
        ``15.2``). Missing values (None/NaN/empty string) stay missing.
    scheme : {"isic4", "nace2"}
        Classification of the input.

        - ``"isic4"``: the result is the ISIC code itself: a division (2 digits),
          group (3) or class (4) that exists in ISIC Rev.4. Leading zeros lost by
          spreadsheets are restored: ``"1"`` -> ``"01"``, ``"111"`` -> ``"0111"``.
          A three-digit value that is both a valid group and a zero-stripped class
          is read as the group (``"161"`` -> group 161, not class 0161). A dotted
          value is read like NACE (``"15.20"`` -> ``"1520"``, ``"1.1"`` -> ``"011"``).
        - ``"nace2"``: the result is the ISIC Rev.4 code at the finest level the two
          share (:func:`nace_to_isic`: NACE 15.20 -> ``"1520"``, NACE 10.13 ->
          ``"1010"``, a class of an unmapped division -> its division; see the module
          notes). Accepted forms: ``"C15.20"``, ``"15.20"``, ``"1520"``,
          ``"15.2"``, ``"152"`` (read as group 15.2), ``"15"``, ``15.2``, ``1520.0``,
          NAF ``"15.20Z"``; a one-digit head gets its zero back (``"1.11"`` is 01.11).

        In both schemes an optional section letter must agree with the code
        (``"A1520"`` is unknown). A bare section letter (``"C"``) is unknown: it
        does not name a division.

    Returns
    -------
    codes : pandas.Series
        ``str`` dtype, same index as ``values``; missing where the input was
        missing or the code is unknown.
    unknown : numpy.ndarray of bool, shape (n,)
        True where a non-missing input could not be read as a known code. Unknown
        codes are reported, never silently dropped: the caller turns this mask into
        rejection rows.

    Raises
    ------
    geocluster.errors.InvalidInput
        If ``scheme`` is not one of ``"isic4"``, ``"nace2"``.
    """
    if scheme not in SCHEMES:
        raise InvalidInput(f"expected sector scheme 'isic4' or 'nace2', got {scheme!r}")
    if not isinstance(values, pd.Series):
        values = pd.Series(values)
    one = _normalize_isic if scheme == "isic4" else _normalize_nace
    codes_idx, uniques = pd.factorize(values, use_na_sentinel=True)
    uniq = uniques.to_numpy() if hasattr(uniques, "to_numpy") else np.asarray(uniques)
    mapped = np.empty(len(uniq) + 1, dtype=object)
    blank = np.zeros(len(uniq) + 1, dtype=bool)
    for i, raw in enumerate(uniq):
        mapped[i] = one(raw)
        blank[i] = isinstance(raw, str) and raw.strip() == ""
    mapped[-1] = None  # the -1 sentinel of missing values
    blank[-1] = True
    out = mapped[codes_idx]
    unknown = (out == None) & ~blank[codes_idx]  # noqa: E711 - elementwise on object array
    result = pd.Series(out, index=values.index, dtype="str", name=values.name)
    return result, np.asarray(unknown, dtype=bool)


def division_of(codes: pd.Series) -> pd.Series:
    """ISIC division (two-digit string) of normalised ISIC codes.

    Parameters
    ----------
    codes : pandas.Series
        Codes as returned by :func:`normalize_codes` (2-4 digit strings or missing).

    Returns
    -------
    pandas.Series
        ``str`` dtype, same index; missing where the code is missing or its first
        two digits are not an ISIC Rev.4 division.
    """
    s = pd.Series(codes).astype("str")
    div = s.str.slice(0, 2)
    valid = div.isin(list(DIVISIONS)) & s.notna()
    return div.where(valid).astype("str")


def section_of(codes: pd.Series) -> pd.Series:
    """ISIC section letter of normalised ISIC codes.

    Parameters
    ----------
    codes : pandas.Series
        Codes as returned by :func:`normalize_codes`.

    Returns
    -------
    pandas.Series
        ``str`` dtype letters ``"A"`` .. ``"U"``; missing where the division is unknown.
    """
    return division_of(codes).map(_SECTION_OF_DIVISION).astype("str")


def title_of(code: str) -> str:
    """Official ISIC Rev.4 title of a section, division, group or class.

    Raises
    ------
    geocluster.errors.InvalidInput
        If the code is not in ISIC Rev.4.
    """
    try:
        return _TITLES[code]
    except KeyError:
        raise InvalidInput(f"expected an ISIC Rev.4 code, got {code!r}") from None
