"""Notebook 07 (PyTorch) faked in the student's kernel, graded through the real pipeline beside honest students.

Its grade cells used to be checked by the student's kernel alone (``kernel-only``): swallowing every exception
in the kernel, patching ``course.checks.transfer`` there, or calling copies of the library's references rebuilt
from their ``__code__`` gave 15 / 15. Now every cell is re-run by ``course.trusted``, the torch objects crossing
as descriptions (``course.torch_wire``), and a cell keeps its points only if both runs pass.
"""

from __future__ import annotations

import shutil

import nbformat
import pytest

from course import grade
from course.bench import filled_submission
from course.notebooks import grade_id, is_solution, read_notebook
from course.sandbox import Limits
from course.selfcheck import format_self_check, self_check
from tests.conftest import ROOT

A = "07_transfer_learning"
FULL = 15
EXERCISES = ["freeze", "replace_head", "extract_features", "param_groups", "train_epoch"]
LIMITS = Limits(cell_seconds=60, wall_seconds=300, memory_bytes=3 * 1024 ** 3)
pytestmark = [pytest.mark.slow, pytest.mark.serial]  # two grading workers, a batch of 7 PyTorch notebooks

# Every exception of the kernel swallowed, and the error flag of each cell cleared after it ran.
SWALLOW = '''ip = get_ipython()
ip.set_custom_exc((Exception,), lambda shell, etype, value, tb, tb_offset=None: None)
def _forget(result):
    result.error_in_exec = None
ip.events.register("post_run_cell", _forget)
'''
# The hidden checks replaced by no-ops in the kernel.
PATCH_CHECKS = '''import course.checks.transfer as _checks
for _name in dir(_checks):
    if _name.startswith("check_"):
        setattr(_checks, _name, lambda fn: None)
'''
# Copies of the references that the checks' guard (which swaps the references' __code__) does not reach.
CODE_COPIES = '''import types
import nnlab.transfer as _ref
def _copy(f):
    return types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__)
'''
WRONG = {"freeze": "def freeze(module):\n    return module\n",
         "replace_head": "def replace_head(model, num_classes):\n    return model\n",
         "extract_features": "def extract_features(model, X, batch_size=256):\n    return X\n",
         "param_groups": "def param_groups(model, backbone_lr, head_lr):\n    return []\n",
         "train_epoch": "def train_epoch(model, loader, optimizer, loss_fn):\n    return 0.0\n"}
EVAL_ONLY = "def freeze(module):\n    return module.eval()\n"


def copy(nb):
    return nbformat.reads(nbformat.writes(nb), as_version=4)


def after_setup(nb, code):
    """``code`` in a new cell right after the setup cell (the first code cell)."""
    i = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(code))
    return nb


def with_answers(nb, answers):
    for cell in nb.cells:
        if is_solution(cell) and grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    return nb


# student -> (notebook from (correct, release), expected score, phrase expected in a reason)
CASES = {
    "honest": (lambda ok, rel: copy(ok), FULL, None),
    "eval-only": (lambda ok, rel: with_answers(copy(ok), {"freeze": EVAL_ONLY}), FULL - 3,
                  "only switched the model to eval mode"),
    "swallow-release": (lambda ok, rel: after_setup(copy(rel), SWALLOW), 0, "NotImplementedError"),
    "swallow-wrong": (lambda ok, rel: after_setup(with_answers(copy(ok), WRONG), SWALLOW), 0, "trusted re-run"),
    "patch-checks": (lambda ok, rel: after_setup(copy(rel), PATCH_CHECKS), 0, "NotImplementedError"),
    "patch-swallow": (lambda ok, rel: after_setup(after_setup(copy(rel), PATCH_CHECKS), SWALLOW), 0,
                      "trusted re-run"),
    "code-copies": (lambda ok, rel: with_answers(after_setup(copy(rel), CODE_COPIES),
                                                 {n: f"{n} = _copy(_ref.{n})\n" for n in EXERCISES}), 0,
                    "course library"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, shared_build):
    root = tmp_path_factory.mktemp("transfer-attacks")
    shutil.copy2(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(ROOT / "source", root / "source")
    shared_build.release_into(root, A)
    correct = filled_submission(root, A)
    release = read_notebook(root / "release" / A / f"{A}.ipynb")
    for sid, (build, _, _) in CASES.items():
        folder = root / "submitted" / sid / A
        folder.mkdir(parents=True)
        nbformat.write(build(correct, release), folder / f"{A}.ipynb")
    problems = grade.autograde(root, A, sorted(CASES), workers=2, progress=False, limits=LIMITS)
    return root, {r.student_id: r for r in grade.results(root, A, sorted(CASES), problems)}


@pytest.mark.parametrize("sid", sorted(CASES))
def test_faked_exercises_score_nothing_and_honest_students_keep_their_points(graded, sid):
    _, results = graded
    r = results[sid]
    _, score, phrase = CASES[sid]
    reasons = " | ".join([r.problem, *[c.reason for c in r.cells], *r.review])
    assert not r.problem, reasons
    assert r.score == score, f"{sid}: {r.score} / {r.max_score}, expected {score}: {reasons[:2000]}"
    if phrase:
        assert phrase in reasons, f"{sid}: no {phrase!r} in {reasons[:2000]}"


def test_one_named_mistake_costs_exactly_its_exercise(graded):
    _, results = graded
    lost = {c.grade_id for c in results["eval-only"].lost()}
    assert lost == {"test_freeze", "hidden_freeze"}


def test_cells_the_kernel_passed_are_flagged_as_overridden(graded):
    """The report names the cells that passed in the faking kernel and failed the trusted re-run."""
    _, results = graded
    for sid in ("swallow-release", "swallow-wrong", "patch-swallow"):
        assert {f"{kind}_{e}" for kind in ("test", "hidden") for e in EXERCISES} <= set(results[sid].overridden), sid
    assert {f"hidden_{e}" for e in EXERCISES} <= set(results["patch-checks"].overridden)
    assert not results["honest"].overridden and not results["eval-only"].overridden


def test_self_check_does_not_say_a_faked_notebook_passes(graded):
    """``course check`` grades as the instructor does: the swallowing kernel does not fool it either."""
    root, _ = graded
    notebook = root / "submitted" / "swallow-release" / A / f"{A}.ipynb"
    result = self_check(ROOT, notebook)
    text = format_self_check(result, A)
    assert result.score == 0 and "All tests pass" not in text, text
