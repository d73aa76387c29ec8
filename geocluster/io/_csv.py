"""Delimited text reader: delimiter and encoding sniffing, decimal comma.

Large files go through pandas' pyarrow engine (multi-threaded, several times faster
than the C engine); the C engine is used only where pyarrow lacks an option (decimal
comma) or rejects a file, so the speed of the common case does not pay for the rare one.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geocluster.errors import UnusableFile
from geocluster.io._gdal import clean_detail

DELIMITERS = (",", ";", "\t", "|")
_SAMPLE_BYTES = 256 * 1024
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d+,\d+\s*$")
_DECIMAL_POINT = re.compile(r"^\s*[+-]?\d+\.\d+\s*$")
#: pandas' default missing-value words (``pandas._libs.parsers.STR_NA_VALUES``). They mean
#: "missing" in number-like columns, but in text columns they can be real values: "NA" is
#: Namibia's ISO code and "Null" a surname. Text columns keep them; others do not.
NA_TOKENS = (
    "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip


def sniff_encoding(path: Path) -> str:
    """Return ``"utf-8-sig"``, ``"utf-16"``, ``"utf-8"``, ``"cp1252"`` or ``"latin-1"``.

    UTF-8 is checked over the whole file (a stray latin-1 byte can sit on the last
    line); cp1252 is preferred to latin-1 unless the file uses one of the five bytes
    cp1252 leaves undefined.
    """
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for encoding in ("utf-8", "cp1252"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(8 << 20):
                    # an ASCII chunk after a complete character is valid in both: skip
                    # decoding it (bytes.isascii is a C scan; a national register is
                    # mostly ASCII, and decoding 323 MB took 0.3 s)
                    if chunk.isascii() and not decoder.getstate()[0]:
                        continue
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    return "latin-1"


def _sample_lines(path: Path, encoding: str) -> list[str]:
    with open(path, "rb") as fh:
        raw = fh.read(_SAMPLE_BYTES)
        truncated = bool(fh.read(1))
    text = raw.decode(encoding, errors="ignore")
    lines = text.splitlines()
    if truncated and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut in the middle
    return [ln for ln in lines if ln.strip()]


def sniff_delimiter(lines: list[str], *, prefer: str | None = None) -> str:
    """Choose the delimiter among ``, ; \\t |`` that splits the sample most consistently.

    The score of a delimiter is (share of lines having the modal field count, modal
    field count); a delimiter that never splits the header scores zero.
    """
    best, best_score = prefer or ",", (0.0, 0)
    sample = lines[:200]
    for delim in DELIMITERS:
        try:
            counts = [
                len(row) for row in csv.reader(io.StringIO("\n".join(sample)), delimiter=delim)
            ]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        mode, freq = Counter(counts).most_common(1)[0]
        score = (freq / len(counts), mode + (0.5 if delim == prefer else 0))
        if mode >= 2 and score > best_score:
            best, best_score = delim, score
    return best


def _uses_decimal_comma(lines: list[str], delimiter: str) -> bool:
    if delimiter == ",":
        return False
    rows = list(csv.reader(io.StringIO("\n".join(lines[1:200])), delimiter=delimiter))
    comma = point = 0
    for row in rows:
        for cell in row:
            if _DECIMAL_COMMA.match(cell):
                comma += 1
            elif _DECIMAL_POINT.match(cell):
                point += 1
    return comma > 0 and comma >= point


@dataclass(frozen=True)
class _Sniffed:
    encoding: str
    delimiter: str
    raw_header: list[str]
    header: list[str]
    decimal_comma: bool
    as_text: set[str]
    notes: list[str]

    @property
    def dtype(self) -> dict[str, str] | None:
        return {r: "str" for r, c in zip(self.raw_header, self.header) if c in self.as_text} or None


def _sniff(path: Path, text_columns: Callable[[list[str]], Iterable[str]] | None) -> _Sniffed:
    """Encoding, delimiter, header and number format of a delimited file (from a sample)."""
    encoding = sniff_encoding(path)
    lines = _sample_lines(path, encoding)
    if not lines:
        raise UnusableFile(f"{path.name} is empty (no text lines)")
    prefer = "\t" if path.suffix.lower() in (".tsv", ".tab") else None
    delimiter = sniff_delimiter(lines, prefer=prefer)
    try:
        raw_header = next(csv.reader(io.StringIO(lines[0]), delimiter=delimiter))
    except csv.Error as exc:  # e.g. a field over the csv module's 128 KB limit
        raise UnusableFile(
            f"{path.name} is not a readable delimited file: its first line is not a header "
            f"({clean_detail(exc, limit=80)})"
        ) from exc
    header = [h.lstrip("\ufeff").strip() for h in raw_header]
    if len(lines) < 2:
        raise UnusableFile(f"{path.name} has a header ({header_summary(header)}) but no data rows")
    try:
        decimal_comma = _uses_decimal_comma(lines, delimiter)
    except csv.Error as exc:
        raise UnusableFile(
            f"{path.name} is not a readable delimited file: {clean_detail(exc, limit=80)}"
        ) from exc
    as_text = set(text_columns(header)) if text_columns else set()
    # Only what differs from plain comma-separated UTF-8 is worth telling the user.
    notes = []
    if encoding not in ("utf-8", "utf-8-sig"):
        notes.append(f"encoding {encoding}")
    if delimiter != ",":
        notes.append(f"delimiter {delimiter!r}")
    return _Sniffed(encoding, delimiter, raw_header, header, decimal_comma, as_text, notes)


def read_csv(
    path: Path,
    *,
    text_columns: Callable[[list[str]], Iterable[str]] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Read a delimited text file into a DataFrame.

    Parameters
    ----------
    path
        A CSV/TSV file in UTF-8 (with or without BOM), UTF-16, cp1252 or latin-1,
        delimited by ``,``, ``;``, tab or ``|``; numbers may use a decimal comma
        when the delimiter is not a comma.
    text_columns
        Called with the header; the columns it returns are read as strings so that
        codes such as ``"0111"`` keep their leading zeros.

    Returns
    -------
    frame, notes
        The data (row ``i`` is data row ``i + 1`` of the file) and notes on what was
        detected (encoding, delimiter, decimal comma).

    Raises
    ------
    UnusableFile
        Empty file, header without data, or malformed rows.
    """
    sn = _sniff(path, text_columns)
    encoding, delimiter, decimal_comma = sn.encoding, sn.delimiter, sn.decimal_comma
    dtype, as_text, notes = sn.dtype, sn.as_text, list(sn.notes)
    frame = None
    if not decimal_comma and encoding != "utf-16":
        try:
            frame = pd.read_csv(
                path,
                sep=delimiter,
                engine="pyarrow",
                dtype=dtype,
                keep_default_na=False,
                na_values=[""],
                encoding="utf-8" if encoding == "utf-8-sig" else encoding,
            )
        except Exception:  # noqa: BLE001 - pyarrow is strict; the C engine explains errors
            frame = None
    if frame is None:
        kwargs = {"decimal": ","} if decimal_comma else {}
        if decimal_comma:
            notes.append("decimal comma")
        try:
            frame = pd.read_csv(
                path,
                sep=delimiter,
                engine="c",
                dtype=dtype,
                keep_default_na=False,
                na_values=[""],
                encoding=encoding,
                skipinitialspace=True,
                **kwargs,
            )
        except pd.errors.EmptyDataError as exc:
            raise UnusableFile(f"{path.name} is empty: {clean_detail(exc)}") from exc
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise UnusableFile(
                f"{path.name} is not a readable delimited file: "
                f"{clean_detail(exc, paths=(path, path.parent))}"
            ) from exc
    frame.columns = [str(c).lstrip("\ufeff").strip() for c in frame.columns]
    _missing_words_to_nan(frame, keep=as_text)
    if len(frame) == 0:
        raise UnusableFile(
            f"{path.name} has a header ({header_summary(frame.columns)}) but no data rows"
        )
    return frame, notes


#: A column name worth quoting in a message: short, printable, one line.
_HEADER_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")


def header_summary(columns: Iterable[object], *, limit: int = 300) -> str:
    """The column names of a file for a message, or a count when they do not look like names.

    A hostile or misread file can put anything in its first line (a password-file
    line, a megabyte of data); only short printable names are quoted, at most
    ``limit`` characters in all.
    """
    names = [str(c) for c in columns]
    if not names:
        return "(none)"
    if not all(_HEADER_NAME.match(n) for n in names):
        return f"{len(names)} columns whose names do not look like header names"
    return clean_detail(", ".join(names), limit=limit)


def _missing_words_to_nan(frame: pd.DataFrame, *, keep: set[str]) -> None:
    """Turn :data:`NA_TOKENS` into missing values, in place, outside the ``keep`` columns.

    The file is read with only empty cells as missing, so text columns keep words such
    as "NA"; here the other columns get pandas' usual treatment back: a column that is
    numbers apart from such words becomes numeric.
    """
    for c in frame.columns:
        if c in keep:
            continue
        s = frame[c]
        if not (pd.api.types.is_string_dtype(s.dtype) or s.dtype == object):
            continue
        words = s.isin(NA_TOKENS)
        if not words.any():
            continue
        s = s.where(~words)
        numbers = pd.to_numeric(s, errors="coerce")
        frame[c] = numbers if (numbers.notna() == s.notna()).all() else s


def iter_csv_chunks(
    path: Path,
    *,
    text_columns: Callable[[list[str]], Iterable[str]] | None = None,
    chunk_rows: int = 1_000_000,
) -> tuple[list[str], Iterator[pd.DataFrame]]:
    """Read a delimited text file in chunks of about ``chunk_rows`` rows.

    The file is sniffed once (encoding, delimiter, decimal comma, header, text columns)
    as :func:`read_csv` does; then pyarrow's streaming reader (every column as text,
    typed per chunk the way the pyarrow engine infers: integers, booleans, floats, else
    text, with :data:`NA_TOKENS` missing outside text columns) or, for what it cannot
    read (decimal comma, UTF-16, repeated column names), pandas' C engine in chunks.

    Returns
    -------
    notes, chunks
        What was detected, and an iterator of DataFrames; chunk ``k``'s row ``i`` is
        data row ``i + 1`` after the rows of chunks ``0..k-1``.

    Raises
    ------
    UnusableFile
        As :func:`read_csv`, when the file or a later part of it cannot be read.
    """
    sn = _sniff(path, text_columns)
    notes = list(sn.notes)
    if sn.decimal_comma:
        notes.append("decimal comma")
    arrow_ok = (
        not sn.decimal_comma
        and sn.encoding != "utf-16"
        and len(set(sn.raw_header)) == len(sn.raw_header)
    )
    chunks = (
        _arrow_chunks(path, sn, chunk_rows) if arrow_ok else _pandas_chunks(path, sn, chunk_rows)
    )
    return notes, _nonempty(chunks, path, sn)


def _nonempty(chunks: Iterator[pd.DataFrame], path: Path, sn: _Sniffed) -> Iterator[pd.DataFrame]:
    any_rows = False
    for frame in chunks:
        if len(frame):
            any_rows = True
            yield frame
    if not any_rows:
        raise UnusableFile(
            f"{path.name} has a header ({header_summary(sn.header)}) but no data rows"
        )


def _unreadable(path: Path, exc: BaseException) -> UnusableFile:
    return UnusableFile(
        f"{path.name} is not a readable delimited file: "
        f"{clean_detail(str(exc).splitlines()[0] if str(exc) else exc, paths=(path, path.parent))}"
    )


def _typed_column(arr, *, text: bool):
    """One text column of a chunk typed as pandas' pyarrow engine would (see above)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if text:
        return arr
    words = pc.is_in(arr, value_set=pa.array(NA_TOKENS))
    if pc.any(words).as_py():
        arr = pc.if_else(words, pa.scalar(None, pa.string()), arr)
    if arr.null_count == len(arr):
        return arr
    targets = [pa.int64(), pa.bool_(), pa.float64()]
    # The first thousand values rule out most types at a thousandth of the cost; the
    # whole column then decides among the rest, in the same order.
    head = arr.slice(0, 1000)
    for target in list(targets):
        try:
            pc.cast(head, target)
            break
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            targets.remove(target)
    for target in targets:
        try:
            return pc.cast(arr, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return arr


def _arrow_chunks(path: Path, sn: _Sniffed, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(
        column_names=sn.raw_header,
        skip_rows=1,
        block_size=8 << 20,
        encoding="utf8" if sn.encoding in ("utf-8", "utf-8-sig") else sn.encoding,
    )
    parse = pacsv.ParseOptions(delimiter=sn.delimiter, newlines_in_values=True)
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in sn.raw_header},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    try:
        reader = pacsv.open_csv(
            path, read_options=read, parse_options=parse, convert_options=convert
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise _unreadable(path, exc) from None
    batches: list = []
    rows = 0

    def flush() -> pd.DataFrame:
        table = pa.Table.from_batches(batches, schema=reader.schema)
        columns = {
            name: _typed_column(table[raw], text=name in sn.as_text).to_pandas()
            for raw, name in zip(sn.raw_header, sn.header)
        }
        return pd.DataFrame(columns)

    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except (pa.ArrowInvalid, OSError) as exc:
            raise _unreadable(path, exc) from None
        batches.append(batch)
        rows += batch.num_rows
        if rows >= chunk_rows:
            yield flush()
            batches, rows = [], 0
    if rows:
        yield flush()


def _pandas_chunks(path: Path, sn: _Sniffed, chunk_rows: int) -> Iterator[pd.DataFrame]:
    kwargs = {"decimal": ","} if sn.decimal_comma else {}
    try:
        reader = pd.read_csv(
            path,
            sep=sn.delimiter,
            engine="c",
            dtype=sn.dtype,
            keep_default_na=False,
            na_values=[""],
            encoding=sn.encoding,
            skipinitialspace=True,
            chunksize=chunk_rows,
            **kwargs,
        )
        for frame in reader:
            frame.columns = [str(c).lstrip("\ufeff").strip() for c in frame.columns]
            _missing_words_to_nan(frame, keep=sn.as_text)
            yield frame
    except pd.errors.EmptyDataError as exc:
        raise UnusableFile(f"{path.name} is empty: {clean_detail(exc)}") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise _unreadable(path, exc) from exc
