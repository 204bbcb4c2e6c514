"""CSV files as a table of strings: reading, delimiter and decimal-comma sniffing, column typing.

The loaders (``kamoe.data.tabular.load_csv`` and the time-series path in
``kamoe.data.sequence``) build Datasets from the :class:`Table` this module returns. Policy
(every refusal is a ``DataError`` naming the problem and the fix):

* size limit 25 MB; text decoded as UTF-8 (with or without BOM), else Latin-1 (with a note);
* delimiter: option ``sep``, else sniffed among ``, ; TAB |`` (the one that splits the header and
  nearly every line into the same number of fields, quotes respected), else ``,``;
* decimal separator: option ``decimal`` ('.' or ','), else ',' when the delimiter is not ',' and
  the numbers in the file are written with a decimal comma (``1,5``; ``1.234,5`` with thousands
  dots) and none with a decimal point; a comma-separated file is never switched by itself, but a
  column of such numbers is refused with a message that names the option to set;
* the first non-blank line is the header; duplicate column names are refused; blank names become
  ``column_<k>``; columns with no value at all are dropped (with a note);
* missing cells (empty, ``NA``, ``N/A``, ``NaN``, ``null``, ``None``, ``?``): rows with a missing
  value in any used column are dropped with a note; refused if that would drop more than half;
* a column whose non-missing cells are all numbers is numeric; one where most (> 50 %) are numbers
  but some are not is refused, naming the column, the file line (header = line 1) and the value;
  infinite values and magnitudes above 1e100 are refused the same way;
* other (text) feature columns are one-hot encoded when they have at most 20 distinct values and
  refused otherwise (leave them out with the ``features`` option);
* at least 10 usable rows.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kamoe.data.dataset import DataError

MAX_CSV_BYTES = 25 * 1024 * 1024
MIN_ROWS = 10
MAX_CATEGORIES = 20
MAX_ABS_VALUE = 1e100
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "#n/a"})
DELIMITERS = (",", ";", "\t", "|")
DECIMALS = (".", ",")
_DECIMAL_COMMA = re.compile(r"^[+-]?(\d+|\d{1,3}(\.\d{3})+),\d+([eE][+-]?\d+)?$")
_DECIMAL_POINT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?$")
_THOUSANDS_DOTS = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d*)?([eE][+-]?\d+)?$")
# Where a user sets each option: the Python/CLI option name and the Data page's control.
DECIMAL_HINT = ("set the decimal separator to ',' (option decimal=','; on the Data page: "
                "CSV options, Decimal separator)")
FEATURES_HINT = ("list the input columns to use (option features=a,b,...; on the Data page: "
                 "CSV options, Input columns)")


def check_test_size(test_size: float) -> float:
    """Validate a test fraction in (0, 1)."""
    try:
        value = float(test_size)
    except (TypeError, ValueError):
        raise DataError(f"test_size={test_size!r} is not a number; pass e.g. 0.2.") from None
    if not 0.0 < value < 1.0:
        raise DataError(f"test_size={value} must lie strictly between 0 and 1; pass e.g. 0.2.")
    return value


@dataclass
class Table:
    """A CSV parsed to stripped strings, with the file line of every data row (header = line 1)."""

    label: str
    columns: list[str]
    cells: dict[str, np.ndarray]
    lines: np.ndarray
    sep: str
    notes: list[str] = field(default_factory=list)
    decimal: str = "."

    @property
    def n_rows(self) -> int:
        return len(self.lines)

    def missing(self, name: str) -> np.ndarray:
        return np.array([c.lower() in MISSING_TOKENS for c in self.cells[name]], dtype=bool)

    def number_text(self, name: str) -> pd.Series:
        """The column's cells as Python number text (decimal commas turned into points)."""
        cells = pd.Series(self.cells[name], dtype=object)
        if self.decimal == ",":
            cells = cells.map(_comma_to_point)
        return cells


def _read_source(path: Any, data: Any) -> tuple[bytes, str]:
    if data is not None:
        label = Path(str(getattr(data, "name", "upload"))).name or "upload"
        if isinstance(data, str):
            raw = data.encode("utf-8")
        elif isinstance(data, (bytes, bytearray, memoryview)):
            raw = bytes(data)
        elif hasattr(data, "getvalue"):
            raw = data.getvalue()
        elif hasattr(data, "read"):
            raw = data.read()
        else:
            raise DataError(
                f"data= must be bytes, text or a file-like object, not {type(data).__name__}; "
                "pass the uploaded file or its bytes."
            )
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        raw = bytes(raw)
        if len(raw) > MAX_CSV_BYTES:
            _too_big(len(raw), label)
        return raw, label
    if path is None or str(path).strip() == "":
        raise DataError("No CSV given; use `csv:/path/to/file.csv` or pass path=... or data=....")
    p = Path(str(path)).expanduser()
    if not p.exists():
        raise DataError(f"CSV file {str(p)!r} does not exist; check the path.")
    if not p.is_file():
        raise DataError(f"{str(p)!r} is not a file; give the path of a .csv file.")
    size = p.stat().st_size
    if size > MAX_CSV_BYTES:
        _too_big(size, p.name)
    return p.read_bytes(), p.name


def _too_big(size: int, label: str) -> None:
    raise DataError(
        f"{label} is {size / 2**20:.1f} MB, above the 25 MB limit for CSV files; "
        "keep fewer rows or columns (e.g. a sample or a date range) and try again."
    )


def _decode(raw: bytes, notes: list[str]) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        notes.append("file is not valid UTF-8; it was read as Latin-1")
        return raw.decode("latin-1")


def sniff_delimiter(text: str) -> str:
    """Pick the delimiter among , ; TAB | that splits the header and most lines alike.

    Fields are counted with the CSV reader, so a quoted ``"1,5"`` does not count as two.
    """
    lines = [ln for ln in text.splitlines()[:200] if ln.strip()][:50]
    if not lines:
        return ","
    best, best_count = ",", 1
    for delim in DELIMITERS:
        if delim not in lines[0]:
            continue
        try:
            counts = [len(row) for row in csv.reader(lines, delimiter=delim)]
        except csv.Error:
            continue
        head = counts[0]
        agree = sum(c == head for c in counts) / len(counts)
        if agree >= 0.9 and head > best_count:
            best, best_count = delim, head
    return best


def _comma_to_point(cell: str) -> str:
    if _THOUSANDS_DOTS.match(cell):
        cell = cell.replace(".", "")
    return cell.replace(",", ".")


def sniff_decimal(rows: list[list[str]], sep: str) -> str:
    """',' when the numbers of a non-comma-separated file use a decimal comma, else '.'."""
    if sep == ",":
        return "."
    comma = point = 0
    for row in rows[:1000]:
        for cell in row:
            if _DECIMAL_COMMA.match(cell):
                comma += 1
            elif _DECIMAL_POINT.match(cell):
                point += 1
    return "," if comma and not point else "."


def _decimal_option(decimal: Any) -> str | None:
    if decimal is None or decimal == "auto":
        return None
    if decimal not in DECIMALS:
        raise DataError(f"decimal={decimal!r} must be '.' or ',' (or 'auto' to detect it).")
    return str(decimal)


def read_table(path: Any = None, data: Any = None, sep: str | None = None,
               decimal: str | None = None) -> Table:
    """Read a CSV (path or bytes/file-like) into a Table of strings; DataError on any problem."""
    decimal = _decimal_option(decimal)
    raw, label = _read_source(path, data)
    notes: list[str] = []
    text = _decode(raw, notes)
    if not text.strip():
        raise DataError(f"{label} is empty; give a CSV with a header line and data rows.")
    if "\x00" in text:
        raise DataError(
            f"{label} contains NUL bytes, so it is not a text CSV; export it as CSV (UTF-8) again."
        )
    if sep is None or sep == "auto":
        sep = sniff_delimiter(text)
    elif sep in ("\\t", "TAB", "tab"):
        sep = "\t"
    elif not isinstance(sep, str) or len(sep) != 1:
        raise DataError(f"sep={sep!r} must be a single character such as ',' or ';'.")
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
        for row in reader:
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            rows.append(cells)
            lines.append(reader.line_num)
    except csv.Error as err:
        raise DataError(
            f"{label} could not be parsed as CSV ({err}); check quoting and the delimiter."
        ) from None
    if not rows:
        raise DataError(f"{label} is empty; give a CSV with a header line and data rows.")
    header, body, body_lines = rows[0], rows[1:], lines[1:]
    if not body:
        raise DataError(f"{label} has a header but no data rows; add rows below the header.")
    while header and not header[-1] and all(len(r) < len(header) or not r[len(header) - 1]
                                            for r in body):
        header = header[:-1]  # trailing delimiter at the end of every line
    names = [h if h else f"column_{k}" for k, h in enumerate(header, start=1)]
    seen: dict[str, int] = {}
    for k, name in enumerate(names, start=1):
        if name in seen:
            raise DataError(
                f"{label} has duplicate column name {name!r} (columns {seen[name]} and {k}); "
                "rename the columns so every header is unique."
            )
        seen[name] = k
    width = len(names)
    grid = []
    for row, line in zip(body, body_lines, strict=True):
        if len(row) > width:
            if any(row[width:]):
                raise DataError(
                    f"{label}: line {line} has {len(row)} fields but the header has {width}; "
                    f"check the delimiter ({sep!r} was used) or quote values containing it."
                )
            row = row[:width]
        elif len(row) < width:
            row = row + [""] * (width - len(row))
        grid.append(row)
    arr = np.array(grid, dtype=object).reshape(len(grid), width)
    if all(_is_number(n) for n in names):
        notes.append("the first line looks like data but was used as the header (column names)")
    if decimal is None:
        decimal = sniff_decimal(grid, sep)
        if decimal == ",":
            notes.append("numbers use a decimal comma (detected); if that is wrong, set the "
                         "decimal separator to '.' (option decimal='.'; on the Data page: CSV "
                         "options, Decimal separator)")
    cells = {name: arr[:, k] for k, name in enumerate(names)}
    return Table(label, names, cells, np.asarray(body_lines, dtype=np.int64), sep, notes,
                 decimal)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def numeric_column(table: Table, name: str) -> np.ndarray | None:
    """Float values (NaN where missing) if the column is numeric, None if it is text.

    Raises DataError when the column looks numeric but holds text, inf or absurd magnitudes.
    """
    missing = table.missing(name)
    values = pd.to_numeric(table.number_text(name), errors="coerce")
    values = np.array(values.to_numpy(dtype=float, na_value=np.nan), dtype=float)
    present = ~missing
    ok = present & ~np.isnan(values)
    n_present = int(present.sum())
    if n_present == 0:
        return values
    bad = present & np.isnan(values)
    if bad.any():
        if ok.sum() / n_present > 0.5:
            _refuse_decimal_commas(table, name, bad)
            raise cell_error(table, name, bad, "the column looks numeric, so fix that value or "
                                               "empty the cell (rows with empty cells are dropped)")
        _refuse_decimal_commas(table, name, bad)
        return None
    values[missing] = np.nan
    extreme = np.isinf(values) | (np.abs(values) > MAX_ABS_VALUE)
    if extreme.any():
        raise cell_error(table, name, extreme, "values must be finite and below 1e100 in size, "
                                               "so fix it or empty that cell")
    return values


def cell_error(table: Table, name: str, mask: np.ndarray, fix: str) -> DataError:
    """A DataError naming the first cell of ``mask`` in column ``name``, its file line and fix."""
    i = int(np.argmax(mask))
    return DataError(f"{table.label}: column {name!r} holds {str(table.cells[name][i])[:40]!r} "
                     f"on line {table.lines[i]} (the header is line 1); {fix}.")


def _refuse_decimal_commas(table: Table, name: str, bad: np.ndarray) -> None:
    """DataError naming the decimal option when a column's unparsed cells are decimal commas."""
    if table.decimal == ",":
        return
    cells = table.cells[name][bad]
    commas = sum(bool(_DECIMAL_COMMA.match(str(c))) for c in cells)
    if commas and commas * 2 >= len(cells):
        comma = np.array([bool(_DECIMAL_COMMA.match(str(c))) for c in table.cells[name]])
        raise cell_error(table, name, comma, f"that is a number written with a decimal comma: "
                                             f"{DECIMAL_HINT}")


def _parse_list(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    raise DataError(f"{what}={value!r} must be a list of names or a comma-separated string.")


@dataclass
class FeatureBlock:
    """Numeric feature matrix built from table columns (text columns one-hot encoded)."""

    X: np.ndarray
    names: list[str]
    missing: np.ndarray
    one_hot: dict[str, list[str]]


def build_features(table: Table, columns: list[str]) -> FeatureBlock:
    """Numeric columns as they are; text columns one-hot (<= 20 categories) or refused."""
    blocks, names, one_hot = [], [], {}
    missing = np.zeros(table.n_rows, dtype=bool)
    for name in columns:
        values = numeric_column(table, name)
        miss = table.missing(name)
        missing |= miss
        if values is not None:
            blocks.append(values.reshape(-1, 1))
            names.append(name)
            continue
        cats = sorted({str(c) for c, m in zip(table.cells[name], miss, strict=True) if not m})
        if len(cats) > MAX_CATEGORIES:
            raise DataError(
                f"{table.label}: column {name!r} is text with {len(cats)} distinct values (more "
                f"than {MAX_CATEGORIES}), so it cannot be one-hot encoded; remove it from the "
                f"file or leave it out: {FEATURES_HINT}."
            )
        codes = np.array([str(c) for c in table.cells[name]], dtype=object)
        for cat in cats:
            blocks.append((codes == cat).astype(float).reshape(-1, 1))
            names.append(f"{name}={cat}")
        one_hot[name] = cats
    X = np.hstack(blocks) if blocks else np.zeros((table.n_rows, 0))
    return FeatureBlock(X, names, missing, one_hot)


def select_columns(
    table: Table, target: str | None, features: Any, exclude: tuple[str, ...] = ()
) -> tuple[str, list[str]]:
    """Resolve the target (default: last column) and the feature columns; DataError if absent."""
    available = ", ".join(repr(c) for c in table.columns)
    if target is None:
        candidates = [c for c in table.columns if c not in exclude]
        if not candidates:
            raise DataError(f"{table.label} has no column to predict; add a target column.")
        target = candidates[-1]
    target = str(target)
    if target not in table.columns:
        raise DataError(
            f"{table.label} has no target column {target!r}; available columns: {available}. "
            "Pass target=<one of them>."
        )
    wanted = _parse_list(features, "features")
    if wanted is None:
        cols = [c for c in table.columns if c != target and c not in exclude]
    else:
        absent = [c for c in wanted if c not in table.columns]
        if absent:
            raise DataError(
                f"{table.label} has no column(s) {', '.join(map(repr, absent))}; available "
                f"columns: {available}. Fix features=[...]."
            )
        cols = [c for c in wanted if c != target and c not in exclude]
    # Columns with no value at all carry nothing; drop them with a note.
    empty = [c for c in cols if table.missing(c).all()]
    if empty:
        table.notes.append(f"dropped empty column(s): {', '.join(empty)}")
        cols = [c for c in cols if c not in empty]
    if not cols:
        raise DataError(
            f"{table.label} has no numeric feature columns besides the target {target!r}; "
            "add at least one input column."
        )
    return target, cols


def drop_missing(table: Table, missing: np.ndarray) -> np.ndarray:
    """Row mask to keep; DataError when more than half the rows have missing values."""
    n_drop = int(missing.sum())
    if n_drop * 2 > table.n_rows:
        raise DataError(
            f"{table.label}: {n_drop} of {table.n_rows} rows have missing values (empty, NA, NaN, "
            "?); dropping them would lose more than half the data, so fill them in or remove "
            "the mostly empty columns."
        )
    if n_drop:
        table.notes.append(f"dropped {n_drop} of {table.n_rows} rows with missing values")
    return ~missing


def require_rows(table: Table, n: int, minimum: int, what: str = "rows") -> None:
    """DataError when fewer than `minimum` usable rows remain."""
    if n < minimum:
        raise DataError(
            f"{table.label} has too few usable {what} ({n}); at least {minimum} are needed "
            "for a train/test split, so add more rows."
        )


