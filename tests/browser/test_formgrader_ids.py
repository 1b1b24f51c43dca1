"""Hostile ids and names in nbgrader's formgrader, in the instructor's Chromium: shown as text, never run.

Issue 23, item 2: a student id such as ``<img src=x onerror=...>`` reached the gradebook through the
exchange, and nbgrader 0.9.6's formgrader printed it as HTML (its templates have no autoescaping, its
failure dialogs insert the id as HTML), so the student's script ran as the instructor. The course's ingest
refuses such ids; this test is the second line: it plants hostile values *directly* where each route
leaves them (the folder, zip and exchange routes all end in ``submitted/<id>/<assignment>/``, then a
gradebook student with a submission and an ``autograded/`` notebook), in the charset each route allows
(a folder name has no ``/``, an exchange folder no ``+``), plus values only the gradebook can hold (any
text: ``<script>``, ``</script>``, a JS string or an HTML attribute broken out of), hostile first/last
names and e-mails, a hostile assignment, notebook, cell name and grader's comment.

Then the instructor clicks through every formgrader page where they appear (students, a student's
assignments and notebooks, the edit-student dialog, the submissions of an assignment and its autograde
failure dialog, the gradebook, the submission page, assignments and their failure dialogs) and the
student's Assignment List. Each payload would record itself (``window.__pwned``, a request to
``pwned-marker-<tag>``), and one loads a script the student handed in (``submitted/mallory/.../evil.js``),
which would also write a file into the course through the contents API with the instructor's ``_xsrf``.
None of it may happen, and each hostile value must be visible on the page, as text.

Screenshots: tests/artifacts/browser/formgrader_ids_*.png.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import nbformat
import pytest

from course.classroom import COURSE_ID
# JupyterLab on a scratch copy of the course, and a page logged in to it (skipped there without Chromium)
from tests.browser.test_jupyterlab import ARTIFACTS, lab, page  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.serial]

A = "00_gradient_checking"
SETTLE_S = 1.5  # an <img onerror> fires and a local fetch completes well within this
WAIT_MS = 30_000  # for an element to appear (a page that fails shows none: fail in 30 s, not 120)


def js(tag: str) -> str:
    """JavaScript that records that it ran: no space and no ``/`` (it must fit a folder name)."""
    return f"window.__pwned=(window.__pwned||[]).concat('{tag}');fetch('pwned-marker-{tag}')"


# The script mallory hands in with her notebook: it would write into the course as the instructor.
EVIL_JS = """
window.__pwned = (window.__pwned || []).concat(['evil-js']);
fetch('pwned-marker-evil-js');
var xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1];
fetch(location.origin + '/api/contents/pwned-evil-js.txt', {method: 'PUT', credentials: 'same-origin',
    headers: {'X-XSRFToken': decodeURIComponent(xsrf || ''), 'Content-Type': 'application/json'},
    body: JSON.stringify({type: 'file', format: 'text', content: 'the student ran code as the instructor'})});
"""
EVIL_PATH = f"/files/submitted/mallory/{A}/evil.js"
LOAD_EVIL = ("s=document.createElement('script');s.src=decodeURIComponent('"
             + quote(EVIL_PATH, safe="") + "');document.body.append(s)")


@dataclass(frozen=True)
class Hostile:
    """A student planted as ``route`` would leave it; ``tag`` names the proof its payloads leave."""

    route: str
    tag: str
    student_id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None


STUDENTS = [
    # folder route (`course grade --submissions DIR`): the id is a folder name, no "/"
    Hostile("folder", "folder-img", f"<img src=x onerror={js('folder-img')}>"),
    Hostile("folder", "folder-evil", f"<img src=x onerror={LOAD_EVIL}>"),
    # zip route (`--zip`, <student>_<notebook>.ipynb): the id is part of a member's name, no "/"
    Hostile("zip", "zip-svg", f"\"><svg onload={js('zip-svg')}>"),
    # exchange route (`collect`, <student>+<assignment>+<time>): no "/" and no "+"
    Hostile("exchange", "exchange-jsstring", f"\";{js('exchange-jsstring')};\""),
    Hostile("exchange", "exchange-attr", f"x' onmouseover='{js('exchange-attr')}' x=\""),
    # only the gradebook can hold these (any text), with hostile names and e-mails
    Hostile("gradebook", "gb-script", f"<script>{js('gb-script')}</script>",
            first_name=f"<img src=x onerror={js('gb-first')}>", last_name=f"<svg onload={js('gb-last')}>",
            email=f"\"><img src=x onerror={js('gb-email')}>"),
    Hostile("gradebook", "gb-endscript", f"</script><script>{js('gb-endscript')}</script>"),
    Hostile("gradebook", "gb-handed-in", f"<script src={EVIL_PATH}></script>"),
    Hostile("gradebook", "gb-autofocus", f"x\" autofocus onfocus=\"{js('gb-autofocus')}\" x=\""),
]
HOSTILE_ASSIGNMENT = f"<img src=x onerror={js('assignment')}>"   # a source/ folder's name
HOSTILE_NOTEBOOK = f"<svg onload={js('notebook')}>"              # a notebook's name in it
HOSTILE_CELL = f"\"><img src=x onerror={js('cell')}>"            # a grade cell's name (grade_id)
HOSTILE_COMMENT = f"</textarea><img src=x onerror={js('comment')}>"


def path_arg(value: str) -> str:
    return quote(value, safe="")


def loads_its_table(h: Hostile) -> bool:
    """nbgrader's scripts put the id into their API requests' paths as it is: with a "/" (or a "%", decoded
    by the server) in it the student's own pages ask for another path and their tables stay empty.
    Such ids never pass the course's ingest; here their pages must still show them as text, running nothing."""
    return not any(c in h.student_id for c in "/%")


def plant(root: Path) -> dict[str, str]:
    """Plant every hostile value where the routes leave them; return each student's submission page id."""
    from nbgrader.api import Gradebook

    release = nbformat.read(root / "release" / A / f"{A}.ipynb", as_version=4)
    (root / "submitted" / "mallory" / A).mkdir(parents=True)
    nbformat.write(release, root / "submitted" / "mallory" / A / f"{A}.ipynb")
    (root / "submitted" / "mallory" / A / "evil.js").write_text(EVIL_JS)  # handed in beside the notebook

    autograded = nbformat.from_dict(json.loads(json.dumps(release)))
    autograded.cells.append(nbformat.v4.new_code_cell("assert True", metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "points": 1, "grade_id": HOSTILE_CELL,
        "schema_version": 3}}))

    sids = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        gb.update_or_create_student("mallory", first_name="Mallory", last_name="Student")
        for h in [*STUDENTS]:
            # what every route leaves: submitted/<id>/<assignment>/ (collect adds a timestamp) ...
            if h.route != "gradebook":
                folder = root / "submitted" / h.student_id / A
                folder.mkdir(parents=True)
                nbformat.write(release, folder / f"{A}.ipynb")
                if h.route == "exchange":
                    (folder / "timestamp.txt").write_text("2026-12-01 20:00:00.000000 UTC")
            # ... then, once graded, a gradebook student with a submission and an autograded notebook
            gb.update_or_create_student(h.student_id, first_name=h.first_name, last_name=h.last_name,
                                        email=h.email)
            gb.add_submission(A, h.student_id)
            out = root / "autograded" / h.student_id / A
            out.mkdir(parents=True)
            nbformat.write(autograded, out / f"{A}.ipynb")
            sids[h.student_id] = gb.find_submission_notebook(A, A, h.student_id).id
        # a grader's comment that closes its textarea
        comment = gb.find_submission_notebook(A, A, STUDENTS[0].student_id).comments[0]
        comment.manual_comment = HOSTILE_COMMENT
        gb.db.commit()
        # a hostile assignment with a hostile notebook, submitted by mallory (its file missing)
        gb.update_or_create_assignment(HOSTILE_ASSIGNMENT)
        gb.update_or_create_notebook(HOSTILE_NOTEBOOK, HOSTILE_ASSIGNMENT)
        gb.add_submission(HOSTILE_ASSIGNMENT, "mallory")
    source = root / "source" / HOSTILE_ASSIGNMENT
    source.mkdir()
    nbformat.write(release, source / f"{HOSTILE_NOTEBOOK}.ipynb")
    # and released under that name into the exchange, where the Assignment List reads it
    outbound = root / "exchange" / COURSE_ID / "outbound" / HOSTILE_ASSIGNMENT
    outbound.mkdir(parents=True)
    nbformat.write(release, outbound / f"{HOSTILE_NOTEBOOK}.ipynb")
    return sids


@pytest.fixture(scope="module")
def planted(lab):
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():  # nbgrader 0.9.6's add_submission, on SQLAlchemy 2 (a RuntimeWarning)
        warnings.simplefilter("ignore", SAWarning)
        return plant(lab.root)


class Watch:
    """Every trace a payload could leave in the instructor's browser and course, from this point on."""

    def __init__(self, context, root: Path):
        self.root = root
        self.requests: list[str] = []
        self.console: list[str] = []
        self.pages = []
        self.problems: list[str] = []  # what a page did not show as it should (checked after the traces)
        self.context = context
        context.on("request", self._request)

    def _request(self, request) -> None:
        self.requests.append(request.url)

    def open(self, context, url: str):
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("console", lambda msg: self.console.append(msg.text))
        self.pages.append(page)
        page.goto(url)
        page.wait_for_load_state("load")
        settle(page)
        return page

    @contextmanager
    def step(self, what: str, page=None):
        """One student's clicks: a failure is recorded (the next student is still clicked through)."""
        try:
            yield
        except Exception as err:  # an assertion or a Playwright time-out
            self.problems.append(f"{what}: {str(err).splitlines()[0][:300]}")
            if page is not None:  # a dialog left open would hide the next student's row
                page.evaluate("() => { document.querySelectorAll('.modal, .modal-backdrop')"
                              ".forEach(m => m.remove()); document.body.classList.remove('modal-open'); }")

    def traces(self) -> list[str]:
        # a payload's own fetch (its last path segment), not a request that merely carries the id
        found = [f"request {u}" for u in self.requests if urlsplit(u).path.rsplit("/", 1)[-1].startswith("pwned-marker-")]
        for page in self.pages:
            if page.is_closed():
                continue
            for frame in page.frames:
                try:
                    pwned = frame.evaluate("() => window.__pwned || null")
                except Exception:  # a frame navigated away meanwhile
                    continue
                if pwned:
                    found.append(f"window.__pwned = {pwned} in {frame.url}")
        found += [f"file written: {p.name}" for p in self.root.rglob("pwned-*")]
        return found

    def close(self) -> None:
        for page in self.pages:
            if not page.is_closed():
                page.close()
        self.pages.clear()
        self.context.remove_listener("request", self._request)


def settle(page) -> None:
    page.wait_for_load_state("networkidle")
    time.sleep(SETTLE_S)


def shot(page, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"formgrader_ids_{name}.png"), full_page=full_page)


@pytest.fixture()
def watch(planted, page, lab):
    w = Watch(page.context, lab.root)
    yield w
    w.close()


def text_of(page) -> str:
    return page.locator("body").inner_text()


@contextmanager
def clicking_through(watch: Watch, where: str, refusals_expected: bool = False):
    """The instructor's clicks in ``where``; then (even if a page did not show what it should) no trace.

    The traces are also written to tests/artifacts/browser/formgrader_ids_traces.json, one entry per place.
    """
    refused: list[str] = []
    try:
        yield
    finally:
        traces = watch.traces()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        log = ARTIFACTS / "formgrader_ids_traces.json"
        seen = json.loads(log.read_text()) if log.exists() else {}
        seen[where] = sorted(set(traces))
        refused[:] = sorted({m[:300] for m in watch.console if "Content Security Policy" in m})
        seen[where + " (refused by the CSP)"] = refused
        log.write_text(json.dumps(seen, indent=1))
        assert not traces, f"a student's script ran in {where}: {sorted(set(traces))}"
    assert not watch.problems, f"not shown as text in {where}: {watch.problems}"
    # nbgrader's own scripts all run under the policy (with the values escaped, nothing else is there to
    # refuse); it refuses only nbconvert's MathJax, from a CDN this offline machine cannot reach anyway
    assert refusals_expected or all("mathjax" in m for m in refused), f"the policy refused in {where}: {refused}"


def test_students_list_and_edit_dialog(watch, page, lab):
    with clicking_through(watch, "Manage Students and the student dialogs"):
        fg = watch.open(page.context, lab.url("/formgrader/manage_students"))
        fg.locator("#main-table tr", has_text="Student, Mallory").wait_for()
        shot(fg, "manage_students")
        body = text_of(fg)
        for h in STUDENTS:
            with watch.step(h.tag):
                assert h.student_id in body, "the id is not shown as text"
        student = next(h for h in STUDENTS if h.first_name)
        with watch.step("names and e-mail"):
            assert student.email in body and student.last_name in body and student.first_name in body
        # the edit dialog of each hostile student ("Editing <id>", the fields filled in)
        for h in STUDENTS:
            with watch.step(h.tag, fg):
                row = fg.locator("#main-table tr").filter(has=fg.locator("td.id", has_text=h.student_id))
                row.locator("td.edit a").click()
                modal = fg.locator("#edit-student-modal")
                modal.wait_for()
                settle(fg)
                assert h.student_id in modal.locator(".modal-title").inner_text()
                if h.first_name:
                    shot(fg, "edit_student_dialog")
                modal.get_by_text("Cancel").click()
                modal.wait_for(state="detached")
        # the add-student dialog, a hostile id typed in (and not saved)
        fg.get_by_text("Add new student...").click()
        fg.locator("#add-student-modal input.id").fill(STUDENTS[0].student_id)
        settle(fg)


def test_each_students_assignments_and_notebooks(watch, page, lab):
    with clicking_through(watch, "a student's assignments and notebooks"):
        for h in STUDENTS:
            with watch.step(f"{h.tag} (assignments)"):
                fg = watch.open(page.context, lab.url(f"/formgrader/manage_students/{path_arg(h.student_id)}"))
                if loads_its_table(h):
                    fg.locator("#main-table tr", has_text=A).wait_for()
                assert h.student_id in fg.locator(".breadcrumb").inner_text()
                if h.tag == "folder-img":
                    shot(fg, "student_assignments")
            with watch.step(f"{h.tag} (notebooks)"):
                fg = watch.open(page.context, lab.url(f"/formgrader/manage_students/{path_arg(h.student_id)}/{A}"))
                if loads_its_table(h):
                    fg.locator("#main-table tr", has_text=A).wait_for()
                assert h.student_id in fg.locator(".breadcrumb").inner_text()
        # mallory's submission of the hostile assignment: its notebook's file is missing
        fg = watch.open(page.context, lab.url(f"/formgrader/manage_students/mallory/{path_arg(HOSTILE_ASSIGNMENT)}"))
        fg.locator("#main-table tr", has_text="(file missing)").wait_for()
        assert HOSTILE_NOTEBOOK in text_of(fg) and HOSTILE_ASSIGNMENT in text_of(fg)
        shot(fg, "student_notebook_file_missing")


def test_submissions_of_the_assignment_and_the_autograde_failure_dialog(watch, page, lab):
    with clicking_through(watch, "Manage Submissions and the autograde failure dialog"):
        fg = watch.open(page.context, lab.url(f"/formgrader/manage_submissions/{A}"))
        fg.locator("#main-table tr", has_text="Student, Mallory").wait_for()
        body = text_of(fg)
        for h in STUDENTS:
            with watch.step(h.tag):
                assert h.student_id in body, "the id is not shown as text"
        shot(fg, "manage_submissions")
        # the server fails each autograde (it would run the student's code here): the failure dialog
        fg.route("**/autograde", lambda route: route.fulfill(status=500, body="failed"))
        for h in STUDENTS:
            with watch.step(f"{h.tag} (autograde failure)", fg):
                row = fg.locator("#main-table tr").filter(has=fg.locator("td.student-id", has_text=h.student_id))
                row.locator("td.autograde a").click()
                modal = fg.locator("#error-modal")
                modal.wait_for()
                settle(fg)
                assert h.student_id in modal.inner_text(), "the failure dialog does not name the student"
                if h.tag == "folder-img":
                    shot(fg, "autograde_failure_dialog")
                modal.locator("button.close").last.click()
                modal.wait_for(state="detached")


def test_gradebook_and_every_submission_page(watch, page, lab, planted):
    with clicking_through(watch, "the gradebook and the submission pages"):
        fg = watch.open(page.context, lab.url("/formgrader/gradebook"))
        fg.locator("#main-table tr", has_text=HOSTILE_ASSIGNMENT).wait_for()
        fg = watch.open(page.context, lab.url(f"/formgrader/gradebook/{path_arg(HOSTILE_ASSIGNMENT)}"))
        fg.locator("#main-table tr", has_text=HOSTILE_NOTEBOOK).wait_for()
        fg = watch.open(page.context, lab.url(f"/formgrader/gradebook/{A}/{A}"))
        fg.locator("#main-table tr", has_text="Submission #").first.wait_for()
        fg.locator("#toggle_names").click()
        settle(fg)
        body = text_of(fg)
        for h in STUDENTS:
            with watch.step(f"{h.tag} (gradebook)"):
                assert (h.last_name or h.student_id) in body, "not shown as text"
        shot(fg, "gradebook_submissions")
        for h in STUDENTS:
            with watch.step(f"{h.tag} (submission page)"):
                fg = watch.open(page.context, lab.url(f"/formgrader/submissions/{planted[h.student_id]}/"))
                fg.locator(".nbgrader_cell").first.wait_for()
                fg.locator("span.glyphicon.name-hidden").click()  # show the student's name
                settle(fg)
                assert HOSTILE_CELL in text_of(fg), "the cell's name is not shown as text"
                shown = fg.locator("a.name-shown").inner_text()
                assert (f"{h.last_name}, {h.first_name}" if h.first_name else h.student_id) in shown, shown
                if h is STUDENTS[0]:
                    assert fg.locator("textarea.comment").first.input_value() == HOSTILE_COMMENT
                    shot(fg, "submission_page", full_page=False)


def test_assignments_and_their_failure_dialogs(watch, page, lab):
    with clicking_through(watch, "Manage Assignments and its dialogs"):
        fg = watch.open(page.context, lab.url("/formgrader/manage_assignments"))
        row = fg.locator("#main-table tr", has_text=HOSTILE_ASSIGNMENT)
        row.wait_for()
        fg.route("**/formgrader/api/assignment/**", lambda route: route.fulfill(status=500, body="failed"))
        row.locator("td.assign a").click()  # "generate" fails on the server: the failure dialog
        modal = fg.locator("#error-modal")
        modal.wait_for()
        settle(fg)
        assert HOSTILE_ASSIGNMENT in modal.inner_text()
        shot(fg, "assignment_failure_dialog")
        modal.locator("button.close").last.click()
        modal.wait_for(state="detached")
        fg = watch.open(page.context, lab.url("/formgrader/manage_assignments"))  # the failed row is cleared
        row = fg.locator("#main-table tr", has_text=HOSTILE_ASSIGNMENT)
        row.locator("td.edit a").click()  # "Editing <name>"
        fg.locator("#edit-assignment-modal").wait_for()
        settle(fg)
        assert HOSTILE_ASSIGNMENT in fg.locator("#edit-assignment-modal .modal-title").inner_text()


def test_students_assignment_list_shows_the_hostile_assignment_as_text(watch, page, lab):
    with clicking_through(watch, "the Assignment List"):
        lab_page = watch.open(page.context, lab.url("/lab"))
        lab_page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
        lab_page.locator(".lm-Menu-itemLabel", has_text="Assignment List").click()
        released = lab_page.locator("#released_assignments_list")
        released.get_by_text(HOSTILE_ASSIGNMENT).wait_for()
        settle(lab_page)
        shot(lab_page, "assignment_list")


EVIL_HTML = (f"<title>evil page</title><script>{js('page-script')}</script><img src=x onerror={js('page-img')}>"
             f"<script src={EVIL_PATH}></script>")


def test_an_api_answer_or_a_page_the_student_handed_in_opened_in_the_formgrader(watch, page, lab, planted):
    with clicking_through(watch, "an API answer and a student's page under /formgrader/", refusals_expected=True):
        # nbgrader's API answers hold the ids; a link can open one as a page
        fg = watch.open(page.context, lab.url("/formgrader/api/students"))
        assert STUDENTS[0].student_id in text_of(fg), "the API answer is shown as text"
        shot(fg, "api_answer_as_page")
        # a page beside the student's notebook, served by the formgrader (its submission files)
        h = STUDENTS[0]
        (lab.root / "autograded" / h.student_id / A / "evil.html").write_text(EVIL_HTML)
        fg = watch.open(page.context, lab.url(f"/formgrader/submissions/{planted[h.student_id]}/evil.html"))
        assert fg.title() == "evil page"  # it was served (and ran nothing)


def test_the_formgraders_autograde_runs_no_student_code(lab, planted):
    """nbgrader's autograde would run the student's code in the instructor's server, unsandboxed."""
    import urllib.request

    h = STUDENTS[0]
    url = f"{lab.base}/formgrader/api/submission/{A}/{path_arg(h.student_id)}/autograde"
    request = urllib.request.Request(url, method="POST", data=b"",
                                     headers={"Authorization": f"token {lab.token}"})
    before = sorted(p.name for p in (lab.root / "autograded" / h.student_id / A).iterdir())
    with urllib.request.urlopen(request, timeout=60) as resp:
        answer = json.loads(resp.read())
    assert answer["success"] is False and "course grade" in answer["error"], answer
    assert sorted(p.name for p in (lab.root / "autograded" / h.student_id / A).iterdir()) == before


def test_the_instructors_jupyterlab_has_no_terminal(lab):
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(lab.url("/api/terminals"), method="POST"),
                                    timeout=10) as resp:
            status = resp.status
    except urllib.error.HTTPError as err:
        status = err.code
    assert status == 404, f"POST /api/terminals answered {status}: terminals are on"
