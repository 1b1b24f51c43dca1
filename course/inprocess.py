"""Run a notebook's test cells in this process, with chosen answers: the fast mistake catalog.

The same cells nbgrader grades (visible and hidden tests, from ``source/``) run
against the reference solutions of every exercise, except those replaced by the
code given in ``answers``. Experiments are not run. Used by ``tests/`` to prove
that each known mistake loses its exercise's points and that correct answers
written differently get full marks, in milliseconds instead of a kernel per case.
"""

from __future__ import annotations

import io
import warnings
from contextlib import redirect_stdout
from pathlib import Path

from course.notebooks import (BEGIN_SOLUTION, END_SOLUTION, grade_cells, grade_id, is_solution, nbgrader_meta,
                              read_notebook, strip_markers)


def python_source(source: str) -> str:
    """Drop IPython magics (``%matplotlib inline``), which plain ``exec`` cannot run."""
    return "\n".join(line for line in source.split("\n") if not line.lstrip().startswith(("%", "!")))


def run_test_cells(notebook: Path, answers: dict[str, str] | None = None) -> dict[str, str]:
    """Grade cells' outcomes: ``{grade_id: ""}`` for a pass, ``{grade_id: "Error: message"}`` for a fail.

    ``answers`` maps a solution cell's grade id (the exercise name) to the code that replaces it.
    """
    nb = read_notebook(Path(notebook))
    answers = answers or {}
    unknown = set(answers) - {grade_id(c) for c in nb.cells if is_solution(c)}
    if unknown:
        raise KeyError(f"no solution cell named {sorted(unknown)} in {Path(notebook).name}")
    namespace: dict = {"__name__": "__main__"}
    outcomes: dict[str, str] = {}
    with redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            meta = nbgrader_meta(cell)
            if is_solution(cell):
                code = answers.get(grade_id(cell), strip_markers(cell.source, BEGIN_SOLUTION, END_SOLUTION))
                _run(code, namespace)
            elif meta.get("grade"):
                try:
                    _run(cell.source, namespace)
                    outcomes[grade_id(cell)] = ""
                except Exception as exc:  # a failing test cell is an outcome, not an error here
                    outcomes[grade_id(cell)] = f"{type(exc).__name__}: {exc}"
            elif meta.get("locked"):  # setup cells (imports)
                _run(cell.source, namespace)
    missing = {grade_id(c) for c in grade_cells(nb)} - set(outcomes)
    assert not missing, missing
    return outcomes


def _run(source: str, namespace: dict) -> None:
    exec(compile(python_source(source), "<cell>", "exec"), namespace)  # noqa: S102 - running our own notebooks
