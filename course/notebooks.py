"""Reading notebooks and the transformations between source, release and solutions.

Cell roles follow nbgrader's metadata: a *solution* cell holds an exercise
(``### BEGIN SOLUTION`` ... ``### END SOLUTION``), a *grade* cell holds tests
(visible tests, and hidden ones between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS``). Grade ids name the exercise: ``test_<exercise>`` for
the visible tests, ``hidden_<exercise>`` for the hidden ones.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
from nbformat import NotebookNode

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
EXPERIMENT_TAG = "experiment"  # cells tagged so are skipped by autograding: no graded cell depends on them
HIDDEN_PLACEHOLDER = "# (hidden tests run here when your notebook is graded; `course check` runs them for you)"


class NotebookError(ValueError):
    """A file that cannot be used as a notebook; the message says why and what to do."""


def read_notebook(path: Path) -> NotebookNode:
    """Read and validate a notebook, or raise :class:`NotebookError` with a plain reason."""
    path = Path(path)
    if not path.exists():
        raise NotebookError(f"{path.name}: file not found")
    raw = path.read_bytes()
    if not raw.strip():
        raise NotebookError(f"{path.name}: the file is empty (0 cells); re-download the release notebook")
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    except UnicodeDecodeError:
        raise NotebookError(f"{path.name}: not a text file (not UTF-8), so not a notebook") from None
    except Exception as exc:  # nbformat raises several JSON/format errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotebookError(
            f"{path.name}: not a valid notebook (the JSON is broken: {first}). "
            "It was probably edited outside Jupyter or truncated; open a backup or re-download the release."
        ) from None
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        raise NotebookError(f"{path.name}: not a valid notebook ({exc.message})") from None
    return nb


def nbgrader_meta(cell: NotebookNode) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_grade(cell: NotebookNode) -> bool:
    return bool(nbgrader_meta(cell).get("grade"))


def is_solution(cell: NotebookNode) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def grade_id(cell: NotebookNode) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def exercise_of(grade_cell_id: str) -> str:
    """``test_affine_backward`` and ``hidden_affine_backward`` -> ``affine_backward``."""
    return re.sub(r"^(test|hidden)_", "", grade_cell_id)


def grade_cells(nb: NotebookNode) -> list[NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code" and is_grade(c)]


def remove_region(source: str, begin: str, end: str, placeholder: str | None = None) -> str:
    """Drop the lines from ``begin`` to ``end`` (markers included), optionally leaving a placeholder line."""
    out, inside = [], False
    for line in source.split("\n"):
        if begin in line:
            inside = True
            if placeholder is not None:
                indent = line[: len(line) - len(line.lstrip())]
                out.append(indent + placeholder)
        elif end in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def strip_markers(source: str, begin: str, end: str) -> str:
    """Keep the code between the markers, drop the marker lines."""
    return "\n".join(line for line in source.split("\n") if begin not in line and end not in line)


def hide_hidden_tests(source: str) -> str:
    """The source of a test cell as a student may see it."""
    return remove_region(source, BEGIN_HIDDEN, END_HIDDEN, HIDDEN_PLACEHOLDER).rstrip("\n")


def solution_notebook(source_nb: NotebookNode) -> NotebookNode:
    """The readable solution: solutions in place without markers, hidden tests removed, outputs cleared.

    nbgrader metadata is dropped, so a solution notebook can never be mistaken for a release.
    """
    nb = copy.deepcopy(source_nb)
    for cell in nb.cells:
        cell.source = hide_hidden_tests(strip_markers(cell.source, BEGIN_SOLUTION, END_SOLUTION))
        cell.metadata.pop("nbgrader", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("celltoolbar", None)
    return nb


def region_lines(source_nb: NotebookNode, begin: str, end: str, skip_comments: bool = False) -> list[str]:
    """The non-blank lines (stripped) inside every ``begin`` ... ``end`` region of a notebook."""
    lines, inside = [], False
    for cell in source_nb.cells:
        for line in cell.source.split("\n"):
            if begin in line:
                inside = True
            elif end in line:
                inside = False
            elif inside and line.strip() and not (skip_comments and line.strip().startswith("#")):
                lines.append(line.strip())
    return lines


def hidden_test_code(source_nb: NotebookNode) -> list[str]:
    """The lines of every hidden-test region (what must never leak)."""
    return region_lines(source_nb, BEGIN_HIDDEN, END_HIDDEN)


def solution_code(source_nb: NotebookNode) -> list[str]:
    """The code lines (comments left out) of every solution region."""
    return region_lines(source_nb, BEGIN_SOLUTION, END_SOLUTION, skip_comments=True)


def reference_answers(source_nb: NotebookNode) -> dict[str, str]:
    """Each exercise's reference solution: solution cell's grade id -> its code without the markers."""
    return {grade_id(c): strip_markers(c.source, BEGIN_SOLUTION, END_SOLUTION) for c in source_nb.cells
            if is_solution(c)}


def strip_outputs(nb: NotebookNode) -> NotebookNode:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb
