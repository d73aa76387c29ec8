"""Excel (.xlsx) reader."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd

from geocluster.errors import InvalidInput, UnusableFile


def read_xlsx(path: Path, *, sheet: str | None = None) -> tuple[pd.DataFrame, str, list[str]]:
    """Read one sheet of an .xlsx workbook.

    Parameters
    ----------
    path
        The workbook.
    sheet
        Sheet name; the first sheet when ``None``.

    Returns
    -------
    frame, sheet, notes
        Row ``i`` of the frame is data row ``i + 1`` (the row under the header);
        ``sheet`` is the name of the sheet read.

    Raises
    ------
    InvalidInput
        ``sheet`` is not in the workbook (the message lists the sheets).
    UnusableFile
        The workbook is corrupt or the sheet has no data rows.
    """
    try:
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise UnusableFile(f"{path.name} is not a readable .xlsx workbook: {exc}") from exc
    try:
        sheets = list(book.sheetnames)
    finally:
        book.close()
    if sheet is not None and sheet not in sheets:
        raise InvalidInput(f"{path.name} has no sheet {sheet!r}; its sheets are {sheets}")
    name = sheet if sheet is not None else sheets[0]
    try:
        frame = pd.read_excel(path, sheet_name=name, engine="openpyxl")
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many unrelated types
        raise UnusableFile(f"{path.name}: cannot read sheet {name!r}: {exc}") from exc
    frame = frame.dropna(how="all")
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) == 0:
        raise UnusableFile(f"{path.name}: sheet {name!r} has no data rows")
    notes = []
    if len(sheets) > 1 and sheet is None:
        notes.append(f"read the first sheet {name!r} of {sheets}; choose another with layer")
    return frame, name, notes
