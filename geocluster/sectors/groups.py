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
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from types import MappingProxyType

from geocluster.errors import InvalidInput, UnusableFile
from geocluster.sectors._isic import DIVISIONS

__all__ = [
    "SECTOR_GROUPS",
    "SECTOR_GROUP_NOTES",
    "SectorGroup",
    "group_divisions",
    "load_groups",
    "load_groups_file",
    "parse_groups",
]

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
        raise UnusableFile(
            f"expected a readable sector groups file, got {p.name!r} ({type(exc).__name__})"
        ) from None
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


# ----------------------------------------------------------------- groups from a file
#: Largest groups file read (a list of codes, not a data set).
GROUPS_FILE_MAX_BYTES = 1_000_000
_GROUP_NAME = re.compile(r"^[^\W\d][\w\-]{0,63}$")
_GROUP_KEYS = frozenset({"title", "codes", "scheme", "description"})


@dataclass(frozen=True)
class SectorGroup:
    """A user-defined sector group read by :func:`load_groups_file`.

    Attributes
    ----------
    name
        The key in the file (a letter, then letters, digits, ``_`` or ``-``).
    title
        Human title for maps and reports.
    codes
        ISIC Rev.4 codes (section letters, divisions, groups or classes), as
        :func:`~geocluster.sectors.normalize_sector_filter` reads them.
    source_codes
        The codes as written in the file.
    scheme
        Classification the file's codes are in (``"isic4"`` default, or ``"nace2"``).
    description
        Optional longer text.
    """

    name: str
    title: str
    codes: tuple[str, ...]
    source_codes: tuple[str, ...]
    scheme: str = "isic4"
    description: str | None = None

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able form."""
        return {
            "name": self.name,
            "title": self.title,
            "codes": list(self.codes),
            "source_codes": list(self.source_codes),
            "scheme": self.scheme,
            "description": self.description,
        }


def _parse_text(text: str, fmt: str, name: str) -> object:
    try:
        if fmt == "json":
            return json.loads(text)
        import yaml

        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise UnusableFile(
            f"{name}: expected valid JSON, got an error at line {exc.lineno}: {exc.msg}"
        ) from None
    except Exception as exc:  # yaml.YAMLError and its subclasses
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise UnusableFile(f"{name}: expected valid YAML, got an error{where}: {problem}") from None


def load_groups_file(path: str | PathLike[str]) -> dict[str, SectorGroup]:
    """Read user-defined sector groups from a YAML or JSON file (pure: nothing is stored).

    The file maps each group name to its title and codes::

        wine:
          title: Wine value chain
          codes: ["0121", "1102", "4630", "5630"]
        leather:
          title: Leather and footwear
          scheme: nace2          # optional: the codes are NACE Rev.2
          codes: ["15.11", "15.12", "15.20"]

    Parameters
    ----------
    path
        ``.yaml``/``.yml`` or ``.json`` file.

    Returns
    -------
    dict[str, SectorGroup]
        Group name -> group, in file order.

    Raises
    ------
    geocluster.errors.UnusableFile
        The file is missing, unreadable, too large, not named .json/.yaml/.yml or
        not valid YAML/JSON.
    geocluster.errors.InvalidInput
        The content is not ``{name: {title, codes}}``: a bad name, a missing or
        empty title or code list, an unknown key or scheme, or codes that are not
        in the scheme (every bad code is named, with its group).
    """
    p = Path(path)
    if p.suffix.lower() not in (".json", ".yaml", ".yml"):
        raise UnusableFile(
            f"expected a sector groups file ending in .json, .yaml or .yml, got {p.name!r}"
        )
    try:
        size = p.stat().st_size
        if size > GROUPS_FILE_MAX_BYTES:
            raise UnusableFile(
                f"{p.name}: expected a sector groups file under {GROUPS_FILE_MAX_BYTES:,} "
                f"bytes, got {size:,}"
            )
        text = p.read_text(encoding="utf-8-sig")
    except UnusableFile:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise UnusableFile(
            f"expected a readable UTF-8 sector groups file, got {p.name!r} ({type(exc).__name__})"
        ) from None
    fmt = "json" if p.suffix.lower() == ".json" else "yaml"
    return groups_from_mapping(_parse_text(text, fmt, p.name), label=p.name, fmt=fmt)


def groups_from_mapping(
    data: object, *, label: str = "groups", fmt: str = "json"
) -> dict[str, SectorGroup]:
    """Validate sector groups given as data (``{name: {title, codes[, scheme]}}``).

    The checks of :func:`load_groups_file`, for groups that arrive as JSON over HTTP.
    """
    from geocluster.sectors.filters import normalize_sector_filter

    p = Path(label)
    if isinstance(data, Mapping) and set(data) == {"groups"}:
        data = data["groups"]
    if not isinstance(data, Mapping) or not data:
        raise InvalidInput(
            f"{p.name}: expected a mapping of group name to {{title, codes}}, e.g. "
            "{'wine': {'title': 'Wine', 'codes': ['0121', '1102']}}, got "
            + ("an empty file" if not data else type(data).__name__)
        )
    out: dict[str, SectorGroup] = {}
    bad_codes: list[str] = []
    for name, spec in data.items():
        if not isinstance(name, str) or not _GROUP_NAME.match(name):
            raise InvalidInput(
                f"{p.name}: expected a group name that starts with a letter and has only "
                f"letters, digits, '_' or '-' (at most 64), got {name!r}"
            )
        if not isinstance(spec, Mapping):
            raise InvalidInput(
                f"{p.name}: group {name!r}: expected {{title, codes}}, got {type(spec).__name__}"
            )
        extra = sorted(str(k) for k in set(spec) - _GROUP_KEYS)
        if extra:
            raise InvalidInput(
                f"{p.name}: group {name!r}: unknown key(s) {extra}; expected title, codes "
                "and optionally scheme, description"
            )
        title = spec.get("title")
        if not isinstance(title, str) or not title.strip():
            raise InvalidInput(
                f"{p.name}: group {name!r}: expected a non-empty title, got {title!r}"
            )
        scheme = spec.get("scheme", "isic4")
        if scheme not in ("isic4", "nace2"):
            raise InvalidInput(
                f"{p.name}: group {name!r}: expected scheme 'isic4' or 'nace2', got {scheme!r}"
            )
        description = spec.get("description")
        if description is not None and not isinstance(description, str):
            raise InvalidInput(f"{p.name}: group {name!r}: expected a text description")
        codes = spec.get("codes")
        if isinstance(codes, str | bytes) or not isinstance(codes, list) or not codes:
            raise InvalidInput(
                f"{p.name}: group {name!r}: expected a non-empty list of codes, got {codes!r}"
            )
        source = []
        for c in codes:
            if isinstance(c, int) and not isinstance(c, bool) and fmt == "yaml":
                # YAML reads 0121 as the number 81 (octal), so a number cannot be trusted
                raise InvalidInput(
                    f"{p.name}: group {name!r}: write codes as quoted text ('0121', '15.20'); "
                    f"got the number {c}"
                )
            if isinstance(c, bool) or not isinstance(c, str | int):
                bad_codes.append(f"{name}: {c!r}")
            else:
                source.append(str(c).strip())
        isic: list[str] = []
        for c in source:
            try:
                isic.extend(x for x in normalize_sector_filter([c], scheme) if x not in isic)
            except InvalidInput:
                bad_codes.append(f"{name}: {c!r}")
        out[name] = SectorGroup(
            name, title.strip(), tuple(isic), tuple(source), scheme, description
        )
    if bad_codes:
        raise InvalidInput(
            f"{p.name}: expected ISIC Rev.4 codes (or NACE Rev.2 with scheme: nace2) in "
            "sector groups; unknown codes: " + ", ".join(bad_codes)
        )
    return out
