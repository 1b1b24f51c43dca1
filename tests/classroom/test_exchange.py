"""A classroom on one machine: nbgrader's real exchange commands, an instructor and two fictional students.

release_assignment -> fetch_assignment -> submit -> collect -> course grade (sandboxed autograde and
feedback) -> release_feedback -> fetch_feedback, on a scratch copy of the course, with the exchange in a
temporary folder. ``ada`` answers every exercise with the solution, ``ben`` hands in the release untouched,
``mallory`` answers ``relative_error`` wrongly, fakes its tests in her own kernel and writes into the
instructor's course (what nbgrader's plain autograde would let her do): graded by ``course grade``, she loses
those points and writes nothing.
"""

import html
import re

import nbformat
import pytest
from nbgrader.api import Gradebook

from course.classroom import COURSE_ID, Classroom, feedback_score, run_flow
from course.nbgrader_run import NbgraderError
from course.notebooks import grade_cells, grade_id, hidden_test_code, is_solution, read_notebook
from course.sandbox import protections
from tests.grading.test_protocol_attacks import FAKE_KERNEL, WRONG_RELATIVE_ERROR

A = "00_gradient_checking"
pytestmark = pytest.mark.slow
ISOLATED = all(protections().values())


def mallory(root):
    """Her edit of the fetched (solved) notebook: a wrong answer, a faked pass, a file in the course root."""
    def edit(path):
        nb = read_notebook(path)
        cell = next(c for c in nb.cells if is_solution(c) and grade_id(c) == "relative_error")
        cell.source = (WRONG_RELATIVE_ERROR + FAKE_KERNEL +
                       f"try:\n    open({str(root / 'PWNED-by-mallory')!r}, 'w').write('x')\nexcept OSError:\n    pass\n")
        nbformat.write(nb, path)
    return edit


def page_text(html_file):
    """The text of an HTML page as a reader sees it (code is split into highlighted spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_file.read_text(encoding="utf-8")))


def max_points(root, assignment):
    src = read_notebook(root / "source" / assignment / f"{assignment}.ipynb")
    return float(sum(c.metadata.nbgrader["points"] for c in grade_cells(src)))


def test_release_fetch_submit_collect_autograde_feedback(scratch_course, tmp_path_factory):
    exchange = tmp_path_factory.mktemp("exchange") / "exchange"
    homes = tmp_path_factory.mktemp("students")
    room = Classroom(scratch_course, exchange)
    folders = {"ada": homes / "ada", "ben": homes / "ben", "mallory": homes / "mallory"}

    feedback = run_flow(room, A, folders, solved={"ada", "mallory"}, edits={"mallory": mallory(scratch_course)},
                        grade_options=() if ISOLATED else ("--allow-unprotected",))

    # released: the student version, in the exchange's outbound folder
    release = nbformat.read(scratch_course / "release" / A / f"{A}.ipynb", as_version=4)
    outbound = nbformat.read(exchange / COURSE_ID / "outbound" / A / f"{A}.ipynb", as_version=4)
    assert [c.source for c in outbound.cells] == [c.source for c in release.cells]
    assert "### BEGIN HIDDEN TESTS" not in "".join(c.source for c in outbound.cells)

    # fetched into each student's own folder, never into the course
    ben_nb = nbformat.read(folders["ben"] / A / f"{A}.ipynb", as_version=4)
    ada_nb = nbformat.read(folders["ada"] / A / f"{A}.ipynb", as_version=4)
    assert [c.source for c in ben_nb.cells] == [c.source for c in release.cells], "ben hands in the release untouched"
    assert not any("NotImplementedError" in c.source for c in ada_nb.cells if is_solution(c)), "ada answered everything"

    # submitted under the ids the students gave, collected into submitted/<student>/
    inbound = sorted(p.name.split("+")[0] for p in (exchange / COURSE_ID / "inbound").iterdir())
    assert inbound == ["ada", "ben", "mallory"]
    for sid in folders:
        assert (scratch_course / "submitted" / sid / A / f"{A}.ipynb").is_file()

    # autograded by the course's pipeline (sandboxed kernel, trusted re-run: its review file is there),
    # never by nbgrader's plain autograde; full marks for the solution, nothing for the release
    for sid in folders:
        assert (scratch_course / "autograded" / sid / A / "course_review.json").is_file()
    top = max_points(scratch_course, A)
    assert top > 0
    with Gradebook(f"sqlite:///{scratch_course / 'gradebook.db'}") as gb:
        assert gb.find_submission(A, "ada").score == pytest.approx(top)
        assert gb.find_submission(A, "ben").score == 0
        # mallory's kernel passed her wrong answer; the trusted re-run did not
        lost = sum(c.metadata.nbgrader["points"] for c in grade_cells(read_notebook(
            scratch_course / "source" / A / f"{A}.ipynb")) if grade_id(c).endswith("_relative_error"))
        assert lost > 0 and gb.find_submission(A, "mallory").score == pytest.approx(top - lost)
    if ISOLATED:
        assert not (scratch_course / "PWNED-by-mallory").exists()

    # the feedback each student fetched shows the right score, and never the hidden tests' code
    assert set(feedback) == {"ada", "ben", "mallory"}
    source = read_notebook(scratch_course / "source" / A / f"{A}.ipynb")
    hidden_lines = [line.strip() for code in hidden_test_code(source) for line in code.splitlines()
                    if len(line.strip()) > 25]
    assert hidden_lines
    for sid, score in (("ada", top), ("ben", 0.0)):
        page = feedback[sid]
        assert page.is_file() and page.is_relative_to(folders[sid] / A / "feedback")
        assert feedback_score(page) == (pytest.approx(score), pytest.approx(top))
        text = page_text(page)
        assert "check_close(" in text, "the visible tests are shown"
        leaked = [line for line in hidden_lines if line in text]
        assert not leaked, f"hidden-test code in {sid}'s feedback: {leaked[:3]}"
    assert "NotImplementedError" in page_text(feedback["ben"])

    # nothing landed in the instructor's course root besides nbgrader's own folders
    assert not (scratch_course / A).exists()


def test_fetching_an_assignment_that_was_not_released_says_so(scratch_course, tmp_path):
    room = Classroom(scratch_course, tmp_path / "exchange")
    (tmp_path / "exchange").mkdir()
    with pytest.raises(NbgraderError, match="Assignment not found at: .*outbound"):
        room.student("ada", tmp_path / "ada").fetch(A)
