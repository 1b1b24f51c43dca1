"""A whole classroom on one machine: nbgrader's exchange in a folder, students in folders of their own.

nbgrader hands assignments out and submissions in through an *exchange*, a folder that the instructor
and every student can read and write (``<exchange>/<course_id>/outbound``, ``inbound``, ``feedback``).
On one machine it is a plain folder (the course's ``exchange/`` is git-ignored) and the flow is::

    instructor: generate_assignment -> release_assignment
    student:    fetch_assignment -> (work) -> submit
    instructor: course collect -> course grade (autograde and feedback) -> course release-feedback
    student:    fetch_feedback

The students' exchange commands and the release are nbgrader's own, run as subprocesses with the virtual
environment on ``PATH``; collecting and handing feedback back are the course's (``course collect``,
``course release-feedback``: the ingest gate of ``course.ingest``). Grading is the course's (``course.grade``, as ``course grade`` does): each student's kernel in
the sandbox and the tests re-run where the student cannot fake them. nbgrader's own ``autograde`` would run
the students' code as the instructor and believe whatever their kernel reports.
On one machine every student is the same Unix user, so a student's id cannot come from the login:
each student gets a working folder that is also their ``HOME`` and Jupyter folders (fetched assignments
and nbgrader's submission cache land there, never in the instructor's course) and passes
``--CourseDirectory.student_id``. Collection is told not to compare that id with the folders' owner
(``--no-check-owner``): on a real multi-user server it does, and a student can submit only as themselves.

``python -m course.classroom`` runs the whole flow on a scratch copy of the course with two fictional
students (one hands in the solution, one the untouched release) and prints their feedback scores.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat

from course.nbgrader_run import NbgraderError, nbgrader_env, run_nbgrader

COURSE_ID = "nn-training"  # as in nbgrader_config.py (CourseDirectory.course_id)
EXCHANGE_DIR = "exchange"  # <course root>/exchange, git-ignored

_FEEDBACK_SCORE = re.compile(r"\(Score: ([0-9.]+) / ([0-9.]+)\)")


def _check(proc: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise NbgraderError(f"`{what}` failed (exit {proc.returncode}):\n{tail}")
    return proc


@dataclass
class Classroom:
    """The instructor's side: the course root (holding ``nbgrader_config.py``) and the exchange folder."""

    root: Path
    exchange: Path | None = None  # default: <root>/exchange
    course_id: str = COURSE_ID
    timeout: float | None = 600

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.exchange = Path(self.exchange).resolve() if self.exchange else self.root / EXCHANGE_DIR

    def _settings(self) -> list[str]:
        return [f"--Exchange.root={self.exchange}", f"--CourseDirectory.course_id={self.course_id}"]

    def nbgrader(self, command: str, *args: str) -> subprocess.CompletedProcess:
        """``nbgrader COMMAND ARGS`` as the instructor, in the course root, with this exchange."""
        return run_nbgrader(self.root, command, *args, *self._settings(), timeout=self.timeout)

    def generate(self, assignment: str) -> None:
        """source/A -> release/A, and the assignment's cells recorded in the gradebook."""
        self.nbgrader("generate_assignment", assignment, "--force")

    def release(self, assignment: str) -> None:
        """release/A -> <exchange>/<course>/outbound/A (creates the exchange folder if needed)."""
        self.exchange.mkdir(parents=True, exist_ok=True)
        self.nbgrader("release_assignment", assignment, "--force")

    def course(self, command: str, *args: str) -> subprocess.CompletedProcess:
        """``course COMMAND ARGS`` in the course root, as the README's flow runs it."""
        cmd = [sys.executable, "-m", "course.cli", command, *args]
        proc = subprocess.run(cmd, cwd=self.root, env={**nbgrader_env(), "COURSE_ROOT": str(self.root)},
                              capture_output=True, text=True, timeout=self.timeout)
        return _check(proc, f"course {command} {' '.join(args)}")

    def collect(self, assignment: str) -> subprocess.CompletedProcess:
        """<exchange>/<course>/inbound -> submitted/<student>/A through the course's ingest gate (``course
        collect``; the latest whole submission of each student). On one machine every student is the same Unix
        user, so the owners cannot be checked: ``--no-check-owner``."""
        return self.course("collect", assignment, *self._exchange_options(), "--no-check-owner")

    def grade(self, assignment: str, *options: str) -> subprocess.CompletedProcess:
        """``course grade A`` (it refuses to grade where the sandbox is missing unless ``--allow-unprotected`` is
        among ``options``): autograded/, feedback/."""
        return self.course("grade", assignment, *options)

    def release_feedback(self, assignment: str) -> subprocess.CompletedProcess:
        """feedback/ -> <exchange>/<course>/feedback (``course release-feedback``: nbgrader's names)."""
        return self.course("release-feedback", assignment, *self._exchange_options())

    def _exchange_options(self) -> list[str]:
        return ["--exchange", str(self.exchange), "--course-id", self.course_id]

    def student(self, student_id: str, folder: Path) -> Student:
        return Student(student_id, Path(folder).resolve(), self)


@dataclass
class Student:
    """One student: an id and a working folder that is also their HOME (and Jupyter's folders)."""

    id: str
    folder: Path
    classroom: Classroom

    def env(self) -> dict[str, str]:
        env = nbgrader_env()
        env.update(
            HOME=str(self.folder),
            JUPYTER_CONFIG_DIR=str(self.folder / ".jupyter"),
            JUPYTER_DATA_DIR=str(self.folder / ".local" / "share" / "jupyter"),
            JUPYTER_RUNTIME_DIR=str(self.folder / ".local" / "share" / "jupyter" / "runtime"),
        )
        env.pop("COURSE_ROOT", None)
        return env

    def nbgrader(self, command: str, *args: str) -> subprocess.CompletedProcess:
        """``nbgrader COMMAND ARGS`` as this student, in their folder (not the course: no course config)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "nbgrader", command, *args,
               f"--Exchange.root={self.classroom.exchange}",
               f"--CourseDirectory.course_id={self.classroom.course_id}",
               f"--CourseDirectory.student_id={self.id}",
               f"--CourseDirectory.root={self.folder}"]
        proc = subprocess.run(cmd, cwd=self.folder, env=self.env(), capture_output=True, text=True,
                              timeout=self.classroom.timeout)
        return _check(proc, f"nbgrader {command} {' '.join(args)} (student {self.id})")

    def fetch(self, assignment: str) -> Path:
        """<exchange>/outbound/A -> <folder>/A; returns the fetched folder."""
        self.nbgrader("fetch_assignment", assignment)
        return self.folder / assignment

    def submit(self, assignment: str) -> None:
        """<folder>/A -> <exchange>/inbound/<id>+A+<timestamp>+<random>."""
        self.nbgrader("submit", assignment)

    def fetch_feedback(self, assignment: str) -> list[Path]:
        """<exchange>/feedback -> <folder>/A/feedback/<timestamp>/*.html; returns the HTML files."""
        self.nbgrader("fetch_feedback", assignment)
        return sorted((self.folder / assignment / "feedback").glob("*/*.html"))


_API_SCRIPT = """
import json, sys
from nbgrader.apps import NbGraderAPI
from nbgrader.apps.baseapp import NbGrader

args = json.loads(sys.argv[1])
app = NbGrader()
app.load_config_file()  # the course's nbgrader_config.py, in the current folder
config = app.config
config.CourseDirectory.root = args["root"]
config.Exchange.root = args["exchange"]
config.CourseDirectory.course_id = args["course_id"]
api = NbGraderAPI(config=config)
for step, names in (("generate_assignment", args["generate"]), ("release_assignment", args["release"])):
    for name in names:
        result = getattr(api, step)(name)
        if not result["success"]:
            sys.exit(f"{step} {name} failed:\\n{result.get('error', '')}\\n{result.get('log', '')}")
"""


def generate_and_release(room: Classroom, generate: list[str], release: list[str] = ()) -> None:
    """``generate_assignment`` for several assignments, then ``release_assignment``, in one nbgrader process.

    The same work as one ``nbgrader`` command per assignment (through ``NbGraderAPI``, what the formgrader's
    buttons call), without paying nbgrader's start-up for each: seconds instead of tens of seconds.
    """
    import json

    if release:
        room.exchange.mkdir(parents=True, exist_ok=True)
    payload = json.dumps({"root": str(room.root), "exchange": str(room.exchange), "course_id": room.course_id,
                          "generate": list(generate), "release": list(release)})
    proc = subprocess.run([sys.executable, "-c", _API_SCRIPT, payload], cwd=room.root, env=nbgrader_env(),
                          capture_output=True, text=True, timeout=room.timeout)
    _check(proc, f"nbgrader generate_assignment/release_assignment {' '.join(generate)}")


def feedback_score(html: Path | str) -> tuple[float, float]:
    """``(score, max_score)`` of a notebook, read from the title of nbgrader's feedback (a file, or its text)."""
    text = Path(html).read_text(encoding="utf-8") if isinstance(html, Path) else html
    found = _FEEDBACK_SCORE.search(text)
    if not found:
        raise ValueError(f"no '(Score: X / Y)' in the feedback {html if isinstance(html, Path) else ''}")
    return float(found.group(1)), float(found.group(2))


def fill_with_solution(notebook: Path, root: Path, assignment: str) -> None:
    """Answer every solution cell of a student's notebook with the source's solution (a correct student)."""
    from course.bench import filled_submission

    answered = filled_submission(root, assignment)
    nbformat.write(answered, notebook)


def run_flow(room: Classroom, assignment: str, folders: dict[str, Path], solved: set[str],
             edits: dict[str, Callable[[Path], None]] | None = None, grade_options: tuple[str, ...] = ()) -> dict[str, Path]:
    """The whole flow for one assignment; returns the feedback HTML each student fetched.

    ``folders`` maps each student id to their working folder; the students in ``solved`` answer every
    exercise with the source's solution, the others hand in the release untouched; ``edits[id]``, if
    given, then changes that student's notebook (its path) before they submit. ``grade_options`` go to
    ``course grade``.
    """
    room.generate(assignment)
    room.release(assignment)
    students = [room.student(sid, folder) for sid, folder in folders.items()]
    for student in students:
        fetched = student.fetch(assignment)
        if student.id in solved:
            fill_with_solution(fetched / f"{assignment}.ipynb", room.root, assignment)
        if student.id in (edits or {}):
            edits[student.id](fetched / f"{assignment}.ipynb")
        student.submit(assignment)
    room.collect(assignment)
    room.grade(assignment, *grade_options)
    room.release_feedback(assignment)
    feedback = {}
    for student in students:
        found = student.fetch_feedback(assignment)
        if not found:
            raise NbgraderError(f"{student.id} fetched no feedback for {assignment}")
        feedback[student.id] = found[-1]
    return feedback


def demo(workdir: Path, assignment: str = "00_gradient_checking", root: Path | None = None,
         grade_options: tuple[str, ...] = ()) -> dict[str, tuple[float, float]]:
    """The flow on a copy of the course in ``workdir``: ``ada`` hands in the solution, ``ben`` the release.

    Returns each student's ``(score, max_score)`` as shown in the feedback they fetched.
    """
    from course.paths import course_root

    source_root = root or course_root()
    course = workdir / "course"
    course.mkdir(parents=True)
    shutil.copy2(source_root / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(source_root / "source" / assignment, course / "source" / assignment)
    room = Classroom(course, workdir / EXCHANGE_DIR)
    folders = {sid: workdir / "students" / sid for sid in ("ada", "ben")}
    feedback = run_flow(room, assignment, folders, solved={"ada"}, grade_options=grade_options)
    return {sid: feedback_score(html) for sid, html in feedback.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.classroom", description=__doc__.split("\n\n")[0])
    parser.add_argument("assignment", nargs="?", default="00_gradient_checking")
    parser.add_argument("--keep", type=Path, help="work in this (new) folder and keep it, to look around")
    parser.add_argument("--allow-unprotected", action="store_true",
                        help="grade even where bubblewrap or root is missing (as `course grade --allow-unprotected`)")
    args = parser.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=False)
        workdir, cleanup = args.keep.resolve(), None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="course-classroom-")
        workdir = Path(cleanup.name)
    try:
        options = ("--allow-unprotected",) if args.allow_unprotected else ()
        for sid, (score, max_score) in demo(workdir, args.assignment, grade_options=options).items():
            where = f"  (feedback in {workdir}/students/{sid}/{args.assignment}/feedback/)" if args.keep else ""
            print(f"{sid}: {score:g} / {max_score:g}{where}")
    finally:
        if cleanup:
            cleanup.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
