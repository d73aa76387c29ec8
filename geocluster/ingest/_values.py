"""Parsing of id, code, boolean and year columns (vectorised over unique values)."""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd

#: Yes/no words in English, Spanish, French, Portuguese (and German), compared after
#: lower-casing and folding accents, so ``Sí``, ``SI``, ``não`` and ``nao`` all count.
_TRUE = frozenset({
    "true", "t", "yes", "y", "1", "1.0", "x",
    "si", "s", "verdadero", "cierto",  # es
    "oui", "vrai",  # fr
    "sim", "verdadeiro",  # pt
    "ja", "j", "wahr",  # de
})  # fmt: skip
_FALSE = frozenset({
    "false", "f", "no", "n", "0", "0.0",
    "falso",  # es, pt
    "non", "faux",  # fr
    "nao",  # pt (não)
    "nein", "falsch",  # de
})  # fmt: skip


def _fold(text: str) -> str:
    """Lower case without accents: ``"NÃO"`` -> ``"nao"``."""
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_MISSING_WORDS = frozenset({"", "na", "n/a", "nan", "null", "none", "#n/a", "<na>", "-nan"})


def _is_missing_word(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.lower().isin(_MISSING_WORDS).fillna(False)


def _code_text(v: object) -> object:
    if v is None or v is pd.NA:
        return pd.NA
    if isinstance(v, float):
        if np.isnan(v):
            return pd.NA
        if v.is_integer():
            return str(int(v))
    s = str(v).strip()
    return s if s else pd.NA


def as_code_str(values: pd.Series) -> pd.Series:
    """Ids and codes as text: ``1.0`` -> ``"1"``, ``" 0111 "`` -> ``"0111"``, blanks missing.

    Returns a Series of pandas' ``str`` dtype with the same index.
    """
    if pd.api.types.is_bool_dtype(values.dtype):
        values = values.astype(object)
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.astype("Int64").astype("str").where(values.notna(), None).astype("str")
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        text = values.str.strip()
        return text.where(text != "", None).astype("str")
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([_code_text(u) for u in uniques] + [pd.NA], dtype=object)
    out = mapped[codes]  # the sentinel -1 picks the trailing NA
    return pd.Series(out, index=values.index, dtype="str")


def parse_bool(values: pd.Series) -> tuple[pd.Series, int]:
    """Yes/no values as nullable booleans; returns the Series and how many were not understood."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean"), 0
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped: list[object] = []
    for u in uniques:
        s = _fold(str(u))
        mapped.append(True if s in _TRUE else False if s in _FALSE else pd.NA)
    mapped.append(pd.NA)
    out = pd.Series(np.array(mapped, dtype=object)[codes], index=values.index, dtype="boolean")
    unparsed = int((out.isna() & values.notna() & ~_is_missing_word(values)).sum())
    return out, unparsed


def parse_year(values: pd.Series) -> tuple[pd.Series, int]:
    """Founding years as ``Int64``; dates give their year; returns the count not understood.

    Any whole number is returned as a year (plausibility bounds are the caller's:
    an impossible year is a rejected row, not an unknown value); text that is neither
    a number nor a date, and fractional numbers, are not understood.
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        years = values.dt.year.astype("Float64")
    else:
        years = pd.to_numeric(values, errors="coerce").astype("Float64")
        retry = years.isna() & values.notna()
        if retry.any():
            dates = pd.to_datetime(values[retry].astype("string"), errors="coerce", format="mixed")
            years[retry] = dates.dt.year.astype("Float64")
    # |year| < 1e6 keeps the Int64 cast safe; bigger numbers are "not a year" too
    ok = years.notna() & (years.abs() < 1e6) & (years.round() == years)
    ok = ok.fillna(False).astype(bool)
    out = years.where(ok).round().astype("Int64")
    present = values.notna()
    if not pd.api.types.is_numeric_dtype(values.dtype):
        present &= ~_is_missing_word(values).to_numpy(dtype=bool)
    unparsed = int((present & ~ok).sum())
    return out, unparsed


def take_text(idx: np.ndarray, uniques: list[object], index: pd.Index) -> pd.Series:
    """``uniques[idx]`` as a ``str`` Series (``idx == -1`` -> missing), via one Arrow take.

    Building a million-row string column from a handful of distinct values this way
    is ~10x faster than going through a numpy object array.
    """
    import pyarrow as pa

    values = [
        None if (u is None or u is pd.NA or (isinstance(u, float) and np.isnan(u))) else str(u)
        for u in uniques
    ]
    table = pa.array([*values, None], type=pa.large_string())
    taken = table.take(pa.array(np.where(idx < 0, len(values), idx)))
    return pd.Series(pd.array(taken, dtype="str"), index=index)
