"""Hostile and broken submissions, graded through the real pipeline in one batch.

Each case is a notebook a student could hand in. The batch is graded once (two workers,
short limits); every case asserts its own outcome: points withheld, the reason given,
and the rest of the class graded. submitted/ must come out byte-identical, and grading
again must give the same grades.
"""

import copy
import hashlib
import re
import shutil

import nbformat
import pytest

from course import grade
from course.bench import filled_submission
from course.notebooks import grade_id, is_solution
from course.sandbox import Limits, protections
from tests.conftest import ROOT

A = "00_gradient_checking"
FULL = 18
LIMITS = Limits(cell_seconds=6, wall_seconds=120, memory_bytes=2 * 1024 ** 3)
pytestmark = [pytest.mark.slow, pytest.mark.serial]  # two grading workers, 6-second cell limits

WRONG_RELATIVE_ERROR = "def relative_error(a, b):\n    return 0.5\n"


def with_answer(nb, exercise, code):
    for cell in nb.cells:
        if is_solution(cell) and grade_id(cell) == exercise:
            cell.source = code
    return nb


def with_cell(nb, code, after="numerical_gradient"):
    i = next(i for i, c in enumerate(nb.cells) if grade_id(c) == after)
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(code))
    return nb


def cell_index(nb, gid):
    return next(i for i, c in enumerate(nb.cells) if grade_id(c) == gid)


# Each case: student id -> function(correct notebook, root) -> notebook, or a callable writing files itself.
def case_loop_top(nb, root):
    return with_cell(nb, "while True:\n    pass")


def case_loop_fn(nb, root):
    return with_answer(nb, "relative_error", "def relative_error(a, b):\n    while True:\n        pass\n")


def case_membomb(nb, root):
    return with_answer(nb, "relative_error", "def relative_error(a, b):\n    x = bytearray(16 * 1024 ** 3)\n"
                                             "    return 0.0\n")


def case_forkbomb(nb, root):
    return with_cell(nb, "import os\nwhile True:\n    os.fork()", after="affine_backward")


def case_exit(nb, root):
    return with_cell(nb, "import sys\nsys.exit(1)")


def case_osexit(nb, root):
    return with_cell(nb, "import os\nos._exit(1)")


def case_segfault(nb, root):
    return with_cell(nb, "import ctypes\nctypes.string_at(0)")


def case_allclose(nb, root):
    nb = with_answer(nb, "relative_error", WRONG_RELATIVE_ERROR)
    return with_cell(nb, "import numpy as np\nnp.allclose = lambda *a, **k: True\nnp.isclose = lambda *a, **k: True\n"
                         "np.array_equal = lambda *a, **k: True", after="relative_error")


def case_liar(nb, root):
    return with_answer(nb, "relative_error", "class Liar(float):\n    def __eq__(self, o): return True\n"
                                             "    def __array__(self, *a, **k):\n        import numpy\n"
                                             "        return numpy.array(0.0)\n"
                                             "def relative_error(a, b):\n    return Liar(0.5)\n")


def case_patch_helpers(nb, root):
    nb = with_answer(nb, "affine_forward", "def affine_forward(x, W, b):\n    return x @ W, (x, W, b)\n")
    return with_cell(nb, "import course.testing as t, course.checks.gradient_checking as g\n"
                         "t.fail = lambda *a, **k: None\nt.check_close = lambda *a, **k: None\n"
                         "g.check_affine_forward = lambda *a, **k: None\n"
                         "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})",
                     after="affine_forward")


def case_redefine(nb, root):
    nb = with_answer(nb, "relative_error", WRONG_RELATIVE_ERROR)
    return with_cell(nb, "def check_close(*a, **k):\n    pass\ndef check_backward(*a, **k):\n    pass",
                     after="relative_error")


def case_swallow(nb, root):
    nb = with_answer(nb, "relative_error", WRONG_RELATIVE_ERROR)
    return with_cell(nb, "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)",
                     after="relative_error")


def case_edit_test(nb, root):
    nb = with_answer(nb, "relative_error", WRONG_RELATIVE_ERROR)
    nb.cells[cell_index(nb, "test_relative_error")].source = "pass"
    nb.cells[cell_index(nb, "hidden_relative_error")].source = "pass"
    return nb


def case_delete_test(nb, root):
    nb = with_answer(nb, "relative_error", WRONG_RELATIVE_ERROR)
    del nb.cells[cell_index(nb, "hidden_relative_error")]
    del nb.cells[cell_index(nb, "test_relative_error")]
    return nb


def case_duplicate_test(nb, root):
    i = cell_index(nb, "hidden_relative_error")
    nb.cells.insert(i, nbformat.v4.new_code_cell(nb.cells[i].source, metadata=copy.deepcopy(nb.cells[i].metadata)))
    return nb


def case_retype_test(nb, root):
    nb = with_answer(nb, "relative_error", WRONG_RELATIVE_ERROR)
    i = cell_index(nb, "hidden_relative_error")
    nb.cells[i] = nbformat.v4.new_markdown_cell(nb.cells[i].source, metadata=nb.cells[i].metadata)
    return nb


def case_read_tests(nb, root):
    return with_cell(nb, f"import glob, os\nfound = []\nfor p in ['{root}/gradebook.db', '{root}/source', "
                         f"'{root}/submitted']:\n    try:\n        found.append((p, len(open(p, 'rb').read()) "
                         f"if os.path.isfile(p) else os.listdir(p)))\n    except Exception as e:\n"
                         f"        found.append((p, type(e).__name__))\nprint(found)")


def case_write_gradebook(nb, root):
    return with_cell(nb, f"for p in ['{root}/gradebook.db', '{root}/source/{A}/{A}.ipynb', "
                         f"'{root}/submitted/ok/{A}/{A}.ipynb']:\n    try:\n        open(p, 'ab').write(b'x')\n"
                         f"    except Exception as e:\n        print(p, type(e).__name__)")


def case_network(nb, root):
    return with_cell(nb, "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 22), timeout=2)\n"
                         "except OSError as e:\n    print('no network:', e)")


def case_reference_call(nb, root):
    return with_answer(nb, "relative_error", "def relative_error(a, b):\n    from nnlab.gradcheck import "
                                             "relative_error as r\n    return r(a, b)\n")


def case_reference_copy(nb, root):
    import inspect

    from nnlab.gradcheck import numerical_gradient_array
    src = "from typing import Callable\n" + re.sub(r"\bgrad\b", "g", inspect.getsource(numerical_gradient_array))
    src = re.sub(r"\bold\b", "saved", src)
    return with_answer(nb, "numerical_gradient_array", src)


def case_warning(nb, root):
    return with_answer(nb, "relative_error", "import warnings\ndef relative_error(a, b):\n"
                       "    warnings.warn('this API is deprecated', UserWarning)\n"
                       "    d = np.linalg.norm(a) + np.linalg.norm(b)\n"
                       "    return 0.0 if d == 0 else float(np.linalg.norm(a - b) / d)\n")


def case_ok(nb, root):
    return nb


FILES = {
    "notjson": lambda d, nb: (d / f"{A}.ipynb").write_text(nbformat.writes(nb)[:2000]),
    "empty": lambda d, nb: (d / f"{A}.ipynb").write_bytes(b""),
    "wrongname": lambda d, nb: nbformat.write(nb, d / "my_work.ipynb"),
    "missing": lambda d, nb: (d / "notes.txt").write_text("I could not upload the notebook"),
    "otherassign": lambda d, nb: shutil.copy2(ROOT / "release" / "01_activations" / "01_activations.ipynb",
                                              d / f"{A}.ipynb"),
}
CASES = {name[5:].replace("_", "-"): fn for name, fn in dict(globals()).items() if name.startswith("case_")}

# student -> (expected score, phrase expected in the reason or review, or None)
EXPECT = {
    "ok": (FULL, None),
    "loop-top": (0, "time limit"),
    "loop-fn": (FULL - 3, "out of time|time limit"),
    "membomb": (FULL - 3, "MemoryError"),
    "exit": (FULL, None),
    "forkbomb": (None, None),  # whatever it scores, it must not stop or slow the batch
    "osexit": (0, "died|Kernel"),
    "segfault": (0, "died|Kernel"),
    "allclose": (FULL - 3, None),
    "liar": (FULL - 3, None),
    "patch-helpers": (FULL - 6, "forgets the bias"),  # affine_backward is checked with its own forward
    "redefine": (FULL - 3, None),
    "swallow": (FULL - 3, None),
    "edit-test": (FULL - 3, None),
    "delete-test": (FULL - 3, None),
    "duplicate-test": (FULL, None),
    "retype-test": (FULL - 3, None),
    "read-tests": (FULL, None),
    "write-gradebook": (FULL, None),
    "network": (FULL, None),
    "reference-call": (FULL - 3, "course library"),
    "reference-copy": (FULL, "copy of the library's reference"),
    "warning": (FULL, None),
    "notjson": (0, "not a valid notebook"),
    "empty": (0, "empty"),
    "wrongname": (0, "rename it"),
    "missing": (0, "no 00_gradient_checking.ipynb"),
    "otherassign": (0, "01_activations"),
}


# Cases that are only safe to run with every protection layer on (bubblewrap and a user of its own).
NEEDS_ISOLATION = {"forkbomb", "read-tests", "write-gradebook"}
ISOLATED = all(protections().values())


def digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, shared_build):
    root = tmp_path_factory.mktemp("hostile")
    shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(ROOT / "source", root / "source")  # every notebook: a submission of another is named
    shared_build.release_into(root, A)
    correct = filled_submission(root, A)
    for sid in EXPECT:
        if sid in NEEDS_ISOLATION and not ISOLATED:
            continue
        folder = root / "submitted" / sid / A
        folder.mkdir(parents=True)
        nb = nbformat.reads(nbformat.writes(correct), as_version=4)
        if sid in FILES:
            FILES[sid](folder, nb)
        else:
            nbformat.write(CASES[sid](nb, root), folder / f"{A}.ipynb")
    before = digest(root / "submitted")
    students = sorted(sid for sid in EXPECT if ISOLATED or sid not in NEEDS_ISOLATION)
    problems = grade.autograde(root, A, students, workers=2, progress=False, limits=LIMITS)
    grade.feedback_and_export(root, A)
    results = {r.student_id: r for r in grade.results(root, A, students, problems)}
    return root, before, results, students


def test_catalog_covers_at_least_twenty_cases():
    assert len(EXPECT) >= 20 and set(EXPECT) == set(CASES) | set(FILES)


@pytest.mark.parametrize("sid", sorted(EXPECT))
def test_hostile_submission_outcome(graded, sid):
    if sid in NEEDS_ISOLATION and not ISOLATED:
        pytest.skip(f"{sid} needs bubblewrap and root here (protections: {protections()})")
    _, _, results, _ = graded
    r = results[sid]
    score, phrase = EXPECT[sid]
    explained = " | ".join([r.problem, *[c.reason for c in r.cells], *r.review])
    if score is None:
        assert r.score <= FULL
    else:
        assert r.score == score, f"{sid}: got {r.score}, expected {score}; reasons: {explained[:1500]}"
    if phrase:
        assert re.search(phrase, explained), f"{sid}: no reason matching {phrase!r} in: {explained[:1500]}"


def test_submitted_is_untouched_and_nothing_leaked(graded):
    root, before, results, _ = graded
    assert digest(root / "submitted") == before
    html = (root / "feedback" / ("read-tests" if ISOLATED else "ok") / A / f"{A}.html").read_text()
    assert "check_relative_error(relative_error)" not in html and "BEGIN HIDDEN" not in html


def test_regrading_gives_the_same_grades(graded):
    root, before, results, students = graded
    again_students = ["ok", "allclose", "notjson", "osexit"]
    problems = grade.autograde(root, A, again_students, workers=2, progress=False, limits=LIMITS)
    again = {r.student_id: r.score for r in grade.results(root, A, again_students, problems)}
    assert again == {s: results[s].score for s in again_students}
    assert digest(root / "submitted") == before


def test_grade_report_names_the_protections():
    prot = protections()
    assert prot["memory, process and CPU limits (rlimit)"]
    assert any("bubblewrap" in k for k in prot)
