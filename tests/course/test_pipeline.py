"""The real pipeline: nbgrader generate_assignment, nbclient, autograde, feedback, export, self-check, CLI."""

import csv
import hashlib
import os
import shutil
import subprocess
import sys

import nbformat
import pytest

from course import grade
from course.build import execute_notebook, source_notebook
from course.notebooks import hidden_test_code, read_notebook, solution_code
from course.paths import assignments
from course.selfcheck import format_self_check, self_check
from tests.conftest import ROOT

A = "00_gradient_checking"
ALL = assignments(ROOT)
pytestmark = pytest.mark.slow


def code_sources(nb):
    return [c.source for c in nb.cells if c.cell_type == "code"]


def tree_digest(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def first_difference(fresh, committed):
    """Where two builds of a notebook differ: the first cell whose outputs (or source) are not the same."""
    a, b = nbformat.read(fresh, as_version=4), nbformat.read(committed, as_version=4)
    for i, (x, y) in enumerate(zip(a.cells, b.cells)):
        if x != y:
            return f"cell {i} ({x.source[:60]!r}): {str(x.get('outputs'))[:300]} != {str(y.get('outputs'))[:300]}"
    return "the notebooks' metadata or cell count"


@pytest.mark.parametrize("name", ALL)
def test_release_is_current(shared_build, name):
    fresh, committed = shared_build.release(name) / "release" / name, ROOT / "release" / name
    assert tree_digest(fresh) == tree_digest(committed), "release/ is stale: run `course build`"


@pytest.mark.parametrize("name", ALL)
def test_solutions_are_current(shared_build, name):
    # Current: the committed solution was executed from today's inputs (the hash of its source, the library and
    # the package versions in its metadata), its code is the source's, and its outputs read the same as a fresh
    # build's on this machine: words equal, numbers within one unit of their last printed place, plots within
    # course.outputs.IMAGE_TOLERANCE. Another processor's BLAS changes last bits, which that allows; a result
    # that depends on them (a chaotic run) is a different result, and fails here.
    from course.outputs import differences

    fresh_dir = shared_build.solution(name) / "solutions" / name  # raises if a cell of the solution fails
    fresh, committed = fresh_dir / f"{name}.ipynb", ROOT / "solutions" / name / f"{name}.ipynb"
    a, b = nbformat.read(fresh, as_version=4), nbformat.read(committed, as_version=4)
    assert code_sources(a) == code_sources(b), "solutions/ is stale: run `course build`"
    assert b.metadata.get("course", {}).get("inputs") == a.metadata["course"]["inputs"], \
        "solutions/ was executed from other inputs (library, source or package versions): run `course build`"
    assert differences(a, b) == [], f"a fresh build of {name} reads differently: {differences(a, b)[:3]}"
    assert {k: v for k, v in tree_digest(fresh_dir).items() if k.suffix != ".ipynb"} == \
        {k: v for k, v in tree_digest(committed.parent).items() if k.suffix != ".ipynb"}


@pytest.mark.parametrize("name", ["00_gradient_checking", "02_initialization"])  # a cheap one, one that trains
def test_two_builds_on_one_machine_are_byte_for_byte_identical(shared_build, tmp_path, name):
    from course.build import build_solution

    shutil.copy2(ROOT / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    shutil.copytree(ROOT / "source" / name, tmp_path / "source" / name)
    again, _ = build_solution(tmp_path, name)
    first = shared_build.solution(name) / "solutions" / name / f"{name}.ipynb"
    assert again.read_bytes() == first.read_bytes(), \
        f"two builds of {name} differ: {first_difference(again, first)}"


def test_course_build_skips_a_current_solution_and_force_executes_it(released_course):
    from course.build import build_solution, solution_is_current

    root = released_course
    assert not solution_is_current(root, A)
    build_solution(root, A)
    assert solution_is_current(root, A)
    stamp = (root / "solutions" / A / f"{A}.ipynb").stat().st_mtime_ns
    proc = run_course(root, "build", A)
    assert proc.returncode == 0 and "up to date" in proc.stdout, proc.stdout + proc.stderr
    assert (root / "solutions" / A / f"{A}.ipynb").stat().st_mtime_ns == stamp
    src = root / "source" / A / f"{A}.ipynb"
    nb = nbformat.read(src, as_version=4)
    nb.cells[0].source += "\n"
    nbformat.write(nb, src)
    assert not solution_is_current(root, A)  # the source changed
    proc = run_course(root, "build", A, "--force")
    assert proc.returncode == 0 and "executed in" in proc.stdout, proc.stdout + proc.stderr
    assert solution_is_current(root, A)


@pytest.mark.parametrize("name", ALL)
def test_solutions_are_executed_and_pass(name):
    committed = nbformat.read(ROOT / "solutions" / name / f"{name}.ipynb", as_version=4)
    outputs = [o for c in committed.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the experiments' plots are in the solutions"
    assert all(c.execution_count for c in committed.cells if c.cell_type == "code"), "every cell was executed"


def test_a_cells_stream_outputs_are_merged(tmp_path):
    # A print reaches the notebook in one message or several (when the kernel flushes): merged, the build's
    # bytes do not depend on it. stdout comes before stderr.
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys, time\nprint('a', flush=True)\ntime.sleep(0.2)\nprint('b', file=sys.stderr, flush=True)\n"
        "time.sleep(0.2)\nprint('c', end='', flush=True)\ntime.sleep(0.2)\nprint()")])
    execute_notebook(nb, tmp_path)
    assert [(o.name, o.text) for o in nb.cells[0].outputs] == [("stdout", "a\nc\n"), ("stderr", "b\n")]


@pytest.mark.parametrize("name", ALL)
def test_no_solution_or_hidden_test_code_leaks(name):
    src = read_notebook(source_notebook(ROOT, name))
    hidden, solution = hidden_test_code(src), solution_code(src)
    assert hidden and solution
    release = (ROOT / "release" / name / f"{name}.ipynb").read_text()
    solved = (ROOT / "solutions" / name / f"{name}.ipynb").read_text()
    for line in hidden:
        assert line not in release and line not in solved, line
    release_code = "\n".join(code_sources(nbformat.reads(release, as_version=4)))
    leaked = [line for line in solution if line in release_code.split("\n") or f"    {line}" in release_code]
    assert not leaked, leaked
    assert "BEGIN SOLUTION" not in solved and "BEGIN HIDDEN TESTS" not in solved


def test_example_class_is_graded_as_expected(released_course):
    root = released_course
    examples = root / "examples" / "class_00"
    before = tree_digest(examples)
    students = grade.collect_folder(root, A, examples).students
    assert students == ["ada", "ben", "cleo", "dev", "eve", "finn"]
    submitted_before = tree_digest(root / "submitted")
    problems = grade.autograde(root, A, students)
    grade.feedback_and_export(root, A)
    results = {r.student_id: r for r in grade.results(root, A, students, problems)}

    assert results["ada"].score == results["ada"].max_score == 18  # her own answers: full marks
    assert results["ada"].review == [], "an honest student is never flagged"
    assert results["finn"].score == 18  # correct, but two answers are the library's functions pasted in
    assert [r.split(" is a copy of the library's reference")[0] for r in results["finn"].review] == \
        ["numerical_gradient_array", "softmax_cross_entropy"]
    assert results["cleo"].score == 0 and all(c.score == 0 for c in results["cleo"].cells)  # untouched release
    assert all("not done yet" in c.reason or "not implemented yet" in c.reason for c in results["cleo"].cells)
    assert results["ben"].score == 9  # three of six exercises done
    assert {c.exercise for c in results["ben"].lost()} == {"numerical_gradient_array", "affine_backward",
                                                            "softmax_cross_entropy"}
    dev = {c.grade_id: c.reason for c in results["dev"].lost()}
    assert results["dev"].score == 12 and set(dev) == {"test_relative_error", "hidden_relative_error",
                                                       "test_softmax_cross_entropy", "hidden_softmax_cross_entropy"}
    assert "summed over the batch" in dev["hidden_softmax_cross_entropy"]
    assert "return 0.0" in dev["hidden_relative_error"]
    assert "not a valid notebook" in results["eve"].problem and results["eve"].score == 0

    with open(root / "grades.csv") as f:
        rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f) if r["assignment"] == A}
    assert rows == {"ada": 18, "ben": 9, "cleo": 0, "dev": 12, "eve": 0, "finn": 18}

    hidden = hidden_test_code(read_notebook(source_notebook(root, A)))
    solution = solution_code(read_notebook(source_notebook(root, A)))
    for sid in ["ada", "ben", "cleo", "dev"]:
        html = (root / "feedback" / sid / A / f"{A}.html").read_text()
        assert not [line for line in hidden if line in html], f"hidden tests leak into {sid}'s feedback"
        assert "checks/gradient_checking.py" not in html  # no traceback frames from the test cells
    cleo_html = (root / "feedback" / "cleo" / A / f"{A}.html").read_text()
    assert "not implemented yet" in cleo_html
    assert not [line for line in solution if len(line) > 12 and line in cleo_html]

    report = grade.format_report(A, list(results.values()))
    assert "eve: not graded" in report and "summed over the batch" in report
    assert "finn: softmax_cross_entropy is a copy of the library's reference" in report and "ada:" not in report
    assert tree_digest(examples) == before and tree_digest(root / "submitted") == submitted_before


def test_regrading_is_safe_and_gives_the_same_grades(scratch_course):
    root = scratch_course
    students = grade.collect_folder(root, A, root / "examples" / "class_00").students[:2]
    first = [(r.student_id, r.score) for r in grade.results(root, A, students, grade.autograde(root, A, students))]
    again = [(r.student_id, r.score) for r in grade.results(root, A, students, grade.autograde(root, A, students))]
    assert first == again == [("ada", 18), ("ben", 9)]


def test_self_check_reports_per_exercise_without_hidden_code(scratch_course):
    root = scratch_course
    result = self_check(root, root / "examples" / "class_00" / "dev" / A / f"{A}.ipynb")
    text = format_self_check(result, A)
    assert "12 / 18" in text and "FAIL softmax_cross_entropy" in text and "ok   affine_backward" in text
    assert "summed over the batch" in text
    assert not [line for line in hidden_test_code(read_notebook(source_notebook(root, A))) if line in text]
    full = self_check(root, root / "examples" / "class_00" / "ada" / A / f"{A}.ipynb")
    assert full.score == full.max_score == 18


def run_course(root, *args):
    env = {**os.environ, "COURSE_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "course.cli", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)


def test_cli_check_of_the_untouched_release_and_of_a_broken_file(released_course):
    root = released_course
    proc = run_course(root, "check", f"release/{A}/{A}.ipynb")
    assert proc.returncode == 1 and "0 / 18 points" in proc.stdout and "not done yet" in proc.stdout
    proc = run_course(root, "check", f"examples/class_00/eve/{A}/{A}.ipynb")
    assert proc.returncode == 2 and "not a valid notebook" in proc.stderr
    proc = run_course(root, "check", "missing.ipynb", "--assignment", A)
    assert proc.returncode == 2 and "not found" in proc.stderr
    zip_path = root / "class.zip"
    import zipfile
    with zipfile.ZipFile(zip_path, "w") as zf:
        for sid in ("ada", "cleo"):
            zf.write(root / "examples" / "class_00" / sid / A / f"{A}.ipynb", f"{sid}_{A}.ipynb")
    proc = run_course(root, "grade", A, "--zip", str(zip_path))
    assert proc.returncode == 0, proc.stderr
    assert "ada" in proc.stdout and "18 / 18" in proc.stdout and "cleo" in proc.stdout


def test_cli_help_and_bad_arguments(scratch_course):
    for sub in ("build", "grade", "check"):
        proc = run_course(scratch_course, sub, "--help")
        assert proc.returncode == 0 and "example" in proc.stdout
    proc = run_course(scratch_course, "grade", "99_nope")
    assert proc.returncode == 2 and "unknown assignment" in proc.stderr and A in proc.stderr
    proc = run_course(scratch_course, "grade", A, "--cell-timeout", "0")
    assert proc.returncode == 2 and "must be positive" in proc.stderr and "Autograding" not in proc.stdout
    proc = run_course(scratch_course, "frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_bench_measures_and_rejects_bad_arguments(scratch_course):
    from course.bench import bench_training_step
    t = bench_training_step(sizes=(20, 16, 3), batch=8, repeats=2)
    assert all(t[k] > 0 for k in ("nnlab_float64_ms", "torch_float64_ms", "ratio_float32"))
    proc = run_course(scratch_course, "bench", "--submissions", "0")
    assert proc.returncode == 2 and "at least 1" in proc.stderr
    proc = run_course(scratch_course, "bench", "--skip", "nothing")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_only_what_a_solution_runs_makes_it_stale(tmp_path, monkeypatch):
    """The grading machinery changes no solution's outputs: editing it leaves every solution current."""
    import course
    from course.build import solution_inputs

    copy = tmp_path / "course"
    shutil.copytree(ROOT / "course", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(course, "__file__", str(copy / "__init__.py"))
    before = solution_inputs(ROOT, A)
    (copy / "ingest.py").write_text((copy / "ingest.py").read_text() + "\n# a grading-only change\n")
    assert solution_inputs(ROOT, A) == before
    (copy / "checks" / "gradient_checking.py").write_text(
        (copy / "checks" / "gradient_checking.py").read_text() + "\n# a visible test's helper\n")
    assert solution_inputs(ROOT, A) != before
