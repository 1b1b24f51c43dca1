"""The trusted re-run of a submission's test cells (see ``course.remote``).

The test cells (from ``source/``, hidden tests included) run here, in the grader's own
process, against proxies of the functions the student defined; the student's code runs
in a sandboxed process that cannot see the course library, the gradebook or the tests.
Monkeypatching numpy, the test helpers or builtins, lying ``__eq__``/``__array__``,
redefining the tests' helpers, editing test cells and calling the library's reference
all stay inside the student's process, where they decide nothing.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import nbformat

import course
import nnlab
from course import remote, sandbox
from course.inprocess import python_source
from course.notebooks import EXPERIMENT_TAG, grade_cells, grade_id, is_grade, nbgrader_meta


def student_cells(source_nb: nbformat.NotebookNode, submitted_nb: nbformat.NotebookNode) -> list[list[str]]:
    """What runs in the student's process: the setup cell (from source), then the student's own code cells."""
    setup = [["setup", c.source] for c in source_nb.cells
             if c.cell_type == "code" and nbgrader_meta(c).get("locked") and not is_grade(c)]
    mine = [["student", c.source] for c in submitted_nb.cells
            if c.cell_type == "code" and not is_grade(c) and not nbgrader_meta(c).get("locked")
            and EXPERIMENT_TAG not in c.get("metadata", {}).get("tags", [])]
    return setup + mine


class StudentProcess:
    """The sandboxed student's process and the proxies of what it defined."""

    def __init__(self, cells: list[list[str]], limits: sandbox.Limits, hide: list[str]):
        self.dir = Path(tempfile.mkdtemp(prefix="student-"))
        (self.dir / "cells.json").write_text(json.dumps(cells))
        shutil.copy2(remote.__file__, self.dir / "student_server.py")  # runs without the course packages
        hidden = [str(Path(nnlab.__file__).parent), str(Path(course.__file__).parent), *hide]
        self.log = open(self.dir / "stderr.log", "wb")
        self.proc = sandbox.popen([sys.executable, str(self.dir / "student_server.py"), str(self.dir / "cells.json")],
                                  writable=self.dir, hide=hidden, limits=limits, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.log, bufsize=0)
        self.peer = remote.Peer(self.proc.stdout, self.proc.stdin)
        self.peer.deadline = time.monotonic() + limits.cell_seconds
        try:
            ready = self.peer.recv()
            if ready.get("op") != "ready":
                raise remote.ProtocolError("the student's process did not start")
        except BaseException:
            self.close()
            raise
        self.peer.deadline = None
        self.names = {k: self.peer.decode(v) for k, v in ready.get("names", {}).items()}
        self.problems = ready.get("problems", [])

    def close(self) -> None:
        sandbox.kill(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def trusted_run(source_nb: nbformat.NotebookNode, submitted_nb: nbformat.NotebookNode,
                limits: sandbox.Limits, hide: list[str] = ()) -> dict[str, str]:
    """Every grade cell's outcome: ``""`` for a pass, else the reason (no test code in it)."""
    cells = student_cells(source_nb, submitted_nb)
    trusted: dict = {"__name__": "__main__"}
    for c in source_nb.cells:
        if c.cell_type == "code" and nbgrader_meta(c).get("locked") and not is_grade(c):
            exec(compile(python_source(c.source), "<setup>", "exec"), trusted)  # noqa: S102 - our own source
    outcomes: dict[str, str] = {}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        _run_cells(source_nb, cells, trusted, outcomes, limits, hide)
    return outcomes


def _run_cells(source_nb, cells, trusted, outcomes, limits, hide) -> None:
    student: StudentProcess | None = None
    start_failure = ""
    try:
        for cell in grade_cells(source_nb):
            gid = grade_id(cell)
            if start_failure:  # the student's code never finished loading: no point in retrying per cell
                outcomes[gid] = start_failure
                continue
            try:
                if student is None:
                    try:
                        student = StudentProcess(cells, limits, list(hide))
                    except remote.ProtocolError as exc:
                        start_failure = f"your notebook's code did not finish loading: {exc}"
                        raise remote.ProtocolError(start_failure) from None
                namespace = {**student.names, **trusted}  # the course's names always win
                student.peer.deadline = time.monotonic() + limits.cell_seconds
                exec(compile(python_source(cell.source), f"<test {gid}>", "exec"), namespace)  # noqa: S102
                outcomes[gid] = ""
            except remote.ProtocolError as exc:
                outcomes[gid] = str(exc)
                if student is not None:
                    student.close()
                    student = None
            except Exception as exc:
                outcomes[gid] = f"{type(exc).__name__}: {exc}"
                if student is not None and student.problems and "NameError" in outcomes[gid]:
                    outcomes[gid] += " (" + "; ".join(student.problems[:2]) + ")"
            finally:
                if student is not None:
                    student.peer.deadline = None
                    if student.peer.broken:  # it hung or crashed: the next cell gets a fresh process
                        student.close()
                        student = None
    finally:
        if student is not None:
            student.close()


def submission_with(source_nb: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    """A submitted notebook: the source's solutions, except the exercises given in ``answers``."""
    from course.notebooks import BEGIN_SOLUTION, END_SOLUTION, is_solution, strip_markers

    nb = nbformat.reads(nbformat.writes(source_nb), as_version=4)
    for cell in nb.cells:
        if is_solution(cell):
            cell.source = answers.get(grade_id(cell), strip_markers(cell.source, BEGIN_SOLUTION, END_SOLUTION))
    return nb
