"""Real student ids (university logins, e-mail addresses) are graded; only ids unsafe as a folder name or as
nbgrader's student glob are refused, with the reason. Submissions that cannot be graded are counted and named."""

import csv
import shutil
import zipfile

import pytest

from course import grade

A = "00_gradient_checking"
REAL_IDS = ["jane_doe", "jdoe@uni.edu", "s1234567", "o.neil-smith", "jörg_müller"]
UNSAFE_IDS = ["a b", ".hidden", "-rf", "star*", "plus+sign", "q?", "[x]"]
pytestmark = pytest.mark.slow


def class_folder(root, ids, source="ada"):
    folder = root / "class"
    for sid in ids:
        shutil.copytree(root / "examples" / "class_00" / source, folder / sid)
    return folder


def test_folder_collection_keeps_real_ids_and_names_the_refused_ones(scratch_course):
    folder = class_folder(scratch_course, REAL_IDS + UNSAFE_IDS)
    intake = grade.collect_folder(scratch_course, A, folder)
    assert intake.students == sorted(REAL_IDS)
    assert sorted(p.name for p in (scratch_course / "submitted").iterdir()) == sorted(REAL_IDS)
    assert sorted(intake.set_aside) == sorted(UNSAFE_IDS)
    assert all(why.startswith("a student id may hold") for why in intake.set_aside.values())
    summary = intake.summary()
    assert all(f"  {sid}: a student id may hold" in summary for sid in UNSAFE_IDS), summary


def test_zip_names_are_split_from_the_right(scratch_course):
    zip_path = scratch_course / "class.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        for sid in REAL_IDS + ["star*"]:
            zf.write(scratch_course / "examples" / "class_00" / "ada" / A / f"{A}.ipynb", f"{sid}_{A}.ipynb")
    intake = grade.collect_zip(scratch_course, A, zip_path)
    assert intake.students == sorted(REAL_IDS)
    for sid in REAL_IDS:
        assert (scratch_course / "submitted" / sid / A / f"{A}.ipynb").is_file(), sid
    assert intake.set_aside[f"star*_{A}.ipynb"].startswith("a student id may hold")


def test_a_class_of_real_ids_is_graded_and_what_is_set_aside_is_counted(released_course, capsys):
    root = released_course
    folder = class_folder(root, ["jane_doe"], source="ada")
    shutil.copytree(root / "examples" / "class_00" / "dev", folder / "jdoe@uni.edu")
    shutil.copytree(root / "examples" / "class_00" / "eve", folder / "e.v_e")  # not a valid notebook
    students = grade.collect_folder(root, A, folder).students
    problems = grade.autograde(root, A, students, progress=True)
    grade.feedback_and_export(root, A)
    out = capsys.readouterr()
    assert "Set aside, not graded (1 of 3" in out.out and "e.v_e: " in out.out and "Grading the other 2." in out.out
    assert "2/2" in out.err  # the progress bar counts what is graded
    scores = {r.student_id: r.score for r in grade.results(root, A, students, problems)}
    assert scores == {"jane_doe": 18, "jdoe@uni.edu": 12, "e.v_e": 0}
    with open(root / "grades.csv") as f:
        rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f) if r["assignment"] == A}
    assert rows == scores


def test_the_longest_id_the_rule_allows_is_graded_end_to_end(released_course):
    """Every name built from an id downstream (folders, the kernel's socket, nbgrader's records) fits."""
    from course.ingest import MAX_ID_BYTES, MAX_ID_CHARS

    root = released_course
    longest = "ö" * (MAX_ID_BYTES // 2 - 1) + "x" * (MAX_ID_CHARS - MAX_ID_BYTES // 2 + 1)
    assert len(longest) == MAX_ID_CHARS and len(longest.encode()) <= MAX_ID_BYTES
    too_long = "a" * (MAX_ID_CHARS + 1)
    folder = class_folder(root, [longest, too_long], source="ada")
    intake = grade.collect_folder(root, A, folder)
    assert intake.students == [longest] and "at most 64 characters" in intake.set_aside[too_long]
    problems = grade.autograde(root, A, intake.students, progress=False)
    assert problems == {}
    assert [r.score for r in grade.results(root, A, intake.students, problems)] == [18]
