"""``%check`` as a service: the instructor's machine grades a student's saved notebook and says only the score.

``course check-service --course ROOT`` is a Tornado app (a JupyterHub-managed service, or on its own with a
tokens file). ``POST <prefix>check`` with ``{"assignment": NAME, "notebook": <nbformat JSON>}`` grades the
notebook exactly as ``course grade`` does (``course.jobs``: a process of its own, the sandbox, the hidden
tests, the trusted re-run, the same limits) in a scratch course, and replies the per-exercise report
(:func:`course.selfcheck.format_self_check`) as text and JSON, never test code or the notebook's outputs.

- **Who asks** comes from the token the request carries (``Authorization: token ...``), never from the body:
  the hub resolves it (:class:`HubIdentity`, ``jupyterhub.services.auth.HubAuth``; the token must hold
  ``access:services!service=NAME``), or, outside a hub, a tokens file (:class:`TokensFile`). Anything else: 403.
- **A budget** of N counted checks per (student, assignment) in a sliding window (:class:`Budget`), stated in
  every reply and enforced with 429 and the time the next check is available. It is read back from the check
  log at start, so a restart does not reset it. A check that failed on the service's side costs nothing.
- **Every check is logged** (JSON lines: time, student, assignment, sha256 of the notebook, score, seconds,
  outcome); tokens never are.
- **What comes back carries no text the student's code chose.** The hidden tests run in the student's kernel,
  which sees the library and the test cells: an exception raised there could quote them. So a lost point's
  reason is the trusted re-run's (the student's process there sees neither), or a fixed phrase; every reason
  is then searched for lines of the hidden tests, the solutions, ``course/checks`` and ``nnlab``
  (:class:`Shield`) and replaced if one is found.
- **K graders, a queue**: one check per student at a time, at most ``--queue`` waiting (503 beyond, costing
  nothing); the reply says how long a check waited.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from course.ingest import MAX_FILE_BYTES, check_id
from course.nbgrader_plugins import printable

STUDENT = "student"             # the id inside the scratch course: a name the student chose never becomes a path
MAX_BODY_BYTES = MAX_FILE_BYTES + 64 * 1024  # a notebook as course.ingest caps one file, and the JSON around it
TOO_LARGE = (f"the request is larger than the {MAX_FILE_BYTES // 1024 ** 2} MiB a notebook may be (clear its outputs "
             "and save it again); it was not read, and not counted")
MAX_TOKEN_CHARS = 512
MIN_TOKEN_CHARS = 16
DEFAULT_PORT = 8765
DEFAULT_NAME = "check"

# Outcomes in the log. A check costs the student one of their budget only if it was graded, or its notebook
# could not be (its own fault: too slow, too big, crashed its kernel).
GRADED, NOT_GRADED, SERVICE_ERROR = "graded", "not-graded", "service-error"
OVER_BUDGET, BUSY, BAD_REQUEST, FORBIDDEN = "over-budget", "busy", "bad-request", "forbidden"
COUNTED = {GRADED, NOT_GRADED}

# Problems of course.jobs that are the grading machine's failure, not the submission's.
SERVICE_PROBLEMS = ("not graded: the grader failed", "not graded: no grading process",
                    "not graded: its grading process sent back no valid result", "not graded: this grading machine lacks",
                    "not graded: its result could not be recorded", "not graded: the Dask",
                    "not graded: grading it needed more than", "not graded: its grading process died")


# -- who is asking --------------------------------------------------------------------------------

class Forbidden(Exception):
    """The request's token names no student allowed to check (the message says why, plainly)."""


def token_of(headers: Any) -> str:
    """The token of ``Authorization: token X`` (or ``bearer X``); never one in the URL (URLs get logged)."""
    match = re.fullmatch(r"(?:token|bearer)\s+(\S+)\s*", headers.get("Authorization", ""), re.IGNORECASE)
    if not match:
        raise Forbidden("no token: send your notebook with `%check` or `course check` (they add your token), "
                        "or an `Authorization: token ...` header")
    token = match.group(1)
    if len(token) > MAX_TOKEN_CHARS:
        raise Forbidden("this token is not one the check service knows")
    return token


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class TokensFile:
    """Identity outside a hub: a file of lines ``token student_id`` (``#`` comments), private to its owner.

    Re-read when it changes, so students can be added without a restart. Only the tokens' SHA-256 is kept.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._students: dict[str, str] = {}
        self.reload()

    def reload(self) -> None:
        info = os.stat(self.path)
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ValueError(f"{self.path} can be read by other users (mode {stat.S_IMODE(info.st_mode):o}): anyone "
                             f"who reads it can check as any student. `chmod 600 {self.path}`")
        students: dict[str, str] = {}
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ValueError(f"{self.path}, line {number}: expected `token student_id`")
            token, student = parts
            if not MIN_TOKEN_CHARS <= len(token) <= MAX_TOKEN_CHARS:
                raise ValueError(f"{self.path}, line {number}: a token needs {MIN_TOKEN_CHARS} to "
                                 f"{MAX_TOKEN_CHARS} characters (`python -c 'import secrets; "
                                 "print(secrets.token_urlsafe(24))'`)")
            if why := check_id(student):
                raise ValueError(f"{self.path}, line {number}: {why}")
            if _digest(token) in students:
                raise ValueError(f"{self.path}, line {number}: this token is given twice")
            students[_digest(token)] = student
        self._students, self._stamp = students, (info.st_mtime_ns, info.st_size)

    async def student(self, token: str) -> str:
        info = os.stat(self.path)
        if (info.st_mtime_ns, info.st_size) != self._stamp:
            self.reload()
        student = self._students.get(_digest(token))
        if student is None:
            raise Forbidden("this token is not one the check service knows (a mistyped or forged token, or one "
                            "your instructor has withdrawn)")
        return student


class HubIdentity:
    """Identity in a hub: ``HubAuth`` asks the hub whose token it is; the token must hold the service's scope."""

    def __init__(self, name: str = DEFAULT_NAME):
        from jupyterhub.services.auth import HubAuth

        self.auth = HubAuth(cache_max_age=60)  # JUPYTERHUB_API_TOKEN and JUPYTERHUB_API_URL from the hub
        if not self.auth.access_scopes:  # not started by the hub: the scope of this service's name
            self.auth.access_scopes = {f"access:services!service={name}"}

    async def student(self, token: str) -> str:
        try:
            model = await self.auth.user_for_token(token, sync=False)
        except Exception as exc:  # the hub is down or answered an error: not the student's fault
            raise ConnectionError(f"the hub could not be asked who you are ({type(exc).__name__})") from None
        if not model:
            raise Forbidden("the hub does not know this token (it expired, was revoked, or is forged)")
        if model.get("kind", "user") != "user":
            raise Forbidden("only a student's own token may check a notebook (this one is a service's)")
        if not self.auth.check_scopes(self.auth.access_scopes, model):
            raise Forbidden(f"your hub account may not use the check service (its token lacks "
                            f"{' or '.join(sorted(self.auth.access_scopes))}); ask your instructor")
        return str(model["name"])


# -- the log and the budget -----------------------------------------------------------------------

def _now() -> float:
    return time.time()


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="seconds")


def _duration(seconds: float) -> str:
    minutes = max(1, int(seconds // 60) + (seconds % 60 > 0))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


class CheckLog:
    """The JSON-lines log of every check (mode 0600). The budget is read back from it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)
        self._out = os.fdopen(fd, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def entries(self) -> list[dict]:
        out = []
        with open(self.path, encoding="utf-8", errors="replace") as src:
            for line in src:
                try:
                    entry = json.loads(line)
                except ValueError:  # a line cut short by a crash
                    continue
                if isinstance(entry, dict):
                    out.append(entry)
        return out

    def write(self, entry: dict) -> None:
        with self._lock:
            self._out.write(json.dumps(entry, ensure_ascii=True, allow_nan=False) + "\n")
            self._out.flush()
            os.fsync(self._out.fileno())  # a check the student was charged for survives a crash of the service


class Budget:
    """``limit`` counted checks per (student, assignment) in any ``window`` seconds, checks in flight included."""

    def __init__(self, limit: int, window: float, log: CheckLog):
        self.limit, self.window = limit, window
        self._times: dict[tuple[str, str], list[float]] = {}
        self._flight: dict[tuple[str, str], int] = {}
        for entry in log.entries():
            if entry.get("counted") and isinstance(entry.get("t"), (int, float)):
                self._times.setdefault((str(entry.get("student")), str(entry.get("assignment"))), []).append(
                    float(entry["t"]))

    def _recent(self, key: tuple[str, str], now: float) -> list[float]:
        times = [t for t in self._times.get(key, []) if t > now - self.window]
        self._times[key] = times
        return times

    def used(self, student: str, assignment: str, now: float | None = None) -> int:
        key = (student, assignment)
        return len(self._recent(key, now or _now())) + self._flight.get(key, 0)

    def next_at(self, student: str, assignment: str, now: float | None = None) -> float:
        """When one more check becomes available (the oldest counted check leaves the window)."""
        now = now or _now()
        times = sorted(self._recent((student, assignment), now))
        return times[0] + self.window if times else now

    def reserve(self, student: str, assignment: str) -> None:
        key = (student, assignment)
        self._flight[key] = self._flight.get(key, 0) + 1

    def settle(self, student: str, assignment: str, counted: bool, at: float) -> None:
        key = (student, assignment)
        self._flight[key] -= 1
        if counted:
            self._times.setdefault(key, []).append(at)

    def statement(self, student: str, assignment: str) -> dict:
        used = self.used(student, assignment)
        hours = self.window / 3600
        text = (f"{used} of {self.limit} checks of {assignment} used in the last {hours:g} h")
        if used >= self.limit:
            at = self.next_at(student, assignment)
            text += f"; the next one is available at {_iso(at)} (in {_duration(at - _now())})"
        return {"used": used, "limit": self.limit, "window_hours": hours, "text": text}


# -- what may go back to the student --------------------------------------------------------------

class Shield:
    """The course's protected text (hidden tests, solutions, hidden checks, the library): no reason may quote it."""

    MIN_LINE = 20  # shorter lines (``return dx``) are the language, not the course

    def __init__(self, root: Path, assignment: str):
        from course.build import source_notebook
        from course.notebooks import hidden_test_code, read_notebook, solution_code
        import course.checks
        import nnlab

        nb = read_notebook(source_notebook(root, assignment))
        lines = hidden_test_code(nb) + solution_code(nb)
        for package in (Path(course.checks.__file__).parent, Path(nnlab.__file__).parent):
            for path in sorted(package.rglob("*.py")):
                lines += path.read_text(errors="replace").splitlines()
        self.lines = sorted({ln.strip() for ln in lines if len(ln.strip()) >= self.MIN_LINE})

    def quotes(self, text: str) -> bool:
        return any(line in text for line in self.lines)

    def clean(self, text: str) -> str:
        if self.quotes(text):
            return ("this message would quote the course's own code (a hidden test, a solution or the library) "
                    "and is not shown")
        return text


def _as_error(reason: str) -> dict:
    """A trusted re-run's reason (``Type: message``) as the error output the kernel's run would have shown."""
    name, _, value = reason.partition(": ")
    if name == "StudentError" and value:  # the trusted run's name for an exception of a non-built-in class
        name, _, value = value.partition(": ")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]{0,99}", name):
        return {"ename": "Error", "evalue": reason}
    return {"ename": name, "evalue": value}


KERNEL_ONLY = ("failed when your notebook ran, but passed when the tests were re-run apart from your notebook's "
               "kernel; the check service does not show that message (run the whole notebook yourself to see it)")
CANNED = ("not done yet: ", "the cell ran out of time")


def safe_reason(kernel_reason: str, trusted_reason: str | None) -> str:
    """Why a cell lost points, in words the student's code did not choose.

    The trusted re-run's reason (its student process saw neither tests nor library) in the words the
    kernel's run uses (``course.grade.explain``); else one of the kernel's fixed phrases; else a fixed phrase.
    """
    from course.grade import explain

    if trusted_reason:
        if trusted_reason.startswith(("not run: ", "stopped: ", "not graded: ", "your notebook's code did not")):
            return trusted_reason
        return explain(_as_error(trusted_reason))
    if kernel_reason.startswith(CANNED):
        return kernel_reason
    return KERNEL_ONLY


def safe_problem(problem: str) -> str:
    """Why a notebook could not be graded: the grader's own sentences, never a log line of its run."""
    if problem.startswith(("nbgrader could not grade it", "not graded: nbgrader could not grade it")):
        if "Kernel died" in problem or "DeadKernelError" in problem:
            return "not graded: your notebook's kernel died (it crashed, or was stopped at a limit)"
        if "CellTimeoutError" in problem or "timed out" in problem.lower():
            return "not graded: a cell ran out of time (an infinite loop, or far too slow) and was stopped"
        return "not graded: nbgrader could not run your notebook"
    return problem


# -- grading --------------------------------------------------------------------------------------

@dataclass
class CheckResult:
    """One graded check: the student's report (text and data) and what the log records."""

    report: str
    data: dict
    score: float | None
    max_score: float
    outcome: str
    seconds: float
    started: float = 0.0
    log_note: str = ""


@dataclass
class _Template:
    digest: str
    folder: Path


class Grader:
    """Grades notebooks of the course at ``root`` as ``course grade`` does, each in a scratch course of its own."""

    def __init__(self, root: Path, limits, work: Path):
        self.root, self.limits, self.work = Path(root), limits, Path(work)
        self._templates: dict[str, _Template] = {}
        self._shields: dict[str, tuple[str, Shield]] = {}
        self._lock = threading.Lock()

    def assignments(self) -> list[str]:
        from course.paths import assignments

        return assignments(self.root)

    def _digest(self, assignment: str) -> str:
        """What the grading of ``assignment`` depends on in the course: its config and its source folder."""
        h = hashlib.sha256((self.root / "nbgrader_config.py").read_bytes())
        for path in sorted((self.root / "source" / assignment).rglob("*")):
            if path.is_file():
                h.update(str(path.relative_to(self.root)).encode() + b"\0" + path.read_bytes())
        return h.hexdigest()[:16]

    def template(self, assignment: str) -> Path:
        """A released copy of the course for ``assignment`` (config, source, gradebook), remade when its source changes."""
        from course.build import build_release

        digest = self._digest(assignment)
        with self._lock:
            current = self._templates.get(assignment)
            if current and current.digest == digest:
                return current.folder
            folder = Path(tempfile.mkdtemp(prefix=f"template-{assignment[:40]}-", dir=self.work))
            try:
                shutil.copy2(self.root / "nbgrader_config.py", folder / "nbgrader_config.py")
                shutil.copytree(self.root / "source" / assignment, folder / "source" / assignment)
                build_release(folder, assignment)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            if current:
                shutil.rmtree(current.folder, ignore_errors=True)
            self._templates[assignment] = _Template(digest, folder)
            return folder

    def shield(self, assignment: str) -> Shield:
        digest = self._digest(assignment)
        with self._lock:
            cached = self._shields.get(assignment)
            if not cached or cached[0] != digest:
                cached = (digest, Shield(self.root, assignment))
                self._shields[assignment] = cached
            return cached[1]

    def _scratch(self, assignment: str, notebook: bytes) -> Path:
        from course.build import source_notebook

        template = self.template(assignment)
        scratch = Path(tempfile.mkdtemp(prefix="check-", dir=self.work))
        shutil.copy2(template / "nbgrader_config.py", scratch / "nbgrader_config.py")
        shutil.copy2(template / "gradebook.db", scratch / "gradebook.db")
        shutil.copytree(template / "source" / assignment, scratch / "source" / assignment)
        dest = scratch / "submitted" / STUDENT / assignment
        dest.mkdir(parents=True)
        (dest / source_notebook(template, assignment).name).write_bytes(notebook)
        return scratch

    def validate(self, assignment: str, notebook: bytes) -> str:
        """Why this notebook cannot be checked as ``assignment`` (``course grade``'s own reasons), or ``""``."""
        from course.grade import validate_submission

        from course.grade import _exercise_ids, _which_assignment
        from course.notebooks import NotebookError, read_notebook

        scratch = self._scratch(assignment, notebook)
        try:
            why = validate_submission(scratch, assignment, STUDENT)  # the scratch course has this assignment only
            if why and "does not contain this assignment's exercises." in why:
                try:
                    nb = read_notebook(next((scratch / "submitted" / STUDENT / assignment).glob("*.ipynb")))
                    other = _which_assignment(self.root, _exercise_ids(nb))
                except (NotebookError, StopIteration):
                    other = ""
                if other:
                    why = why.replace("exercises.", f"exercises: it looks like the notebook of {other}.", 1)
            return why
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def grade(self, assignment: str, notebook: bytes) -> CheckResult:
        """Grade: ``course.jobs`` (own process, sandbox, hidden tests, trusted re-run), then the gradebook's scores."""
        from course.grade import results
        from course.jobs import make_job, merge, run_jobs
        from course.selfcheck import format_self_check

        started = time.perf_counter()
        scratch = self._scratch(assignment, notebook)
        try:
            job = make_job(scratch, assignment, STUDENT, trusted=True)
            outcome = next(iter(run_jobs([job], workers=1, progress=False, limits=self.limits)))
            if not outcome.ok and outcome.problem.startswith(SERVICE_PROBLEMS):
                return CheckResult("", {}, None, 0.0, SERVICE_ERROR, time.perf_counter() - started,
                                   log_note=printable(outcome.problem)[:300])
            merge(scratch, assignment, outcome)  # as course grade records it: the report reads the gradebook
            problems = {} if outcome.ok else {STUDENT: outcome.problem}
            result = results(scratch, assignment, [STUDENT], problems)[0]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        shield = self.shield(assignment)
        result.problem = shield.clean(safe_problem(result.problem)) if result.problem else ""
        for cell in result.cells:
            if result.problem:
                cell.reason = "not graded: " + result.problem
            elif cell.score < cell.max_score:
                cell.reason = shield.clean(safe_reason(cell.reason, outcome.trusted.get(cell.grade_id)))
        result.review, result.copies, result.overridden = [], [], []  # the instructor's notes, not the student's
        report = format_self_check(result, assignment)
        data = {"assignment": assignment, "score": result.score, "max_score": result.max_score,
                "problem": result.problem, "exercises": per_exercise(result)}
        return CheckResult(report, data, result.score, result.max_score, NOT_GRADED if result.problem else GRADED,
                           time.perf_counter() - started)


def per_exercise(result) -> list[dict]:
    """The report's data: per exercise, its points (visible and hidden tests together) and each failure's reason."""
    out: dict[str, dict] = {}
    for cell in result.cells:
        entry = out.setdefault(cell.exercise, {"exercise": cell.exercise, "points": 0.0, "max_points": 0.0,
                                               "reasons": []})
        entry["points"] += cell.score
        entry["max_points"] += cell.max_score
        if cell.score < cell.max_score:
            label = "visible tests" if cell.grade_id.startswith("test_") else "hidden tests"
            entry["reasons"].append(f"{label}: {cell.reason}")
    return list(out.values())


# -- the service ----------------------------------------------------------------------------------

@dataclass
class Settings:
    root: Path
    budget: int = 10
    window_hours: float = 24.0
    workers: int = 2
    queue: int = 20
    log: Path | None = None
    tokens: Path | None = None
    name: str = DEFAULT_NAME
    limits: Any = None
    work: Path | None = None


class CheckService:
    """The state behind the handlers: identity, budget, log, the graders' pool and who is being graded."""

    def __init__(self, settings: Settings, identity=None):
        from course.sandbox import Limits

        self.settings = settings
        self.root = Path(settings.root).resolve()
        self.log = CheckLog(settings.log or self.root / "check_service" / "checks.jsonl")
        self.budget = Budget(settings.budget, settings.window_hours * 3600, self.log)
        self.identity = identity or (TokensFile(settings.tokens) if settings.tokens else HubIdentity(settings.name))
        self.work = Path(tempfile.mkdtemp(prefix="check-service-", dir=settings.work))
        self.grader = Grader(self.root, settings.limits or Limits(require_protections=True), self.work)
        self.pool = ThreadPoolExecutor(max_workers=max(1, settings.workers), thread_name_prefix="check")
        self.busy: set[str] = set()   # students with a check in flight (one at a time each)
        self.waiting = 0              # checks sent to the pool, not yet started
        self.running = 0
        self.counting = threading.Lock()  # the two counts change in the event loop and in the graders' threads

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(self.work, ignore_errors=True)

    def record(self, at: float | None = None, **entry: Any) -> None:
        """Log one request; ``at`` is when a counted check was charged (the budget's clock, after a restart too)."""
        at = at if at is not None else _now()
        self.log.write({"t": at, "time": _iso(at), **entry})


def make_app(service: CheckService, prefix: str = "/"):
    import tornado.web

    prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
    handlers = [(re.escape(prefix) + "check", CheckHandler, {"service": service}),
                (re.escape(prefix) + "?", InfoHandler, {"service": service})]
    return tornado.web.Application(handlers, xsrf_cookies=False, log_function=_log_request)


def _log_request(handler) -> None:
    """Tornado's access log without the query string: a token put in a URL is never written anywhere."""
    import logging

    request = handler.request
    logging.getLogger("tornado.access").info("%d %s %s (%s) %.0f ms", handler.get_status(), request.method,
                                             request.path[:200], request.remote_ip, 1000 * request.request_time())


def _handler_classes():
    import tornado.web

    class JSONHandler(tornado.web.RequestHandler):
        def initialize(self, service: CheckService) -> None:
            self.service = service

        def reply(self, status: int, data: dict, headers: dict | None = None) -> None:
            self.set_status(status)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.set_header("Cache-Control", "no-store")
            for key, value in (headers or {}).items():
                self.set_header(key, value)
            self.finish(json.dumps(data, allow_nan=False))

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            reasons = {413: TOO_LARGE,
                       405: "use POST <service>/check"}
            self.reply(status_code, {"error": reasons.get(status_code, self._reason)})

    class InfoHandler(JSONHandler):
        def get(self) -> None:
            s = self.service.settings
            self.reply(200, {"service": "course check", "assignments": self.service.grader.assignments(),
                             "budget": s.budget, "window_hours": s.window_hours, "workers": s.workers,
                             "usage": "POST check {\"assignment\": NAME, \"notebook\": <notebook JSON>} with "
                                      "Authorization: token ..."})

    @tornado.web.stream_request_body
    class CheckHandler(JSONHandler):
        student: str | None = None

        async def prepare(self) -> None:
            self.chunks, self.size, self.refused = [], 0, False
            if self.request.method != "POST":
                return
            self.request.connection.set_max_body_size(MAX_BODY_BYTES + 1)
            try:
                self.student = await self.service.identity.student(token_of(self.request.headers))
            except Forbidden as exc:
                self.service.record(student=None, assignment=None, outcome=FORBIDDEN, counted=False, reason=str(exc),
                                    ip=self.request.remote_ip)
                return self._refuse(403, str(exc))
            except ConnectionError as exc:
                return self._refuse(503, f"{exc}; your notebook was not checked and no check was counted")
            length = self.request.headers.get("Content-Length")
            if length and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
                return self._refuse(413, TOO_LARGE)

        def _refuse(self, status: int, reason: str) -> None:
            self.refused = True
            self.reply(status, {"error": reason})

        def data_received(self, chunk: bytes) -> None:
            if self.refused:
                return
            self.size += len(chunk)
            if self.size > MAX_BODY_BYTES:
                self.chunks = []
                return self._refuse(413, TOO_LARGE)
            self.chunks.append(chunk)

        async def post(self) -> None:
            if self.refused:
                return
            student = self.student
            if student in self.service.busy:
                return self.reply(429, {"error": "you already have a check running: wait for its reply (this "
                                                 "request was not counted)"}, {"Retry-After": "30"})
            self.service.busy.add(student)
            try:
                await self._check(student)
            finally:
                self.service.busy.discard(student)

        async def _check(self, student: str) -> None:
            service, settings = self.service, self.service.settings
            request = _parse(b"".join(self.chunks), service.grader.assignments())
            self.chunks = []
            if isinstance(request, str):
                service.record(student=student, assignment=None, outcome=BAD_REQUEST, counted=False, reason=request)
                return self.reply(400, {"error": request})
            assignment, notebook = request
            sha = hashlib.sha256(notebook).hexdigest()
            budget = service.budget
            if budget.used(student, assignment) >= budget.limit:
                statement = budget.statement(student, assignment)
                wait = max(1, int(budget.next_at(student, assignment) - _now()) + 1)
                service.record(student=student, assignment=assignment, sha256=sha, outcome=OVER_BUDGET, counted=False)
                return self.reply(429, {"error": f"no checks of {assignment} left: {statement['text']}",
                                        "budget": statement, "budget_text": statement["text"],
                                        "next_at": _iso(budget.next_at(student, assignment)),
                                        "retry_after_seconds": wait}, {"Retry-After": str(wait)})
            if service.waiting >= settings.queue:
                service.record(student=student, assignment=assignment, sha256=sha, outcome=BUSY, counted=False)
                return self.reply(503, {"error": f"the check service is busy ({service.waiting} checks waiting); "
                                                 "try again in a few minutes. This request was not counted.",
                                        "budget_text": budget.statement(student, assignment)["text"]},
                                  {"Retry-After": "120"})
            loop = asyncio.get_running_loop()
            try:
                why = await loop.run_in_executor(None, service.grader.validate, assignment, notebook)
            except Exception as exc:  # the course itself is broken (a source notebook being edited...)
                return self._service_error(student, assignment, sha, 0.0, f"{type(exc).__name__}: {exc}")
            if why:
                service.record(student=student, assignment=assignment, sha256=sha, outcome=BAD_REQUEST, counted=False,
                               reason=printable(why)[:300])
                return self.reply(400, {"error": f"{why} (this was not counted as a check)"})
            budget.reserve(student, assignment)
            with service.counting:
                ahead = max(0, service.waiting + service.running - settings.workers + 1)
                service.waiting += 1
            sent = time.perf_counter()
            at, result = _now(), None
            try:
                result = await loop.run_in_executor(service.pool, _run, service, assignment, notebook)
            except Exception as exc:  # the grader's own failure (course.jobs turns the submission's into reasons)
                result = CheckResult("", {}, None, 0.0, SERVICE_ERROR, time.perf_counter() - sent,
                                     log_note=printable(f"{type(exc).__name__}: {exc}")[:300])
            finally:  # a check the service failed (or that was cancelled) costs nothing
                budget.settle(student, assignment, result is not None and result.outcome in COUNTED, at)
            waited = max(0.0, result.started - sent) if result.started else 0.0
            if result.outcome == SERVICE_ERROR:
                return self._service_error(student, assignment, sha, result.seconds, result.log_note)
            service.record(at=at, student=student, assignment=assignment, sha256=sha, score=result.score,
                           max_score=result.max_score, seconds=round(result.seconds, 2), waited=round(waited, 2),
                           outcome=result.outcome, counted=True)
            statement = budget.statement(student, assignment)
            data = {**result.data, "student": student, "report": result.report, "budget": statement,
                    "budget_text": statement["text"], "seconds": round(result.seconds, 1),
                    "waited_seconds": round(waited, 1)}
            if waited >= 1:
                data["waited"] = (f"This check waited {waited:.0f} s for a free grader ({ahead} check(s) ahead of it, "
                                  f"{settings.workers} graded at a time).")
            self.reply(200, data)

        def _service_error(self, student: str, assignment: str, sha: str, seconds: float, note: str) -> None:
            self.service.record(student=student, assignment=assignment, sha256=sha, seconds=round(seconds, 2),
                                outcome=SERVICE_ERROR, counted=False, reason=note)
            statement = self.service.budget.statement(student, assignment)
            self.reply(500, {"error": "the check service failed on its side while checking your notebook; this "
                                      "check was not counted. Try again, and tell your instructor if it persists.",
                             "budget": statement, "budget_text": statement["text"]})

    return InfoHandler, CheckHandler


def _run(service: CheckService, assignment: str, notebook: bytes) -> CheckResult:
    """In a grader thread: the check (its start time recorded, for the queue's wait)."""
    with service.counting:
        service.waiting -= 1
        service.running += 1
    started = time.perf_counter()
    try:
        result = service.grader.grade(assignment, notebook)
    finally:
        with service.counting:
            service.running -= 1
    result.started = started
    return result


def _parse(body: bytes, known: list[str]) -> tuple[str, bytes] | str:
    """(assignment, the notebook's bytes) from the request's body, or why not (HTTP 400)."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "the request is not JSON: send {\"assignment\": NAME, \"notebook\": <the notebook's JSON>}"
    if not isinstance(request, dict) or not isinstance(request.get("assignment"), str) \
            or not isinstance(request.get("notebook"), dict):
        return "the request must be {\"assignment\": NAME, \"notebook\": <the notebook's JSON>}"
    assignment = request["assignment"]
    if assignment not in known:
        return (f"unknown assignment {printable(assignment)[:80]!r}; this course has: {', '.join(known)}")
    try:
        notebook = json.dumps(request["notebook"], allow_nan=False).encode()
    except (ValueError, RecursionError):
        return "the notebook is not valid JSON (NaN, or nested too deep)"
    return assignment, notebook


InfoHandler, CheckHandler = _handler_classes()


# -- JupyterHub configuration ---------------------------------------------------------------------

def hub_service_config(course: Path, *, name: str = DEFAULT_NAME, port: int = DEFAULT_PORT, budget: int = 10,
                       window_hours: float = 24.0, workers: int = 2, log: Path | None = None,
                       python: str | None = None, extra_args: list[str] | None = None,
                       environment: dict[str, str] | None = None) -> dict:
    """The entry for ``c.JupyterHub.services``: the hub starts ``course check-service`` and routes
    ``/services/NAME/`` to it. Give users the scope too (:func:`hub_roles`, :func:`hub_server_token_scopes`,
    or all three at once with :func:`configure_hub`)."""
    import sys

    command = [python or sys.executable, "-m", "course.cli", "check-service", "--course", str(course),
               "--budget", str(budget), "--window", f"{window_hours:g}", "--workers", str(workers),
               *(["--log", str(log)] if log else []), *(extra_args or [])]
    return {"name": name, "url": f"http://127.0.0.1:{port}", "command": command, "cwd": str(course),
            "environment": {"COURSE_ROOT": str(course), **(environment or {})}, "display": False}


def hub_access_scope(name: str = DEFAULT_NAME) -> str:
    return f"access:services!service={name}"


def hub_roles(name: str = DEFAULT_NAME, users: list[str] | None = None, groups: list[str] | None = None) -> list[dict]:
    """``c.JupyterHub.load_roles``: who may use the service. Everyone (the ``user`` role) unless users or groups
    are named (then a role of its own, so that, say, only the ``students`` group may check)."""
    if users is None and groups is None:
        return [{"name": "user", "scopes": ["self", hub_access_scope(name)]}]
    return [{"name": f"course-{name}-users", "scopes": [hub_access_scope(name)], "users": list(users or []),
             "groups": list(groups or [])}]


def hub_server_token_scopes(name: str = DEFAULT_NAME) -> list[str]:
    """``c.Spawner.server_token_scopes``: the server's own (the ``server`` role's), and the service's access, so
    that the ``JUPYTERHUB_API_TOKEN`` a student's kernel inherits is accepted (the hub gives a user's server only
    the scopes that user holds)."""
    return ["users:activity!user", "access:servers!server", hub_access_scope(name)]


def check_url(entry: dict, public_url: str | None = None) -> str:
    """``COURSE_CHECK_URL`` for the students' servers: through the hub's proxy at ``public_url`` (the hub's
    address, e.g. ``https://hub.example.edu/``), else straight to the service (servers on the hub's machine)."""
    base = public_url.rstrip("/") if public_url else entry["url"].rstrip("/")
    return f"{base}/services/{entry['name']}/"


def configure_hub(c: Any, course: Path, *, users: list[str] | None = None, groups: list[str] | None = None,
                  public_url: str | None = None, **kwargs: Any) -> dict:
    """All of it on a JupyterHub config object ``c`` (the service, who may use it, the servers' token scopes and
    ``COURSE_CHECK_URL`` in every server); returns the service's entry."""
    entry = hub_service_config(course, **kwargs)
    c.JupyterHub.services = [*list(c.JupyterHub.get("services", [])), entry]
    roles = [r for r in c.JupyterHub.get("load_roles", [])]
    c.JupyterHub.load_roles = [*roles, *hub_roles(entry["name"], users, groups)]
    c.Spawner.server_token_scopes = hub_server_token_scopes(entry["name"])
    c.Spawner.environment = {**dict(c.Spawner.get("environment", {})),
                             "COURSE_CHECK_URL": check_url(entry, public_url)}
    return entry


# -- the command ----------------------------------------------------------------------------------

def listen_address(port: int | None) -> tuple[str, int, str]:
    """(host, port, prefix): the hub's (``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_SERVICE_PREFIX``) or 127.0.0.1."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    url = os.environ.get("JUPYTERHUB_SERVICE_URL")
    if url and port is None:
        parsed = urlparse(url)
        return parsed.hostname or "127.0.0.1", parsed.port or 80, prefix
    return "127.0.0.1", port or DEFAULT_PORT, prefix


def serve(settings: Settings, port: int | None = None, ready=None) -> None:
    """Run the service until interrupted (``ready(host, port, prefix)`` is called once it listens)."""
    import tornado.httpserver
    import tornado.ioloop

    service = CheckService(settings)
    host, port, prefix = listen_address(port)

    async def main() -> None:
        import signal

        server = tornado.httpserver.HTTPServer(make_app(service, prefix), max_body_size=MAX_BODY_BYTES + 1,
                                               idle_connection_timeout=3600, body_timeout=600)
        server.listen(port, host)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)  # the hub stops its services so
        if ready:
            ready(host, port, prefix)
        await stop.wait()
        server.stop()

    try:
        asyncio.run(main())
    finally:
        service.close()
