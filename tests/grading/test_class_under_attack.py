"""A class under attack: every attack catalog graded in one real batch (two workers) beside ten honest students.

The honest students (correct answers written differently, and the mistakes of notebook 00's catalog)
are graded once alone, then again among the attackers: every cell of every honest student must score
exactly the same, ``source/``, ``submitted/`` and ``nbgrader_config.py`` must be byte-identical after the
batch, the gradebook must still define the assignment as before with no hand-set score, and the batch
must complete with a result for everyone.

Attacks: ``CASES`` of ``tests/grading/test_symlink_attacks.py``, of ``test_html_attacks.py`` and of
``test_protocol_attacks.py`` (when those exist: each case has ``build(nb) -> nb`` and ``score``), and the
cases of issue 12 below (a link or FIFO where the review is written, sparse files, answers that choke the
copy detector, code that waits only in the trusted re-run).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
import pytest

from course import grade
from course.bench import filled_submission
from course.build import build_release
from course.notebooks import grade_id, is_solution
from course.sandbox import Limits, protections
from tests.conftest import ROOT
from tests.course.catalogs import catalog_00
from tests.grading import test_symlink_attacks as symlinks

A = "00_gradient_checking"
FULL = 18
LIMITS = Limits(cell_seconds=20, wall_seconds=180, memory_bytes=2 * 1024 ** 3)
ISOLATED = all(protections().values())
pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.skipif(not ISOLATED, reason=f"needs bubblewrap and root: {protections()}")]


@dataclass(frozen=True)
class Case:
    build: Callable  # a correct submission -> the attack
    score: float


def answer(exercise: str, code: str) -> Callable:
    def build(nb):
        for cell in nb.cells:
            if is_solution(cell) and grade_id(cell) == exercise:
                cell.source = code
        return nb
    return build


def cell_after(exercise: str, code: str) -> Callable:
    def build(nb):
        i = next(i for i, c in enumerate(nb.cells) if grade_id(c) == exercise)
        nb.cells.insert(i + 1, nbformat.v4.new_code_cell(code))
        return nb
    return build


RELATIVE_ERROR = ("def relative_error(a, b):\n    d = np.linalg.norm(a) + np.linalg.norm(b)\n"
                  "    return 0.0 if d == 0 else float(np.linalg.norm(a - b) / d)\n")
ISSUE_12 = {
    "review-link-root": Case(cell_after("relative_error", "import os\nos.symlink('/', 'course_review.json')"), FULL),
    "review-fifo": Case(cell_after("relative_error", "import os\nos.mkfifo('course_review.json')"), FULL),
    "sparse-64g": Case(cell_after("relative_error", "import signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
                                  "for size in (64 * 1024 ** 3, 1500 * 1024 ** 2, 1000 * 1024 ** 2):\n"
                                  "    try:\n        open('big.bin', 'wb').truncate(size)\n        break\n"
                                  "    except OSError:\n        pass"), FULL),
    # 400 terms break the copy detector's recursion; 1000 (the issue's) break IPython's and the trusted
    # run's compilation too, so that answer does not run anywhere and loses its points like any other error
    "sum-400-terms": Case(answer("relative_error", RELATIVE_ERROR.replace(
        "    d = ", "    z = " + " + ".join(["0"] * 400) + "\n    d = z + ")), FULL),
    "sum-1000-terms": Case(answer("relative_error", RELATIVE_ERROR.replace(
        "    d = ", "    z = " + " + ".join(["0"] * 1000) + "\n    d = z + ")), FULL - 3),
    "dead-8000-statements": Case(answer("relative_error", RELATIVE_ERROR.replace(
        "    d = ", "    if False:\n" + "".join(f"        x{i} = {i}\n" for i in range(8000)) + "    d = ")), FULL),
    # waits only where the kernel's marker is missing: in the trusted re-run's student process
    "sleep-in-trusted-rerun": Case(answer("relative_error", RELATIVE_ERROR.replace(
        "    d = ", "    import os, time\n    if 'NBGRADER_EXECUTION' not in os.environ:\n        time.sleep(3600)\n"
        "    d = ")), FULL - 3),
    "sleep-loading-trusted-rerun": Case(cell_after("relative_error", "import os, time\n"
                                                   "if 'NBGRADER_EXECUTION' not in os.environ:\n"
                                                   "    time.sleep(3600)"), 0),
}


def other_catalogs(root: Path) -> dict[str, Case]:
    """CASES of the other attack catalogs that exist (each with ``build(nb)`` or ``build(nb, root)``, and ``score``)."""
    cases = {}
    for module in ("tests.grading.test_html_attacks", "tests.grading.test_protocol_attacks"):
        try:
            catalog = importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        for name, case in catalog.CASES.items():
            takes_root = len(inspect.signature(case.build).parameters) == 2
            build = (lambda nb, b=case.build: b(nb, root)) if takes_root else case.build
            cases[f"{module.rsplit('_', 2)[-2]}-{name}"] = Case(build, case.score)
    return cases


def honest_students(src_nb) -> dict[str, Callable]:
    """Ten students: correct answers written their own way, and the catalog's mistakes."""
    students = {"victim": lambda nb: nb}  # the classmate the symlink catalog aims at
    for i, (exercise, code) in enumerate(catalog_00.CORRECT[:3]):
        students[f"honest-alt{i}"] = _answers(exercise, code)
    for i, (exercise, _label, code, _phrase) in enumerate(catalog_00.MISTAKES[::3][:6]):
        students[f"honest-mistake{i}"] = _answers(exercise, code)
    return dict(list(students.items())[:10])


def _answers(exercise: str, code: str) -> Callable:
    def build(nb):
        for name in exercise.split("+"):
            answer(name, code)(nb)
        return nb
    return build


def digest(path: Path) -> dict[str, str]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def assignment_definition(db_path: Path) -> list:
    """The gradebook's copy of the assignment: its cells, points and checksums (hidden tests included)."""
    with sqlite3.connect(db_path) as db:
        return [db.execute(f"select * from {table} order by id").fetchall()
                for table in ("assignment", "notebook", "base_cell", "grade_cells", "solution_cells",
                              "task_cells", "source_cell")]


def cell_scores(root: Path, students: list[str], problems: dict) -> dict[str, dict[str, float]]:
    return {r.student_id: {c.grade_id: c.score for c in r.cells} for r in grade.results(root, A, students, problems)}


def write_submissions(root: Path, builds: dict[str, Callable], targets) -> None:
    correct = filled_submission(root, A)
    for sid, build in builds.items():
        folder = root / "submitted" / sid / A
        folder.mkdir(parents=True)
        nb = nbformat.reads(nbformat.writes(correct), as_version=4)
        nbformat.write(build(nb), folder / f"{A}.ipynb")


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("class-under-attack")
    outside = tmp_path_factory.mktemp("class-outside")
    shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(ROOT / "source", root / "source")
    build_release(root, A)
    grade.ensure_gradebook(root, A)
    targets = symlinks.make_targets(root, outside)
    honest = honest_students(None)
    attacks = {**{f"symlink-{k}": Case(lambda nb, c=c: symlinks.build(c, nb, targets), c.score)
                  for k, c in symlinks.CASES.items()}, **ISSUE_12, **other_catalogs(root)}
    write_submissions(root, honest, targets)
    # the honest class alone, then everyone together
    alone = cell_scores(root, sorted(honest), grade.autograde(root, A, sorted(honest), workers=2, progress=False,
                                                                 limits=LIMITS))
    write_submissions(root, {sid: c.build for sid, c in attacks.items()}, targets)
    everyone = sorted([*honest, *attacks])
    before = {"source": digest(root / "source"), "submitted": digest(root / "submitted"),
              "config": digest(root / "nbgrader_config.py"), "targets": symlinks.fingerprint(targets.files()),
              "gradebook": assignment_definition(root / "gradebook.db")}
    start = time.perf_counter()
    try:
        problems = grade.autograde(root, A, everyone, workers=2, progress=False, limits=LIMITS)
        grade.feedback_and_export(root, A)
        seconds = time.perf_counter() - start
        together = cell_scores(root, everyone, problems)
        print(f"\nbatch of {len(everyone)} submissions (2 workers): {seconds:.0f} s")
        yield root, honest, attacks, alone, together, before, targets, problems
    finally:
        for path, (mode, _) in before["targets"].items():
            Path(path).chmod(mode)


def test_the_batch_completes_with_a_result_for_everyone(batch):
    root, honest, attacks, _, together, _, _, _ = batch
    assert set(together) == set(honest) | set(attacks)
    rows = (root / "grades.csv").read_text().splitlines()
    assert len(rows) == 1 + len(together)
    for sid in honest:
        assert (root / "feedback" / sid / A / f"{A}.html").is_file()


def test_honest_grades_do_not_move(batch):
    _, honest, _, alone, together, _, _, _ = batch
    for sid in honest:
        assert together[sid] == alone[sid], sid
    assert len({sum(s.values()) for s in alone.values()}) > 1  # the honest class is not all one grade


@pytest.mark.parametrize("catalog", ["symlink", "issue12", "html", "protocol"])
def test_each_attack_gets_its_stated_score(batch, catalog):
    _, _, attacks, _, together, _, _, problems = batch
    names = [n for n in attacks if (n in ISSUE_12) == (catalog == "issue12") and
             (catalog == "issue12" or n.startswith(catalog + "-"))]
    if not names:
        pytest.skip(f"no {catalog} catalog here yet")
    wrong = {n: (sum(together[n].values()), attacks[n].score, problems.get(n, "")) for n in names
             if sum(together[n].values()) != attacks[n].score}
    assert not wrong, wrong


def test_course_files_are_byte_identical(batch):
    root, *_, before, targets, _ = batch
    assert digest(root / "source") == before["source"]
    assert digest(root / "submitted") == before["submitted"]
    assert digest(root / "nbgrader_config.py") == before["config"]
    assert symlinks.fingerprint(targets.files()) == before["targets"]
    assert assignment_definition(root / "gradebook.db") == before["gradebook"]
    with sqlite3.connect(root / "gradebook.db") as db:
        assert db.execute("select count(*) from grade where manual_score is not null").fetchone() == (0,)
