"""Links, FIFOs and sparse files a student leaves where the grader (root) might read, write or chmod.

Each case is a cell added to a correct submission of notebook 00; it runs in the student's kernel and
again in the trusted re-run's student process, and plants its traps in every folder it can write (its
working folder, its private folder, HOME, TMPDIR, /tmp) under every name the grader writes anywhere
(the graded notebook, the review file, the feedback page, the kernel's log and connection file, the
trusted run's files). The targets: a root-only file outside the course, the course's own files
(``nbgrader_config.py``, ``gradebook.db``, a classmate's submission), the sandbox's binaries
(``bwrap``, ``setpriv``: the chmod attack that switched the sandbox off), a decoy binary, directories.

Graded in the class under attack (``tests/grading/conftest.py``: one real batch, two workers, every attack
catalog and honest students): every case keeps its full marks (the traps are never followed), nothing of a
target reaches ``autograded/``, ``feedback/`` or the report, every target keeps its bytes and mode, and the
batch completes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
import pytest

from course.notebooks import grade_id
from course.sandbox import protections
from tests.conftest import ROOT

A = "00_gradient_checking"
FULL = 18
SECRET = "ROOT-ONLY-CANARY-7f3a"
ISOLATED = all(protections().values())
pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.skipif(not ISOLATED, reason=f"needs bubblewrap and root: {protections()}")]

# Every name the grader writes somewhere (nbgrader's output, our review file, feedback, kernel and trusted-run files).
GRADER_NAMES = ["course_review.json", f"{A}.ipynb", f"{A}.html", "kernel.log", "kernel.json", "gradebook.db",
                "nbgrader_config.py", "cells.json", "stderr.log", "student_server.py", "grades.csv"]


@dataclass(frozen=True)
class Targets:
    """What the traps point at."""
    root: Path          # the course
    secret: Path        # a root-only (0600) file outside the course
    decoy: Path         # a root-owned executable outside the course (stands for any binary of the system)

    def files(self) -> list[Path]:
        binaries = [Path(p) for p in (shutil.which("bwrap"), shutil.which("setpriv")) if p]
        return [self.secret, self.decoy, self.root / "nbgrader_config.py", self.root / "gradebook.db",
                self.root / "submitted" / "victim" / A / f"{A}.ipynb", self.root / "source" / A / f"{A}.ipynb",
                *binaries]


@dataclass(frozen=True)
class Case:
    code: Callable[[Targets], str]   # the attack cell (it must not raise: the answers stay correct)
    score: float = FULL


PRELUDE = """
import os, signal
def _writable_folders():
    folders = [os.getcwd(), os.environ.get('HOME', ''), os.environ.get('TMPDIR', ''), '/tmp']
    try:
        from ipykernel import get_connection_file
        folders.append(os.path.dirname(get_connection_file()))
    except Exception:
        pass
    return sorted({f for f in folders if f and os.access(f, os.W_OK)})
def _replace(path, make):
    try:
        if os.path.lexists(path) and not os.path.isdir(path):
            os.unlink(path)
        make(path)
    except Exception as e:
        print('trap not set:', path, type(e).__name__)
"""


def _links(t: Targets) -> str:
    targets = [str(p) for p in t.files()]
    return PRELUDE + f"""
_targets = {targets!r}
for _d in _writable_folders():
    for _i, _name in enumerate({GRADER_NAMES!r}):
        _replace(os.path.join(_d, _name), lambda p, t=_targets[_i % len(_targets)]: os.symlink(t, p))
    for _t in _targets:
        _replace(os.path.join(_d, 'link-' + os.path.basename(_t)), lambda p, t=_t: os.symlink(t, p))
"""


def _dir_links(t: Targets) -> str:
    targets = ["/", str(t.root), str(t.root / "submitted"), str(t.root / "source"), str(t.secret.parent)]
    return PRELUDE + f"""
for _d in _writable_folders():
    for _i, _t in enumerate({targets!r}):
        _replace(os.path.join(_d, f'dir{{_i}}'), lambda p, t=_t: os.symlink(t, p, target_is_directory=True))
    os.makedirs(os.path.join(_d, 'nested'), exist_ok=True)
    _replace(os.path.join(_d, 'nested', 'up'), lambda p: os.symlink('..', p))
"""


def _fifos(t: Targets) -> str:
    return PRELUDE + f"""
for _d in _writable_folders():
    for _name in {GRADER_NAMES!r} + ['pipe']:
        _replace(os.path.join(_d, _name), os.mkfifo)
"""


def _sparse(t: Targets) -> str:
    return PRELUDE + f"""
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the file-size limit, truncate fails instead of killing us
def _sparse_file(p, size):
    with open(p, 'wb') as f:
        try:
            f.truncate(64 * 1024 ** 3)
        except OSError:
            f.truncate(size)
for _d in _writable_folders():
    for _name in {GRADER_NAMES!r} + ['big.bin']:
        _replace(os.path.join(_d, _name), lambda p: _sparse_file(p, 1000 * 1024 ** 2))
"""


def _hardlinks(t: Targets) -> str:
    targets = [str(p) for p in t.files()]
    return PRELUDE + f"""
for _d in _writable_folders():
    for _t in {targets!r}:
        _replace(os.path.join(_d, 'hard-' + os.path.basename(_t)), lambda p, t=_t: os.link(t, p))
"""


def _chmod_own(t: Targets) -> str:
    """The student's own files made unreadable and its folders unwritable: the grader must not need them."""
    return PRELUDE + """
for _d in _writable_folders():
    for _root, _dirs, _files in os.walk(_d):
        for _f in _files:
            try:
                os.chmod(os.path.join(_root, _f), 0)
            except OSError:
                pass
    try:
        os.chmod(_d, 0o500)
    except OSError:
        pass
"""


CASES: dict[str, Case] = {
    "link-files": Case(_links),
    "link-dirs": Case(_dir_links),
    "fifo": Case(_fifos),
    "sparse": Case(_sparse),
    "hardlink": Case(_hardlinks),
    "chmod-own": Case(_chmod_own),
}


def build(case: Case, nb, targets: Targets):
    """A correct submission with the attack cell after the first answer."""
    i = next(i for i, c in enumerate(nb.cells) if grade_id(c) == "relative_error")
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(case.code(targets)))
    return nb


def make_targets(root: Path, outside: Path) -> Targets:
    secret = outside / "root_only.txt"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    decoy = outside / "decoy-binary"
    shutil.copy2("/bin/true", decoy)
    decoy.chmod(0o755)
    return Targets(root, secret, decoy)


def fingerprint(paths: list[Path]) -> dict[str, tuple[int, str]]:
    """Mode and SHA-256 of each file (the gradebook: mode only, grading writes it; it is checked apart)."""
    out = {}
    for p in paths:
        info = os.stat(p)
        data = b"" if p.name == "gradebook.db" else p.read_bytes()
        out[str(p)] = (stat.S_IMODE(info.st_mode), hashlib.sha256(data).hexdigest())
    return out


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def every_byte_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture
def graded(class_under_attack):
    """This catalog's view of the class under attack (tests/grading/conftest.py), graded once per run."""
    b = class_under_attack
    course_before = {d: {str(Path(p).relative_to(b.root / d)): h for p, h in b.before[d].items()}
                     for d in ("source", "submitted")}
    return b.root, b.targets, b.before["targets"], course_before, b.results, b.report


@pytest.mark.parametrize("sid", ["victim", *CASES])
def test_every_trap_leaves_full_marks(graded, sid):
    _, _, _, _, results, _ = graded
    r = results[sid]
    expected = FULL if sid == "victim" else CASES[sid].score
    reasons = " | ".join([r.problem, *[c.reason for c in r.cells]])
    assert r.score == expected, f"{sid}: {r.score} != {expected}: {reasons[:1500]}"


def test_targets_keep_their_bytes_and_modes(graded):
    _, targets, before, _, _, _ = graded
    assert fingerprint(targets.files()) == before


def test_course_files_are_untouched(graded):
    root, _, _, course_before, _, _ = graded
    assert {d: tree_digest(root / d) for d in ("source", "submitted")} == course_before
    assert (root / "nbgrader_config.py").read_bytes() == (ROOT / "nbgrader_config.py").read_bytes()
    with sqlite3.connect(root / "gradebook.db") as db:  # still a gradebook, no grade set by hand
        assert db.execute("select count(*) from grade where manual_score is not null").fetchone() == (0,)


def test_nothing_of_a_target_is_copied_out(graded):
    root, targets, _, _, _, report = graded
    for folder in ("autograded", "feedback"):
        data = every_byte_under(root / folder)
        assert SECRET.encode() not in data
        assert b"\x7fELF" not in data  # no binary was copied in
        links = [p for p in (root / folder).rglob("*") if p.is_symlink() or not (p.is_file() or p.is_dir())]
        assert not links, links
    assert SECRET not in report and SECRET not in (root / "grades.csv").read_text()


def test_only_the_graders_files_come_back(graded):
    """autograded/ holds the graded notebook and the review; feedback/ the page: nothing the student made."""
    root, *_ = graded
    for sid in ["victim", *CASES]:
        assert sorted(p.name for p in (root / "autograded" / sid / A).iterdir()) == [f"{A}.ipynb",
                                                                                     "course_review.json"]
        assert sorted(p.name for p in (root / "feedback" / sid / A).iterdir()) == [f"{A}.html"]
        total = sum(p.stat().st_size for p in (root / "autograded" / sid).rglob("*") if p.is_file())
        assert total < 2_000_000, (sid, total)
