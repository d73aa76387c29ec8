"""Sector groups for the integrated (cross-sector) cluster approach.

A *sector group* is a named set of ISIC Rev.4 divisions that together form one
value chain or territorial specialisation, so that cluster detection and
specialisation measures can look at e.g. the whole agro-food chain at once.
Three groups are built in; the reasons for each choice are in
``geocluster/sectors/GROUPS.md`` and in :data:`SECTOR_GROUP_NOTES`. Users can
define their own in a JSON or YAML file (:func:`load_groups`).

Groups are defined at the **division** level because that is the finest level on
which ISIC Rev.4 and NACE Rev.2 agree (see :mod:`geocluster.sectors._isic`), so a
group means the same thing for both classifications.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path
from types import MappingProxyType

from geocluster.errors import InvalidInput, UnusableFile
from geocluster.sectors._isic import DIVISIONS

__all__ = ["SECTOR_GROUPS", "SECTOR_GROUP_NOTES", "group_divisions", "load_groups", "parse_groups"]

#: Built-in sector groups: name -> frozenset of two-digit ISIC Rev.4 divisions.
SECTOR_GROUPS: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        # Farm-to-fork chain: primary production of food (01 crops and livestock,
        # 03 fishing and aquaculture) and its industrial processing (10 food, 11
        # beverages, 12 tobacco) -- the "food, beverages and tobacco" aggregate
        # C10-C12 used by Eurostat/OECD plus its agricultural supply base.
        "agro_food": frozenset({"01", "03", "10", "11", "12"}),
        # Tourism characteristic industries of the UNWTO Tourism Satellite Account
        # (TSA:RMF 2008) that are tourism-dominated at division level: 55
        # accommodation, 56 food and beverage serving, 79 travel agencies and tour
        # operators, 91 museums, historical sites, botanical gardens and nature
        # reserves, 93 sports, amusement and recreation.
        "tourism": frozenset({"55", "56", "79", "91", "93"}),
        # Creative industries (UNCTAD / UK DCMS list, ESSnet-Culture) at division
        # level: 58 publishing, 59 film, video, TV and music, 60 broadcasting,
        # 73 advertising, 74 design and photography, 90 creative arts and
        # entertainment, 91 libraries, archives and museums.
        "creative_industries": frozenset({"58", "59", "60", "73", "74", "90", "91"}),
    }
)

#: Why each built-in group holds what it holds (also rendered in GROUPS.md).
SECTOR_GROUP_NOTES: MappingProxyType[str, str] = MappingProxyType(
    {
        "agro_food": (
            "Primary food production (01, 03) and food, beverage and tobacco processing "
            "(10, 11, 12). Forestry (02) is left out: it feeds wood, not food. Food "
            "wholesale/retail (46, 47) and restaurants (56) are left out: they sell every "
            "region's food and would turn any city into an agro-food cluster."
        ),
        "tourism": (
            "UNWTO TSA tourism characteristic activities that are tourism-dominated at "
            "division level (55, 56, 79, 91, 93). Passenger transport (49-51) is left out "
            "because at division level it is dominated by freight and commuting; creative "
            "arts (90) are in creative_industries."
        ),
        "creative_industries": (
            "Divisions whose output is mostly creative content (58, 59, 60, 73, 74, 90, "
            "91). Software (62) and engineering (71) are left out: only small parts of "
            "them (games, architecture) are creative and they would dominate the group; "
            "crafts in other manufacturing (32) share the division with medical "
            "instruments and are left out for the same reason."
        ),
    }
)


def _clean_division(code: object) -> str | None:
    """Return a two-digit division string for ``code`` or None if it is not one."""
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        text = str(code)
    elif isinstance(code, str):
        text = code.strip()
    else:
        return None
    if text.isdigit() and len(text) == 1:
        text = "0" + text
    return text if text in DIVISIONS else None


def parse_groups(mapping: Mapping[str, Iterable[object]]) -> dict[str, frozenset[str]]:
    """Validate user-defined sector groups.

    Parameters
    ----------
    mapping : Mapping[str, Iterable]
        Group name -> ISIC Rev.4 division codes (``"10"``, ``10`` or ``"1"`` for
        ``"01"``). A top-level ``{"groups": {...}}`` wrapper is also accepted.

    Returns
    -------
    dict[str, frozenset[str]]
        Group name -> set of two-digit divisions.

    Raises
    ------
    geocluster.errors.InvalidInput
        If the mapping is not name -> list of codes, a group is empty, or a code is
        not an ISIC Rev.4 division; the message names every offending code.
    """
    if isinstance(mapping, Mapping) and set(mapping) == {"groups"}:
        mapping = mapping["groups"]
    if not isinstance(mapping, Mapping) or not mapping:
        raise InvalidInput(
            "expected sector groups as a mapping of group name to a list of ISIC Rev.4 "
            f"divisions, e.g. {{'wine': ['01', '11']}}, got {type(mapping).__name__}"
        )
    out: dict[str, frozenset[str]] = {}
    bad: list[str] = []
    for name, codes in mapping.items():
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"expected a non-empty group name, got {name!r}")
        if isinstance(codes, str | bytes) or not isinstance(codes, Iterable):
            raise InvalidInput(
                f"expected a list of ISIC divisions for group {name!r}, got {codes!r}"
            )
        codes = list(codes)
        if not codes:
            raise InvalidInput(f"expected at least one ISIC division in group {name!r}, got none")
        divisions = set()
        for code in codes:
            div = _clean_division(code)
            if div is None:
                bad.append(f"{name}: {code!r}")
            else:
                divisions.add(div)
        out[name] = frozenset(divisions)
    if bad:
        raise InvalidInput(
            "expected two-digit ISIC Rev.4 divisions (01-99, e.g. '10', '55') in sector "
            "groups; unknown codes: " + ", ".join(bad)
        )
    return out


def load_groups(path: str | PathLike[str]) -> dict[str, frozenset[str]]:
    """Read user-defined sector groups from a JSON or YAML file.

    The file holds ``{group name: [division, ...]}`` (optionally wrapped in
    ``{"groups": ...}``), e.g. ``{"wine": ["01", "11", "56"]}``.

    Parameters
    ----------
    path : path-like
        ``.json``, ``.yaml`` or ``.yml`` file.

    Returns
    -------
    dict[str, frozenset[str]]

    Raises
    ------
    geocluster.errors.UnusableFile
        If the file is missing, unreadable or not valid JSON/YAML.
    geocluster.errors.InvalidInput
        If the content is not a valid groups mapping (see :func:`parse_groups`).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UnusableFile(f"expected a readable sector groups file, got {p}: {exc}") from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise UnusableFile(
                f"expected a sector groups file ending in .json, .yaml or .yml, got {p.name!r}"
            )
    except UnusableFile:
        raise
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise UnusableFile(f"expected valid {suffix[1:].upper()} in {p.name}, got: {exc}") from None
    return parse_groups(data)


def group_divisions(
    name: str, custom: Mapping[str, Iterable[object]] | None = None
) -> frozenset[str]:
    """Divisions of a built-in or user-defined sector group.

    Parameters
    ----------
    name : str
        Group name: ``"agro_food"``, ``"tourism"``, ``"creative_industries"`` or a
        key of ``custom``.
    custom : Mapping, optional
        User-defined groups (validated with :func:`parse_groups`); they take
        precedence over built-in groups of the same name.

    Returns
    -------
    frozenset[str]
        Two-digit ISIC Rev.4 divisions.

    Raises
    ------
    geocluster.errors.InvalidInput
        If ``name`` is not a known group (the message lists the known ones) or
        ``custom`` is invalid.
    """
    groups = dict(SECTOR_GROUPS)
    if custom:
        groups.update(parse_groups(custom))
    try:
        return groups[name]
    except (KeyError, TypeError):
        raise InvalidInput(
            f"expected a sector group, one of {sorted(groups)}, got {name!r}"
        ) from None
