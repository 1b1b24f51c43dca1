"""A class under attack: every attack catalog graded in one real batch (two workers) beside ten honest students.

The batch is built in ``tests/grading/conftest.py`` (``class_under_attack``) and shared with the catalogs'
own tests. The honest students (correct answers written differently, and the mistakes of notebook 00's
catalog) are graded once alone, then again among the attackers: every cell of every honest student must
score exactly the same, ``source/``, ``submitted/`` and ``nbgrader_config.py`` must be byte-identical after
the batch, the gradebook must still define the assignment as before with no hand-set score, and the batch
must complete with a result for everyone.

Attacks: ``CASES`` of ``tests/grading/test_symlink_attacks.py``, of ``test_html_attacks.py`` and of
``test_protocol_attacks.py``, and the cases of issue 12 below (a link or FIFO where the review is written,
sparse files, answers that choke the copy detector, code that waits only in the trusted re-run).
"""

from __future__ import annotations

import sqlite3
from typing import Callable

import nbformat
import pytest

from course.notebooks import grade_id, is_solution
from course.sandbox import protections
from tests.course.catalogs import catalog_00
from tests.grading import test_symlink_attacks as symlinks
from tests.grading.conftest import Case, assignment_definition, digest

A = "00_gradient_checking"
FULL = 18
ISOLATED = all(protections().values())
pytestmark = [pytest.mark.slow, pytest.mark.serial, pytest.mark.skipif(not ISOLATED, reason=f"needs bubblewrap and root: {protections()}")]


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


def honest_students() -> dict[str, Callable]:
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


def test_the_batch_completes_with_a_result_for_everyone(class_under_attack):
    b = class_under_attack
    assert set(b.together) == set(b.cases)
    rows = (b.root / "grades.csv").read_text().splitlines()
    assert len(rows) == 1 + len(b.cases)
    for sid in b.ids("honest"):
        assert (b.root / "feedback" / sid / A / f"{A}.html").is_file()


def test_honest_grades_do_not_move(class_under_attack):
    b = class_under_attack
    for sid in b.ids("honest"):
        assert b.together[sid] == b.alone[sid], sid
    assert len({sum(s.values()) for s in b.alone.values()}) > 1  # the honest class is not all one grade


@pytest.mark.parametrize("catalog", ["symlink", "issue12", "html", "protocol"])
def test_each_attack_gets_its_stated_score(class_under_attack, catalog):
    b = class_under_attack
    names = b.ids(catalog)
    assert names
    wrong = {n: (sum(b.together[n].values()), b.cases[n].score, b.problems.get(n, "")) for n in names
             if sum(b.together[n].values()) != b.cases[n].score}
    assert not wrong, wrong


def test_course_files_are_byte_identical(class_under_attack):
    b = class_under_attack
    assert digest(b.root / "source") == b.before["source"]
    assert digest(b.root / "submitted") == b.before["submitted"]
    assert digest(b.root / "nbgrader_config.py") == b.before["config"]
    assert symlinks.fingerprint(b.targets.files()) == b.before["targets"]
    assert assignment_definition(b.root / "gradebook.db") == b.before["gradebook"]
    with sqlite3.connect(b.root / "gradebook.db") as db:
        assert db.execute("select count(*) from grade where manual_score is not null").fetchone() == (0,)
