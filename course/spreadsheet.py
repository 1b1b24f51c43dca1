"""CSV files that a spreadsheet opens safely: no cell a student's text reaches can become a formula.

Excel, LibreOffice and Google Sheets evaluate a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and,
in some versions, a tab or carriage return) as a formula: an id or a name ``=HYPERLINK(...)`` in
``grades.csv`` would run when the instructor opens it (CSV injection, OWASP). Such a cell gets a leading
``'``, which spreadsheets show as text and hide. Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Iterable, Sequence

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def safe_cell(value) -> str:
    """The cell's text, with ``'`` in front when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START) and not _is_number(text.strip()):
        return "'" + text
    return text


def write_csv(path: Path, header: Sequence, rows: Iterable[Sequence]) -> Path:
    """Write a CSV whose every cell is safe to open in a spreadsheet."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([safe_cell(v) for v in header])
        w.writerows([safe_cell(v) for v in row] for row in rows)
    return path


def neutralize(path: Path) -> Path:
    """Rewrite a CSV written by another tool (nbgrader's ``export``) with every cell made safe."""
    path = Path(path)
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows([safe_cell(v) for v in row] for row in rows)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(buf.getvalue(), newline="")
    os.replace(tmp, path)
    return path
