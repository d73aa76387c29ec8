"""Sector filters in the dataset's own classification.

A firms dataset stores ISIC Rev.4 codes (``sector_code``) next to the original code
and its scheme (``sector_code_source``, ``sector_scheme``). People filter with the
codes they know: ``15.20`` or ``1520`` on NACE data means NACE class 15.20, i.e. ISIC
1520. :func:`normalize_sector_filter` reads filter codes in the dataset's scheme and
returns the ISIC codes to select; :func:`no_match_reason` says why a filter selected
nothing (which codes exist, in which scheme).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from geocluster.errors import InvalidInput
from geocluster.sectors._isic import SCHEMES, SECTIONS, normalize_codes

__all__ = ["no_match_reason", "normalize_sector_filter"]

_MAX_LISTED = 12


def normalize_sector_filter(
    codes: Iterable[object] | str, scheme: str | None = "isic4"
) -> list[str]:
    """Read sector filter codes in a dataset's scheme; return the ISIC Rev.4 codes.

    Parameters
    ----------
    codes
        Filter codes as the user wrote them: ISIC section letters (``"C"``),
        divisions, groups or classes, dotted or not (``"15"``, ``"15.20"``,
        ``"1520"``, ``"C1520"``).
    scheme : {"isic4", "nace2"} or None
        The dataset's ``sector_scheme``; ``None`` or ``"osm"`` read the codes as
        ISIC (OSM-derived firms carry ISIC codes).

    Returns
    -------
    list of str
        ISIC codes (a section letter stays a letter), in the input order, without
        duplicates. With ``scheme="nace2"``, ``"15.20"`` and ``"1520"`` both give
        ``"1520"`` and ``"10.13"`` gives ``"1010"`` (the finest ISIC level NACE 10.13
        shares; see :mod:`geocluster.sectors._isic`).

    Raises
    ------
    geocluster.errors.InvalidInput
        A code is not a code of ``scheme``; the message names each one and the scheme.
    """
    if isinstance(codes, str):
        codes = [codes]
    scheme = "isic4" if scheme in (None, "osm") else scheme
    if scheme not in SCHEMES:
        raise InvalidInput(f"expected sector scheme 'isic4' or 'nace2', got {scheme!r}")
    raw = [str(c).strip() for c in codes]

    def is_section(c: str) -> bool:
        return len(c) == 1 and c.upper() in SECTIONS

    rest = [c for c in raw if not is_section(c)]
    mapped, unknown = normalize_codes(pd.Series(rest, dtype=object), scheme=scheme)
    by_raw = dict(zip(rest, mapped.tolist()))
    bad = [c for c, u in zip(rest, unknown) if u or not c]
    if bad:
        raise InvalidInput(
            f"expected {_scheme_name(scheme)} sector codes (the dataset's scheme), got "
            + ", ".join(repr(b) for b in bad)
        )
    out: list[str] = []
    for c in raw:
        isic = c.upper() if is_section(c) else by_raw[c]
        if isic not in out:
            out.append(isic)
    return out


def no_match_reason(
    requested: Iterable[object],
    isic_codes: Iterable[str],
    scheme: str | None,
    present: Iterable[object],
    source_present: Iterable[object] | None = None,
) -> str:
    """Why a sector filter selected no firm, in one line.

    Parameters
    ----------
    requested
        The filter as the user wrote it.
    isic_codes
        What it was read as (:func:`normalize_sector_filter`).
    scheme
        The dataset's scheme.
    present
        The dataset's ISIC ``sector_code`` values.
    source_present
        The dataset's ``sector_code_source`` values, quoted in the dataset's own
        scheme when given.
    """
    requested = [str(r) for r in requested]
    isic_codes = list(isic_codes)
    shown_scheme = _scheme_name("isic4" if scheme in (None, "osm") else scheme)
    codes = sorted({str(p) for p in present if isinstance(p, str) and p})
    own = sorted({str(p) for p in (source_present or []) if isinstance(p, str) and p})
    listed = own if own and scheme == "nace2" else codes
    if not listed:
        return (
            f"no firm matches sectors {requested}: the dataset has no sector codes "
            "(it was ingested without a sector column)"
        )
    more = f" and {len(listed) - _MAX_LISTED} more" if len(listed) > _MAX_LISTED else ""
    read_as = "" if isic_codes == requested else f" (read as ISIC {', '.join(isic_codes)})"
    return (
        f"no firm matches sectors {', '.join(requested)}{read_as}: the dataset's codes are "
        f"{shown_scheme}: {', '.join(listed[:_MAX_LISTED])}{more}"
    )


def _scheme_name(scheme: str) -> str:
    return {"isic4": "ISIC Rev.4", "nace2": "NACE Rev.2"}.get(scheme, scheme)
