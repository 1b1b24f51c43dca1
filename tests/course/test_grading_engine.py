"""Parallel, distributed and cheap autograding give exactly the grades of a plain sequential run."""

import pytest

from course import grade
from course.jobs import make_job, run_job
from course.notebooks import grade_id, is_grade, is_solution, read_notebook
from tests.conftest import ROOT

A = "00_gradient_checking"
pytestmark = pytest.mark.slow


def scores(root, students, problems):
    return {r.student_id: [c.score for c in r.cells] for r in grade.results(root, A, students, problems)}


@pytest.mark.parametrize("path", sorted((ROOT / "source").glob("*/*.ipynb")), ids=lambda p: p.parent.name)
def test_plain_code_cells_are_tagged_as_experiments(path):
    """Autograding skips cells tagged "experiment"; every plain code cell must be one, and no graded cell."""
    for cell in read_notebook(path).cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type != "code":
            continue
        if is_grade(cell) or is_solution(cell) or grade_id(cell):
            assert "experiment" not in tags, grade_id(cell)
        else:
            assert "experiment" in tags, cell.source[:80]


@pytest.mark.serial  # two grading workers
def test_parallel_grading_matches_sequential(released_course):
    root = released_course
    students = grade.collect_folder(root, A, root / "examples" / "class_00").students
    sequential = scores(root, students, grade.autograde(root, A, students, workers=1, progress=False))
    parallel = scores(root, students, grade.autograde(root, A, students, workers=2, progress=False))
    assert parallel == sequential
    assert sum(sequential["ada"]) == 18 and sum(sequential["dev"]) == 12


def test_skipping_experiments_changes_no_grade(released_course):
    root = released_course
    grade.collect_folder(root, A, root / "examples" / "class_00")
    grade.ensure_gradebook(root, A)
    for student in ("ada", "ben", "dev"):
        fast = run_job(make_job(root, A, student, skip_experiments=True))
        full = run_job(make_job(root, A, student, skip_experiments=False))
        assert fast.ok and full.ok and fast.grades == full.grades, student


def test_grading_on_dask_needs_an_authenticated_cluster(released_course):
    """A bare address (the old ``tcp://`` route, open to any local user) is refused before any job is sent;
    grading on a TLS cluster, with the same grades as here, is tests/grading/test_dask_security.py's."""
    root = released_course
    students = grade.collect_folder(root, A, root / "examples" / "class_00").students
    with pytest.raises(TypeError, match="tls:// address and credentials"):
        grade.autograde(root, A, students, scheduler="tcp://127.0.0.1:8786", progress=False)
