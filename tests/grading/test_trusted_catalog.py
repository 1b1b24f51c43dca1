"""The trusted re-run (course.trusted) accepts every correct answer of the mistake catalogs and rejects the
mistakes that do not depend on aliasing (which only the kernel run can see, and which it still catches).

Notebook 07 (PyTorch) passes models, tensors, optimizers and loaders to the student's process as descriptions
(course.torch_wire): each of its mistakes must fail there with the message that names it.
"""

import functools
import importlib

import pytest

from course.notebooks import read_notebook
from course.sandbox import Limits
from course.trusted import submission_with, trusted_run
from tests.conftest import ROOT

# Every notebook that has a mistake catalog (tests/course/catalogs/catalog_NN.py).
NOTEBOOKS = sorted((p.stem[-2:], importlib.import_module(f"tests.course.catalogs.{p.stem}").NOTEBOOK)
                   for p in (ROOT / "tests" / "course" / "catalogs").glob("catalog_[0-9][0-9].py"))
# The mistakes are re-run for a few notebooks only (the in-process catalog runs them all in the kernel's way).
REJECT = ["00_gradient_checking", "03_regularization"]
# Mistakes about keeping a reference instead of a copy: arrays cross the process boundary by value, so only
# the run in the student's kernel sees them; a cell scores only if both runs pass, so they still lose points.
KERNEL_ONLY = {("numerical_gradient_array", "keeps a view of the output"), ("EarlyStopping", "keeps the live dict"),
               ("EarlyStopping", "shallow copy of the dict")}
pytestmark = pytest.mark.slow


def catalog(nn):
    return importlib.import_module(f"tests.course.catalogs.catalog_{nn}")


@pytest.mark.parametrize("nn, name", NOTEBOOKS, ids=[n for _, n in NOTEBOOKS])
def test_trusted_run_gives_correct_alternatives_full_marks(nn, name):
    src = read_notebook(ROOT / "source" / name / f"{name}.ipynb")
    for exercise, code in catalog(nn).CORRECT:
        out = trusted_run(src, submission_with(src, {n: code for n in exercise.split("+")}), Limits(cell_seconds=60))
        assert not any(out.values()), (exercise, {k: v for k, v in out.items() if v})


@pytest.mark.parametrize("nn, name", [n for n in NOTEBOOKS if n[1] in REJECT], ids=REJECT)
def test_trusted_run_rejects_the_mistakes(nn, name):
    src = read_notebook(ROOT / "source" / name / f"{name}.ipynb")
    for exercise, label, code, *_ in catalog(nn).MISTAKES:
        if (exercise, label) in KERNEL_ONLY:
            continue
        out = trusted_run(src, submission_with(src, {n: code for n in exercise.split("+")}), Limits(cell_seconds=60))
        assert out[f"hidden_{exercise.split('+')[-1]}"], (exercise, label)


TORCH = "07_transfer_learning"


@functools.lru_cache(maxsize=1)
def _torch_source():
    return read_notebook(ROOT / "source" / TORCH / f"{TORCH}.ipynb")


@pytest.mark.parametrize("exercise, label, code, phrase", catalog("07").MISTAKES,
                         ids=[f"{m[0]}-{m[1]}" for m in catalog("07").MISTAKES])
def test_trusted_run_names_each_torch_mistake(exercise, label, code, phrase):
    src = _torch_source()
    out = trusted_run(src, submission_with(src, {exercise: code}), Limits(cell_seconds=60))
    # The course library is not there at all: its reference cannot be called (the kernel run names it the same way).
    expected = "imports the course library" if "library's reference" in label else phrase
    assert expected in out[f"hidden_{exercise}"], out[f"hidden_{exercise}"]
    others = {g: why for g, why in out.items() if why and g not in (f"test_{exercise}", f"hidden_{exercise}")}
    assert not others, others  # one mistake costs its own exercise only
