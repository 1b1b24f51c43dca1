"""Self-check: a learner's notebook graded by the full tests (hidden ones included), in a scratch course.

The learner sees points and the reason for each failure, never the hidden tests' code.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path

from course.build import source_notebook
from course.grade import StudentResult, autograde, results
from course.nbgrader_run import run_nbgrader
from course.notebooks import NotebookError, read_notebook
from course.paths import assignments

STUDENT = "me"


def guess_assignment(root: Path, notebook: Path) -> str:
    """The assignment a notebook belongs to, from its file name or its folder's name."""
    names = assignments(root)
    for candidate in (notebook.stem, notebook.parent.name):
        if candidate in names:
            return candidate
    raise ValueError(f"Cannot tell which assignment {notebook.name} is. Pass --assignment, one of: {', '.join(names)}")


def self_check(root: Path, notebook: Path, assignment: str | None = None) -> StudentResult:
    """Grade ``notebook`` exactly as the instructor's autograder would, in a temporary course."""
    notebook = Path(notebook).resolve()
    assignment = assignment or guess_assignment(root, notebook)
    read_notebook(notebook)  # a broken file gets its plain reason before any work
    src = source_notebook(root, assignment)
    with tempfile.TemporaryDirectory(prefix="course-check-") as tmp:
        scratch = Path(tmp)
        shutil.copy2(root / "nbgrader_config.py", scratch / "nbgrader_config.py")
        shutil.copytree(src.parent, scratch / "source" / assignment)
        run_nbgrader(scratch, "generate_assignment", assignment, "--force")
        dest = scratch / "submitted" / STUDENT / assignment
        dest.mkdir(parents=True)
        shutil.copy2(notebook, dest / src.name)
        problems = autograde(scratch, assignment, [STUDENT])
        return results(scratch, assignment, [STUDENT], problems)[0]


def format_self_check(result: StudentResult, assignment: str) -> str:
    """Points per exercise (visible + hidden tests together) and the reason for each failure."""
    if result.problem:
        return f"Your notebook could not be graded: {result.problem}"
    per = OrderedDict()
    for cell in result.cells:
        got, total, reasons = per.get(cell.exercise, (0.0, 0.0, []))
        label = "visible tests" if cell.grade_id.startswith("test_") else "hidden tests"
        per[cell.exercise] = (got + cell.score, total + cell.max_score,
                              reasons + ([f"{label}: {cell.reason}"] if cell.score < cell.max_score else []))
    width = max(len(e) for e in per)
    lines = [f"Self-check of {assignment}: {result.score:g} / {result.max_score:g} points", ""]
    for exercise, (got, total, reasons) in per.items():
        mark = "ok  " if got == total else "FAIL"
        lines.append(f"  {mark} {exercise:<{width}}  {got:g}/{total:g}")
        lines += [f"         {' ' * width}  - {r}" for r in reasons]
    if result.score == result.max_score:
        lines += ["", "All tests pass, hidden ones included. Well done."]
    return "\n".join(lines)


__all__ = ["self_check", "format_self_check", "guess_assignment", "NotebookError"]
