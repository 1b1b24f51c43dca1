"""course report: the class's mistakes counted from real grading, and the page an instructor opens.

The integration test grades part of the bundled example class (examples/class, drawn from the mistake
catalogs by its make_class.py) through the real pipeline, then checks that the report counts exactly the
named mistakes and undone exercises that examples/class/expected.json says those students were given.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course.grade import CellResult, StudentResult
from course.mistakes import classify, is_named, registry
from course.report import load, render, save_results, write_class_table, write_report
from tests.conftest import ROOT

CLASS = ROOT / "examples" / "class"
EXPECTED = json.loads((CLASS / "expected.json").read_text())


def test_every_named_mistake_has_a_unique_exercise_prefixed_identifier():
    keys = list(registry())
    assert len(keys) > 100
    assert all(re.fullmatch(r"\w+:[a-z0-9][a-z0-9-]*", k) for k in keys), [k for k in keys
                                                                         if not re.fullmatch(r"\w+:[a-z0-9-]+", k)]


def test_classify_names_undone_ungraded_known_and_other():
    assert classify("relu_forward", "not done yet: the function still raises NotImplementedError") == \
        "relu_forward:not-done"
    assert classify("affine_backward", "db for x (4, 3) ... db averages dout over the samples") == \
        "affine_backward:db-averaged"
    assert classify("affine_backward", "something nobody foresaw") == "affine_backward:other"
    assert not is_named("affine_backward:other") and is_named("affine_backward:db-averaged")


def fake_class(tmp_path: Path) -> Path:
    cells = lambda reasons: [CellResult(f"hidden_{e}", 0.0 if why else 2.0, 2.0, why) for e, why in reasons.items()]
    results = [
        StudentResult("ana", 4.0, 4.0, cells({"relu_forward": "", "relu_backward": ""})),
        StudentResult("bo_b", 4.0, 2.0, cells({"relu_forward": "", "relu_backward": "relu_backward lets gradient "
                                                "through where x == 0 <script>alert(1)</script>"})),
        StudentResult("cy@x.org", 4.0, 0.0, cells({"relu_forward": "not done yet: the function still raises "
                                                   "NotImplementedError", "relu_backward": "weird <b>bold</b>"}),
                      copies=["relu_backward"], overridden=["hidden_relu_backward"]),
        StudentResult("dee", 4.0, 0.0, cells({"relu_forward": "not graded: x", "relu_backward": "not graded: x"}),
                      problem="not a valid notebook <img src=x onerror=alert(2)>"),
    ]
    save_results(tmp_path, "01_activations", results, "protections: all")
    return tmp_path


def test_report_counts_mistakes_and_escapes_everything_a_student_wrote(tmp_path):
    root = fake_class(tmp_path)
    report = load(root, "01_activations")
    assert [(m.key, m.students) for m in report.mistakes] == [("relu_backward:gradient-at-x-0", ["bo_b"])]
    assert [(m.key, m.students, m.example) for m in report.others] == [("relu_backward:other", ["cy@x.org"],
                                                                        "weird <b>bold</b>")]
    assert report.not_done == {"relu_forward": ["cy@x.org"]}
    page = render(report)
    assert "<script" not in page and "<img src=x" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "onerror=alert(2)" in page  # shown, as text
    assert "Content-Security-Policy" in page and "data:image/png;base64," in page
    for text in ("relu_backward:gradient-at-x-0", "hidden_relu_backward", "not a valid notebook", "cy@x.org"):
        assert text in page
    assert "1 not graded" in report.summary()


def test_class_table_has_every_student_and_assignment_with_totals(tmp_path):
    root = fake_class(tmp_path)
    save_results(root, "00_gradient_checking", [StudentResult("ana", 18.0, 18.0), StudentResult("eve", 18.0, 9.0)])
    html_path, csv_path = write_class_table(root, ["00_gradient_checking", "01_activations"])
    rows = list(csv.reader(csv_path.open()))
    assert rows[0] == ["student", "00_gradient_checking", "01_activations", "total (of 22)"]
    table = {r[0]: r[1:] for r in rows[1:]}
    assert table["ana"] == ["18", "4", "22"] and table["eve"] == ["9", "", "9"] and table["dee"] == ["", "", "0"]
    assert "class_report_01_activations.html" in html_path.read_text()


def test_report_without_grades_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="course grade 01_activations"):
        load(tmp_path, "01_activations")


def test_example_class_is_reproducible_from_the_catalogs(tmp_path):
    # make_class.py writes into its own folder: run a copy of it against a copy of the course.
    for name in ("source", "release", "tests", "course", "examples"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "artifacts"))
    subprocess.run([sys.executable, str(tmp_path / "examples" / "class" / "make_class.py")], check=True,
                   capture_output=True, cwd=tmp_path)
    fresh = tmp_path / "examples" / "class"
    committed = sorted(p.relative_to(CLASS) for p in CLASS.rglob("*") if p.is_file() and p.suffix != ".py")
    assert sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file() and p.suffix != ".py") == committed
    for rel in committed:
        assert (fresh / rel).read_bytes() == (CLASS / rel).read_bytes(), f"examples/class/{rel} is stale"


def most_mistaken(assignment: str, n: int) -> list[str]:
    counts: dict[str, int] = {}
    for key, students in EXPECTED[assignment].items():
        for s in students:
            counts[s] = counts.get(s, 0) + (1 if is_named(key) else 0)
    return sorted(counts, key=lambda s: (-counts[s], s))[:n]


@pytest.mark.slow
def test_report_counts_exactly_the_seeded_mistakes_of_a_graded_class(scratch_course, tmp_path):
    # Ten submissions: the five of class_00 (00 only) and the students with the most mistakes in each notebook.
    picked = {"00_gradient_checking": ["ada", "ben", "cleo", "dev", "eve", *most_mistaken("00_gradient_checking", 2)],
              "08_training_practice": most_mistaken("08_training_practice", 3)}
    subset = tmp_path / "class"
    for assignment, students in picked.items():
        for s in students:
            shutil.copytree(CLASS / s / assignment, subset / s / assignment)
    shutil.copytree(ROOT / "release", scratch_course / "release")
    run = subprocess.run([sys.executable, "-m", "course.cli", "grade", "--all", "--submissions", str(subset),
                          "--workers", "2"], cwd=scratch_course, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    run = subprocess.run([sys.executable, "-m", "course.cli", "report", "--all"], cwd=scratch_course,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "class_report_08_training_practice.html" in run.stdout and "most common mistakes" in run.stdout
    for assignment, students in picked.items():
        report = load(scratch_course, assignment)
        got = {m.key: sorted(m.students) for m in report.mistakes}
        got.update({f"{e}:not-done": sorted(s) for e, s in report.not_done.items()})
        want = {k: sorted(set(v) & set(students)) for k, v in EXPECTED[assignment].items()}
        assert got == {k: v for k, v in want.items() if v}, assignment
        assert not report.others, [(m.key, m.example) for m in report.others]
        assert (scratch_course / f"class_report_{assignment}.html").exists()
    assert [s["student_id"] for s in load(scratch_course, "00_gradient_checking").students if s["problem"]] == ["eve"]
    table = list(csv.reader((scratch_course / "class_grades.csv").open()))
    assert {r[0] for r in table[1:]} == {s for group in picked.values() for s in group}
