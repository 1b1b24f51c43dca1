"""The trusted re-run of a submission's test cells (see ``course.remote``).

The test cells (from ``source/``, hidden tests included) run here, in the grader's own
process, against proxies of the functions the student defined; the student's code runs
in a sandboxed process that cannot see the course library, the gradebook or the tests.
Monkeypatching numpy, the test helpers or builtins, lying ``__eq__``/``__array__``,
redefining the tests' helpers, editing test cells and calling the library's reference
all stay inside the student's process, where they decide nothing.

The protocol (``course.remote``) lets the student's process call only what a test handed it
(a function, a random generator's sampling methods) with plain data, and rebuild PyTorch's tensors,
modules, optimizers and loaders from their descriptions (``course.torch_wire``). Every grade cell is
re-run here: a test that hands over anything else gets 0 with a reason (no cell is left to the
student's kernel alone, whose word a notebook can fake).

The whole re-run has one deadline (the submission's remaining time); each cell also has the
per-cell limit. At the deadline the student's process is killed and the cells not run get 0
with that reason.
"""

from __future__ import annotations

import builtins
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

TORCH_WIRE = Path(__file__).with_name("torch_wire.py")  # runs in the student's process too (torch, NumPy only)
CALL_LOG = Path(__file__).with_name("call_log.py")  # torch_wire's hook, imported beside it there


def _deadline_reason(seconds: float, during: bool = False) -> str:
    return (("stopped" if during else "not run") + ": the trusted re-run of the tests reached this submission's time "
            f"limit ({seconds:g} s for the whole notebook, the run in your kernel included); your code is far too slow "
            "somewhere, or waits")


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

    def __init__(self, cells: list[list[str]], limits: sandbox.Limits, hide: list[str], deadline: float):
        self.dir = Path(tempfile.mkdtemp(prefix="student-"))
        (self.dir / "cells.json").write_text(json.dumps(cells))
        shutil.copy2(remote.__file__, self.dir / "student_server.py")  # runs without the course packages
        shutil.copy2(TORCH_WIRE, self.dir / "torch_wire.py")  # imported there only when a torch object crosses
        shutil.copy2(CALL_LOG, self.dir / "call_log.py")
        hidden = [str(Path(nnlab.__file__).parent), str(Path(course.__file__).parent), *hide]
        self.log = open(self.dir / "stderr.log", "wb")
        self.proc = sandbox.popen([sys.executable, str(self.dir / "student_server.py"), str(self.dir / "cells.json")],
                                  writable=self.dir, hide=hidden, limits=limits, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.log, bufsize=0)
        try:
            self.peer = remote.Peer(self.proc.stdout, self.proc.stdin, strict=True)
            self.peer.deadline = min(time.monotonic() + limits.cell_seconds, deadline)
            names, self.problems = self.peer.receive_ready()
            # never a built-in's name: a test cell's own `len(...)` or `abs(...)` must stay the real one
            self.names = {k: v for k, v in names.items() if not hasattr(builtins, k)}
        except BaseException:
            self.close()
            raise
        self.peer.deadline = None

    def close(self) -> None:
        sandbox.kill(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def trusted_run(source_nb: nbformat.NotebookNode, submitted_nb: nbformat.NotebookNode,
                limits: sandbox.Limits, hide: list[str] = (), deadline: float | None = None) -> dict[str, str]:
    """Every grade cell's outcome: ``""`` for a pass, else the reason (no test code in it).

    ``deadline`` (``time.monotonic()``) bounds the whole re-run; by default ``limits.wall_seconds`` from now,
    less a margin (at most 5 s) so that a caller's own timer for the stage finds the verdicts made.
    """
    if deadline is None:
        deadline = time.monotonic() + limits.wall_seconds - min(5.0, 0.1 * limits.wall_seconds)
    cells = student_cells(source_nb, submitted_nb)
    trusted: dict = {"__name__": "__main__"}
    for c in source_nb.cells:
        if c.cell_type == "code" and nbgrader_meta(c).get("locked") and not is_grade(c):
            exec(compile(python_source(c.source), "<setup>", "exec"), trusted)  # noqa: S102 - our own source
    outcomes: dict[str, str] = {}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        _run_cells(source_nb, cells, trusted, outcomes, limits, hide, deadline)
    return outcomes


def _run_cells(source_nb, cells, trusted, outcomes, limits, hide, deadline: float) -> None:
    student: StudentProcess | None = None
    start_failure = ""
    total = limits.wall_seconds
    try:
        for cell in grade_cells(source_nb):
            gid = grade_id(cell)
            if start_failure:  # the student's code never finished loading: no point in retrying per cell
                outcomes[gid] = start_failure
                continue
            if time.monotonic() >= deadline:
                outcomes[gid] = _deadline_reason(total)
                continue
            try:
                if student is None:
                    try:
                        student = StudentProcess(cells, limits, list(hide), deadline)
                    except remote.ProtocolError as exc:
                        start_failure = f"your notebook's code did not finish loading: {exc}"
                        if time.monotonic() >= deadline:
                            start_failure = _deadline_reason(total)
                        raise remote.ProtocolError(start_failure) from None
                namespace = {**student.names, **trusted}  # the course's names always win
                student.peer.deadline = min(time.monotonic() + limits.cell_seconds, deadline)
                student.peer.new_budget()
                exec(compile(python_source(cell.source), f"<test {gid}>", "exec"), namespace)  # noqa: S102
                outcomes[gid] = ""
            except remote.ProtocolError as exc:
                outcomes[gid] = str(exc)
                if time.monotonic() >= deadline and "time limit" in str(exc):
                    outcomes[gid] = _deadline_reason(total, during=True)
                if student is not None:
                    student.close()
                    student = None
            except Exception as exc:
                outcomes[gid] = f"{type(exc).__name__}: {exc}"
                if student is not None and student.peer.cannot_cross:
                    outcomes[gid] = (f"not graded: this test passes a {student.peer.cannot_cross} to your code, which "
                                     "the trusted re-run cannot do, and no cell is graded by your kernel alone "
                                     "(instructor: pass objects that course.remote can send)")
                if student is not None and student.problems and "NameError" in outcomes[gid]:
                    outcomes[gid] += " (" + "; ".join(student.problems[:2]) + ")"
            finally:
                if student is not None:
                    student.peer.deadline = None
                    student.peer.cannot_cross = ""
                    if student.peer.broken:  # it hung, crashed or broke the protocol: a fresh process next
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
