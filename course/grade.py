"""Grade a class: collect submissions, autograde with nbgrader, feedback, CSV, and a report with reasons.

The course root is the nbgrader course root: submissions live in
``submitted/<student>/<assignment>/``, results in ``autograded/``, ``feedback/``,
``gradebook.db`` and ``grades.csv``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from course.build import build_release, source_notebook
from course.nbgrader_plugins import plain_error, printable
from course.jobs import REVIEW_FILE, Outcome, make_job, merge, run_jobs
from course.sandbox import Limits
from course.spreadsheet import neutralize
from course.nbgrader_run import run_nbgrader
from course.notebooks import (NotebookError, exercise_of, grade_cells, grade_id, is_grade, is_solution,
                              read_notebook)

from course.ingest import STUDENT_ID, STUDENT_ID_RULE, Intake, check_id, collect_folder, collect_zip  # noqa: F401


@dataclass
class CellResult:
    grade_id: str
    score: float
    max_score: float
    reason: str = ""

    @property
    def exercise(self) -> str:
        return exercise_of(self.grade_id)


@dataclass
class StudentResult:
    student_id: str
    max_score: float
    score: float = 0.0
    cells: list[CellResult] = field(default_factory=list)
    problem: str = ""  # why the submission could not be graded at all
    review: list[str] = field(default_factory=list)  # for the instructor: copies, tampering
    copies: list[str] = field(default_factory=list)  # exercises flagged as copies of the reference
    overridden: list[str] = field(default_factory=list)  # grade cells the trusted re-run failed

    def lost(self) -> list[CellResult]:
        return [c for c in self.cells if c.score < c.max_score]


def submitted_students(root: Path, assignment: str, roster: set[str] | None = None) -> Intake:
    """What is already in ``submitted/<student>/<assignment>/`` (put there by hand, or by ``course collect``).

    A folder whose name breaks the id rule (or is off the roster), or that is a link, is set aside with the
    reason: nothing downstream sees its id.
    """
    intake = Intake("submitted/")
    base = root / "submitted"
    if not base.is_dir():
        return intake
    for entry in sorted(os.scandir(base), key=lambda e: e.name):
        if entry.name.startswith("."):  # the gate's staging folders
            continue
        if not os.path.lexists(os.path.join(entry.path, assignment)):
            continue
        if entry.is_symlink() or os.path.islink(os.path.join(entry.path, assignment)):
            intake.aside(entry.name, "a link, not a folder (never followed)")
        elif why := check_id(entry.name, roster):
            intake.aside(entry.name, why)
        elif os.path.isdir(os.path.join(entry.path, assignment)):
            intake.students.append(entry.name)
    return intake


def validate_submission(root: Path, assignment: str, student: str) -> str:
    """Why this submission cannot be autograded, or ``""`` if it can."""
    expected = source_notebook(root, assignment).name
    folder = root / "submitted" / student / assignment
    path = folder / expected
    if path.is_symlink() or (path.exists() and not path.is_file()):
        return f"{expected} is a link or a special file, not a notebook."
    if not path.exists():
        found = sorted(p.name for p in folder.glob("*.ipynb"))
        return (f"no {expected} in the submission" + (f" (found {', '.join(found)}; rename it)" if found else "")
                + ".")
    try:
        nb = read_notebook(path)
    except NotebookError as exc:
        return str(exc)
    expected_ids = _exercise_ids(read_notebook(source_notebook(root, assignment)))
    found_ids = _exercise_ids(nb)
    if expected_ids and not expected_ids & found_ids:
        other = _which_assignment(root, found_ids)
        return (f"{expected} does not contain this assignment's exercises"
                + (f": it looks like the notebook of {other}" if other else "")
                + f". Submit the notebook from release/{assignment}/.")
    return ""


def _exercise_ids(nb) -> set[str]:
    """Grade ids of the solution and test cells (not the setup cell every notebook has)."""
    return {grade_id(c) for c in nb.cells if grade_id(c) and (is_grade(c) or is_solution(c))}


def _which_assignment(root: Path, ids: set[str]) -> str:
    from course.paths import assignments
    for name in assignments(root):
        src = _exercise_ids(read_notebook(source_notebook(root, name)))
        if ids & src:
            return name
    return ""


def autograde(root: Path, assignment: str, students: list[str], *, workers: int = 1,
              scheduler=None, progress: bool = True, limits: Limits | None = None,
              trusted: bool = True) -> dict[str, str]:
    """Validate, then autograde the given students with nbgrader; returns problems by student id.

    Each submission is graded in a scratch course of its own (``course.jobs``), in ``workers``
    processes or on a Dask cluster, and merged into ``gradebook.db`` by this process alone.
    Unreadable submissions never reach nbgrader; they are recorded with a score of 0.
    """
    bad = [sid for sid in students if check_id(sid)]
    if bad:  # only the ingest gate (course.ingest) puts students here; an id it refused never reaches nbgrader
        raise ValueError(f"refusing to grade {len(bad)} id(s) that break the id rule: "
                         + ", ".join(repr(b[:40]) for b in bad[:3]))
    ensure_gradebook(root, assignment)
    problems = {sid: validate_submission(root, assignment, sid) for sid in students}
    problems = {sid: why for sid, why in problems.items() if why}
    if progress and problems:
        print(f"Set aside, not graded ({len(problems)} of {len(students)}; each gets 0 and its reason in the report):")
        for sid, why in problems.items():
            print(f"  {_short(sid, 60)}: {_short(why, 160)}")
        print(f"Grading the other {len(students) - len(problems)}.", flush=True)
    jobs = [make_job(root, assignment, sid, trusted=trusted) for sid in students if sid not in problems]
    for outcome in run_jobs(jobs, workers=workers, scheduler=scheduler, progress=progress, limits=limits):
        try:
            merge(root, assignment, outcome)
        except Exception as exc:  # it names cells this gradebook lacks (a worker's reply): this student only
            outcome = Outcome(outcome.student, False, problem=f"not graded: its result could not be recorded "
                                                              f"({type(exc).__name__}: {exc})"[:400])
            merge(root, assignment, outcome)
        if not outcome.ok:
            problems[outcome.student] = outcome.problem
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for sid in problems:
            gb.update_or_create_student(sid)
            dest = root / "autograded" / sid / assignment
            if dest.exists():
                shutil.rmtree(dest)
    return problems


def ensure_gradebook(root: Path, assignment: str) -> None:
    """Autograding needs the assignment's cells in the gradebook: generate the release if they are missing."""
    if (root / "gradebook.db").exists():
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
            try:
                gb.find_assignment(assignment)
                return
            except MissingEntry:
                pass
    build_release(root, assignment)


def results(root: Path, assignment: str, students: list[str], problems: dict[str, str]) -> list[StudentResult]:
    """Scores from the gradebook, and for every lost point the reason taken from the graded notebook."""
    src = read_notebook(source_notebook(root, assignment))
    cells = [(grade_id(c), float(c.metadata["nbgrader"]["points"])) for c in grade_cells(src)]
    total = sum(p for _, p in cells)
    out = []
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for sid in students:
            res = StudentResult(sid, total)
            if sid in problems:
                res.problem = problems[sid]
                res.cells = [CellResult(g, 0.0, p, "not graded: " + problems[sid]) for g, p in cells]
                out.append(res)
                continue
            nb_name = source_notebook(root, assignment).stem
            reasons = _reasons(root / "autograded" / sid / assignment / f"{nb_name}.ipynb")
            for g, p in cells:
                grade = gb.find_grade(g, nb_name, assignment, sid)
                score = float(grade.score or 0.0)
                res.cells.append(CellResult(g, score, p, reasons.get(g, "") if score < p else ""))
            res.score = sum(c.score for c in res.cells)
            review = root / "autograded" / sid / assignment / REVIEW_FILE
            if review.exists():
                data = json.loads(review.read_text())
                res.copies, res.overridden = list(data.get("copies", [])), list(data.get("overridden", []))
                res.review = [f"{name} is a copy of the library's reference (it holds the reference's own text, or "
                              "all of its code with only names and statement order changed): review it"
                              for name in data.get("copies", [])]
                res.review += [f"{gid}: passed in the student's kernel but failed the trusted re-run "
                               "(the notebook may tamper with the tests)" for gid in data.get("overridden", [])]
            out.append(res)
    return out


def _reasons(path: Path) -> dict[str, str]:
    """The error message of each failing grade cell of an autograded notebook (no traceback, no code)."""
    try:
        nb = read_notebook(path)
    except NotebookError:
        return {}
    reasons = {}
    for cell in grade_cells(nb):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        stderr = [o for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr"]
        if errors:
            reasons[grade_id(cell)] = explain(errors[0])
        elif stderr:
            reasons[grade_id(cell)] = "the cell wrote to stderr: " + printable(_text(stderr[0].get("text", ""))[:2000]
                                                                             ).strip()[:200]
    return reasons


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def explain(error: dict) -> str:
    """A one-line reason for an error output, in a student's words (printable: no terminal control)."""
    name, value = printable(_text(error.get("ename", ""))[:200]), printable(_text(error.get("evalue", ""))[:2000])
    if name == "NotImplementedError":
        return "not done yet: the function still raises NotImplementedError"
    if name in ("CellTimeoutError", "KeyboardInterrupt"):
        return "the cell ran out of time (an infinite loop, or far too slow) and was stopped"
    if name == "NameError":
        return f"{value}: run the cell that defines it, or check its spelling"
    if name in ("Mistake", "AssertionError") and value:
        return value
    return plain_error({"ename": name, "evalue": value})


def feedback_and_export(root: Path, assignment: str) -> Path:
    """``nbgrader export`` -> ``grades.csv``.

    The feedback (nbgrader ``generate_feedback``, hidden tests removed) is written for each student by
    their grading job (``course.jobs``), inside the deadline of their submission.
    """
    run_nbgrader(root, "export", "--to", str(root / "grades.csv"), timeout=600)
    return neutralize(root / "grades.csv")  # names and ids never become spreadsheet formulas


def format_report(assignment: str, results_: list[StudentResult]) -> str:
    """A grade table, then for each student every lost point with its reason.

    Every text that comes from a submission (reasons, problems, review notes, ids) is made printable:
    a failure message cannot move the cursor, clear the screen or redraw the table.
    """
    from course.sandbox import describe_protections

    lines = [f"Grades for {assignment}", describe_protections(), "", f"{'student':<12} {'score':>11}  status"]
    for r in results_:
        status = "NOT GRADED" if r.problem else ("full marks" if not r.lost() else f"lost points in {len(r.lost())} test cells")
        lines.append(f"{printable(r.student_id):<12} {r.score:>5g} / {r.max_score:<4g}  {status}")
    flagged = [r for r in results_ if r.review]
    if flagged:
        lines += ["", "Flagged for review:"]
        lines += [f"  {printable(r.student_id)}: {_short(note, 1000)}" for r in flagged for note in r.review]
    for r in results_:
        if r.problem:
            lines += ["", f"{printable(r.student_id)}: not graded: {_short(r.problem, 1000)}"]
        elif r.lost():
            lines += ["", f"{printable(r.student_id)}: lost points on"]
            lines += [f"  - {c.grade_id} ({c.score:g}/{c.max_score:g}): {_short(c.reason)}" for c in r.lost()]
    return "\n".join(lines)


def _short(text: str, limit: int = 300) -> str:
    """One printable line of at most ``limit`` characters."""
    text = " ".join(printable(text[: 20 * limit]).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
