"""One submission, graded by nbgrader in a scratch course of its own: the unit of parallel grading.

A :class:`Job` carries everything as bytes (config, source, gradebook, submission),
so it runs the same in a local worker process or on a Dask worker on another
machine. :func:`run_job` autogrades it with nbgrader's own API in the worker and
returns an :class:`Outcome` (scores per grade cell, the autograded files) that
:func:`merge` writes into the course's one gradebook, from one process only:
SQLite is never written concurrently.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course.notebooks import EXPERIMENT_TAG
from course.sandbox import Limits

REVIEW_FILE = "course_review.json"  # written beside the autograded notebook


@dataclass
class Job:
    assignment: str
    student: str
    config: bytes                       # nbgrader_config.py
    source: dict[str, bytes]            # source/<assignment>/ files by relative path
    gradebook: bytes                    # gradebook.db that knows the assignment's cells
    submission: dict[str, bytes]        # submitted/<student>/<assignment>/ files by relative path
    skip_experiments: bool = True       # drop cells tagged "experiment": no graded cell depends on them
    hide: list[str] = field(default_factory=list)  # folders the student's kernel must not see
    trusted: bool = True                # re-run the test cells outside the student's kernel (course.trusted)


@dataclass
class Outcome:
    student: str
    ok: bool
    problem: str = ""
    timestamp: str | None = None
    grades: dict[str, float | None] = field(default_factory=dict)   # grade cell id -> auto score
    comments: dict[str, str | None] = field(default_factory=dict)   # solution cell id -> auto comment
    notebook: str = ""                                              # notebook name (no .ipynb)
    autograded: dict[str, bytes] = field(default_factory=dict)      # autograded/<student>/<assignment>/ files
    seconds: float = 0.0
    log: str = ""
    trusted: dict[str, str] = field(default_factory=dict)  # grade cell id -> trusted run's reason ("" = pass)
    overridden: list[str] = field(default_factory=list)    # cells the kernel passed and the trusted run failed
    copies: list[str] = field(default_factory=list)         # exercises that copy the library's reference


def read_tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def write_tree(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@contextmanager
def quiet_nbgrader():
    """nbgrader's own SQLAlchemy usage warns on every submission (SAWarning, a RuntimeWarning): silence it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def make_job(root: Path, assignment: str, student: str, skip_experiments: bool = True, trusted: bool = True) -> Job:
    hide = [str(root / d) for d in ("submitted", "autograded", "feedback", "source", "downloaded", "exchange",
                                     "gradebook.db", "grades.csv") if (root / d).exists()]
    return Job(assignment, student, (root / "nbgrader_config.py").read_bytes(),
               read_tree(root / "source" / assignment), (root / "gradebook.db").read_bytes(),
               read_tree(root / "submitted" / student / assignment), skip_experiments, hide, trusted)


def prepare_submission(path: Path, skip_experiments: bool) -> None:
    """The scratch copy nbgrader grades: experiment cells dropped (optionally), duplicated grade cells dropped.

    nbgrader 0.9.6 crashes on a notebook holding two cells with one grade id (a pasted copy of a
    test cell); the first copy is kept, so a duplicate can neither earn points nor stop the grading.
    """
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # an unreadable notebook is graded (and explained) as it is
        return
    seen: set[str] = set()
    cells = []
    for cell in nb.cells:
        if skip_experiments and EXPERIMENT_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid and gid in seen:
            continue
        seen.add(gid) if gid else None
        cells.append(cell)
    nb.cells = cells
    nbformat.write(nb, path)


def run_job(job: Job, limits: Limits | None = None) -> Outcome:
    """Autograde one submission in a scratch course; the student's kernel runs in the sandbox.

    nbgrader itself runs here (trusted) and is the only writer of the scratch gradebook. The
    kernel (``course.kernel_sandbox``) can write only its own folder, sees no gradebook, source
    or other submission, has no network, and has memory, process and wall-clock limits: hangs,
    memory bombs, fork bombs and crashes become a plain reason for this one student.
    """
    limits = limits or Limits()
    start = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix=f"grade-{job.student}-"))
    try:
        with quiet_nbgrader(), _sandbox_env(scratch, job, limits):
            outcome = _autograde_in(scratch, job, limits)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    outcome.seconds = time.perf_counter() - start
    return outcome


@contextmanager
def _sandbox_env(scratch: Path, job: Job, limits: Limits):
    """Environment read by the sandboxed kernel launcher (and restored afterwards)."""
    from course.kernel_sandbox import kernel_spec

    course = scratch / "course"
    work = course / "autograded" / job.student / job.assignment
    for folder in (scratch / "ipc", scratch / "runtime", work):
        folder.mkdir(parents=True, exist_ok=True)
    values = {
        "JUPYTER_PATH": str(kernel_spec(scratch / "jupyter")),
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
        "COURSE_SANDBOX_DIR": str(work),
        "COURSE_SANDBOX_IPC": str(scratch / "ipc"),
        "COURSE_SANDBOX_HIDE": os.pathsep.join([str(course), *job.hide]),
        "COURSE_SANDBOX_WALL": str(limits.wall_seconds),
        "COURSE_SANDBOX_MEMORY": str(limits.memory_bytes),
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _autograde_in(scratch: Path, job: Job, limits: Limits) -> Outcome:
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    course = scratch / "course"
    (course / "nbgrader_config.py").write_bytes(job.config)
    (course / "gradebook.db").write_bytes(job.gradebook)
    write_tree(course / "source" / job.assignment, job.source)
    sub = course / "submitted" / job.student / job.assignment
    write_tree(sub, job.submission)
    for nb_path in sub.glob("*.ipynb"):
        prepare_submission(nb_path, job.skip_experiments)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    config.Execute.timeout = int(limits.cell_seconds)
    config.Execute.kernel_name = "course-sandbox"
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(scratch / "ipc" / "kernel")
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    result = api.autograde(job.assignment, job.student, force=True, create=True)
    outcome = Outcome(job.student, bool(result.get("success")), log=(result.get("log") or "")[-20000:])
    if not outcome.ok:
        outcome.problem = _last_error(result)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        try:
            submission = gb.find_submission(job.assignment, job.student)
        except MissingEntry:
            outcome.ok = False
            outcome.problem = outcome.problem or "nbgrader recorded no submission"
            return outcome
        outcome.timestamp = submission.timestamp.isoformat() if submission.timestamp else None
        for nb in submission.notebooks:
            outcome.notebook = nb.name
            outcome.grades = {g.name: g.auto_score for g in nb.grades}
            outcome.comments = {c.name: c.auto_comment for c in nb.comments}
    autograded = course / "autograded" / job.student / job.assignment
    if outcome.ok and job.trusted:
        _apply_trusted_run(course, sub, autograded, job, outcome, limits)
    outcome.autograded = read_tree(autograded) if autograded.is_dir() else {}
    if outcome.ok and not outcome.autograded:
        outcome.ok, outcome.problem = False, "nbgrader wrote no autograded notebook"
    return outcome


def _apply_trusted_run(course: Path, sub: Path, autograded: Path, job: Job, outcome: Outcome,
                       limits: Limits) -> None:
    """Re-run the test cells outside the student's kernel; a cell keeps its points only if both runs pass.

    The student's kernel can fake a pass (patching numpy or the test helpers); it cannot fake the
    trusted run. Where the two disagree, the trusted reason goes into the graded notebook.
    """
    from course.trusted import trusted_run

    name = f"{outcome.notebook}.ipynb"
    source_nb = nbformat.read(course / "source" / job.assignment / name, as_version=4)
    submitted_nb = nbformat.read(sub / name, as_version=4)
    verdicts = trusted_run(source_nb, submitted_nb, limits, hide=job.hide)
    outcome.trusted = verdicts
    graded_path = autograded / name
    graded = nbformat.read(graded_path, as_version=4) if graded_path.exists() else None
    for gid, reason in verdicts.items():
        if not reason or gid not in outcome.grades:
            continue
        if outcome.grades[gid]:
            outcome.grades[gid] = 0.0
            outcome.overridden.append(gid)
            if graded is not None:
                for cell in graded.cells:
                    if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid:
                        cell.outputs = [o for o in cell.get("outputs", []) if o.get("output_type") != "error"]
                        cell.outputs.append(nbformat.v4.new_output(
                            "error", ename="Mistake", evalue=f"{reason} (found by the trusted re-run of the tests)",
                            traceback=[reason]))
    if graded is not None and outcome.overridden:
        graded_path.chmod(0o644)
        nbformat.write(graded, graded_path)
    from course.similarity import copied_exercises

    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in submitted_nb.cells
               if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    outcome.copies = copied_exercises(answers)
    (autograded / REVIEW_FILE).write_text(json.dumps({"overridden": outcome.overridden, "copies": outcome.copies}))


def _last_error(result: dict) -> str:
    text = (result.get("error") or "") + "\n" + (result.get("log") or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for marker in ("Kernel died", "DeadKernelError", "CellTimeoutError", "Error", "error"):
        hits = [ln for ln in lines if marker in ln]
        if hits:
            return "nbgrader could not grade it: " + hits[-1][:300]
    return "nbgrader could not grade it"


def merge(root: Path, assignment: str, outcome: Outcome) -> None:
    """Write one outcome into the course's gradebook and ``autograded/`` (call from one process only)."""
    from datetime import datetime

    from nbgrader.api import Gradebook

    dest = root / "autograded" / outcome.student / assignment
    if dest.exists():
        shutil.rmtree(dest)
    if not outcome.ok:
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
            gb.update_or_create_student(outcome.student)
        return
    write_tree(dest, outcome.autograded)
    with quiet_nbgrader(), Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        gb.update_or_create_student(outcome.student)
        ts = datetime.fromisoformat(outcome.timestamp) if outcome.timestamp else None
        gb.update_or_create_submission(assignment, outcome.student, timestamp=ts)
        for grade_id, score in outcome.grades.items():
            grade = gb.find_grade(grade_id, outcome.notebook, assignment, outcome.student)
            grade.auto_score = score
            grade.needs_manual_grade = grade.manual_score is not None or score is None
        for cell_id, text in outcome.comments.items():
            gb.find_comment(cell_id, outcome.notebook, assignment, outcome.student).auto_comment = text
        gb.db.commit()


def run_jobs(jobs: list[Job], *, workers: int = 1, scheduler: str | None = None, progress: bool = True,
             limits: Limits | None = None):
    """Yield the outcome of every job as it finishes: here, in ``workers`` local processes, or on Dask.

    ``scheduler`` is a Dask scheduler address (``tcp://host:8786``); its workers need this course's
    packages installed. Progress (with an ETA) is shown with tqdm.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="autograde", unit="submission", disable=not progress or not jobs)
    try:
        if scheduler:
            from distributed import Client, as_completed

            with Client(scheduler, timeout="30s") as client:
                futures = client.map(run_job, jobs, limits=limits, pure=False,
                                     key=[f"grade-{j.student}" for j in jobs])
                for future in as_completed(futures):
                    bar.update()
                    yield future.result()
        elif workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                outcome = run_job(job, limits)
                bar.update()
                yield outcome
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed as done

            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                for future in done([pool.submit(run_job, job, limits) for job in jobs]):
                    bar.update()
                    yield future.result()
    finally:
        bar.close()

