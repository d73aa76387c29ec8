"""ISIC Rev.4 tables and vectorised normalisation of ISIC Rev.4 / NACE Rev.2 codes.

The table ``isic4.csv`` next to this module holds the complete structure of the
International Standard Industrial Classification of All Economic Activities,
Revision 4 (United Nations Statistics Division, Statistical Papers Series M
No. 4/Rev.4, 2008): 21 sections, 88 divisions, 238 groups and 419 classes, with
their official English titles.

NACE Rev.2 (Regulation (EC) No 1893/2006) is the European derivation of ISIC
Rev.4. Its 21 sections and 88 divisions are *identical* to ISIC's, so a NACE
code is mapped to the ISIC **division** it belongs to. Below the division the two
classifications diverge and a NACE group/class is *not* the ISIC group/class with
the same digits, for example:

- NACE 10.8 "Manufacture of other food products" is ISIC 107, and NACE 10.9
  "prepared animal feeds" is ISIC 108 (there is no ISIC group 109);
- NACE 23.2-23.7 (refractory, clay building materials, ceramics, cement,
  concrete, stone) correspond to ISIC classes 2391-2396 of the single ISIC group
  239, so NACE "23.4" is not ISIC group 234 (which does not exist);
- NACE 10.11, 10.12 and 10.13 (meat, poultry, meat products) all fall in ISIC
  1010, while NACE 56.10-56.30 happen to match ISIC 5610-5630 digit for digit;
- NACE Rev.2 has 272 groups and 615 classes against ISIC's 238 and 419, and its
  retail classes (47.xx) are finer and numbered differently.

Mapping those classes needs the Eurostat NACE Rev.2 - ISIC Rev.4 correspondence
table (many-to-many); without it we keep only the exact division, which is what
regional specialisation works with anyway.
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
    "division_of",
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


def _normalize_nace(value: object) -> str | None:
    text = _to_text(value)
    if text is None:
        return None
    parts = _split(text)
    if parts is None:
        return None
    letter, head, tail = parts
    if tail is not None and len(head) >= 3 and set(tail) == {"0"}:
        tail = None  # "1520.0": float artefact
    if tail is not None:
        # dotted NACE: "15.2", "15.20", "1.11" (float with its leading zero lost)
        if len(head) > 2 or len(tail) > 2:
            return None
        division = head.zfill(2)
    elif len(head) == 1:
        division = "0" + head
    else:
        # "15" division, "152" group 15.2, "1520" class 15.20. An undotted three-digit
        # code is read as a group: "111" is NACE 11.1, not 01.11 (write "01.11").
        division = head[:2]
    if division not in DIVISIONS:
        return None
    if letter is not None and _SECTION_OF_DIVISION[division] != letter:
        return None
    return division


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
        - ``"nace2"``: the result is the ISIC Rev.4 **division** of the NACE code
          (identical at that level; see the module notes for why groups/classes are
          not carried over). Accepted forms: ``"C15.20"``, ``"15.20"``, ``"1520"``,
          ``"15.2"``, ``"152"`` (read as group 15.2), ``"15"``, ``15.2``, ``1520.0``;
          a one-digit head gets its zero back (``"1.11"`` -> ``"01"``).

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
