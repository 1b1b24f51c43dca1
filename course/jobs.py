"""One submission, graded by nbgrader in a scratch course of its own: the unit of parallel grading.

A :class:`Job` carries everything as bytes (config, source, gradebook, submission),
so it runs the same in a local worker process or on a Dask worker on another
machine. :func:`run_job` autogrades it with nbgrader's own API and returns an
:class:`Outcome` (scores per grade cell, the autograded notebook, the feedback) that
:func:`merge` writes into the course's one gradebook, from one process only:
SQLite is never written concurrently.

Every job is its own failure domain (:func:`run_jobs`): it runs in a process of its own,
with a deadline for each stage (:data:`STAGES`) and one for the whole submission
(:func:`submission_deadline`), and a memory cap; an exception, a timeout or a memory
blow-up gives that student 0 with a reason, and the batch goes on. All the processes of a job
share one control group (``course.cgroups``: memory, processes and CPU share counted together),
and its scratch folder is a file system of its own, of a fixed size (``course.scratch``). On a Dask
cluster (:func:`grade_on_worker`, over TLS: ``course.dask_security``) each job has the same process of
its own, deadlines and cap. An outcome comes back as plain JSON (:meth:`Outcome.to_plain`), never
a pickle, and is checked on arrival (:meth:`Outcome.from_plain`).

The student's kernel works in a folder of its own, never in nbgrader's output folder;
nothing the student's code created is ever read back, and what is read back (nbgrader's
own output) is read with ``O_NOFOLLOW``, regular files only, sizes capped (:func:`read_tree`).
"""

from __future__ import annotations

import base64
import binascii
import errno
import itertools
import json
import math
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course import cgroups
from course import scratch as scratch_fs
from course.notebooks import EXPERIMENT_TAG
from course.sandbox import TMP_BYTES, Limits, missing_protections

REVIEW_FILE = "course_review.json"  # written by the grader beside the autograded notebook

MAX_FILE_BYTES = 32 * 1024 ** 2        # one file read back (a notebook with its outputs, a feedback page)
MAX_TREE_BYTES = 64 * 1024 ** 2        # all the files of one folder read back
MAX_TREE_FILES = 200
MAX_TREE_DEPTH = 8
MAX_ANSWER_CHARS = 20_000              # longer answers are not given to the copy detector
MAX_OUTCOME_BYTES = 3 * MAX_TREE_BYTES  # what a worker may send back to the batch's process
WORKER_MEMORY_BYTES = 4 * 1024 ** 3    # resident memory of a grading worker (nbgrader, trusted re-run)
WORKER_PROCESSES = 256                 # the grader's own processes and threads in a job's group
SCRATCH_RESERVE_BYTES = 64 * 1024 ** 2  # the grader's own files in a job's file system, beyond the copies it makes
# Seconds each stage may take beyond the limits the instructor sets (``Limits.wall_seconds``):
STAGES = {"setup": 30, "kernel (beyond --notebook-timeout)": 60, "copy detector": 10, "feedback": 60}


def submission_deadline(limits: Limits) -> float:
    """Bound on one submission's wall time: kernel, trusted re-run, copy detector and feedback together."""
    return 2 * limits.wall_seconds + sum(STAGES.values())


@dataclass
class Job:
    assignment: str
    student: str
    config: bytes                       # nbgrader_config.py
    source: dict[str, bytes]            # source/<assignment>/ files by relative path
    gradebook: bytes                    # gradebook.db that knows the assignment's cells
    submission: dict[str, bytes]        # submitted/<student>/<assignment>/ files by relative path
    skip_experiments: bool = True       # drop cells tagged "experiment": no graded cell depends on them
    hide: list[str] = field(default_factory=list)  # course folders (the sandbox shows only an allow-list anyway)
    trusted: bool = True                # re-run the test cells outside the student's kernel (course.trusted)
    skipped: list[str] = field(default_factory=list)  # submitted files left out (links, special files, too large)


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
    feedback: dict[str, bytes] = field(default_factory=dict)        # feedback/<student>/<assignment>/ files
    seconds: float = 0.0
    log: str = ""
    trusted: dict[str, str] = field(default_factory=dict)  # grade cell id -> trusted run's reason ("" = pass)
    overridden: list[str] = field(default_factory=list)    # cells the kernel passed and the trusted run failed
    copies: list[str] = field(default_factory=list)         # exercises that copy the library's reference
    peak_rss: int = 0                                       # the worker's peak resident memory (bytes)

    def to_plain(self) -> bytes:
        """This outcome as JSON (files as base64): what a grading process or a Dask worker sends back."""
        plain = {name: getattr(self, name) for name in _PLAIN_FIELDS}
        for name in ("autograded", "feedback"):
            plain[name] = {rel: base64.b64encode(data).decode("ascii") for rel, data in plain[name].items()}
        return json.dumps(plain, allow_nan=False, separators=(",", ":")).encode()

    @classmethod
    def from_plain(cls, data: object, student: str) -> Outcome:
        """Read what :meth:`to_plain` wrote, for ``student``; :class:`ValueError` for anything else.

        The sender is a process that ran the student's notebook (or a machine of the cluster), so
        nothing is trusted: bytes only, at most :data:`MAX_OUTCOME_BYTES`, JSON only (no pickle,
        no NaN), every field of its type, the student the job was for, file paths that stay in
        their folder. Never runs code and never raises anything but ``ValueError``.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"a {type(data).__name__} instead of bytes")
        if len(data) > MAX_OUTCOME_BYTES:
            raise ValueError(f"larger than {MAX_OUTCOME_BYTES // 1024 ** 2} MiB")
        try:
            plain = json.loads(bytes(data), parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise ValueError(f"not JSON ({type(exc).__name__})") from None
        if not isinstance(plain, dict) or not set(plain) <= set(_PLAIN_FIELDS) or "student" not in plain:
            raise ValueError("not an outcome")
        if plain["student"] != student:
            raise ValueError(f"an outcome for another student ({str(plain['student'])[:80]!r})")
        values = {}
        for name, check in _PLAIN_FIELDS.items():
            if name in plain:
                try:
                    values[name] = check(plain[name])
                except (TypeError, ValueError, binascii.Error) as exc:
                    raise ValueError(f"its {name} is not valid ({exc})"[:300]) from None
        return cls(**values)


# -- outcomes as plain data -------------------------------------------------------------------

def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a {type(value).__name__}, not a string")
    return value


def _opt_str(value: object) -> str | None:
    return None if value is None else _str(value)


def _timestamp(value: object) -> str | None:
    from datetime import datetime

    if value is not None:
        datetime.fromisoformat(_str(value))  # merge() parses it: a bad one must fail here, not there
    return value


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"a {type(value).__name__}, not true or false")
    return value


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or abs(value) > 1e300 or not math.isfinite(value):
        raise TypeError(f"{str(value)[:40]!r} is not a number")  # (an int past a float's range compares fine)
    return float(value)


def _opt_number(value: object) -> float | None:
    return None if value is None else _number(value)


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"{str(value)[:40]!r} is not a count")
    return value


def _mapping(check):
    def read(value: object) -> dict:
        if not isinstance(value, dict):
            raise TypeError(f"a {type(value).__name__}, not a mapping")
        return {_str(k): check(v) for k, v in value.items()}
    return read


def _strings(value: object) -> list[str]:
    if not isinstance(value, list):
        raise TypeError(f"a {type(value).__name__}, not a list")
    return [_str(v) for v in value]


def _files(value: object) -> dict[str, bytes]:
    """Files by relative path, as :func:`write_tree` can write them (nothing outside, no file in a file)."""
    files = _mapping(lambda v: base64.b64decode(_str(v), validate=True))(value)
    if len(files) > 2 * MAX_TREE_FILES:
        raise ValueError(f"more than {2 * MAX_TREE_FILES} files")
    folders = {str(parent) for rel in files for parent in Path(rel).parents}
    for rel in files:
        parts = Path(rel).parts
        if (not parts or Path(rel).is_absolute() or ".." in parts or "\0" in rel or str(Path(rel)) in folders
                or len(parts) > MAX_TREE_DEPTH + 1 or any(len(p.encode()) > 255 for p in parts)):
            raise ValueError(f"a file it cannot be given ({rel[:80]!r})")
    return files


_PLAIN_FIELDS = {
    "student": _str, "ok": _bool, "problem": _str, "timestamp": _timestamp,
    "grades": _mapping(_opt_number), "comments": _mapping(_opt_str), "notebook": _str,
    "autograded": _files, "feedback": _files, "seconds": _number, "log": _str,
    "trusted": _mapping(_str), "overridden": _strings, "copies": _strings, "peak_rss": _count,
}


# -- files ------------------------------------------------------------------------------------

def read_file(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """A regular file's bytes, never through a link, never blocking on a FIFO; ``OSError`` if not that or too big."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if info.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit // 1024 ** 2} MiB", str(path))
        from course.ingest import read_capped

        data = read_capped(lambda n: os.read(fd, n), limit)
        if data is None:
            raise OSError(errno.EFBIG, f"larger than {limit // 1024 ** 2} MiB", str(path))
        return data
    finally:
        os.close(fd)


def read_tree(folder: Path, skipped: list[str] | None = None, *, max_file: int = MAX_FILE_BYTES,
              max_total: int = MAX_TREE_BYTES) -> dict[str, bytes]:
    """The regular files under ``folder`` by relative path; links, FIFOs, devices and oversized files left out.

    Nothing is followed: every entry is ``lstat``-ed and opened with ``O_NOFOLLOW``. What is left out
    is listed in ``skipped`` (with the reason).
    """
    skipped = [] if skipped is None else skipped
    out: dict[str, bytes] = {}
    total = 0

    def walk(path: Path, rel: str, depth: int) -> None:
        nonlocal total
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as exc:
            skipped.append(f"{rel or '.'}: {exc.strerror}")
            return
        for entry in entries:
            name = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_symlink():
                skipped.append(f"{name}: a symbolic link")
            elif entry.is_dir(follow_symlinks=False):
                if depth >= MAX_TREE_DEPTH:
                    skipped.append(f"{name}: folders nested too deep")
                else:
                    walk(Path(entry.path), name, depth + 1)
            elif not entry.is_file(follow_symlinks=False):
                skipped.append(f"{name}: not a regular file")
            elif len(out) >= MAX_TREE_FILES:
                skipped.append(f"{name}: more than {MAX_TREE_FILES} files")
            else:
                try:
                    data = read_file(Path(entry.path), min(max_file, max_total - total))
                except OSError as exc:
                    skipped.append(f"{name}: {exc.strerror}")
                    continue
                out[name] = data
                total += len(data)

    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(f"{folder} is not a folder")
    walk(Path(folder), "", 0)
    return out


def write_tree(folder: Path, files: dict[str, bytes]) -> None:
    """Write files by relative path into ``folder`` (created by us); never through a link."""
    for rel, data in files.items():
        parts = Path(rel).parts
        if Path(rel).is_absolute() or ".." in parts or not parts:
            raise ValueError(f"refusing to write {rel!r}")
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(data)


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
    skipped: list[str] = []
    submission = read_tree(root / "submitted" / student / assignment, skipped)
    return Job(assignment, student, read_file(root / "nbgrader_config.py"), read_tree(root / "source" / assignment),
               read_file(root / "gradebook.db", 1024 ** 3), submission, skip_experiments, hide, trusted, skipped)


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


# -- deadlines --------------------------------------------------------------------------------

class StageTimeout(BaseException):
    """A grading stage ran past its deadline (a BaseException: test code catching Exception cannot swallow it)."""


@contextmanager
def deadline(seconds: float, stage: str):
    """Raise :class:`StageTimeout` in this (main) thread after ``seconds``; elsewhere the job's own deadline holds."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum, _frame):
        raise StageTimeout(f"{stage} ran out of time ({seconds:g} s)")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# -- one job ----------------------------------------------------------------------------------

def run_job(job: Job, limits: Limits | None = None, scratch: Path | None = None,
            own_file_system: bool = False) -> Outcome:
    """Autograde one submission in a scratch course; the student's kernel runs in the sandbox.

    nbgrader itself runs here (trusted) and is the only writer of the scratch course. The kernel
    (``course.kernel_sandbox``) works in a folder of its own that nothing reads back, sees no
    gradebook, source or other submission, has no network, and has memory, process and
    wall-clock limits: hangs, memory bombs, fork bombs and crashes become a plain reason for this
    one student. Any failure of the grading itself becomes a reason too.

    ``scratch`` is the (empty) folder to grade in, by default a new one. With ``own_file_system``
    (a job's own process, in a mount namespace of its own: :func:`_worker`), it becomes a file system
    of ``limits.disk_bytes`` (plus the grader's own files), which the trusted re-run's folder shares:
    a submission that fills it is not graded, with that reason, and no classmate is touched.
    """
    limits = limits or Limits()
    start = time.perf_counter()
    if limits.require_protections and missing_protections():
        return Outcome(job.student, False, problem="not graded: this grading machine lacks "
                       + "; ".join(missing_protections()) + " (grading without them was not allowed)")
    # no id in the folder's name: the kernel's socket path must stay short
    scratch = Path(scratch) if scratch else Path(tempfile.mkdtemp(prefix="grade-"))
    mounted, full, saved_tempdir = False, False, tempfile.tempdir
    try:
        if own_file_system:
            scratch_fs.mount(scratch, limits.disk_bytes + _grader_files(job))
            mounted = True
            (scratch / "tmp").mkdir(mode=0o700)
            tempfile.tempdir = str(scratch / "tmp")  # the trusted re-run's folder (one job per process here)
        _sandbox_settings(scratch, limits)
        with quiet_nbgrader():
            outcome = _autograde_in(scratch, job, limits)
    except StageTimeout as exc:
        outcome = Outcome(job.student, False, problem=f"not graded: {exc}")
    except Exception as exc:  # the grader's own failure on this submission: this student only
        outcome = Outcome(job.student, False, problem=f"not graded: the grader failed on this submission "
                                                      f"({type(exc).__name__}: {str(exc)[:300]})")
    finally:
        if mounted:
            full = scratch_fs.is_full(scratch)
            tempfile.tempdir = saved_tempdir
            scratch_fs.unmount(scratch)
        shutil.rmtree(scratch, ignore_errors=True)  # fd-based: never follows the student's links
    if full:  # whatever else went wrong followed from it
        outcome = Outcome(job.student, False, problem=disk_reason(limits))
    outcome.seconds = time.perf_counter() - start
    return outcome


def disk_reason(limits: Limits) -> str:
    return (f"not graded: your submission wrote more than {limits.disk_bytes / 1024 ** 2:g} MiB to disk (all its "
            "files together), and the rest could not be graded")


def memory_reason(limits: Limits) -> str:
    return (f"not graded: your code used more than {limits.memory_bytes / 1024 ** 3:g} GiB of memory in all its "
            "processes together, and the system stopped it")


def _grader_files(job: Job) -> int:
    """Room for what the grader writes in a job's file system: its copies of the course and the submission."""
    sizes = len(job.gradebook) + len(job.config) + sum(map(len, job.source.values())) \
        + 2 * sum(map(len, job.submission.values()))
    return SCRATCH_RESERVE_BYTES + 3 * sizes


def _sandbox_settings(scratch: Path, limits: Limits) -> Path:
    """The sandboxed kernel's folders and settings file, in this job's scratch (never in ``os.environ``).

    Jobs graded by threads of one process share its environment; a file per job does not.
    """
    from course.kernel_sandbox import SETTINGS_FILE, SandboxSettings, write_settings

    for folder in (scratch / "ipc", scratch / "runtime", scratch / "work", scratch / "course"):
        folder.mkdir(parents=True)
    return write_settings(scratch / SETTINGS_FILE, SandboxSettings(
        work=str(scratch / "work"), ipc=str(scratch / "ipc"), log=str(scratch / "kernel.log"),
        wall_seconds=limits.wall_seconds, memory_bytes=limits.memory_bytes, file_bytes=limits.file_bytes))


def _autograde_in(scratch: Path, job: Job, limits: Limits) -> Outcome:
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    from course.kernel_sandbox import SETTINGS_FILE

    course = scratch / "course"
    with deadline(STAGES["setup"], "preparing the scratch course"):
        write_tree(course, {"nbgrader_config.py": job.config, "gradebook.db": job.gradebook})
        write_tree(course / "source" / job.assignment, job.source)
        sub = course / "submitted" / job.student / job.assignment
        write_tree(sub, job.submission)
        for nb_path in sub.glob("*.ipynb"):
            prepare_submission(nb_path, job.skip_experiments)
        # the kernel's own folder: what nbgrader would give it (the submission, the source's other files)
        write_tree(scratch / "work", {**read_tree(sub), **{k: v for k, v in job.source.items()
                                                            if not k.endswith(".ipynb")}})
        config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
        config.CourseDirectory.root = str(course)
        config.Execute.timeout = int(limits.cell_seconds)
        config.Execute.kernel_name = "course-sandbox"
        config.Execute.kernel_manager_class = "course.kernel_sandbox.SandboxKernelManager"
        config.SandboxKernelManager.settings_file = str(scratch / SETTINGS_FILE)
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(scratch / "ipc" / "kernel")
        api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    with deadline(limits.wall_seconds + STAGES["kernel (beyond --notebook-timeout)"], "the notebook's run"):
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
    if outcome.ok:
        _detect_copies(sub, outcome)
        _feedback(api, course, job, outcome)
        write_tree(autograded, {REVIEW_FILE: json.dumps({"overridden": outcome.overridden,
                                                          "copies": outcome.copies}).encode()})
    skipped: list[str] = []
    outcome.autograded = read_tree(autograded, skipped) if autograded.is_dir() else {}
    if outcome.ok and f"{outcome.notebook}.ipynb" not in outcome.autograded:
        outcome.ok = False
        outcome.problem = ("nbgrader wrote no autograded notebook" if not skipped else
                           "the graded notebook could not be kept: " + "; ".join(skipped)[:300])
    return outcome


def _apply_trusted_run(course: Path, sub: Path, autograded: Path, job: Job, outcome: Outcome,
                       limits: Limits) -> None:
    """Re-run the test cells outside the student's kernel; a cell keeps its points only if both runs pass.

    The student's kernel can fake a pass (patching numpy or the test helpers); it cannot fake the
    trusted run. Where the two disagree, the trusted reason goes into the graded notebook. The
    re-run has ``limits.wall_seconds``; a cell it did not get to keeps no points.
    """
    from nbgrader.api import Gradebook

    from course.trusted import trusted_run

    name = f"{outcome.notebook}.ipynb"
    source_nb = nbformat.read(course / "source" / job.assignment / name, as_version=4)
    submitted_nb = nbformat.read(sub / name, as_version=4)
    try:
        with deadline(limits.wall_seconds, "the trusted re-run of the tests"):
            verdicts = trusted_run(source_nb, submitted_nb, limits, hide=job.hide)
    except StageTimeout as exc:
        verdicts = {gid: f"{exc}: your code is far too slow, or it waits" for gid in outcome.grades}
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
    if outcome.overridden:
        if graded is not None:
            graded_path.chmod(0o644)
            nbformat.write(graded, graded_path)
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:  # so the feedback shows the final score
            for gid in outcome.overridden:
                gb.find_grade(gid, outcome.notebook, job.assignment, job.student).auto_score = 0.0
            gb.db.commit()


def _detect_copies(sub: Path, outcome: Outcome) -> None:
    """The copy detector (``course.similarity``) on answers of a sane size, under a deadline; it never fails a job."""
    from course.similarity import copied_exercises

    try:
        submitted_nb = nbformat.read(sub / f"{outcome.notebook}.ipynb", as_version=4)
        answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in submitted_nb.cells
                   if c.get("metadata", {}).get("nbgrader", {}).get("solution")
                   and len(c.source) <= MAX_ANSWER_CHARS}
        with deadline(STAGES["copy detector"], "the copy detector"):
            outcome.copies = copied_exercises(answers)
    except (StageTimeout, Exception) as exc:  # RecursionError, MemoryError, ...: no verdict, no failure
        outcome.log += f"\ncopy detector skipped: {type(exc).__name__}"


def _feedback(api, course: Path, job: Job, outcome: Outcome) -> None:
    """nbgrader's feedback for this student (hidden tests removed by the course's config), under a deadline."""
    folder = course / "feedback" / job.student / job.assignment
    try:
        with deadline(STAGES["feedback"], "the feedback"):
            api.generate_feedback(job.assignment, job.student, force=True)
        skipped: list[str] = []
        outcome.feedback = read_tree(folder, skipped) if folder.is_dir() else {}
        if skipped:
            outcome.log += "\nfeedback files left out: " + "; ".join(skipped)
    except (StageTimeout, Exception) as exc:
        outcome.feedback = {}
        outcome.log += f"\nno feedback: {type(exc).__name__}: {exc}"


def _last_error(result: dict) -> str:
    text = (result.get("error") or "") + "\n" + (result.get("log") or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for marker in ("Kernel died", "DeadKernelError", "CellTimeoutError", "Error", "error"):
        hits = [ln for ln in lines if marker in ln]
        if hits:
            return "nbgrader could not grade it: " + hits[-1][:300]
    return "nbgrader could not grade it"


def merge(root: Path, assignment: str, outcome: Outcome) -> None:
    """Write one outcome into the course's gradebook, ``autograded/`` and ``feedback/`` (one process only)."""
    from datetime import datetime

    from nbgrader.api import Gradebook

    dest = root / "autograded" / outcome.student / assignment
    feedback = root / "feedback" / outcome.student / assignment
    for folder in (dest, feedback):
        if folder.is_symlink() or folder.is_file():
            folder.unlink()
        elif folder.exists():
            shutil.rmtree(folder)
    if not outcome.ok:
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
            gb.update_or_create_student(outcome.student)
        return
    write_tree(dest, outcome.autograded)
    if outcome.feedback:
        write_tree(feedback, outcome.feedback)
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


# -- a batch ----------------------------------------------------------------------------------

def _worker(job: Job, limits: Limits, conn, group: cgroups.JobGroup | None = None, scratch: Path | None = None,
            own_file_system: bool = False) -> None:
    """A job's own process: grade, send the outcome back (size-capped), leave no process behind.

    First it joins the job's control group (everything it starts is counted in the job's totals)
    and takes a mount namespace of its own (the job's file system vanishes with its processes).
    """
    import resource

    try:
        if group is not None:
            group.join()
        own_file_system = own_file_system and scratch_fs.private_mounts()
        outcome = run_job(job, limits, scratch, own_file_system)
    except BaseException as exc:  # noqa: BLE001 - whatever happens here is this student's problem only
        outcome = Outcome(job.student, False, problem=f"not graded: the grader failed ({type(exc).__name__})")
    outcome.peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    data = outcome.to_plain()
    if len(data) > MAX_OUTCOME_BYTES:
        data = Outcome(job.student, False, problem="not graded: its graded notebook and feedback are "
                       f"larger than {MAX_OUTCOME_BYTES // 1024 ** 2} MiB", seconds=outcome.seconds).to_plain()
    try:
        conn.send_bytes(data)
    finally:
        _kill_descendants(os.getpid())


def _kill_descendants(pid: int) -> None:
    import psutil

    try:
        procs = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass


def _rss_tree(pid: int, exclude_sandboxed: bool = True) -> int:
    """Resident memory of a worker and its unsandboxed children (the sandboxes have their own limits)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            if not (exclude_sandboxed and child.uids().real != os.getuid()):
                total += child.memory_info().rss
        return total
    except psutil.Error:
        return 0


_JOB_NUMBERS = itertools.count()


def job_group(limits: Limits) -> cgroups.JobGroup | None:
    """A new job's control group (None where this machine has none): the student's processes, then the grader's."""
    return cgroups.JobGroup.create(
        f"{os.getpid()}-{next(_JOB_NUMBERS)}",
        student_memory=limits.memory_bytes + limits.disk_bytes + TMP_BYTES,  # its files are memory (tmpfs) too
        student_processes=limits.processes, grader_memory=WORKER_MEMORY_BYTES, grader_processes=WORKER_PROCESSES)


class _Running:
    def __init__(self, ctx, job: Job, limits: Limits):
        self.job, self.limits, self.started = job, limits, time.monotonic()
        self.deadline = self.started + submission_deadline(limits)
        self.group = job_group(limits)
        self.scratch = Path(tempfile.mkdtemp(prefix="grade-"))  # removed here, whatever happens there
        try:
            self.recv, send = ctx.Pipe(duplex=False)
            self.proc = ctx.Process(target=_worker, daemon=True, args=(job, limits, send, self.group, self.scratch,
                                                                       scratch_fs.available()))
            self.proc.start()
        except BaseException:
            self._clean()
            raise
        send.close()
        self.peak = 0

    def failed(self, why: str) -> Outcome:
        return Outcome(self.job.student, False, problem=f"not graded: {why}", seconds=time.monotonic() - self.started,
                       peak_rss=self.peak)

    def stop(self) -> None:
        _kill_descendants(self.proc.pid)
        self.proc.kill()
        self.proc.join(10)
        self.recv.close()
        self._clean()

    def _clean(self) -> None:
        """Every process of the job killed (in its group: sessions and daemons too), its group and folder removed."""
        if self.group is not None:
            self.group.kill_all()
            self.group.remove()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _out_of_memory(self, outcome: Outcome) -> Outcome:
        """The outcome, unless the kernel killed one of the job's processes for memory: then that reason."""
        if self.group is None:
            return outcome
        if self.group.oom_kills("student"):
            outcome = Outcome(self.job.student, False, problem=memory_reason(self.limits),
                              seconds=time.monotonic() - self.started, peak_rss=self.peak)
        elif self.group.oom_kills("grader"):
            outcome = self.failed(f"grading it needed more than {WORKER_MEMORY_BYTES // 1024 ** 3} GiB of memory "
                                  "(the grader's work for it) and was stopped")
        # for `course bench` and the tests: the most the job held at once, all its processes together
        outcome.log += f"\njob's memory peak, all its processes together: {self.group.peak_memory()} bytes"
        return outcome

    def poll(self) -> Outcome | None:
        """The outcome if this job is over (finished, died, too slow, too big), else None."""
        if self.recv.poll():
            try:
                outcome = Outcome.from_plain(self.recv.recv_bytes(MAX_OUTCOME_BYTES), self.job.student)
            except (EOFError, OSError):
                outcome = self.failed("its grading process died (out of memory, or killed)")
            except ValueError as exc:  # plain data only: nothing its process sent is unpickled
                outcome = self.failed(f"its grading process sent back no valid result ({exc})")
            outcome = self._out_of_memory(outcome)
            self.stop()
            return outcome
        if not self.proc.is_alive():
            outcome = self._out_of_memory(self.failed(f"its grading process died (exit code {self.proc.exitcode})"))
            self.stop()
            return outcome
        if time.monotonic() > self.deadline:
            self.stop()
            return self.failed(f"grading took longer than {self.deadline - self.started:g} s (the bound for one "
                               "submission, all stages together) and was stopped")
        rss = _rss_tree(self.proc.pid)
        self.peak = max(self.peak, rss)
        if rss > WORKER_MEMORY_BYTES:
            self.stop()
            return self.failed(f"grading it needed more than {WORKER_MEMORY_BYTES // 1024 ** 3} GiB of memory "
                               "and was stopped")
        return None


def run_isolated(jobs: list[Job], workers: int, limits: Limits):
    """Yield each job's outcome, every job in a process of its own (at most ``workers`` at a time)."""
    import multiprocessing
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["course.jobs", "course.trusted", "course.similarity", "nbgrader.apps",
                                "nbgrader.api"])
    pending, running = list(jobs), []
    try:
        while pending or running:
            while pending and len(running) < max(1, workers):
                job = pending.pop(0)
                try:
                    running.append(_Running(ctx, job, limits))
                except Exception as exc:  # could not start a process: this job only
                    yield Outcome(job.student, False, problem=f"not graded: no grading process ({exc})")
            wait([r.recv for r in running] + [r.proc.sentinel for r in running], timeout=0.2)
            for r in list(running):
                outcome = r.poll()
                if outcome is not None:
                    running.remove(r)
                    outcome.peak_rss = max(outcome.peak_rss, r.peak)
                    yield outcome
    finally:
        for r in running:
            r.stop()


def grade_on_worker(job: Job, limits: Limits) -> bytes:
    """The Dask task: one job in a process of its own (:func:`run_isolated`), its outcome as plain data.

    The worker's threads share one process; each job still gets its own process, deadline,
    memory cap and settings. It never raises: a Dask task's error reaches the client as a pickle,
    which ``course grade`` does not read.
    """
    import multiprocessing

    try:
        if multiprocessing.current_process().daemon:
            outcome = Outcome(job.student, False, problem="not graded: this Dask worker's process is daemonic and "
                              "may not start the job's own process; start the workers with `course dask-worker`")
        else:
            outcomes = run_isolated([job], 1, limits)
            try:
                outcome = next(outcomes)
            finally:
                outcomes.close()
    except BaseException as exc:  # noqa: BLE001 - this student's problem only
        outcome = Outcome(job.student, False, problem=f"not graded: the Dask worker failed ({type(exc).__name__})")
    data = outcome.to_plain()
    if len(data) > MAX_OUTCOME_BYTES:  # run_isolated caps what it reads back; this is the worker's own failure
        data = Outcome(job.student, False, problem="not graded: its outcome is too large").to_plain()
    return data


def _run_on_dask(jobs: list[Job], cluster, limits: Limits):
    """Yield each job's outcome from the TLS cluster ``cluster`` (:class:`course.dask_security.DaskCluster`).

    Only bytes come back, read with Dask's msgpack deserializer, through the scheduler (no
    worker connects to this process), while distributed's unpickler loads no class
    (:func:`course.dask_security.no_unpickling`); each reply is checked by :meth:`Outcome.from_plain`.
    If no job finishes for a submission's whole deadline (and two minutes more), the cluster is
    taken to be stuck, and the students left get a reason.
    """
    from distributed import Client, wait

    from course.dask_security import no_unpickling

    idle = submission_deadline(limits) + 120
    with no_unpickling(), Client(cluster.checked_address(), security=cluster.security(), timeout="30s",
                                 deserializers=["msgpack"], direct_to_workers=False) as client:
        futures = client.map(grade_on_worker, jobs, limits=limits, pure=False,
                             key=[f"grade-{j.student}" for j in jobs])
        students = {f.key: j.student for f, j in zip(futures, jobs)}
        pending = set(futures)
        while pending:
            try:
                done, pending = wait(pending, timeout=idle, return_when="FIRST_COMPLETED")
            except TimeoutError:  # distributed raises the builtin one (asyncio.TimeoutError)
                for future in pending:
                    yield Outcome(students[future.key], False, problem=f"not graded: the Dask cluster finished no "
                                  f"submission for {idle:g} s (are its workers running?)")
                return
            for future in done:
                student = students[future.key]
                if future.status != "finished":  # its error is a pickle from the worker: not read
                    yield Outcome(student, False, problem=f"not graded: its Dask task ended with status "
                                                          f"{future.status!r} on the cluster")
                    continue
                try:
                    yield Outcome.from_plain(future.result(), student)
                except ValueError as exc:
                    yield Outcome(student, False, problem=f"not graded: the Dask worker sent back no valid "
                                                          f"result ({exc})"[:400])
                except Exception as exc:  # the result could not be fetched or decoded by msgpack
                    yield Outcome(student, False, problem=f"not graded: its result could not be fetched from the "
                                                          f"cluster ({type(exc).__name__}: {exc})"[:400])


def run_jobs(jobs: list[Job], *, workers: int = 1, scheduler=None, progress: bool = True,
             limits: Limits | None = None):
    """Yield the outcome of every job as it finishes: in ``workers`` local processes, or on Dask.

    Locally every job has a process of its own, a deadline and a memory cap (see :class:`_Running`).
    ``scheduler`` is a :class:`course.dask_security.DaskCluster`: a ``tls://`` address and the
    credentials of ``course dask-credentials``; its workers (``course dask-worker``) need this
    course's packages installed, and grade each job in a process of its own too. A job whose task
    fails there gets a reason like any other. Progress (with an ETA) is shown with tqdm.
    """
    from tqdm.auto import tqdm

    limits = limits or Limits()
    if scheduler is not None and not hasattr(scheduler, "security"):
        raise TypeError("scheduler must be a course.dask_security.DaskCluster (a tls:// address and credentials)")
    bar = tqdm(total=len(jobs), desc="autograde", unit="submission", disable=not progress or not jobs)
    try:
        outcomes = _run_on_dask(jobs, scheduler, limits) if scheduler else run_isolated(jobs, workers, limits)
        for outcome in outcomes:
            bar.update()
            yield outcome
    finally:
        bar.close()
