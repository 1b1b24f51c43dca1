"""Every notebook's mistake catalog (tests/course/catalogs/catalog_NN.py): known wrong answers lose their
exercise's points with a message that names the mistake, other correct answers keep full marks.

Runs the notebook's real test cells (visible and hidden, from source/) in-process with
course.inprocess.run_test_cells. A catalog is data: see tests/course/catalogs/catalog_00.py for its layout.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

from course.inprocess import run_test_cells
from course.mistakes import classify, registry
from course.notebooks import BEGIN_SOLUTION, END_SOLUTION, grade_id, is_solution, read_notebook, remove_region
from tests.conftest import ROOT

CATALOG_DIR = Path(__file__).parent / "catalogs"


def load_catalogs() -> list[ModuleType]:
    return [importlib.import_module(f"tests.course.catalogs.{p.stem}")
            for p in sorted(CATALOG_DIR.glob("catalog_[0-9][0-9].py"))]


CATALOGS = load_catalogs()


def notebook_path(catalog: ModuleType) -> Path:
    return ROOT / "source" / catalog.NOTEBOOK / f"{catalog.NOTEBOOK}.ipynb"


def answers_for(exercise: str, code: str) -> dict[str, str]:
    """``"a+b"``: one piece of code that defines both exercises (it replaces both solution cells)."""
    return {name: code for name in exercise.split("+")}


def allowed_cells(catalog: ModuleType, exercise: str) -> set[str]:
    """The grade cells a mistake in ``exercise`` may fail: its own, and those of the exercises it spills into."""
    names = set(exercise.split("+"))
    for name in list(names):
        names |= set(getattr(catalog, "SPILLOVER", {}).get(name, []))
    return {f"{kind}_{name}" for name in names for kind in ("test", "hidden")}


MISTAKES = [(c, *m) for c in CATALOGS for m in c.MISTAKES]
CORRECT = [(c, *a) for c in CATALOGS for a in c.CORRECT]


@pytest.mark.parametrize("catalog, exercise, label, code, phrase", MISTAKES,
                         ids=[f"{c.NOTEBOOK[:2]}-{m[0]}-{m[1]}" for c, *m in MISTAKES])
def test_mistake_loses_the_exercise_points(catalog, exercise, label, code, phrase):
    outcomes = run_test_cells(notebook_path(catalog), answers_for(exercise, code))
    hidden = {name: outcomes[f"hidden_{name}"] for name in exercise.split("+")}
    assert any(hidden.values()), f"the hidden tests of {exercise} accept the mistake '{label}'"
    assert any(phrase in why for why in hidden.values()), f"the message does not name the mistake '{label}': {hidden}"
    # course report counts the mistake under the identifier that course.checks' MISTAKES gives this phrase.
    expected = {key for key, p in registry().items() if p == phrase and key.split(":")[0] in exercise.split("+")}
    assert expected, f"no identifier in course.checks' MISTAKES has the phrase {phrase!r} of '{label}'"
    assert expected & {classify(name, why) for name, why in hidden.items() if why}, \
        f"'{label}' is counted as {[classify(n, w) for n, w in hidden.items() if w]}, not {sorted(expected)}"
    others = {g: why for g, why in outcomes.items() if why and g not in allowed_cells(catalog, exercise)}
    assert not others, others  # one mistake costs its own exercise only (and those declared in SPILLOVER)


@pytest.mark.parametrize("catalog, exercise, code", CORRECT,
                         ids=[f"{c.NOTEBOOK[:2]}-{a[0]}-{i}" for i, (c, *a) in enumerate(CORRECT)])
def test_correct_alternative_gets_full_marks(catalog, exercise, code):
    outcomes = run_test_cells(notebook_path(catalog), answers_for(exercise, code))
    assert not any(outcomes.values()), {g: why for g, why in outcomes.items() if why}


@pytest.mark.parametrize("catalog", CATALOGS, ids=[c.NOTEBOOK for c in CATALOGS])
def test_reference_solutions_pass_every_cell(catalog):
    outcomes = run_test_cells(notebook_path(catalog))
    assert not any(outcomes.values()), {g: why for g, why in outcomes.items() if why}


@pytest.mark.parametrize("catalog", CATALOGS, ids=[c.NOTEBOOK for c in CATALOGS])
def test_untouched_stubs_fail_every_cell(catalog):
    # The release's stubs: each solution region replaced by `raise NotImplementedError()`, as nbgrader does.
    nb = read_notebook(notebook_path(catalog))
    stubs = {grade_id(c): remove_region(c.source, BEGIN_SOLUTION, END_SOLUTION, "raise NotImplementedError()")
             for c in nb.cells if is_solution(c)}
    outcomes = run_test_cells(notebook_path(catalog), stubs)
    assert all(outcomes.values()), [g for g, why in outcomes.items() if not why]
    hidden = {g: why for g, why in outcomes.items() if g.startswith("hidden_")}
    assert all("not implemented yet" in why for why in hidden.values()), hidden


@pytest.mark.parametrize("catalog", CATALOGS, ids=[c.NOTEBOOK for c in CATALOGS])
def test_catalog_covers_every_exercise(catalog):
    nb = read_notebook(notebook_path(catalog))
    assert catalog.EXERCISES == [grade_id(c) for c in nb.cells if is_solution(c)]
    named = {n for e, *_ in catalog.MISTAKES + catalog.CORRECT for n in e.split("+")}
    named |= {n for spill in getattr(catalog, "SPILLOVER", {}).values() for n in spill}
    assert named <= set(catalog.EXERCISES), named - set(catalog.EXERCISES)
    for name in catalog.EXERCISES:
        assert sum(m[0] == name for m in catalog.MISTAKES) >= 2, f"{name}: fewer than two known mistakes"
        assert any(name in c[0].split("+") for c in catalog.CORRECT), f"{name}: no correct alternative"


def test_every_source_notebook_has_a_catalog():
    notebooks = sorted(p.name for p in (ROOT / "source").iterdir() if p.is_dir() and p.name[:2].isdigit())
    assert {c.NOTEBOOK for c in CATALOGS} == set(notebooks)
