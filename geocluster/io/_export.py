"""Output hygiene for files users download."""

from __future__ import annotations

import pandas as pd

#: A text cell starting with one of these is a formula to a spreadsheet (OWASP, "CSV
#: Injection": ``=``, ``+``, ``-``, ``@``, tab and carriage return).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _neutral(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names cannot run as spreadsheet formulas.

    Text starting with ``= + - @``, a tab or a carriage return gets a leading ``'``, as
    OWASP advises for CSV exports; numbers stay numbers (a negative number in a
    numeric column is data, not a formula).

    Parameters
    ----------
    frame
        The table about to be written as CSV.

    Returns
    -------
    pandas.DataFrame
        A new frame; ``frame`` is not modified.
    """
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
            out[col] = s.map(_neutral, na_action="ignore")
    out.columns = [_neutral(c) if isinstance(c, str) else c for c in out.columns]
    return out
