"""Inventory: what a graded submission's code can read. It must find nothing of the course but the library.

A probe in an answer cell walks every path it can read, from inside the student's kernel and again in
the trusted re-run's student process. Canaries are planted where a leak would show them: the source
notebook's hidden tests (so the gradebook holds it too), ``nbgrader_config.py``, a classmate's submission,
a root-only file, and the grader's environment (an LMS token). Outside the system, the virtual
environment and the library, the probe records every path it can read; it reads every such file, and
the library's files, looking for the canaries and for notebooks, gradebooks and sources; it reads
``/proc`` (command lines, environments, mounts, links) looking for the course's paths and the token.
If it finds anything, it makes its own answer wrong, so a leak costs points in either process.

Run with the course in /tmp and elsewhere, with one worker and two (two probes graded at once must not
see each other). The readable paths are printed (``pytest -s``) for the grading note.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import nbformat
import pytest

from course import grade
from course.bench import filled_submission
from course.build import build_release
from course.notebooks import grade_id, read_notebook
from course.sandbox import SYSTEM, Limits, protections, visible_paths
from tests.conftest import ROOT

A = "00_gradient_checking"
FULL = 18
LIMITS = Limits(cell_seconds=60, wall_seconds=240, memory_bytes=2 * 1024 ** 3)
ISOLATED = all(protections().values())
BATCH = [pytest.mark.slow, pytest.mark.serial,
         pytest.mark.skipif(not ISOLATED, reason=f"needs bubblewrap and root: {protections()}")]

RUN = uuid.uuid4().hex[:10]
CANARIES = {name: f"{name.upper()}-CANARY-{RUN}" for name in ("source", "config", "victim", "rootonly", "token")}
os.environ["COURSE_TEST_LMS_TOKEN"] = CANARIES["token"]  # the grader's shell holds a secret (set before any worker)

PROBE = r'''
import json as _json, os as _os, sys as _sys

def _inventory(canaries_hex, forbidden_hex, allowed, library, own_names):
    canaries = [bytes.fromhex(h) for h in canaries_hex]
    forbidden = [bytes.fromhex(h) for h in forbidden_hex]   # the course's paths: never in /proc
    own = {_os.path.realpath(_os.getcwd())}
    try:
        from ipykernel import get_connection_file
        own.add(_os.path.dirname(_os.path.realpath(get_connection_file())))
    except Exception:
        pass
    readable, leaks = [], []

    def under(path, roots):
        return any(path == r or path.startswith(r.rstrip('/') + '/') for r in roots)

    def scan(path):
        try:
            with open(path, 'rb') as f:
                data = f.read(64 * 1024 ** 2)
        except OSError:
            return
        for c in canaries:
            if c in data:
                leaks.append(f'{path}: holds a canary')
        name = _os.path.basename(path)
        if under(path, own):
            return
        if name.endswith('.ipynb') or name == 'gradebook.db' or name == 'nbgrader_config.py' or data[:16] == b'SQLite format 3\x00':
            leaks.append(f'{path}: a notebook, gradebook or course config')

    for base, dirs, files in _os.walk('/', onerror=lambda e: None):
        if base in ('/proc', '/sys', '/dev'):
            dirs[:] = []
            continue
        if under(base, allowed):
            dirs[:] = []
            continue
        if under(base, library):
            for f in files:
                scan(_os.path.join(base, f))
            continue
        for d in list(dirs):
            p = _os.path.join(base, d)
            if under(p, allowed):
                dirs.remove(p.rsplit('/', 1)[1])
        readable.append(base + '/')
        for f in files:
            p = _os.path.join(base, f)
            if _os.access(p, _os.R_OK) and not _os.path.islink(p):
                readable.append(p)
                scan(p)
    for pid in [p for p in _os.listdir('/proc') if p.isdigit()] + ['self']:
        for entry in ('cmdline', 'environ', 'mountinfo', 'mounts', 'cwd', 'root', 'exe', 'maps'):
            p = f'/proc/{pid}/{entry}'
            try:
                data = (_os.readlink(p).encode() if entry in ('cwd', 'root', 'exe') else open(p, 'rb').read())
            except OSError:
                continue
            for c in canaries + forbidden:
                if c in data:
                    leaks.append(f'{p}: shows {c.decode(errors="replace")[:80]}')
    for k, v in _os.environ.items():
        for c in canaries:
            if c in v.encode():
                leaks.append(f'environment {k}')
    own_dirs = sorted(own)
    shown = sorted({p for p in readable if not under(p.rstrip('/'), own)} | {d + '/ (own folder)' for d in own_dirs})
    return {'readable': shown, 'leaks': leaks, 'pid': _os.getpid(), 'uid': _os.getuid()}

_report = _inventory(CANARIES_HEX, FORBIDDEN_HEX, ALLOWED, LIBRARY, [])
print('INVENTORY ' + _json.dumps(_report))
if _report['leaks']:
    def relative_error(a, b):
        return -1.0
'''


def probe_cell(forbidden: list[str]) -> str:
    """The probe, with canaries and paths hex-encoded (so its own notebook never matches)."""
    allowed = sorted({*(str(p) for p in visible_paths() if p not in set(map(Path, _library()))), *SYSTEM})
    return (f"CANARIES_HEX = {[c.encode().hex() for c in CANARIES.values()]!r}\n"
            f"FORBIDDEN_HEX = {[f.encode().hex() for f in forbidden]!r}\n"
            f"ALLOWED = {allowed!r}\nLIBRARY = {_library()!r}\n" + PROBE)


def _library() -> list[str]:
    from course.sandbox import LIBRARY
    return [str(p) for p in LIBRARY]


def plant_canaries(root: Path) -> None:
    """Canaries in the source's hidden tests (hence the gradebook) and the config."""
    path = root / "source" / A / f"{A}.ipynb"
    nb = read_notebook(path)
    cell = next(c for c in nb.cells if grade_id(c) == "hidden_relative_error")
    cell.source = cell.source.replace("### BEGIN HIDDEN TESTS", f"### BEGIN HIDDEN TESTS\n# {CANARIES['source']}", 1)
    assert CANARIES["source"] in cell.source
    nbformat.write(nb, path)
    with open(root / "nbgrader_config.py", "a") as f:
        f.write(f"\n# {CANARIES['config']}\n")


@pytest.fixture(scope="module")
def canaried_course(tmp_path_factory) -> Path:
    """The course with its canaries, notebook 00 released (built once, copied into every layout below)."""
    root = tmp_path_factory.mktemp("canaried-course")
    shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(ROOT / "source", root / "source")
    plant_canaries(root)
    build_release(root, A)
    return root


def make_course(root: Path, outside: Path, attackers: list[str], template: Path) -> None:
    shutil.copytree(template, root, dirs_exist_ok=True)
    secret = outside / "root_only.txt"
    secret.write_text(CANARIES["rootonly"])
    secret.chmod(0o600)
    correct = filled_submission(root, A)
    victim = nbformat.reads(nbformat.writes(correct), as_version=4)
    victim.cells.insert(1, nbformat.v4.new_code_cell(f"# {CANARIES['victim']}"))
    (root / "submitted" / "victim" / A).mkdir(parents=True)
    nbformat.write(victim, root / "submitted" / "victim" / A / f"{A}.ipynb")
    forbidden = [str(root), str(outside)]
    for sid in attackers:
        nb = nbformat.reads(nbformat.writes(correct), as_version=4)
        i = next(i for i, c in enumerate(nb.cells) if grade_id(c) == "relative_error")
        nb.cells.insert(i + 1, nbformat.v4.new_code_cell(probe_cell(forbidden)))
        (root / "submitted" / sid / A).mkdir(parents=True)
        nbformat.write(nb, root / "submitted" / sid / A / f"{A}.ipynb")


def inventory(root: Path, sid: str) -> dict:
    nb = read_notebook(root / "autograded" / sid / A / f"{A}.ipynb")
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            if "INVENTORY " in text:
                return json.loads(text.split("INVENTORY ", 1)[1].splitlines()[0])
    raise AssertionError(f"{sid}: the probe printed no inventory")


@pytest.fixture(params=[("tmp", 1), ("tmp", 2), ("elsewhere", 1), ("elsewhere", 2)],
                ids=["tmp-1worker", "tmp-2workers", "elsewhere-1worker", "elsewhere-2workers"])
def graded(request, canaried_course):
    where, workers = request.param
    base = Path(tempfile.mkdtemp(prefix="inventory-", dir="/tmp" if where == "tmp" else _elsewhere()))
    try:
        root, outside = base / "course", base / "outside"
        root.mkdir()
        outside.mkdir()
        attackers = [f"probe{i}" for i in range(workers)]
        make_course(root, outside, attackers, canaried_course)
        students = ["victim", *attackers]
        problems = grade.autograde(root, A, students, workers=workers, progress=False, limits=LIMITS)
        results = {r.student_id: r for r in grade.results(root, A, students, problems)}
        yield root, attackers, results
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _elsewhere() -> str:
    """A folder outside /tmp and outside the checkout (the course of an instructor's home, say)."""
    for folder in ("/var/tmp", str(Path.home())):
        if os.access(folder, os.W_OK) and not folder.startswith("/tmp"):
            return folder
    pytest.skip("no writable folder outside /tmp")


@BATCH[0]
@BATCH[1]
@BATCH[2]
def test_a_submission_reads_nothing_of_the_course(graded):
    root, attackers, results = graded
    for sid in attackers:
        report = inventory(root, sid)
        print(f"\n{sid} (uid {report['uid']}) can read, outside the system, the venv and the library:")
        print("\n".join("  " + p for p in report["readable"]))
        assert report["leaks"] == [], report["leaks"]
        assert report["uid"] != 0
        r = results[sid]
        assert r.score == FULL, f"{sid}: {r.score}: a probe found a leak in one of its two runs: " + " | ".join(
            c.reason for c in r.lost())[:1000]
        # what is readable: its own folders, and the (empty) folders bubblewrap made to hold the mounts
        unexpected = [p for p in report["readable"] if not p.endswith("(own folder)") and not p.endswith("/")]
        assert unexpected == [], unexpected
    assert results["victim"].score == FULL


# -- fast checks: refusal without protections, the reader that never follows a link ------------------------------

@pytest.fixture
def no_bubblewrap(monkeypatch):
    import course.sandbox as sandbox
    monkeypatch.setattr(sandbox, "_BWRAP_OK", False)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)


def test_grade_refuses_to_run_unprotected_unless_told(no_bubblewrap, capsys, monkeypatch):
    from course.cli import main
    from course.sandbox import describe_protections

    assert main(["grade", A]) == 2
    err = capsys.readouterr().err
    assert "grading refused" in err and "bubblewrap" in err and "--allow-unprotected" in err
    text = describe_protections()
    assert "WARNING: GRADED WITHOUT FILESYSTEM AND NETWORK ISOLATION (BUBBLEWRAP)" in text
    assert "SEPARATE UNPRIVILEGED USER (SETPRIV)" in text


def test_a_job_that_requires_protections_is_not_graded_without_them(no_bubblewrap):
    from course.jobs import Job, run_job

    outcome = run_job(Job(A, "ada", b"", {}, b"", {}), Limits(require_protections=True))
    assert not outcome.ok and "lacks filesystem and network isolation (bubblewrap)" in outcome.problem


def test_read_tree_follows_no_link_and_opens_no_fifo(tmp_path):
    from course.jobs import read_tree

    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    folder = tmp_path / "work"
    (folder / "sub").mkdir(parents=True)
    (folder / "ok.txt").write_text("mine")
    (folder / "sub" / "deep.txt").write_text("deep")
    (folder / "link.txt").symlink_to(outside)
    (folder / "dirlink").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(folder / "pipe")
    with open(folder / "sparse.bin", "wb") as f:
        f.truncate(64 * 1024 ** 3)
    skipped: list[str] = []
    files = read_tree(folder, skipped)
    assert files == {"ok.txt": b"mine", "sub/deep.txt": b"deep"}
    assert sorted(s.split(":")[0] for s in skipped) == ["dirlink", "link.txt", "pipe", "sparse.bin"]
