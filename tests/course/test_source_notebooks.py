"""Source notebooks are clean sources with a consistent grading structure."""

import json
import re

import pytest

from course.notebooks import grade_cells, grade_id, is_solution, read_notebook
from tests.conftest import ROOT

SOURCES = sorted((ROOT / "source").glob("*/*.ipynb"))
CATALOG_00 = ["numerical_gradient", "numerical_gradient_array", "relative_error", "affine_forward",
              "affine_backward", "softmax_cross_entropy"]


@pytest.mark.parametrize("path", SOURCES, ids=[p.parent.name for p in SOURCES])
def test_source_is_clean(path):
    raw = json.loads(path.read_text())
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), "outputs must be stripped"
    text = "".join("".join(c["source"]) for c in raw["cells"])
    assert "sys.path" not in text and "%cd" not in text
    assert path.stem == path.parent.name, "the notebook is named like its assignment folder"


@pytest.mark.parametrize("path", SOURCES, ids=[p.parent.name for p in SOURCES])
def test_every_exercise_has_visible_and_hidden_graded_tests(path):
    nb = read_notebook(path)
    exercises = [grade_id(c) for c in nb.cells if is_solution(c)]
    tests = {grade_id(c): c for c in grade_cells(nb)}
    ids = [grade_id(c) for c in nb.cells if grade_id(c)]
    assert len(ids) == len(set(ids)), "grade ids are unique"
    for name in exercises:
        assert f"test_{name}" in tests and f"hidden_{name}" in tests, name
        assert tests[f"test_{name}"].metadata["nbgrader"]["points"] > 0
        hidden = tests[f"hidden_{name}"]
        assert hidden.metadata["nbgrader"]["points"] > 0
        assert "### BEGIN HIDDEN TESTS" in hidden.source and "### END HIDDEN TESTS" in hidden.source
        solution = next(c for c in nb.cells if is_solution(c) and grade_id(c) == name).source
        assert re.search(rf"^(def|class) {name}\b", solution, re.M), f"the solution cell {name} defines {name}"


def test_notebook_00_has_the_catalog_exercises_with_their_signatures():
    nb = read_notebook(ROOT / "source" / "00_gradient_checking" / "00_gradient_checking.ipynb")
    text = "\n".join(c.source for c in nb.cells if is_solution(c))
    assert [grade_id(c) for c in nb.cells if is_solution(c)] == CATALOG_00
    for signature in ["numerical_gradient(f, x, h=1e-5)", "numerical_gradient_array(f, x, dout, h=1e-5)",
                      "relative_error(a, b)", "affine_forward(x, W, b)", "affine_backward(dout, cache)",
                      "softmax_cross_entropy(scores, y)"]:
        assert f"def {signature}:" in text, signature
