"""Excel (.xlsx) reader, hardened against hostile workbooks.

An .xlsx is a zip of XML parts, so it gets the zip checks of
:mod:`geocluster.io._archive` (no bomb, no traversal) and its XML is parsed by
openpyxl through ``defusedxml`` (no entity expansion, no external entities: a
"billion laughs" sheet is refused, not expanded). External links are not loaded.
Whatever openpyxl raises on a malformed part becomes one :class:`UnusableFile` line.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from geocluster.errors import FileTooLarge, GeoclusterError, InvalidInput, UnusableFile
from geocluster.io._archive import inspect_zip
from geocluster.io._gdal import clean_detail


def _openpyxl():
    import openpyxl

    if not openpyxl.DEFUSEDXML:
        # fail closed: without defusedxml the stdlib parser would expand entities
        raise UnusableFile(
            "reading .xlsx needs the defusedxml package (and OPENPYXL_DEFUSEDXML not "
            "set to False); install it to read workbooks safely"
        )
    return openpyxl


def _reason(exc: BaseException, path: Path) -> str:
    name = type(exc).__name__
    if name in ("EntitiesForbidden", "DTDForbidden", "ExternalReferenceForbidden"):
        return "its XML declares entities or a DTD (refused: possible XML bomb)"
    if name == "ParseError" or "XML" in name:
        return "its XML is malformed"
    return clean_detail(exc, paths=(path, path.parent), limit=200) or name


def read_xlsx(
    path: Path, *, sheet: str | None = None, max_bytes: int | None = None
) -> tuple[pd.DataFrame, str, list[str]]:
    """Read one sheet of an .xlsx workbook.

    Parameters
    ----------
    path
        The workbook.
    sheet
        Sheet name; the first sheet when ``None``.
    max_bytes
        Refuse a workbook whose parts expand to more than this.

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
        The workbook is corrupt, malformed, a zip bomb, or the sheet has no data rows.
    """
    files = inspect_zip(path)
    expanded = sum(i.file_size for i in files)
    if max_bytes is not None and expanded > max_bytes:
        raise FileTooLarge(
            f"{path.name} expands to {expanded:,} bytes; the limit is {max_bytes:,} bytes"
        )
    openpyxl = _openpyxl()
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except GeoclusterError:
        raise
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many unrelated types
        raise UnusableFile(
            f"{path.name} is not a readable .xlsx workbook: {_reason(exc, path)}"
        ) from exc
    try:
        sheets = [str(s) for s in book.sheetnames]
    finally:
        book.close()
    if not sheets:
        raise UnusableFile(f"{path.name} is not a readable .xlsx workbook: it has no sheets")
    listed = clean_detail(sheets)
    if sheet is not None and sheet not in sheets:
        raise InvalidInput(f"{path.name} has no sheet {sheet!r}; its sheets are {listed}")
    name = sheet if sheet is not None else sheets[0]
    try:
        frame = pd.read_excel(path, sheet_name=name, engine="openpyxl")
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many unrelated types
        raise UnusableFile(
            f"{path.name}: cannot read sheet {clean_detail(name, limit=60)!r}: {_reason(exc, path)}"
        ) from exc
    frame = frame.dropna(how="all")
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) == 0:
        raise UnusableFile(f"{path.name}: sheet {clean_detail(name, limit=60)!r} has no data rows")
    notes = []
    if len(sheets) > 1 and sheet is None:
        notes.append(f"read the first sheet {name!r} of {listed}; choose another with layer")
    return frame, name, notes
